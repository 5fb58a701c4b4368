"""segment trainer speed and memory: a U-Net on generated X-rays through `train()` and through a
minimal hand-written smp loop on the same model and data, side by side; then peak RSS of a
256x256 run at batch 8.

Each repeat runs the trainer and the hand loop back to back, alternating which goes first;
epochs after the first are timed, whole: the trainer's include its validation pass, logging
and checkpoint bookkeeping, so the hand loop scores the same validation set each epoch. The
median of the paired ratios is printed (trainer / hand; target >= 0.95 on CPU) with best vs
best beside it, by wall clock and by this process's CPU time. Peak RSS is measured in a fresh
process (ru_maxrss of a child), so this process's own peak does not hide it.

    uv run python benchmarks/bench_segment.py [--epochs 3] [--repeats 5] [--size 64] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import segmentation_models_pytorch as smp
import torch
from bench_classify_loop import ClockLogger, epoch_rates, stamp  # the same clocks, side by side

from sweeper.trainers.common.seed import seed_everything
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.loaders import build_loaders
from sweeper.trainers.segment.data.synthetic import write_xray
from sweeper.trainers.segment.models import build_model
from sweeper.trainers.segment.train import train

CLOCKS = ("wall", "cpu")
MODEL = {"encoder_name": "mobilenet_v2", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}


def trainer_rates(config: SegmentConfig, n_train: int) -> dict[str, float]:
    logger = ClockLogger()
    train(config, logger)
    return epoch_rates(logger.stamps, n_train)


def hand_rates(config: SegmentConfig) -> dict[str, float]:
    """What one writes by hand: the same tensors, smp.Unet, DiceLoss + BCE, Adam, a val pass."""
    generator = seed_everything(config.seed)
    loaders = build_loaders(config, generator, pin=False)
    train_x, train_y = (
        torch.from_numpy(np.stack(t))[:, None].float()
        for t in zip(*loaders.train.dataset.cache, strict=True)
    )
    val_x, val_y = (
        torch.from_numpy(np.stack(t))[:, None].float()
        for t in zip(*loaders.val.dataset.cache, strict=True)
    )
    train_x, val_x = (train_x / 255 - 0.5) / 0.25, (val_x / 255 - 0.5) / 0.25
    model = build_model(config.model)
    dice, bce = smp.losses.DiceLoss("binary"), smp.losses.SoftBCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    batch, stamps = config.data.batch_size, []
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            logits = model(train_x[index])
            loss = dice(logits, train_y[index]) + bce(logits, train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for start in range(0, len(val_x), config.data.eval_batch_size):
                logits = model(val_x[start : start + config.data.eval_batch_size])
                stats = smp.metrics.get_stats(
                    (logits > 0).long(),
                    val_y[start : start + config.data.eval_batch_size].long(),
                    "binary",
                )
                smp.metrics.f1_score(*stats, reduction="micro").item()
        stamps.append(stamp())
    return epoch_rates(stamps, len(train_x))


def make_config(
    root: Path, size: int, batch: int, epochs: int, model: dict = MODEL
) -> SegmentConfig:
    return SegmentConfig.model_validate(
        {
            "epochs": epochs,
            "device": "cpu",
            "model": model,
            "data": {
                "root": str(root),
                "image_size": size,
                "batch_size": batch,
                "test_fraction": 0.0,
            },
            "optim": {"name": "adam", "lr": 1e-3},
            "overlays": 0,
        }
    )


def peak_rss(root: Path, size: int, batch: int) -> float:
    """MB: the high-water mark of a fresh process training one epoch of the default model
    (U-Net, efficientnet-b0, as in sweeps/xray-unet.yaml) at this size."""
    code = (
        "import resource, bench_segment as b; from pathlib import Path; "
        f"b.train(b.make_config(Path({str(root)!r}), {size}, {batch}, 1, {{}}), b.MemoryLogger()); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    return int(out.stdout.split()[-1]) / 1024


def measure(
    epochs: int = 3, repeats: int = 5, size: int = 64, batch: int = 8, rss: bool = True
) -> dict[str, float]:
    """Print the side-by-side rates (and peak RSS); return trainer / hand per clock (median of
    paired runs)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = write_xray(Path(scratch) / "xray", n=48, size=256)
        config = make_config(root, size, batch, epochs)
        n_train = len(build_loaders(config, torch.Generator(), pin=False).train.dataset)
        print(
            f"U-Net mobilenet_v2 depth 3 on {n_train} generated {size}x{size} X-rays, "
            f"batch {batch}, {epochs} epochs per run, {torch.get_num_threads()} CPU threads"
        )
        trainer_rates(config, n_train)  # warm-up: imports and first-call costs
        hand_rates(config)
        rates = {(name, clock): [] for name in ("trainer", "hand") for clock in CLOCKS}
        for repeat in range(repeats):
            for name in ("trainer", "hand")[:: 1 if repeat % 2 else -1]:
                run = trainer_rates(config, n_train) if name == "trainer" else hand_rates(config)
                for clock in CLOCKS:
                    rates[name, clock].append(run[clock])
        ratios = {}
        for clock in CLOCKS:
            trainer, hand = rates["trainer", clock], rates["hand", clock]
            ratios[clock] = statistics.median(t / h for t, h in zip(trainer, hand, strict=True))
            print(
                f"{clock:>4}: trainer median {statistics.median(trainer):6.1f} img/s, hand "
                f"{statistics.median(hand):6.1f} img/s; ratio trainer / hand: median of paired "
                f"runs {ratios[clock]:.3f}, best vs best {max(trainer) / max(hand):.3f}"
            )
        print("target: trainer / hand >= 0.95")
        if rss:
            peak = peak_rss(root, 256, 8)
            print(f"peak RSS, U-Net efficientnet-b0, one epoch at 256x256, batch 8: {peak:.0f} MB")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    measure(args.epochs, args.repeats, args.size, args.batch)


if __name__ == "__main__":
    main()

"""classify trainer speed: the MNIST CNN on digits (28x28) for a fixed number of steps, through
`train()` and through a minimal hand-written loop on the same model and tensors, side by side.

Each repeat runs the trainer and the raw loops back to back, alternating which goes first
(epochs after the first are timed); the median over repeats of the paired ratios is printed
(trainer / raw; target >= 0.95 on CPU), with best-vs-best beside it (the runs least disturbed
by other load), by wall clock and by this process's CPU time. Whole epochs are timed: the
trainer's include its per-epoch validation pass, logging and checkpoint bookkeeping; "raw+val"
adds the same validation forward pass to the raw loop, so trainer / raw+val is the loop's own
overhead ("raw", with no validation at all, is printed too). On a shared machine, run it
when the load is low: other processes' bursts swamp a few-percent difference.

    uv run python benchmarks/bench_classify_loop.py [--epochs 3] [--repeats 12] [--batch 64]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.classify.data.build import load_data
from sweeper.trainers.classify.models.cnn import CNN
from sweeper.trainers.classify.train import train
from sweeper.trainers.common.optim import build_optimizer
from sweeper.trainers.common.seed import seed_everything
from sweeper.trainers.logger import MemoryLogger

CLOCKS = ("wall", "cpu")


class ClockLogger(MemoryLogger):
    """Stamps each epoch's log call, so whole trainer epochs can be timed from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[float, float]] = []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.stamps.append(stamp())
        super().log(metrics, step)


def stamp() -> tuple[float, float]:
    """Wall clock, and this process's CPU time (not inflated by other load on the machine)."""
    return time.perf_counter(), time.process_time()


def epoch_rates(stamps: list[tuple[float, float]], n_train: int) -> dict[str, float]:
    """Median training images per second (wall, CPU) over epochs 2..E (epoch 1 pays one-off
    costs in both loops)."""
    return {
        clock: statistics.median(
            n_train / (end[i] - start[i]) for start, end in itertools.pairwise(stamps)
        )
        for i, clock in enumerate(CLOCKS)
    }


def trainer_rates(config: ClassifyConfig, n_train: int) -> dict[str, float]:
    logger = ClockLogger()
    train(config, logger)
    return epoch_rates(logger.stamps, n_train)


def raw_rates(config: ClassifyConfig, validate: bool) -> dict[str, float]:
    """The plainest loop: shuffle indices, slice the stored tensors, step; optionally score val."""
    seed_everything(config.seed)
    data = load_data(config.data, torch.device("cpu"))
    x, y, val = data.train.x, data.train.y, data.val
    model = CNN(data.shape, len(data.classes), n_base=config.model.n_base)
    optimizer = build_optimizer(model.parameters(), config.optim)
    batch = config.data.batch_size
    stamps = []
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch):
            index = order[start : start + batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if validate:
            model.eval()
            with torch.no_grad():
                (model(val.x).argmax(1) == val.y).float().mean().item()
        stamps.append(stamp())
    return epoch_rates(stamps, len(y))


def measure(epochs: int = 3, repeats: int = 12, batch: int = 64) -> dict[str, float]:
    """Print the side-by-side rates; return trainer / raw+val per clock (median of paired runs)."""
    config = ClassifyConfig.model_validate(
        {
            "epochs": epochs,
            "device": "cpu",
            "model": {"arch": "cnn", "n_base": 16},
            "data": {
                "name": "digits",
                "image_size": [28, 28],
                "val_fraction": 0.1,
                "batch_size": batch,
                "test_batch_size": 1000,
            },
            "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        }
    )
    n_train = len(load_data(config.data, torch.device("cpu")).train)
    steps = config.epochs * -(-n_train // batch)
    print(
        f"CNN (12,810 params) on digits 1x28x28: {n_train} training images, batch {batch}, "
        f"{steps} steps per run, {torch.get_num_threads()} CPU threads"
    )
    trainer_rates(config, n_train)  # warm-up: imports and first-call costs
    raw_rates(config, validate=True)
    names = ("trainer", "raw+val", "raw")
    rates = {(name, clock): [] for name in names for clock in CLOCKS}
    for repeat in range(repeats):
        # Alternate who goes first, so a slow spell of the machine does not favour one side.
        for name in names[:: 1 if repeat % 2 else -1]:
            run = (
                trainer_rates(config, n_train)
                if name == "trainer"
                else raw_rates(config, validate=name == "raw+val")
            )
            for clock in CLOCKS:
                rates[name, clock].append(run[clock])
    ratios = {}
    for clock in CLOCKS:
        for name in names:
            values = rates[name, clock]
            print(
                f"{name:>8} ({clock:>4}): median {statistics.median(values):7.0f} img/s, "
                f"best {max(values):7.0f} img/s over {len(values)} runs"
            )
        for name in names[1:]:
            paired = [
                t / r for t, r in zip(rates["trainer", clock], rates[name, clock], strict=True)
            ]
            best = max(rates["trainer", clock]) / max(rates[name, clock])
            print(
                f"ratio trainer / {name:<7} ({clock}): median of paired runs "
                f"{statistics.median(paired):.3f}, best vs best {best:.3f}"
            )
            if name == "raw+val":
                ratios[clock] = statistics.median(paired)
    print("target: trainer / raw+val >= 0.95")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    measure(args.epochs, args.repeats, args.batch)


if __name__ == "__main__":
    main()

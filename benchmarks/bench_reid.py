"""reid trainer speed: (a) training throughput vs a minimal hand-written loop, side by side;
(b) evaluate_rank at VeRi-776 test size.

    uv run python benchmarks/bench_reid.py [--arch resnet18_fc512] [--size 64] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.common.optim import build_optimizer
from sweeper.trainers.logger import MemoryLogger
from sweeper.trainers.reid.build import build
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.reid.metrics import distance_matrix, evaluate_rank, rank_features
from sweeper.trainers.reid.train import train


class HandLoop:
    """The plainest loop over the same data, model, loss and optimizer as the trainer."""

    def __init__(self, config: ReidConfig) -> None:
        built = build(config, torch.device("cpu"))  # the trainer's own assembly
        self.loader = built.data.train
        self.model = built.model
        self.optimizer = build_optimizer(self.model.parameters(), config.optim)
        self.criterion = built.loss

    def epoch(self) -> int:
        """Train one epoch; return the number of images."""
        self.model.train()
        seen = 0
        for images, pids, _ in self.loader:
            logits, features = self.model(images)
            loss, _, _ = self.criterion(logits, features, pids)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            seen += len(pids)
        return seen


def clocks() -> np.ndarray:
    """(wall, process CPU) seconds: CPU time is less swayed by other jobs on a busy machine."""
    return np.array([time.perf_counter(), time.process_time()])


class SideBySide(MemoryLogger):
    """Runs one hand-loop epoch after each trainer epoch, so both see the same machine load.

    A trainer epoch is timed from the end of the previous log call to this one: the whole
    epoch, loop overhead included.
    """

    def __init__(self, hand: HandLoop) -> None:
        super().__init__()
        self.hand = hand
        self.timings: list[tuple[int, np.ndarray, int, np.ndarray]] = []
        self.resumed: np.ndarray | None = None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        stopped = clocks()
        super().log(metrics, step)
        hand_images = self.hand.epoch()
        hand_time = clocks() - stopped
        if self.resumed is not None:  # epoch 0 warms both up and is not counted
            images = round(metrics["images_per_s"] * metrics["epoch_time"])
            self.timings.append((hand_images, hand_time, images, stopped - self.resumed))
        self.resumed = clocks()


def throughput(args: argparse.Namespace, root: Path) -> dict[str, float]:
    """Print the side-by-side rates; return trainer / hand loop per clock (over all timed
    epochs)."""
    config = ReidConfig(
        epochs=args.epochs + 2,  # one warm-up epoch, then the timed ones, then one that evaluates
        device="cpu",
        model={"arch": args.arch},
        data={
            "root": str(root),
            "synthetic": True,
            "image_size": [args.size, args.size],
            "batch_size": args.batch_size,
            "workers": 0,
        },
        eval={"every": args.epochs + 2},
    )
    ensure_generated(root, write_veri)
    logger = SideBySide(HandLoop(config))
    train(config, logger)
    timed = logger.timings[:-1]  # the last trainer epoch evaluated too
    print(
        f"(a) training throughput, {args.arch} {args.size}x{args.size}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, {len(timed)} alternating epochs a side (images/s)"
    )
    hand = sum(t[0] for t in timed) / sum(t[1] for t in timed)
    ours = sum(t[2] for t in timed) / sum(t[3] for t in timed)
    for i, clock in enumerate(("wall", "CPU")):
        print(
            f"    per {clock:4s} s  hand loop {hand[i]:7.1f}   trainer {ours[i]:7.1f}   "
            f"ratio {ours[i] / hand[i]:.3f}"
        )
    ratios = [(t[2] / t[3][0]) / (t[0] / t[1][0]) for t in timed]
    print(f"    per-epoch wall ratios: {' '.join(f'{r:.2f}' for r in ratios)}")
    return {clock: ours[i] / hand[i] for i, clock in enumerate(("wall", "cpu"))}


def ranking(n_query: int, n_gallery: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 200, n_query), rng.integers(0, 200, n_gallery)
    q_camids, g_camids = rng.integers(1, 21, n_query), rng.integers(1, 21, n_gallery)
    query, gallery = torch.randn(n_query, dim), torch.randn(n_gallery, dim)
    start = time.perf_counter()
    distmat = distance_matrix(query, gallery)
    built = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    ranked = time.perf_counter() - start
    start = time.perf_counter()
    rank_features(query, gallery, q_pids, g_pids, q_camids, g_camids)
    streamed = time.perf_counter() - start
    print(
        f"    {n_query} x {n_gallery}, {dim}-d: distance matrix {built:5.2f} s, "
        f"evaluate_rank {ranked:5.2f} s, both streamed (rank_features) {streamed:5.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18_fc512")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    if not args.skip_train:
        with tempfile.TemporaryDirectory() as scratch:
            throughput(args, Path(scratch) / "veri")
    print("(b) evaluate_rank (target: 2,000 x 12,000 under 10 s on 2 CPU cores)")
    for n_query, n_gallery, dim in ((1678, 11579, 2048), (1678, 11579, 512), (2000, 12000, 2048)):
        ranking(n_query, n_gallery, dim)


if __name__ == "__main__":
    main()

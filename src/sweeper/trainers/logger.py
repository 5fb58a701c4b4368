"""The only channel between a trainer and the outside world (store, wandb, console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


class Logger(Protocol):
    """What a trainer may call. Trainers never import wandb or the store."""

    run_dir: Path | None
    """Where the trial may keep files (checkpoints); None means nothing is kept."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record one step (an epoch) of metrics."""

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        """Record training metrics at a global batch index (a batch-loss curve). A side series:
        never a history step, so `step` stays the epoch for the store, report and hyperband."""

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        """Record image files (PNG) under one name at an epoch. The files need only exist for
        the call: a logger that keeps them copies them."""

    def should_stop(self) -> bool:
        """True when the sweep stopped this trial (early termination or preemption)."""


class MemoryLogger:
    """Keeps history in memory: for tests, and for `train` calls from Python."""

    def __init__(self, run_dir: Path | None = None, stop_after: int | None = None) -> None:
        self.run_dir = run_dir
        self.history: list[dict[str, float]] = []
        self.batches: list[dict[str, float]] = []
        self.images: dict[str, list[Path]] = {}
        self._stop_after = stop_after

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.history.append({"_step": step, **metrics})

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        self.batches.append({"batch": batch, **metrics})

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        self.images[name] = list(paths)

    def should_stop(self) -> bool:
        return self._stop_after is not None and len(self.history) >= self._stop_after

"""Epoch-level checkpoints, so a preempted or requeued trial resumes where it stopped."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

FILENAME = "checkpoint.pt"


class Checkpoint:
    """Saves model, optimizer, scheduler, RNG states and loop state at epoch boundaries.

    Every epoch, unless saving is slow next to training: then no more often than keeps saving
    under OVERHEAD of the time (a model whose save takes 1 s saves every 20 s). A SIGKILL so
    loses at most one epoch of these small models. A no-op when `run_dir` is None (a trial
    that keeps no files).
    """

    OVERHEAD = 0.05

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / FILENAME if run_dir is not None else None
        self._last_save = time.monotonic()
        self._cost = 0.0
        """Seconds the last save took."""

    def due(self) -> bool:
        return time.monotonic() - self._last_save >= self._cost / self.OVERHEAD

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None,
        state: dict[str, Any],
    ) -> None:
        if self.path is None:
            return
        payload = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "state": state,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }
        started = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.path)  # atomic: a kill mid-save leaves the last good checkpoint
        self._last_save = time.monotonic()
        self._cost = self._last_save - started

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None,
    ) -> tuple[int, dict[str, Any]]:
        """Load the last checkpoint if there is one; return (epochs done, loop state)."""
        if self.path is None or not self.path.exists():
            return 0, {}
        payload = torch.load(self.path, map_location="cpu", weights_only=False)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if scheduler is not None and payload["scheduler"] is not None:
            scheduler.load_state_dict(payload["scheduler"])
        rng = payload["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return payload["epoch"], payload["state"]

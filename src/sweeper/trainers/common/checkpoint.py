"""Epoch-level checkpoints, so a preempted or requeued trial resumes where it stopped.

Every checkpoint file sweeper writes holds tensors and plain types only, and every one it reads
is loaded with `torch.load(weights_only=True)`: a store folder may be shared by users and nodes,
and a crafted pickle must be refused before any of it runs, not after (PyTorch's own advice:
https://pytorch.org/docs/stable/notes/serialization.html#weights-only).
"""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from sweeper.errors import SweeperError

FILENAME = "checkpoint.pt"

PLAIN_SCALARS = (str, bytes, int, float, bool, type(None))
"""What `weights_only=True` loads besides tensors and containers; exact types, so a numpy
float64 (a float subclass that pickles as numpy's) is not taken for one."""


class CheckpointError(SweeperError):
    """A checkpoint file sweeper will not load: one line naming it."""


def read(path: Path, name: str | None = None) -> Any:
    """Load a checkpoint file with `weights_only=True`; anything else in it is refused unrun.

    Args:
        path: the file.
        name: how the one line names it (a config field and the path); the path by default.

    Raises:
        CheckpointError: the file holds more than tensors and plain types, or is not a
            PyTorch file at all.
    """
    try:
        with warnings.catch_warnings():  # a bare pickle's protocol warning: not our one line
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        name = name or str(path)
        text = str(exc)
        found = re.search(
            r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|\n\n|$)", text, re.S
        )
        if found:
            raise CheckpointError(
                f"{name}: refused: it holds more than tensors and plain types "
                f"({' '.join(found[1].split())}); sweeper loads checkpoints with "
                "weights_only=True and runs nothing in them"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else "empty or cut short"
        raise CheckpointError(f"{name}: not a checkpoint: {type(exc).__name__}: {first}") from None


def read_state_dict(path: Path, field: str) -> dict[str, Any]:
    """Weights a config field names (pretrained, fine-tuning), loaded as `read` does.

    Raises:
        CheckpointError: one line naming the field and the file.
    """
    name = f"{field} {str(path)!r}"
    state = read(path, name)
    if not isinstance(state, dict):
        raise CheckpointError(f"{name}: not a state dict but a {type(state).__name__}")
    return state


def require_plain(value: Any, where: str) -> None:
    """Refuse to write what `read` would refuse: a trial must not find out at its resume.

    Raises:
        TypeError: naming the field that holds something else (a numpy array, a Path...).
    """
    if isinstance(value, torch.Tensor) or type(value) in PLAIN_SCALARS:
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            require_plain(item, f"{where}[{i}]")
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in PLAIN_SCALARS:
                raise TypeError(f"checkpoint field {where}: key {key!r} is not a plain type")
            require_plain(item, f"{where}.{key}" if where else str(key))
        return
    raise TypeError(
        f"checkpoint field {where}: {type(value).__name__} is not a tensor or plain type, "
        "so weights_only=True would not load it back"
    )


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
        """Whether saving now keeps the time spent saving under OVERHEAD."""
        return time.monotonic() - self._last_save >= self._cost / self.OVERHEAD

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None,
        state: dict[str, Any],
    ) -> None:
        """Write run_dir/checkpoint.pt atomically: `epoch` epochs done, `state` the loop's.

        Raises:
            TypeError: something in it is not a tensor or a plain type (`require_plain`).
            OSError: the file cannot be written (a full disk: the trial is requeued).
        """
        if self.path is None:
            return
        payload = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "state": state,
            "rng": _rng_state(),
        }
        require_plain(payload, "")
        started = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as file:  # a full disk is then OSError ENOSPC, not torch's
            torch.save(payload, file)  # "unexpected pos", so the trial is requeued
        os.replace(tmp, self.path)  # atomic: a kill mid-save leaves the last good checkpoint
        self._last_save = time.monotonic()
        self._cost = self._last_save - started

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None,
    ) -> tuple[int, dict[str, Any]]:
        """Load the last checkpoint if there is one; return (epochs done, loop state).

        Raises:
            CheckpointError: the file is refused or is not one of these checkpoints; the trial
                fails with that line rather than start over under the history it logged.
        """
        if self.path is None or not self.path.exists():
            return 0, {}
        try:
            return self._load(self.path, model, optimizer, scheduler)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc} (delete it to start the trial over)") from None

    @staticmethod
    def _load(
        path: Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None,
    ) -> tuple[int, dict[str, Any]]:
        payload = read(path)
        fields = {"epoch": int, "model": dict, "optimizer": dict, "state": dict, "rng": dict}
        if not isinstance(payload, dict) or not all(
            isinstance(payload.get(k), t) for k, t in fields.items()
        ):
            raise CheckpointError(f"{path}: not a checkpoint: expected {', '.join(fields)} in it")
        try:
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            if scheduler is not None and payload.get("scheduler") is not None:
                scheduler.load_state_dict(payload["scheduler"])
            _set_rng_state(payload["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(
                f"{path}: not a checkpoint of this trial: {type(exc).__name__}: {first}"
            ) from None
        return payload["epoch"], payload["state"]


def _rng_state() -> dict[str, Any]:
    """Every generator a trainer draws from, as tensors and plain types: python's state tuple
    as a list, numpy's legacy MT19937 as its state dict with the key as a tensor."""
    version, internal, gauss_next = random.getstate()
    numpy = np.random.get_state(legacy=False)
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": {
            "bit_generator": numpy["bit_generator"],
            "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy = rng["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy["bit_generator"],
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])

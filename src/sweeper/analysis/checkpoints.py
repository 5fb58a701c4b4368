"""Which run to analyse: its trainer, resolved config and saved weights, from the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sweeper.backends.local import LocalBackend
from sweeper.errors import NotFoundError, SweeperError
from sweeper.spec.paths import unflatten
from sweeper.trainers.common.checkpoint import CheckpointError, read

SAVED = ("best.pt", "checkpoint.pt")
"""In order of preference: the best epoch's weights (classify, reid and segment keep them),
else the last epoch's checkpoint that every trainer writes for resuming."""


@dataclass(frozen=True)
class RunSource:
    run_id: str
    trainer: str
    config: dict[str, Any]
    checkpoint: Path


def find_checkpoint(run_dir: Path) -> Path | None:
    """The run folder's saved weights in SAVED's order of preference; None when it has none."""
    return next((run_dir / name for name in SAVED if (run_dir / name).is_file()), None)


def locate(backend: LocalBackend, run_id: str) -> RunSource:
    """A run's trainer (its own record, else its sweep's), config and saved weights.

    Raises:
        NotFoundError: no run `run_id` in the store.
        SweeperError: the run records no trainer, or its folder holds no checkpoint.
    """
    run = backend.run(run_id)
    trainer = run["meta"].get("trainer")
    if trainer is None and run["sweep_id"]:
        trainer = backend.sweep(run["sweep_id"]).trainer
    if trainer is None:
        raise SweeperError(
            f"run {run_id} does not record its trainer (a `sweeper train` run from an older "
            "sweeper): train it again"
        )
    config = run["meta"].get("config") or unflatten(
        {k: v["value"] for k, v in run["params"].items()}
    )
    checkpoint = find_checkpoint(backend.run_dir(run_id))
    if checkpoint is None:
        raise SweeperError(
            f"run {run_id} has no checkpoint in {backend.run_dir(run_id)} (it kept no files, "
            f"or stopped before its first epoch ended; state {run['state']})"
        )
    return RunSource(run_id, trainer, config, checkpoint)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The model state of a sweeper checkpoint, or a bare state dict saved with torch.save.

    Raises:
        CheckpointError: a file `weights_only=True` refuses (nothing in it has run), or one
            with no model state dict in it.
    """
    payload = read(path)
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a checkpoint (no model state dict in it)")
    return state


def resolve_between(backend: LocalBackend, value: str) -> Path:
    """`--between` names a checkpoint file or another run of the store: the file to load.

    Raises:
        SweeperError: `value` is neither a file nor a run of the store, or the run has no
            checkpoint.
    """
    if Path(value).is_file():
        return Path(value)
    try:
        backend.run(value)
    except NotFoundError:
        raise SweeperError(
            f"--between {value}: neither a checkpoint file nor a run in {backend.location}"
        ) from None
    checkpoint = find_checkpoint(backend.run_dir(value))
    if checkpoint is None:
        raise SweeperError(f"--between {value}: that run has no checkpoint")
    return checkpoint

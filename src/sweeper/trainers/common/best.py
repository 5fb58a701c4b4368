"""The weights of the epoch with the best validation score: what a trainer scores on its test
split, and what `sweeper landscape` analyses."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sweeper.trainers.common.checkpoint import CheckpointError, read

FILENAME = "best.pt"


class BestModel:
    """Kept in memory, and in run_dir/best.pt when the trial keeps files, so a resumed trial
    still knows its best epoch. Higher scores are better; a tie keeps the earlier epoch."""

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / FILENAME if run_dir is not None else None
        self.score, self.epoch, self.state = float("-inf"), -1, None
        if self.path is not None and self.path.exists():
            self.score, self.epoch, self.state = self._read(self.path)

    @staticmethod
    def _read(path: Path) -> tuple[float, int, dict[str, torch.Tensor]]:
        """Raises CheckpointError for a refused file or one that is not a best epoch's."""
        saved = read(path)
        if not (
            isinstance(saved, dict)
            and isinstance(saved.get("score"), (int, float))
            and isinstance(saved.get("epoch"), int)
            and isinstance(saved.get("model"), dict)
            and all(isinstance(v, torch.Tensor) for v in saved["model"].values())
        ):
            raise CheckpointError(
                f"{path}: not a best-epoch file (score, epoch, model) (delete it to start the "
                "trial over)"
            )
        return float(saved["score"]), saved["epoch"], saved["model"]

    def update(self, score: float, epoch: int, model: nn.Module) -> None:
        """Keep the model's weights (a CPU copy, and best.pt) if `score` beats the best so far.

        Raises:
            OSError: best.pt cannot be written (a full disk: the trial is requeued).
        """
        if not score > self.score:  # also refuses NaN
            return
        self.score, self.epoch = float(score), epoch  # a numpy score would not load back
        self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if self.path is not None:
            payload: dict[str, Any] = {"score": self.score, "epoch": epoch, "model": self.state}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as file:  # a full disk is then OSError ENOSPC, not torch's
                torch.save(payload, file)  # "unexpected pos", so the trial is requeued
            os.replace(tmp, self.path)  # atomic: a kill mid-save keeps the previous best

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into `model`; nothing when no epoch was scored."""
        if self.state is not None:
            model.load_state_dict(self.state)

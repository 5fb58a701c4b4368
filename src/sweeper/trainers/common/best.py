"""The weights of the epoch with the best validation score: what a trainer scores on its test
split, and what `sweeper landscape` analyses."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

FILENAME = "best.pt"


class BestModel:
    """Kept in memory, and in run_dir/best.pt when the trial keeps files, so a resumed trial
    still knows its best epoch. Higher scores are better; a tie keeps the earlier epoch."""

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / FILENAME if run_dir is not None else None
        self.score, self.epoch, self.state = float("-inf"), -1, None
        if self.path is not None and self.path.exists():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            self.score, self.epoch, self.state = saved["score"], saved["epoch"], saved["model"]

    def update(self, score: float, epoch: int, model: nn.Module) -> None:
        if not score > self.score:  # also refuses NaN
            return
        self.score, self.epoch = score, epoch
        self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if self.path is not None:
            payload: dict[str, Any] = {"score": score, "epoch": epoch, "model": self.state}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            torch.save(payload, tmp)
            os.replace(tmp, self.path)  # atomic: a kill mid-save keeps the previous best

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)

"""The weights of the epoch with the best validation Dice: the model the test split scores."""

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
    still knows its best epoch."""

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / FILENAME if run_dir is not None else None
        self.dice, self.epoch, self.state = -1.0, -1, None
        if self.path is not None and self.path.exists():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            self.dice, self.epoch, self.state = saved["dice"], saved["epoch"], saved["model"]

    def update(self, dice: float, epoch: int, model: nn.Module) -> None:
        if dice <= self.dice:
            return
        self.dice, self.epoch = dice, epoch
        self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if self.path is not None:
            payload: dict[str, Any] = {"dice": dice, "epoch": epoch, "model": self.state}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            torch.save(payload, tmp)
            os.replace(tmp, self.path)  # atomic: a kill mid-save keeps the previous best

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)

"""What every reader returns: images as read (uint8, or float in [0, 1]) with integer labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Source:
    """A data set as read, before conversion, splitting and normalisation (`load_data`)."""

    x_train: torch.Tensor
    """(N, C, H, W) images, or (N, F) feature vectors."""
    y_train: torch.Tensor
    classes: list[str]
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None

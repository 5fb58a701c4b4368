"""What a trainer hands back when asked to rebuild a run without training it: the analysis
tools (the loss landscape) score a checkpoint's weights on the run's own data and objective."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Split = Literal["train", "val"]

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, int]]
"""`loss(model, batch) -> (sum of the per-item losses, number of items)`, in eval mode, no
gradients: summing over batches and dividing by the items gives the split's mean loss."""


@dataclass
class Rebuilt:
    """A run's model, a fixed set of batches and the loss to score them with: what
    `sweeper landscape` evaluates at every point of its grid."""

    model: nn.Module
    """The model of the trainer's `build(config, device)`, untrained: the caller loads
    weights."""
    batches: Iterable[Any]
    """The split's batches, never augmented, iterable again and again in the same order."""
    loss: LossFn
    device: torch.device
    described: str
    """What was scored, for the output: e.g. 'val split, 400 images, cross-entropy'."""


def first(n_items: int, limit: int | None) -> int:
    """How many items of a split to score: all of them, or the first `limit`."""
    return n_items if limit is None else min(n_items, limit)

"""What a trainer's `build(config, device)` hands back: the model, data and loss of a trial,
assembled in one place so that training and the loss landscape (`sweeper landscape`, through
the trainer's rebuild) start from the very same objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import nn

ConfigT = TypeVar("ConfigT")
ModelT = TypeVar("ModelT", bound=nn.Module)
DataT = TypeVar("DataT")
LossT = TypeVar("LossT")


@dataclass
class Built(Generic[ConfigT, ModelT, DataT, LossT]):
    """Built after `seed_everything(config.seed, config.deterministic)`, so two builds of one
    config hold the same data order, augmentation draws and initial weights."""

    config: ConfigT
    """The validated trainer config it was built from."""
    device: torch.device
    model: ModelT
    """On `device`, freshly initialised (or from its configured pretrained weights)."""
    data: DataT
    """The trainer's own: tensors on `device` (classify, xor) or DataLoaders (reid, segment)."""
    loss: LossT
    """The training objective, a module mapping (model outputs, targets) to a mean loss."""

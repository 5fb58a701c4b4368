"""The segment trial's model, data and loss, assembled once for training and for the landscape."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.common.build import Built
from sweeper.trainers.common.seed import seed_everything
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.loaders import Loaders, build_loaders
from sweeper.trainers.segment.losses import SegmentationLoss
from sweeper.trainers.segment.models import build_model

SegmentBuilt = Built[SegmentConfig, nn.Module, Loaders, SegmentationLoss]


def build(config: SegmentConfig, device: torch.device) -> SegmentBuilt:
    """Seed, then the train/val/test loaders of the seeded split (the stand-in generated first
    when asked), the smp model and the Dice/BCE loss.

    Raises:
        SweeperError: the data is missing, an image and its mask differ in size, the split
            cannot be filled, or model.encoder_weights does not fit the encoder.
    """
    generator = seed_everything(config.seed, config.deterministic)
    loaders = build_loaders(config, generator, pin=device.type == "cuda")
    model = build_model(config.model).to(device)
    return Built(config, device, model, loaders, SegmentationLoss(config.loss))

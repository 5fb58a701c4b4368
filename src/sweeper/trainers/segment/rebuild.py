"""Rebuild a segment run's model, X-ray split and loss without training (for analysis)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from sweeper.trainers.common.rebuild import Rebuilt, Split, first
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.loaders import build_loaders
from sweeper.trainers.segment.engine import prepare
from sweeper.trainers.segment.losses import SegmentationLoss
from sweeper.trainers.segment.models import build_model


def rebuild(
    config: SegmentConfig, split: Split, device: torch.device, limit: int | None = None
) -> Rebuilt:
    """The run's own seeded train/val split; training images without their augmentation. The
    loss is the run's (Dice, BCE or both), weighted by batch size as its validation loss is."""
    loaders = build_loaders(config, torch.Generator(), pin=False)  # the split is seeded apart
    dataset = (loaders.train if split == "train" else loaders.val).dataset
    dataset.augment = None  # a fresh dataset of this call: score the images as they are
    n = first(len(dataset), limit)
    loader = DataLoader(Subset(dataset, range(n)), batch_size=config.data.eval_batch_size)
    # Decoded once: a landscape scores the same images at every grid point.
    batches = [prepare(images, masks, device) for images, masks in loader]
    model = build_model(config.model).to(device)
    objective = SegmentationLoss(config.loss)

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        images, masks = batch
        return objective(model(images).float(), masks) * len(images), len(images)

    return Rebuilt(
        model=model,
        batches=batches,
        loss=loss,
        device=device,
        described=f"{split} split, {n} images, {config.loss.name} loss",
    )

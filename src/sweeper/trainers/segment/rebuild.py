"""Rebuild a segment run's model, X-ray split and loss without training (for analysis)."""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from sweeper.trainers.common.rebuild import Rebuilt, Split, first
from sweeper.trainers.segment.build import SegmentBuilt
from sweeper.trainers.segment.data.loaders import XrayDataset
from sweeper.trainers.segment.engine import prepare


def rebuild(built: SegmentBuilt, split: Split, limit: int | None = None) -> Rebuilt:
    """The run's own seeded train/val split; training images without their augmentation. The
    loss is the run's (Dice, BCE or both), weighted by batch size as its validation loss is."""
    config, device, objective = built.config, built.device, built.loss
    loader = built.data.train if split == "train" else built.data.val
    dataset = copy.copy(
        cast(XrayDataset, loader.dataset)
    )  # shares the decoded images; the training one keeps
    dataset.augment = None  # its augmentation: score the images as they are
    n = first(len(dataset), limit)
    plain = DataLoader(Subset(dataset, range(n)), batch_size=config.data.eval_batch_size)
    # Decoded once: a landscape scores the same images at every grid point.
    batches = [prepare(images, masks, device) for images, masks in plain]

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        images, masks = batch
        return objective(model(images).float(), masks) * len(images), len(images)

    return Rebuilt(
        model=built.model,
        batches=batches,
        loss=loss,
        device=device,
        described=f"{split} split, {n} images, {config.loss.name} loss",
    )

"""Dice, BCE, or their weighted sum on one logit per pixel (smp.losses)."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import DiceLoss, SoftBCEWithLogitsLoss
from torch import nn

from sweeper.trainers.segment.config import SegmentLoss


class SegmentationLoss(nn.Module):
    """Dice loss (1 - soft Dice, Milletari et al. 2016, "V-Net"), binary cross-entropy, or
    dice_weight * Dice + bce_weight * BCE."""

    def __init__(self, cfg: SegmentLoss) -> None:
        super().__init__()
        self.dice = DiceLoss("binary", from_logits=True) if cfg.name != "bce" else None
        self.bce = SoftBCEWithLogitsLoss() if cfg.name != "dice" else None
        both = cfg.name == "dice_bce"
        self.dice_weight = cfg.dice_weight if both else 1.0
        self.bce_weight = cfg.bce_weight if both else 1.0

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """A scalar for logits [B, 1, H, W] against masks [B, 1, H, W] of 0.0/1.0."""
        loss = logits.new_zeros(())
        if self.dice is not None:
            loss = loss + self.dice_weight * self.dice(logits, masks)
        if self.bce is not None:
            loss = loss + self.bce_weight * self.bce(logits, masks)
        return loss

"""Training and evaluation passes over the loaders; mixed precision on CUDA when asked."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from sweeper.trainers.common.precision import Precision
from sweeper.trainers.logger import Logger
from sweeper.trainers.segment.metrics import MaskStats

MEAN, STD = 0.5, 0.25
"""Fixed grayscale normalisation: X-ray sets differ in exposure, augmentation shifts it too."""


def prepare(
    images: torch.Tensor, masks: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 batches [B, 1, H, W] travel (4x less to copy), then become float32 there:
    images normalised by MEAN and STD, masks 0.0/1.0."""
    images = images.to(device, non_blocking=True).float().div_(255).sub_(MEAN).div_(STD)
    return images, masks.to(device, non_blocking=True).float()


class Engine:
    """A model, its loss and optimizer; mixed precision on CUDA when asked."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        amp: bool,
    ) -> None:
        self.model, self.loss_fn, self.optimizer, self.device = model, loss_fn, optimizer, device
        self.precision = Precision(device, amp)

    def to_device(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`prepare` on this engine's device."""
        return prepare(images, masks, self.device)

    def train_epoch(
        self, loader: DataLoader, epoch: int, logger: Logger, log_every: int = 0
    ) -> float:
        """One shuffled pass; the mean loss per image. Every `log_every` batches the window's
        mean loss goes to `logger.log_batch` at the global batch index."""
        self.model.train()
        total = torch.zeros((), device=self.device)
        window = torch.zeros((), device=self.device)
        seen = 0
        for i, (images, masks) in enumerate(loader, start=1):
            images, masks = self.to_device(images, masks)
            loss = self.precision.step(self.model, self.loss_fn, images, masks, self.optimizer)
            loss = loss.detach()
            total += loss * len(images)
            seen += len(images)
            if log_every:
                window += loss
                if i % log_every == 0:
                    batch = epoch * len(loader) + i
                    logger.log_batch({"train/batch_loss": (window / log_every).item()}, batch)
                    window.zero_()
        return (total / seen).item()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B, 1, H, W] float32 of a normalised batch, in eval mode."""
        self.model.eval()
        with self.precision.autocast():
            return self.model(images).float()

    def evaluate(self, loader: DataLoader) -> dict[str, float]:
        """Mean loss, Dice, IoU and pixel accuracy over a split, never augmented."""
        stats, total, seen = MaskStats(), torch.zeros((), device=self.device), 0
        for images, masks in loader:
            images, masks = self.to_device(images, masks)
            logits = self.predict(images)
            total += self.loss_fn(logits, masks) * len(images)
            seen += len(images)
            stats.update(logits, masks)
        return {"loss": (total / seen).item(), **stats.compute()}

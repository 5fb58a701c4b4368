"""Rebuild a classify or xor run's model, data and loss without training (for analysis)."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.classify.build import ClassifyBuilt
from sweeper.trainers.classify.xor import XorBuilt
from sweeper.trainers.common.rebuild import Rebuilt, Split, first


def _chunks(
    x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


def rebuild(built: ClassifyBuilt, split: Split, limit: int | None = None) -> Rebuilt:
    """`val` is the split the trainer scores its epochs on: validation, or test without one.

    Raises:
        SweeperError: `val` asked for where the run has neither a validation nor a test split.
    """
    config, data, objective = built.config, built.data, built.loss
    chosen = data.train if split == "train" else data.scored()
    n = first(len(chosen), limit)

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        x, y = batch
        return objective(model(x).float(), y) * len(y), len(y)

    return Rebuilt(
        model=built.model,
        batches=_chunks(chosen.x[:n], chosen.y[:n], config.data.test_batch_size),
        loss=loss,
        device=built.device,
        described=f"{split} split, {n} images, {config.loss.name}",
    )


def rebuild_xor(built: XorBuilt, split: Split, limit: int | None = None) -> Rebuilt:
    """The same seeded points the run trained on; `val` is its held-out set."""
    x_train, y_train, x_test, y_test = built.data
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    n = first(len(y), limit)
    bce = built.loss

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        x, y = batch
        return bce(model(x).squeeze(1), y) * len(y), len(y)

    return Rebuilt(
        model=built.model,
        batches=[(x[:n], y[:n])],
        loss=loss,
        device=built.device,
        described=f"{split} split, {n} points, binary cross-entropy",
    )

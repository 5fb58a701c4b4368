"""Rebuild a classify or xor run's model, data and loss without training (for analysis)."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.classify.config import ClassifyConfig, XorConfig
from sweeper.trainers.classify.data.build import load_data
from sweeper.trainers.classify.losses import make_objective
from sweeper.trainers.classify.models.build import build_model
from sweeper.trainers.classify.xor import make_mlp, xor_data
from sweeper.trainers.common.rebuild import Rebuilt, Split, first


def _chunks(
    x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


def rebuild(
    config: ClassifyConfig, split: Split, device: torch.device, limit: int | None = None
) -> Rebuilt:
    """`val` is the split the trainer scores its epochs on: validation, or test without one."""
    data = load_data(config.data, device)
    chosen = data.train if split == "train" else data.scored()
    n = first(len(chosen), limit)
    objective = make_objective(config.loss, len(data.classes))
    model = build_model(config.model, data.shape, objective.n_outputs).to(device)

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        x, y = batch
        return objective(model(x).float(), y) * len(y), len(y)

    return Rebuilt(
        model=model,
        batches=_chunks(chosen.x[:n], chosen.y[:n], config.data.test_batch_size),
        loss=loss,
        device=device,
        described=f"{split} split, {n} images, {config.loss.name}",
    )


def rebuild_xor(
    config: XorConfig, split: Split, device: torch.device, limit: int | None = None
) -> Rebuilt:
    """The same seeded points the run trained on; `val` is its held-out set."""
    x_train, y_train, x_test, y_test = xor_data(config, device)
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    n = first(len(y), limit)
    model = make_mlp(config.model.depth, config.model.width, config.model.activation).to(device)
    bce = nn.BCEWithLogitsLoss(reduction="sum")

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        x, y = batch
        return bce(model(x).squeeze(1), y), len(y)

    return Rebuilt(
        model=model,
        batches=[(x[:n], y[:n])],
        loss=loss,
        device=device,
        described=f"{split} split, {n} points, binary cross-entropy",
    )

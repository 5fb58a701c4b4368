"""Rebuild a re-id run's network, training images and identity loss without training.

The loss is the identity cross-entropy (with the run's label smoothing) over the training
identities: the classifier's objective, defined per image. The triplet term is left out: it
depends on how a batch is drawn (P x K), so it has no fixed value on a fixed set. Only the
training split has identities the classifier knows: query and gallery vehicles are new ones.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from sweeper.errors import SweeperError
from sweeper.trainers.common.rebuild import Rebuilt, Split, first
from sweeper.trainers.reid.build import ReidBuilt
from sweeper.trainers.reid.models import ReidNet


def rebuild(built: ReidBuilt, split: Split, limit: int | None = None) -> Rebuilt:
    """The first `limit` training images under the evaluation transform, decoded once.

    Raises:
        SweeperError: `split` is not "train".
    """
    if split != "train":
        raise SweeperError(
            "reid: only --split train has identities the classifier was trained on "
            "(query and gallery vehicles are new ones); use --split train"
        )
    config, device = built.config, built.device
    dataset = built.data.plain_train
    n = first(len(dataset), limit)
    loader = DataLoader(
        Subset(dataset, range(n)),
        batch_size=config.eval.batch_size,
        num_workers=config.data.workers,
    )
    # Decoded once: a landscape scores the same images at every grid point.
    batches = [(images.to(device), pids.to(device)) for images, pids, _ in loader]
    xent = built.loss.xent

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        images, pids = batch
        net = cast(ReidNet, model)  # the landscape passes back the model built here
        logits = net.classifier(net(images))  # eval mode: features, then the identity head
        return xent(logits.float(), pids) * len(pids), len(pids)

    return Rebuilt(
        model=built.model,
        batches=batches,
        loss=loss,
        device=device,
        described=f"train split, {n} images, identity cross-entropy",
    )

"""Rebuild a re-id run's network, training images and identity loss without training.

The loss is the identity cross-entropy (with the run's label smoothing) over the training
identities: the classifier's objective, defined per image. The triplet term is left out: it
depends on how a batch is drawn (P x K), so it has no fixed value on a fixed set. Only the
training split has identities the classifier knows: query and gallery vehicles are new ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from sweeper.errors import SweeperError
from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.common.rebuild import Rebuilt, Split, first
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.loaders import ImageDataset
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.reid.data.transforms import build_transforms
from sweeper.trainers.reid.data.veri import load_veri
from sweeper.trainers.reid.losses import ReidCriterion
from sweeper.trainers.reid.models import build_model


def rebuild(
    config: ReidConfig, split: Split, device: torch.device, limit: int | None = None
) -> Rebuilt:
    if split != "train":
        raise SweeperError(
            "reid: only --split train has identities the classifier was trained on "
            "(query and gallery vehicles are new ones); use --split train"
        )
    data = config.data
    if data.synthetic:
        ensure_generated(data.root, write_veri)
    veri = load_veri(data.root)
    _, eval_tf = build_transforms(data.image_size, data.augment)
    dataset = ImageDataset(veri.train, eval_tf)
    n = first(len(dataset), limit)
    loader = DataLoader(
        Subset(dataset, range(n)), batch_size=config.eval.batch_size, num_workers=data.workers
    )
    # Decoded once: a landscape scores the same images at every grid point.
    batches = [(images.to(device), pids.to(device)) for images, pids, _ in loader]
    model = build_model(config, veri.num_train_ids).to(device)
    xent = ReidCriterion(config.loss).xent

    def loss(
        model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        images, pids = batch
        logits = model.classifier(model(images))  # eval mode: features, then the identity head
        return xent(logits.float(), pids) * len(pids), len(pids)

    return Rebuilt(
        model=model,
        batches=batches,
        loss=loss,
        device=device,
        described=f"train split, {n} images, identity cross-entropy",
    )

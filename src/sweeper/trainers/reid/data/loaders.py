"""Datasets and loaders for one trial: training batches, query and gallery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from sweeper.errors import SweeperError
from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.reid.data.transforms import build_transforms
from sweeper.trainers.reid.data.veri import Item, load_veri
from sweeper.trainers.reid.samplers import RandomIdentitySampler


class ImageDataset(Dataset):
    """(image, vehicle id, camera id) per item: the image a [3, H, W] float32 tensor,
    normalised by the transform (ImageNet mean and std)."""

    def __init__(self, items: list[Item], transform: Callable) -> None:
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        item = self.items[index]
        with Image.open(item.path) as image:
            return self.transform(image.convert("RGB")), item.pid, item.camid


@dataclass
class Loaders:
    """What a re-id trial reads: training batches, query and gallery."""

    train: DataLoader
    """Augmented training batches: ([B, 3, H, W] float32, relabelled ids [B], cameras [B])."""
    query: DataLoader
    gallery: DataLoader
    """Query and gallery batches in file order, never augmented, with the raw ids."""
    num_classes: int
    """Training identities: the classifier's outputs."""
    plain_train: ImageDataset
    """The training images under the evaluation transform (what the loss landscape scores)."""


def build_loaders(config: ReidConfig, generator: torch.Generator, device: torch.device) -> Loaders:
    """Loaders of one trial; `generator` draws the training order and identity batches.

    Raises:
        SweeperError: the data is missing or not a VeRi-776 layout, or the random sampler's
            batch is larger than the training set (the identity sampler raises its own).
    """
    data = config.data
    if data.synthetic:
        ensure_generated(data.root, write_veri)
    veri = load_veri(data.root)
    train_tf, eval_tf = build_transforms(data.image_size, data.augment)
    loader = partial(DataLoader, num_workers=data.workers, pin_memory=device.type == "cuda")
    keep = data.workers > 0  # training workers live across epochs; evaluation ones do not
    train_set = ImageDataset(veri.train, train_tf)
    if data.sampler == "identity":
        pids = [item.pid for item in veri.train]
        sampler = RandomIdentitySampler(pids, data.batch_size, data.num_instances, generator)
        train = loader(
            train_set, batch_sampler=sampler, generator=generator, persistent_workers=keep
        )
    else:
        if len(train_set) < data.batch_size:
            raise SweeperError(
                f"the training set has {len(train_set)} images, fewer than data.batch_size "
                f"{data.batch_size}"
            )
        train = loader(
            train_set,
            batch_size=data.batch_size,
            shuffle=True,
            drop_last=True,
            generator=generator,
            persistent_workers=keep,
        )
    batch = config.eval.batch_size
    query = loader(ImageDataset(veri.query, eval_tf), batch_size=batch)
    gallery = loader(ImageDataset(veri.gallery, eval_tf), batch_size=batch)
    plain_train = ImageDataset(veri.train, eval_tf)
    return Loaders(train, query, gallery, veri.num_train_ids, plain_train)

"""Train/val/test loaders over (image, mask) pairs, decoded once into memory when they fit."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import cast

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sweeper.errors import SweeperError
from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.augment import build_augment
from sweeper.trainers.segment.data.images import check_sizes, decode
from sweeper.trainers.segment.data.layouts import Listing, Pair, list_pairs
from sweeper.trainers.segment.data.synthetic import write_xray


class XrayDataset(Dataset):
    """(image, mask) as [1, H, W] uint8 tensors (H = W = size; mask 0/1); the engine
    normalises on the device."""

    def __init__(
        self, pairs: list[Pair], size: int, cached: bool, augment: A.Compose | None = None
    ) -> None:
        self.pairs, self.size, self.augment = pairs, size, augment
        self.cache = [decode(pair, size) for pair in pairs] if cached else None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.cache[index] if self.cache else decode(self.pairs[index], self.size)
        if self.augment is not None:
            out = self.augment(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return torch.from_numpy(image)[None], torch.from_numpy(mask)[None]


@dataclass
class Loaders:
    """What a segment trial reads: train (augmented, shuffled), val and test batches."""

    train: DataLoader
    val: DataLoader
    test: DataLoader | None
    listing: Listing

    def sizes(self) -> dict[str, float]:
        """Images per split, and those skipped for want of a mask (summary metrics)."""
        return {
            "n_train": float(len(cast(XrayDataset, self.train.dataset))),
            "n_val": float(len(cast(XrayDataset, self.val.dataset))),
            "n_test": (
                float(len(cast(XrayDataset, self.test.dataset))) if self.test is not None else 0.0
            ),
            "n_skipped": float(self.listing.skipped),
        }


def split(n: int, val: float, test: float, seed: int) -> tuple[list[int], ...]:
    """Seeded (train, val, test) indices of n images; val holds at least one image.

    Raises:
        SweeperError: no image would be left to train on.
    """
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_test, n_val = round(n * test), max(1, round(n * val))
    if n - n_test - n_val < 1:
        raise SweeperError(
            f"{n} images cannot fill train, validation and test splits; "
            "lower data.val_fraction / data.test_fraction or add images"
        )
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def build_loaders(config: SegmentConfig, generator: torch.Generator, pin: bool) -> Loaders:
    """The split by data.split_seed, decoded into memory when it fits data.cache_mb;
    `generator` draws the training order.

    Raises:
        SweeperError: the data is missing or unusable, or the split cannot be filled.
    """
    data = config.data
    if data.synthetic:
        ensure_generated(data.root, write_xray)
    listing = list_pairs(data.root, data.layout)
    if listing.skipped:
        print(f"{listing.skipped} images under {data.root} have no mask: skipped", flush=True)
    for pair in listing.pairs:
        check_sizes(pair)
    cached = len(listing.pairs) * data.image_size**2 * 2 <= data.cache_mb * 2**20
    train_ids, val_ids, test_ids = split(
        len(listing.pairs), data.val_fraction, data.test_fraction, data.split_seed
    )

    def subset(ids: list[int], augment: A.Compose | None = None) -> XrayDataset:
        return XrayDataset([listing.pairs[i] for i in ids], data.image_size, cached, augment)

    loader = partial(
        DataLoader, num_workers=data.workers, pin_memory=pin, persistent_workers=data.workers > 0
    )
    train = loader(
        subset(train_ids, build_augment(config.aug, config.seed)),
        batch_size=data.batch_size,
        shuffle=True,
        generator=generator,
    )
    val = loader(subset(val_ids), batch_size=data.eval_batch_size)
    test = None
    if test_ids:
        test = loader(subset(test_ids), batch_size=data.eval_batch_size)
    return Loaders(train, val, test, listing)

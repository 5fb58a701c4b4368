"""X-rays with their lung mask overlaid, before and after the albumentations pipeline, for
`sweeper augment`: the trainer's own dataset and pipeline, image and mask augmented together."""

from __future__ import annotations

import numpy as np
import torch

from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.augment import build_augment
from sweeper.trainers.segment.data.images import check_sizes
from sweeper.trainers.segment.data.layouts import list_pairs
from sweeper.trainers.segment.data.loaders import XrayDataset
from sweeper.trainers.segment.data.synthetic import write_xray
from sweeper.trainers.segment.overlays import overlay


def preview(config: SegmentConfig, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, augmented) HWC uint8 pairs for n seeded images, the mask tinted green."""
    data = config.data
    if data.synthetic:
        ensure_generated(data.root, write_xray)
    pairs = list_pairs(data.root, data.layout).pairs
    chosen = [pairs[i] for i in np.random.default_rng(seed).permutation(len(pairs))[:n]]
    for pair in chosen:
        check_sizes(pair)
    size = data.image_size
    original = XrayDataset(chosen, size, cached=False)
    augmented = XrayDataset(chosen, size, cached=False, augment=build_augment(config.aug, seed))
    return [(_tinted(*original[i]), _tinted(*augmented[i])) for i in range(len(chosen))]


def _tinted(image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(1, H, W) uint8 image and 0/1 mask -> (H, W, 3) with the lung tinted."""
    truth = mask[0].numpy()
    return overlay(image[0].numpy(), truth, np.zeros_like(truth))

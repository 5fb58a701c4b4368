"""scikit-learn's bundled 8x8 digits: 1,797 real images, available offline."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from sweeper.trainers.classify.data.source import Source

GRAY_LEVELS = 16.0
"""The digits' pixel values run 0..16."""


def read_digits() -> Source:
    """The 1,797 images as float32 [N, 1, 8, 8] in [0, 1], labels [N] int64 0-9."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / GRAY_LEVELS
    return Source(images, torch.tensor(digits.target), [str(d) for d in range(10)])

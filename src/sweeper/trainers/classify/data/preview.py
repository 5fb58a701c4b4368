"""Training images before and after the configured augmentations (`sweeper augment`).

The same reader and batch augmentation as training, so the picture shows what trials see.
"""

from __future__ import annotations

import numpy as np
import torch

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.classify.data.augment import Augment
from sweeper.trainers.classify.data.build import Data, load_data


def preview(config: ClassifyConfig, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, augmented) HWC uint8 pairs for n seeded training images.

    Raises:
        SweeperError: the data set holds feature vectors, or cannot be read.
    """
    if len(config.data.shape()) == 1:
        raise SweeperError(f"data {config.data.name!r} holds feature vectors: no images to show")
    data = load_data(config.data, torch.device("cpu"))
    chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n]
    x = data.train.x[chosen]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        augmented = Augment(config.aug, data.mean, data.std)(x)
    return list(zip(_pixels(x, data), _pixels(augmented, data), strict=True))


def _pixels(x: torch.Tensor, data: Data) -> list[np.ndarray]:
    pixels = (x * data.std + data.mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return [image.permute(1, 2, 0).numpy() for image in pixels]

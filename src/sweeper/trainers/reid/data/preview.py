"""Training images before (evaluation transform) and after the training transform, for
`sweeper augment`: the trainer's own datasets and transforms, so the picture is what trials see."""

from __future__ import annotations

import numpy as np
import torch

from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.loaders import ImageDataset
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.reid.data.transforms import MEAN, STD, build_transforms
from sweeper.trainers.reid.data.veri import load_veri


def preview(config: ReidConfig, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, augmented) HWC uint8 pairs for n seeded training images."""
    data = config.data
    if data.synthetic:
        ensure_generated(data.root, write_veri)
    items = load_veri(data.root).train
    train_tf, eval_tf = build_transforms(data.image_size, data.augment)
    original, augmented = ImageDataset(items, eval_tf), ImageDataset(items, train_tf)
    chosen = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:n]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [(_pixels(original[i][0]), _pixels(augmented[i][0])) for i in chosen.tolist()]


def _pixels(tensor: torch.Tensor) -> np.ndarray:
    pixels = tensor * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    return pixels.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()

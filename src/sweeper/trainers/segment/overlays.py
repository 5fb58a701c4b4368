"""Validation pictures with the true (green) and predicted (red) lung masks over the X-ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

TRUE, PREDICTED = np.array([0, 255, 0]), np.array([255, 0, 0])
ALPHA = 0.4


def overlay(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the grayscale image tinted green where the mask is, red where the
    model says lung (yellow where both agree)."""
    rgb = np.repeat(image[..., None].astype(np.float32), 3, axis=2)
    tint = truth[..., None] * TRUE + predicted[..., None] * PREDICTED
    covered = (truth | predicted)[..., None].astype(bool)
    blended = np.where(covered, (1 - ALPHA) * rgb + ALPHA * np.clip(tint, 0, 255), rgb)
    return blended.round().astype(np.uint8)


def write_overlays(
    images: torch.Tensor, masks: torch.Tensor, logits: torch.Tensor, folder: Path
) -> list[Path]:
    """One PNG per image: uint8 (N, 1, H, W) images and 0/1 masks, logits of the same shape."""
    folder.mkdir(parents=True, exist_ok=True)
    predicted = (logits > 0).to(torch.uint8).cpu().numpy()
    paths = []
    for i, (image, truth) in enumerate(zip(images.numpy(), masks.numpy(), strict=True)):
        path = folder / f"val_{i:02d}.png"
        Image.fromarray(overlay(image[0], truth[0], predicted[i, 0])).save(path)
        paths.append(path)
    return paths

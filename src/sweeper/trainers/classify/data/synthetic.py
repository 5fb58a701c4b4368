"""A small two-class ImageFolder set (circles vs squares) for tests, demos and --smoke runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 32
COUNTS = {"train": 60, "test": 20}
"""Images per class in each split."""


def _draw(shape: str, rng: np.random.Generator) -> Image.Image:
    background = rng.integers(0, 96, size=3)
    pixels = background + rng.normal(0, 12, size=(SIZE, SIZE, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    half = int(rng.integers(5, 10))
    cx, cy = (int(c) for c in rng.integers(half + 1, SIZE - half - 1, size=2))
    box = (cx - half, cy - half, cx + half, cy + half)
    colour = tuple(int(c) for c in rng.integers(128, 256, size=3))
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    else:
        draw.rectangle(box, fill=colour)
    return image


def write_shapes(out: str | Path, seed: int = 0) -> Path:
    """Write out/{train,test}/{circle,square}/NNN.png, 32x32 RGB; return out."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for split, count in COUNTS.items():
        for shape in ("circle", "square"):
            folder = out / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                _draw(shape, rng).save(folder / f"{i:03d}.png")
    return out

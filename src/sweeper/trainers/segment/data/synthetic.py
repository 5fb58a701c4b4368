"""A small chest-X-ray-like set in the generic images/ + masks/ layout, for tests and --smoke.

Each picture is a body outline holding two lung fields (dark) cut by the heart, crossed by
ribs and the spine (bright, in the image only), with per-image pose, contrast, gamma and
noise, so a model has to find lung shapes rather than a fixed threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _ellipse(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, rx: float, ry: float):
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1


def draw_xray(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (image, mask) pair as uint8 arrays; the mask is 0 or 255."""
    axis = np.linspace(-1, 1, size)
    scale, dx, dy = rng.uniform(0.85, 1.1), rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08)
    xx, yy = np.meshgrid((axis - dx) / scale, (axis - dy) / scale)
    body = _ellipse(xx, yy, 0, 0.1, rng.uniform(0.78, 0.9), 1.05)
    heart = _ellipse(xx, yy, rng.uniform(0.05, 0.15), 0.4, rng.uniform(0.22, 0.3), 0.25)
    lungs = np.zeros_like(body)
    for side in (-1, 1):
        cx, cy = side * rng.uniform(0.33, 0.42), rng.uniform(-0.1, 0.0)
        lungs |= _ellipse(xx, yy, cx, cy, rng.uniform(0.2, 0.27), rng.uniform(0.45, 0.55))
    lungs &= body & ~heart
    image = np.where(body, 0.6, 0.05) - 0.35 * lungs + 0.1 * heart
    phase = rng.uniform(0, 0.2)
    for k in range(7):  # ribs: arcs curving down towards the sides
        arc = -0.75 + phase + 0.24 * k + 0.3 * xx**2
        image += 0.12 * (body & (np.abs(yy - arc) < 0.03))
    image += 0.2 * (body & (np.abs(xx) < 0.06))  # spine
    image = np.clip(image * rng.uniform(0.7, 1.3) + rng.uniform(-0.1, 0.1), 0, 1)
    image = image ** rng.uniform(0.7, 1.4) + rng.normal(0, rng.uniform(0.02, 0.08), image.shape)
    pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return pixels, lungs.astype(np.uint8) * 255


def write_xray(out: str | Path, seed: int = 0, n: int = 48, size: int = 128) -> Path:
    """Write out/images/xray_NNN.png and out/masks/xray_NNN.png (n pairs, size x size)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, mask = draw_xray(rng, size)
        Image.fromarray(image).save(out / "images" / f"xray_{i:03d}.png")
        Image.fromarray(mask).save(out / "masks" / f"xray_{i:03d}.png")
    return out

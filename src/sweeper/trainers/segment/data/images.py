"""Decoding one pair: grayscale image and binary lung mask, checked and resized together."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sweeper.errors import SweeperError
from sweeper.trainers.segment.data.layouts import Pair

BINARY_LEVELS = ((0, 255), (0, 1))
"""Masks are 0/255 (Montgomery, Shenzhen) or 0/1 (some exports)."""


def check_sizes(pair: Pair) -> None:
    """Masks must match their image pixel for pixel (read from the headers only).

    Raises:
        SweeperError: a mask's width or height differs from its image's.
    """
    with Image.open(pair.image) as image:
        size = image.size
    for path in pair.masks:
        with Image.open(path) as mask:
            if mask.size != size:
                raise SweeperError(
                    f"mask {path} is {mask.width}x{mask.height} but its image {pair.image} "
                    f"is {size[0]}x{size[1]}"
                )


def _mask(pair: Pair, size: int) -> np.ndarray:
    union = None
    for path in pair.masks:
        with Image.open(path) as file:
            pixels = np.asarray(file.convert("L"))
        if not any(np.isin(pixels, levels).all() for levels in BINARY_LEVELS):
            values = np.unique(pixels)
            shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
            raise SweeperError(
                f"mask {path} is not binary: it holds {shown} (expected 0 and 255, or 0 and 1)"
            )
        lung = pixels > 0
        union = lung if union is None else union | lung
    if union is None:  # the layouts skip an image without a mask; this says so if one did not
        raise SweeperError(f"image {pair.image} has no mask")
    resized = Image.fromarray(union.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    return np.array(resized)


def decode(pair: Pair, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) as (size, size) uint8 arrays: grayscale 0-255 (bilinear), mask 0/1
    (nearest; the union of the pair's mask files).

    Raises:
        SweeperError: a mask is not binary (0/255 or 0/1).
    """
    with Image.open(pair.image) as file:
        image = file.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.array(image)  # a writable copy: torch.from_numpy shares it
    return pixels, _mask(pair, size)

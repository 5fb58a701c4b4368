"""The picture grid of `sweeper augment`: each image beside its augmented copy, in a near-square
layout (9 images: 3 x 3 cells), so a reader sees what a stage does before paying for it."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display here
import matplotlib.pyplot as plt
import numpy as np

CELL_INCHES = 1.6
"""Width and height of one image (an original or its augmented copy)."""
GAP = 0.25
"""Space between cells, as a share of one image's width."""
TITLE_INCHES = 0.5
DPI = 100


def layout(n: int) -> tuple[int, int]:
    """(rows, columns) of cells for n images: near-square, at most as many rows as columns."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def figure_size(n: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG for n images."""
    rows, cols = layout(n)
    width = (2 * cols + GAP * (cols - 1)) * CELL_INCHES
    return round(width * DPI), round((rows * CELL_INCHES + TITLE_INCHES) * DPI)


def draw_grid(pairs: Sequence[tuple[np.ndarray, np.ndarray]], out: Path, title: str) -> Path:
    """Write the grid as a PNG; written beside `out` and renamed, so no half-written file."""
    rows, cols = layout(len(pairs))
    width, height = figure_size(len(pairs))
    figure = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    grid = figure.add_gridspec(
        rows,
        3 * cols - 1,
        width_ratios=([1, 1, GAP] * cols)[:-1],
        left=0,
        right=1,
        bottom=0,
        top=1 - TITLE_INCHES * DPI / height,
        wspace=0,
        hspace=0.12,
    )
    for i, (original, augmented) in enumerate(pairs):
        row, col = divmod(i, cols)
        for offset, (image, label) in enumerate(((original, "original"), (augmented, "augmented"))):
            axes = figure.add_subplot(grid[row, 3 * col + offset])
            _show(axes, image)
            axes.set_title(f"{i + 1}: {label}", fontsize=7, pad=2)
    figure.suptitle(title, fontsize=9)
    partial = out.with_name(f".{out.name}.partial")
    try:
        figure.savefig(partial, format="png", dpi=DPI)
        os.replace(partial, out)
    finally:
        plt.close(figure)
        partial.unlink(missing_ok=True)
    return out


def _show(axes: plt.Axes, image: np.ndarray) -> None:
    if image.ndim == 3 and image.shape[2] == 1:
        axes.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(image, interpolation="nearest")
    axes.set_axis_off()

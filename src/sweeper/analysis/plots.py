"""Static pictures of a loss landscape: contour with labelled levels, 3-D surface, 1-D curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on agents or in CI

import matplotlib.pyplot as plt
import numpy as np

LEVELS = 20


def _levels(loss: np.ndarray) -> np.ndarray:
    """Levels spaced evenly in log loss: the basin gets as many lines as the walls, which grow
    by orders of magnitude away from a minimum."""
    finite = loss[np.isfinite(loss)]
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.array([low])
    if low > 0:
        return np.unique(np.geomspace(low, high, LEVELS + 1)[:-1])
    return np.linspace(low, high, LEVELS + 1)[:-1]


def labelled_levels(levels: np.ndarray, steps: int) -> np.ndarray:
    """The levels that get a number: every level on a fine grid, fewer on a coarse one, whose
    short lines leave no room (a 5x5 grid: 3 labels, not 20 piled on each other)."""
    wanted = max(2, min(len(levels), steps // 3))
    return levels[:: max(1, -(-len(levels) // wanted))]


def draw_contour(ax: Any, alphas: np.ndarray, betas: np.ndarray, loss: np.ndarray) -> list[Any]:
    """Contour lines of `loss[i, j]` at (alphas[i], betas[j]); returns the level labels."""
    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    lines = ax.contour(grid_a, grid_b, loss, levels=_levels(loss), cmap="viridis")
    chosen = labelled_levels(lines.levels, min(loss.shape))
    return ax.clabel(lines, chosen, inline=True, fontsize=7, fmt="%.3g")


def contour(alphas: np.ndarray, betas: np.ndarray, loss: np.ndarray, title: str, out: Path) -> Path:
    """`loss[i, j]` is at (alphas[i], betas[j])."""
    fig, ax = plt.subplots(figsize=(6, 5))
    draw_contour(ax, alphas, betas, loss)
    ax.plot(
        [0], [0], marker="*", color="crimson", markersize=10, label=r"trained weights $\theta^*$"
    )
    ax.set(
        xlabel=r"$\alpha$ (direction $\delta$)", ylabel=r"$\beta$ (direction $\eta$)", title=title
    )
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def surface(alphas: np.ndarray, betas: np.ndarray, loss: np.ndarray, title: str, out: Path) -> Path:
    """The 3-D loss surface as a PNG at `out` (120 dpi): `loss[i, j]` at (alphas[i], betas[j])."""
    fig = plt.figure(figsize=(7, 5.5))
    ax = fig.add_subplot(projection="3d")
    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    ax.plot_surface(grid_a, grid_b, loss, cmap="viridis", linewidth=0, antialiased=True)
    ax.set(xlabel=r"$\alpha$", ylabel=r"$\beta$", zlabel="loss", title=title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def curve(alphas: np.ndarray, loss: np.ndarray, title: str, xlabel: str, out: Path) -> Path:
    """The 1-D loss curve as a PNG at `out` (120 dpi): `loss[i]` at alphas[i], with the trained
    weights (0) marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(alphas, loss, marker=".", color="tab:blue")
    ax.axvline(0, color="crimson", linewidth=0.8, linestyle="--")
    ax.set(xlabel=xlabel, ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

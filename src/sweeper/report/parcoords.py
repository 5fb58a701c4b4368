"""Parallel coordinates: one axis per parameter plus the metric, lines coloured by the metric.

Plotly's parcoords has neither categorical nor log axes, so both are drawn as positions
(category index, log10 value) with the real values written on the ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.render import plot_text, png_text
from sweeper.report.values import Kind, distinct_labels, hashable, ordered

COLORSCALE = "Viridis"
MAX_TICKS = 8


@dataclass(frozen=True)
class Axis:
    name: str
    kind: Kind
    positions: np.ndarray
    ticks: list[float] | None
    labels: list[str] | None


def make_axis(name: str, values: pd.Series, kind: Kind, declared: list[Any] | None = None) -> Axis:
    """One parallel-coordinates axis: each run's position and the ticks to label.

    Categorical values sit at 0..n-1 in `declared` order (an `unset` tick last for runs that
    lack the parameter); log ones at log10 of the value; up to MAX_TICKS distinct values are
    each a tick, more are labelled by decade (log) or left to plotly's own ticks.
    """
    if kind == "categorical":
        categories = ordered(values, declared)
        index = {v: i for i, v in enumerate(categories)}
        # Runs of a stage that did not search this parameter may lack it (a null default).
        unset = values.isna().to_numpy()
        labels = distinct_labels(categories) + (["unset"] if unset.any() else [])
        positions = np.array(
            [
                len(categories) if gone else index[hashable(v)]
                for v, gone in zip(values, unset, strict=True)
            ],
            dtype=float,
        )
        return Axis(name, kind, positions, list(range(len(labels))), labels)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    distinct = np.unique(numbers[np.isfinite(numbers)])
    if kind == "log":
        positions = np.log10(numbers)
        if len(distinct) > MAX_TICKS:
            low, high = np.floor(positions.min()), np.ceil(positions.max())
            decades = np.arange(low, high + 1)
            return Axis(name, kind, positions, list(decades), [f"{10**d:g}" for d in decades])
        return Axis(
            name, kind, positions, list(np.log10(distinct)), distinct_labels(distinct.tolist())
        )
    if len(distinct) <= MAX_TICKS:
        return Axis(name, kind, numbers, list(distinct), distinct_labels(distinct.tolist()))
    return Axis(name, kind, numbers, None, None)


def figure(axes: list[Axis], color: np.ndarray, title: str) -> Any:
    """The interactive plot for the HTML report."""
    import plotly.graph_objects as go

    dimensions = []
    for axis in axes:
        label = "<br>".join(plot_text(part) for part in _wrapped(axis.name))
        dimension: dict[str, Any] = {"label": label, "values": axis.positions}
        if axis.ticks is not None:
            ticktext = [plot_text(t) for t in axis.labels or []]
            dimension |= {"tickvals": axis.ticks, "ticktext": ticktext}
            low, high = min(axis.ticks), max(axis.ticks)
            finite = axis.positions[np.isfinite(axis.positions)]
            dimension["range"] = [min(low, finite.min()), max(high, finite.max())]
        dimensions.append(dimension)
    line = {
        "color": color,
        "colorscale": COLORSCALE,
        "showscale": True,
    }  # no colour bar title: the last axis names the metric already
    fig = go.Figure(go.Parcoords(line=line, dimensions=dimensions))
    fig.update_layout(
        title=plot_text(title), height=480, margin={"l": 80, "r": 80, "t": 90, "b": 40}
    )
    return fig


def save_png(axes: list[Axis], color: np.ndarray, title: str, path: Path) -> None:
    """The static plot: each axis scaled to [0, 1], the best lines drawn last (on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    scaled, limits = [], []
    for axis in axes:
        finite = axis.positions[np.isfinite(axis.positions)]
        low, high = finite.min(), finite.max()
        if axis.ticks is not None:
            low, high = min(low, min(axis.ticks)), max(high, max(axis.ticks))
        span = high - low or 1.0
        scaled.append((axis.positions - low) / span)
        limits.append((low, span))
    ys = np.column_stack(scaled)
    xs = np.arange(len(axes), dtype=float)
    draw = np.argsort(color)
    segments = [np.column_stack([xs, ys[i]]) for i in draw]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(axes)), 4.8), dpi=110)
    few = len(color) <= 300
    # thousands of translucent antialiased lines cost seconds and look the same without it
    lines = LineCollection(
        segments, cmap="viridis", linewidths=1.0, alpha=0.7 if few else 0.25, antialiaseds=few
    )
    lines.set_array(color[draw])
    ax.add_collection(lines)
    for x, (axis, (low, span)) in enumerate(zip(axes, limits, strict=True)):
        ax.axvline(x, color="black", linewidth=0.8)
        ticks = axis.ticks if axis.ticks is not None else list(np.linspace(low, low + span, 5))
        texts = axis.labels if axis.labels is not None else [f"{t:.3g}" for t in ticks]
        for tick, text in zip(ticks, texts, strict=True):
            ax.text(x + 0.03, (tick - low) / span, png_text(text), fontsize=7, va="center")
    ax.set_xticks(xs, ["\n".join(png_text(p) for p in _wrapped(axis.name)) for axis in axes])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlim(-0.1, len(axes) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(lines, ax=ax, pad=0.02)  # unlabelled: the last axis is the metric
    ax.set_title(png_text(title), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


WRAP = 16
"""Axis names longer than this break at their dots, so neighbouring names do not overlap."""


def _wrapped(name: str) -> list[str]:
    """An axis name as lines: `optim.weight_decay` -> `optim.`, `weight_decay` when long."""
    if len(name) <= WRAP or "." not in name:
        return [name]
    parts = name.split(".")
    return [part + "." for part in parts[:-1]] + [parts[-1]]

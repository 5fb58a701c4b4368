"""The Pareto scatter of a multi-objective sweep: every finished run as a point of its metric
values, the front (`sweeper.sweep.pareto.pareto_front`) highlighted. Two metrics give one
scatter with the front joined in order; three or more a scatter matrix (plotly's splom), one
panel per pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.render import plot_text, png_text

FRONT_COLOR = "#e4002b"
"""Not one of plotly's default trace colours, so the front stands out beside the curves."""
OTHER_COLOR = "#9e9e9e"


def _axis_title(metric: str, goal: str, short: bool = False) -> str:
    if short:  # a scatter matrix's many small panels
        return f"{metric} ({'max' if goal == 'maximize' else 'min'})"
    return f"{metric} ({'higher' if goal == 'maximize' else 'lower'} is better)"


def _values(runs: pd.DataFrame, metric: str) -> np.ndarray:
    """A metric's values as floats; +-inf are numbers to the front but cannot be drawn (NaN)."""
    values = pd.to_numeric(runs[f"summary.{metric}"], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def figure(
    scored: pd.DataFrame,
    on_front: np.ndarray,
    objectives: list[tuple[str, str]],
    title: str,
) -> Any:
    """The interactive plot for the HTML report.

    Args:
        scored: the runs that count (`sweeper.sweep.pareto.scored_runs`), with `run_id`.
        on_front: [len(scored)] bool, True for the front's runs.
        objectives: (metric, goal) pairs, two or more.
        title: the plot's title.

    Returns:
        A plotly Figure: two traces, "other runs" and "Pareto front", each point's hover text
        its run id.
    """
    import plotly.graph_objects as go

    front, other = scored[on_front], scored[~on_front]
    names = {"Pareto front": front, "other runs": other}
    colors = {"Pareto front": FRONT_COLOR, "other runs": OTHER_COLOR}
    fig = go.Figure()
    if len(objectives) == 2:
        (x, gx), (y, gy) = objectives
        for name in ("other runs", "Pareto front"):
            part = names[name]
            if name == "Pareto front":  # joined in order of the first metric: the trade-off
                part = part.iloc[np.argsort(_values(part, x), kind="stable")]
            fig.add_trace(
                go.Scatter(
                    x=_values(part, x),
                    y=_values(part, y),
                    mode="lines+markers" if name == "Pareto front" else "markers",
                    name=name,
                    text=[plot_text(str(r)) for r in part["run_id"]],
                    hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>",
                    marker={"color": colors[name], "size": 10 if name == "Pareto front" else 7},
                    line={"color": colors[name], "dash": "dot"},
                )
            )
        fig.update_layout(
            xaxis_title=plot_text(_axis_title(x, gx)), yaxis_title=plot_text(_axis_title(y, gy))
        )
    else:
        for name in ("other runs", "Pareto front"):
            part = names[name]
            fig.add_trace(
                go.Splom(
                    dimensions=[
                        {
                            "label": plot_text(_axis_title(m, g, short=True)),
                            "values": _values(part, m),
                        }
                        for m, g in objectives
                    ],
                    name=name,
                    text=[plot_text(str(r)) for r in part["run_id"]],
                    marker={"color": colors[name], "size": 8 if name == "Pareto front" else 5},
                    diagonal_visible=False,
                    showupperhalf=False,
                )
            )
    side = 520 if len(objectives) == 2 else 200 * len(objectives) + 120
    fig.update_layout(
        title=plot_text(title), height=side, margin={"l": 80, "r": 40, "t": 90, "b": 60}
    )
    return fig


def save_png(
    scored: pd.DataFrame,
    on_front: np.ndarray,
    objectives: list[tuple[str, str]],
    title: str,
    path: Path,
) -> None:
    """The static plot (same arguments as `figure`): one scatter for two metrics, else the
    lower triangle of a scatter matrix; the front in red, on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front, other = scored[on_front], scored[~on_front]
    k = len(objectives)
    pairs = [(0, 1)] if k == 2 else [(i, j) for j in range(k) for i in range(k) if i < j]
    size = (6.4, 5.0) if k == 2 else (2.6 * (k - 1), 2.6 * (k - 1))
    fig, grid = plt.subplots(
        1 if k == 2 else k - 1, 1 if k == 2 else k - 1, figsize=size, dpi=110, squeeze=False
    )
    for ax in grid.flat:
        ax.set_visible(False)
    for i, j in pairs:  # x: metric i, y: metric j
        ax = grid[0, 0] if k == 2 else grid[j - 1, i]
        ax.set_visible(True)
        (mx, gx), (my, gy) = objectives[i], objectives[j]
        ax.scatter(_values(other, mx), _values(other, my), s=14, c=OTHER_COLOR, label="other runs")
        ordered = front.iloc[np.argsort(_values(front, mx), kind="stable")]
        ax.plot(  # joined only for two metrics: a panel of three is no trade-off curve
            _values(ordered, mx),
            _values(ordered, my),
            "o:" if k == 2 else "o",
            color=FRONT_COLOR,
            markersize=5,
            label="Pareto front",
        )
        ax.set_xlabel(png_text(_axis_title(mx, gx, short=k > 2)), fontsize=8)
        ax.set_ylabel(png_text(_axis_title(my, gy, short=k > 2)), fontsize=8)
        ax.tick_params(labelsize=7)
    grid[0, 0].legend(fontsize=7)
    fig.suptitle(png_text(title), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

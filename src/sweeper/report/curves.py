"""Training curves grouped by one swept parameter: a mean line per value, ± std over its runs.

Single runs are drawn too (thin) while there are few enough to read; beyond that only the
group means and bands are drawn, which keeps a 10,000-run report small and legible.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.report.render import plot_text, png_text

RUN_LINES = 200
"""Draw every run's own curve up to this many runs."""

PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]

LOSSES = ("val_loss", "train_loss", "loss")

FEW_EPOCHS = 10
"""Up to this many epochs, each gets its own tick on the x axis."""


def curve_keys(metric: str, logged: list[str]) -> list[str]:
    """The metric and a loss (validation loss first) among what the runs logged."""
    keys = [metric]
    losses = [k for k in LOSSES if k in logged] + sorted(k for k in logged if k.endswith("_loss"))
    for loss in losses:
        if loss != metric:
            return [*keys, loss]
    return keys


FRACTIONS = re.compile(r"acc|dice|iou|jaccard|map|f1|precision|recall|auc|rank|cmc", re.I)
"""Metric names that are fractions: in [0, 1] (or [0, 100] when logged as percentages)."""
NON_NEGATIVE = re.compile(r"loss|err|mse|mae|rmse|time", re.I)


def metric_range(key: str, values: pd.Series) -> tuple[float | None, float | None, str]:
    """The range a std band is clipped to, and why: by the metric's name when its logged values
    agree (an accuracy in [0, 1], a loss >= 0), else none (the band is drawn as computed)."""
    finite = pd.to_numeric(values, errors="coerce").dropna()
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    if FRACTIONS.search(key) and low >= 0:
        if high <= 1:
            return 0.0, 1.0, f"{key} is a fraction by its name: bands clipped to [0, 1]"
        if high <= 100:
            return 0.0, 100.0, f"{key} is a percentage by its name: bands clipped to [0, 100]"
    if NON_NEGATIVE.search(key) and low >= 0:
        return 0.0, None, f"{key} is never negative by its name: bands clipped at 0"
    return None, None, ""


def curve_stats(history: pd.DataFrame, groups: pd.Series, key: str) -> pd.DataFrame:
    """Mean, std and n of `key` per (group, step); `groups` maps run_id -> group label; `low`
    and `high`, the band mean ± std clipped to the metric's possible range (`metric_range`)."""
    frame = history[["run_id", "_step", key]].dropna()
    frame = frame.assign(group=frame["run_id"].map(groups))
    stats = frame.groupby(["group", "_step"], observed=True)[key].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    floor, ceiling, _ = metric_range(key, frame[key])
    spread = stats["std"].fillna(0.0)
    stats["low"] = (stats["mean"] - spread).clip(lower=floor)
    stats["high"] = (stats["mean"] + spread).clip(upper=ceiling)
    return stats


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _run_lines(history: pd.DataFrame, run_ids: list[str], key: str) -> tuple[list, list]:
    """Every run of a group as one polyline with gaps (one trace, not one per run)."""
    xs: list[Any] = []
    ys: list[Any] = []
    for _, rows in history[history["run_id"].isin(run_ids)].groupby("run_id"):
        xs += [*rows["_step"].tolist(), None]
        ys += [*rows[key].tolist(), None]
    return xs, ys


def figure(
    history: pd.DataFrame, groups: pd.Series, stats: dict[str, pd.DataFrame], param: str, title: str
) -> Any:
    """Interactive curves: one panel per key, one colour per value of `param`."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = list(stats)
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[plot_text(k) for k in keys])
    show_runs = groups.size <= RUN_LINES
    order = list(groups.cat.categories) if hasattr(groups, "cat") else sorted(set(groups))
    for col, key in enumerate(keys, start=1):
        for i, group in enumerate(order):
            color = PALETTE[i % len(PALETTE)]
            part = stats[key][stats[key]["group"] == group]
            if part.empty:
                continue
            legend = {"legendgroup": f"group {i}", "showlegend": col == 1}
            if show_runs:
                xs, ys = _run_lines(history, groups.index[groups == group].tolist(), key)
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines",
                        hoverinfo="skip",
                        line={"color": _rgba(color, 0.25), "width": 1},
                        legendgroup=f"group {i}",
                        showlegend=False,
                    ),
                    1,
                    col,
                )
            if (part["count"] > 1).any():
                # The band: an invisible upper edge, then the lower edge filled up to it.
                for edge, fill in (
                    (part["high"], {}),
                    (part["low"], {"fill": "tonexty", "fillcolor": _rgba(color, 0.2)}),
                ):
                    fig.add_trace(
                        go.Scatter(
                            x=part["_step"],
                            y=edge,
                            mode="lines",
                            line={"width": 0},
                            hoverinfo="skip",
                            legendgroup=f"group {i}",
                            showlegend=False,
                            **fill,
                        ),
                        1,
                        col,
                    )
            fig.add_trace(
                go.Scatter(
                    x=part["_step"],
                    y=part["mean"],
                    mode="lines" if len(part) > 1 else "markers",  # one epoch: a point
                    line={"color": color, "width": 2},
                    marker={"color": color, "size": 9},
                    name=plot_text(f"{param}={group}"),
                    **legend,
                ),
                1,
                col,
            )
        few = stats[key]["_step"].nunique() <= FEW_EPOCHS
        fig.update_xaxes(title_text="epoch", row=1, col=col, dtick=1 if few else None)
    fig.update_layout(
        title=plot_text(title), height=400, legend={"title": {"text": plot_text(param)}}
    )
    return fig


def save_png(
    history: pd.DataFrame,
    groups: pd.Series,
    stats: dict[str, pd.DataFrame],
    param: str,
    title: str,
    path: Path,
) -> None:
    """The curves of `figure` as a static PNG at `path` (110 dpi, 5.5 x 4 inches a panel) for
    the Markdown and LaTeX pages; matplotlib's Agg backend, so no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    keys = list(stats)
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), dpi=110, squeeze=False)
    show_runs = groups.size <= RUN_LINES
    order = list(groups.cat.categories) if hasattr(groups, "cat") else sorted(set(groups))
    for ax, key in zip(axes[0], keys, strict=True):
        for i, group in enumerate(order):
            color = PALETTE[i % len(PALETTE)]
            part = stats[key][stats[key]["group"] == group]
            if part.empty:
                continue
            if show_runs:
                runs = history[history["run_id"].isin(groups.index[groups == group])]
                lines = [
                    rows[["_step", key]].dropna().to_numpy() for _, rows in runs.groupby("run_id")
                ]
                ax.add_collection(LineCollection(lines, colors=color, alpha=0.2, linewidths=0.8))
            step, mean = part["_step"], part["mean"]
            if (part["count"] > 1).any():
                ax.fill_between(
                    step, part["low"], part["high"], color=color, alpha=0.2, linewidth=0
                )
            ax.plot(
                step,
                mean,
                color=color,
                linewidth=2,
                marker="o" if len(part) == 1 else None,  # one epoch: a point, not nothing
                label=png_text(f"{param}={group}"),
            )
        ax.set_title(png_text(key))
        ax.set_xlabel("epoch")
        steps = sorted(stats[key]["_step"].unique())
        if len(steps) <= FEW_EPOCHS:  # each epoch its own tick (one epoch: not -0.045..0.045)
            ax.set_xticks(steps)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.autoscale_view()
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(png_text(title), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_groups(groups: pd.Series, run_ids: pd.Series) -> pd.Series:
    """Group labels indexed by run id (the history frame's key)."""
    return pd.Series(groups.to_numpy(), index=run_ids.to_numpy(), dtype=groups.dtype)

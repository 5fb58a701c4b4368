"""Summary tables computed from a run table (the DataFrame every backend gives)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sweeper.report.values import distinct_labels, label, metric_label
from sweeper.sweep import DONE, config_table, hashable, plain


def goal_of(metric: str, primary: str, goal: str) -> str:
    """The sweep's goal for its metric; for the others, losses and errors go down."""
    if metric == primary:
        return goal
    lowered = metric.lower()
    return "minimize" if "loss" in lowered or "err" in lowered else "maximize"


def has_repeats(table: pd.DataFrame) -> bool:
    """Some configuration of a :func:`config_table` ran more than once (over seeds)."""
    return bool(len(table)) and int(table["n"].max()) > 1


def config_cells(table: pd.DataFrame, params: list[str], metric: str) -> pd.DataFrame:
    """A :func:`config_table` as text cells: values and means rounded to what tells them
    apart; `mean ± std` and `n` only when some configuration has repeats (one run has no std).
    """
    shown = pd.DataFrame({p: distinct_labels(table[p].tolist()) for p in params})
    means = distinct_labels(table["mean"].astype(float).tolist(), least=4, most=6)
    if not has_repeats(table):
        shown[metric] = means
        return shown
    shown[f"{metric} mean ± std"] = [
        f"{m} ± {s:.2g}" if n > 1 else m
        for m, s, n in zip(means, table["std"], table["n"], strict=True)
    ]
    shown["n"] = table["n"].astype(int).astype(str).tolist()
    return shown


def summary_title(name: str, metric: str, goal: str, repeats: bool, width: int = 80) -> str:
    """A configuration table's title on one line of `width` columns: the sweep's name is
    shortened (with …) to leave room for what the numbers are."""
    what = f": {metric} ({goal})" + (", mean ± std over seeds" if repeats else "")
    room = max(width - len(what), 8)
    return (name if len(name) <= room else name[: room - 1] + "…") + what


def front_title(name: str, objectives: list[tuple[str, str]], on_front: int, done: int) -> str:
    """A Pareto front table's title line: what the front is over and how many runs it holds
    of those that count (finished or early-stopped with every metric)."""
    over = ", ".join(f"{metric_label(m)} ({g})" for m, g in objectives)
    return f"{name}: Pareto front over {over}: {on_front} of {done} finished runs"


def front_cells(
    front: pd.DataFrame, params: list[str], objectives: list[tuple[str, str]]
) -> pd.DataFrame:
    """The runs of a Pareto front (`sweeper.sweep.pareto.pareto_front`) as text cells: the run,
    each metric's value (to the digits that tell them apart), then its swept parameters (blank
    where a run lacks one)."""
    shown = pd.DataFrame({"run": [str(r) for r in front["run_id"]]})
    for metric, _ in objectives:
        scores = pd.to_numeric(front[f"summary.{metric}"], errors="coerce").astype(float)
        shown[metric_label(metric)] = distinct_labels(scores.tolist(), least=4, most=6)
    for p in params:
        column = f"config.{p}"
        values = [plain(v) for v in front[column]] if column in front else [None] * len(front)
        shown[p] = [
            "" if v is None or v != v else cell  # v != v: a NaN (no value) is blank
            for v, cell in zip(values, distinct_labels(values), strict=True)
        ]
    return shown


def param_table(
    done: pd.DataFrame,
    groups: pd.Series,
    metrics: list[str],
    baseline: str | None,
) -> pd.DataFrame:
    """One row per value (or range) of a parameter: n, mean and std of each metric, and the
    difference of each mean from the baseline value's row (NaN when the baseline was not run)."""
    columns = [f"summary.{m}" for m in metrics]
    stats = done[columns].groupby(groups.loc[done.index], observed=True).agg(["mean", "std"])
    table = pd.DataFrame({"value": stats.index.astype(str)})
    table["n"] = done.groupby(groups.loc[done.index], observed=True).size().to_numpy()
    table["baseline"] = table["value"] == baseline
    for metric, column in zip(metrics, columns, strict=True):
        mean = stats[(column, "mean")].to_numpy()
        table[metric] = mean
        table[f"{metric} std"] = stats[(column, "std")].fillna(0.0).to_numpy()
        base = mean[table["baseline"].to_numpy()]
        table[f"{metric} Δ"] = mean - base[0] if len(base) else float("nan")
    return table


def pivot_table(done: pd.DataFrame, rows: pd.Series, cols: pd.Series, metric: str) -> pd.DataFrame:
    """Mean, std and n of one metric over a two-parameter grid; columns (stat, col value)."""
    values = done[f"summary.{metric}"]
    grouped = values.groupby([rows.loc[done.index], cols.loc[done.index]], observed=True)
    stats = grouped.agg(["mean", "std", "count"])
    stats["std"] = stats["std"].fillna(0.0)
    table = stats.unstack(level=1)
    assert isinstance(table, pd.DataFrame)  # a frame's rows were (row, col): a frame again
    return table


def stage_table(
    parts: list[tuple[str, list[str], pd.DataFrame, dict[str, Any]]],
    metrics: list[str],
    primary: str,
    goal: str,
) -> pd.DataFrame:
    """One row per stage of a study: what it searched, what won, and the winner's metrics.

    `parts` holds (stage name, searched params, its runs, carried config) per stage.
    """
    rows = []
    previous: float | None = None
    for name, params, runs, carried in parts:
        table = config_table(runs, params, primary, goal)
        row: dict[str, Any] = {"stage": name, "searched": ", ".join(params)}
        if table.empty:
            rows.append(row)
            continue
        best = {p: plain(table[p].iloc[0]) for p in params}
        row["best"] = ", ".join(f"{p}={label(v)}" for p, v in best.items())
        row["configuration"] = ", ".join(f"{p}={label(v)}" for p, v in {**carried, **best}.items())
        winners = runs[runs["state"].isin(DONE)]
        for p, v in best.items():
            winners = winners[winners[f"config.{p}"].map(hashable) == hashable(v)]
        row["n"] = len(winners)
        for metric in metrics:
            column = f"summary.{metric}"
            values = winners[column] if column in winners else pd.Series(dtype=float)
            row[metric] = values.mean()
            row[f"{metric} std"] = values.std() if len(values) > 1 else 0.0
        mean = row[primary]
        row[f"{primary} Δ"] = mean - previous if previous is not None else float("nan")
        previous = mean
        rows.append(row)
    return pd.DataFrame(rows)

"""The best configuration of a sweep over its repeats, the one definition of "best"."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.sweep.states import DONE

if TYPE_CHECKING:
    import pandas as pd

# picking the best -----------------------------------------------------------------------------
#
# One definition for every place that names a best (launch's closing lines, `status`, the
# progress bar, every summary table, the report, stage carry-over, `sync`): the best
# configuration is the one with the best mean metric over its runs (its seeds), ties broken by
# the lower std, then more runs, then the configuration that ran first. Its best and median
# runs are named beside it; with no repeats the configuration is its one run. Only finished or
# early-stopped runs count (DONE), and only with a numeric metric: a NaN never wins, while
# +-inf are numbers that rank by plain ordering (W&B's summary keeps them as such).


@dataclass(frozen=True)
class BestConfiguration:
    """The winning configuration and the runs behind it."""

    config: dict[str, Any]
    """{column name: value} of the swept parameters (seed excluded)."""
    mean: float
    std: float
    """Sample std over the configuration's runs (0 for one run)."""
    n: int
    best_run: str
    best_value: float
    median_run: str
    """The run at the median of the configuration's values (the worse middle one when n is
    even, so the median never flatters)."""
    median_value: float

    def describe(self, metric: str, label: Callable[[Any], str] = str) -> str:
        """One line for a person: the mean over the runs with the best and median run beside
        it; with one run, that run (`label` renders a parameter value)."""
        config = ", ".join(f"{p}={label(v)}" for p, v in self.config.items())
        config = f" ({config})" if config else ""
        if self.n == 1:
            return f"best run {self.best_run}: {metric} = {self.best_value:.4f}{config}"
        return (
            f"best configuration{config}: {metric} = {self.mean:.4f} ± {self.std:.4f} over"
            f" {self.n} runs; best run {self.best_run} ({self.best_value:.4f}), median run"
            f" {self.median_run} ({self.median_value:.4f})"
        )


CONFIG_COLUMNS = ["mean", "std", "n", "best_run", "best_value", "median_run", "median_value"]
"""The columns `config_table` adds after the parameters."""


def config_table(runs: pd.DataFrame, params: list[str], metric: str, goal: str) -> pd.DataFrame:
    """One row per configuration, best first (see above): the parameters, then the metric's
    mean, std and n over its runs, and its best and median run with their values.

    Args:
        runs: a run table (`sweeper.sweep.runtable`): `state`, `run_id`, `created_at`,
            `config.<param>` and `summary.<metric>` columns are read.
        params: the column names that make a configuration (seed left out: it numbers repeats).
        metric: the summary key ranked on.
        goal: "maximize" or "minimize" (W&B's `metric.goal`,
            https://docs.wandb.ai/guides/sweeps/sweep-config-keys/#metric); anything else
            minimizes, W&B's default.

    Returns:
        The `params` columns, then CONFIG_COLUMNS; no rows (those columns) when no run counts.
    """
    import numpy as np
    import pandas as pd

    column = f"summary.{metric}"
    if column not in runs or runs.empty:
        return pd.DataFrame(columns=[*params, *CONFIG_COLUMNS])
    done = runs[runs["state"].isin(DONE)] if "state" in runs else runs
    if "created_at" in done:  # creation order decides the last tie; rows are in it otherwise
        done = done.sort_values("created_at", kind="stable")
    values = pd.to_numeric(done[column], errors="coerce")  # text and NaN never score
    done = done.assign(_value=values.to_numpy(), _order=range(len(done)))[values.notna()]
    if done.empty:
        return pd.DataFrame(columns=[*params, *CONFIG_COLUMNS])
    keys = [f"config.{p}" for p in params]
    done = done.assign(**{k: done[k].map(hashable) if k in done else hashable(None) for k in keys})
    # sort=False: groups are numbered in the order their first run was created
    done["_group"] = done.groupby(keys, sort=False, dropna=False).ngroup() if keys else 0
    ascending = goal != "maximize"
    ranked = done.sort_values(["_group", "_value", "_order"], ascending=[True, ascending, True])
    place = ranked.groupby("_group").cumcount()
    size = ranked.groupby("_group")["_value"].transform("size")
    best = ranked[place == 0].set_index("_group")
    median = ranked[place == size // 2].set_index("_group")
    with np.errstate(invalid="ignore"):  # +inf and -inf average to NaN: that is the answer
        stats = ranked.groupby("_group")["_value"].agg(["mean", "std", "size"])
    table = pd.DataFrame(
        {
            **{p: best[k] for p, k in zip(params, keys, strict=True)},
            "mean": stats["mean"],
            # one run has no spread; n > 1 with an inf gives NaN, which ranks after any number
            "std": stats["std"].where(stats["size"] > 1, 0.0),
            "n": stats["size"],
            "best_run": best.get("run_id"),
            "best_value": best["_value"],
            "median_run": median.get("run_id"),
            "median_value": median["_value"],
        }
    )
    table = (
        table.rename_axis("first")
        .reset_index()  # the group number: the configuration that ran first wins a tie
        .sort_values(["mean", "std", "n", "first"], ascending=[ascending, True, False, True])
        .drop(columns="first")
        .reset_index(drop=True)
    )
    for p in params:  # back to the values a config holds (a dict, a list, None stay so)
        if table[p].map(lambda v: isinstance(v, _Opaque)).any():
            table[p] = pd.Series([plain(v) for v in table[p]], dtype=object)
    return table


def best_configuration(
    runs: pd.DataFrame, params: list[str], metric: str, goal: str
) -> BestConfiguration | None:
    """The best configuration: the first row of `config_table` (same arguments).

    Returns:
        It, with its parameters as a config holds them; None when no run counts (none
        finished or stopped with a numeric `metric`).
    """
    table = config_table(runs, params, metric, goal)
    if table.empty:
        return None
    row = table.iloc[0]
    return BestConfiguration(
        config={p: plain(table[p].iloc[0]) for p in params},  # per column: a row would upcast
        mean=float(row["mean"]),
        std=float(row["std"]),
        n=int(row["n"]),
        best_run=str(row["best_run"]),
        best_value=float(row["best_value"]),
        median_run=str(row["median_run"]),
        median_value=float(row["median_value"]),
    )


@functools.total_ordering
class _Opaque:
    """A value pandas cannot group as it is (a dict, a list, None) as a group key: equal when
    its JSON is, ordered after every plain value (None would otherwise become NaN)."""

    __slots__ = ("text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = json.dumps(value, sort_keys=True, default=repr)

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and self.text == other.text

    def __lt__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and self.text < other.text


def hashable(value: Any) -> Any:
    """A config value as a group key: a dict, a list or None wrapped to compare by its JSON
    (pandas would split a list, refuse a dict, and group None with NaN); others unchanged."""
    return _Opaque(value) if value is None or isinstance(value, list | dict) else value


def plain(value: Any) -> Any:
    """Back from group keys and pandas/numpy scalars to what a config holds."""
    if isinstance(value, _Opaque):
        return value.value
    return value.item() if hasattr(value, "item") else value

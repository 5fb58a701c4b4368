"""Summary tables computed from a run table (the DataFrame every backend gives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

DONE = ("finished", "stopped")
"""Runs whose metric counts; failed and running runs are shown but never win."""


def swept_params(sweep_config: Mapping[str, Any], include_seed: bool = False) -> list[str]:
    """Parameters the sweep varies (constants are the fixed base config)."""
    return [
        name
        for name, param in sweep_config.get("parameters", {}).items()
        if "value" not in param and (include_seed or name != "seed")
    ]


def config_table(runs: pd.DataFrame, params: list[str], metric: str, goal: str) -> pd.DataFrame:
    """Mean ± std of the metric per configuration (repeats averaged over seeds), best first."""
    column = f"summary.{metric}"
    done = runs[runs["state"].isin(DONE)] if "state" in runs else runs
    if column not in done or done.empty:
        return pd.DataFrame(columns=[*params, "mean", "std", "n"])
    keys = [f"config.{p}" for p in params]
    grouped = (
        done.assign(**{k: done[k].map(_hashable) for k in keys})
        .groupby(keys, dropna=False)[column]
        .agg(["mean", "std", "count"])
        .reset_index()
        .rename(columns={"count": "n", **{f"config.{p}": p for p in params}})
    )
    grouped["std"] = grouped["std"].fillna(0.0)
    return grouped.sort_values("mean", ascending=goal != "maximize", ignore_index=True)


def best_config(runs: pd.DataFrame, params: list[str], metric: str, goal: str) -> dict[str, Any] | None:
    """The configuration with the best mean metric, as {param: value}; None if nothing finished."""
    table = config_table(runs, params, metric, goal)
    if table.empty:
        return None
    return {p: _plain(table.iloc[0][p]) for p in params}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    """Back from pandas/numpy scalars and tuples to what a config holds."""
    if isinstance(value, tuple):
        return list(value)
    return value.item() if hasattr(value, "item") else value

"""What a sweep means, in one place: run states, parameter forms, the best configuration.

The backends, the agent, the CLI and the report all read sweeps through these functions, so
"finished", "swept" and "best" mean the same everywhere. Internally a parameter is named by
its dotted path into the trainer config (`optim.lr`); on the wire to W&B it is nested
(`optim: {parameters: {lr: ...}}`), so a run's W&B config has the trainer's own shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.spec.paths import flatten

if TYPE_CHECKING:
    import pandas as pd

TERMINAL = ("finished", "stopped", "failed", "crashed")
"""States a run never leaves. `stopped` means early-terminated: finished, but cut short."""

ACTIVE = ("pending", "preempted", "running")

DONE = ("finished", "stopped")
"""Runs whose metric counts; failed and running runs are shown but never win."""

_DISTRIBUTION_KEYS = {"value", "values", "distribution", "min", "max", "mu", "sigma", "q"}


@dataclass
class RunView:
    """What the engine and the summaries need to know about one run."""

    name: str
    state: str
    params: dict[str, Any]
    """Flat W&B form: {dotted path: {"value": v}}."""
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


# parameter forms ------------------------------------------------------------------------------


def nest_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted path: parameter} -> W&B's nested `parameters` block."""
    nested: dict[str, Any] = {}
    for path, param in flat.items():
        *sections, leaf = path.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {"parameters": {}})["parameters"]
        node[leaf] = param
    return nested


def flat_parameters(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A `parameters` block, nested or dotted, as {dotted path: parameter}."""
    flat: dict[str, Any] = {}
    for name, param in parameters.items():
        if (
            isinstance(param, Mapping)
            and "parameters" in param
            and not _DISTRIBUTION_KEYS & set(param)
        ):
            flat.update(flat_parameters(param["parameters"], f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = param
    return flat


def swept_params(sweep_config: Mapping[str, Any], include_seed: bool = False) -> list[str]:
    """Parameters the sweep varies (constants are the fixed base config)."""
    return [
        name
        for name, param in flat_parameters(sweep_config.get("parameters", {})).items()
        if "value" not in param and (include_seed or name != "seed")
    ]


def unwrap(args: Mapping[str, Any]) -> dict[str, Any]:
    """A run's W&B parameters ({name: {"value": v}}, nested or dotted) -> {dotted path: v}."""
    flat: dict[str, Any] = {}
    for name, wrapped in args.items():
        value = wrapped["value"] if isinstance(wrapped, Mapping) and "value" in wrapped else wrapped
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# picking the best -----------------------------------------------------------------------------


def best_run(runs: Iterable[RunView], metric: str, goal: str) -> tuple[RunView, float] | None:
    """The finished run with the best summary metric (failed and running runs never win)."""
    scored = [
        (run, float(run.summary[metric]))
        for run in runs
        if run.state in DONE and isinstance(run.summary.get(metric), int | float)
    ]
    if not scored:
        return None
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda pair: pair[1])


def config_table(runs: pd.DataFrame, params: list[str], metric: str, goal: str) -> pd.DataFrame:
    """Mean ± std of the metric per configuration (repeats averaged over seeds), best first."""
    import pandas as pd

    column = f"summary.{metric}"
    done = runs[runs["state"].isin(DONE)] if "state" in runs else runs
    if column not in done or done.empty:
        return pd.DataFrame(columns=[*params, "mean", "std", "n"])
    if not params:  # only seeds vary: every run repeats the one configuration
        values = done[column]
        std = values.std() if len(values) > 1 else 0.0
        return pd.DataFrame({"mean": [values.mean()], "std": [std], "n": [len(values)]})
    keys = [f"config.{p}" for p in params]
    grouped = (
        done.assign(**{k: done[k].map(hashable) for k in keys})
        .groupby(keys, dropna=False)[column]
        .agg(["mean", "std", "count"])
        .reset_index()
        .rename(columns={"count": "n", **{f"config.{p}": p for p in params}})
    )
    grouped["std"] = grouped["std"].fillna(0.0)
    # Stable: tied configurations stay in groupby's order (by value), so every caller picks
    # the same one.
    return grouped.sort_values(
        "mean", ascending=goal != "maximize", kind="stable", ignore_index=True
    )


def best_config(
    runs: pd.DataFrame, params: list[str], metric: str, goal: str
) -> dict[str, Any] | None:
    """The configuration with the best mean metric, as {param: value}; None if nothing finished."""
    table = config_table(runs, params, metric, goal)
    if table.empty:
        return None
    return {p: plain(table[p].iloc[0]) for p in params}  # per column: a row would upcast ints


def hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def plain(value: Any) -> Any:
    """Back from pandas/numpy scalars and tuples to what a config holds."""
    if isinstance(value, tuple):
        return list(value)
    return value.item() if hasattr(value, "item") else value

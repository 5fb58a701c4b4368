"""What a sweep means, in one place: run states, parameter forms, the best configuration.

The backends, the agent, the CLI and the report all read sweeps through these functions, so
"finished", "swept" and "best" mean the same everywhere.

A parameter's identity is W&B's: its key path through nested `parameters:` blocks. A flat key
that holds a dot (`optimizer.lr`, Hydra style) is one key, ("optimizer.lr",); only a nested
block nests the run config, ("optimizer", "lr"); a value (a dict, a list, None, a bool) is
opaque and never split. Tables and the store name a parameter by its column name, the key
path joined with "." (`swept_params`), which `parameter_paths` refuses to let two identities
share. A trainer spec's dotted `search:` paths are sweeper's own shorthand for nested trainer
fields: compile turns them into nested blocks (`nest_parameters`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

KeyPath = tuple[str, ...]
"""A parameter's identity: its keys through nested `parameters:` blocks (W&B's own)."""


class ParameterClash(ValueError):
    """Two parameters whose column names (key paths joined with ".") are the same."""

    def __init__(self, name: str, first: KeyPath, second: KeyPath) -> None:
        self.name = name
        super().__init__(
            f"{_written(first)} and {_written(second)} would both be the column {name!r};"
            " rename one"
        )


def _written(path: KeyPath) -> str:
    return ".parameters.".join(path) if len(path) > 1 else repr(path[0])


def nest_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A trainer spec's {dotted path: parameter} -> W&B's nested `parameters` block.

    Only for sweeper's own `search:` shorthand, whose dots name nested trainer fields; a plain
    W&B sweep's keys are never split.
    """
    nested: dict[str, Any] = {}
    for path, param in flat.items():
        *sections, leaf = path.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {"parameters": {}})["parameters"]
        node[leaf] = param
    return nested


def _is_block(param: Any) -> bool:
    """A nested `parameters:` block, as sweeps' HyperParameterSet.from_config tells one: not a
    parameter (no distribution key), but holding `parameters`."""
    return (
        isinstance(param, Mapping) and "parameters" in param and not _DISTRIBUTION_KEYS & set(param)
    )


def parameter_paths(parameters: Mapping[str, Any]) -> dict[str, tuple[KeyPath, Any]]:
    """{column name: (key path, parameter)} for every parameter of a `parameters` block.

    Raises:
        ParameterClash: two key paths would share a column name (`a.b` next to `a: {parameters:
            {b: ...}}`), which would silently merge two parameters in every table.
    """
    found: dict[str, tuple[KeyPath, Any]] = {}

    def walk(block: Mapping[str, Any], prefix: KeyPath) -> None:
        for key, param in block.items():
            path = (*prefix, str(key))
            if _is_block(param) and isinstance(param["parameters"], Mapping):
                walk(param["parameters"], path)
                continue
            name = ".".join(path)
            if name in found:
                raise ParameterClash(name, found[name][0], path)
            found[name] = (path, param)

    walk(parameters, ())
    return found


def flat_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A `parameters` block as {column name: parameter} (see `parameter_paths`)."""
    return {name: param for name, (_, param) in parameter_paths(parameters).items()}


def key_paths(sweep_config: Mapping[str, Any]) -> dict[str, KeyPath]:
    """{column name: key path} of a sweep's parameters."""
    return {name: path for name, (path, _) in parameter_paths(_parameters(sweep_config)).items()}


def _parameters(sweep_config: Mapping[str, Any]) -> Mapping[str, Any]:
    parameters = sweep_config.get("parameters")
    return parameters if isinstance(parameters, Mapping) else {}


def swept_params(sweep_config: Mapping[str, Any], include_seed: bool = False) -> list[str]:
    """Column names of the parameters the sweep varies (constants are the fixed base config)."""
    return [
        name
        for name, param in flat_parameters(_parameters(sweep_config)).items()
        if not (isinstance(param, Mapping) and "value" in param)
        and (include_seed or name != "seed")
    ]


def run_config(values: Mapping[str, Any], paths: Mapping[str, KeyPath]) -> dict[str, Any]:
    """A run's {column name: value} -> its W&B run config, nested along key paths only.

    What `wandb agent` gives a program (args, WANDB_SWEEP_PARAM_PATH, `wandb.config`) is this
    config's top-level keys (wandb/sdk/launch/sweeps/utils.py `create_sweep_command_args`). A
    name that is not one of `paths` (a store written before key paths) is one flat key.
    """
    config: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = paths.get(name, (name,))
        node = config
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = value
    return config


def values_of(config: Mapping[str, Any], paths: Mapping[str, KeyPath]) -> dict[str, Any]:
    """A W&B run config ({key: {"value": v}}, nested along blocks) -> {column name: value}.

    The inverse of `run_config`: each parameter is read along its key path, so a dict value
    stays one value. Top-level keys no path starts with are kept as they are.
    """
    top = {
        key: wrapped["value"] if isinstance(wrapped, Mapping) and "value" in wrapped else wrapped
        for key, wrapped in config.items()
    }
    out: dict[str, Any] = {}
    for name, path in paths.items():
        node: Any = top
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            out[name] = node
    covered = {path[0] for path in paths.values()}
    out.update({key: value for key, value in top.items() if key not in covered})
    return out


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
        done.assign(**{k: done[k].map(hashable) if k in done else hashable(None) for k in keys})
        .groupby(keys, dropna=False)[column]
        .agg(["mean", "std", "count"])
        .reset_index()
        .rename(columns={"count": "n", **{f"config.{p}": p for p in params}})
    )
    grouped["std"] = grouped["std"].fillna(0.0)
    for p in params:  # back to the values a config holds (a dict, a list, None stay so)
        if grouped[p].map(lambda v: isinstance(v, _Opaque)).any():
            grouped[p] = pd.Series([plain(v) for v in grouped[p]], dtype=object)
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
    return _Opaque(value) if value is None or isinstance(value, list | dict) else value


def plain(value: Any) -> Any:
    """Back from group keys and pandas/numpy scalars to what a config holds."""
    if isinstance(value, _Opaque):
        return value.value
    return value.item() if hasattr(value, "item") else value

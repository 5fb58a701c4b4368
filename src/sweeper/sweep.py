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
from collections.abc import Callable, Mapping
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
    mean, std and n over its runs, and its best and median run with their values."""
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
    """The first row of `config_table`; None when no run counts."""
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
    return _Opaque(value) if value is None or isinstance(value, list | dict) else value


def plain(value: Any) -> Any:
    """Back from group keys and pandas/numpy scalars to what a config holds."""
    if isinstance(value, _Opaque):
        return value.value
    return value.item() if hasattr(value, "item") else value

"""Parameter forms: a parameter's identity, run configs and table columns.

A parameter's identity is W&B's: its key path through nested `parameters:` blocks. A flat key
that holds a dot (`optimizer.lr`, Hydra style) is one key, ("optimizer.lr",); only a nested
block nests the run config, ("optimizer", "lr"); a value (a dict, a list, None, a bool) is
opaque and never split (https://docs.wandb.ai/guides/sweeps/define-sweep-configuration/,
nested parameters). Tables and the store name a parameter by its column name, the key path
joined with "." (`swept_params`), which `parameter_paths` refuses to let two identities share.
A trainer spec's dotted `search:` paths are sweeper's own shorthand for nested trainer fields:
compile turns them into nested blocks (`nest_parameters`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_DISTRIBUTION_KEYS = {"value", "values", "distribution", "min", "max", "mu", "sigma", "q"}

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

    Args:
        flat: {dotted path: W&B parameter}, e.g. {"optim.lr": {"values": [0.1]}}.

    Returns:
        The `parameters` block, each section a `{"parameters": {...}}` block as W&B's nested
        parameters are written: {"optim": {"parameters": {"lr": {"values": [0.1]}}}}.
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
    """A `parameters` block as {column name: parameter} (see `parameter_paths`).

    Raises:
        ParameterClash: two parameters would share a column name.
    """
    return {name: param for name, (_, param) in parameter_paths(parameters).items()}


def key_paths(sweep_config: Mapping[str, Any]) -> dict[str, KeyPath]:
    """{column name: key path} of a sweep's parameters, in the order the config writes them
    (an absent or malformed `parameters` has none).

    Raises:
        ParameterClash: two parameters would share a column name.
    """
    return {name: path for name, (path, _) in parameter_paths(_parameters(sweep_config)).items()}


def _parameters(sweep_config: Mapping[str, Any]) -> Mapping[str, Any]:
    parameters = sweep_config.get("parameters")
    return parameters if isinstance(parameters, Mapping) else {}


def swept_params(
    sweep_config: Mapping[str, Any], include_seed: bool = False, columns: Iterable[str] = ()
) -> list[str]:
    """Column names of the parameters the sweep varies, in the config's order.

    A parameter given as `{"value": v}` is a constant (W&B's `constant` kind, inferred by
    `sweeps.params.HyperParameter` from a lone `value`), part of the fixed base config, so not
    swept. `seed` is left out unless `include_seed`: it numbers the repeats of one
    configuration. A sweep whose scheduler engine defines its own space (`scheduler:
    search_space`, Optuna's define-by-run: wandb/sdk/sweeps/scheduler/optuna.py) also varies
    whatever its runs were given: the run table's other `config.` `columns`, after the config's,
    less the constants (a trainer spec's base, which its runs carry too).

    Raises:
        ParameterClash: two parameters would share a column name.
    """
    flat = flat_parameters(_parameters(sweep_config))
    fixed = {
        name for name, param in flat.items() if isinstance(param, Mapping) and "value" in param
    }
    names = [name for name in flat if name not in fixed]
    scheduler = sweep_config.get("scheduler")
    if isinstance(scheduler, Mapping) and scheduler.get("search_space"):
        given = (c.removeprefix("config.") for c in columns if c.startswith("config."))
        names += [name for name in given if name not in names and name not in fixed]
    return [name for name in names if include_seed or name != "seed"]


def run_config(values: Mapping[str, Any], paths: Mapping[str, KeyPath]) -> dict[str, Any]:
    """A run's {column name: value} -> its W&B run config, nested along key paths only.

    What `wandb agent` gives a program (args, WANDB_SWEEP_PARAM_PATH, `wandb.config`) is this
    config's top-level keys (wandb/sdk/launch/sweeps/utils.py `create_sweep_command_args`). A
    name that is not one of `paths` (a store written before key paths) is one flat key.

    Args:
        values: {column name: value}.
        paths: {column name: key path} (`key_paths` of the sweep config).

    Returns:
        The nested config, {key: value or nested dict}; values are not `{"value": v}`-wrapped.
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

    Args:
        config: a run config as W&B keeps it; each top-level value `{"value": v}`-wrapped or
            not.
        paths: {column name: key path} (`key_paths` of the sweep config).

    Returns:
        {column name: value} for each parameter found along its path, plus the top-level keys
        no path covers; a parameter whose path the config lacks is left out.
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

"""W&B's `sweeps` engine as pure functions of (sweep config, runs), the way W&B's server decides.

The coordinator loads the state, calls these, and saves the answer; nothing here touches a
store, a clock or a process. `sweeps` is imported here once, without its pydantic-v1
deprecation noise, and with one speed-up:

The grid search hashes every value of every run with a YAML dump on each call (0.1 ms each:
30 ms a claim at 200 runs, seconds at 10,000). The hash depends on the value alone, so it is
memoised here; the engine's logic is untouched.

A claim needs no run's JSON for grid and random (`Grid`, `next_random_params`): random reads
no runs at all, and a grid point is taken or not whatever the run's state, so a store keeps each
run's point number and the claim asks only which numbers from the first free one are taken.

Seeded suggestions (issue 23 §4; wandb/wandb #5582 asks for them): `sweeps` 0.2.0 takes no
seed; random draws from Python's global `random` (params.py `HyperParameter.sample`) and bayes
from numpy's global generator (bayes_search.py `random_sample`, its sampled training rows, its
random fallback; its GP has a fixed `random_state=2`). Seeding those would not do: other
threads draw from them too (psycopg_pool's workers jitter with `random`), and would take the
engine's draws. So for the sweep's k-th run the engine's two modules see, for the one call,
private generators seeded with `seed_for(seed, k)` (`sweeper.sweep.seeds`) in place of the
global ones (`seeded`); the engine's code is unchanged, and nothing global is seeded.
"""

from __future__ import annotations

import json
import math
import random
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from sweeper.sweep.params import KeyPath, key_paths, values_of
from sweeper.sweep.runs import RunView
from sweeper.sweep.seeds import seed_for
from sweeper.sweep.states import RunState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps.grid_search
    import sweeps.params  # the engine's nesting delimiter

    import sweeps

__all__ = [
    "NOT_A_POINT",
    "SCHEDULER_PACKAGES",
    "Grid",
    "next_grid_point",
    "next_params",
    "next_random_params",
    "runs_to_stop",
    "seeded",
    "sweeps",
]

SCHEDULER_PACKAGES: dict[str, tuple[str, str]] = {
    "optuna": ("optuna", "uv sync --extra optuna"),
    "ax": (
        "ax",
        "uv pip install 'ax-platform>=1.3.1' (wandb's extra wandb[ax]; it does not"
        " install offline, so sweeper has no ax extra)",
    ),
}
"""A `scheduler.engine` -> (the package wandb's optimizer for it imports,
wandb/sdk/sweeps/scheduler/{optuna,ax}.py; how to install it here). The wandb engine needs only
`sweeps`, a dependency of sweeper."""

_yaml_hash = sweeps.grid_search.yaml_hash
"""The engine's own hash of a value (memoised below as `yaml_hash`)."""
_hashes: dict[tuple[type, str], str] = {}
_SCALARS = (str, int, float, bool, type(None))


def _memo_yaml_hash(value: Any) -> str:
    # Keyed on type and exact text, which tell 0 from 0.0, 1 from True and -0.0 from 0.0, as
    # YAML does; repr is exact for scalars and five times cheaper than JSON.
    text = (
        repr(value) if type(value) in _SCALARS else json.dumps(value, sort_keys=True, default=repr)
    )
    key = (type(value), text)
    if key not in _hashes:
        _hashes[key] = _yaml_hash(value)
    return _hashes[key]


sweeps.grid_search.yaml_hash = yaml_hash = _memo_yaml_hash

_ENGINE_STATE = {
    RunState.PENDING: "pending",
    RunState.PREEMPTED: "preempted",
    RunState.RUNNING: "running",
    RunState.FINISHED: "finished",
    RunState.STOPPED: "finished",  # W&B files an early-terminated run as finished, stopped set
    RunState.FAILED: "failed",
    RunState.CRASHED: "crashed",
}

_NESTING = sweeps.params.HyperParameterSet.NESTING_DELIMITER
"""How the engine names a parameter of a nested block (sweeps 0.2.0 params.py
HyperParameterSet.from_config): it suggests nested configs but looks previous runs up by these
names, so each run is handed to it keyed by its key paths joined with this."""


def _engine_config(params: Mapping[str, Any], paths: Mapping[str, KeyPath]) -> dict[str, Any]:
    """A run's {column name: {"value": v}} keyed by the engine's names (see _NESTING)."""
    return {_NESTING.join(paths.get(name, (name,))): param for name, param in params.items()}


def _engine_runs(runs: Iterable[RunView], paths: Mapping[str, KeyPath]) -> list[Any]:
    # A non-finite metric is given as it is: sweeps' bayes reads a run's metric through
    # SweepRun.metric_extremum, which keeps finite numbers only (sweeps/run.py is_number),
    # and imputes the worst value for a run that has none (bayes_search.py
    # _construct_gp_data), which is what a diverged run should count as.
    return [
        sweeps.SweepRun(
            name=run.name,
            state=_ENGINE_STATE[RunState(run.state)],
            config=_engine_config(run.params, paths),
            summaryMetrics=run.summary,
            sampledHistory=run.history,
            stopped=run.state == RunState.STOPPED,
        )
        for run in runs
    ]


_ENGINE_LOCK = threading.Lock()
"""One engine call at a time in a process: `seeded` swaps module attributes of `sweeps`."""


class _NumpyWith:
    """numpy as `sweeps.bayes_search` sees it during one seeded call: numpy itself, but for
    `np.random`, a private generator (a RandomState has the module's randint, uniform and
    choice)."""

    def __init__(self, generator: np.random.RandomState) -> None:
        self.random = generator

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@contextmanager
def seeded(seed: int | None, k: int) -> Iterator[None]:
    """Inside, the `sweeps` engine draws from generators seeded with `seed_for(seed, k)`:
    Python's `random` as `sweeps.params` reads it (random search's `HyperParameter.sample`),
    numpy's as `sweeps.bayes_search` reads it. None (a sweep made before seeds): the global
    ones, as always. One call at a time (the swap is of module attributes); nothing global
    changes. A call into `sweeps` that draws is seeded only inside this: this module's are;
    so must be an `engine: wandb` scheduler's ask (wandb's WandbOptimizer calls
    `sweeps.next_runs`).

    Raises:
        ValueError: a negative seed (`seed_for`).
    """
    with _ENGINE_LOCK:
        if seed is None:
            yield
            return
        derived = seed_for(seed, k)
        bayes = _bayes_search()
        python_random, numpy = sweeps.params.random, bayes.np
        sweeps.params.random = random.Random(derived)
        bayes.np = _NumpyWith(np.random.RandomState(derived))
        try:
            yield
        finally:
            sweeps.params.random, bayes.np = python_random, numpy


def _bayes_search() -> Any:
    """`sweeps.bayes_search`, imported on the first seeded call, not with this module: it
    imports scikit-learn (and with it pandas), which `validate` never needs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sweeps.bayes_search
    return sweeps.bayes_search


def next_params(
    config: Mapping[str, Any],
    runs: list[RunView],
    run_cap: int | None = None,
    seed: int | None = None,
) -> dict[str, Any] | None:
    """The next run's parameters, or None when the sweep has nothing more to try.

    Args:
        config: The sweep config as written (W&B's key paths).
        runs: Every run of the sweep, any state, in creation order.
        run_cap: W&B's `run_cap`: no suggestion once the sweep has this many runs.
        seed: The sweep's seed: the suggestion is the one for run `len(runs) + 1` under it
            (`sweeper.sweep.seeds.seed_for`); None: the engine's unseeded draw.

    Returns:
        {column name: {"value": v}} (W&B's form), or None: the grid is walked, or the cap met.
    """
    if run_cap is not None and len(runs) >= run_cap:
        return None
    return _next_run(config, runs, seed, len(runs) + 1)


def _next_run(
    config: Mapping[str, Any], runs: list[RunView], seed: int | None, k: int
) -> dict[str, Any] | None:
    """`sweeps.next_run` for the sweep's k-th run, seeded (`seeded`), in W&B's form."""
    paths = key_paths(config)
    engine_runs = _engine_runs(runs, paths)
    with seeded(seed, k):
        suggestion = sweeps.next_run(dict(config), engine_runs)
    if suggestion is None:
        return None
    return {name: {"value": value} for name, value in values_of(suggestion.config, paths).items()}


def runs_to_stop(config: Mapping[str, Any], runs: list[RunView]) -> list[str]:
    """Names of running runs that early termination (W&B's hyperband, `sweeps.stop_runs`)
    stops now; [] for a sweep without `early_terminate`. `runs` carry the history of the
    sweep's metric."""
    if not config.get("early_terminate"):
        return []
    stopped = sweeps.stop_runs(dict(config), _engine_runs(runs, key_paths(config)))
    return [run.name for run in stopped if run.name]


def next_random_params(
    config: Mapping[str, Any], runs: int, run_cap: int | None = None, seed: int | None = None
) -> dict[str, Any] | None:
    """A random sweep's next parameters: W&B's random search draws from the config's
    distributions and reads no runs (sweeps' `random_search_next_runs`), so a claim needs only
    how many runs the sweep has, for `run_cap` and for the seed of run `runs + 1`.

    Returns:
        {column name: {"value": v}}, or None once the sweep has `run_cap` runs.
    """
    if run_cap is not None and runs >= run_cap:
        return None
    return _next_run(config, [], seed, runs + 1)


NOT_A_POINT = -1
"""The point number of a run whose parameters are no point of its sweep's grid (the engine
never counts it as taking one)."""

_GRID_KINDS = {
    sweeps.params.HyperParameter.CATEGORICAL,
    sweeps.params.HyperParameter.CONSTANT,
    sweeps.params.HyperParameter.INT_UNIFORM,
    sweeps.params.HyperParameter.Q_UNIFORM,
}


class Grid:
    """W&B's grid for one sweep config as numbered points, walked as the engine walks it.

    `sweeps.grid_search.grid_search_next_runs` lists every combination of the discrete
    parameters' values (`itertools.product`, so the last parameter varies fastest; parameters
    in the engine's own order, `HyperParameterSet.from_config`), identifies a value by the
    YAML dump's hash (`yaml_hash`: 0 and 0.0, 1 and True are different values, and two equal
    values in one list are one value), skips every combination some run of the sweep already
    has, whatever that run's state, and suggests the first one left. Point `i` here is the
    i-th distinct combination in that order, so the engine's suggestion is always the lowest
    point no run has: `next_free` finds it from the taken numbers alone, and `params_at` builds
    it as the engine does (`HyperParameterSet.to_config`, constants and nesting included).

    Raises:
        ValueError: the config is no grid W&B's engine walks (no parameters; a parameter that
            is not categorical, constant, int_uniform or q_uniform).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        parameters = config.get("parameters")
        if not isinstance(parameters, Mapping) or not parameters:
            raise ValueError("a grid sweep needs a non-empty parameters section")
        params = sweeps.params.HyperParameterSet.from_config(dict(parameters))
        kind = sweeps.params.HyperParameter
        for i, param in enumerate(params):  # grid_search.py's own conversions, in its order
            if param.type not in _GRID_KINDS:
                raise ValueError(
                    f"{param.name}: W&B's grid search takes only categorical, constant,"
                    " int_uniform or q_uniform parameters"
                )
            if param.type == kind.INT_UNIFORM:
                values: list[Any] = list(range(param.config["min"], param.config["max"] + 1))
            elif param.type == kind.Q_UNIFORM:
                low, high, q = (param.config[key] for key in ("min", "max", "q"))
                values = np.arange(low, high, q).tolist()
            else:
                continue
            params[i] = kind(param.name, {"distribution": "categorical", "values": values})
        self._params = params
        self._discrete = [param for param in params if param.type == kind.CATEGORICAL]
        self._hashes: list[list[str]] = []
        """Per discrete parameter: its distinct value hashes, in first-seen order."""
        self._ranks: list[dict[str, int]] = []
        self._values: list[dict[str, Any]] = []
        """Per discrete parameter: hash -> value; the last of equal values, as the engine's
        `value_hash_lookup` (a dict built from the list) keeps."""
        for param in self._discrete:
            hashes = [yaml_hash(value) for value in param.config["values"]]
            distinct = list(dict.fromkeys(hashes))
            self._hashes.append(distinct)
            self._ranks.append({h: rank for rank, h in enumerate(distinct)})
            self._values.append(dict(zip(hashes, param.config["values"], strict=True)))
        self.size = math.prod(len(hashes) for hashes in self._hashes)
        """How many distinct points the engine hands out before it says the grid is done."""
        self._paths = key_paths(config)
        self._lock = threading.Lock()  # params_at sets values on the one parameter set

    def index_of(self, params: Mapping[str, Any]) -> int:
        """The point a run's parameters take, by the engine's rule (its tuple of value hashes
        over the discrete parameters; a run lacking one of them takes none).

        Args:
            params: The run's {column name: {"value": v}}, as stored.

        Returns:
            The point's number, or NOT_A_POINT.
        """
        config = _engine_config(params, self._paths)
        index = 0
        for param, ranks in zip(self._discrete, self._ranks, strict=True):
            if param.name not in config:
                return NOT_A_POINT
            rank = ranks.get(yaml_hash(config[param.name]["value"]))
            if rank is None:
                return NOT_A_POINT
            index = index * len(ranks) + rank
        return index

    def params_at(self, index: int) -> dict[str, Any]:
        """Point `index`'s parameters as the engine suggests them: {column name: {"value": v}}
        (`next_params`'s form).

        Raises:
            IndexError: no such point.
        """
        if not 0 <= index < self.size:
            raise IndexError(f"point {index} of a grid of {self.size}")
        ranks = []
        for hashes in reversed(self._hashes):
            index, rank = divmod(index, len(hashes))
            ranks.append(rank)
        with self._lock:
            for param, hashes, values, rank in zip(
                self._discrete, self._hashes, self._values, reversed(ranks), strict=True
            ):
                param.value = values[hashes[rank]]
            config = self._params.to_config()
        return {name: {"value": value} for name, value in values_of(config, self._paths).items()}

    def next_free(self, start: int, taken: Iterable[int]) -> int | None:
        """The lowest point not taken, given that every point below `start` is.

        Args:
            start: A point number no higher than the lowest free point.
            taken: The taken point numbers from `start` on, ascending (repeats allowed).

        Returns:
            The point, or None when every point is taken (the engine's None: the grid is done).
        """
        free = start
        for point in taken:
            if point > free:
                break
            if point == free:
                free += 1
        return free if free < self.size else None


def next_grid_point(
    grid: Grid, start: int, taken: Iterable[int], runs: int, run_cap: int | None = None
) -> tuple[int, dict[str, Any]] | None:
    """The grid point W&B's engine suggests next (`next_params` for a grid) from the taken
    point numbers alone.

    Args:
        grid: The sweep's grid.
        start: Every point below this one is taken.
        taken: The taken point numbers from `start` on, ascending.
        runs: How many runs the sweep has, any state (for `run_cap`).
        run_cap: W&B's `run_cap`.

    Returns:
        (point number, {column name: {"value": v}}), or None: the grid is walked, or the cap
        met.
    """
    if run_cap is not None and runs >= run_cap:
        return None
    point = grid.next_free(start, taken)
    return None if point is None else (point, grid.params_at(point))

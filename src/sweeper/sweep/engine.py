"""W&B's `sweeps` engine as pure functions of (sweep config, runs), the way W&B's server decides.

The coordinator loads the state, calls these, and saves the answer; nothing here touches a
store, a clock or a process. `sweeps` is imported here once, without its pydantic-v1
deprecation noise, and with one speed-up:

The grid search hashes every value of every run with a YAML dump on each call (0.1 ms each:
30 ms a claim at 200 runs, seconds at 10,000). The hash depends on the value alone, so it is
memoised here; the engine's logic is untouched.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from sweeper.sweep.params import KeyPath, key_paths, values_of
from sweeper.sweep.runs import RunView
from sweeper.sweep.states import RunState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps.grid_search
    import sweeps.params  # the engine's nesting delimiter

    import sweeps

__all__ = ["next_params", "runs_to_stop", "sweeps"]

_yaml_hash = sweeps.grid_search.yaml_hash
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


sweeps.grid_search.yaml_hash = _memo_yaml_hash

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


def _engine_runs(runs: Iterable[RunView], paths: Mapping[str, KeyPath]) -> list[Any]:
    # A non-finite metric is given as it is: sweeps' bayes reads a run's metric through
    # SweepRun.metric_extremum, which keeps finite numbers only (sweeps/run.py is_number),
    # and imputes the worst value for a run that has none (bayes_search.py
    # _construct_gp_data), which is what a diverged run should count as.
    return [
        sweeps.SweepRun(
            name=run.name,
            state=_ENGINE_STATE[RunState(run.state)],
            config={
                _NESTING.join(paths.get(name, (name,))): param for name, param in run.params.items()
            },
            summaryMetrics=run.summary,
            sampledHistory=run.history,
            stopped=run.state == RunState.STOPPED,
        )
        for run in runs
    ]


def next_params(
    config: Mapping[str, Any], runs: list[RunView], run_cap: int | None = None
) -> dict[str, Any] | None:
    """The next run's parameters, or None when the sweep has nothing more to try.

    Args:
        config: The sweep config as written (W&B's key paths).
        runs: Every run of the sweep, any state, in creation order.
        run_cap: W&B's `run_cap`: no suggestion once the sweep has this many runs.

    Returns:
        {column name: {"value": v}} (W&B's form), or None: the grid is walked, or the cap met.
    """
    if run_cap is not None and len(runs) >= run_cap:
        return None
    paths = key_paths(config)
    suggestion = sweeps.next_run(dict(config), _engine_runs(runs, paths))
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

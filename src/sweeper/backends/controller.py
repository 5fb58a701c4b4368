"""Sweep control as pure functions of (sweep config, runs), the way W&B's server decides.

The store loads the state, calls these inside one write transaction, and saves the answer;
nothing here touches a database, a clock or a process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sweeper._sweeps import sweeps
from sweeper.sweep import KeyPath, RunView, key_paths, values_of

_ENGINE_STATE = {
    "pending": "pending",
    "preempted": "preempted",
    "running": "running",
    "finished": "finished",
    "stopped": "finished",
    "failed": "failed",
    "crashed": "crashed",
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
            state=_ENGINE_STATE[run.state],
            config={
                _NESTING.join(paths.get(name, (name,))): param for name, param in run.params.items()
            },
            summaryMetrics=run.summary,
            sampledHistory=run.history,
            stopped=run.state == "stopped",
        )
        for run in runs
    ]


def next_params(
    config: Mapping[str, Any], runs: list[RunView], run_cap: int | None = None
) -> dict[str, Any] | None:
    """The next run's parameters as {column name: {"value": v}}, or None when the sweep has
    nothing more to try. The engine gets the sweep config as written: W&B's key paths."""
    if run_cap is not None and len(runs) >= run_cap:
        return None
    paths = key_paths(config)
    suggestion = sweeps.next_run(dict(config), _engine_runs(runs, paths))
    if suggestion is None:
        return None
    return {name: {"value": value} for name, value in values_of(suggestion.config, paths).items()}


def runs_to_stop(config: Mapping[str, Any], runs: list[RunView]) -> list[str]:
    """Names of running runs that early termination (hyperband) stops now."""
    if not config.get("early_terminate"):
        return []
    stopped = sweeps.stop_runs(dict(config), _engine_runs(runs, key_paths(config)))
    return [run.name for run in stopped if run.name]

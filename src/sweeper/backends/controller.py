"""Sweep control as pure functions of (sweep config, runs), the way W&B's server decides.

The store loads the state, calls these inside one write transaction, and saves the answer;
nothing here touches a database, a clock or a process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sweeper._sweeps import sweeps
from sweeper.sweep import RunView, flat_parameters, nest_parameters, unwrap

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
"""How the engine names a nested parameter internally (sweeps 0.2.0 suggests nested configs
but looks previous runs up by these flat names: without them a nested grid never advances)."""


def _engine_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {**config, "parameters": nest_parameters(flat_parameters(config["parameters"]))}


def _engine_runs(runs: Iterable[RunView]) -> list[Any]:
    return [
        sweeps.SweepRun(
            name=run.name,
            state=_ENGINE_STATE[run.state],
            config={path.replace(".", _NESTING): param for path, param in run.params.items()},
            summaryMetrics=run.summary,
            sampledHistory=run.history,
            stopped=run.state == "stopped",
        )
        for run in runs
    ]


def next_params(
    config: Mapping[str, Any], runs: list[RunView], run_cap: int | None = None
) -> dict[str, Any] | None:
    """The next run's parameters as {dotted path: {"value": v}}, or None when the sweep has
    nothing more to try."""
    if run_cap is not None and len(runs) >= run_cap:
        return None
    suggestion = sweeps.next_run(_engine_config(config), _engine_runs(runs))
    if suggestion is None:
        return None
    return {path: {"value": value} for path, value in unwrap(suggestion.config).items()}


def runs_to_stop(config: Mapping[str, Any], runs: list[RunView]) -> list[str]:
    """Names of running runs that early termination (hyperband) stops now."""
    if not config.get("early_terminate"):
        return []
    stopped = sweeps.stop_runs(_engine_config(config), _engine_runs(runs))
    return [run.name for run in stopped if run.name]

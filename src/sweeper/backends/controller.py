"""Sweep control as pure functions of (sweep config, runs), the way W&B's server decides.

The store loads the state, calls these inside one write transaction, and saves the answer;
nothing here touches a database, a clock or a process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeper._sweeps import sweeps

TERMINAL = ("finished", "stopped", "failed", "crashed")
"""States a run never leaves. `stopped` means early-terminated: finished, but cut short."""

ACTIVE = ("pending", "preempted", "running")

_ENGINE_STATE = {
    "pending": "pending",
    "preempted": "preempted",
    "running": "running",
    "finished": "finished",
    "stopped": "finished",
    "failed": "failed",
    "crashed": "crashed",
}


@dataclass
class RunView:
    """What the engine needs to know about one run."""

    name: str
    state: str
    params: dict[str, Any]
    """W&B form: {name: {"value": v}}."""
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _engine_runs(runs: Iterable[RunView]) -> list[Any]:
    return [
        sweeps.SweepRun(
            name=run.name,
            state=_ENGINE_STATE[run.state],
            config=run.params,
            summaryMetrics=run.summary,
            sampledHistory=run.history,
            stopped=run.state == "stopped",
        )
        for run in runs
    ]


def next_params(
    config: Mapping[str, Any], runs: list[RunView], run_cap: int | None = None
) -> dict[str, Any] | None:
    """The next run's parameters, or None when the sweep has nothing more to try."""
    if run_cap is not None and len(runs) >= run_cap:
        return None
    suggestion = sweeps.next_run(dict(config), _engine_runs(runs))
    return None if suggestion is None else suggestion.config


def runs_to_stop(config: Mapping[str, Any], runs: list[RunView]) -> list[str]:
    """Names of running runs that early termination (hyperband) stops now."""
    if not config.get("early_terminate"):
        return []
    return [run.name for run in sweeps.stop_runs(dict(config), _engine_runs(runs)) if run.name]


def best_run(runs: Iterable[RunView], metric: str, goal: str) -> tuple[RunView, float] | None:
    """The finished run with the best summary metric (failed and running runs never win)."""
    scored = [
        (run, float(run.summary[metric]))
        for run in runs
        if run.state in ("finished", "stopped") and isinstance(run.summary.get(metric), int | float)
    ]
    if not scored:
        return None
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda pair: pair[1])

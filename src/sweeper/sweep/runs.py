"""A run as the engine and the summaries see it, whichever backend it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunView:
    """What the engine and the summaries need to know about one run: the fields of W&B's
    `sweeps.SweepRun` (name, state, config, summary_metrics, history), from any backend."""

    name: str
    """The run id."""
    state: str
    """Its `RunState` value."""
    params: dict[str, Any]
    """Flat W&B form: {column name: {"value": v}} (column names: `sweeper.sweep.params`)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Its last logged values, {key: value}."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Its logged steps in order, one {key: value} per step: hyperband reads the metric at
    each band's step from it."""

"""`planned_trials` counts exactly the runs W&B's grid engine hands out, without listing them."""

from __future__ import annotations

from typing import Any

import pytest

from sweeper.sweep import RunState, RunView, ended_trials, planned_trials
from sweeper.sweep.engine import next_params


def _engine_runs(config: dict[str, Any]) -> int:
    """How many runs W&B's `sweeps` engine suggests before it says the grid is done."""
    runs: list[RunView] = []
    while (params := next_params(config, runs)) is not None:
        runs.append(RunView(f"r{len(runs)}", RunState.FINISHED, params))
        assert len(runs) <= 1_000, "the grid never ends"
    return len(runs)


GRIDS = [
    {"a": {"values": [1, 2, 3]}, "b": {"value": "x"}},
    {"depth": {"min": 2, "max": 5}},  # int_uniform, inferred from int bounds as W&B does
    {"lr": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.3}},  # 0, .3, .6, .9
    {"lr": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25}},  # 1.0 left out
    {"model": {"parameters": {"width": {"values": [8, 16]}, "depth": {"min": 1, "max": 3}}}},
]


@pytest.mark.parametrize("parameters", GRIDS)
def test_grid_count_is_the_engines(parameters: dict[str, Any]) -> None:
    config = {"method": "grid", "parameters": parameters}
    assert planned_trials(config) == _engine_runs(config)


def test_run_cap_bounds_a_grid_and_sizes_every_other_method() -> None:
    grid = {"method": "grid", "parameters": {"a": {"values": list(range(10))}}}
    assert planned_trials(grid) == 10
    assert planned_trials({**grid, "run_cap": 4}) == 4
    assert planned_trials({**grid, "run_cap": 40}) == 10
    bayes = {"method": "bayes", "parameters": {"a": {"min": 0.0, "max": 1.0}}}
    assert planned_trials(bayes) is None, "runs until stopped"
    assert planned_trials({**bayes, "run_cap": 7}) == 7


def test_a_grid_over_a_continuous_parameter_is_refused_as_the_engine_refuses_it() -> None:
    config = {"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    with pytest.raises(ValueError, match="lr"):
        planned_trials(config)


def test_ended_trials_counts_every_state_but_the_active_ones() -> None:
    counts = {"finished": 3, "failed": 1, "crashed": 1, "stopped": 2, "running": 4, "pending": 5}
    assert ended_trials({**counts, "preempted": 6}) == 7

"""`engine.Grid` walks W&B's grid exactly as the `sweeps` engine does, from point numbers
alone: the same points in the same order, with the engine's identity of a value (its YAML
hash: 0, 0.0, False and "0" are four values; a repeated value is one), its names for nested
parameters, and its rule that a run in any state takes its point."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from sweeper.sweep import RunState, RunView
from sweeper.sweep.engine import NOT_A_POINT, Grid, next_grid_point, next_params

GRIDS: list[dict[str, Any]] = [
    {"a": {"values": [1, 2, 3]}, "b": {"value": "x"}},
    {"depth": {"min": 2, "max": 5}},  # int_uniform
    {"lr": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.3}},
    {"z": {"values": [0, 0.0, False, None, "0", [1], {"k": 1}, 0, -0.0, True, 1]}},
    {"b": {"values": [1, 1, 2, 1.0]}, "a": {"values": ["x", "y"]}, "c.d": {"values": [{"u": 1}]}},
    {
        "model": {"parameters": {"width": {"values": [8, 16]}, "depth": {"min": 1, "max": 3}}},
        "opt": {"parameters": {"lr": {"values": [0.1, 0.01]}, "name": {"value": "sgd"}}},
        "seed": {"values": [0, 1]},
    },
    {"k": {"value": 3}},  # no discrete parameter: one point
]


def _exact(params: dict[str, Any] | None) -> str:
    """Params with each value's type kept (0, 0.0 and False differ)."""
    return json.dumps(params, sort_keys=True, default=repr) + repr(
        sorted((k, type(v["value"]).__name__) for k, v in (params or {}).items())
    )


def _engine_walk(config: dict[str, Any], before: list[RunView]) -> list[str]:
    runs = list(before)
    out = []
    while (params := next_params(config, runs)) is not None:
        out.append(_exact(params))
        runs.append(RunView(f"r{len(runs)}", RunState.RUNNING, params))
        assert len(out) <= 500, "the grid never ends"
    return out


def _grid_walk(config: dict[str, Any], before: list[RunView]) -> list[str]:
    grid = Grid(config)
    taken = sorted({grid.index_of(run.params) for run in before} - {NOT_A_POINT})
    out = []
    while (found := next_grid_point(grid, 0, taken, len(taken))) is not None:
        point, params = found
        assert grid.index_of(params) == point
        out.append(_exact(params))
        taken = sorted([*taken, point])
    return out


@pytest.mark.parametrize("parameters", GRIDS)
def test_the_walk_is_the_engines_from_scratch_and_around_taken_points(
    parameters: dict[str, Any],
) -> None:
    config = {"method": "grid", "parameters": parameters}
    whole = _engine_walk(config, [])
    assert _grid_walk(config, []) == whole
    assert Grid(config).size == len(whole)
    every = []
    runs: list[RunView] = []
    while (params := next_params(config, runs)) is not None:
        every.append(params)
        runs.append(RunView(f"r{len(runs)}", RunState.FINISHED, params))
    states = [RunState.FINISHED, RunState.FAILED, RunState.CRASHED, RunState.PREEMPTED]
    chooser = random.Random(len(every))
    for _ in range(5):
        taken = chooser.sample(every, chooser.randint(0, len(every)))
        before = [
            RunView(f"t{i}", chooser.choice(states), params) for i, params in enumerate(taken)
        ]
        # runs that take no point: a value outside the grid, a parameter missing
        before.append(RunView("odd", RunState.FINISHED, {"zz": {"value": 1}}))
        assert _grid_walk(config, before) == _engine_walk(config, before)


def test_a_value_of_another_type_takes_no_point() -> None:
    grid = Grid({"method": "grid", "parameters": {"x": {"values": [0, 1]}}})
    assert grid.index_of({"x": {"value": 1}}) == 1
    assert grid.index_of({"x": {"value": 1.0}}) == NOT_A_POINT  # YAML's 1.0 is not 1
    assert grid.index_of({"x": {"value": True}}) == NOT_A_POINT
    assert grid.index_of({"y": {"value": 0}}) == NOT_A_POINT


def test_next_free_starts_where_every_lower_point_is_taken() -> None:
    grid = Grid({"method": "grid", "parameters": {"x": {"values": list(range(10))}}})
    assert grid.next_free(4, [4, 4, 5, 7]) == 6
    assert grid.next_free(8, [8, 9]) is None
    assert next_grid_point(grid, 0, [], runs=3, run_cap=3) is None  # W&B's run_cap


def test_a_grid_of_a_continuous_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="lr"):
        Grid({"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0}}})

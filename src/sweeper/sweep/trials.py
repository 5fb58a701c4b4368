"""How many trials a sweep runs: counted once here, for `validate`, `launch`'s progress bar,
`status`, `sweeps` and the cost estimate alike.

W&B's grid is the only method whose length is known up front; every other method runs until
its `run_cap` or until it is stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sweeper.sweep.params import flat_parameters
from sweeper.sweep.states import ACTIVE


def grid_points(name: str, parameter: Mapping[str, Any]) -> int:
    """How many values W&B's grid gives one (flat) parameter, without listing them.

    The kind of parameter is the one W&B's engine infers (`sweeps.params.HyperParameter`), and
    the count is the one `sweeps.grid_search.grid_search_next_runs` enumerates: a constant is
    one point, `values` one point each, int_uniform `range(min, max + 1)`, q_uniform
    `numpy.arange(min, max, q)` (whose length is `ceil((max - min) / q)`, numpy's rule).

    Raises:
        ValueError: the parameter is of a kind W&B's grid refuses (a continuous distribution,
            or values weighted with `probabilities`).
        jsonschema.ValidationError: W&B's schema does not accept the parameter at all.
    """
    from sweeper.sweep.engine import sweeps  # scipy, scikit-learn: imported when counting

    kind = sweeps.params.HyperParameter(name, dict(parameter))
    if kind.type == kind.CONSTANT:
        return 1
    if kind.type == kind.CATEGORICAL:
        return len(kind.config["values"])
    if kind.type == kind.INT_UNIFORM:
        return max(0, int(kind.config["max"]) - int(kind.config["min"]) + 1)
    if kind.type == kind.Q_UNIFORM:
        low, high, q = (float(kind.config[key]) for key in ("min", "max", "q"))
        return max(0, math.ceil((high - low) / q))
    raise ValueError(f"{name}: W&B's grid search cannot enumerate a {kind.type} parameter")


def planned_trials(config: Mapping[str, Any]) -> int | None:
    """How many trials a W&B sweep config runs, when that is known up front: a grid's points
    (a study's repeats are a swept `seed`, so they are counted), at most its `run_cap`; for any
    other method its `run_cap`, or None when it runs until stopped.

    W&B: https://docs.wandb.ai/guides/sweeps/define-sweep-configuration (`run_cap`, `method`).

    Raises:
        ValueError: a grid over a parameter W&B's grid cannot enumerate (see `grid_points`).
    """
    cap: int | None = config.get("run_cap")
    if config["method"] != "grid":
        return cap
    parameters = flat_parameters(config.get("parameters") or {})
    size = math.prod(grid_points(name, p) for name, p in parameters.items())
    return min(size, cap) if cap else size


def ended_trials(counts: Mapping[str, int]) -> int:
    """Runs of a sweep that are over, whatever their end, from its runs per state: what a
    progress line counts as done out of `planned_trials`."""
    return sum(n for state, n in counts.items() if state not in ACTIVE)

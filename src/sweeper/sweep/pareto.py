"""The Pareto front of a multi-objective sweep, and the rule that picks one run from it.

A sweep with W&B's `metrics:` list (two or more `{name, goal}`; wandb 0.31,
wandb/sdk/sweeps/scheduler/optimizer.py `Optimizer.metric_names` / `metric_goals`) has no single
best: every place that would name one (`status`, launch's closing table, the report) shows the
front instead. A staged study still needs one configuration to carry into the next stage; the
spec's `select:` names the rule that picks it (`select_from_front`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.sweep.states import DONE

if TYPE_CHECKING:
    import pandas as pd

Objective = tuple[str, str]
"""(summary key, goal): goal is "maximize" or "minimize"."""


def sweep_objectives(sweep_config: Mapping[str, Any]) -> list[Objective]:
    """The sweep's objectives in declaration order, as W&B's scheduler reads them: the
    `metrics:` list when there is one, else the single `metric`; a goal defaults to minimize
    and is read lower-cased (wandb/sdk/sweeps/scheduler/optimizer.py `metric_names`,
    `metric_goals`). An entry without a name is skipped, as there; no metric at all: []."""
    metrics = sweep_config.get("metrics")
    if metrics is None:
        metric = sweep_config.get("metric") or {}
        metrics = [metric] if metric.get("name") else []
    return [
        (str(m["name"]), str(m.get("goal", "minimize")).lower())
        for m in metrics
        if isinstance(m, Mapping) and m.get("name")
    ]


def is_multi_objective(sweep_config: Mapping[str, Any]) -> bool:
    """Whether the sweep optimises two or more metrics (a `metrics:` list of 2+)."""
    return len(sweep_objectives(sweep_config)) >= 2


def front_mask(values: np.ndarray, goals: Sequence[str]) -> np.ndarray:
    """Which rows are Pareto-optimal: no other row is at least as good in every objective and
    better in one. A row with a NaN is never on the front (and dominates nothing); +-inf are
    numbers ordered plainly; equal rows do not dominate each other, so ties stay together.

    Args:
        values: [n_rows, n_objectives] floats.
        goals: one per column, "maximize" or anything else (minimize, W&B's default).

    Returns:
        [n_rows] bool.

    Raises:
        ValueError: `values` is not 2-D or its column count differs from len(goals).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(goals):
        raise ValueError(f"values of shape {values.shape} for {len(goals)} goals")
    sign = np.array([1.0 if g == "maximize" else -1.0 for g in goals])
    gain = values * sign  # larger is better in every column
    mask = np.zeros(len(gain), dtype=bool)
    valid = np.flatnonzero(~np.isnan(gain).any(axis=1))
    if not len(valid):
        return mask
    # In descending lexicographic order a row's dominators all come before it, and one of
    # them is on the front (dominance is transitive), so each row is checked against the
    # front found so far only.
    order = valid[np.lexsort(-gain[valid].T[::-1])]
    front = np.empty((0, gain.shape[1]))
    for i in order:
        row = gain[i]
        if len(front) and bool(((front >= row).all(axis=1) & (front > row).any(axis=1)).any()):
            continue
        mask[i] = True
        front = np.vstack([front, row])
    return mask


def scored_runs(runs: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The runs a front is drawn from: finished or early-stopped (DONE) with a numeric value of
    every metric (text and NaN never score; +-inf do), in creation order.

    Args:
        runs: a run table (`sweeper.sweep.runtable`): `state`, `summary.<metric>` and, for
            the order, `created_at` columns are read.
        objectives: (metric, goal) pairs (`sweep_objectives`).

    Returns:
        Those rows of `runs`, every column kept; none when a metric was never logged.
    """
    import pandas as pd

    done = runs[runs["state"].isin(DONE)] if "state" in runs else runs
    if not objectives or any(f"summary.{m}" not in done for m, _ in objectives):
        return done.iloc[0:0]
    if "created_at" in done:
        done = done.sort_values("created_at", kind="stable")
    numeric = [pd.to_numeric(done[f"summary.{m}"], errors="coerce") for m, _ in objectives]
    return done[np.logical_and.reduce([v.notna().to_numpy() for v in numeric])]


def pareto_front(runs: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The scored runs (`scored_runs`) no other scored run dominates (`front_mask`), each goal
    respected; a missing or NaN value keeps a run off the front.

    Args:
        runs: a run table, as `scored_runs` reads it.
        objectives: (metric, goal) pairs (`sweep_objectives`).

    Returns:
        The front's rows of `runs` (every column kept), ordered best first by the first
        objective, then by the next ones, then the run made first. No rows when no run counts.
    """
    import pandas as pd

    scored = scored_runs(runs, objectives)
    if scored.empty:
        return scored
    values = np.column_stack(
        [pd.to_numeric(scored[f"summary.{m}"]).to_numpy(dtype=float) for m, _ in objectives]
    )
    goals = [g for _, g in objectives]
    front = scored[front_mask(values, goals)]
    keys = [f"summary.{m}" for m, _ in objectives]
    ascending = [g != "maximize" for g in goals]
    return front.sort_values(keys, ascending=ascending, kind="stable")


@dataclass(frozen=True)
class SelectRule:
    """How a staged study picks the one run of a stage's front it carries on (spec `select:`).

    Exactly one of `metric` (the front's best value of that metric, by its goal) and `weights`
    ({metric: weight}: the largest weighted sum of the raw values; a negative weight penalises).
    """

    metric: str | None = None
    weights: dict[str, float] | None = None

    @classmethod
    def from_spec(cls, select: Mapping[str, Any] | None) -> SelectRule | None:
        """The rule a spec's `select:` block (already validated) names; None for none."""
        if not select:
            return None
        weights = select.get("weights")
        return cls(
            select.get("metric"),
            {str(k): float(v) for k, v in weights.items()} if weights else None,
        )

    def describe(self) -> str:
        """The rule for a table cell: `best mAP` or `max 1*mAP - 0.1*train_time_s`."""
        if self.metric:
            return f"best {self.metric}"
        text = ""
        for metric, weight in (self.weights or {}).items():
            sign = "-" if weight < 0 else "+"
            text += f" {sign} {abs(weight):g}*{metric}" if text else f"{weight:g}*{metric}"
        return f"max {text}"


@dataclass(frozen=True)
class FrontChoice:
    """The run of a front a rule picked."""

    run_id: str
    config: dict[str, Any]
    """{column name: value} of the swept parameters (seed excluded)."""
    values: dict[str, float]
    """{metric: the run's value} for each objective."""
    rule: str
    """`SelectRule.describe` of the rule that picked it."""


def select_from_front(
    front: pd.DataFrame,
    objectives: Sequence[Objective],
    rule: SelectRule,
    params: Sequence[str],
) -> FrontChoice | None:
    """The one run of a front the rule picks; a tie goes to the front's earlier row (the
    better first objective, then the run made first: `pareto_front`'s order).

    Args:
        front: `pareto_front`'s rows.
        objectives: the sweep's (metric, goal) pairs.
        rule: the spec's `select:`; its metrics are among `objectives` (the spec checks it).
        params: the swept parameters' column names, for the chosen configuration.

    Returns:
        The choice; None for an empty front.

    Raises:
        ValueError: the rule names a metric that is not an objective.
    """
    from sweeper.sweep.best import plain

    if front.empty:
        return None
    goals = dict(objectives)
    named = [rule.metric] if rule.metric else list(rule.weights or {})
    unknown = [m for m in named if m not in goals]
    if not named or unknown:
        known = ", ".join(goals)
        raise ValueError(f"select names {unknown or 'no metric'}; the metrics are {known}")
    if rule.metric:
        sign = 1.0 if goals[rule.metric] == "maximize" else -1.0
        weights = {rule.metric: sign}
    else:
        weights = dict(rule.weights or {})
    score = np.zeros(len(front))
    for metric, weight in weights.items():
        score = score + weight * front[f"summary.{metric}"].astype(float).to_numpy()
    score = np.where(np.isnan(score), -math.inf, score)  # +inf - inf: never the choice
    row = front.iloc[int(np.argmax(score))]
    return FrontChoice(
        run_id=str(row.get("run_id")),
        config={p: plain(row.get(f"config.{p}")) for p in params},
        values={m: float(row[f"summary.{m}"]) for m, _ in objectives},
        rule=rule.describe(),
    )

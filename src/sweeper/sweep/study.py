"""A staged study: which stage's best is carried into the next, and where a re-run resumes.

A study is a chain of sweeps made from one spec, one per stage. Stage k+1 starts from the
base config plus everything stage k fixed and the values of stage k's best configuration for
the parameters stage k searched (the best mean over repeats: `sweeper.sweep.best`; with
several `metrics:`, the run of stage k's Pareto front the spec's `select:` picks:
`sweeper.sweep.pareto`). W&B has no stages: each stage is a plain W&B sweep whose carried
values are constant parameters
(`{"value": v}`, https://docs.wandb.ai/guides/sweeps/define-sweep-configuration/). These
functions only decide; reading the store and making sweeps is `sweeper.agent.launch`'s work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sweeper.sweep.best import BestConfiguration, best_configuration
from sweeper.sweep.params import swept_params
from sweeper.sweep.pareto import (
    FrontChoice,
    SelectRule,
    is_multi_objective,
    pareto_front,
    select_from_front,
    sweep_objectives,
)

if TYPE_CHECKING:
    import pandas as pd


class StageSweep(Protocol):
    """What the study rules read of a sweep record (`sweeper.backends.base.SweepRecord`)."""

    @property
    def study(self) -> str | None:
        """The study's id, shared by its stages' sweeps; None for a sweep of no study."""
        ...

    @property
    def stage(self) -> int:
        """The stage's index in the spec's `stages` (0 for a single-stage sweep)."""
        ...

    @property
    def created_at(self) -> float:
        """When the sweep was made, Unix seconds: the latest attempt of a stage wins."""
        ...


S = TypeVar("S", bound=StageSweep)


def sweep_metric(sweep_config: Mapping[str, Any]) -> tuple[str, str]:
    """The sweep's (metric name, goal); W&B's goal defaults to minimize
    (https://docs.wandb.ai/guides/sweeps/sweep-config-keys/#metric). A sweep with only a
    `metrics:` list: its first objective (`sweeper.sweep.pareto.sweep_objectives`), the one
    plots are coloured by. No metric: ("", goal)."""
    metric = sweep_config.get("metric") or {}
    if not metric.get("name") and (objectives := sweep_objectives(sweep_config)):
        return objectives[0]
    return metric.get("name", ""), metric.get("goal", "minimize")


def reaches_target(sweep_config: Mapping[str, Any], summary: Mapping[str, Any]) -> bool:
    """Whether a run's summary reaches the sweep's `metric.target`: at or below it to minimize,
    at or above it to maximize. W&B then sets the sweep FINISHED: no new runs, running ones
    finish (https://docs.wandb.ai/guides/sweeps/sweep-config-keys/#metric). False with no
    target or no numeric value of the metric."""
    target = (sweep_config.get("metric") or {}).get("target")
    name, goal = sweep_metric(sweep_config)
    value = summary.get(name)
    if target is None or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bool(value >= target if goal == "maximize" else value <= target)


def stage_best(runs: pd.DataFrame, sweep_config: Mapping[str, Any]) -> BestConfiguration | None:
    """A stage's best configuration over its repeats, ranked on the sweep's own metric.

    Args:
        runs: the stage's run table (`sweeper.sweep.runtable.run_table`).
        sweep_config: the stage's W&B sweep config: its `metric` and `parameters`.

    Returns:
        The best configuration of the swept parameters (seed excluded); None when the sweep has
        no metric or no finished run with a numeric value of it.
    """
    metric, goal = sweep_metric(sweep_config)
    if not metric:
        return None
    return best_configuration(runs, swept_params(sweep_config, columns=runs.columns), metric, goal)


def carried_config(
    best_config: Mapping[str, Any], searched: Iterable[str], previous: Mapping[str, Any]
) -> dict[str, Any]:
    """What stage k+1 inherits: everything stage k fixed plus stage k's winning values.

    Args:
        best_config: stage k's best configuration, {column name: value}.
        searched: the column names stage k searched (its `search:` paths).
        previous: what stage k itself inherited, {column name: value}.

    Returns:
        {column name: value}: `previous`, with each searched parameter set to its winning
        value. A value is one value even when it is a dict (W&B's values are opaque), so a
        winning dict replaces an inherited one, it is never merged into it.
    """
    won = {name: best_config[name] for name in searched if name in best_config}
    return {**previous, **won}


@dataclass(frozen=True)
class CarryOver:
    """A finished stage's outcome, as the next stage starts from it."""

    best: BestConfiguration | None
    """The stage's best configuration over its repeats (one metric); None with several."""
    carried: dict[str, Any]
    """{column name: value} the next stage gets as fixed values (see `carried_config`)."""
    choice: FrontChoice | None = None
    """With several metrics: the run of the stage's Pareto front the spec's `select:` picked
    (None without a `select:`: nothing is carried, as for a study's last stage)."""

    @property
    def config(self) -> dict[str, Any]:
        """The chosen configuration of the stage's swept parameters ({} when none was)."""
        if self.choice is not None:
            return self.choice.config
        return self.best.config if self.best is not None else {}


def carry_rule(sweep_config: Mapping[str, Any], select: Mapping[str, Any] | None) -> str:
    """Which rule picks the configuration a stage carries on, for the study's summary table:
    `best mean <metric>` with one metric, the spec's `select:` (`SelectRule.describe`) on a
    Pareto front with several; `-` for a multi-objective stage without `select:`."""
    if is_multi_objective(sweep_config):
        rule = SelectRule.from_spec(select)
        return f"Pareto front, {rule.describe()}" if rule else "-"
    metric, _ = sweep_metric(sweep_config)
    return f"best mean {metric}" if metric else "-"


def carry_over(
    runs: pd.DataFrame,
    sweep_config: Mapping[str, Any],
    searched: Iterable[str],
    previous: Mapping[str, Any],
    select: Mapping[str, Any] | None = None,
) -> CarryOver | None:
    """A finished stage's chosen configuration, and what the next stage inherits from it.

    With one metric that is the best configuration over repeats (`stage_best`); with a
    `metrics:` list of two or more, the run of the stage's Pareto front that `select` picks
    (`sweeper.sweep.pareto.select_from_front`).

    Args:
        runs: the stage's run table.
        sweep_config: the stage's W&B sweep config.
        searched: the column names the stage searched.
        previous: what the stage itself inherited.
        select: the spec's `select:` block ({metric: NAME} or {weights: {NAME: W}}); only read
            for a multi-objective stage. Without it such a stage carries nothing on.

    Returns:
        The carry-over; None when no run finished with a numeric metric (every metric, for
        several), so there is nothing to start the next stage from.
    """
    if is_multi_objective(sweep_config):
        objectives = sweep_objectives(sweep_config)
        front = pareto_front(runs, objectives)
        if front.empty:
            return None
        rule = SelectRule.from_spec(select)
        if rule is None:
            return CarryOver(None, dict(previous))
        searched_here = swept_params(sweep_config, columns=front.columns)
        choice = select_from_front(front, objectives, rule, searched_here)
        if choice is None:
            return None
        return CarryOver(None, carried_config(choice.config, searched, previous), choice)
    best = stage_best(runs, sweep_config)
    if best is None:
        return None
    return CarryOver(best, carried_config(best.config, searched, previous))


def latest_stages(sweeps: Iterable[S]) -> dict[int, S]:
    """The stages of the study made last, as a re-run resumes it.

    Args:
        sweeps: sweeps made from one spec, in any order (a stage made twice is in it twice).

    Returns:
        {stage index: the latest sweep made for it} of the study whose newest sweep is the
        newest of all; a sweep outside any study (one stage) stands alone. Empty for no sweeps.
    """
    made = sorted(sweeps, key=lambda sweep: sweep.created_at)
    if not made:
        return {}
    study = made[-1].study
    if study is None:
        return {made[-1].stage: made[-1]}
    return {sweep.stage: sweep for sweep in made if sweep.study == study}


@dataclass(frozen=True)
class StageStart(Generic[S]):
    """Where stage `index` of a re-run study starts from."""

    sweep: S
    made: bool
    """True: `sweep` is the stage itself, made before (it keeps what it inherited then);
    False: `sweep` is the stage before it, whose best the stage carries on once it is
    complete."""


def stage_start(stages: Mapping[int, S], index: int) -> StageStart[S] | None:
    """Which sweep stage `index` of a study starts from (see `StageStart`).

    Args:
        stages: the study's sweeps by stage index (`latest_stages`).
        index: the stage to start, 0-based.

    Returns:
        The stage's own sweep if it was made, else the stage before it if that was made; None
        when neither was: the stage before has to run first.
    """
    if index in stages:
        return StageStart(stages[index], made=True)
    if index - 1 in stages:
        return StageStart(stages[index - 1], made=False)
    return None

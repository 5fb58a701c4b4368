"""What a sweep means, in one place: run states, parameter identity, the best configuration,
the run table, the Pareto front, trial counts and a staged study's rules.

The backends, the agent, the CLI and the report all read sweeps through this package, so
"finished", "swept" and "best" mean the same everywhere. Each module is small and named for
what it holds; this one gathers their public names.
"""

from sweeper.sweep.best import BestConfiguration, best_configuration, config_table, hashable, plain
from sweeper.sweep.params import (
    KeyPath,
    ParameterClash,
    flat_parameters,
    key_paths,
    nest_parameters,
    parameter_paths,
    run_config,
    swept_params,
    values_of,
)
from sweeper.sweep.pareto import (
    FrontChoice,
    SelectRule,
    front_mask,
    is_multi_objective,
    pareto_front,
    scored_runs,
    select_from_front,
    sweep_objectives,
)
from sweeper.sweep.runs import RunView
from sweeper.sweep.runtable import RUN_COLUMNS, RunRow, run_table
from sweeper.sweep.states import (
    ACTIVE,
    DONE,
    SWEEP_VERBS,
    TERMINAL,
    RunState,
    SweepState,
    check_transition,
)
from sweeper.sweep.study import (
    CarryOver,
    StageStart,
    carried_config,
    carry_over,
    carry_rule,
    latest_stages,
    stage_best,
    stage_start,
)
from sweeper.sweep.trials import ended_trials, grid_points, planned_trials

__all__ = [
    "ACTIVE",
    "DONE",
    "RUN_COLUMNS",
    "SWEEP_VERBS",
    "TERMINAL",
    "BestConfiguration",
    "CarryOver",
    "FrontChoice",
    "KeyPath",
    "ParameterClash",
    "RunRow",
    "RunState",
    "RunView",
    "SelectRule",
    "StageStart",
    "SweepState",
    "best_configuration",
    "carried_config",
    "carry_over",
    "carry_rule",
    "check_transition",
    "config_table",
    "ended_trials",
    "flat_parameters",
    "front_mask",
    "grid_points",
    "hashable",
    "is_multi_objective",
    "key_paths",
    "latest_stages",
    "nest_parameters",
    "parameter_paths",
    "pareto_front",
    "plain",
    "planned_trials",
    "run_config",
    "run_table",
    "scored_runs",
    "select_from_front",
    "stage_best",
    "stage_start",
    "sweep_objectives",
    "swept_params",
    "values_of",
]

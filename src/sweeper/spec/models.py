"""The experiment spec: one YAML file, validated before anything runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sweeper.errors import shown

Method = Literal["grid", "random", "bayes", "custom"]
"""W&B's sweep methods (the schema's `method` enum). `custom`: suggestions come from a
`scheduler:` engine (optuna or ax), not from W&B's own search."""
Goal = Literal["maximize", "minimize"]
Engine = Literal["wandb", "optuna", "ax"]
"""The engines wandb 0.31's sweep scheduler builds (wandb/sdk/sweeps/scheduler/optimizer.py
`make_optimizer`)."""

SEED_MAX = 2**63 - 1
"""The largest sweep seed: the stores keep it as a signed 64-bit integer (SQLite INTEGER,
PostgreSQL BIGINT)."""

DistributionName = Literal[
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
]

GRID_DISTRIBUTIONS = {"constant", "categorical", "int_uniform", "q_uniform"}
MAX_GRID = 100_000

NAME_MAX = 128
"""W&B's longest project name (wandb/sdk/wandb_settings.py `validate_project`,
wandb/sdk/artifacts/_validators.py `NAME_MAXLEN`); sweeper holds entities and sweep names to it
too (W&B documents no other cap for them)."""
NAME_FORBIDDEN = "/\\#?%:"
"""Characters W&B refuses in a project name (wandb/sdk/wandb_settings.py `validate_project`):
each name is one segment of W&B's `entity/project/sweep` paths and URLs."""


def check_wandb_name(value: str) -> str:
    """A project or entity as W&B takes it: 1-128 characters, none of `/ \\ # ? % :`.

    Raises:
        ValueError: naming the rule broken (pydantic makes it the field's error).
    """
    if not value:
        raise ValueError("must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"{len(value):,} characters; W&B allows at most {NAME_MAX}")
    found = sorted({c for c in value if c in NAME_FORBIDDEN})
    if found:
        raise ValueError(
            f"{shown(value)}: W&B names cannot contain {' '.join(NAME_FORBIDDEN)} "
            f"(found {' '.join(found)})"
        )
    return value


WandbName = Annotated[str, AfterValidator(check_wandb_name)]


def first_error(error: ValidationError) -> tuple[str, str]:
    """The first fault pydantic found, as (dotted field path, message).

    A bound W&B takes as `int | float` that is neither fails once per member, located at
    `min.int`; it is said as the field's own error instead.
    """
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    message = first["msg"].removeprefix("Value error, ")
    if loc and loc[-1] in ("int", "float") and first["type"].startswith(("int_", "float_")):
        loc.pop()
        message = f"expected a number, got {shown(first['input'])}"
    return ".".join(loc), message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A W&B parameter: `value`, `values` (+ `probabilities`), or a named distribution."""

    distribution: DistributionName | None = None
    value: Any = None
    values: list[Any] | None = Field(None, min_length=1)
    probabilities: list[float] | None = None
    min: int | float | None = None
    max: int | float | None = None
    q: float | None = Field(None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(None, gt=0)
    a: float | None = Field(None, gt=0)
    b: float | None = Field(None, gt=0)

    @property
    def kind(self) -> str:
        """The distribution W&B infers when none is named."""
        if self.distribution:
            return self.distribution
        if self.values is not None:
            return "categorical"
        if self.min is not None and self.max is not None:
            ints = isinstance(self.min, int) and isinstance(self.max, int)
            return "int_uniform" if ints else "uniform"
        return "constant"

    @model_validator(mode="after")
    def _arguments_fit(self) -> Distribution:
        kind = self.kind
        if kind == "constant" and "value" not in self.model_fields_set:
            raise ValueError("give `values`, `value`, or a `distribution` with its arguments")
        if kind == "categorical" and self.values is None:
            raise ValueError("categorical needs `values`")
        if self.probabilities is not None:
            if self.values is None or len(self.probabilities) != len(self.values):
                raise ValueError("`probabilities` needs one entry per value in `values`")
            if abs(sum(self.probabilities) - 1) > 1e-6:
                raise ValueError("`probabilities` must sum to 1")
        if "uniform" in kind and (self.min is None or self.max is None):
            raise ValueError(f"{kind} needs `min` and `max`")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"`min` ({self.min}) must be below `max` ({self.max})")
        if kind.endswith("_values") and self.min is not None and self.min <= 0:
            raise ValueError(f"{kind} needs `min` > 0 (it samples on a log scale)")
        if kind.startswith("q_") and self.q is None:
            self.q = 1.0
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """(min, max) as given (ints stay ints): every `*uniform*` kind has both (the validator
        holds it to that).

        Raises:
            ValueError: the parameter has no range (a constant, values, normal or beta).
        """
        if self.min is None or self.max is None:
            raise ValueError(f"a {self.kind} parameter has no `min` and `max`")
        return self.min, self.max

    def to_wandb(self) -> dict[str, Any]:
        """The parameter as W&B's sweep config writes it: only the keys that are set."""
        return self.model_dump(exclude_none=True)


def _list_as_values(value: Any) -> Any:
    """`[1, 2]` is shorthand for `{values: [1, 2]}`: one model, so errors name the real fault."""
    return {"values": value} if isinstance(value, list) else value


SearchValue = Annotated[Distribution, BeforeValidator(_list_as_values)]


def as_distribution(value: Distribution | dict[str, Any]) -> Distribution:
    """A spec's search value, or a compiled W&B parameter dict, as a Distribution."""
    return Distribution.model_validate(value) if isinstance(value, dict) else value


class MetricSpec(_Strict):
    name: str = Field(min_length=1, description="A metric the trainer logs, e.g. val_acc or mAP.")
    goal: Literal["maximize", "minimize"] = "maximize"
    target: float | None = Field(
        None,
        strict=True,  # a quoted "0.5" stays text, as W&B's schema reads it (a number)
        allow_inf_nan=False,  # a NaN target could never be reached
        description="W&B's metric.target: once any run's summary reaches it (at or above to"
        " maximize, at or below to minimize), the sweep is finished: no new runs, running ones"
        " finish.",
    )


Seed = Annotated[int, Field(ge=0, le=SEED_MAX, strict=True)]
"""A sweep's seed: a whole number, strictly (`"42"`, `4.2e1` and `true` are refused)."""


class Objective(_Strict):
    """One of a multi-objective sweep's `metrics:`, the keys wandb 0.31's scheduler reads of it
    (wandb/sdk/sweeps/scheduler/optimizer.py `metric_names`, `metric_goals`)."""

    name: str = Field(min_length=1, strict=True, description="A metric the runs log.")
    goal: Goal | None = Field(
        None, description="W&B's default is minimize (optimizer.py `metric_goals`)."
    )


def check_objectives(metrics: list[Objective]) -> list[Objective]:
    """A `metrics:` list as W&B's engines need it: two or more objectives (one is a `metric`),
    each named once (optuna and Ax key their objectives by name).

    Raises:
        ValueError: fewer than two, or a name given twice.
    """
    if len(metrics) < 2:
        raise ValueError(
            f"give two or more objectives, got {len(metrics)} (a single one is a `metric`)"
        )
    names = [m.name for m in metrics]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"{shown(twice[0])} is given twice; each objective is named once")
    return metrics


Objectives = Annotated[list[Objective], AfterValidator(check_objectives)]


class Scheduler(_Strict):
    """W&B's `scheduler:` block: the keys wandb 0.31's `wandb sweep-scheduler` reads
    (wandb/sdk/sweeps/scheduler/{optuna,ax,wandb}.py `build_*_optimizer`); `--batch-size` is
    a flag of that command, not a key."""

    engine: Engine
    source: str | None = Field(
        None,
        min_length=1,
        strict=True,
        description="The Python file that defines `optimizer` and `search_space`.",
    )
    optimizer: str | None = Field(
        None,
        min_length=1,
        strict=True,
        description="A function in `source`: SweepInfo -> an optuna Study or Ax Client.",
    )
    search_space: str | None = Field(
        None,
        min_length=1,
        strict=True,
        description="optuna only: a function in `source`: optuna.Trial -> {name: value}.",
    )


def check_method(method: str, scheduler: Scheduler | None) -> None:
    """Which engine suggests the runs of `method`.

    `custom` names no W&B search, so a scheduler with an engine that does not read `method`
    (optuna or ax) must suggest them; wandb's own engine runs W&B's search for `method`, which
    `sweeps.next_runs` refuses for `custom` ("Invalid search type").

    Raises:
        ValueError: saying which.
    """
    if method != "custom":
        return
    if scheduler is None:
        raise ValueError(
            "method custom: nothing suggests runs without a `scheduler:` (engine optuna or ax)"
        )
    if scheduler.engine == "wandb":
        raise ValueError(
            "engine wandb runs W&B's own search for `method` (grid, random or bayes), not custom"
        )


class Hyperband(_Strict):
    """W&B's hyperband early termination, applied by the local backend too."""

    type: Literal["hyperband"] = "hyperband"
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    s: int | None = Field(None, ge=1)
    eta: float = Field(3, gt=1)
    strict: bool = Field(
        False, description="Passed to W&B; the local engine (sweeps 0.2.0) does not implement it."
    )

    @model_validator(mode="after")
    def _bands_defined(self) -> Hyperband:
        if self.min_iter is None and self.max_iter is None:
            raise ValueError("hyperband needs `min_iter`, or `max_iter` with `s`")
        if self.max_iter is not None and self.min_iter is None and self.s is None:
            raise ValueError("hyperband with `max_iter` needs `s`")
        return self


Weight = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Select(_Strict):
    """Which run of a stage's Pareto front a multi-objective study carries into the next stage.
    sweeper's own key (W&B has no stages); the rule is sweeper.sweep.pareto.select_from_front.
    """

    metric: str | None = Field(
        None, min_length=1, description="The front's best run by this metric, by its goal."
    )
    weights: dict[str, Weight] | None = Field(
        None,
        min_length=1,
        description="The front's run with the largest weighted sum of these metrics' values "
        "(a negative weight for one to keep low), e.g. {mAP: 1.0, train_time_s: -0.001}.",
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Select:
        if (self.metric is None) == (self.weights is None):
            raise ValueError("give `metric` or `weights`, one of the two")
        if self.weights is not None and not any(self.weights.values()):
            raise ValueError("`weights` are all 0: nothing would tell the front's runs apart")
        return self


def check_select(select: Select | None, metrics: list[Objective] | None, stages: int) -> None:
    """A spec's `select:` against its `metrics:`: a study of two or more stages with several
    metrics needs one (its stages carry one run of a Pareto front on), and nothing else takes
    one; it names only those metrics; a spec with one `metric` has no front to pick from.

    Raises:
        ValueError: saying which.
    """
    if metrics is None:
        if select is not None:
            raise ValueError(
                "only a spec with several `metrics` picks a run of a Pareto front; with one"
                " `metric` a stage carries its best mean on"
            )
        return
    if select is None:
        if stages >= 2:
            raise ValueError(
                "a study with several `metrics` carries one run of each stage's Pareto front"
                " into the next: name the rule, {metric: NAME} (that metric's best) or"
                " {weights: {NAME: WEIGHT, ...}} (the largest weighted sum)"
            )
        return
    if stages < 2:
        raise ValueError(
            "only a study of two or more `stages` carries a run of a Pareto front on; this"
            " spec has none to carry it to"
        )
    names = [m.name for m in metrics]
    for name in [select.metric] if select.metric else list(select.weights or {}):
        if name not in names:
            raise ValueError(f"{shown(name)} is not one of the `metrics` ({', '.join(names)})")


class Stage(_Strict):
    """One step of a sequential study; it starts from base plus the previous stage's best."""

    name: str = Field(min_length=1, max_length=NAME_MAX)  # part of its W&B sweep's name
    search: dict[str, SearchValue] = Field(
        default_factory=dict,
        description="Required unless the spec's `scheduler.search_space` is the search.",
    )
    method: Method | None = None
    run_cap: int | None = Field(None, ge=1)


class Agents(_Strict):
    gpus_per_trial: int = Field(1, ge=0, le=16, description="GPUs per trial (one slot each).")
    max_parallel: int | None = Field(None, ge=1, description="Cap on concurrent agents.")
    cpus_per_trial: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch CPU threads per trial; default: the cores shared among the trials.",
    )
    trial_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds a trial may run before it is killed and failed; default: no limit.",
    )


class Spec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$", max_length=NAME_MAX)
    project: WandbName = "sweeper"
    entity: WandbName | None = None
    description: str | None = None
    trainer: str
    method: Method = "grid"
    metric: MetricSpec | None = None
    metrics: Objectives | None = Field(
        None,
        description="Two or more objectives {name, goal} (W&B's multi-objective sweeps); "
        "beside or instead of `metric`.",
    )
    scheduler: Scheduler | None = None
    seed: Seed | None = Field(
        None,
        description="sweeper's: random, bayes and the scheduler engines suggest the same "
        "configurations for the same seed; default: one drawn when the sweep is made.",
    )
    base: dict[str, Any] = Field(default_factory=dict, description="Fixed trainer config.")
    search: dict[str, SearchValue] = Field(default_factory=dict)
    repeats: int = Field(1, ge=1, le=100, description="Seeds per configuration.")
    run_cap: int | None = Field(None, ge=1)
    early_terminate: Hyperband | None = None
    stages: list[Stage] = Field(default_factory=list)
    select: Select | None = Field(
        None,
        validate_default=True,  # so a study with several metrics and no rule is refused here
        description="With several `metrics` and stages: which run of a stage's Pareto front "
        "the next stage starts from, {metric: NAME} or {weights: {NAME: WEIGHT}}.",
    )
    agents: Agents = Field(default_factory=Agents)
    smoke: dict[str, Any] | None = Field(
        None, description="Partial spec deep-merged over this one by --smoke."
    )

    @field_validator("select")
    @classmethod
    def _select_fits(cls, select: Select | None, info: ValidationInfo) -> Select | None:
        check_select(select, info.data.get("metrics"), len(info.data.get("stages") or []))
        return select

    @model_validator(mode="after")
    def _search_or_stages(self) -> Spec:
        if self.search and self.stages:
            raise ValueError("give either `search` or `stages`, not both")
        # optuna's define-by-run space suggests every parameter itself, whatever `parameters`
        # lists (wandb/sdk/sweeps/scheduler/optuna.py `build_optuna_optimizer`): it is the search
        defined = self.scheduler is not None and self.scheduler.search_space is not None
        if not self.search and not self.stages and not defined:
            raise ValueError("nothing to sweep: give `search`, `stages` or scheduler.search_space")
        empty = [stage.name for stage in self.stages if not stage.search]
        if empty and not defined:
            raise ValueError(
                f"stage {empty[0]!r}: nothing to sweep: give its `search` or scheduler.search_space"
            )
        if (empty or not (self.search or self.stages)) and not self.base and self.repeats == 1:
            # a stage's `parameters:` is then empty, which W&B's sweep schema refuses
            raise ValueError(
                "`base`: give one fixed value when scheduler.search_space alone is the search"
                " (W&B's sweep schema wants a non-empty `parameters:`)"
            )
        if self.metric is None and self.metrics is None:
            raise ValueError("give a `metric`, or `metrics` (two or more objectives)")
        return self

    def stage_list(self) -> list[Stage]:
        """Every spec as stages: a plain sweep is one unnamed stage."""
        if self.stages:
            return self.stages
        return [Stage(name=self.name, search=self.search, method=self.method, run_cap=self.run_cap)]

"""Spec -> plain W&B sweep configs, one per stage (`wandb sweep compiled.yaml` works)."""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import best_match

from sweeper.errors import SpecError
from sweeper.spec.models import Spec, Stage, as_distribution
from sweeper.spec.paths import flatten
from sweeper.sweep import flat_parameters, nest_parameters
from sweeper.sweep.engine import sweeps

TRIAL_MODULE = "sweeper.agent.wandb_agent_trial"
"""The sweep's `program`: W&B's docs require one, and `-m ${program}` runs it as a module."""


NEWER_KEYS = ("run_cap", "metrics", "scheduler")
"""W&B sweep keys newer than the schema in the `sweeps` package (0.2.0, 2022, which W&B's
server and `check_wandb_schema` apply; it refuses keys it does not list), as is hyperband's
`strict`: sweeper checks these itself (`run_cap` in load_plain and the spec models; `metrics`
and `scheduler`, read by wandb 0.31's sweep scheduler, in `sweeper.spec.scheduler`)."""


def trial_command(trainer: str, metric: str | None) -> list[str]:
    """What `wandb agent` runs: our trial entry point reading W&B's args JSON file, told the
    sweep's metric if it has one (one `--metric=NAME` item, so a name starting with `-` stays
    a value)."""
    told = [f"--metric={metric}"] if metric is not None else []
    return [
        "${env}",
        "${interpreter}",
        "-m",
        "${program}",
        "--trainer",
        trainer,
        *told,
        "${args_json_file}",
    ]


def compile_stage(
    spec: Spec, index: int = 0, carried: dict[str, Any] | None = None, file: str = "spec"
) -> dict[str, Any]:
    """The W&B sweep config of stage `index`.

    `carried` holds the best configuration of the previous stage (dotted paths); it is
    layered over `base` as fixed values. Every fixed value is a W&B constant parameter, and
    parameters are nested as the trainer config is, so a run's W&B config has the trainer's
    shape; under a `scheduler:` engine they stay flat (dotted names), the one level those
    engines read (the trial nests them again). `metrics` and `scheduler` are written as W&B
    takes them; the spec's `seed` is not (W&B's schema has no such key).
    """
    stage: Stage = spec.stage_list()[index]
    fixed = flatten(spec.base)
    fixed.update(carried or {})
    parameters: dict[str, Any] = {
        path: {"value": value}
        for path, value in fixed.items()
        if not any(path == p or path.startswith(f"{p}.") for p in stage.search)
    }
    for path, value in stage.search.items():
        parameters[path] = as_distribution(value).to_wandb()
    if spec.repeats > 1:
        first = int(fixed.get("seed", 0))
        parameters["seed"] = {"values": list(range(first, first + spec.repeats))}
    ordered = dict(sorted(parameters.items()))
    # wandb's optuna and Ax engines read `parameters` one flat level deep (scheduler/optuna.py
    # `search_space_from_sweep_config`, scheduler/ax.py `sweep_parameters_to_search_space`),
    # and its wandb engine (scheduler/wandb.py WandbOptimizer) keeps each suggestion as `sweeps`
    # nests it while the grid looks runs up by flat names, so a nested block's first point
    # would be suggested for ever: under every engine a dotted path stays one key (`optim.lr`).
    flat = spec.scheduler is not None
    config: dict[str, Any] = {
        "name": spec.name if not spec.stages else f"{spec.name} / {stage.name}",
        "project": spec.project,
        "method": stage.method or spec.method,
    }
    if spec.metric is not None:
        config["metric"] = spec.metric.model_dump(exclude_none=True)
    if spec.metrics is not None:
        config["metrics"] = [m.model_dump(exclude_none=True) for m in spec.metrics]
    config["parameters"] = ordered if flat else nest_parameters(ordered)
    config["program"] = TRIAL_MODULE
    config["command"] = trial_command(spec.trainer, spec.metric.name if spec.metric else None)
    if spec.scheduler is not None:
        config["scheduler"] = spec.scheduler.model_dump(exclude_none=True)
    if spec.entity:
        config["entity"] = spec.entity
    if spec.description:
        config["description"] = spec.description
    if spec.early_terminate:
        config["early_terminate"] = spec.early_terminate.model_dump(
            exclude_none=True, exclude={"strict"} if not spec.early_terminate.strict else None
        )
    run_cap = stage.run_cap or spec.run_cap
    if run_cap:
        config["run_cap"] = run_cap
    check_wandb_schema(config, file)
    return config


def deprecated_distributions(parameters: dict[str, Any]) -> dict[str, str]:
    """Parameters whose distribution W&B only warns about: {name: W&B's warning about it}.

    `log_uniform`, `q_log_uniform` and `inv_log_uniform` take natural-log bounds (the form
    older W&B docs teach); W&B's server creates the sweep and `wandb sweep` prints the
    warning (sweeps/config/schema.py `check_for_deprecated_distributions`, shown by
    wandb/sdk/launch/sweeps/utils.py `handle_sweep_config_violations`), and the engine samples
    them with that meaning (sweeps/params.py).
    """
    found = {}
    for name, param in flat_parameters(parameters).items():
        if isinstance(param, dict):
            try:
                sweeps.config.schema.check_for_deprecated_distributions(name, param)
            except ValueError as exc:
                found[name] = str(exc.args[0]).removeprefix(f"{name} ")
    return found


def check_wandb_schema(
    config: dict[str, Any], file: str, what: str = "the compiled config"
) -> None:
    """Refuse what W&B's sweep schema rejects, naming the field; deprecated distributions
    are only warned about (see `deprecated_distributions`).

    The schema is the one W&B's server applies (`sweeps.config.schema`, and
    `sweeps.schema_violations_from_proposed_config`); `what` names the config in the message.

    Raises:
        SpecError: the first violation the schema finds (its path as the field).
    """
    candidate = {k: v for k, v in config.items() if k not in NEWER_KEYS}
    if "early_terminate" in candidate:
        candidate["early_terminate"] = {
            k: v for k, v in candidate["early_terminate"].items() if k != "strict"
        }
    error = best_match(sweeps.config.schema.validator.iter_errors(candidate))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path)
        raise SpecError(file, where, f"the W&B sweep schema rejects {what}: {error.message}")
    deprecated = deprecated_distributions(candidate.get("parameters") or {})
    warned = {f"{name} {message}" for name, message in deprecated.items()}
    violations = [
        v for v in sweeps.schema_violations_from_proposed_config(candidate) if v not in warned
    ]
    if violations:
        raise SpecError(file, "", f"the W&B sweep schema rejects {what}: {violations[0]}")


def compile_spec(spec: Spec, file: str = "spec") -> list[dict[str, Any]]:
    """One config per stage; later stages show `base` only (their carried best comes later)."""
    return [compile_stage(spec, i, file=file) for i in range(len(spec.stage_list()))]

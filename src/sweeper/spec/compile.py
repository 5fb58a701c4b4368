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


def trial_command(trainer: str, metric: str) -> list[str]:
    """What `wandb agent` runs: our trial entry point reading W&B's args JSON file, told the
    sweep's metric (one `--metric=NAME` item, so a name starting with `-` stays a value)."""
    return [
        "${env}",
        "${interpreter}",
        "-m",
        "${program}",
        "--trainer",
        trainer,
        f"--metric={metric}",
        "${args_json_file}",
    ]


def compile_stage(
    spec: Spec, index: int = 0, carried: dict[str, Any] | None = None, file: str = "spec"
) -> dict[str, Any]:
    """The W&B sweep config of stage `index`.

    `carried` holds the best configuration of the previous stage (dotted paths); it is
    layered over `base` as fixed values. Every fixed value is a W&B constant parameter, and
    parameters are nested as the trainer config is, so a run's W&B config has the trainer's
    shape.
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
    config: dict[str, Any] = {
        "name": spec.name if not spec.stages else f"{spec.name} / {stage.name}",
        "project": spec.project,
        "method": stage.method or spec.method,
        "metric": spec.metric.model_dump(exclude_none=True),
        "parameters": nest_parameters(dict(sorted(parameters.items()))),
        "program": TRIAL_MODULE,
        "command": trial_command(spec.trainer, spec.metric.name),
    }
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
    # run_cap and hyperband's strict are W&B keys newer than the schema in `sweeps` 0.2.0.
    candidate = {k: v for k, v in config.items() if k != "run_cap"}
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

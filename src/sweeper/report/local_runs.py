"""Report data from the local store: a sweep id, a study id, or the spec a sweep was made from."""

from __future__ import annotations

from typing import Any

from sweeper.backends.local import LocalBackend
from sweeper.backends.targets import resolve_target
from sweeper.errors import NotFoundError
from sweeper.report.data import ReportData, SweepPart
from sweeper.spec.paths import flatten
from sweeper.sweep import flat_parameters


def load_local(backend: LocalBackend, target: str, metric: str | None = None) -> ReportData:
    sweeps = resolve_target(backend, target)
    first = sweeps[0]
    name, goal = first.metric
    study = first.study if len(sweeps) > 1 or first.study == target else None
    title = f"{first.spec.get('name', first.name)} (study {study})" if study else first.name
    return ReportData(
        title=title,
        source=f"local store {backend.path}",
        metric=metric or name,
        goal=goal,
        parts=[
            SweepPart(
                s.id,
                s.name,
                s.stage,
                s.stage_name,
                flat_parameters(s.config["parameters"]),
                s.carried,
            )
            for s in sweeps
        ],
        runs=backend.runs([s.id for s in sweeps]),
        history=backend.history,
        base=resolved_base(first.trainer, first.spec.get("base", {})),
        key=study or first.id,
        project=first.project,
        entity=first.config.get("entity"),
    )


def resolved_base(trainer: str | None, base: dict[str, Any]) -> dict[str, Any]:
    """The base config with the trainer's defaults filled in: what a run gets unless swept."""
    from pydantic import ValidationError

    from sweeper.trainers.registry import get_trainer

    if trainer is None:
        return flatten(base)
    try:
        model = get_trainer(trainer).config_model()
        return flatten(model.model_validate(base).model_dump(mode="json"))
    except (NotFoundError, ValidationError):
        return flatten(base)

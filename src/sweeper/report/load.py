"""Report data from any backend: the sweeps a target names, their run table and history.

The target is resolved the way `status` and `runs` resolve it (`sweeper.backends.targets`), and
everything is read through the Backend protocol, so a report of a W&B sweep and one of the
local store are built from the same table (`sweeper.sweep.runtable`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from sweeper.errors import NotFoundError
from sweeper.report.data import ReportData, SweepPart
from sweeper.spec.paths import flatten
from sweeper.sweep import flat_parameters, sweep_objectives

if TYPE_CHECKING:
    from sweeper.backends import BackendKind
    from sweeper.backends.base import Backend


def load_report_data(
    target: str,
    store: str | os.PathLike[str] | None = None,
    metric: str | None = None,
    kind: BackendKind | None = None,
    entity: str | None = None,
    project: str | None = None,
) -> ReportData:
    """Open the backend `kind` names (None: W&B for an entity/project/sweep_id path, else the
    store), read-only, and read the target's report data from it (`report_data`)."""
    from sweeper.backends import open_backend
    from sweeper.backends.targets import is_wandb_target

    if kind is None:
        kind = "wandb" if is_wandb_target(target) else "local"
    backend = open_backend(kind, store, create=False, readonly=True, entity=entity, project=project)
    return report_data(backend, target, metric)


def report_data(backend: Backend, target: str, metric: str | None = None) -> ReportData:
    """A sweep's, or a study's, report data.

    Args:
        backend: where the sweeps live.
        target: what `sweeper.backends.targets.resolve_target` takes.
        metric: the metric of the tables [default: the first sweep's].

    Raises:
        NotFoundError: the target names no sweep.
        SweeperError: the target is ambiguous, or the backend cannot be read.
    """
    from sweeper.backends.targets import resolve_target

    sweeps = resolve_target(backend, target)
    first = sweeps[0]
    name, goal = first.metric
    study = first.study if len(sweeps) > 1 or first.study == target else None
    title = f"{first.spec.get('name', first.name)} (study {study})" if study else first.name
    if backend.kind == "wandb":
        source = f"W&B sweep {', '.join(s.id for s in sweeps)}"
    else:
        source = f"local {backend.where}"
    runs = backend.runs([s.id for s in sweeps])
    return ReportData(
        title=title,
        source=source,
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
                dict(s.config.get("scheduler") or {}),
                filled_columns(runs, s.id),
            )
            for s in sweeps
        ],
        runs=runs,
        history=backend.history,
        base=resolved_base(first.trainer or None, first.spec.get("base", {})),
        key=study or first.key,
        backend=backend.kind,
        project=first.project,
        entity=first.entity or first.config.get("entity"),
        objectives=sweep_objectives(first.config),
        select=first.spec.get("select"),
    )


def filled_columns(runs: pd.DataFrame, sweep_id: str) -> tuple[str, ...]:
    """The `config.` columns some run of `sweep_id` has a value in: a study's run table
    holds every stage's columns, and a define-by-run stage searches only what its own runs
    were given (`sweeper.sweep.params.swept_params`)."""
    if runs.empty:
        return ()
    mine = runs[runs["sweep_id"] == sweep_id]
    return tuple(c for c in mine.columns if c.startswith("config.") and mine[c].notna().any())


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

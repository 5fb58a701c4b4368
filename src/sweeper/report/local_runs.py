"""Report data from the local store: a sweep id, a study id, or the spec a sweep was made from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.backends.local import LocalBackend, SweepRecord
from sweeper.errors import NotFoundError
from sweeper.report.data import ReportData, SweepPart
from sweeper.spec.paths import flatten


def resolve(backend: LocalBackend, target: str) -> list[SweepRecord]:
    """The sweeps a target names: one sweep, or every stage of a study."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return _latest_from_spec(backend, path)
    sweep = backend.sweep(target)
    if sweep.id != target and sweep.study == target:
        return backend.sweeps(sweep.study)
    return [sweep]


def _latest_from_spec(backend: LocalBackend, path: Path) -> list[SweepRecord]:
    from sweeper.spec.load import read_yaml

    name = read_yaml(path).get("name")
    wanted = path.resolve()

    def same_spec(sweep: SweepRecord) -> bool:
        return bool(sweep.spec_path) and Path(sweep.spec_path).resolve() == wanted

    sweeps = backend.sweeps()
    made = [s for s in sweeps if same_spec(s)] or [s for s in sweeps if s.spec.get("name") == name]
    if not made:
        raise NotFoundError(
            f"no sweep made from {path} in {backend.path} (run `sweeper launch {path}`)"
        )
    latest = made[-1]
    return backend.sweeps(latest.study) if latest.study else [latest]


def load_local(backend: LocalBackend, target: str, metric: str | None = None) -> ReportData:
    sweeps = resolve(backend, target)
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
            SweepPart(s.id, s.name, s.stage, s.stage_name, s.config["parameters"], s.carried)
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

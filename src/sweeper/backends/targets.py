"""What a user names on the command line: a sweep id, a study id, a spec path or a name.

`status`, `runs`, `report` and `compile --stage` take the same targets and resolve them here,
once, through the Backend protocol, so they name sweeps the same way on every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.errors import NotFoundError, SweeperError

if TYPE_CHECKING:
    from sweeper.backends.base import Backend, SweepRecord


def is_wandb_target(target: str) -> bool:
    """entity/project/sweep_id as `wandb agent` takes it, not a spec file two folders deep."""
    from sweeper.backends.wandb import SWEEP_PATH

    path = Path(target)
    return (
        bool(SWEEP_PATH.match(target))
        and path.suffix not in (".yaml", ".yml")
        and not path.exists()
    )


def resolve_target(backend: Backend, target: str) -> list[SweepRecord]:
    """The sweeps a target names, in stage order.

    Args:
        backend: where the sweeps live (on W&B: the backend's project, for all but a path).
        target: a sweep id (that sweep; on W&B also entity/project/sweep_id); a study id (all
            its stages); a spec file (the latest sweep or study made from it); a sweep's name
            (`quickstart`, `veri-staged / lr`: its latest sweep) or a spec's name
            (`veri-staged`: its latest study).

    Returns:
        One sweep, or every stage of a study.

    Raises:
        NotFoundError: nothing in the store goes by that name.
        SweeperError: the name fits sweeps made from different spec files; the message lists
            them, so the user can give an id.
    """
    if is_wandb_target(target):  # entity/project/sweep_id names one W&B sweep
        return [backend.sweep(target)]
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from sweeper.spec.load import read_yaml

        made = backend.made_from(path, read_yaml(path).get("name"))
        if not made:
            raise NotFoundError(
                f"no sweep made from {path} in {backend.where} (run `sweeper launch {path}`)"
            )
        return made
    try:
        sweep = backend.sweep(target)  # by its id (a local store: else a study's latest stage)
    except NotFoundError:
        return backend.sweeps(target) or _by_name(backend, backend.sweeps(), target)
    return backend.sweeps(target) if sweep.study == target != sweep.id else [sweep]


def _by_name(backend: Backend, sweeps: list[SweepRecord], name: str) -> list[SweepRecord]:
    """The latest launch of the one spec that made sweeps of this name (re-launching a spec
    makes a new sweep of the same name: the latest is the one meant, as for a spec path)."""
    named = [s for s in sweeps if s.name == name or s.spec.get("name") == name]
    if not named:
        raise NotFoundError(
            f"no sweep, study, spec file or name {name!r} in {backend.where} "
            "(`sweeper sweeps` lists them)"
        )
    sources = {s.spec_path or s.study or s.id for s in named}
    if len(sources) > 1:
        launches = {s.study or s.id: s for s in named}  # the last sweep of each launch
        listed = ", ".join(
            f"{key} (from {s.spec_path or 'no spec file'})" for key, s in launches.items()
        )
        raise SweeperError(
            f"{name!r} names sweeps made from {len(sources)} different specs in "
            f"{backend.where}: {listed}; give one of these ids"
        )
    latest = named[-1]  # sweeps() is in creation order
    launch = backend.sweeps(latest.study) if latest.study else [latest]
    return [s for s in launch if s.name == name] or launch

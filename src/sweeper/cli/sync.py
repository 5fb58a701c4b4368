"""`sync`: a local sweep published to W&B."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cli.common import (
    Entity,
    Project,
    Store,
    console,
    say,
    user_errors,
)


@user_errors
def sync(
    sweep_id: Annotated[str, typer.Argument(metavar="SWEEP", help="A local sweep or study id.")],
    entity: Entity = None,
    project: Project = None,
    store: Store = None,
) -> None:
    """Publish a local sweep (every stage of a study) to W&B: its runs under their own ids,
    then a W&B sweep over them. Runs already there are skipped."""
    from sweeper.backends import open_backend
    from sweeper.backends.wandb import WandbBackend
    from sweeper.report.publish import publish

    local = open_backend("local", store, create=False, readonly=True)
    target = WandbBackend(local.path, entity=entity, project=project)
    for result in publish(local, target, sweep_id, say):
        waiting = f", {len(result.skipped)} not over yet" if result.skipped else ""
        console.print(
            f"sweep {result.local} -> {result.sweep}: {len(result.uploaded)} uploaded, "
            f"{len(result.already)} already there{waiting}"
        )
        console.print(f"  {target.url(result.sweep)}")

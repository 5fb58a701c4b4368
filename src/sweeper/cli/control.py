"""`pause`, `resume`, `stop`, `cancel`: a sweep's state, with W&B's meanings.

The verbs set the states `wandb sweep --pause/--resume/--stop/--cancel` sets (wandb/cli/cli.py)
and mean what W&B's "Pause, resume, stop and cancel sweeps" says
(https://docs.wandb.ai/guides/sweeps/pause-resume-and-cancel-sweeps/); on a local store the
coordinator applies them, on W&B the server does.
"""

from __future__ import annotations

from sweeper.cli.common import (
    BackendOpt,
    ReadEntity,
    ReadProject,
    Store,
    Target,
    choose_backend_kind,
    console,
    styled,
    user_errors,
)

MEANINGS = {
    "paused": "no new trials until `sweeper resume`; running trials go on, agents wait",
    "running": "agents get new trials",
    "finished": "no new trials; running trials finish, then their agents exit",
    "canceled": "no new trials; running trials stop at their next epoch, agents exit",
}
"""What each state means for agents, printed after the state a verb set."""


def _set(
    verb: str,
    target: str,
    store: Store,
    backend_kind: BackendOpt,
    entity: str | None,
    project: str | None,
) -> None:
    """Set the state `verb` names on the sweep `target` names (a study's: its latest stage,
    the one its agents run) and print the state it has afterwards."""
    from sweeper.backends import open_backend
    from sweeper.backends.targets import resolve_target
    from sweeper.sweep import SWEEP_VERBS

    kind = choose_backend_kind(backend_kind, target)
    backend = open_backend(kind, store, create=False, entity=entity, project=project)
    sweep = resolve_target(backend, target)[-1]
    state = backend.set_sweep_state(sweep.id, SWEEP_VERBS[verb])
    console.print(styled("sweep ", (sweep.title, "bold"), f" [{state}]: {MEANINGS[state]}"))


@user_errors
def pause(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """Pause a sweep: no new trials until `sweeper resume`; running trials go on and agents
    wait (W&B's `wandb sweep --pause`)."""
    _set("pause", target, store, backend_kind, entity, project)


@user_errors
def resume(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """Resume a sweep: its agents get new trials again (W&B's `wandb sweep --resume`)."""
    _set("resume", target, store, backend_kind, entity, project)


@user_errors
def stop(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """Stop a sweep (finished): no new trials; running trials finish normally and their agents
    then exit (W&B's `wandb sweep --stop`)."""
    _set("stop", target, store, backend_kind, entity, project)


@user_errors
def cancel(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """Cancel a sweep: no new trials; running trials stop at their next epoch, stopped with
    their summary, and agents exit (W&B's `wandb sweep --cancel`)."""
    _set("cancel", target, store, backend_kind, entity, project)

"""`sweeper store copy`: sweeps moved between stores (SQLite <-> PostgreSQL, either way), so
that a study started on a laptop goes on on the cluster's server, or comes home from it.

A copy keeps every id (sweep, study, run), every run's state, attempt, summary, meta and
history, and each sweep's state: the same launch of the same spec against the destination
finds the study (by its spec's hash) and resumes it. It is read in one consistent read of
the source and written in one transaction on the destination: all of it or nothing, and
nothing at all when one of its ids is already there.

Running runs are refused unless `live`: their trials go on writing to the source after the
copy, so the destination would hold a state the source has already left (like W&B, which
moves runs between projects but never a copy of one in flight). With `live` they are copied
as the source last committed them, still running on their old heartbeat: the destination's
coordinator sees an agent that went silent and requeues each after its heartbeat timeout,
the same rule as for a node that went away, so nothing new is invented for them.

Run folders (logs, checkpoints, wandb's files, beside the store) are not records and are not
copied: a requeued trial whose checkpoint is not found on the destination's node starts over.

A sweep's seed is copied (a replay on the destination suggests what the source did); its
scheduler lease is not: the process holding it writes to the source, and the destination's
first agent or launch takes the lease and rebuilds the engine from the copied runs (W&B's
rule: optimizers are rebuilt, never persisted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from sweeper.backends.store import StoreCopy
from sweeper.errors import SweeperError
from sweeper.sweep import RunState

SHOWN_IDS = 5
"""Running run ids a refusal names before `...`."""


@dataclass(frozen=True)
class Copied:
    """What a copy moved, for the line the CLI prints."""

    sweeps: int
    runs: int
    history: int
    live: int
    """Runs copied while running (only with `live`)."""


def copy_store(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    target: str | None = None,
    live: bool = False,
) -> Copied:
    """Copy sweeps from one store to another.

    Args:
        source: A SQLite file or a postgresql:// URL holding the sweeps.
        destination: A SQLite file or a postgresql:// URL (made if there is none).
        target: What to copy, as `status` names it (a sweep id, a study id, a spec path or a
            name; a stage brings its whole study), or None for every sweep in the source and
            the runs outside any sweep.
        live: Copy running runs as they are (see the module's docstring); else refuse them.

    Returns:
        How many sweeps, runs and history rows were copied.

    Raises:
        NotFoundError: no store at `source`, or nothing there that `target` names.
        SweeperError: the two name the same store; a run is running and not `live`; an id
            is already in the destination (nothing is written); a store cannot be opened.
    """
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.targets import resolve_target

    source_backend = LocalBackend(source, create=False, readonly=True)
    try:
        sweep_ids: list[str] | None = None
        if target is not None:
            named = resolve_target(source_backend, target)
            studies = {sweep.study for sweep in named if sweep.study}
            sweep_ids = [sweep.id for sweep in named if not sweep.study]
            for study in sorted(studies):  # a stage alone could not resume its study
                sweep_ids += [stage.id for stage in source_backend.store.sweeps(study)]
        copy = source_backend.store.export(sweep_ids)
        where = source_backend.store.location
        unleased = [replace(sweep, lease_holder=None, lease_until=None) for sweep in copy.sweeps]
        copy = replace(copy, sweeps=unleased)
    finally:
        source_backend.close()
    running = [run.record.id for run in copy.runs if run.record.state == RunState.RUNNING]
    if running and not live:
        shown = ", ".join(running[:SHOWN_IDS]) + (", ..." if len(running) > SHOWN_IDS else "")
        raise SweeperError(
            f"{where}: {len(running)} run(s) still running ({shown}): their trials go on "
            "writing here; let them end (`sweeper stop`), or pass --live to copy them as they "
            "are now (the destination requeues them after their heartbeat timeout)"
        )
    return _write(destination, copy, where, len(running))


def _write(destination: str | os.PathLike[str], copy: StoreCopy, source: str, live: int) -> Copied:
    """Insert the copy into the destination store in one transaction."""
    from sweeper.backends.local import LocalBackend

    target = LocalBackend(destination, create=True)
    try:
        if target.store.location == source or _same_file(target.store.location, source):
            raise SweeperError(f"{source}: the source and the destination are the same store")
        target.store.import_copy(copy)
    finally:
        target.close()
    return Copied(len(copy.sweeps), len(copy.runs), len(copy.history), live)


def _same_file(one: str, other: str) -> bool:
    """Whether two store locations are one SQLite file (a URL is never a file)."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False

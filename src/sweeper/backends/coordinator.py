"""The sweep's rules, written once over a store's primitives (`sweeper.backends.store`).

Claim order (a requeued run before a new point), requeue after a lapsed heartbeat, exhaustion,
W&B's early termination (hyperband), fencing by (run id, attempt) and finishing all live here;
a store only reads and writes records. The rules are W&B's: a sweep hands out runs until its
engine (`sweeps.next_run`) has none or `run_cap` is met
(https://docs.wandb.ai/guides/sweeps/define-sweep-configuration/); a preempted run goes back
to the queue and is handed to the next agent before any new point (W&B's preemptible sweeps,
`wandb.Run.mark_preempting`: https://docs.wandb.ai/guides/runs/resuming/); hyperband stops
runs through `sweeps.stop_runs`. The sweep's state is W&B's ("Pause, resume, stop and cancel
sweeps": https://docs.wandb.ai/guides/sweeps/pause-resume-and-cancel-sweeps/): only a running
sweep hands out runs; a paused one's agents wait, a finished or canceled one's exit; cancelling
stops the running runs; and a sweep whose engine has nothing left and no run active is finished.

The engine's suggestion (100-160 ms for bayes) is computed from a snapshot with no lock held;
the claim's transaction inserts it only if the runs the engine depends on did not change
meanwhile, and asks again otherwise. So agents on many nodes do not queue behind one another's
engine calls. Grid and random claims read no finished run at all (`Store.claim_view`): random
reads no runs (sweeps' random_search_next_runs), and a grid needs only which of its points are
taken, which each run's stored point number says (`sweeper.sweep.engine.Grid`); so their claims
take the same time at 100 runs and at 100,000.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sweeper.backends.base import Beat, Claim, SweepRecord
from sweeper.backends.scheduler import is_scheduled
from sweeper.backends.store import (
    ClaimView,
    GridState,
    RunChanges,
    RunRecord,
    Store,
    Transaction,
    new_id,
)
from sweeper.errors import NotFoundError
from sweeper.sweep import ACTIVE, RunState, SweepState, check_transition
from sweeper.sweep.engine import (
    Grid,
    next_grid_point,
    next_params,
    next_random_params,
    runs_to_stop,
)
from sweeper.sweep.study import reaches_target

ENGINE_TRIES = 3
"""Suggestions computed outside the lock before one is computed inside it: under a stream of
claims and finishes a slow engine could otherwise be outrun forever."""

CLAIMABLE = (RunState.PENDING, RunState.PREEMPTED)
"""States of runs waiting for an agent: handed out, oldest first, before any new point."""


@dataclass(frozen=True)
class _Suggestion:
    params: dict[str, Any] | None
    mark: Hashable
    """What the engine's inputs looked like when it answered (`_engine_mark`)."""
    grid_point: int | None = None
    """The grid point it takes (a grid sweep's)."""


_COUNTED = ("grid", "random")
"""Methods whose suggestion depends on how many runs exist alone (sweeps' grid_search skips
the points of every run, whatever its state; random reads no runs; `run_cap` counts them)."""


def _engine_mark(tx: Transaction, sweep: SweepRecord) -> Hashable:
    """What must be unchanged for a suggestion to still hold: for grid and random, the run
    count (a new run may have taken the point); bayes also fits the metrics of runs that
    ended, so a run changing state changes its answer: the count in each state."""
    if sweep.config.get("method") in _COUNTED:
        return tx.run_total(sweep.id)
    counts = tx.run_counts(sweep.id)
    return tuple(sorted((str(state), n) for state, n in counts.items()))


def _lapsed(
    run: RunRecord, now: float, heartbeat_timeout: float, up_since: float | None = None
) -> bool:
    """Whether a running run's agent stopped heartbeating: silent for `heartbeat_timeout` s
    while the store could hear it (since its server's start, `Transaction.up_since`)."""
    if run.state != RunState.RUNNING or run.heartbeat_at is None:
        return False
    heard = max(run.heartbeat_at, up_since or 0.0)
    return heard < now - heartbeat_timeout


class Coordinator:
    """Claims, heartbeats, logs, early termination and finishing for the runs of one store.

    Args:
        store: Where the records live; any `Store` (SQLite today).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._grids: dict[str, Grid] = {}
        """Sweep id -> its grid (a sweep's config never changes)."""
        self._targets: dict[str, dict[str, Any] | None] = {}
        """Run id -> its sweep's config when that has a `metric.target`, else None."""

    # claiming -------------------------------------------------------------------------------

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """Hand `agent` the sweep's next trial: a requeued one first, else the engine's next
        point; first requeue every run whose heartbeat is older than `heartbeat_timeout`
        seconds on the store's clock.

        Returns:
            The claim, attempt counted; None when the sweep is not running (paused: its agents
            wait; finished or canceled: they exit), or has nothing to hand out now (exhausted,
            or its runs are all taken; a `scheduler:` sweep with none pending, as its
            scheduler makes its runs: sweeper.backends.scheduler). An exhausted sweep with no
            run active is marked finished here, as W&B's server marks it.

        Raises:
            NotFoundError: no sweep with this exact id.
        """
        tries = 0
        while True:
            suggestion = (
                self._suggest(sweep_id, heartbeat_timeout) if tries < ENGINE_TRIES else None
            )
            with self.store.transaction() as tx:
                sweep = tx.lock_sweep(sweep_id)
                if sweep is None:
                    raise NotFoundError(f"no sweep {sweep_id!r} in {self.store.location}")
                active = self._requeue_lapsed(tx, sweep_id, heartbeat_timeout)
                if sweep.state != SweepState.RUNNING:
                    return None
                waiting = [run for run in active if run.state in CLAIMABLE]
                if waiting:
                    return self._start(tx, waiting[0], agent)
                if sweep.exhausted:
                    self._finish_if_idle(tx, sweep_id, active)
                    return None
                if is_scheduled(sweep.config):
                    return None  # its scheduler's holder adds pending runs; the agent polls
                tries += 1
                if suggestion is None:
                    if tries <= ENGINE_TRIES:
                        continue  # a run to hand out went meanwhile: ask the engine now
                    suggestion = self._suggest_locked(tx, sweep)
                elif suggestion.mark != _engine_mark(tx, sweep):
                    continue  # the engine's inputs changed under it: a stale or duplicate point
                if suggestion.params is None:
                    tx.update_sweep(sweep_id, {"exhausted": True})
                    self._finish_if_idle(tx, sweep_id, active)
                    return None
                run = RunRecord(
                    id=new_id(),
                    sweep_id=sweep_id,
                    seq=tx.run_total(sweep_id) + 1,
                    params=suggestion.params,
                    state=RunState.PENDING,
                    created_at=tx.now,
                )
                tx.insert_run(run)
                if suggestion.grid_point is not None:
                    # Every run before this one has its point (the suggestion saw none
                    # unnumbered, and no run came since), and the lowest free point is taken.
                    tx.number_runs(sweep_id, {run.id: suggestion.grid_point}, run.seq)
                    tx.set_grid_next(sweep_id, suggestion.grid_point + 1)
                return self._start(tx, run, agent)

    @staticmethod
    def _finish_if_idle(tx: Transaction, sweep_id: str, active: Sequence[RunRecord]) -> None:
        """An exhausted sweep with no run active is finished (W&B's server does the same)."""
        if not active:
            tx.update_sweep(sweep_id, {"state": SweepState.FINISHED})

    def _suggest(self, sweep_id: str, heartbeat_timeout: float) -> _Suggestion | None:
        """The engine's next point, from reads that hold no lock; None when a claim now would
        not ask the engine (a run is waiting or about to be requeued, the sweep hands out
        nothing, or its runs need point numbers first) or there is no such sweep."""
        view = self.store.claim_view(sweep_id)
        if view is None or not self._needs_engine(view, heartbeat_timeout):
            return None
        sweep = view.sweep
        method = sweep.config.get("method")
        if method == "random":
            # seeded for run view.total + 1: the seq the insert gives it, as the mark
            # (the run count) must still be view.total then
            params = next_random_params(
                sweep.config, view.total, sweep.config.get("run_cap"), sweep.seed
            )
            return _Suggestion(params, view.total)
        if method == "grid":
            if not view.grid.unnumbered:
                return self._grid_suggestion(sweep, view.grid, view.total)
            with self.store.transaction() as tx:  # once: runs stored before point numbers
                if tx.lock_sweep(sweep_id) is None:
                    return None
                state, total = self._grid_state(tx, sweep), tx.run_total(sweep_id)
            return self._grid_suggestion(sweep, state, total)
        snapshot = self.store.snapshot(sweep_id)  # bayes fits every run's result
        if snapshot is None:
            return None
        counts = Counter(run.state for run in snapshot.runs)
        mark = tuple(sorted((str(state), n) for state, n in counts.items()))
        return _Suggestion(self._next_params(snapshot.sweep, snapshot.runs), mark)

    @staticmethod
    def _needs_engine(view: ClaimView, heartbeat_timeout: float) -> bool:
        """Whether a claim now would ask the engine: not if a run is waiting or about to be
        requeued, or the sweep hands out nothing."""
        sweep = view.sweep
        if sweep.state != SweepState.RUNNING or sweep.exhausted or is_scheduled(sweep.config):
            return False
        return not any(
            run.state in CLAIMABLE or _lapsed(run, view.now, heartbeat_timeout)
            for run in view.active
        )

    def _suggest_locked(self, tx: Transaction, sweep: SweepRecord) -> _Suggestion:
        """The engine's next point computed under the sweep's lock (a claim outrun
        `ENGINE_TRIES` times, or one whose grid runs needed point numbers)."""
        method = sweep.config.get("method")
        if method == "random":
            total = tx.run_total(sweep.id)
            return _Suggestion(
                next_random_params(sweep.config, total, sweep.config.get("run_cap"), sweep.seed),
                None,
            )
        if method == "grid":
            state = self._grid_state(tx, sweep)
            return self._grid_suggestion(sweep, state, tx.run_total(sweep.id))
        return _Suggestion(self._next_params(sweep, tx.runs(sweep.id)), None)

    def _grid(self, sweep: SweepRecord) -> Grid:
        if sweep.id not in self._grids:
            self._grids[sweep.id] = Grid(sweep.config)
        return self._grids[sweep.id]

    def _grid_state(self, tx: Transaction, sweep: SweepRecord) -> GridState:
        """The grid sweep's taken points, under its lock; a run with no point number yet (one
        stored before runs had them, or by an older sweeper) is numbered first, once."""
        state = tx.grid_state(sweep.id)
        if not state.unnumbered:
            return state
        grid, runs = self._grid(sweep), tx.unnumbered_runs(sweep.id)
        points = {run.id: grid.index_of(run.params) for run in runs}
        tx.number_runs(sweep.id, points, max(run.seq for run in runs))
        return tx.grid_state(sweep.id)

    def _grid_suggestion(self, sweep: SweepRecord, state: GridState, total: int) -> _Suggestion:
        found = next_grid_point(
            self._grid(sweep), state.next, state.taken, total, sweep.config.get("run_cap")
        )
        if found is None:
            return _Suggestion(None, total)
        point, params = found
        return _Suggestion(params, total, point)

    @staticmethod
    def _next_params(sweep: SweepRecord, runs: Sequence[RunRecord]) -> dict[str, Any] | None:
        """Seeded for run len(runs) + 1: `runs` are every run of the sweep, and the insert
        happens only if their count in each state (so their number) is unchanged."""
        views = [run.view() for run in runs]
        return next_params(sweep.config, views, sweep.config.get("run_cap"), sweep.seed)

    def _requeue_lapsed(
        self, tx: Transaction, sweep_id: str, heartbeat_timeout: float
    ) -> list[RunRecord]:
        """Requeue the running runs whose agent stopped heartbeating (fenced: a run that
        heartbeat meanwhile keeps its attempt, the new attempt's writes win).

        Returns:
            The sweep's active runs afterwards (pending, preempted, running), oldest first.
        """
        active = []
        for run in tx.runs(sweep_id, ACTIVE):
            if _lapsed(run, tx.now, heartbeat_timeout, tx.up_since):
                reason = f"requeued: agent {run.agent or '?'} stopped heartbeating"
                changes: RunChanges = {"state": RunState.PREEMPTED, "agent": None, "error": reason}
                # A store that does not lock a whole file for the write (PostgreSQL) may see the
                # trial's own finish land between the read and this write: then it is not
                # requeued.
                if tx.update_run(run.id, run.attempt, changes):
                    run = replace(run, state=RunState.PREEMPTED, agent=None)
            active.append(run)
        return active

    @staticmethod
    def _start(tx: Transaction, run: RunRecord, agent: str) -> Claim:
        """Hand a waiting run to `agent` as its next attempt."""
        attempt = run.attempt + 1
        started = run.started_at if run.started_at is not None else tx.now
        changes: RunChanges = {
            "state": RunState.RUNNING,
            "attempt": attempt,
            "agent": agent,
            "heartbeat_at": tx.now,
            "started_at": started,
            "should_stop": False,
        }
        stored = tx.run(run.id) if tx.update_run(run.id, run.attempt, changes, run.state) else None
        if stored is None:
            raise AssertionError(f"run {run.id} changed under the sweep's lock")
        # The claim as stored, not as suggested: the engine gives numpy numbers, the store plain.
        return _claim_of(stored, attempt)

    # the sweep's state ------------------------------------------------------------------------

    def set_state(self, sweep_id: str, state: SweepState) -> SweepState:
        """Pause, resume, stop or cancel a sweep (see base.Backend.set_sweep_state). The next
        claim applies the state; cancelling also marks every running run to stop, which its
        trial reads at its next epoch boundary (`should_stop`, hyperband's path) and ends
        stopped with its summary kept.

        Returns:
            The state set.

        Raises:
            NotFoundError: no sweep with this exact id.
            SweeperError: pausing, stopping or cancelling a sweep that is over.
        """
        with self.store.transaction() as tx:
            sweep = tx.lock_sweep(sweep_id)
            if sweep is None:
                raise NotFoundError(f"no sweep {sweep_id!r} in {self.store.location}")
            check_transition(sweep_id, sweep.state, state)
            if state != sweep.state:
                tx.update_sweep(sweep_id, {"state": state})
            if state == SweepState.CANCELED:
                for run in tx.runs(sweep_id, [RunState.RUNNING]):
                    tx.update_run(run.id, run.attempt, {"should_stop": True})
        return state

    def create_run(self, params: Mapping[str, Any], agent: str) -> Claim:
        """A run outside any sweep (`sweeper train`), already claimed by `agent`.

        Args:
            params: Flat {dotted path: value}.
        """
        with self.store.transaction() as tx:
            run = RunRecord(
                id=new_id(),
                sweep_id=None,
                seq=0,
                params={name: {"value": value} for name, value in params.items()},
                state=RunState.RUNNING,
                attempt=1,
                agent=agent,
                heartbeat_at=tx.now,
                created_at=tx.now,
                started_at=tx.now,
            )
            tx.insert_run(run)
        return _claim_of(run, 1)

    # a trial's writes, fenced by (run id, attempt) ------------------------------------------

    def heartbeat(self, run_id: str, attempt: int) -> Beat:
        """Keep a trial alive; `lost` when it is no longer ours (requeued elsewhere).

        Early termination needs no answer here: the trial asks `should_stop` every epoch.
        """
        with self.store.transaction() as tx:
            alive = tx.update_run(run_id, attempt, {"heartbeat_at": tx.now})
        return "alive" if alive else "lost"

    def log(self, run_id: str, attempt: int, step: int, metrics: Mapping[str, Any]) -> bool:
        """Record one history step and merge it into the summary, as `wandb.log` does; a
        logged step is also a heartbeat.

        Returns:
            False if the trial is no longer this attempt's (nothing was written).
        """
        with self.store.transaction() as tx:
            if not tx.update_run(run_id, attempt, {"heartbeat_at": tx.now}):
                return False
            tx.merge_summary(run_id, attempt, metrics)
            tx.append_history(run_id, step, metrics)
            self._apply_target(tx, run_id, metrics)
        return True

    def record_meta(self, run_id: str, attempt: int, meta: Mapping[str, Any]) -> None:
        """Store what reproduces the run (config, seed, commit, versions) for this attempt."""
        with self.store.transaction() as tx:
            tx.update_run(run_id, attempt, {"meta": dict(meta)}, expect=None)

    def finish(
        self,
        run_id: str,
        attempt: int,
        state: RunState,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Record how a trial ended: a terminal state, or `preempted`, which puts the run back
        in the queue (no agent, no end time) for the next claim.

        Returns:
            False if the trial is no longer this attempt's (nothing was written).
        """
        preempted = state == RunState.PREEMPTED
        with self.store.transaction() as tx:
            if not tx.merge_summary(run_id, attempt, summary or {}):
                return False
            changes: RunChanges = {
                "state": RunState(state),
                "exit_code": exit_code,
                "error": error,
                "finished_at": None if preempted else tx.now,
            }
            if preempted:
                changes["agent"] = None
            tx.update_run(run_id, attempt, changes)
            self._apply_target(tx, run_id, summary or {})
        return True

    def _apply_target(self, tx: Transaction, run_id: str, summary: Mapping[str, Any]) -> None:
        """W&B's `metric.target`: once a run's summary reaches it, the sweep is FINISHED (no new
        runs; running ones finish), as W&B's server sets it (sweep.study.reaches_target). Each
        logged step updates the summary, so it is checked there too, as W&B checks live runs."""
        if run_id not in self._targets:
            run = tx.run(run_id)
            sweep = self.store.sweep(run.sweep_id) if run and run.sweep_id else None
            has_target = sweep is not None and "target" in (sweep.config.get("metric") or {})
            self._targets[run_id] = sweep.config if sweep is not None and has_target else None
        config = self._targets[run_id]
        if config is None or not reaches_target(config, summary):
            return
        run = tx.run(run_id)
        sweep = tx.lock_sweep(run.sweep_id) if run and run.sweep_id else None
        if sweep is not None and not sweep.state.over:
            tx.update_sweep(sweep.id, {"state": SweepState.FINISHED})

    # early termination ----------------------------------------------------------------------

    def should_stop(self, run_id: str) -> bool:
        """Apply the sweep's early termination (W&B's hyperband, `sweeps.stop_runs`) across its
        runs now, marking each run it stops; whether this run must stop. A run that is gone, no
        longer running, or already marked must stop too.

        The decision is made from a snapshot with no lock held; each mark is fenced by the
        attempt the snapshot saw, so a run requeued meanwhile is not stopped for its old one.
        """
        run = self.store.run(run_id)
        if run is None or run.should_stop or run.state != RunState.RUNNING:
            return True
        if run.sweep_id is None:
            return False
        sweep = self.store.sweep(run.sweep_id)
        if sweep is None or not sweep.config.get("early_terminate"):
            return False
        if is_scheduled(sweep.config):  # its optimizer's prune_runs stops runs (scheduler.py)
            return False
        metric, _ = sweep.metric  # hyperband reads this one metric's history only
        snapshot = self.store.snapshot(sweep.id, history_of=metric)
        if snapshot is None:
            return False
        views = [r.view(snapshot.history.get(r.id)) for r in snapshot.runs]
        stop = set(runs_to_stop(sweep.config, views))
        if stop:
            with self.store.transaction() as tx:
                for other in snapshot.runs:
                    if other.id in stop:
                        tx.update_run(other.id, other.attempt, {"should_stop": True})
        return run_id in stop


def _claim_of(run: RunRecord, attempt: int) -> Claim:
    params = {name: param["value"] for name, param in run.params.items()}
    return Claim(run_id=run.id, sweep_id=run.sweep_id, attempt=attempt, params=params)

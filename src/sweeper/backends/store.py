"""The primitives a sweep's store offers; the behaviour above them lives in `coordinator`.

A store keeps records and answers two kinds of request: a write transaction that holds the
sweep's lock and reads the store's clock, in which the coordinator reads and changes records
(`Transaction`), and a consistent read taken without any lock (`Store.snapshot`), from which
the engine's slow suggestion is computed. Modelled on Optuna's `BaseStorage`: a backend for
another database implements these primitives and inherits the sweep's rules unchanged.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

from sweeper.backends import storejson
from sweeper.backends.base import LiveTrial, SweepRecord
from sweeper.sweep import RunState, RunView, SweepState
from sweeper.sweep.runtable import RunRow


def new_id(length: int = 8) -> str:
    """A random id of lowercase letters and digits, as W&B makes a run's or a sweep's."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class RunRecord:
    """One stored run, as the coordinator reads and inserts it."""

    id: str
    sweep_id: str | None
    """None for a run outside any sweep (`sweeper train`)."""
    seq: int
    """Its place in the sweep, from 1 (0 outside a sweep): the engine sees runs in this order."""
    params: dict[str, Any]
    """W&B form: {dotted path: {"value": v}}."""
    state: RunState
    attempt: int = 0
    """How many times it was handed out: the fence of every write from a trial."""
    agent: str | None = None
    heartbeat_at: float | None = None
    """The store's clock (seconds since the epoch) at its last heartbeat or logged step."""
    should_stop: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None

    def view(self, history: list[dict[str, Any]] | None = None) -> RunView:
        """The engine's view of it."""
        return RunView(self.id, self.state, self.params, self.summary, history or [])


class RunChanges(TypedDict, total=False):
    """Columns a fenced update may set; absent keys stay as they are."""

    state: RunState
    attempt: int
    agent: str | None
    heartbeat_at: float
    should_stop: bool
    started_at: float
    finished_at: float | None
    exit_code: int | None
    error: str | None
    meta: dict[str, Any]


class SweepChanges(TypedDict, total=False):
    """Columns of a sweep that may change after it is made."""

    state: SweepState
    """Stored as its value (`paused`); a store reads it back with `SweepState.read`, which
    also reads the `stopped` of stores written before W&B's four states."""
    exhausted: bool
    lease_holder: str | None
    """The scheduler lease (SweepRecord.lease_holder): set, renewed and dropped under the
    sweep's lock (`Transaction.lock_sweep`), compared with the store's clock (`now`)."""
    lease_until: float | None


@dataclass(frozen=True)
class GridState:
    """Which points of a grid sweep's walk are taken (`sweeper.sweep.engine.Grid`), read
    without any run's JSON: what the engine's grid decides from."""

    next: int
    """Every point below this one is taken (`Transaction.set_grid_next`)."""
    taken: list[int]
    """The points of the sweep's runs from `next` on, ascending, each once."""
    unnumbered: bool
    """Whether some run of the sweep has no point recorded yet (one stored before points
    were, or copied from another store; a random or bayes sweep's runs never have one)."""


@dataclass(frozen=True)
class ClaimView:
    """What a claim decides from for grid and random sweeps, in one consistent read with no
    lock held: no finished run is read, so its cost does not grow with the sweep."""

    sweep: SweepRecord
    active: list[RunRecord]
    """The runs pending, preempted or running, in `seq` order."""
    total: int
    """How many runs the sweep has, any state (`Transaction.run_total`)."""
    grid: GridState
    now: float
    """The store's clock when it was read."""


@dataclass(frozen=True)
class StoredRun:
    """A run whole: its record and the columns a store writes at its end but the coordinator
    never reads back (what a copy to another store must carry too)."""

    record: RunRecord
    meta: dict[str, Any]
    """What reproduces it: config, seed, commit, versions."""
    exit_code: int | None
    error: str | None
    finished_at: float | None

    def values(self, flag: Callable[[bool], Any]) -> tuple[Any, ...]:
        """Its column values as either store inserts them, in the order `id, sweep_id, seq,
        params, state, attempt, agent, heartbeat_at, should_stop, summary, created_at,
        started_at, meta, exit_code, error, finished_at`: JSON as the same text (storejson),
        the state as its value; `flag`: how the store keeps a boolean (int, bool)."""
        record = self.record
        return (
            record.id,
            record.sweep_id,
            record.seq,
            storejson.dumps(record.params),
            str(record.state),
            record.attempt,
            record.agent,
            record.heartbeat_at,
            flag(record.should_stop),
            storejson.dumps(record.summary),
            record.created_at,
            record.started_at,
            storejson.dumps(self.meta, default=str),
            self.exit_code,
            self.error,
            self.finished_at,
        )


@dataclass(frozen=True)
class StoreCopy:
    """Sweeps, their runs and history, as one consistent read of a store saw them
    (`BackendStore.export`), to be inserted into another (`BackendStore.import_copy`)."""

    sweeps: list[SweepRecord]
    """In creation order."""
    runs: list[StoredRun]
    history: list[tuple[str, int, dict[str, Any]]]
    """(run id, step, {metric: value}) rows."""


@dataclass(frozen=True)
class Snapshot:
    """A sweep and its runs as one consistent read saw them, with no lock held."""

    sweep: SweepRecord
    runs: list[RunRecord]
    """Every run of the sweep, in `seq` order."""
    history: dict[str, list[dict[str, Any]]]
    """Run id -> the steps it logged of the metric asked for, in step order ({} if none)."""
    now: float
    """The store's clock when it was read."""


class Transaction(Protocol):
    """The primitives inside one write transaction. Everything it changes commits together
    when the `with` block ends, or not at all if it raises."""

    @property
    def now(self) -> float:
        """The store's clock (seconds since the epoch), read once when the transaction began:
        every heartbeat is compared on this one clock, whichever machine an agent runs on."""
        ...

    @property
    def up_since(self) -> float | None:
        """When the store's server last started, on the same clock as `now`; None for a store
        with no server (a SQLite file). No agent could heartbeat while the server was down, so
        a heartbeat counts as lapsed only from then on: a restart does not requeue live runs."""
        ...

    def lock_sweep(self, sweep_id: str) -> SweepRecord | None:
        """Read a sweep and hold its lock until the transaction ends: claims and stop
        decisions on one sweep happen one at a time.

        Returns:
            The sweep, or None if there is no sweep with this exact id.
        """
        ...

    def insert_sweep(self, sweep: SweepRecord) -> None:
        """Store a new sweep.

        Raises:
            NoSpace: the store's disk is full.
        """
        ...

    def update_sweep(self, sweep_id: str, changes: SweepChanges) -> None:
        """Change a sweep's state, exhaustion or scheduler lease; no sweep with this id is a
        no-op."""
        ...

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        """How many runs the sweep has in each state (states with none are absent)."""
        ...

    def run_total(self, sweep_id: str) -> int:
        """How many runs the sweep has, any state, without counting them: its highest `seq`
        (each run is inserted with the next one under the sweep's lock, so they run 1..n)."""
        ...

    def grid_state(self, sweep_id: str) -> GridState:
        """The sweep's grid points taken (see `GridState`)."""
        ...

    def unnumbered_runs(self, sweep_id: str) -> list[RunRecord]:
        """The sweep's runs after the last one `number_runs` covered, in `seq` order."""
        ...

    def number_runs(self, sweep_id: str, points: Mapping[str, int], numbered_to: int) -> None:
        """Record the grid point each run takes.

        Args:
            sweep_id: The grid sweep.
            points: Run id -> its point (`sweeper.sweep.engine.Grid.index_of`; NOT_A_POINT
                for a run that takes none).
            numbered_to: Every run of the sweep up to this `seq` now has its point recorded.
        """
        ...

    def set_grid_next(self, sweep_id: str, point: int) -> None:
        """Record that every point of the sweep's grid below `point` is taken (points are
        never given back: runs are not deleted)."""
        ...

    def runs(self, sweep_id: str, states: Iterable[RunState] | None = None) -> list[RunRecord]:
        """The sweep's runs in these states (all if None), in `seq` order."""
        ...

    def run(self, run_id: str) -> RunRecord | None:
        """One run, or None if there is none with this id."""
        ...

    def insert_run(self, run: RunRecord) -> None:
        """Store a new run; its id must be new."""
        ...

    def update_run(
        self,
        run_id: str,
        attempt: int,
        changes: RunChanges,
        expect: RunState | None = RunState.RUNNING,
    ) -> bool:
        """Change a run only if it is still at `attempt` (and in state `expect`, unless None):
        the fence that keeps a requeued trial's late writes out.

        Returns:
            Whether the run matched and was changed.
        """
        ...

    def merge_summary(self, run_id: str, attempt: int, summary: Mapping[str, Any]) -> bool:
        """Merge values into a running run's summary (W&B's: a key logged again replaces the
        old value), fenced by `attempt` as `update_run` is.

        Returns:
            Whether the run matched and was changed.
        """
        ...

    def append_history(self, run_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        """Record one history step; a step logged again (a resumed trial) replaces the old."""
        ...


class Store(Protocol):
    """Where a backend keeps sweeps, runs and their history."""

    @property
    def location(self) -> str:
        """What an error message names the store by (a path, a server)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction.

        Raises:
            StoreLost: the store this process opened is gone (deleted, replaced, truncated).
            NoSpace: the store's disk is full.
        """
        ...

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        """A sweep by its exact id, read with no lock held; None if there is none."""
        ...

    def run(self, run_id: str) -> RunRecord | None:
        """A run, read with no lock held; None if there is none."""
        ...

    def claim_view(self, sweep_id: str) -> ClaimView | None:
        """One consistent read of what a grid or random claim needs, holding no lock; its
        cost does not grow with the runs that ended (indexed reads only).

        Returns:
            The view, or None if there is no such sweep.
        """
        ...

    def snapshot(self, sweep_id: str, history_of: str | None = None) -> Snapshot | None:
        """One consistent read of a sweep and all its runs, holding no lock: what the engine
        computes from while other agents go on writing.

        Args:
            sweep_id: The sweep's exact id.
            history_of: A metric whose logged steps to read for every run (hyperband's), or None.

        Returns:
            The snapshot, or None if there is no such sweep.
        """
        ...


class LeaseTransaction(Transaction, Protocol):
    """A write transaction that also keeps agents' slot leases (the rule is
    `sweeper.agent.slots`; LocalBackend applies it over these)."""

    def lock_slots(self, scope: str, host: str) -> None:
        """Hold the lock on this scope's slots on this host until the transaction ends: two
        agents leasing there at once take turns."""
        ...

    def set_cpu_pool(self, scope: str, host: str, cpu_slots: int) -> None:
        """Set how many CPU slots (cpu-0 .. cpu-(n-1)) the scope has on this host."""
        ...

    def cpu_pool(self, scope: str, host: str) -> int | None:
        """The scope's CPU slot count on this host; None if `launch` set none."""
        ...

    def drop_lapsed_leases(self) -> None:
        """Forget every lease whose expiry is before `now` (its holder stopped renewing)."""
        ...

    def held_slots(self, scope: str, host: str, other_than: str) -> dict[str, str]:
        """Slot name -> holder, for this scope's leases on this host held by anyone else."""
        ...

    def put_leases(
        self, scope: str, host: str, slots: list[str], holder: str, pid: int, expires_at: float
    ) -> None:
        """Lease these slots to `holder` (process `pid`) until `expires_at` (the store's clock,
        seconds since the epoch), replacing a lease of the same slot."""
        ...

    def renew_leases(self, holder: str, expires_at: float) -> set[str]:
        """Extend every lease of `holder` to `expires_at`.

        Returns:
            The slot names it still holds (one it let lapse may have gone to another agent).
        """
        ...

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        """Drop the holder's leases: all of them, or those of `slots`."""
        ...


class BackendStore(Store, Protocol):
    """Everything `LocalBackend` asks of a store: the coordinator's primitives, the reads that
    `status`, `runs`, reports and the progress bar make (none takes a lock), and slot leases.
    SQLite (`sweeper.backends.sqlite`) and PostgreSQL (`sweeper.backends.postgres`) give them."""

    @property
    def root(self) -> Path:
        """Where runs keep files (logs, checkpoints, wandb's folders) on this machine."""
        ...

    def transaction(self) -> AbstractContextManager[LeaseTransaction]:
        """A write transaction (see `Store.transaction`)."""
        ...

    def close(self) -> None:
        """Release the connection(s); the store is not used again."""
        ...

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        """Every sweep in creation order, or the stages of `study` in stage order ([] if none)."""
        ...

    def latest_stage(self, study: str) -> SweepRecord | None:
        """The study's stage with the highest number; None for no such study."""
        ...

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given)."""
        ...

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        """How many runs the sweep has in each state (states with none are absent)."""
        ...

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        """The sweep's running trials in `seq` order, each with its last logged step, in one
        query (a progress poll, twice a second); `elapsed` is on the store's clock."""
        ...

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        """Every column of one run (`params`, `summary` and `meta` decoded); None if none."""
        ...

    def sweep_configs(self, sweep_ids: list[str]) -> list[dict[str, Any]]:
        """The W&B configs of these sweeps, in stage then creation order."""
        ...

    def run_rows(self, sweep_ids: list[str]) -> list[RunRow]:
        """The runs of these sweeps for the run table, in stage then `seq` order; a running
        run's runtime counts up to the store's clock now."""
        ...

    def history_rows(
        self, run_ids: list[str], metrics: list[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """The logged steps of these runs, in no set order.

        Args:
            run_ids: Any number of runs.
            metrics: The metrics to pick (in the store's query: parsing every step is the slow
                part at 10,000 runs), or None for whole rows.

        Returns:
            (run id, step, {metric: value}) rows with `metrics` None, else (run id, step, one
            value per metric, None where the step did not log it); non-finite floats decoded.

        Raises:
            SweeperError: a metric name the store cannot query (SQLite: one with a quote).
        """
        ...

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's history as logged, (step, {metric: value}) in step order."""
        ...

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        """Slot name -> holder, for the unexpired leases of this scope on this host."""
        ...

    def export(self, sweep_ids: list[str] | None = None) -> StoreCopy:
        """Sweeps with every run and history row of theirs, whole, in one consistent read
        holding no lock (what `sweeper store copy` moves).

        Args:
            sweep_ids: The sweeps to read; None: every sweep, and the runs outside any sweep
                (`sweeper train`'s).
        """
        ...

    def import_copy(self, copy: StoreCopy) -> None:
        """Insert what another store's `export` read, ids as they are, in one transaction:
        all of it or nothing. Slot leases and pools are not part of a copy (they belong to
        the machines of the store they were made in).

        Raises:
            SweeperError: a sweep or run id of the copy is already in this store (one line,
                naming it); nothing is written.
            NoSpace: the store's disk is full.
        """
        ...

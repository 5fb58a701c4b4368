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
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from sweeper.backends.base import SweepRecord
from sweeper.sweep import RunState, RunView, SweepState


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
        """Change a sweep's state or exhaustion; no sweep with this id is a no-op."""
        ...

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        """How many runs the sweep has in each state (states with none are absent)."""
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

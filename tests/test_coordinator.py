"""The coordinator's rules over the store primitives, run over every store (SQLite, PostgreSQL,
and an in-memory store written from the protocol alone), with a fake clock; and the claim's
seam: the engine's suggestion is computed with no lock held and inserted only if nothing it
depends on changed meanwhile."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from helpers import sweep_record

import sweeper.backends.coordinator as coordinator_module
from sweeper.backends.base import SweepRecord
from sweeper.backends.coordinator import ENGINE_TRIES, Coordinator
from sweeper.backends.sqlite import SqliteStore
from sweeper.backends.store import (
    ClaimView,
    GridState,
    RunChanges,
    RunRecord,
    Snapshot,
    Store,
    SweepChanges,
    Transaction,
)
from sweeper.sweep import ACTIVE, RunState, RunView, SweepState
from sweeper.sweep.engine import next_grid_point as real_next_grid_point
from sweeper.sweep.engine import next_params as real_next_params

METRIC = {"name": "loss", "goal": "minimize"}
GRID = {"method": "grid", "metric": METRIC, "parameters": {"x": {"values": [0, 1, 2]}}}
BAYES = {"method": "bayes", "metric": METRIC, "parameters": {"x": {"min": 0.0, "max": 1.0}}}


class FakeClock:
    """The store's clock, moved by the test: no sleeping to let a heartbeat lapse."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


# An in-memory store, from the protocol alone ------------------------------------------------


@dataclass
class _Data:
    sweeps: dict[str, SweepRecord] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    history: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    """Run id -> the grid point it takes."""
    walks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Sweep id -> (next point, numbered to seq) of its grid's walk."""

    def copy(self) -> _Data:
        return _Data(
            dict(self.sweeps),
            dict(self.runs),
            {k: dict(v) for k, v in self.history.items()},
            dict(self.points),
            dict(self.walks),
        )


class MemoryTransaction:
    def __init__(self, data: _Data, now: float) -> None:
        self.data, self._now = data, now

    @property
    def now(self) -> float:
        return self._now

    @property
    def up_since(self) -> None:
        return None

    def lock_sweep(self, sweep_id: str) -> SweepRecord | None:
        return self.data.sweeps.get(sweep_id)

    def insert_sweep(self, sweep: SweepRecord) -> None:
        self.data.sweeps[sweep.id] = sweep

    def update_sweep(self, sweep_id: str, changes: SweepChanges) -> None:
        if sweep_id in self.data.sweeps:
            self.data.sweeps[sweep_id] = replace(self.data.sweeps[sweep_id], **changes)

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        counts: dict[RunState, int] = {}
        for run in self.runs(sweep_id):
            counts[run.state] = counts.get(run.state, 0) + 1
        return counts

    def run_total(self, sweep_id: str) -> int:
        return max((run.seq for run in self.runs(sweep_id)), default=0)

    def grid_state(self, sweep_id: str) -> GridState:
        start, numbered = self.data.walks.get(sweep_id, (0, 0))
        runs = self.runs(sweep_id)
        taken = {self.data.points[r.id] for r in runs if self.data.points.get(r.id, -1) >= start}
        return GridState(start, sorted(taken), numbered < self.run_total(sweep_id))

    def unnumbered_runs(self, sweep_id: str) -> list[RunRecord]:
        numbered = self.data.walks.get(sweep_id, (0, 0))[1]
        return [run for run in self.runs(sweep_id) if run.seq > numbered]

    def number_runs(self, sweep_id: str, points: Mapping[str, int], numbered_to: int) -> None:
        self.data.points.update(points)
        self.data.walks[sweep_id] = (self.data.walks.get(sweep_id, (0, 0))[0], numbered_to)

    def set_grid_next(self, sweep_id: str, point: int) -> None:
        self.data.walks[sweep_id] = (point, self.data.walks.get(sweep_id, (0, 0))[1])

    def runs(self, sweep_id: str, states: Iterable[RunState] | None = None) -> list[RunRecord]:
        wanted = None if states is None else set(states)
        found = [
            r
            for r in self.data.runs.values()
            if r.sweep_id == sweep_id and (wanted is None or r.state in wanted)
        ]
        return sorted(found, key=lambda r: r.seq)

    def run(self, run_id: str) -> RunRecord | None:
        return self.data.runs.get(run_id)

    def insert_run(self, run: RunRecord) -> None:
        assert run.id not in self.data.runs
        self.data.runs[run.id] = run

    def update_run(
        self,
        run_id: str,
        attempt: int,
        changes: RunChanges,
        expect: RunState | None = RunState.RUNNING,
    ) -> bool:
        run = self.data.runs.get(run_id)
        if run is None or run.attempt != attempt or (expect is not None and run.state != expect):
            return False
        kept: dict[str, Any] = {
            k: v for k, v in changes.items() if k in RunRecord.__dataclass_fields__
        }
        self.data.runs[run_id] = replace(run, **kept)  # outcome columns: not read back
        return True

    def merge_summary(self, run_id: str, attempt: int, summary: Mapping[str, Any]) -> bool:
        run = self.data.runs.get(run_id)
        if run is None or run.attempt != attempt or run.state != RunState.RUNNING:
            return False
        self.data.runs[run_id] = replace(run, summary={**run.summary, **summary})
        return True

    def append_history(self, run_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        self.data.history.setdefault(run_id, {})[step] = dict(metrics)


class MemoryStore:
    """A store in a dict behind one lock: a transaction works on a copy, kept if it ends well."""

    location = "memory"

    def __init__(self, clock: Callable[[], float]) -> None:
        self.data, self.clock, self.lock = _Data(), clock, threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.lock:
            work = self.data.copy()
            yield MemoryTransaction(work, self.clock())
            self.data = work

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        return self.data.sweeps.get(sweep_id)

    def run(self, run_id: str) -> RunRecord | None:
        return self.data.runs.get(run_id)

    def claim_view(self, sweep_id: str) -> ClaimView | None:
        with self.lock:
            data = self.data.copy()
        sweep = data.sweeps.get(sweep_id)
        if sweep is None:
            return None
        read = MemoryTransaction(data, 0.0)
        active = read.runs(sweep_id, ACTIVE)
        return ClaimView(
            sweep, active, read.run_total(sweep_id), read.grid_state(sweep_id), self.clock()
        )

    def snapshot(self, sweep_id: str, history_of: str | None = None) -> Snapshot | None:
        with self.lock:
            data = self.data.copy()
        sweep = data.sweeps.get(sweep_id)
        if sweep is None:
            return None
        runs = MemoryTransaction(data, 0.0).runs(sweep_id)
        history = {}
        if history_of is not None:
            for run in runs:
                steps = sorted(data.history.get(run.id, {}).items())
                history[run.id] = [{history_of: m.get(history_of)} for _, m in steps]
        return Snapshot(sweep, runs, history, self.clock())


# Every store ---------------------------------------------------------------------------------


@dataclass
class Setup:
    store: Store
    clock: FakeClock
    second: Callable[[], Coordinator]
    """Another agent's coordinator on the same store (its own connection, for SQLite)."""
    lock_is_free: Callable[[], bool]
    """Whether a writer could take the store's write lock right now."""

    def sweep(self, config: Mapping[str, Any], state: SweepState = SweepState.RUNNING) -> str:
        with self.store.transaction() as tx:
            tx.insert_sweep(sweep_record("sw1", config, tx.now, state=state))
        return "sw1"


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    clock = FakeClock()
    if request.param == "memory":
        memory = MemoryStore(clock)
        yield Setup(memory, clock, lambda: Coordinator(memory), lambda: not memory.lock.locked())
        return
    if request.param == "postgresql":
        yield from _postgres_setup(request.getfixturevalue("postgres_url"), clock)
        return
    path = tmp_path / "sweeper.db"
    sqlite = SqliteStore(path, clock=clock)
    others: list[SqliteStore] = []

    def second() -> Coordinator:
        others.append(SqliteStore(path, create=False, clock=clock))
        return Coordinator(others[-1])

    def lock_is_free() -> bool:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            probe.close()

    yield Setup(sqlite, clock, second, lock_is_free)
    for store in [sqlite, *others]:
        store.close()


def _postgres_setup(url: str, clock: FakeClock) -> Iterator[Setup]:
    """PostgreSQL with the fake clock in place of the database's; the sweep's lock is its
    row's, which a probe asks for without waiting."""
    import psycopg

    from sweeper.backends.postgres import PostgresStore

    stores = [PostgresStore(url, clock=clock)]

    def second() -> Coordinator:
        stores.append(PostgresStore(url, create=False, clock=clock))
        return Coordinator(stores[-1])

    def lock_is_free() -> bool:
        with psycopg.connect(url) as probe:
            try:
                probe.execute("SELECT 1 FROM sweeps WHERE id = 'sw1' FOR UPDATE NOWAIT")
                return True
            except psycopg.errors.LockNotAvailable:
                return False

    yield Setup(stores[0], clock, second, lock_is_free)
    for store in stores:
        store.close()


def test_claims_walk_the_grid_in_order_then_exhaust(setup: Setup) -> None:
    sweep_id, coordinator = setup.sweep(GRID), Coordinator(setup.store)
    claims = [coordinator.claim(sweep_id, "a") for _ in range(3)]
    assert [c.params["x"] if c else None for c in claims] == [0, 1, 2]
    assert coordinator.claim(sweep_id, "a") is None
    sweep = setup.store.sweep(sweep_id)
    assert sweep is not None and sweep.exhausted
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None and [r.seq for r in snapshot.runs] == [1, 2, 3]


def test_a_lapsed_heartbeat_requeues_and_fences_the_old_attempt(setup: Setup) -> None:
    sweep_id, coordinator = setup.sweep(GRID), Coordinator(setup.store)
    first = coordinator.claim(sweep_id, "a")
    assert first is not None
    setup.clock.now += 30
    assert coordinator.heartbeat(first.run_id, first.attempt) == "alive"
    setup.clock.now += 59  # 59 s since its last heartbeat: still a's
    other = coordinator.claim(sweep_id, "b", heartbeat_timeout=60)
    assert other is not None and other.run_id != first.run_id
    setup.clock.now += 2  # 61 s: lapsed
    again = coordinator.claim(sweep_id, "b", heartbeat_timeout=60)
    assert again is not None
    assert (again.run_id, again.attempt, again.params) == (first.run_id, 2, first.params)
    assert not coordinator.log(first.run_id, first.attempt, 0, {"loss": 9.0})
    assert coordinator.heartbeat(first.run_id, first.attempt) == "lost"
    assert not coordinator.finish(first.run_id, first.attempt, RunState.FINISHED, {"loss": 9.0})
    assert coordinator.log(again.run_id, again.attempt, 0, {"loss": 1.0})
    assert coordinator.finish(again.run_id, again.attempt, RunState.FINISHED, {"loss": 0.5})
    run = setup.store.run(first.run_id)
    assert run is not None
    assert (run.state, run.attempt, run.summary) == (RunState.FINISHED, 2, {"loss": 0.5})


def test_a_preempted_run_goes_first_and_a_paused_sweep_hands_out_nothing(setup: Setup) -> None:
    sweep_id, coordinator = setup.sweep(GRID), Coordinator(setup.store)
    first = coordinator.claim(sweep_id, "a")
    assert first is not None
    assert coordinator.finish(first.run_id, first.attempt, RunState.PREEMPTED, error="SIGTERM")
    with setup.store.transaction() as tx:
        tx.update_sweep(sweep_id, {"state": SweepState.PAUSED})
    assert coordinator.claim(sweep_id, "b") is None
    with setup.store.transaction() as tx:
        tx.update_sweep(sweep_id, {"state": SweepState.RUNNING})
    again = coordinator.claim(sweep_id, "b")
    assert again is not None and (again.run_id, again.attempt) == (first.run_id, 2)


def test_run_cap_counts_every_run(setup: Setup) -> None:
    config = {**GRID, "run_cap": 2}
    sweep_id, coordinator = setup.sweep(config), Coordinator(setup.store)
    claims = [coordinator.claim(sweep_id, "a") for _ in range(3)]
    assert [c is not None for c in claims] == [True, True, False]


def test_metric_target_reached_finishes_the_sweep_and_lets_running_runs_finish(
    setup: Setup,
) -> None:
    """W&B's `metric.target`: a run whose summary reaches it (here mid-run, at a logged step)
    sets the sweep FINISHED; no new run is handed out, and the other running run finishes."""
    config = {**GRID, "metric": {**METRIC, "target": 0.5}}
    sweep_id, coordinator = setup.sweep(config), Coordinator(setup.store)
    first, second = (coordinator.claim(sweep_id, "a") for _ in range(2))
    assert first is not None and second is not None
    assert coordinator.log(first.run_id, first.attempt, 0, {"loss": 0.9})
    assert setup.store.sweep(sweep_id).state == SweepState.RUNNING  # 0.9 is above the target
    assert coordinator.log(first.run_id, first.attempt, 1, {"loss": 0.5})  # at it: reached
    assert setup.store.sweep(sweep_id).state == SweepState.FINISHED
    assert coordinator.claim(sweep_id, "b") is None
    assert coordinator.finish(second.run_id, second.attempt, RunState.FINISHED, {"loss": 2.0})
    assert setup.store.run(second.run_id).state == RunState.FINISHED


def test_metric_target_to_maximize_is_reached_at_or_above_it(setup: Setup) -> None:
    config = {**GRID, "metric": {"name": "acc", "goal": "maximize", "target": 0.9}}
    sweep_id, coordinator = setup.sweep(config), Coordinator(setup.store)
    claim = coordinator.claim(sweep_id, "a")
    assert claim is not None
    assert coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"acc": 0.89})
    assert setup.store.sweep(sweep_id).state == SweepState.RUNNING
    claim = coordinator.claim(sweep_id, "a")
    assert claim is not None
    assert coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"acc": 0.95})
    assert setup.store.sweep(sweep_id).state == SweepState.FINISHED


def test_hyperband_marks_the_run_behind_the_band(setup: Setup) -> None:
    config = {
        **GRID,
        "parameters": {"x": {"values": [1.0, 1.5, 9.0]}},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    }
    sweep_id, coordinator = setup.sweep(config), Coordinator(setup.store)
    claims = {}
    for _ in range(3):
        claim = coordinator.claim(sweep_id, "a")
        assert claim is not None
        claims[claim.params["x"]] = claim
    for x, claim in claims.items():
        for step in range(3):
            coordinator.log(
                claim.run_id, claim.attempt, step, {"loss": (x - 1) ** 2 + 1 / (step + 1)}
            )
    assert coordinator.should_stop(claims[9.0].run_id)
    assert not coordinator.should_stop(claims[1.0].run_id)
    behind = setup.store.run(claims[9.0].run_id)
    assert behind is not None and behind.should_stop


# The claim's seam: the engine outside the lock ----------------------------------------------


class Engine:
    """Wraps an engine call (`next_grid_point` for a grid, `next_params` for bayes): records
    whether the write lock was free during each call, and runs `meanwhile` (another agent's
    write) during the first `times` calls made outside it."""

    def __init__(
        self,
        setup: Setup,
        meanwhile: Callable[[], object],
        times: int = 1,
        answer: Callable[[list[RunView]], dict[str, Any] | None] | None = None,
        real: Callable[..., Any] = real_next_grid_point,
    ) -> None:
        self.setup, self.meanwhile, self.times, self.answer = setup, meanwhile, times, answer
        self.real = real
        self.lock_free: list[bool] = []
        self.busy = False

    def __call__(self, *args: Any) -> Any:
        if not self.busy:  # the other agent's own claim calls the engine too: not recorded
            self.lock_free.append(self.setup.lock_is_free())
            if self.lock_free[-1] and self.times > 0:
                self.times -= 1
                self.busy = True
                try:
                    self.meanwhile()
                finally:
                    self.busy = False
        if self.answer is not None:
            return self.answer(args[1])  # next_params(config, runs, run_cap)
        return self.real(*args)


def test_another_agent_claims_during_the_engine_call_and_the_claim_asks_again(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id, other = setup.sweep(GRID), setup.second()
    taken: list[Any] = []
    engine = Engine(setup, lambda: taken.append(other.claim(sweep_id, "b")))
    monkeypatch.setattr(coordinator_module, "next_grid_point", engine)
    claim = Coordinator(setup.store).claim(sweep_id, "a")
    assert taken[0] is not None and taken[0].params["x"] == 0  # it wrote while "a" computed
    assert claim is not None and claim.params["x"] == 1  # not a duplicate of x=0
    assert engine.lock_free == [True, True]  # asked twice, both times with no lock held
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None and sorted(r.params["x"]["value"] for r in snapshot.runs) == [0, 1]


def test_bayes_asks_again_when_a_run_ended_meanwhile(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = setup.sweep(BAYES)
    coordinator, other = Coordinator(setup.store), setup.second()
    first = coordinator.claim(sweep_id, "a")
    assert first is not None

    def finish_first() -> None:
        assert other.finish(first.run_id, first.attempt, RunState.FINISHED, {"loss": 0.1})

    def answer(runs: list[RunView]) -> dict[str, Any]:  # tells which results it saw
        return {"x": {"value": float(sum(run.state == RunState.FINISHED for run in runs))}}

    engine = Engine(setup, finish_first, answer=answer, real=real_next_params)
    monkeypatch.setattr(coordinator_module, "next_params", engine)
    claim = coordinator.claim(sweep_id, "a")
    assert claim is not None and claim.params["x"] == 1.0  # not the stale 0.0
    assert engine.lock_free == [True, True]


def test_a_grid_claim_keeps_its_point_when_only_a_result_came_in(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = setup.sweep(GRID)
    coordinator, other = Coordinator(setup.store), setup.second()
    first = coordinator.claim(sweep_id, "a")
    assert first is not None

    def finish_first() -> None:
        assert other.finish(first.run_id, first.attempt, RunState.FINISHED, {"loss": 0.1})

    engine = Engine(setup, finish_first)
    monkeypatch.setattr(coordinator_module, "next_grid_point", engine)
    claim = coordinator.claim(sweep_id, "a")
    assert claim is not None and claim.params["x"] == 1
    assert engine.lock_free == [True]  # a grid's point does not depend on results


def test_a_claim_outrun_every_time_computes_under_the_lock_at_last(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {**GRID, "parameters": {"x": {"values": list(range(10))}}}
    sweep_id, other = setup.sweep(config), setup.second()
    engine = Engine(setup, lambda: other.claim(sweep_id, "b"), times=10)
    monkeypatch.setattr(coordinator_module, "next_grid_point", engine)
    claim = Coordinator(setup.store).claim(sweep_id, "a")
    assert engine.lock_free == [True] * ENGINE_TRIES + [False]
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None
    points = [r.params["x"]["value"] for r in snapshot.runs]
    assert claim is not None and claim.params["x"] == ENGINE_TRIES  # after b's 0, 1, 2
    assert points == list(range(ENGINE_TRIES + 1))  # no point twice


# Claims that read no finished run ------------------------------------------------------------

RANDOM = {"method": "random", "metric": METRIC, "parameters": {"x": {"min": 0.0, "max": 1.0}}}


def _no_full_reads(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any read of every run of the sweep (what made a claim's time grow with it)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a grid or random claim read every run")

    monkeypatch.setattr(setup.store, "snapshot", refused)


def test_grid_and_random_claims_read_no_finished_run_and_keep_run_cap(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_full_reads(setup, monkeypatch)
    sweep_id, coordinator = setup.sweep(GRID), Coordinator(setup.store)
    points = []
    while (claim := coordinator.claim(sweep_id, "a")) is not None:
        points.append(claim.params["x"])
        assert coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"loss": 0})
    assert points == [0, 1, 2]
    with setup.store.transaction() as tx:
        tx.insert_sweep(
            replace(
                _sweep(tx),
                id="sw2",
                config={**RANDOM, "run_cap": 2},
                state="running",
                exhausted=False,
            )
        )
    claims = [coordinator.claim("sw2", "a") for _ in range(3)]
    assert [c is not None for c in claims] == [True, True, False]
    assert all(0.0 <= c.params["x"] <= 1.0 for c in claims if c is not None)


def _sweep(tx: Transaction) -> SweepRecord:
    sweep = tx.lock_sweep("sw1")
    assert sweep is not None
    return sweep


def test_runs_stored_without_grid_points_are_numbered_once_and_never_handed_out_again(
    setup: Setup,
) -> None:
    """A store written before runs kept their grid point (or copied from another store):
    the next claim numbers them by the engine's rule, whatever their state, and hands out
    the engine's next point, not one of theirs."""
    config = {**GRID, "parameters": {"x": {"values": [0, 1, 2, 3, 0.0]}}}
    sweep_id = setup.sweep(config)
    with setup.store.transaction() as tx:
        for seq, (value, state) in enumerate(
            [(0, RunState.FAILED), (2, RunState.FINISHED), ("elsewhere", RunState.FINISHED)], 1
        ):
            params = {"x": {"value": value}}
            tx.insert_run(RunRecord(f"old{seq}", sweep_id, seq, params, state, attempt=1))
    coordinator = Coordinator(setup.store)
    views = [
        RunView(f"old{i}", RunState.FINISHED, {"x": {"value": v}})
        for i, v in enumerate([0, 2, "elsewhere"])
    ]
    expected = []
    while (params := real_next_params(config, views)) is not None:
        expected.append(params["x"]["value"])
        views.append(RunView(f"r{len(views)}", RunState.FINISHED, params))
    got = []
    while (claim := coordinator.claim(sweep_id, "a")) is not None:
        got.append(claim.params["x"])
        coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"loss": 0})
    assert [(v, type(v)) for v in got] == [(v, type(v)) for v in expected] == [
        (1, int), (3, int), (0.0, float)
    ]  # fmt: skip
    with setup.store.transaction() as tx:
        state = tx.grid_state(sweep_id)
        assert not state.unnumbered and tx.run_total(sweep_id) == 6

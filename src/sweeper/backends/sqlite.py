"""The SQLite store: one file (WAL) shared by every agent on the machine.

It implements the primitives of `sweeper.backends.store`; the sweep's rules are the
coordinator's. A write transaction is `BEGIN IMMEDIATE`, which takes the whole file's write
lock up front (so a reader turned writer never deadlocks): that is the sweep's lock here.

The driver is the standard library's `sqlite3`, on purpose: a fenced log transaction costs
~0.1 ms with it and 0.3-0.6 ms through SQLAlchemy Core (measured), and importing SQLAlchemy
adds ~0.4 s to every CLI start.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.backends import schema, storejson
from sweeper.backends.base import LiveTrial, SweepRecord
from sweeper.backends.store import (
    ClaimView,
    GridState,
    RunChanges,
    RunRecord,
    Snapshot,
    StoreCopy,
    StoredRun,
    SweepChanges,
    new_id,
)
from sweeper.errors import NoSpace, NotFoundError, StoreLost, SweeperError
from sweeper.sweep import ACTIVE, RunState, SweepState
from sweeper.sweep.runtable import RunRow

DEFAULT_STORE = ".sweeper/sweeper.db"

HISTORY_CHUNK = 900
"""Run ids per history query: under SQLite's bound-variable limit on every build."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    trainer TEXT NOT NULL,
    config TEXT NOT NULL,          -- the compiled W&B sweep config (JSON)
    spec TEXT NOT NULL,            -- the validated spec (JSON)
    spec_hash TEXT NOT NULL,
    spec_path TEXT,
    state TEXT NOT NULL DEFAULT 'running',  -- running | paused | finished | canceled (W&B's)
    exhausted INTEGER NOT NULL DEFAULT 0,   -- the engine has no new trial to give
    study TEXT,                    -- id shared by the stages of one staged study
    stage INTEGER NOT NULL DEFAULT 0,
    stage_name TEXT,
    carried TEXT NOT NULL DEFAULT '{}',     -- best config inherited from the previous stage
    created_at REAL NOT NULL,
    seed INTEGER,                  -- the sweep's seed (seeds.seed_for), NULL: made before seeds
    lease_holder TEXT,             -- who drives its scheduler engine (issue 23), NULL: nobody
    lease_until REAL               -- until when, on the store's clock
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT REFERENCES sweeps(id),    -- NULL for `sweeper train`
    seq INTEGER NOT NULL,
    params TEXT NOT NULL,          -- W&B form {name: {value: v}}
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    heartbeat_at REAL,
    should_stop INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',        -- what reproduces it: config, seed, commit, versions
    exit_code INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep_id, state);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS store (
    id TEXT NOT NULL               -- random, made with the file: which store a process opened
);
CREATE TABLE IF NOT EXISTS slot_pools (
    scope TEXT NOT NULL,           -- the study, else the sweep
    host TEXT NOT NULL,
    cpu_slots INTEGER NOT NULL,    -- launch's agent count: CPU slots cpu-0 .. cpu-(n-1)
    PRIMARY KEY (scope, host)
);
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT NOT NULL,
    host TEXT NOT NULL,
    slot TEXT NOT NULL,            -- a GPU id, or cpu-<k>
    holder TEXT NOT NULL,          -- the agent's id
    pid INTEGER NOT NULL,
    expires_at REAL NOT NULL,      -- renewed by the holder's heartbeat
    PRIMARY KEY (scope, host, slot)
);
""" + "".join(f"{statement};\n" for statement in schema.GRID_TABLES)
"""The tables (a new store is made with them; `sweeper.backends.schema` migrates an older one)."""

_RUN_FIELDS = (
    "id, sweep_id, seq, params, state, attempt, agent, heartbeat_at, should_stop, summary,"
    " created_at, started_at"
)
"""The columns a RunRecord holds (meta and the outcome columns are written, not read back)."""

_COPY_FIELDS = f"{_RUN_FIELDS}, meta, exit_code, error, finished_at"
"""Every column of a run, as a copy to another store carries it (`StoredRun.values`)."""

_RUN_CHANGES = frozenset(RunChanges.__annotations__)
_SWEEP_CHANGES = frozenset(SweepChanges.__annotations__)


def store_path(store: str | os.PathLike[str] | None = None) -> Path:
    """The store file: `store`, else $SWEEPER_STORE, else DEFAULT_STORE (relative to here)."""
    return Path(store or os.environ.get("SWEEPER_STORE") or DEFAULT_STORE)


@dataclass(frozen=True)
class StoreIdentity:
    """Which store file a process opened, so that it never writes into another one.

    (device, inode) names the open file: no other file gets them while any process holds it
    open, so a path that now stats differently was deleted or replaced (`cp` + `mv`). The
    random id made with the store catches what an inode cannot when a process opens the path
    afresh (a trial's child, an agent that launch started): another store copied over this one
    in place (`cp other.db sweeper.db` keeps the inode).
    """

    device: int
    inode: int
    store_id: str

    def __str__(self) -> str:
        return f"{self.device}:{self.inode}:{self.store_id}"

    @classmethod
    def parse(cls, text: str) -> StoreIdentity:
        device, inode, store_id = text.split(":", 2)
        return cls(int(device), int(inode), store_id)


class SqliteStore:
    """The SQLite file behind a LocalBackend. Open one per process (connections do not survive
    a fork).

    Args:
        path: The store file (see `store_path`).
        create: Make the store if there is none; else NotFoundError.
        readonly: For commands that only read: they work on a store they cannot write (a
            read-only file, folder or mount).
        expect: The store this process must find at the path (the one its parent opened).
        clock: The store's clock, seconds since the epoch (a test's fake one).

    Raises:
        NotFoundError: no store at `path` and `create` is false.
        StoreLost: `expect` was given and the path holds another file or store, or none.
        NoSpace: the disk is full.
        SweeperError: the path is a folder, not a store, damaged, or not writable (unless
            `readonly`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        create: bool = True,
        readonly: bool = False,
        expect: StoreIdentity | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = store_path(path)
        self.clock = clock
        self.identity: StoreIdentity | None = None
        """Set for a writable store: what each write transaction checks the path against."""
        self._size = 0
        if self.path.is_dir():
            raise SweeperError(f"{self.path}: is a folder, not a sweeper store")
        creating = not self.path.exists()
        if creating:
            if expect is not None:
                raise self._lost("was deleted")
            if not create:
                raise NotFoundError(f"no sweeper store at {self.path} (run `sweeper launch` first)")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SweeperError(
                    f"{self.path}: cannot create the store: {exc.strerror}"
                ) from None
        try:
            self.db = self._connect(creating, expect)
            with tempfile.TemporaryFile(dir=self.path.parent):  # trials keep their files beside it
                pass
        except (sqlite3.OperationalError, OSError) as exc:
            if is_full(exc):
                raise NoSpace.at(self.path) from None
            self.identity = None
            if not readonly:
                reason = exc.strerror if isinstance(exc, OSError) else exc
                raise SweeperError(f"{self.path}: cannot write the store: {reason}") from None
            self.db = self._connect_readonly()
        except sqlite3.DatabaseError as exc:
            raise SweeperError(f"{self.path}: not a sweeper store, or damaged: {exc}") from None

    @property
    def location(self) -> str:
        return str(self.path)

    def _connect(self, create: bool, expect: StoreIdentity | None) -> sqlite3.Connection:
        """Open for writing. Only a new store may create the file: SQLite would otherwise make
        an empty one wherever the store was deleted, and results would go there unseen."""
        uri = f"{self.path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        db = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        if expect is not None:
            self._verify(db, expect)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("BEGIN IMMEDIATE")
        try:
            store_id, changed = self._prepare(db)
            # Stamping the version is also the test that we can write: SQLite opens a
            # read-only file quietly and fails at the first write.
            db.execute(f"PRAGMA user_version = {schema.VERSION}")
            db.execute("COMMIT" if changed else "ROLLBACK")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        stat = os.stat(self.path)
        self.identity = StoreIdentity(stat.st_dev, stat.st_ino, store_id)
        self._size = stat.st_size
        return db

    def _prepare(self, db: sqlite3.Connection) -> tuple[str, bool]:
        """Inside the opening transaction: make a new store's tables, or migrate an older
        store's (`sweeper.backends.schema`), and give it an id if it has none.

        Returns:
            The store's id, and whether anything was written (else the transaction is rolled
            back, and opening an up-to-date store writes nothing).

        Raises:
            SweeperError: the store was written by a newer sweeper (both versions named).
        """
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > schema.VERSION:
            raise schema.too_new(str(self.path), found)
        made = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sweeps'").fetchone()
        changed = found != schema.VERSION
        if made is not None and changed:
            for statement in schema.steps(found or schema.UNVERSIONED, "sqlite"):
                try:
                    db.execute(statement)
                except sqlite3.OperationalError as exc:
                    if not schema.is_duplicate_column(str(exc)):  # else: the step's work is done
                        raise
        for statement in SCHEMA.split(";"):  # tables a new or an older store lacks
            if statement.strip():
                db.execute(statement)
        row = db.execute("SELECT id FROM store").fetchone()
        if row is not None:
            return row["id"], changed
        store_id = new_id(16)  # a new store, or one made before stores had an id
        db.execute("INSERT INTO store (id) VALUES (?)", (store_id,))
        return store_id, True

    def _verify(self, db: sqlite3.Connection, expect: StoreIdentity) -> None:
        """Before anything writes (the schema would be made anew in an emptied file): the path
        holds the file `expect` names, with its store id."""
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) != (expect.device, expect.inode):
                raise self._lost("was replaced by another file")
            try:
                row = db.execute("SELECT id FROM store").fetchone()
            except sqlite3.DatabaseError:  # no such table: an emptied or foreign file
                row = None
            if row is None or row["id"] != expect.store_id:
                raise self._lost(
                    "was truncated" if stat.st_size == 0 else "was replaced by another store"
                )
        except FileNotFoundError:
            db.close()
            raise self._lost("was deleted") from None
        except StoreLost:
            db.close()
            raise

    def _lost(self, what: str) -> StoreLost:
        return StoreLost(
            f"{self.path}: the store {what} while in use; stopping without writing elsewhere"
        )

    def _connect_readonly(self) -> sqlite3.Connection:
        """Read a store this process may not write: `mode=ro` needs the WAL index to exist or
        be creatable; `immutable` reads the file alone (what a read-only folder leaves)."""
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True)
                db.row_factory = sqlite3.Row
                db.execute("SELECT COUNT(*) FROM sweeps").fetchone()
            except sqlite3.Error as exc:
                last = exc
                continue
            # An older store is read as it is (nothing can be migrated here: SweepState.read
            # still takes version 1's `stopped`); a newer one may hold what this sweeper
            # would misread.
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > schema.VERSION:
                db.close()
                raise schema.too_new(str(self.path), found)
            return db
        raise SweeperError(f"{self.path}: cannot read the store: {last}") from None

    def check_store(self) -> None:
        """Raise StoreLost unless the path still names the file this process opened, whole.

        One stat (a few microseconds), before each write transaction: an unlinked file takes
        SQLite's writes silently, and a file cut short loses what the store held. SQLite never
        shrinks a store file here (no VACUUM, auto_vacuum off), so a smaller size means
        truncation.

        Raises:
            StoreLost: the file was deleted (or its folder), replaced, or truncated.
        """
        if self.identity is None:  # opened read-only: it writes nothing
            return
        try:
            stat = os.stat(self.path)
        except OSError:
            raise self._lost("was deleted") from None
        if (stat.st_dev, stat.st_ino) != (self.identity.device, self.identity.inode):
            raise self._lost("was replaced by another file")
        if stat.st_size < self._size:
            raise self._lost("was truncated")
        self._size = stat.st_size

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the raw connection, into the file this process opened only.

        SQLite may roll a transaction back itself on SQLITE_FULL: ROLLBACK only if it is open.

        Raises:
            StoreLost: see `check_store`.
            NoSpace: the disk is full.
        """
        self.check_store()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if is_full(exc):
                raise NoSpace.at(self.path) from None
            raise

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """The store primitives inside one write transaction (see `write`)."""
        with self.write() as db:
            yield SqliteTransaction(db, self.clock())

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: under WAL it sees one committed state and blocks no writer."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        row = self.db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return None if row is None else sweep_record(row)

    def run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_RUN_FIELDS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _run_record(row)

    def claim_view(self, sweep_id: str) -> ClaimView | None:
        with self._read() as db:
            now = self.clock()
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                return None
            active = db.execute(
                f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = ?"
                f" AND state IN ({','.join('?' * len(ACTIVE))}) ORDER BY seq",
                (sweep_id, *map(str, ACTIVE)),
            ).fetchall()
            total = _run_total(db, sweep_id)
            grid = _grid_state(db, sweep_id, total)
        return ClaimView(sweep_record(row), [_run_record(r) for r in active], total, grid, now)

    def snapshot(self, sweep_id: str, history_of: str | None = None) -> Snapshot | None:
        with self._read() as db:
            now = self.clock()
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                return None
            runs = db.execute(
                f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = ? ORDER BY seq", (sweep_id,)
            ).fetchall()
            history: dict[str, list[dict[str, Any]]] = {}
            if history_of is not None:
                for run_id, value in db.execute(
                    f"SELECT h.run_id, {json_field(history_of)} FROM history h"
                    " JOIN runs r ON r.id = h.run_id WHERE r.sweep_id = ?"
                    " ORDER BY h.run_id, h.step",
                    (sweep_id,),
                ):
                    history.setdefault(run_id, []).append({history_of: storejson.picked(value)})
        return Snapshot(sweep_record(row), [_run_record(r) for r in runs], history, now)

    @property
    def root(self) -> Path:
        """Where runs keep files: the store file's folder."""
        return self.path.parent

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        if study is None:
            rows = self.db.execute("SELECT * FROM sweeps ORDER BY created_at").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM sweeps WHERE study = ? ORDER BY stage", (study,)
            ).fetchall()
        return [sweep_record(row) for row in rows]

    def latest_stage(self, study: str) -> SweepRecord | None:
        row = self.db.execute(
            "SELECT * FROM sweeps WHERE study = ? ORDER BY stage DESC LIMIT 1", (study,)
        ).fetchone()
        return None if row is None else sweep_record(row)

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        row = self.db.execute(
            "SELECT * FROM sweeps WHERE spec_hash = ? AND stage = ?"
            " AND (? IS NULL OR study = ?) ORDER BY created_at DESC LIMIT 1",
            (spec_hash, stage, study, study),
        ).fetchone()
        return None if row is None else sweep_record(row)

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY state", (sweep_id,)
        ).fetchall()
        return {_STATES[state]: n for state, n in rows}

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        rows = self.db.execute(
            "SELECT r.id, r.agent, r.started_at, r.summary,"
            " (SELECT MAX(step) FROM history h WHERE h.run_id = r.id) AS step"
            " FROM runs r WHERE r.sweep_id = ? AND r.state = ? ORDER BY r.seq",
            (sweep_id, RunState.RUNNING),
        ).fetchall()
        now = self.clock()
        return [
            LiveTrial(
                run_id=row["id"],
                agent=row["agent"],
                step=row["step"],
                summary=storejson.loads(row["summary"]),
                elapsed=max(0.0, now - (row["started_at"] or now)),
            )
            for row in rows
        ]

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        for key in ("params", "summary", "meta"):
            out[key] = storejson.loads(out[key])
        return out

    def sweep_configs(self, sweep_ids: list[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(sweep_ids))
        configs = self.db.execute(
            f"SELECT config FROM sweeps WHERE id IN ({marks}) ORDER BY stage, created_at",
            sweep_ids,
        ).fetchall()
        return [storejson.loads(config) for (config,) in configs]

    def run_rows(self, sweep_ids: list[str]) -> list[RunRow]:
        marks = ",".join("?" * len(sweep_ids))
        rows = self.db.execute(
            f"SELECT r.*, s.stage, s.stage_name FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
            f" WHERE r.sweep_id IN ({marks}) ORDER BY s.stage, r.seq",
            sweep_ids,
        ).fetchall()
        now = self.clock()
        return [_run_row(row, now) for row in rows]

    def history_rows(
        self, run_ids: list[str], metrics: list[str] | None = None
    ) -> list[tuple[Any, ...]]:
        picked = "metrics" if metrics is None else ", ".join(map(json_field, metrics))
        rows: list[Any] = []
        for start in range(0, len(run_ids), HISTORY_CHUNK):
            chunk = run_ids[start : start + HISTORY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                f"SELECT run_id, step, {picked} FROM history WHERE run_id IN ({marks})", chunk
            ).fetchall()
        if metrics is None:
            return [(r, s, storejson.loads(m)) for r, s, m in rows]
        return [(r, s, *map(storejson.picked, vs)) for r, s, *vs in rows]

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT step, metrics FROM history WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [(step, storejson.loads(metrics)) for step, metrics in rows]

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND expires_at >= ?",
            (scope, host, self.clock()),
        )
        return {row["slot"]: row["holder"] for row in rows}

    def export(self, sweep_ids: list[str] | None = None) -> StoreCopy:
        which = "" if sweep_ids is None else f" IN ({','.join('?' * len(sweep_ids))})"
        where = which and f" WHERE sweep_id{which}"
        args = list(sweep_ids or [])
        with self._read() as db:
            sweeps = db.execute(
                f"SELECT * FROM sweeps{which and ' WHERE id' + which} ORDER BY created_at", args
            ).fetchall()
            runs = db.execute(
                f"SELECT {_COPY_FIELDS} FROM runs{where} ORDER BY created_at, seq", args
            ).fetchall()
            history = db.execute(
                "SELECT h.run_id, h.step, h.metrics FROM history h"
                f" WHERE h.run_id IN (SELECT id FROM runs{where}) ORDER BY h.run_id, h.step",
                args,
            ).fetchall()
        return StoreCopy(
            [sweep_record(row) for row in sweeps],
            [_stored_run(row) for row in runs],
            [(run_id, step, storejson.loads(metrics)) for run_id, step, metrics in history],
        )

    def import_copy(self, copy: StoreCopy) -> None:
        with self.write() as db:
            for table, ids in (
                ("sweeps", [sweep.id for sweep in copy.sweeps]),
                ("runs", [run.record.id for run in copy.runs]),
            ):
                for start in range(0, len(ids), HISTORY_CHUNK):
                    chunk = ids[start : start + HISTORY_CHUNK]
                    taken = db.execute(
                        f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(chunk))})"
                        " LIMIT 1",
                        chunk,
                    ).fetchone()
                    if taken is not None:
                        what = table.removesuffix("s")
                        raise SweeperError(
                            f"{self.path}: already holds {what} {taken['id']}; nothing copied"
                        )
            tx = SqliteTransaction(db, self.clock())
            for sweep in copy.sweeps:
                tx.insert_sweep(sweep)
            db.executemany(
                f"INSERT INTO runs ({_COPY_FIELDS}) VALUES ({','.join('?' * 16)})",
                [run.values(flag=int) for run in copy.runs],
            )
            db.executemany(
                "INSERT INTO history (run_id, step, metrics) VALUES (?, ?, ?)",
                [(run_id, step, storejson.dumps(m)) for run_id, step, m in copy.history],
            )


class SqliteTransaction:
    """The store primitives (`sweeper.backends.store.Transaction`) on an open BEGIN IMMEDIATE."""

    def __init__(self, db: sqlite3.Connection, now: float) -> None:
        self.db = db
        self._now = now

    @property
    def now(self) -> float:
        return self._now

    @property
    def up_since(self) -> None:
        return None  # a file has no server to restart

    def lock_sweep(self, sweep_id: str) -> SweepRecord | None:
        # BEGIN IMMEDIATE already holds the file's write lock, every sweep's.
        row = self.db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return None if row is None else sweep_record(row)

    def insert_sweep(self, sweep: SweepRecord) -> None:
        self.db.execute(
            "INSERT INTO sweeps (id, name, project, trainer, config, spec, spec_hash,"
            " spec_path, state, exhausted, study, stage, stage_name, carried, created_at, seed,"
            " lease_holder, lease_until)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sweep.id,
                sweep.name,
                sweep.project,
                sweep.trainer,
                storejson.dumps(sweep.config),
                storejson.dumps(sweep.spec, default=str),
                sweep.spec_hash,
                sweep.spec_path,
                str(sweep.state),
                int(sweep.exhausted),
                sweep.study,
                sweep.stage,
                sweep.stage_name,
                storejson.dumps(sweep.carried),
                sweep.created_at,
                sweep.seed,
                sweep.lease_holder,
                sweep.lease_until,
            ),
        )

    def update_sweep(self, sweep_id: str, changes: SweepChanges) -> None:
        columns, values = _assignments(changes, _SWEEP_CHANGES)
        self.db.execute(f"UPDATE sweeps SET {columns} WHERE id = ?", (*values, sweep_id))

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY state", (sweep_id,)
        )
        return {RunState(state): n for state, n in rows}

    def run_total(self, sweep_id: str) -> int:
        return _run_total(self.db, sweep_id)

    def grid_state(self, sweep_id: str) -> GridState:
        return _grid_state(self.db, sweep_id, _run_total(self.db, sweep_id))

    def unnumbered_runs(self, sweep_id: str) -> list[RunRecord]:
        numbered = _grid_walk(self.db, sweep_id)[1]
        rows = self.db.execute(
            f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = ? AND seq > ? ORDER BY seq",
            (sweep_id, numbered),
        )
        return [_run_record(row) for row in rows]

    def number_runs(self, sweep_id: str, points: Mapping[str, int], numbered_to: int) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO grid_points (run_id, sweep_id, point) VALUES (?, ?, ?)",
            [(run_id, sweep_id, point) for run_id, point in points.items()],
        )
        self.db.execute(
            "INSERT INTO grid_walks (sweep_id, next_point, numbered_to) VALUES (?, 0, ?)"
            " ON CONFLICT (sweep_id) DO UPDATE SET numbered_to = excluded.numbered_to",
            (sweep_id, numbered_to),
        )

    def set_grid_next(self, sweep_id: str, point: int) -> None:
        self.db.execute(
            "INSERT INTO grid_walks (sweep_id, next_point, numbered_to) VALUES (?, ?, 0)"
            " ON CONFLICT (sweep_id) DO UPDATE SET next_point = excluded.next_point",
            (sweep_id, point),
        )

    def runs(self, sweep_id: str, states: Iterable[RunState] | None = None) -> list[RunRecord]:
        query, args = f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = ?", [sweep_id]
        if states is not None:
            wanted = [str(state) for state in states]
            query += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        return [_run_record(row) for row in self.db.execute(query + " ORDER BY seq", args)]

    def run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_RUN_FIELDS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _run_record(row)

    def insert_run(self, run: RunRecord) -> None:
        self.db.execute(
            f"INSERT INTO runs ({_RUN_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.sweep_id,
                run.seq,
                storejson.dumps(run.params),
                str(run.state),
                run.attempt,
                run.agent,
                run.heartbeat_at,
                int(run.should_stop),
                storejson.dumps(run.summary),
                run.created_at,
                run.started_at,
            ),
        )

    def update_run(
        self,
        run_id: str,
        attempt: int,
        changes: RunChanges,
        expect: RunState | None = RunState.RUNNING,
    ) -> bool:
        columns, values = _assignments(changes, _RUN_CHANGES)
        query = f"UPDATE runs SET {columns} WHERE id = ? AND attempt = ?"
        args = [*values, run_id, attempt]
        if expect is not None:
            query += " AND state = ?"
            args.append(str(expect))
        return self.db.execute(query, args).rowcount == 1

    def merge_summary(self, run_id: str, attempt: int, summary: Mapping[str, Any]) -> bool:
        # json_patch is RFC 7396's merge, as W&B's summary update: a key logged again replaces.
        cursor = self.db.execute(
            "UPDATE runs SET summary = json_patch(summary, ?)"
            " WHERE id = ? AND attempt = ? AND state = ?",
            (storejson.dumps(dict(summary)), run_id, attempt, str(RunState.RUNNING)),
        )
        return cursor.rowcount == 1

    def append_history(self, run_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO history (run_id, step, metrics) VALUES (?, ?, ?)",
            (run_id, step, storejson.dumps(dict(metrics))),
        )

    # slot leases ----------------------------------------------------------------------------

    def lock_slots(self, scope: str, host: str) -> None:
        """BEGIN IMMEDIATE already holds the file's write lock, every scope's."""

    def set_cpu_pool(self, scope: str, host: str, cpu_slots: int) -> None:
        self.db.execute(
            "INSERT INTO slot_pools (scope, host, cpu_slots) VALUES (?, ?, ?)"
            " ON CONFLICT (scope, host) DO UPDATE SET cpu_slots = excluded.cpu_slots",
            (scope, host, cpu_slots),
        )

    def cpu_pool(self, scope: str, host: str) -> int | None:
        row = self.db.execute(
            "SELECT cpu_slots FROM slot_pools WHERE scope = ? AND host = ?", (scope, host)
        ).fetchone()
        return None if row is None else int(row["cpu_slots"])

    def drop_lapsed_leases(self) -> None:
        self.db.execute("DELETE FROM leases WHERE expires_at < ?", (self._now,))

    def held_slots(self, scope: str, host: str, other_than: str) -> dict[str, str]:
        return {
            row["slot"]: row["holder"]
            for row in self.db.execute(
                "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND holder != ?",
                (scope, host, other_than),
            )
        }

    def put_leases(
        self, scope: str, host: str, slots: list[str], holder: str, pid: int, expires_at: float
    ) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO leases (scope, host, slot, holder, pid, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(scope, host, name, holder, pid, expires_at) for name in slots],
        )

    def renew_leases(self, holder: str, expires_at: float) -> set[str]:
        self.db.execute("UPDATE leases SET expires_at = ? WHERE holder = ?", (expires_at, holder))
        rows = self.db.execute("SELECT slot FROM leases WHERE holder = ?", (holder,)).fetchall()
        return {row["slot"] for row in rows}

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        if slots is None:
            self.db.execute("DELETE FROM leases WHERE holder = ?", (holder,))
        else:
            marks = ",".join("?" * len(slots))
            self.db.execute(
                f"DELETE FROM leases WHERE holder = ? AND slot IN ({marks})", (holder, *slots)
            )


def _assignments(changes: Mapping[str, Any], allowed: frozenset[str]) -> tuple[str, list[Any]]:
    """`col = ?, ...` and its values for an update; column names come from a TypedDict's keys,
    never from data."""
    unknown = set(changes) - allowed
    if unknown or not changes:
        raise ValueError(f"cannot update columns {sorted(unknown) or 'none'}")
    values = []
    for name, value in changes.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, RunState | SweepState):
            value = str(value)
        elif name == "meta":
            value = storejson.dumps(value, default=str)
        values.append(value)
    return ", ".join(f"{name} = ?" for name in changes), values


_STATES = {str(state): state for state in RunState}


def _run_total(db: sqlite3.Connection, sweep_id: str) -> int:
    """The sweep's highest seq (its run count, see Transaction.run_total): one index lookup."""
    (total,) = db.execute(
        "SELECT MAX(seq) FROM runs WHERE sweep_id = ? AND seq > 0", (sweep_id,)
    ).fetchone()
    return total or 0


def _grid_walk(db: sqlite3.Connection, sweep_id: str) -> tuple[int, int]:
    """The sweep's grid_walks row: (next_point, numbered_to), (0, 0) before its first."""
    row = db.execute(
        "SELECT next_point, numbered_to FROM grid_walks WHERE sweep_id = ?", (sweep_id,)
    ).fetchone()
    return (0, 0) if row is None else (row[0], row[1])


def _grid_state(db: sqlite3.Connection, sweep_id: str, total: int) -> GridState:
    """The points taken from where the walk stands on, and whether a run of the `total` has
    no point yet: index reads only."""
    start, numbered = _grid_walk(db, sweep_id)
    taken = db.execute(
        "SELECT DISTINCT point FROM grid_points WHERE sweep_id = ? AND point >= ? ORDER BY point",
        (sweep_id, start),
    ).fetchall()
    return GridState(start, [point for (point,) in taken], numbered < total)


def _run_record(row: sqlite3.Row) -> RunRecord:
    """A `runs` row selected as _RUN_FIELDS. By position, and states by a dict, not by name
    and `RunState(...)`: a claim's snapshot reads every run (10,000 of them in a big sweep)."""
    (run_id, sweep_id, seq, params, state, attempt, agent, heartbeat_at, stop, summary) = row[:10]
    return RunRecord(
        run_id,
        sweep_id,
        seq,
        storejson.loads(params),
        _STATES[state],
        attempt,
        agent,
        heartbeat_at,
        bool(stop),
        storejson.loads(summary),
        row[10],
        row[11],
    )


def _stored_run(row: sqlite3.Row) -> StoredRun:
    """A `runs` row selected as _COPY_FIELDS."""
    return StoredRun(_run_record(row), storejson.loads(row[12]), row[13], row[14], row[15])


def _run_row(row: sqlite3.Row, now: float) -> RunRow:
    """A `runs` row joined with its sweep's stage, for the run table; a running run's runtime
    counts up to `now`."""
    end = row["finished_at"] or (now if row["state"] == RunState.RUNNING else None)
    params = storejson.loads(row["params"])
    return RunRow(
        run_id=row["id"],
        sweep_id=row["sweep_id"],
        state=row["state"],
        created_at=row["created_at"],
        config={k: v["value"] for k, v in params.items()},
        summary=storejson.loads(row["summary"]),
        stage=row["stage"],
        stage_name=row["stage_name"],
        agent=row["agent"],
        attempts=row["attempt"],
        runtime=(end - row["started_at"]) if end and row["started_at"] else None,
        exit_code=row["exit_code"],
        error=row["error"],
    )


def sweep_record(row: sqlite3.Row) -> SweepRecord:
    """A `sweeps` row as the record every backend gives."""
    config = storejson.loads(row["config"])
    return SweepRecord(
        id=row["id"],
        name=row["name"],
        project=row["project"],
        trainer=row["trainer"],
        config=config,
        spec=storejson.loads(row["spec"]),
        spec_hash=row["spec_hash"],
        spec_path=row["spec_path"],
        state=SweepState.read(row["state"]),  # an older store's `stopped` reads as canceled
        exhausted=bool(row["exhausted"]),
        study=row["study"],
        stage=row["stage"],
        stage_name=row["stage_name"],
        carried=storejson.loads(row["carried"]),
        created_at=row["created_at"],
        entity=config.get("entity"),
        seed=_newer(row, "seed"),
        lease_holder=_newer(row, "lease_holder"),
        lease_until=_newer(row, "lease_until"),
    )


def _newer(row: sqlite3.Row, column: str) -> Any:
    """A column added by a migration; None in an older store opened read-only (which is read
    as it is, not migrated)."""
    try:
        return row[column]
    except IndexError:  # sqlite3.Row's answer to a name it lacks
        return None


def is_full(exc: BaseException) -> bool:
    """SQLITE_FULL (SQLite's name for ENOSPC on its files), or ENOSPC itself."""
    if isinstance(exc, sqlite3.OperationalError):
        return exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def json_field(name: str) -> str:
    """SQL picking one metric out of a history row's JSON.

    Raises:
        SweeperError: the name holds a double quote (it would end the JSON path).
    """
    if '"' in name:
        raise SweeperError(f"metric names with quotes are not supported: {name!r}")
    return f"json_extract(metrics, '$.\"{name}\"')"

"""The embedded backend: one SQLite file (WAL) shared by every agent on the machine.

Claims happen inside `BEGIN IMMEDIATE`, so N agent processes never get the same trial and
never lose a result. Every write from a trial is fenced by its attempt number: a trial that
was requeued behind its back (its agent's heartbeat lapsed) can no longer write.
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import signal
import sqlite3
import string
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.backends import storejson
from sweeper.backends.base import Beat, Claim, LiveTrial, SweepRecord
from sweeper.backends.controller import next_params, runs_to_stop
from sweeper.errors import NoSpace, NotFoundError, StoreLost, SweeperError
from sweeper.sweep import ACTIVE, RunView
from sweeper.text import REASON_LIMIT, cap, strip_controls

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.agent.tracking import StopFlag, WandbMode

DEFAULT_STORE = ".sweeper/sweeper.db"

RUN_COLUMNS = [
    "run_id",
    "sweep_id",
    "stage",
    "stage_name",
    "state",
    "agent",
    "attempts",
    "created_at",
    "runtime",
    "exit_code",
    "error",
]
"""The run table's fixed columns; `config.*` and `summary.*` columns follow."""

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
    state TEXT NOT NULL DEFAULT 'running',  -- running | finished | stopped
    exhausted INTEGER NOT NULL DEFAULT 0,   -- the engine has no new trial to give
    study TEXT,                    -- id shared by the stages of one staged study
    stage INTEGER NOT NULL DEFAULT 0,
    stage_name TEXT,
    carried TEXT NOT NULL DEFAULT '{}',     -- best config inherited from the previous stage
    created_at REAL NOT NULL
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
"""


def new_id(length: int = 8) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def store_path(store: str | os.PathLike[str] | None = None) -> Path:
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


class LocalBackend:
    """The SQLite store. Open one per process (connections do not survive a fork)."""

    kind = "local"
    progress_every = 0.5

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        create: bool = True,
        readonly: bool = False,
        expect: StoreIdentity | None = None,
    ) -> None:
        """Open (or create) the store. `readonly` is for commands that only read: they work on
        a store they cannot write (a read-only file, folder or mount). `expect`: the store
        this process must find at the path (the one its parent opened), else StoreLost."""
        self.path = store_path(path)
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
            with tempfile.TemporaryFile(dir=self.root):  # trials keep their files beside it
                pass
        except (sqlite3.OperationalError, OSError) as exc:
            if _is_full(exc):
                raise NoSpace.at(self.path) from None
            self.identity = None
            if not readonly:
                reason = exc.strerror if isinstance(exc, OSError) else exc
                raise SweeperError(f"{self.path}: cannot write the store: {reason}") from None
            self.db = self._connect_readonly()
        except sqlite3.DatabaseError as exc:
            raise SweeperError(f"{self.path}: not a sweeper store, or damaged: {exc}") from None

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
        db.executescript(SCHEMA)
        # Can we write? SQLite opens a read-only file quietly and fails at the first write.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT id FROM store").fetchone()
            if row is None:  # a new store, or one made before stores had an id
                store_id = new_id(16)
                db.execute("INSERT INTO store (id) VALUES (?)", (store_id,))
                db.execute("COMMIT")
            else:
                store_id = row["id"]
                db.execute(f"PRAGMA user_version = {int(version)}")
                db.execute("ROLLBACK")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        stat = os.stat(self.path)
        self.identity = StoreIdentity(stat.st_dev, stat.st_ino, store_id)
        self._size = stat.st_size
        return db

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

    def _connect_readonly(self) -> sqlite3.Connection:
        """Read a store this process may not write: `mode=ro` needs the WAL index to exist or
        be creatable; `immutable` reads the file alone (what a read-only folder leaves)."""
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True)
                db.row_factory = sqlite3.Row
                db.execute("SELECT COUNT(*) FROM sweeps").fetchone()
                return db
            except sqlite3.Error as exc:
                last = exc
        raise SweeperError(f"{self.path}: cannot read the store: {last}") from None

    @property
    def where(self) -> str:
        return f"store {self.path}"

    @property
    def root(self) -> Path:
        """Where runs keep files (checkpoints, logs, wandb offline runs)."""
        return self.path.parent

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so readers-turned-writers never deadlock, into
        the file this process opened only (StoreLost otherwise); a full disk is NoSpace.

        SQLite may roll a transaction back itself on SQLITE_FULL: ROLLBACK only if it is open.
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
            if _is_full(exc):
                raise NoSpace.at(self.path) from None
            raise

    # sweeps ---------------------------------------------------------------------------------

    def create_sweep(
        self,
        config: Mapping[str, Any],
        *,
        trainer: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        spec_path: str | None = None,
        study: str | None = None,
        stage: int = 0,
        stage_name: str | None = None,
        carried: Mapping[str, Any] | None = None,
    ) -> str:
        sweep_id = new_id()
        with self._write() as db:
            db.execute(
                "INSERT INTO sweeps (id, name, project, trainer, config, spec, spec_hash,"
                " spec_path, study, stage, stage_name, carried, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sweep_id,
                    config.get("name", sweep_id),
                    config.get("project", "sweeper"),
                    trainer,
                    storejson.dumps(config),
                    storejson.dumps(spec, default=str),
                    spec_hash,
                    spec_path,
                    study,
                    stage,
                    stage_name,
                    storejson.dumps(carried or {}),
                    time.time(),
                ),
            )
        return sweep_id

    def sweep(self, sweep_id: str) -> SweepRecord:
        row = self.db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT * FROM sweeps WHERE study = ? ORDER BY stage DESC LIMIT 1", (sweep_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no sweep {sweep_id!r} in {self.path}")
        return _sweep_record(row)

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        if study is None:
            rows = self.db.execute("SELECT * FROM sweeps ORDER BY created_at").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM sweeps WHERE study = ? ORDER BY stage", (study,)
            ).fetchall()
        return [_sweep_record(row) for row in rows]

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given)."""
        row = self.db.execute(
            "SELECT * FROM sweeps WHERE spec_hash = ? AND stage = ?"
            " AND (? IS NULL OR study = ?) ORDER BY created_at DESC LIMIT 1",
            (spec_hash, stage, study, study),
        ).fetchone()
        return None if row is None else _sweep_record(row)

    def made_from(self, spec_path: str | os.PathLike[str], name: str | None) -> list[SweepRecord]:
        """The latest sweep (every stage, for a study) made from this spec file, else by name."""
        wanted = Path(spec_path).resolve()
        sweeps = self.sweeps()
        made = [s for s in sweeps if s.spec_path and Path(s.spec_path).resolve() == wanted]
        made = made or [s for s in sweeps if s.spec.get("name") == name]
        if not made:
            return []
        latest = made[-1]
        return self.sweeps(latest.study) if latest.study else [latest]

    def set_sweep_state(self, sweep_id: str, state: str) -> None:
        with self._write() as db:
            db.execute("UPDATE sweeps SET state = ? WHERE id = ?", (state, sweep_id))

    def counts(self, sweep_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY state", (sweep_id,)
        ).fetchall()
        return {state: n for state, n in rows}

    def is_complete(self, sweep_id: str) -> bool:
        """Nothing left to hand out and nothing still running."""
        sweep = self.sweep(sweep_id)
        active = sum(self.counts(sweep_id).get(state, 0) for state in ACTIVE)
        return active == 0 and (sweep.exhausted or sweep.state != "running")

    # trials ---------------------------------------------------------------------------------

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """Hand the agent its next trial: a requeued one first, else the engine's next config."""
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no sweep {sweep_id!r} in {self.path}")
            sweep = _sweep_record(row)
            db.execute(
                "UPDATE runs SET state = 'preempted', agent = NULL,"
                " error = 'requeued: agent ' || COALESCE(agent, '?') || ' stopped heartbeating'"
                " WHERE sweep_id = ? AND state = 'running' AND heartbeat_at < ?",
                (sweep_id, now - heartbeat_timeout),
            )
            if sweep.state != "running":
                return None
            row = db.execute(
                "SELECT id FROM runs WHERE sweep_id = ? AND state IN ('pending', 'preempted')"
                " ORDER BY seq LIMIT 1",
                (sweep_id,),
            ).fetchone()
            if row is not None:
                run_id = row["id"]
            elif sweep.exhausted:
                return None
            else:
                views = self._views(sweep_id)
                params = next_params(sweep.config, views, sweep.config.get("run_cap"))
                if params is None:
                    db.execute("UPDATE sweeps SET exhausted = 1 WHERE id = ?", (sweep_id,))
                    return None
                run_id = new_id()
                db.execute(
                    "INSERT INTO runs (id, sweep_id, seq, params, state, created_at)"
                    " VALUES (?, ?, ?, ?, 'pending', ?)",
                    (run_id, sweep_id, len(views) + 1, storejson.dumps(params), now),
                )
            db.execute(
                "UPDATE runs SET state = 'running', attempt = attempt + 1, agent = ?,"
                " heartbeat_at = ?, started_at = COALESCE(started_at, ?), should_stop = 0"
                " WHERE id = ?",
                (agent, now, now, run_id),
            )
        return self._claim(run_id)

    def create_run(self, params: Mapping[str, Any], agent: str) -> Claim:
        """A run outside any sweep (`sweeper train`), already claimed."""
        run_id, now = new_id(), time.time()
        wandb_params = {k: {"value": v} for k, v in params.items()}
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, sweep_id, seq, params, state, attempt, agent, heartbeat_at,"
                " created_at, started_at) VALUES (?, NULL, 0, ?, 'running', 1, ?, ?, ?, ?)",
                (run_id, storejson.dumps(wandb_params), agent, now, now, now),
            )
        return self._claim(run_id)

    def _claim(self, run_id: str) -> Claim:
        row = self.db.execute(
            "SELECT id, sweep_id, attempt, params FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        params = {k: v["value"] for k, v in storejson.loads(row["params"]).items()}
        return Claim(
            run_id=row["id"], sweep_id=row["sweep_id"], attempt=row["attempt"], params=params
        )

    def heartbeat(self, run_id: str, attempt: int) -> Beat:
        """Keep a trial alive; `lost` when it is no longer ours (requeued elsewhere).

        Early termination needs no answer here: the trial asks `should_stop` every epoch.
        """
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET heartbeat_at = ?"
                " WHERE id = ? AND attempt = ? AND state = 'running'",
                (time.time(), run_id, attempt),
            )
        return "alive" if cursor.rowcount == 1 else "lost"

    def run_trial(
        self, claim: Claim, sweep: SweepRecord, *, wandb_mode: WandbMode, stop_flag: StopFlag
    ) -> str:
        # The parent's connection must not cross the fork; the child opens the same file or none.
        backend = LocalBackend(self.path, create=False, expect=self.identity)
        if sweep.is_command:  # the user's program: this child needs no torch (1.4 s to import)
            from sweeper.agent.program import run_program

            return run_program(backend, claim, sweep, stop_flag)
        from sweeper.agent.trial import execute

        return execute(
            backend, claim, sweep.trainer, sweep=sweep, wandb_mode=wandb_mode, stop_flag=stop_flag
        )

    def record_exit(
        self, claim: Claim, exit_code: int | None, verdict: tuple[str, str] | None
    ) -> tuple[str, str | None]:
        run = self.run(claim.run_id)
        if run["state"] == "running" and run["attempt"] == claim.attempt:
            # The child died before it could record anything: crash, kill, or our stop.
            if verdict:
                state, reason = verdict
            else:
                state, reason = "crashed", f"trial process died ({exit_reason(exit_code)})"
                log_tail = output_tail(self.run_dir(claim.run_id) / "output.log")
                if log_tail:
                    reason = f"{reason}\n{log_tail}"
            self.finish(claim.run_id, claim.attempt, state, exit_code=exit_code, error=reason)
            run = self.run(claim.run_id)
        return run["state"], run["error"]

    def record_meta(self, run_id: str, attempt: int, meta: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET meta = ? WHERE id = ? AND attempt = ?",
                (storejson.dumps(meta, default=str), run_id, attempt),
            )

    def log(self, run_id: str, attempt: int, step: int, metrics: Mapping[str, float]) -> bool:
        """Append one history step (replacing it when a resumed trial repeats the step)."""
        payload = storejson.dumps(dict(metrics))
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET summary = json_patch(summary, ?), heartbeat_at = ?"
                " WHERE id = ? AND attempt = ? AND state = 'running'",
                (payload, time.time(), run_id, attempt),
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT OR REPLACE INTO history (run_id, step, metrics) VALUES (?, ?, ?)",
                (run_id, step, payload),
            )
        return True

    def should_stop(self, run_id: str) -> bool:
        """Apply early termination across the sweep now; True if this run must stop."""
        row = self.db.execute(
            "SELECT sweep_id, should_stop, state FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None or row["should_stop"] or row["state"] != "running":
            return True
        if row["sweep_id"] is None:
            return False
        sweep = self.sweep(row["sweep_id"])
        if not sweep.config.get("early_terminate"):
            return False
        with self._write() as db:
            metric, _ = sweep.metric  # hyperband reads this one metric's history only
            stop = runs_to_stop(sweep.config, self._views(sweep.id, history_of=metric))
            if stop:
                marks = ",".join("?" * len(stop))
                db.execute(f"UPDATE runs SET should_stop = 1 WHERE id IN ({marks})", stop)
        return run_id in stop

    def finish(
        self,
        run_id: str,
        attempt: int,
        state: str,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a terminal state (or `preempted`, which requeues). False if not ours."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET state = ?, summary = json_patch(summary, ?), exit_code = ?,"
                " error = ?, agent = CASE WHEN ? = 'preempted' THEN NULL ELSE agent END,"
                " finished_at = CASE WHEN ? = 'preempted' THEN NULL ELSE ? END"
                " WHERE id = ? AND attempt = ? AND state = 'running'",
                (
                    state,
                    storejson.dumps(dict(summary or {})),
                    exit_code,
                    error,
                    state,
                    state,
                    now,
                    run_id,
                    attempt,
                ),
            )
        return cursor.rowcount == 1

    # slot leases (the rule: sweeper.agent.slots) --------------------------------------------

    def set_cpu_pool(self, scope: str, host: str, cpu_slots: int) -> None:
        """`launch` with N agents and no GPU: N CPU slots for this study on this host."""
        with self._write() as db:
            db.execute(
                "INSERT INTO slot_pools (scope, host, cpu_slots) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, host) DO UPDATE SET cpu_slots = excluded.cpu_slots",
                (scope, host, cpu_slots),
            )

    def lease_slot(
        self,
        scope: str,
        host: str,
        gpus: list[str],
        *,
        holder: str,
        pid: int,
        timeout: float,
        cpu_slots: int | None = None,
    ) -> tuple[list[str], set[str]]:
        """Lease one slot to `holder` until `timeout` seconds from now: all of `gpus`, or with
        none, the lowest free `cpu-k` within the pool (launch's count for this scope and host,
        else `cpu_slots`, else unbounded). Leases past their expiry are dropped first.

        Returns:
            The slot names leased, and the live holders in the way when that is [].
        """
        now = time.time()
        with self._write() as db:
            db.execute("DELETE FROM leases WHERE expires_at < ?", (now,))
            held = {
                row["slot"]: row["holder"]
                for row in db.execute(
                    "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND holder != ?",
                    (scope, host, holder),
                )
            }
            if gpus:
                wanted = list(gpus)
                blocking = {held[gpu] for gpu in gpus if gpu in held}
            else:
                row = db.execute(
                    "SELECT cpu_slots FROM slot_pools WHERE scope = ? AND host = ?", (scope, host)
                ).fetchone()
                pool = row["cpu_slots"] if row is not None else cpu_slots
                k = next(k for k in itertools.count() if f"cpu-{k}" not in held)
                wanted = [f"cpu-{k}"]
                blocking = set()
                if pool is not None and k >= pool:
                    blocking = {h for slot, h in held.items() if slot.startswith("cpu-")}
            if blocking:
                return [], blocking
            db.executemany(
                "INSERT OR REPLACE INTO leases (scope, host, slot, holder, pid, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(scope, host, name, holder, pid, now + timeout) for name in wanted],
            )
        return wanted, set()

    def renew_leases(self, holder: str, timeout: float) -> set[str]:
        """Extend the holder's leases (its heartbeat); the slot names it still holds: one it
        let lapse may have gone to another agent."""
        with self._write() as db:
            db.execute(
                "UPDATE leases SET expires_at = ? WHERE holder = ?", (time.time() + timeout, holder)
            )
            rows = db.execute("SELECT slot FROM leases WHERE holder = ?", (holder,)).fetchall()
        return {row["slot"] for row in rows}

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        """Give up the holder's leases: all, or those of `slots`."""
        with self._write() as db:
            if slots is None:
                db.execute("DELETE FROM leases WHERE holder = ?", (holder,))
            else:
                marks = ",".join("?" * len(slots))
                db.execute(
                    f"DELETE FROM leases WHERE holder = ? AND slot IN ({marks})", (holder, *slots)
                )

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        """Slot name -> holder, for the unexpired leases of this scope on this host."""
        rows = self.db.execute(
            "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND expires_at >= ?",
            (scope, host, time.time()),
        )
        return {row["slot"]: row["holder"] for row in rows}

    # reading --------------------------------------------------------------------------------

    def _views(self, sweep_id: str, history_of: str | None = None) -> list[RunView]:
        """The engine's view of a sweep's runs, with the history of one metric if asked."""
        rows = self.db.execute(
            "SELECT id, state, params, summary FROM runs WHERE sweep_id = ? ORDER BY seq",
            (sweep_id,),
        ).fetchall()
        history: dict[str, list[dict[str, Any]]] = {}
        if history_of is not None:
            for run_id, value in self.db.execute(
                f"SELECT h.run_id, {_json_field(history_of)} FROM history h"
                " JOIN runs r ON r.id = h.run_id WHERE r.sweep_id = ? ORDER BY h.run_id, h.step",
                (sweep_id,),
            ):
                history.setdefault(run_id, []).append({history_of: storejson.picked(value)})
        return [
            RunView(
                name=row["id"],
                state=row["state"],
                params=storejson.loads(row["params"]),
                summary=storejson.loads(row["summary"]),
                history=history.get(row["id"], []),
            )
            for row in rows
        ]

    def run_views(self, sweep_id: str) -> list[RunView]:
        return self._views(sweep_id)

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        """The running trials, in one query (a progress poll, twice a second)."""
        rows = self.db.execute(
            "SELECT r.id, r.agent, r.started_at, r.summary,"
            " (SELECT MAX(step) FROM history h WHERE h.run_id = r.id) AS step"
            " FROM runs r WHERE r.sweep_id = ? AND r.state = 'running' ORDER BY r.seq",
            (sweep_id,),
        ).fetchall()
        now = time.time()
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

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in {self.path}")
        out = dict(row)
        for key in ("params", "summary", "meta"):
            out[key] = storejson.loads(out[key])
        return out

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame:
        """The run table: one row per run, `config.*` and `summary.*` columns, as W&B gives."""
        import pandas as pd

        ids = [sweep_ids] if isinstance(sweep_ids, str) else list(sweep_ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT r.*, s.stage, s.stage_name FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
            f" WHERE r.sweep_id IN ({marks}) ORDER BY s.stage, r.seq",
            ids,
        ).fetchall()
        records = []
        for row in rows:
            end = row["finished_at"] or (time.time() if row["state"] == "running" else None)
            record = {
                "run_id": row["id"],
                "sweep_id": row["sweep_id"],
                "stage": row["stage"],
                "stage_name": row["stage_name"],
                "state": row["state"],
                "agent": row["agent"],
                "attempts": row["attempt"],
                "created_at": row["created_at"],
                "runtime": (end - row["started_at"]) if end and row["started_at"] else None,
                "exit_code": row["exit_code"],
                "error": row["error"],
            }
            params = storejson.loads(row["params"])
            record.update({f"config.{k}": v["value"] for k, v in params.items()})
            record.update({f"summary.{k}": v for k, v in storejson.loads(row["summary"]).items()})
            records.append(record)
        if not records:
            return pd.DataFrame(columns=RUN_COLUMNS)
        table = pd.DataFrame.from_records(records)
        for column in [c for c in table if c.startswith("config.")]:
            values = [record.get(column) for record in records]
            if any(value is None for value in values):  # a value W&B keeps, not NaN
                table[column] = pd.Series(values, dtype=object)
        table["created_at"] = pd.to_datetime(table["created_at"], unit="s")  # once, not per row
        return table

    def history(self, run_ids: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of the given runs: columns run_id, _step, then one per metric.

        `metrics` picks those columns in SQL: at 10,000 runs, parsing every step is the slow part.
        """
        import pandas as pd

        picked = "metrics" if metrics is None else ", ".join(map(_json_field, metrics))
        rows: list[Any] = []
        for start in range(0, len(run_ids), HISTORY_CHUNK):
            chunk = run_ids[start : start + HISTORY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                f"SELECT run_id, step, {picked} FROM history WHERE run_id IN ({marks})", chunk
            ).fetchall()
        if metrics is None:
            records = [{"run_id": r, "_step": s, **storejson.loads(m)} for r, s, m in rows]
            frame = pd.DataFrame.from_records(
                records, columns=None if records else ["run_id", "_step"]
            )
        else:
            frame = pd.DataFrame.from_records(
                [(r, s, *map(storejson.picked, vs)) for r, s, *vs in rows],
                columns=["run_id", "_step", *metrics],
            )
        return frame.sort_values(["run_id", "_step"], ignore_index=True)

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's history as logged, step by step: a key a row did not log is absent (in
        `history`'s table it is NaN, like a NaN the run did log)."""
        rows = self.db.execute(
            "SELECT step, metrics FROM history WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [(step, storejson.loads(metrics)) for step, metrics in rows]


def _is_full(exc: BaseException) -> bool:
    """SQLITE_FULL (SQLite's name for ENOSPC on its files), or ENOSPC itself."""
    if isinstance(exc, sqlite3.OperationalError):
        return exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _json_field(name: str) -> str:
    """SQL picking one metric out of a history row's JSON."""
    if '"' in name:
        raise SweeperError(f"metric names with quotes are not supported: {name!r}")
    return f"json_extract(metrics, '$.\"{name}\"')"


def exit_reason(code: int | None) -> str:
    """How a trial process ended, in words."""
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


TAIL_BYTES = 1 << 16
"""The most bytes read from the end of a trial's output.log for its last lines."""
LINE_LIMIT = 500
"""The most characters kept of one line of a program's output in a stored reason."""


def output_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a trial's output, as a stored reason may quote them.

    Reads at most TAIL_BYTES from the end, whatever the log's size; each line is cut to
    LINE_LIMIT characters and stripped of terminal control sequences, the whole to
    REASON_LIMIT.
    """
    try:
        with path.open("rb") as file:
            start = max(file.seek(0, os.SEEK_END) - TAIL_BYTES, 0)
            file.seek(start)
            data = file.read(TAIL_BYTES)
    except OSError:
        return ""
    text = strip_controls(data.decode(errors="replace"))
    kept = text.splitlines()[-lines:]
    if start and kept and len(kept) == len(text.splitlines()):  # the first read from its middle
        kept[0] = "[...]" + kept[0]
    return cap("\n".join(cap(line, LINE_LIMIT) for line in kept), REASON_LIMIT)


def _sweep_record(row: sqlite3.Row) -> SweepRecord:
    return SweepRecord(
        id=row["id"],
        name=row["name"],
        project=row["project"],
        trainer=row["trainer"],
        config=storejson.loads(row["config"]),
        spec=storejson.loads(row["spec"]),
        spec_hash=row["spec_hash"],
        spec_path=row["spec_path"],
        state=row["state"],
        exhausted=bool(row["exhausted"]),
        study=row["study"],
        stage=row["stage"],
        stage_name=row["stage_name"],
        carried=storejson.loads(row["carried"]),
        created_at=row["created_at"],
        entity=storejson.loads(row["config"]).get("entity"),
    )

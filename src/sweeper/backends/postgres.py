"""The PostgreSQL store: one database server shared by the agents of every node.

It implements the primitives of `sweeper.backends.store` with the same tables as the SQLite
store (`sweeper.backends.sqlite`; JSON kept as the same text, times as seconds since the epoch,
flags as booleans); the sweep's rules stay the coordinator's. The sweep's lock is a row lock
(`SELECT ... FOR UPDATE` on the sweep's row), held by a write transaction only; a slot lease
takes a transaction-level advisory lock on its (scope, host). Every time the coordinator
compares is the database's clock (`now()`), so nodes whose clocks disagree still agree on
when a heartbeat lapsed.

One connection pool per process (psycopg-pool); a forked child opens its own store. A
transient error (the server restarting, a dropped connection, a serialization failure or a
deadlock, all psycopg's OperationalError) is retried with backoff for at most `wait` seconds;
past that the store is Unreachable (one line, exit 2 from the CLI). The password never leaves
this module: it comes from the URL (held here, given to the agents `launch` starts through
PGPASSWORD in their environment, never their arguments), PGPASSWORD or ~/.pgpass (libpq's own
rules), and every message names the server by its URL with the password masked.

psycopg is an optional extra (`sweeper[postgres]`); `open_postgres` names it when missing.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

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
from sweeper.errors import NotFoundError, SweeperError, Unreachable
from sweeper.sweep import ACTIVE, RunState, SweepState
from sweeper.sweep.runtable import RunRow

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

SCHEMES = ("postgresql://", "postgres://")
"""How a `--store` value names a PostgreSQL server (libpq's URI schemes); anything else is a
SQLite file."""

INSTALL = "uv sync --extra postgres` (or `pip install 'sweeper[postgres]'"
"""What installs the driver, as the missing-driver error says it."""

WAIT = 120.0
"""Seconds a call keeps retrying a transient error before the store is Unreachable: longer
than a server restart (`pg_ctl restart` takes 1-3 s) or a failover."""

CONNECT_TIMEOUT = 10
"""libpq's connect_timeout (s) unless the URL sets one: a server that is down is said in
seconds, not after the operating system's TCP timeout."""

SILENCE = 10
"""Seconds of silence on an open connection after which libpq gives it up (TCP keepalives and
tcp_user_timeout, libpq's connection parameters, unless the URL sets them): a node cut off
from the server finds out in seconds, not after the kernel's ~15 minutes of retransmits."""

LOCK_HOLD = 15
"""idle_in_transaction_session_timeout (s) of every session: the server ends a session that
sits in a transaction this long without a statement, so a node cut off while it holds the
sweep's row lock releases it (every other node waits at most this long). A transaction here
holds the lock only for its writes (milliseconds), never across a computation or a trial."""

FILES = ".sweeper"
"""Where runs keep files (logs, checkpoints, wandb's folders) with a PostgreSQL store: this
folder under the working directory of each node, as the SQLite store's folder is."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    trainer TEXT NOT NULL,
    config TEXT NOT NULL,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec_path TEXT,
    state TEXT NOT NULL DEFAULT 'running',
    exhausted BOOLEAN NOT NULL DEFAULT false,
    study TEXT,
    stage INTEGER NOT NULL DEFAULT 0,
    stage_name TEXT,
    carried TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    seed BIGINT,
    lease_holder TEXT,
    lease_until DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT REFERENCES sweeps(id),
    seq INTEGER NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    heartbeat_at DOUBLE PRECISION,
    should_stop BOOLEAN NOT NULL DEFAULT false,
    summary TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    exit_code INTEGER,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep_id, state);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS store (
    id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slot_pools (
    scope TEXT NOT NULL,
    host TEXT NOT NULL,
    cpu_slots INTEGER NOT NULL,
    PRIMARY KEY (scope, host)
);
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT NOT NULL,
    host TEXT NOT NULL,
    slot TEXT NOT NULL,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, host, slot)
);
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
""" + "".join(f"{statement};\n" for statement in schema.GRID_TABLES)
"""The SQLite store's tables (see sqlite.SCHEMA for what each column holds), types adapted;
`schema_version` holds what SQLite keeps in `PRAGMA user_version` (`sweeper.backends.schema`)."""

SCHEMA_LOCK = 0x5357_4545_5045_5201
"""The advisory lock key under which a store's tables are made (many agents open it at once)."""

_NOW = "extract(epoch from now())::float8"
_UP_SINCE = "extract(epoch from pg_postmaster_start_time())::float8"
"""The database's clock in seconds since the epoch: the start of the current transaction."""

_SWEEP_FIELDS = (
    "id, name, project, trainer, config, spec, spec_hash, spec_path, state, exhausted, study,"
    " stage, stage_name, carried, created_at, seed, lease_holder, lease_until"
)
_RUN_FIELDS = (
    "id, sweep_id, seq, params, state, attempt, agent, heartbeat_at, should_stop, summary,"
    " created_at, started_at"
)
_COPY_FIELDS = f"{_RUN_FIELDS}, meta, exit_code, error, finished_at"
"""Every column of a run, as a copy to another store carries it (`StoredRun.values`)."""
_DETAIL_FIELDS = (
    "id, sweep_id, seq, params, state, attempt, agent, heartbeat_at, should_stop, summary,"
    " meta, exit_code, error, created_at, started_at, finished_at"
)
_RUN_CHANGES = frozenset(RunChanges.__annotations__)
_SWEEP_CHANGES = frozenset(SweepChanges.__annotations__)
_STATES = {str(state): state for state in RunState}

T = TypeVar("T")


class TransactionLost(Unreachable):
    """The connection died inside a write transaction (the server restarted, say): nothing of
    it committed, unless the commit itself was under way. Not retried here (the transaction's
    body cannot be replayed); a caller whose write is idempotent or fenced repeats it
    (`sweeper.backends.storesink`)."""


def is_url(store: object) -> bool:
    """Whether a `--store` value names a PostgreSQL server rather than a SQLite file."""
    return isinstance(store, str) and store.startswith(SCHEMES)


def masked(url: str) -> str:
    """The URL as sweeper shows it, its password `***`. Textual and conservative, so that it
    holds for a URL libpq refuses too: a user part with a colon hides everything from that
    colon to the URL's last `@` (a password may hold `/`, `?`, `#` or `@` unencoded), and every
    `password=` value is hidden."""
    scheme, sep, rest = url.partition("://") if "://" in url else ("", "", url)
    colon, first_at, last_at = rest.find(":"), rest.find("@"), rest.rfind("@")
    if sep and 0 <= colon < first_at:
        rest = f"{rest[:colon]}:***{rest[last_at:]}"
    rest = re.sub(r"(?i)(password=)[^&\s]*", r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def looks_like_conninfo(store: object) -> bool:
    """A libpq keyword string (`host=… dbname=…`) given as `--store`: not a SQLite path."""
    keyword = r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options)\s*="
    return isinstance(store, str) and re.match(keyword, store) is not None


_PLAIN_HOST = re.compile(r"[\w.-]+")


def url_of(params: Mapping[str, str]) -> str:
    """A postgresql:// URL that libpq parses back into exactly `params` (its keywords and
    values, percent-encoded): `user@host:port/dbname` where those are plain, the rest as query
    parameters (a socket folder, several hosts)."""
    rest = dict(params)
    user, host, port = rest.pop("user", None), rest.get("host"), rest.get("port")
    authority = ""
    if host is not None and _PLAIN_HOST.fullmatch(host):
        authority = rest.pop("host")
        if port is not None and port.isdigit():
            authority += f":{rest.pop('port')}"
    if user is not None:
        authority = f"{quote(user, safe='')}@{authority}"
    path = f"/{quote(rest.pop('dbname'), safe='')}" if "dbname" in rest else ""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in rest.items())
    return f"postgresql://{authority}{path}" + (f"?{query}" if query else "")


_TAKEN: dict[str, str] = {}
"""PGPASSWORD, once taken out of this process's environment (`_environment_password`)."""


def _environment_password() -> str | None:
    """PGPASSWORD, taken out of this process's environment the first time a store opens, so
    that no trial's program (a user's train.py, its wandb run) inherits it; the stores of this
    process still use it, and pass it on explicitly to the agents and trials they start."""
    if "PGPASSWORD" in os.environ:
        _TAKEN["PGPASSWORD"] = os.environ.pop("PGPASSWORD")
    return _TAKEN.get("PGPASSWORD")


def _driver() -> tuple[Any, Any]:
    """psycopg and psycopg_pool, or one line naming the extra that installs them.

    Raises:
        SweeperError: the optional extra is not installed.
    """
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise SweeperError(
            f"a postgresql:// store needs the PostgreSQL driver: run `{INSTALL}`)"
        ) from None
    return psycopg, psycopg_pool


class PostgresStore:
    """A sweeper store in a PostgreSQL database. Open one per process (a forked child opens
    its own: connections do not survive a fork).

    Args:
        url: `postgresql://user[:password]@host[:port]/dbname[?sslmode=...&...]`; every libpq
            parameter passes through. The password may instead come from PGPASSWORD or
            ~/.pgpass, as libpq reads them.
        create: Make the tables if the database has none; else NotFoundError.
        wait: Seconds a call retries transient errors before Unreachable.
        password: The password when the URL holds none (what a parent process read from its
            URL), before PGPASSWORD (taken out of the environment here) and ~/.pgpass.
        clock: A test's fake clock for the coordinator's times (transactions and snapshots);
            None: the database's.
        reopen: The store is known good (a forked trial reopening its agent's store): a first
            connection that fails is retried for `wait` s like any call, so a trial starting
            while the server restarts waits for it; else it is said at once (bad input).

    Raises:
        SweeperError: the driver is missing, the URL is malformed, the password is refused, the
            database does not exist, or the server cannot be reached (one line, password
            masked).
        NotFoundError: the database has no sweeper tables and `create` is false.
    """

    def __init__(
        self,
        url: str,
        create: bool = True,
        wait: float = WAIT,
        password: str | None = None,
        clock: Callable[[], float] | None = None,
        reopen: bool = False,
    ) -> None:
        pg, pool_module = _driver()
        self.clock = clock
        self._shown = masked(url)
        self._given = url
        self.password: str | None = None
        try:  # libpq's own parser: the password and parameters exactly as libpq reads them
            params = pg.conninfo.conninfo_to_dict(url)
        except pg.Error as exc:
            raise SweeperError(f"{self._shown}: not a PostgreSQL URL: {self._clean(exc)}") from None
        from_url = params.pop("password", None)
        self.url = url_of(params)
        """The URL without its password: what agents are given (`--store`)."""
        from_env = _environment_password()
        self.password = next((p for p in (from_url, password, from_env) if p is not None), None)
        self.wait = wait
        self.root = Path(FILES).resolve()
        """Where runs keep files on this node."""
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "sweeper")
        params.setdefault("keepalives", 1)
        params.setdefault("keepalives_idle", SILENCE // 2)
        params.setdefault("keepalives_interval", 1)
        params.setdefault("keepalives_count", SILENCE // 2)
        params.setdefault("tcp_user_timeout", SILENCE * 1000)
        # first, so that the URL's own `options` (later) win
        hold = f"-c idle_in_transaction_session_timeout={LOCK_HOLD}s"
        params["options"] = f"{hold} {params.get('options', '')}".strip()
        if self.password is not None:
            params["password"] = self.password
        self._params = params
        # The pool logs each failed reconnection as a warning; an outage is said once, by
        # `_retrying`, when it outlasts `wait`.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        deadline = time.monotonic() + (wait if reopen else 0.0)
        delay = 0.05
        while True:
            try:
                self._open_first(pg, create)
                break
            except pg.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise SweeperError(
                        f"{self._shown}: cannot connect: {self._clean(exc)}"
                    ) from None
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
            except pg.Error as exc:
                raise SweeperError(f"{self._shown}: {self._clean(exc)}") from None
        self.pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            pool_module.ConnectionPool(
                kwargs={**params, "autocommit": True},
                min_size=1,
                max_size=4,
                open=True,
                configure=_configure,
                check=pool_module.ConnectionPool.check_connection,
                timeout=min(wait, 10.0),
                reconnect_timeout=max(wait, 1.0),
                name="sweeper",
            )
        )

    @property
    def location(self) -> str:
        return self._shown

    def child_env(self) -> dict[str, str]:
        """What a process started on this store needs in its environment besides `url`: the
        password the URL held, as libpq's PGPASSWORD (never a command-line argument)."""
        return {} if self.password is None else {"PGPASSWORD": self.password}

    def _clean(self, exc: BaseException) -> str:
        """An error's first line, with the password (should libpq echo it, or the URL it was
        given) masked."""
        text = " ".join(str(exc).strip().split("\n", 1)[0].split()) or type(exc).__name__
        text = text.removeprefix("connection failed: ").replace(self._given, self._shown)
        return text.replace(self.password, "***") if self.password else text

    def _open_first(self, pg: Any, create: bool) -> None:
        """Connect once and prepare the store (`_prepare`), before the pool opens.

        Raises:
            psycopg.Error: the server refused or dropped the connection (the caller says it).
            NotFoundError: as `_prepare`.
        """
        first = pg.connect(**self._params, autocommit=True)
        try:
            self._prepare(first, create)
        finally:
            first.close()

    def _prepare(self, db: psycopg.Connection[Any], create: bool) -> None:
        """Make a new store's tables, or migrate an older store's (`sweeper.backends.schema`),
        and give it its random id: once, in one transaction under an advisory lock (agents
        open the store together). An up-to-date store costs one read and writes nothing.

        Raises:
            NotFoundError: no sweeper tables and not `create`.
            SweeperError: the store was written by a newer sweeper (both versions named).
        """
        made, found = self._version(db)
        if found > schema.VERSION:
            raise schema.too_new(self._shown, found)
        if made and found == schema.VERSION:
            return
        if not made and not create:
            raise NotFoundError(f"no sweeper store in {self._shown} (run `sweeper launch` first)")
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            made, found = self._version(db)  # another process may have done it meanwhile
            if found > schema.VERSION:
                raise schema.too_new(self._shown, found)
            if made and found < schema.VERSION:
                for statement in schema.steps(found, "postgres"):
                    db.execute(statement)
            db.execute(SCHEMA)
            if db.execute("SELECT id FROM store LIMIT 1").fetchone() is None:
                db.execute("INSERT INTO store (id) VALUES (%s)", (new_id(16),))
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (schema.VERSION,))

    @staticmethod
    def _version(db: psycopg.Connection[Any]) -> tuple[bool, int]:
        """Whether the database holds a sweeper store with its id, and the store's version
        (`schema.UNVERSIONED` for one made before versions existed; 0 for none)."""
        row = db.execute(
            "SELECT to_regclass('store') IS NOT NULL, to_regclass('schema_version') IS NOT NULL"
        ).fetchone()
        has_store, has_version = row if row else (False, False)
        made = bool(has_store and db.execute("SELECT id FROM store LIMIT 1").fetchone())
        if has_version:
            stamped = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if stamped and stamped[0] is not None:
                return made, int(stamped[0])
        return made, schema.UNVERSIONED if made else 0

    def close(self) -> None:
        self.pool.close()

    # retries --------------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, retried on transient errors with capped exponential backoff (and jitter,
        so agents that lost the server together do not come back together) for `wait` s.

        Raises:
            Unreachable: still failing after `wait` seconds.
            SweeperError: a non-transient database error.
        """
        import psycopg

        deadline = time.monotonic() + self.wait
        delay = 0.05
        while True:
            try:
                return call()
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise self._unreachable(exc) from None
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
            except psycopg.Error as exc:
                raise SweeperError(f"{self._shown}: {self._clean(exc)}") from None

    def _unreachable(self, exc: BaseException) -> Unreachable:
        return Unreachable(
            f"{self._shown}: the store did not answer for {self.wait:g} s: {self._clean(exc)}"
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (checked alive, so a restarted server's dead ones are
        replaced), retried as `_retrying` says."""
        conn = self._retrying(lambda: self.pool.getconn(timeout=min(self.wait, 10.0)))
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    def _read(self, query: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement on its own (autocommit), retried whole: reads are idempotent."""

        def run() -> list[tuple[Any, ...]]:
            with self._connection() as db:
                return db.execute(query, tuple(args)).fetchall()

        return self._retrying(run)

    # the protocol ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """The store primitives inside one write transaction (READ COMMITTED: the sweep's row
        lock serializes what must be serial).

        Raises:
            Unreachable: no connection within `wait` seconds, or the connection was lost
                inside the transaction (nothing of it committed unless the commit was sent).
        """
        import psycopg

        with self._connection() as db:
            try:
                with db.transaction():
                    yield PostgresTransaction(db, None if self.clock is None else self.clock())
            except psycopg.OperationalError as exc:  # said as it happened, not as a wait
                lost = f"{self._shown}: the connection was lost in a transaction"
                raise TransactionLost(f"{lost}: {self._clean(exc)}") from None
            except psycopg.Error as exc:
                raise SweeperError(f"{self._shown}: {self._clean(exc)}") from None

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        rows = self._read(f"SELECT {_SWEEP_FIELDS} FROM sweeps WHERE id = %s", (sweep_id,))
        return sweep_record(rows[0]) if rows else None

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._read(f"SELECT {_RUN_FIELDS} FROM runs WHERE id = %s", (run_id,))
        return _run_record(rows[0]) if rows else None

    def claim_view(self, sweep_id: str) -> ClaimView | None:
        def read() -> ClaimView | None:
            with self._connection() as db:
                db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    row = db.execute(
                        f"SELECT {_SWEEP_FIELDS}, {_NOW} FROM sweeps WHERE id = %s",
                        (sweep_id,),
                    ).fetchone()
                    if row is None:
                        return None
                    active = db.execute(
                        f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = %s AND state = ANY(%s)"
                        " ORDER BY seq",
                        (sweep_id, [str(state) for state in ACTIVE]),
                        prepare=_CLAIM_READ,
                    ).fetchall()
                    total = _run_total(db, sweep_id)
                    grid = _grid_state(db, sweep_id, total)
                finally:
                    db.execute("COMMIT")
            now = row[-1] if self.clock is None else self.clock()
            runs = [_run_record(r) for r in active]
            return ClaimView(sweep_record(row), runs, total, grid, now)

        return self._retrying(read)

    def snapshot(self, sweep_id: str, history_of: str | None = None) -> Snapshot | None:
        def read() -> Snapshot | None:
            with self._connection() as db:
                db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    found = self._snapshot(db, sweep_id, history_of)
                finally:
                    db.execute("COMMIT")
            if found is not None and self.clock is not None:
                found = replace(found, now=self.clock())
            return found

        return self._retrying(read)

    @staticmethod
    def _snapshot(
        db: psycopg.Connection[Any], sweep_id: str, history_of: str | None
    ) -> Snapshot | None:
        row = db.execute(
            f"SELECT {_SWEEP_FIELDS}, {_NOW} FROM sweeps WHERE id = %s", (sweep_id,)
        ).fetchone()
        if row is None:
            return None
        runs = db.execute(
            f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = %s ORDER BY seq", (sweep_id,)
        ).fetchall()
        history: dict[str, list[dict[str, Any]]] = {}
        if history_of is not None:
            for run_id, value in db.execute(
                "SELECT h.run_id, h.metrics::json -> %s FROM history h"
                " JOIN runs r ON r.id = h.run_id WHERE r.sweep_id = %s"
                " ORDER BY h.run_id, h.step",
                (history_of, sweep_id),
            ):
                history.setdefault(run_id, []).append({history_of: value})
        return Snapshot(sweep_record(row), [_run_record(r) for r in runs], history, row[-1])

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        if study is None:
            rows = self._read(f"SELECT {_SWEEP_FIELDS} FROM sweeps ORDER BY created_at")
        else:
            rows = self._read(
                f"SELECT {_SWEEP_FIELDS} FROM sweeps WHERE study = %s ORDER BY stage", (study,)
            )
        return [sweep_record(row) for row in rows]

    def latest_stage(self, study: str) -> SweepRecord | None:
        rows = self._read(
            f"SELECT {_SWEEP_FIELDS} FROM sweeps WHERE study = %s ORDER BY stage DESC LIMIT 1",
            (study,),
        )
        return sweep_record(rows[0]) if rows else None

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        rows = self._read(
            f"SELECT {_SWEEP_FIELDS} FROM sweeps WHERE spec_hash = %s AND stage = %s"
            " AND (%s::text IS NULL OR study = %s) ORDER BY created_at DESC LIMIT 1",
            (spec_hash, stage, study, study),
        )
        return sweep_record(rows[0]) if rows else None

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        rows = self._read(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = %s GROUP BY state", (sweep_id,)
        )
        return {_STATES[state]: n for state, n in rows}

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        rows = self._read(
            "SELECT r.id, r.agent, r.started_at, r.summary,"
            " (SELECT MAX(step) FROM history h WHERE h.run_id = r.id) AS step,"
            f" {_NOW} FROM runs r WHERE r.sweep_id = %s AND r.state = %s ORDER BY r.seq",
            (sweep_id, str(RunState.RUNNING)),
        )
        return [
            LiveTrial(
                run_id=run_id,
                agent=agent,
                step=step,
                summary=storejson.loads(summary),
                elapsed=max(0.0, now - (started_at or now)),
            )
            for run_id, agent, started_at, summary, step, now in rows
        ]

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {_DETAIL_FIELDS} FROM runs WHERE id = %s", (run_id,))
        if not rows:
            return None
        out = dict(zip([name.strip() for name in _DETAIL_FIELDS.split(",")], rows[0], strict=True))
        for key in ("params", "summary", "meta"):
            out[key] = storejson.loads(out[key])
        return out

    def sweep_configs(self, sweep_ids: list[str]) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT config FROM sweeps WHERE id = ANY(%s) ORDER BY stage, created_at",
            (list(sweep_ids),),
        )
        return [storejson.loads(config) for (config,) in rows]

    def run_rows(self, sweep_ids: list[str]) -> list[RunRow]:
        rows = self._read(
            "SELECT r.id, r.sweep_id, r.state, r.created_at, r.params, r.summary, s.stage,"
            " s.stage_name, r.agent, r.attempt, r.started_at, r.finished_at, r.exit_code,"
            f" r.error, {_NOW} FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
            " WHERE r.sweep_id = ANY(%s) ORDER BY s.stage, r.seq",
            (list(sweep_ids),),
        )
        out = []
        for (
            run_id,
            sweep_id,
            state,
            created_at,
            params,
            summary,
            stage,
            stage_name,
            agent,
            attempt,
            started_at,
            finished_at,
            exit_code,
            error,
            now,
        ) in rows:
            end = finished_at or (now if state == RunState.RUNNING else None)
            out.append(
                RunRow(
                    run_id=run_id,
                    sweep_id=sweep_id,
                    state=state,
                    created_at=created_at,
                    config={k: v["value"] for k, v in storejson.loads(params).items()},
                    summary=storejson.loads(summary),
                    stage=stage,
                    stage_name=stage_name,
                    agent=agent,
                    attempts=attempt,
                    runtime=(end - started_at) if end and started_at else None,
                    exit_code=exit_code,
                    error=error,
                )
            )
        return out

    def history_rows(
        self, run_ids: list[str], metrics: list[str] | None = None
    ) -> list[tuple[Any, ...]]:
        if metrics is None:
            rows = self._read(
                "SELECT run_id, step, metrics FROM history WHERE run_id = ANY(%s)", (run_ids,)
            )
            return [(r, s, storejson.loads(m)) for r, s, m in rows]
        picked = ", ".join("metrics::json -> %s" for _ in metrics)
        return self._read(
            f"SELECT run_id, step, {picked} FROM history WHERE run_id = ANY(%s)",
            (*metrics, run_ids),
        )

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._read(
            "SELECT step, metrics FROM history WHERE run_id = %s ORDER BY step", (run_id,)
        )
        return [(step, storejson.loads(metrics)) for step, metrics in rows]

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        rows = self._read(
            "SELECT slot, holder FROM leases WHERE scope = %s AND host = %s"
            f" AND expires_at >= {_NOW}",
            (scope, host),
        )
        return {slot: holder for slot, holder in rows}

    def export(self, sweep_ids: list[str] | None = None) -> StoreCopy:
        picked = (sweep_ids is None, list(sweep_ids or []))

        def read() -> StoreCopy:
            with self._connection() as db:
                db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    sweeps = db.execute(
                        f"SELECT {_SWEEP_FIELDS} FROM sweeps"
                        " WHERE %s OR id = ANY(%s::text[]) ORDER BY created_at",
                        picked,
                    ).fetchall()
                    runs = db.execute(
                        f"SELECT {_COPY_FIELDS} FROM runs"
                        " WHERE %s OR sweep_id = ANY(%s::text[]) ORDER BY created_at, seq",
                        picked,
                    ).fetchall()
                    history = db.execute(
                        "SELECT h.run_id, h.step, h.metrics FROM history h"
                        " JOIN runs r ON r.id = h.run_id"
                        " WHERE %s OR r.sweep_id = ANY(%s::text[]) ORDER BY h.run_id, h.step",
                        picked,
                    ).fetchall()
                finally:
                    db.execute("COMMIT")
            return StoreCopy(
                [sweep_record(row) for row in sweeps],
                [
                    StoredRun(_run_record(row), storejson.loads(row[12]), *row[13:16])
                    for row in runs
                ],
                [(run_id, step, storejson.loads(metrics)) for run_id, step, metrics in history],
            )

        return self._retrying(read)

    def import_copy(self, copy: StoreCopy) -> None:
        with self.transaction() as tx:
            db = tx.db
            for table, ids in (
                ("sweeps", [sweep.id for sweep in copy.sweeps]),
                ("runs", [run.record.id for run in copy.runs]),
            ):
                taken = db.execute(
                    f"SELECT id FROM {table} WHERE id = ANY(%s::text[]) LIMIT 1", (ids,)
                ).fetchone()
                if taken is not None:
                    what = table.removesuffix("s")
                    raise SweeperError(
                        f"{self._shown}: already holds {what} {taken[0]}; nothing copied"
                    )
            for sweep in copy.sweeps:
                tx.insert_sweep(sweep)
            with db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO runs ({_COPY_FIELDS}) VALUES ({', '.join(['%s'] * 16)})",
                    [run.values(flag=bool) for run in copy.runs],
                )
                cursor.executemany(
                    "INSERT INTO history (run_id, step, metrics) VALUES (%s, %s, %s)",
                    [(run_id, step, storejson.dumps(m)) for run_id, step, m in copy.history],
                )
            if len(copy.runs) >= _BULK:
                db.execute("ANALYZE runs, history")


def _configure(db: psycopg.Connection[Any]) -> None:
    """Each pooled connection reads JSON (a history pick) as the store wrote it: an encoded
    NaN or infinity comes back as the float (storejson)."""
    from psycopg.types.json import set_json_loads

    set_json_loads(storejson.loads, db)


class PostgresTransaction:
    """The store primitives (`sweeper.backends.store.Transaction`) on an open transaction."""

    def __init__(self, db: psycopg.Connection[Any], now: float | None = None) -> None:
        self.db = db
        self._now = now
        self._up_since: float | None = None
        self._clocked = now is not None
        """A clock given from outside (tests of skewed nodes): the server's start is not on it."""

    @property
    def now(self) -> float:
        # now() is the transaction's start whenever it is asked: one round trip, when needed,
        # which also reads when the server started (`up_since`).
        if self._now is None:
            row = self.db.execute(f"SELECT {_NOW}, {_UP_SINCE}").fetchone()
            assert row is not None
            self._now, self._up_since = float(row[0]), float(row[1])
        return self._now

    @property
    def up_since(self) -> float | None:
        if self._clocked:
            return None
        _ = self.now
        return self._up_since

    def lock_sweep(self, sweep_id: str) -> SweepRecord | None:
        row = self.db.execute(
            f"SELECT {_SWEEP_FIELDS} FROM sweeps WHERE id = %s FOR UPDATE", (sweep_id,)
        ).fetchone()
        return None if row is None else sweep_record(row)

    def insert_sweep(self, sweep: SweepRecord) -> None:
        self.db.execute(
            f"INSERT INTO sweeps ({_SWEEP_FIELDS}) VALUES ({', '.join(['%s'] * 18)})",
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
                sweep.exhausted,
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
        self.db.execute(f"UPDATE sweeps SET {columns} WHERE id = %s", (*values, sweep_id))

    def run_counts(self, sweep_id: str) -> dict[RunState, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = %s GROUP BY state", (sweep_id,)
        )
        return {_STATES[state]: n for state, n in rows}

    def run_total(self, sweep_id: str) -> int:
        return _run_total(self.db, sweep_id)

    def grid_state(self, sweep_id: str) -> GridState:
        return _grid_state(self.db, sweep_id, _run_total(self.db, sweep_id))

    def unnumbered_runs(self, sweep_id: str) -> list[RunRecord]:
        numbered = _grid_walk(self.db, sweep_id)[1]
        rows = self.db.execute(
            f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = %s AND seq > %s ORDER BY seq",
            (sweep_id, numbered),
        )
        return [_run_record(row) for row in rows]

    def number_runs(self, sweep_id: str, points: Mapping[str, int], numbered_to: int) -> None:
        # One statement over two arrays, not a row per run: numbering 100,000 runs is one
        # round trip.
        self.db.execute(
            "INSERT INTO grid_points (run_id, sweep_id, point)"
            " SELECT run_id, %s, point FROM unnest(%s::text[], %s::int[]) AS p(run_id, point)"
            " ON CONFLICT (run_id) DO UPDATE SET point = excluded.point",
            (sweep_id, list(points), list(points.values())),
        )
        if len(points) >= _BULK:
            self.db.execute("ANALYZE grid_points")
        self.db.execute(
            "INSERT INTO grid_walks (sweep_id, next_point, numbered_to) VALUES (%s, 0, %s)"
            " ON CONFLICT (sweep_id) DO UPDATE SET numbered_to = excluded.numbered_to",
            (sweep_id, numbered_to),
        )

    def set_grid_next(self, sweep_id: str, point: int) -> None:
        self.db.execute(
            "INSERT INTO grid_walks (sweep_id, next_point, numbered_to) VALUES (%s, %s, 0)"
            " ON CONFLICT (sweep_id) DO UPDATE SET next_point = excluded.next_point",
            (sweep_id, point),
        )

    def runs(self, sweep_id: str, states: Iterable[RunState] | None = None) -> list[RunRecord]:
        query, args = f"SELECT {_RUN_FIELDS} FROM runs WHERE sweep_id = %s", [sweep_id]
        if states is not None:
            query += " AND state = ANY(%s)"
            args.append([str(state) for state in states])  # type: ignore[arg-type]
        rows = self.db.execute(query + " ORDER BY seq", args, prepare=_CLAIM_READ)
        return [_run_record(row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_RUN_FIELDS} FROM runs WHERE id = %s", (run_id,)).fetchone()
        return None if row is None else _run_record(row)

    def insert_run(self, run: RunRecord) -> None:
        self.db.execute(
            f"INSERT INTO runs ({_RUN_FIELDS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run.id,
                run.sweep_id,
                run.seq,
                storejson.dumps(run.params),
                str(run.state),
                run.attempt,
                run.agent,
                run.heartbeat_at,
                run.should_stop,
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
        query = f"UPDATE runs SET {columns} WHERE id = %s AND attempt = %s"
        args = [*values, run_id, attempt]
        if expect is not None:
            query += " AND state = %s"
            args.append(str(expect))
        return self.db.execute(query, args).rowcount == 1

    def merge_summary(self, run_id: str, attempt: int, summary: Mapping[str, Any]) -> bool:
        # RFC 7396's merge (SQLite's json_patch), in Python on the locked row: jsonb would
        # reorder the summary's keys, and the text must read back as SQLite's does.
        row = self.db.execute(
            "SELECT summary FROM runs WHERE id = %s AND attempt = %s AND state = %s"
            " FOR NO KEY UPDATE",
            (run_id, attempt, str(RunState.RUNNING)),
        ).fetchone()
        if row is None:
            return False
        if summary:
            merged = merge_patch(storejson.loads(row[0]), storejson.loads(storejson.dumps(summary)))
            self.db.execute(
                "UPDATE runs SET summary = %s WHERE id = %s",
                (storejson.dumps(merged), run_id),
            )
        return True

    def append_history(self, run_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO history (run_id, step, metrics) VALUES (%s, %s, %s)"
            " ON CONFLICT (run_id, step) DO UPDATE SET metrics = excluded.metrics",
            (run_id, step, storejson.dumps(dict(metrics))),
        )

    # slot leases ----------------------------------------------------------------------------

    def lock_slots(self, scope: str, host: str) -> None:
        self.db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{scope}\x1f{host}",)
        )

    def set_cpu_pool(self, scope: str, host: str, cpu_slots: int) -> None:
        self.db.execute(
            "INSERT INTO slot_pools (scope, host, cpu_slots) VALUES (%s, %s, %s)"
            " ON CONFLICT (scope, host) DO UPDATE SET cpu_slots = excluded.cpu_slots",
            (scope, host, cpu_slots),
        )

    def cpu_pool(self, scope: str, host: str) -> int | None:
        row = self.db.execute(
            "SELECT cpu_slots FROM slot_pools WHERE scope = %s AND host = %s", (scope, host)
        ).fetchone()
        return None if row is None else int(row[0])

    def drop_lapsed_leases(self) -> None:
        self.db.execute("DELETE FROM leases WHERE expires_at < %s", (self.now,))

    def held_slots(self, scope: str, host: str, other_than: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT slot, holder FROM leases WHERE scope = %s AND host = %s AND holder != %s",
            (scope, host, other_than),
        )
        return {slot: holder for slot, holder in rows}

    def put_leases(
        self, scope: str, host: str, slots: list[str], holder: str, pid: int, expires_at: float
    ) -> None:
        self.db.cursor().executemany(
            "INSERT INTO leases (scope, host, slot, holder, pid, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (scope, host, slot) DO UPDATE SET"
            " holder = excluded.holder, pid = excluded.pid, expires_at = excluded.expires_at",
            [(scope, host, slot, holder, pid, expires_at) for slot in slots],
        )

    def renew_leases(self, holder: str, expires_at: float) -> set[str]:
        rows = self.db.execute(
            "UPDATE leases SET expires_at = %s WHERE holder = %s RETURNING slot",
            (expires_at, holder),
        )
        return {slot for (slot,) in rows}

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        if slots is None:
            self.db.execute("DELETE FROM leases WHERE holder = %s", (holder,))
        else:
            self.db.execute(
                "DELETE FROM leases WHERE holder = %s AND slot = ANY(%s)", (holder, slots)
            )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch (what SQLite's json_patch does): an object merges key by key,
    recursively; a null removes the key; anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _assignments(changes: Mapping[str, Any], allowed: frozenset[str]) -> tuple[str, list[Any]]:
    """`col = %s, ...` and its values for an update; column names come from a TypedDict's
    keys, never from data."""
    unknown = set(changes) - allowed
    if unknown or not changes:
        raise ValueError(f"cannot update columns {sorted(unknown) or 'none'}")
    values = []
    for name, value in changes.items():
        if isinstance(value, RunState | SweepState):
            value = str(value)
        elif name == "meta":
            value = storejson.dumps(value, default=str)
        values.append(value)
    return ", ".join(f"{name} = %s" for name in changes), values


_CLAIM_READ = False
"""`prepare` for the reads a claim makes: not as server-side prepared statements, whose generic
plan, cached while the runs table was small (psycopg prepares a query run five times), keeps
scanning it whole once it holds 100,000 runs, until an ANALYZE; planned afresh each time
(~0.2 ms), each read is an index lookup at any size (measured: 25-40 ms -> 0.1 ms). The
claim's read of the active runs under the lock (`runs(sweep_id, ACTIVE)`) above all: a generic
plan cannot know how few rows `state = ANY($2)` picks, so before an ANALYZE it reads the sweep's
every run through `runs_by_sweep (sweep_id)` and filters the state, and after one it scans the
table (EXPLAIN ANALYZE at 100,000 finished runs: 50-80 ms, 45 ms); planned with the values it is
an index lookup on (sweep_id, state), 0.08 ms, with or without statistics."""

_BULK = 1000
"""Rows written at once past which the writer ANALYZEs the tables it filled (a store copy, the
grid-point numbering of runs stored without them): the planner then estimates from their
statistics at once, not after autovacuum's next pass (within a minute, by default). ANALYZE
samples at most 30,000 rows: tens of milliseconds."""


def _run_total(db: psycopg.Connection[Any], sweep_id: str) -> int:
    """The sweep's highest seq (its run count, see Transaction.run_total): one index lookup."""
    row = db.execute(
        "SELECT MAX(seq) FROM runs WHERE sweep_id = %s AND seq > 0",
        (sweep_id,),
        prepare=_CLAIM_READ,
    ).fetchone()
    return int(row[0] or 0) if row else 0


def _grid_walk(db: psycopg.Connection[Any], sweep_id: str) -> tuple[int, int]:
    """The sweep's grid_walks row: (next_point, numbered_to), (0, 0) before its first."""
    row = db.execute(
        "SELECT next_point, numbered_to FROM grid_walks WHERE sweep_id = %s",
        (sweep_id,),
        prepare=_CLAIM_READ,
    ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _grid_state(db: psycopg.Connection[Any], sweep_id: str, total: int) -> GridState:
    """The points taken from where the walk stands on, and whether a run of the `total` has
    no point yet: index reads only."""
    start, numbered = _grid_walk(db, sweep_id)
    taken = db.execute(
        "SELECT DISTINCT point FROM grid_points WHERE sweep_id = %s AND point >= %s ORDER BY point",
        (sweep_id, start),
        prepare=_CLAIM_READ,
    ).fetchall()
    return GridState(start, [int(point) for (point,) in taken], numbered < total)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    """A `runs` row selected as _RUN_FIELDS."""
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


def sweep_record(row: tuple[Any, ...]) -> SweepRecord:
    """A `sweeps` row selected as _SWEEP_FIELDS (anything after them is ignored)."""
    config = storejson.loads(row[4])
    return SweepRecord(
        id=row[0],
        name=row[1],
        project=row[2],
        trainer=row[3],
        config=config,
        spec=storejson.loads(row[5]),
        spec_hash=row[6],
        spec_path=row[7],
        state=SweepState.read(row[8]),
        exhausted=bool(row[9]),
        study=row[10],
        stage=row[11],
        stage_name=row[12],
        carried=storejson.loads(row[13]),
        created_at=row[14],
        entity=config.get("entity"),
        seed=row[15],
        lease_holder=row[16],
        lease_until=row[17],
    )

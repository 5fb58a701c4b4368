"""The stores' schema version: a new store is stamped, an older one migrated in one
transaction, a newer one refused in one line naming both versions (exit 2 from the CLI)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from helpers import sweep_record
from postgres_server import PASSWORD, PostgresServer
from typer.testing import CliRunner

from sweeper.agent.launch import create_stage
from sweeper.backends import schema
from sweeper.backends import sqlite as sqlite_module
from sweeper.backends.base import SweepRecord
from sweeper.backends.local import LocalBackend
from sweeper.backends.postgres import PostgresStore
from sweeper.backends.sqlite import SqliteStore
from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.spec.load import load_spec
from sweeper.sweep import SweepState


def _user_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_migrations_are_numbered_one_step_at_a_time() -> None:
    """Each step goes from the version before it; VERSION is the last step's."""
    assert [m.to for m in schema.MIGRATIONS] == list(
        range(schema.UNVERSIONED + 1, schema.VERSION + 1)
    )
    assert all(m.sqlite and m.postgres for m in schema.MIGRATIONS)


def test_a_new_sqlite_store_is_stamped_with_the_version(store: Path) -> None:
    SqliteStore(store).close()
    assert _user_version(store) == schema.VERSION


def test_a_newer_sqlite_store_is_refused_in_one_line(store: Path) -> None:
    SqliteStore(store).close()
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.execute(f"PRAGMA user_version = {schema.VERSION + 5}")
    for readonly in (False, True):
        with pytest.raises(SweeperError) as caught:
            SqliteStore(store, create=False, readonly=readonly)
        message = str(caught.value)
        assert f"version {schema.VERSION + 5}" in message
        assert f"version {schema.VERSION})" in message
        assert str(store) in message and "\n" not in message
    assert _user_version(store) == schema.VERSION + 5, "a refusal writes nothing"
    result = CliRunner().invoke(app, ["sweeps", "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert f"version {schema.VERSION + 5}" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_unversioned_sqlite_store_is_migrated_once(store: Path, make_sweep: Any) -> None:
    """Unversioned is version 1: its `stopped` sweep is stored as canceled after opening."""
    sweep_id = make_sweep(probe_spec())
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("UPDATE sweeps SET state = 'stopped' WHERE id = ?", (sweep_id,))
        db.execute("PRAGMA user_version = 0")
    SqliteStore(store, create=False).close()
    assert _user_version(store) == schema.VERSION
    with contextlib.closing(sqlite3.connect(store)) as db:
        (state,) = db.execute("SELECT state FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
    assert state == "canceled"


def test_a_failing_migration_leaves_the_store_as_it_was(
    store: Path, make_sweep: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: a step that fails rolls back the steps before it and the stamp."""
    sweep_id = make_sweep(probe_spec())
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("UPDATE sweeps SET state = 'stopped' WHERE id = ?", (sweep_id,))
        db.execute("PRAGMA user_version = 0")
    broken = schema.Migration(
        to=schema.VERSION + 1,
        why="a step that fails",
        sqlite=("UPDATE no_such_table SET x = 1",),
        postgres=("UPDATE no_such_table SET x = 1",),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "VERSION", broken.to)
    with pytest.raises(SweeperError, match="no_such_table"):
        SqliteStore(store, create=False)
    assert _user_version(store) == 0
    with contextlib.closing(sqlite3.connect(store)) as db:
        (state,) = db.execute("SELECT state FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
    assert state == "stopped", "the first step was rolled back with the failing one"


def test_a_postgres_store_is_stamped_migrated_and_a_newer_one_refused(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    dbname = postgres_url.rsplit("/", 1)[1]
    backend = LocalBackend(postgres_url)
    try:
        sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    finally:
        backend.close()
    version = "SELECT version FROM schema_version"
    assert postgres_server.psql(version, dbname).split()[2] == str(schema.VERSION)

    # a store made before versions existed: no schema_version table, a `stopped` sweep
    postgres_server.psql(
        f"DROP TABLE schema_version; UPDATE sweeps SET state = 'stopped' WHERE id = '{sweep_id}';",
        dbname,
    )
    PostgresStore(postgres_url, create=False).close()
    assert postgres_server.psql(version, dbname).split()[2] == str(schema.VERSION)
    state = postgres_server.psql(f"SELECT state FROM sweeps WHERE id = '{sweep_id}'", dbname)
    assert state.split()[2] == "canceled"

    postgres_server.psql(f"UPDATE schema_version SET version = {schema.VERSION + 1}", dbname)
    with pytest.raises(SweeperError) as caught:
        PostgresStore(postgres_url, create=False)
    message = str(caught.value)
    assert f"version {schema.VERSION + 1}" in message and f"version {schema.VERSION})" in message
    assert PASSWORD not in message and "\n" not in message


V1 = Path(__file__).parent / "data" / "store-v1"
"""A store made by the code at commit 040fa56 (before versions), with the specs it ran:
old-grid (a.yaml: 2 runs finished, 1 stopped by hyperband), old-fail (b.yaml: 1 finished,
1 failed), old-preempt (c.yaml: a launch SIGTERMed mid-trial: 1 run preempted and requeued,
the sweep running) and old-stopped (d.yaml: made, then set `stopped` through that code's
LocalBackend.set_sweep_state)."""


def _v1_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "v1"
    shutil.copytree(V1, folder)
    return folder / "sweeper.db"


def _raw(path: Path) -> dict[str, Any]:
    """Every run and history row, and the sweeps' states, as stored (no sweeper code)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            "runs": db.execute("SELECT * FROM runs ORDER BY id").fetchall(),
            "history": db.execute("SELECT * FROM history ORDER BY run_id, step").fetchall(),
            "sweeps": dict(db.execute("SELECT name, state FROM sweeps").fetchall()),
        }


def test_a_store_made_by_the_code_before_versions_opens_migrated_and_means_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _v1_copy(tmp_path)
    monkeypatch.chdir(path.parent)
    before = _raw(path)
    assert _user_version(path) == 0
    assert before["sweeps"]["old-stopped"] == "stopped"
    listed = CliRunner().invoke(app, ["sweeps", "--store", str(path)])
    assert listed.exit_code == 0, listed.output
    assert _user_version(path) == schema.VERSION
    after = _raw(path)
    assert after["runs"] == before["runs"] and after["history"] == before["history"]
    assert after["sweeps"] == {**before["sweeps"], "old-stopped": "canceled"}
    assert "canceled" in listed.output

    ids = {name: sweep_id for sweep_id, name in _sweep_ids(path)}
    with contextlib.closing(sqlite3.connect(path)) as db:
        stored = {(run_id, state) for run_id, state in db.execute("SELECT id, state FROM runs")}
    shown = set()
    for name, sweep_id in ids.items():
        table = CliRunner().invoke(app, ["runs", sweep_id, "--store", str(path), "--json"])
        assert table.exit_code == 0, table.output
        shown |= {(row["run_id"], row["state"]) for row in json.loads(table.stdout)}
        status = CliRunner().invoke(app, ["status", sweep_id, "--store", str(path)])
        assert status.exit_code == 0 and name in status.output, status.output
    assert shown == stored
    assert sorted(state for _, state in stored) == [
        "failed", "finished", "finished", "finished", "preempted", "stopped",
    ]  # fmt: skip
    status = CliRunner().invoke(app, ["status", ids["old-preempt"], "--store", str(path)])
    assert "[running]" in status.output and "1 preempted" in status.output, status.output


def _sweep_ids(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT id, name FROM sweeps").fetchall()


@pytest.mark.slow  # a real launch: the preempted trial's 30 epochs of 0.3 s
def test_the_same_launch_resumes_a_sweep_of_the_store_before_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrated store's preempted run is run again under its id (attempt 2) by a launch of
    the spec that made it, in the old sweep: no new sweep."""
    path = _v1_copy(tmp_path)
    monkeypatch.chdir(path.parent)
    before = _sweep_ids(path)
    options = ("--store", str(path), "--agents", "2", "--wandb", "disabled")
    launched = subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", "c.yaml", *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert _sweep_ids(path) == before
    with contextlib.closing(sqlite3.connect(path)) as db:
        runs = db.execute(
            "SELECT r.id, r.state, r.attempt FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
            " WHERE s.name = 'old-preempt' ORDER BY r.seq"
        ).fetchall()
    assert runs[0] == ("pat715zf", "finished", 2), runs
    assert [state for _, state, _ in runs] == ["finished", "finished"]


V4_COLUMNS = [name for name, _, _ in schema.SWEEP_COLUMNS_V4]


def _as_version_3_sqlite(path: Path) -> None:
    """Turn a store made now into the layout version 3 wrote: the sweeps without seed and
    scheduler lease (the one thing version 4 changed), stamped 3."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for name in V4_COLUMNS:
            db.execute(f"ALTER TABLE sweeps DROP COLUMN {name}")
        db.execute("PRAGMA user_version = 3")


def test_a_version_3_sqlite_store_gains_seed_and_lease_columns_empty(
    store: Path, make_sweep: Any
) -> None:
    sweep_id = make_sweep(probe_spec())
    _as_version_3_sqlite(store)
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.row_factory = sqlite3.Row
        # read as it is (a read-only open does not migrate): no seed, no lease
        old = sqlite_module.sweep_record(db.execute("SELECT * FROM sweeps").fetchone())
    assert (old.id, old.seed, old.lease_holder, old.lease_until) == (sweep_id, None, None, None)

    opened = SqliteStore(store, create=False)
    try:
        assert _user_version(store) == schema.VERSION
        sweep = opened.sweep(sweep_id)
        assert sweep is not None and sweep.seed is None, "made before seeds: none"
        assert (sweep.lease_holder, sweep.lease_until) == (None, None)
    finally:
        opened.close()
    with contextlib.closing(sqlite3.connect(store)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(sweeps)")]
    assert columns[-3:] == V4_COLUMNS


def test_the_store_before_versions_migrates_all_the_way_with_no_seeds(tmp_path: Path) -> None:
    path = _v1_copy(tmp_path)
    opened = SqliteStore(path, create=False)
    try:
        sweeps = opened.sweeps()
    finally:
        opened.close()
    assert _user_version(path) == schema.VERSION and len(sweeps) == 4
    assert {(s.seed, s.lease_holder, s.lease_until) for s in sweeps} == {(None, None, None)}
    shown = CliRunner().invoke(app, ["status", sweeps[0].id, "--store", str(path)])
    assert shown.exit_code == 0 and "seed none (made before seeds)" in shown.output, shown.output


@pytest.fixture(params=["sqlite", "postgresql"])
def either_store(request: pytest.FixtureRequest, store: Path) -> Iterator[LocalBackend]:
    where = store if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = LocalBackend(where)
    yield opened
    opened.close()


def _record(sweep_id: str, seed: int | None, created_at: float) -> SweepRecord:
    config = {"method": "random", "parameters": {"x": {"values": [1, 2]}}}
    return sweep_record(sweep_id, config, created_at, seed=seed)


def test_a_sweep_keeps_its_seed_and_its_lease_is_set_under_its_lock(
    either_store: LocalBackend,
) -> None:
    """The seed is stored as given (up to 2**63 - 1: BIGINT, SQLite's INTEGER); the lease is
    set, renewed and dropped through `update_sweep`, on the store's clock."""
    store = either_store.store
    big = 2**63 - 1
    with store.transaction() as tx:
        tx.insert_sweep(_record("seeded", big, tx.now))
        tx.insert_sweep(_record("unseeded", None, tx.now + 1))
    assert [(s.id, s.seed) for s in store.sweeps()] == [("seeded", big), ("unseeded", None)]
    with store.transaction() as tx:
        locked = tx.lock_sweep("seeded")
        assert locked is not None and locked.lease_holder is None
        until = tx.now + 30
        tx.update_sweep("seeded", {"lease_holder": "node-1:4242", "lease_until": until})
    for read in (store.sweep("seeded"), store.snapshot("seeded"), store.claim_view("seeded")):
        sweep = read if isinstance(read, SweepRecord) else getattr(read, "sweep", None)
        assert sweep is not None
        assert (sweep.seed, sweep.lease_holder, sweep.lease_until) == (big, "node-1:4242", until)
    with store.transaction() as tx:
        held = tx.lock_sweep("seeded")
        assert held is not None and held.lease_until is not None and held.lease_until < tx.now + 60
        tx.update_sweep("seeded", {"lease_until": tx.now + 60})
        tx.update_sweep("seeded", {"state": SweepState.PAUSED})
    renewed = store.sweep("seeded")
    assert renewed is not None and renewed.lease_holder == "node-1:4242"
    assert renewed.lease_until is not None and renewed.lease_until > until
    assert renewed.state == SweepState.PAUSED and renewed.seed == big, "other columns kept"
    with store.transaction() as tx:
        tx.update_sweep("seeded", {"lease_holder": None, "lease_until": None})
    dropped = store.sweep("seeded")
    assert dropped is not None and (dropped.lease_holder, dropped.lease_until) == (None, None)
    other = store.sweep("unseeded")
    assert other is not None and (other.seed, other.lease_holder) == (None, None)
    with pytest.raises(ValueError, match="seed"), store.transaction() as tx:
        tx.update_sweep("seeded", {"seed": 1})  # type: ignore[typeddict-unknown-key]


def test_a_version_3_postgres_store_gains_seed_and_lease_columns_empty(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    dbname = postgres_url.rsplit("/", 1)[1]
    backend = LocalBackend(postgres_url)
    try:
        sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    finally:
        backend.close()
    drops = "; ".join(f"ALTER TABLE sweeps DROP COLUMN {name}" for name in V4_COLUMNS)
    postgres_server.psql(f"{drops}; UPDATE schema_version SET version = 3;", dbname)
    opened = PostgresStore(postgres_url, create=False)
    try:
        sweep = opened.sweep(sweep_id)
    finally:
        opened.close()
    assert sweep is not None and (sweep.seed, sweep.lease_holder, sweep.lease_until) == (
        None,
        None,
        None,
    )
    version = postgres_server.psql("SELECT version FROM schema_version", dbname)
    assert version.split()[2] == str(schema.VERSION)
    columns = postgres_server.psql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'sweeps'"
        " ORDER BY ordinal_position",
        dbname,
    ).split()
    assert [name for name in columns if name in V4_COLUMNS] == V4_COLUMNS

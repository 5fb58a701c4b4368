"""The PostgreSQL store as users meet it: `--store postgresql://...` on the real command, the
password kept out of every output, file and row, bad input in one line, and a server restart
ridden out. (The coordinator's rules over it: test_coordinator.py; the Backend protocol over
it: test_backend_protocol.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import probe_spec, write_spec
from helpers import sweeper
from postgres_server import BIN, PASSWORD, PostgresServer
from typer.testing import CliRunner

import sweeper.backends.postgres as postgres_module
from sweeper.backends.local import LocalBackend
from sweeper.backends.postgres import PostgresStore, is_url, masked, url_of
from sweeper.backends.store import RunRecord
from sweeper.cli import app
from sweeper.errors import Unreachable
from sweeper.sweep import RunState


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_a_url_is_shown_with_its_password_masked() -> None:
    assert is_url("postgresql://u@h/db") and is_url("postgres://h/db")
    assert not is_url("/tmp/postgresql.db") and not is_url(Path("postgresql://x"))
    assert masked("postgresql://u:s3cret@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert masked("postgresql://u@h/db?password=s3cret&sslmode=disable") == (
        "postgresql://u@h/db?password=***&sslmode=disable"
    )
    assert masked("postgresql://u@h/db") == "postgresql://u@h/db"
    # A password libpq reads with `#`, `?` or `@` in it unencoded, or one with `/` that it
    # cannot read, and a URL it refuses: each still hidden whole.
    for password in ("Pa#ss", "Pa?ss", "Pa@ss", "Pa/ss"):
        assert masked(f"postgresql://u:{password}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert masked("postgresql://u:s3cret@[bad/db") == "postgresql://u:***@[bad/db"
    assert masked("host=h password=s3cret dbname=db") == "host=h password=*** dbname=db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:Pa#ss@127.0.0.1:5432/db",
        "postgresql:///db?host=/var/run/pg&port=5432&user=u&password=pw",
        "postgresql://u@h/db?options=-c%20statement_timeout%3D5000&sslmode=disable",
        "postgresql://u@a:1,b:2/db",
        "postgresql://us%40er@h/d%2Fb",
    ],
)
def test_the_url_agents_get_is_libpqs_own_reading_without_the_password(url: str) -> None:
    """What agents are given (`--store`) parses, in libpq, to the parameters the user's URL
    did, less the password: a socket folder, several hosts and encoded options survive."""
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(url)
    params.pop("password", None)
    again = url_of(params)
    assert psycopg.conninfo.conninfo_to_dict(again) == params
    assert "Pa#ss" not in again and "pw" not in again.replace("pwd", "")


@pytest.mark.parametrize(
    "store",
    ["postgresql://u:s3cret@[bad/db", "host=127.0.0.1 user=u password=s3cret dbname=db"],
)
def test_a_malformed_url_or_a_keyword_string_is_one_line_and_writes_nothing(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _cli("sweeps", "--store", store)
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    assert "s3cret" not in output and "***" in output
    assert list(tmp_path.iterdir()) == []


def test_bad_urls_passwords_databases_and_servers_are_one_line_with_the_password_masked(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    host = f"{postgres_server.host}:{postgres_server.port}"
    cases = {
        f"postgresql://sweeper:{PASSWORD}x@{host}/postgres": "password authentication failed",
        f"postgresql://sweeper:{PASSWORD}@{host}/nosuchdb": 'database "nosuchdb" does not exist',
        f"postgresql://sweeper:{PASSWORD}@127.0.0.1:1/db": "Connection refused",
        f"postgresql://sweeper:{PASSWORD}@{host}:x/db": "invalid",
        # libpq's options pass through: this server has no SSL
        f"postgresql://sweeper:{PASSWORD}@{host}/postgres?sslmode=require": "SSL",
    }
    for url, reason in cases.items():
        code, output = _cli("sweeps", "--store", url)
        lines = output.strip().splitlines()
        assert code == 2 and len(lines) == 1, output
        assert reason in lines[0] and "postgresql://sweeper:***@" in lines[0], output
        assert PASSWORD not in output
    code, output = _cli(
        "status", "x", "--store", f"postgresql://sweeper:{PASSWORD}@{host}/x", "--backend", "wandb"
    )
    assert code == 2 and PASSWORD not in output and "wandb backend" in output
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_an_empty_database_is_no_store_for_a_reader(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPER_STORE", postgres_url)  # as --store
    code, output = _cli("sweeps")
    assert code == 2 and "no sweeper store in postgresql://sweeper:***@" in output, output
    monkeypatch.setenv("SWEEPER_STORE", postgres_url.replace(PASSWORD, "wrong"))
    code, output = _cli("sweeps")  # the variable's URL, not a SQLite file named after it
    assert code == 2 and "password authentication failed" in output, output


def test_the_password_may_come_from_pgpassword_or_pgpass(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = postgres_url.replace(f":{PASSWORD}@", "@")
    monkeypatch.setattr(postgres_module, "_TAKEN", {})
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    store = PostgresStore(bare)
    assert "PGPASSWORD" not in os.environ, "no trial's program may inherit it"
    assert store.child_env() == {"PGPASSWORD": PASSWORD} and store.url == bare
    store.close()
    PostgresStore(bare).close()  # a second store of the process still has it
    monkeypatch.setattr(postgres_module, "_TAKEN", {})
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:sweeper:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))  # libpq's ~/.pgpass, elsewhere
    store = PostgresStore(bare)
    assert store.child_env() == {} and store.sweeps() == []
    store.close()


def test_without_the_driver_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError
    code, output = _cli("sweeps", "--store", "postgresql://u@localhost/db")
    assert code == 2 and output.count("\n") == 1, output
    assert "uv sync --extra postgres" in output and "sweeper[postgres]" in output


def test_a_server_restart_is_ridden_out_and_a_dead_one_is_unreachable_in_bounded_time(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    from sweeper.backends.coordinator import Coordinator

    backend = LocalBackend(postgres_url)
    grid = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    sweep_id = backend.create_sweep(grid, trainer="probe", spec={}, spec_hash="h")
    claim = backend.claim(sweep_id, "a")
    assert claim is not None
    postgres_server.pg_ctl("restart", "-m", "fast")  # every pooled connection dies
    assert backend.log(claim.run_id, claim.attempt, 0, {"loss": 1.0})
    assert backend.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"loss": 0.5})
    assert backend.counts(sweep_id) == {"finished": 1}
    bounded = PostgresStore(postgres_url, create=False, wait=1.0)
    postgres_server.pg_ctl("stop", "-m", "fast")
    try:
        with pytest.raises(Unreachable, match=r"did not answer for 1 s") as caught:
            Coordinator(bounded).heartbeat(claim.run_id, claim.attempt)
        assert PASSWORD not in str(caught.value) and "sweeper:***@" in str(caught.value)
    finally:
        postgres_server.pg_ctl("start")
    assert backend.run(claim.run_id)["summary"] == {"loss": 0.5}
    bounded.close()
    backend.close()


@pytest.mark.slow  # launch starts two agent processes that import torch
def test_launch_over_postgres_runs_every_point_once_and_the_password_shows_nowhere(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    values = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    spec = write_spec(tmp_path, probe_spec(base={"epochs": 1}, search={"x": values}))
    store = ["--store", postgres_url]
    launched = sweeper(
        "launch", str(spec), *store, "--agents", "2", "--wandb", "offline", cwd=tmp_path
    )
    assert launched.returncode == 0, launched.stderr
    backend = LocalBackend(postgres_url, create=False)
    (sweep,) = backend.sweeps()
    table = backend.runs(sweep.id)
    assert sorted(table["config.x"]) == values  # every point once: none twice, none missing
    assert set(table["state"]) == {"finished"}
    status = sweeper("status", sweep.id, *store, cwd=tmp_path)
    runs = sweeper("runs", sweep.id, *store, cwd=tmp_path)
    assert status.returncode == 0 and "6/6" in status.stdout, status.stderr
    assert runs.returncode == 0 and len(runs.stdout.splitlines()) > 6, runs.stderr
    outputs = [launched, status, runs]
    assert not any(PASSWORD in r.stdout + r.stderr for r in outputs)
    assert all(PASSWORD not in str(backend.run(r)["meta"]) for r in table["run_id"])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "output.log" for p in files) and any(".wandb" in p.name for p in files)
    assert not [p for p in files if PASSWORD.encode() in p.read_bytes()]
    server = ["-h", postgres_server.host, "-p", str(postgres_server.port)]
    database = postgres_url.rsplit("/", 1)[1]
    dump = subprocess.run(
        [str(BIN / "pg_dump"), "--data-only", *server, "-U", postgres_server.superuser, database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sweep.id in dump and PASSWORD not in dump
    backend.close()


def test_numbering_a_bulk_of_grid_runs_and_a_store_copy_analyze_what_they_filled(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The claim after a bulk write plans from fresh statistics, not autovacuum's next pass
    (issue 22: at 100,000 runs a stale plan cost a claim 40-170 ms)."""
    backend = LocalBackend(postgres_url)
    config = {"method": "grid", "parameters": {"a": {"values": list(range(2000))}}}
    sweep_id = backend.create_sweep(config, trainer="noop", spec={}, spec_hash="bulk")
    store = backend.store
    assert isinstance(store, PostgresStore)
    n = postgres_module._BULK
    with store.transaction() as tx:
        for i in range(n):  # stored without point numbers, as by an older sweeper
            run = RunRecord(
                id=f"old{i:05d}",
                sweep_id=sweep_id,
                seq=i + 1,
                params={"a": {"value": i}},
                state=RunState.FINISHED,
                created_at=tx.now,
            )
            tx.insert_run(run)

    def tuples(table: str) -> float:
        with store.transaction() as tx:
            row = tx.db.execute(f"SELECT reltuples FROM pg_class WHERE relname = '{table}'")
            return float(row.fetchone()[0])  # type: ignore[index]

    assert tuples("grid_points") < 0  # never analyzed
    claim = backend.claim(sweep_id, "agent")  # numbers the n runs, then takes point n
    assert claim is not None and claim.params == {"a": n}
    assert tuples("grid_points") == n
    backend.finish(claim.run_id, claim.attempt, RunState.FINISHED, {})
    copy = store.export([sweep_id])
    target = LocalBackend(postgres_server.url(postgres_server.fresh_database()))
    target_store = target.store
    assert isinstance(target_store, PostgresStore)
    target_store.import_copy(copy)
    with target_store.transaction() as tx:
        row = tx.db.execute("SELECT reltuples FROM pg_class WHERE relname = 'runs'").fetchone()
    assert row is not None and row[0] == n + 1
    backend.close()
    target.close()


def test_a_trial_trains_through_an_outage_and_writes_its_steps_when_the_store_is_back(
    postgres_server: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: a running trial keeps running while the store is unreachable and flushes what
    it logged when it is back; the outage does not count as its agent's silence."""
    import time

    from sweeper.backends import storesink

    monkeypatch.setattr(storesink, "STEP_WAIT", 1.0)
    monkeypatch.setattr(storesink, "RETRY_AFTER", 0.5)
    backend = LocalBackend(postgres_url)
    grid = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    sweep_id = backend.create_sweep(grid, trainer="probe", spec={}, spec_hash="h")
    claim = backend.claim(sweep_id, "a", heartbeat_timeout=5.0)
    assert claim is not None
    sink = backend.open_sink(claim, None)
    assert sink.log(0, {"loss": 1.0})
    postgres_server.pg_ctl("stop", "-m", "fast")
    try:
        started = time.monotonic()
        for step in (1, 2, 3):  # each kept at once or after STEP_WAIT, never a stall or a raise
            assert sink.log(step, {"loss": 1.0 / (step + 1)})
            assert not sink.should_stop()
        assert time.monotonic() - started < 4 * storesink.STEP_WAIT
        time.sleep(6.0)  # longer than the heartbeat timeout: the agent could not be heard
    finally:
        postgres_server.pg_ctl("start")
    other = backend.claim(sweep_id, "b", heartbeat_timeout=5.0)
    assert other is not None and other.run_id != claim.run_id  # not requeued: the server was down
    time.sleep(0.5)
    assert sink.log(4, {"loss": 0.2})  # the kept steps first, in order
    assert sink.finish(RunState.FINISHED, summary={"loss": 0.2})
    run = backend.run(claim.run_id)
    assert (run["state"], run["attempt"]) == ("finished", 1)
    assert list(backend.history([claim.run_id])["_step"]) == [0, 1, 2, 3, 4]
    sink.close()
    backend.close()

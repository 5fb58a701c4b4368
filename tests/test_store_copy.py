"""`sweeper store copy SRC DST`: sweeps moved between SQLite and PostgreSQL, either way, ids
kept, all or nothing; the same launch against DST resumes what was copied."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from postgres_server import PASSWORD, PostgresServer
from typer.testing import CliRunner, Result

from sweeper.agent.launch import create_stage
from sweeper.backends.local import LocalBackend
from sweeper.backends.store import StoreCopy
from sweeper.cli import app
from sweeper.errors import NotFoundError
from sweeper.spec.load import load_spec
from sweeper.sweep import RunState

V1 = Path(__file__).parent / "data" / "store-v1"
"""Runs finished, hyperband-stopped, failed and preempted, a canceled sweep (test_store_schema)."""


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _export(store: str | Path) -> StoreCopy:
    backend = LocalBackend(store, create=False)
    try:
        return backend.store.export()
    finally:
        backend.close()


def _same(one: StoreCopy, other: StoreCopy) -> None:
    """Every sweep, run (all columns) and history row equal, NaN equal to NaN."""
    assert one.sweeps == other.sweeps
    by_id = {run.record.id: run for run in other.runs}
    assert sorted(by_id) == sorted(run.record.id for run in one.runs)
    for run in one.runs:
        assert run == by_id[run.record.id], run.record.id
    assert sorted(one.history, key=_key) == sorted(other.history, key=_key)


def _key(row: tuple[str, int, dict[str, Any]]) -> tuple[str, int]:
    return row[0], row[1]


def test_sqlite_to_postgresql_to_sqlite_keeps_every_id_state_summary_and_row(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(V1, tmp_path / "laptop")
    monkeypatch.chdir(tmp_path / "laptop")
    laptop = tmp_path / "laptop" / "sweeper.db"
    home = tmp_path / "home" / "sweeper.db"
    original = _export(laptop)
    states = sorted(str(run.record.state) for run in original.runs)
    assert states == ["failed", "finished", "finished", "finished", "preempted", "stopped"]
    assert len(original.history) > 10 and len(original.sweeps) == 4

    there = cli("store", "copy", str(laptop), postgres_url)
    assert there.exit_code == 0, there.output
    assert "copied 4 sweep(s), 6 run(s)" in there.output
    assert PASSWORD not in there.output and "***" in there.output
    _same(original, _export(postgres_url))

    back = cli("store", "copy", postgres_url, str(home))
    assert back.exit_code == 0, back.output
    _same(original, _export(home))
    # the tables show the same runs from the copy
    for sweep in original.sweeps:
        shown = cli("runs", sweep.id, "--store", str(home), "--json")
        assert shown.exit_code == 0, shown.output
        assert cli("runs", sweep.id, "--store", str(laptop), "--json").stdout == shown.stdout

    again = cli("store", "copy", str(laptop), postgres_url)
    assert again.exit_code == 2
    assert "already holds sweep" in again.output and "nothing copied" in again.output
    assert len(again.output.strip().splitlines()) == 1 and PASSWORD not in again.output
    _same(original, _export(postgres_url))


def test_a_copy_is_all_or_nothing_when_one_run_id_is_already_there(
    tmp_path: Path, store: Path, backend: LocalBackend
) -> None:
    """A run id taken in DST refuses the whole copy: none of the other sweeps or runs land."""
    first = create_stage(backend, load_spec(write_spec(tmp_path, probe_spec(name="one"))))
    create_stage(backend, load_spec(write_spec(tmp_path, probe_spec(name="two"), "two.yaml")))
    claim = backend.claim(first, "a")
    assert claim is not None
    other = tmp_path / "other.db"
    clash = LocalBackend(other)
    try:
        clash_copy = backend.store.export([first])
        clash.store.import_copy(StoreCopy([], clash_copy.runs, []))  # the run alone
    finally:
        clash.close()
    before = _export(other)
    refused = cli("store", "copy", str(store), str(other), "--live")
    assert refused.exit_code == 2
    assert f"already holds run {claim.run_id}; nothing copied" in refused.output
    after = _export(other)
    assert after == before and not after.sweeps


def test_running_runs_are_refused_unless_live_then_requeued_in_the_copy(
    tmp_path: Path, store: Path, backend: LocalBackend, postgres_url: str
) -> None:
    sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    claim = backend.claim(sweep_id, "a", heartbeat_timeout=1)
    assert claim is not None
    refused = cli("store", "copy", str(store), postgres_url)
    assert refused.exit_code == 2, refused.output
    assert f"1 run(s) still running ({claim.run_id})" in refused.output
    assert "--live" in refused.output and len(refused.output.strip().splitlines()) == 1
    with pytest.raises(NotFoundError):  # refused before the destination was even made
        _export(postgres_url)

    copied = cli("store", "copy", str(store), postgres_url, "--sweep", sweep_id, "--live")
    assert copied.exit_code == 0, copied.output
    assert "(1 running, copied as they were)" in " ".join(copied.output.split())
    cluster = LocalBackend(postgres_url)
    try:
        run = cluster.store.run(claim.run_id)
        assert run is not None and (run.state, run.attempt) == (RunState.RUNNING, 1)
        # its agent is silent on the cluster: once the heartbeat lapses, the run is requeued
        # and handed out again under its id, the next attempt
        again = None
        for _ in range(50):
            again = cluster.claim(sweep_id, "b", heartbeat_timeout=1)
            if again is not None and again.run_id == claim.run_id:
                break
            time.sleep(0.1)
        assert again is not None and again.run_id == claim.run_id and again.attempt == 2
    finally:
        cluster.close()


def test_bad_stores_and_targets_are_one_line(tmp_path: Path, store: Path, backend: Any) -> None:
    create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    missing = cli("store", "copy", str(tmp_path / "none.db"), str(tmp_path / "dst.db"))
    assert missing.exit_code == 2 and "none.db" in missing.output
    unknown = cli("store", "copy", str(store), str(tmp_path / "dst.db"), "--sweep", "nosuch")
    assert unknown.exit_code == 2 and "'nosuch'" in unknown.output
    same = cli("store", "copy", str(store), str(store))
    assert same.exit_code == 2 and "same store" in same.output
    for result in (missing, unknown, same):
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "dst.db").exists() or not _export(tmp_path / "dst.db").sweeps


@pytest.mark.slow  # two real launches with their agents
def test_a_launch_against_the_copy_resumes_the_study(
    tmp_path: Path, store: Path, backend: LocalBackend, postgres_url: str
) -> None:
    """A laptop study half done, copied to the cluster: the same launch there finishes it in
    the same sweep, the finished run not run again; copied home, the launch has nothing to do."""
    spec = write_spec(tmp_path, probe_spec(search={"x": [0.0, 1.0, 2.0]}, base={"epochs": 1}))
    sweep_id = create_stage(backend, load_spec(spec))
    claim = backend.claim(sweep_id, "laptop")
    assert claim is not None
    sink = backend.open_sink(claim, backend.sweep(sweep_id), wandb_mode="disabled")
    sink.log(0, {"loss": 0.5})
    assert sink.finish(RunState.FINISHED, summary={"loss": 0.5})
    sink.close()
    assert cli("store", "copy", str(store), postgres_url).exit_code == 0

    launch = [sys.executable, "-m", "sweeper", "launch", str(spec), "--wandb", "disabled"]
    done = subprocess.run(
        [*launch, "--store", postgres_url, "--agents", "1"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cluster = _export(postgres_url)
    assert [sweep.id for sweep in cluster.sweeps] == [sweep_id], "no new sweep"
    runs = {run.record.id: run.record for run in cluster.runs}
    assert len(runs) == 3 and {r.state for r in runs.values()} == {RunState.FINISHED}
    assert runs[claim.run_id].attempt == 1, "the laptop's finished run was not run again"
    assert sorted(r.params["x"]["value"] for r in runs.values()) == [0.0, 1.0, 2.0]
    assert runs[claim.run_id].summary == {"loss": 0.5}

    home = tmp_path / "home.db"
    assert cli("store", "copy", postgres_url, str(home)).exit_code == 0
    again = subprocess.run(
        [*launch, "--store", str(home), "--agents", "1"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    _same(cluster, _export(home))  # complete: nothing run, nothing added


def test_the_cli_names_no_password(
    tmp_path: Path, store: Path, backend: Any, postgres_server: PostgresServer
) -> None:
    """A refused password is one line with the URL masked."""
    create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    bad = postgres_server.url(postgres_server.fresh_database()).replace(PASSWORD, "wrong-pw-9")
    result = cli("store", "copy", str(store), bad)
    assert result.exit_code == 2, result.output
    assert "wrong-pw-9" not in result.output and "***" in result.output


def test_a_copy_carries_the_seed_and_drops_the_scheduler_lease(
    tmp_path: Path, store: Path, backend: LocalBackend, postgres_url: str
) -> None:
    """The seed goes with the sweep (a replay there suggests the same); the lease does not (its
    holder writes to the source; the destination's first agent takes it afresh)."""
    sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, probe_spec())))
    made = backend.sweep(sweep_id)
    with backend.store.transaction() as tx:
        tx.insert_sweep(replace(made, id="seeded", name="seeded", seed=4321))
        tx.update_sweep("seeded", {"lease_holder": "laptop:1", "lease_until": tx.now + 600})
    leased = backend.sweep("seeded")
    assert (leased.seed, leased.lease_holder) == (4321, "laptop:1")

    assert cli("store", "copy", str(store), postgres_url).exit_code == 0
    home = tmp_path / "home.db"
    assert cli("store", "copy", postgres_url, str(home)).exit_code == 0
    for where in (postgres_url, home):
        copied = {sweep.id: sweep for sweep in _export(where).sweeps}
        assert copied["seeded"] == replace(leased, lease_holder=None, lease_until=None)
        assert copied[sweep_id] == made

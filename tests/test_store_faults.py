"""A store that is a folder, damaged, truncated, read-only, or cannot be made: one line, exit 2.

Commands that only read (`status`, `runs`, `report`) still work on a store they cannot write.
Read-only is made with `chattr +i` (immutable): these tests run as root, whom file modes do not
stop.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import probe_spec
from typer.testing import CliRunner

from sweeper.cli import app


def _sweeper(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _one_line_exit_2(result: Any, message: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and message in lines[0], result.output


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def _finished_sweep(backend: Any, make_sweep: Any) -> str:
    sweep_id = make_sweep(probe_spec(search={"x": [0.0, 2.0]}))
    while (claim := backend.claim(sweep_id, "a")) is not None:
        backend.log(claim.run_id, claim.attempt, 0, {"loss": claim.params["x"] + 1})
        backend.finish(claim.run_id, claim.attempt, "finished", {"loss": claim.params["x"] + 1})
    backend.sqlite.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sweep_id


def test_a_folder_a_damaged_file_and_a_truncated_store_are_one_line(
    backend: Any, make_sweep: Any, store: Path, tmp_path: Path
) -> None:
    _one_line_exit_2(_sweeper("status", "x", "--store", str(tmp_path)), "is a folder")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 100)
    for command in ("status", "runs", "agent"):
        result = _sweeper(command, "x", "--store", str(garbage))
        _one_line_exit_2(result, "not a sweeper store, or damaged")
    sweep_id = _finished_sweep(backend, make_sweep)
    backend.close()
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 2])
    result = _sweeper("runs", sweep_id, "--store", str(store))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_read_commands_work_on_a_read_only_store_and_writers_are_refused(
    backend: Any, make_sweep: Any, store: Path, tmp_path: Path
) -> None:
    sweep_id = _finished_sweep(backend, make_sweep)
    backend.close()
    spec = tmp_path / "spec.yaml"
    for locked in ([store], [store.parent]):  # a read-only file, then a read-only folder
        with immutable(*locked):
            status = _sweeper("status", sweep_id, "--store", str(store))
            assert status.exit_code == 0, status.output
            assert "progress: 2/2 done (2 finished)" in status.output
            assert "[finished]" in status.output or "[running]" in status.output
            runs = _sweeper("runs", sweep_id, "--store", str(store))
            assert runs.exit_code == 0 and runs.output.count("finished") == 2, runs.output
            report = _sweeper("report", sweep_id, "--store", str(store), "-o", str(tmp_path / "r"))
            assert report.exit_code == 0, report.output
            launched = _sweeper("launch", str(spec), "--store", str(store))
            _one_line_exit_2(launched, "cannot write the store")


def test_a_store_that_cannot_be_made_and_a_csv_into_nowhere(
    backend: Any, make_sweep: Any, store: Path, tmp_path: Path
) -> None:
    sweep_id = _finished_sweep(backend, make_sweep)
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        result = _sweeper("launch", str(tmp_path / "spec.yaml"), "--store", str(locked / "s/x.db"))
        _one_line_exit_2(result, "cannot create the store")
    missing = tmp_path / "no" / "such" / "runs.csv"
    result = _sweeper("runs", sweep_id, "--store", str(store), "--csv", str(missing))
    _one_line_exit_2(result, "--csv")
    assert "non-existent directory" in result.output
    assert not missing.parent.exists()

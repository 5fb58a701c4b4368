"""The offline run-file reader, on files written by real `wandb.init(mode="offline")` runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper.backends.runfile import BLOCK, RunFileError, RunFileReader, read_run, records

PROGRAM = """
import sys, time, wandb
run = wandb.init(project="p", config={"lr": 0.1, "layers": [1, 2], "blob": "x" * 70000})
for step in range(3):
    wandb.log({"loss": 1.0 / (step + 1), "val": {"acc": 0.5 + step / 10}})
run.summary["best"] = 7
if sys.argv[1] == "hang":
    print("logged", flush=True)
    time.sleep(600)
run.finish()
"""


def _env(folder: Path, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return env | {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(folder),
        "WANDB_RUN_ID": run_id,
        "WANDB_SILENT": "true",
        "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL": "0.5",  # as the agent sets it
    }


def _run_file(folder: Path, run_id: str) -> Path:
    [path] = folder.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run: config (with a 70 KB value, so a record spans blocks), 3 history rows
    (one nested), and a summary key set by hand."""
    folder = tmp_path_factory.mktemp("runfile")
    program = folder / "program.py"
    program.write_text(PROGRAM)
    subprocess.run(
        [sys.executable, str(program), "finish"],
        env=_env(folder, "done1"),
        check=True,
        timeout=120,
    )
    return _run_file(folder, "done1")


def test_a_finished_run_reads_back_whole(finished: Path) -> None:
    log = read_run(finished)

    assert log.run_id == "done1"
    assert (log.config["lr"], log.config["layers"], len(log.config["blob"])) == (
        0.1,
        [1, 2],
        70000,
    )
    assert [row["_step"] for row in log.history] == [0, 1, 2]
    assert [row["loss"] for row in log.history] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [row["val.acc"] for row in log.history] == pytest.approx([0.5, 0.6, 0.7])
    assert log.summary["best"] == 7
    assert log.summary["loss"] == pytest.approx(1 / 3)
    assert log.summary["val"]["acc"] == pytest.approx(0.7)
    assert log.exit_code == 0
    assert finished.stat().st_size > 2 * BLOCK  # the config record crossed block boundaries


def test_a_file_read_while_it_grows_gives_the_same_run(finished: Path, tmp_path: Path) -> None:
    """Appended a few bytes at a time (any cut: mid-header, mid-chunk, mid-record), each poll
    reads what is complete and the next one picks up from there."""
    data = finished.read_bytes()
    growing = tmp_path / "run-grow.wandb"
    growing.write_bytes(b"")
    reader = RunFileReader(growing)
    rows = []
    cuts = sorted({*range(0, len(data), 997), *range(0, 64), len(data)})
    for cut in cuts:
        growing.write_bytes(data[:cut])
        rows += reader.poll()
    whole = read_run(finished)
    assert rows == whole.history
    assert (reader.log.config, reader.log.summary) == (whole.config, whole.summary)
    assert reader.log.exit_code == 0


def test_history_is_readable_while_the_program_still_runs(tmp_path: Path) -> None:
    """What hyperband needs: wandb writes each logged row before the run ends (within the
    flush interval the agent sets)."""
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    process = subprocess.Popen(
        [sys.executable, str(program), "hang"],
        env=_env(tmp_path, "live1"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "logged\n"
        deadline = time.monotonic() + 10
        reader = None
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("wandb/offline-run-*-live1/run-live1.wandb"))
            reader = reader or (RunFileReader(found[0]) if found else None)
            if reader is not None:
                reader.poll()
                if len(reader.log.history) == 3:
                    break
            time.sleep(0.1)
        assert reader is not None and len(reader.log.history) == 3
        assert reader.log.exit_code is None  # still running
    finally:
        process.kill()
        process.wait()


def test_damage_and_foreign_files_are_refused(finished: Path, tmp_path: Path) -> None:
    damaged = bytearray(finished.read_bytes())
    damaged[200] ^= 0xFF
    path = tmp_path / "damaged.wandb"
    path.write_bytes(bytes(damaged))
    with pytest.raises(RunFileError, match="damaged chunk"):
        read_run(path)
    foreign = tmp_path / "foreign.wandb"
    foreign.write_bytes(b"not a wandb log at all")
    with pytest.raises(RunFileError, match="not a wandb run file"):
        read_run(foreign)
    assert sum(1 for _ in records(finished)) > 5

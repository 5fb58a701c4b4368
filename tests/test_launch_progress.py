"""Issue 19 §4/§4b: a fast start, and progress a user can watch (real `sweeper` processes)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, wait_for, write_spec
from helpers import sweeper


def _runs(store: Path) -> list[dict[str, Any]]:
    from sweeper.backends.local import LocalBackend

    backend = LocalBackend(store, create=False, readonly=True)
    try:
        return [backend.run(run_id) for run_id in backend.runs(backend.sweeps()[0].id)["run_id"]]
    finally:
        backend.close()


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_a_trainer_without_torch_never_imports_it(tmp_path: Path) -> None:
    """The agent imports torch (2-3 s) only for a trainer that uses it: neither the agent's
    warm-up nor the trial's device record may import it for one that does not."""
    spec = {
        "name": "torchless",
        "trainer": "torchless",
        "metric": {"name": "loss", "goal": "minimize"},
        "search": {"x": [0.0, 1.0]},
    }
    store = tmp_path / "s.db"
    result = sweeper(
        "launch",
        str(write_spec(tmp_path, spec)),
        "--store",
        str(store),
        "--wandb",
        "disabled",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = _runs(store)
    assert [run["state"] for run in runs] == ["finished", "finished"]
    assert [run["summary"]["torch_imported"] for run in runs] == [0.0, 0.0]
    assert {run["meta"]["device"] for run in runs} == {"auto"}


@pytest.mark.slow
def test_a_finished_launch_run_again_says_it_is_complete(tmp_path: Path) -> None:
    """Re-running a finished launch (plain sweep or spec) prints `3/3 finished` and the
    table again, never an empty `0/?` bar, and starts no trial."""
    spec = write_spec(tmp_path, probe_spec(base={"epochs": 1}))
    plain = tmp_path / "plain" / "sweep.yaml"
    plain.parent.mkdir()
    plain.write_text(
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
        "parameters: {x: {values: [1, 2]}}\n"
    )
    (plain.parent / "train.py").write_text(
        "import wandb\nrun = wandb.init()\nwandb.log({'loss': run.config.x})\nrun.finish()\n"
    )
    for path, total in ((spec, 3), (plain, 2)):
        args = ("launch", str(path), "--store", str(tmp_path / "s.db"), "--wandb", "disabled")
        first = sweeper(*args, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        again = sweeper(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"is complete: {total}/{total} finished" in again.stdout, again.stdout
        assert "0/?" not in again.stdout and f"{total}/{total}" in again.stdout
        assert "best" in again.stdout  # the table and best line are printed again


def _screen(output: str) -> str:
    """A terminal's output as the lines it drew: control sequences and carriage returns out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "\n")


@pytest.mark.slow
def test_the_bar_shows_each_trials_epoch_metric_and_time_and_an_eta(tmp_path: Path) -> None:
    """On a terminal, a running trial has its own line (epoch k of n, the last value of the
    sweep's metric, its own time) and the sweep's bar its elapsed time, then an ETA once a
    trial has finished: not `0/2 -:--:--` until the end."""
    spec = probe_spec(base={"epochs": 3, "epoch_seconds": 0.7}, search={"x": [0.0, 2.0]})
    store = ("--store", str(tmp_path / "s.db"), "--wandb", "disabled")
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", str(write_spec(tmp_path, spec)), *store],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stderr
    screen = _screen(result.stdout)
    trial = re.compile(r"^  [a-z0-9]{8} CPU .* epoch ([123])/3 loss ([0-9.]+) +(\d+:\d\d)", re.M)
    seen = {(int(m[1]), float(m[2])) for m in trial.finditer(screen)}
    assert len(seen) >= 2, screen[-3000:]  # two epochs' lines at least, each with its value
    assert all(loss == pytest.approx(1 + 1 / epoch, abs=1e-3) for epoch, loss in seen), seen
    assert re.search(r"^probe .* 0/2 +\d+:\d\d elapsed", screen, re.M), screen[-3000:]
    assert re.search(
        r"^probe .* 1/2 .*best loss [0-9.]+ +\d+:\d\d elapsed, eta \d+:\d\d", screen, re.M
    )
    assert "-:--:--" not in screen


@pytest.mark.slow
def test_train_prints_a_compact_progress_line_and_honours_cpus_per_trial(tmp_path: Path) -> None:
    """`train` prints about ten progress lines for a whole run when not on a terminal (not
    one per epoch), each with epoch k of n, the metric and the time, and runs torch with the
    spec's agents.cpus_per_trial threads, as an agent does."""
    spec = probe_spec(base={"epochs": 40}, agents={"cpus_per_trial": 1})
    path = write_spec(tmp_path, spec)
    result = sweeper("train", "probe", str(path), "--store", str(tmp_path / "s.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(progress) == 10, result.stdout
    assert re.fullmatch(r"epoch 40/40  loss [0-9.]+  .*\d+:\d\d", progress[-1]), progress
    assert "threads=1" in result.stdout  # the summary line: the trial's torch threads
    bad = write_spec(tmp_path, {**spec, "agents": {"cpus_per_trial": 0}})
    refused = sweeper("train", "probe", str(bad), "--store", str(tmp_path / "s.db"), cwd=tmp_path)
    assert refused.returncode == 2 and "agents.cpus_per_trial" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_the_first_agent_imports_while_launch_makes_the_sweep(tmp_path: Path) -> None:
    """§4b: `launch` starts its first agent before it validates the spec and makes the sweep
    (sweeper.agent.prestart), so the agent's imports overlap launch's; that process then runs
    as the agent, logging where a directly started one would, and the trials run as before."""
    spec = probe_spec(base={"epochs": 2, "epoch_seconds": 1.0}, search={"x": [0.0, 1.0]})
    store = tmp_path / "s.db"
    args = ["launch", str(write_spec(tmp_path, spec)), "--store", str(store), "--wandb", "disabled"]
    launch = subprocess.Popen(
        [sys.executable, "-m", "sweeper", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: store.exists() and _agent_of_running(store) is not None, 120, "a trial")
        agent = _agent_of_running(store)
        assert agent is not None
        pid = int(agent.split("-")[-2])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"sweeper.cli.standby" in cmdline, cmdline
    finally:
        _, err = launch.communicate(timeout=300)
    assert launch.returncode == 0, err
    assert [run["state"] for run in _runs(store)] == ["finished", "finished"]
    (log,) = (store.parent / "agents").glob("*.log")
    assert "trial" in log.read_text()


def _agent_of_running(store: Path) -> str | None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(store)) as db:
        try:
            row = db.execute("SELECT agent FROM runs WHERE state = 'running'").fetchone()
        except sqlite3.OperationalError:  # the store is still being made
            return None
    return row[0] if row else None


def _record(name: str, config: dict[str, Any]) -> Any:
    from sweeper.backends.base import SweepRecord

    return SweepRecord(
        id="abc123", name=name, project="p", trainer="xor", config=config, spec={},
        spec_hash="h", spec_path=None, state="running", exhausted=False, study=None, stage=0,
        stage_name=None, carried={}, created_at=0.0,
    )  # fmt: skip


def test_launch_announces_each_stage_literally_and_says_an_endless_search_runs_until_stopped(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    from sweeper.agent.progress import LaunchBar
    from sweeper.backends.local import LocalBackend

    backend = LocalBackend(tmp_path / "s.db")
    console = Console(record=True, width=200, color_system=None)
    bar = LaunchBar(console, backend)
    bayes = {"method": "bayes", "metric": {"name": "m", "goal": "maximize"}, "parameters": {}}
    bar.start_stage(_record("[bold]odd\x1b[2J", bayes), resumed=False)
    bar.start_stage(_record("capped", {**bayes, "run_cap": 5}), resumed=True)
    backend.close()
    lines = console.export_text().splitlines()
    assert lines == [
        f"sweep abc123 [bold]odd (created, {backend.where})",
        "  bayes search with no run_cap: runs until stopped",
        f"sweep abc123 capped (resumed, {backend.where})",
    ]


def test_a_sweeps_end_counts_failed_and_crashed_runs_and_names_the_first() -> None:
    import pandas as pd

    from sweeper.agent.progress import sweep_end

    runs = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4"],
            "state": ["finished", "crashed", "failed", "running"],
            "error": [None, "killed by signal 9\nmore", "ValueError", None],
        }
    )
    end = sweep_end(runs)
    assert (end.runs, end.failed, end.first_failure, end.any_done) == (
        4, 2, ("r2", "killed by signal 9"), True,
    )  # fmt: skip
    failed_only = sweep_end(runs[runs["state"] == "failed"])
    assert (failed_only.failed, failed_only.any_done) == (1, False)
    no_reason = sweep_end(pd.DataFrame({"run_id": ["r9"], "state": ["failed"], "error": [None]}))
    assert no_reason.first_failure == ("r9", "no reason recorded")
    assert sweep_end(runs.iloc[0:0]) == type(end)(0, 0, None, False)

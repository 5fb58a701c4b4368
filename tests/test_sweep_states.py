"""`sweeper pause|resume|stop|cancel` on the local store, with W&B's meanings ("Pause, resume,
stop and cancel sweeps": https://docs.wandb.ai/guides/sweeps/pause-resume-and-cancel-sweeps/):
the state each verb sets, what `status` and `sweeps` show, the states of a store written before
them, and real agents (and a launch) under each state. The verbs on the W&B backend are in
test_backend_protocol.py (every backend) and test_backend_wandb.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import probe_spec, start_agent, wait_for, write_spec
from helpers import fill_sweep, sweeper
from testing_trainers import probe_loss
from typer.testing import CliRunner

from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.sweep import SweepState


def cli(*args: str) -> Result:
    """The real command, in this process."""
    return CliRunner().invoke(app, list(args))


def _one_line_refusal(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_each_verb_sets_its_state_and_status_shows_it(
    backend: LocalBackend, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(probe_spec())
    for verb, state in [
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "finished"),
        ("resume", "running"),  # wandb's client resumes a sweep in any state
        ("cancel", "canceled"),
    ]:
        result = cli(verb, sweep_id, "--store", str(store))
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"sweep {sweep_id} probe [{state}]: "), result.stdout
        assert backend.sweep(sweep_id).state == state
        shown = cli("status", sweep_id, "--store", str(store))
        assert f"sweep {sweep_id} probe [{state}]" in shown.stdout, shown.output
        listed = cli("sweeps", "--store", str(store))
        row = next(line for line in listed.stdout.splitlines() if sweep_id in line)
        assert f" {state} " in row, listed.stdout


def test_a_spec_path_names_its_latest_sweep(backend: LocalBackend, tmp_path: Path) -> None:
    from sweeper.agent.launch import create_stage
    from sweeper.spec.load import load_spec

    spec = write_spec(tmp_path, probe_spec())
    older, newer = (create_stage(backend, load_spec(spec)) for _ in range(2))
    result = cli("pause", str(spec), "--store", str(backend.path))
    assert result.exit_code == 0, result.output
    assert backend.sweep(newer).state == SweepState.PAUSED
    assert backend.sweep(older).state == SweepState.RUNNING


def test_a_refused_change_a_bad_sweep_or_store_is_one_line_and_exit_2(
    backend: LocalBackend, make_sweep: Any, store: Path, tmp_path: Path
) -> None:
    sweep_id = make_sweep(probe_spec())
    assert cli("stop", sweep_id, "--store", str(store)).exit_code == 0
    for verb in ("pause", "cancel"):
        refused = cli(verb, sweep_id, "--store", str(store))
        _one_line_refusal(refused, f"cannot {verb} sweep {sweep_id}: it is already finished")
    assert backend.sweep(sweep_id).state == SweepState.FINISHED, "a refusal changes nothing"
    _one_line_refusal(cli("pause", "nosuch", "--store", str(store)), "'nosuch'")
    _one_line_refusal(cli("cancel", sweep_id, "--store", str(tmp_path / "none.db")), "store")


def test_stores_written_before_the_four_states_read_as_they_meant(
    backend: LocalBackend, make_sweep: Any
) -> None:
    """The previous code wrote running, finished, or stopped (sent to W&B as CANCELED). A
    command that only reads migrates nothing (opened to write, backends/schema.py migrates
    `stopped`; test_store_schema.py): each state reads as it meant (SweepState.read)."""
    ids = {old: make_sweep(probe_spec()) for old in ("running", "finished", "stopped")}
    backend.close()
    with contextlib.closing(sqlite3.connect(backend.path)) as db, db:
        for old, sweep_id in ids.items():
            db.execute("UPDATE sweeps SET state = ? WHERE id = ?", (old, sweep_id))
    reopened = LocalBackend(backend.path, create=False, readonly=True)
    try:
        states = {old: reopened.sweep(sweep_id).state for old, sweep_id in ids.items()}
        assert states == {"running": "running", "finished": "finished", "stopped": "canceled"}
        assert reopened.is_complete(ids["stopped"]) and not reopened.is_complete(ids["running"])
    finally:
        reopened.close()
    shown = cli("status", ids["stopped"], "--store", str(backend.path))
    assert f"sweep {ids['stopped']} probe [canceled]" in shown.stdout, shown.output


def test_a_sweep_with_nothing_left_and_no_run_active_is_finished(
    backend: LocalBackend, make_sweep: Any
) -> None:
    """W&B's server finishes such a sweep itself; so does the store's coordinator."""
    sweep_id = make_sweep(probe_spec(search={"x": [0.0, 1.0]}))
    first, second = backend.claim(sweep_id, "a"), backend.claim(sweep_id, "b")
    assert first is not None and second is not None
    assert backend.claim(sweep_id, "c") is None
    backend.finish(first.run_id, first.attempt, "finished", {"loss": 1.0})
    assert backend.claim(sweep_id, "c") is None
    assert backend.sweep(sweep_id).state == SweepState.RUNNING, "a run is still active"
    backend.finish(second.run_id, second.attempt, "finished", {"loss": 2.0})
    assert backend.claim(sweep_id, "c") is None
    assert backend.sweep(sweep_id).state == SweepState.FINISHED
    # what `launch` and the report's helpers also write: the same state again changes nothing
    filled = make_sweep(probe_spec(search={"x": [2.0]}))
    fill_sweep(backend, filled, lambda params: [{"loss": probe_loss(params["x"], 0)}])
    assert backend.sweep(filled).state == SweepState.FINISHED


# ---- real agents ----------------------------------------------------------------------------


class Lines:
    """A child process's output lines as they come (read on a thread: a pipe blocks)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stdout = process.stdout
        self._thread = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._thread.start()

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            self.lines.append(line)

    def count(self, text: str) -> int:
        """How often `text` was said (rich wraps a long line at 80 columns in a pipe)."""
        return " ".join("".join(self.lines).split()).count(text)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until a line holds `text`; else fail showing the output so far."""
        try:
            wait_for(lambda: self.count(text) >= 1, timeout=timeout, what=repr(text))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; output:\n{''.join(self.lines)}") from None

    def join(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


@pytest.mark.slow  # an agent process (torch import) that waits through a pause
def test_an_agent_waits_through_a_pause_and_finishes_after_resume(
    backend: LocalBackend, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(probe_spec(search={"x": [0.0, 1.0]}, base={"epochs": 1}))
    assert cli("pause", sweep_id, "--store", str(store)).exit_code == 0
    agent = start_agent(sweep_id, store)
    out = Lines(agent)
    out.wait_for("is paused: waiting for a resume")
    time.sleep(2.5)  # two more claims at least (one a second): still nothing handed out
    assert agent.poll() is None and len(backend.runs(sweep_id)) == 0, out.join()
    assert cli("resume", sweep_id, "--store", str(store)).exit_code == 0
    assert agent.wait(timeout=120) == 0, out.join()
    text = out.join()
    assert out.count("is paused") == 1, text
    assert sorted(backend.runs(sweep_id)["state"]) == ["finished", "finished"]
    assert backend.sweep(sweep_id).state == SweepState.FINISHED


@pytest.mark.slow  # an agent process (torch import) and a trial of several epochs
def test_cancel_stops_the_running_trial_at_an_epoch_with_its_summary(
    backend: LocalBackend, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(
        probe_spec(search={"x": [3.0, 4.0]}, base={"epochs": 40, "epoch_seconds": 0.25})
    )
    agent = start_agent(sweep_id, store)
    out = Lines(agent)

    def epochs() -> int:
        return len(backend.history(list(backend.runs(sweep_id)["run_id"])))

    wait_for(lambda: epochs() >= 1, what="the trial's first epoch")
    cancelled = cli("cancel", sweep_id, "--store", str(store))
    assert cancelled.exit_code == 0 and "[canceled]" in cancelled.stdout, cancelled.output
    assert agent.wait(timeout=60) == 0, out.join()
    (run_id,) = backend.runs(sweep_id)["run_id"]  # the second point was never handed out
    run = backend.run(run_id)
    assert run["state"] == "stopped", out.join()
    logged = epochs()
    assert 1 <= logged < 40
    assert run["summary"]["loss"] == pytest.approx(probe_loss(3.0, logged - 1))
    assert backend.sweep(sweep_id).state == SweepState.CANCELED


@pytest.mark.slow  # an agent process (torch import) and a trial of several epochs
def test_stop_lets_the_running_trial_finish_and_hands_out_no_more(
    backend: LocalBackend, make_sweep: Any, store: Path
) -> None:
    """An idle agent of the stopped sweep exits at once, as W&B's server tells it to, while
    the running trial goes on to its last epoch under its own agent."""
    sweep_id = make_sweep(
        probe_spec(search={"x": [3.0, 4.0]}, base={"epochs": 40, "epoch_seconds": 0.5})
    )
    agent = start_agent(sweep_id, store)
    out = Lines(agent)
    wait_for(
        lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 1,
        what="the trial's first epoch",
    )
    stopped = cli("stop", sweep_id, "--store", str(store))
    assert stopped.exit_code == 0 and "[finished]" in stopped.stdout, stopped.output
    idle = start_agent(sweep_id, store)
    assert idle.wait(timeout=60) == 0
    (run_id,) = backend.runs(sweep_id)["run_id"]
    assert backend.run(run_id)["state"] == "running", "the idle agent did not wait for it"
    assert agent.wait(timeout=90) == 0, out.join()
    assert backend.run(run_id)["state"] == "finished"
    assert len(backend.history([run_id])) == 40, "it ran every epoch"
    assert backend.sweep(sweep_id).state == SweepState.FINISHED


@pytest.mark.slow  # a launch (agent processes) waiting through a pause
def test_launch_on_a_paused_sweep_waits_and_says_so_once(tmp_path: Path, store: Path) -> None:
    spec = write_spec(
        tmp_path,
        probe_spec(search={"x": [0.0, 1.0, 2.0]}, base={"epochs": 2, "epoch_seconds": 0.3}),
    )
    launch = subprocess.Popen(
        [sys.executable, "-m", "sweeper", "launch", str(spec), "--agents", "1", "--wandb",
         "disabled", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    out = Lines(launch)
    wait_for(store.exists, what="the store")
    backend = LocalBackend(store, create=False)
    try:
        wait_for(lambda: any(len(backend.runs(s.id)) for s in backend.sweeps()), what="a trial")
        assert cli("pause", str(spec), "--store", str(store)).exit_code == 0
        out.wait_for("is paused: no new trials")
        sweep_id = backend.sweeps()[0].id
        before = len(backend.runs(sweep_id))
        time.sleep(2.5)  # the running trial ends; no new one starts
        assert launch.poll() is None and len(backend.runs(sweep_id)) == before < 3, out.join()
        assert cli("resume", str(spec), "--store", str(store)).exit_code == 0
        assert launch.wait(timeout=180) == 0, out.join()
        text = out.join()
        assert out.count("is paused: no new trials") == 1, text
        assert out.count(f"sweep {sweep_id} resumed") == 1, text
        assert sorted(backend.runs(sweep_id)["state"]) == ["finished"] * 3
        assert backend.sweep(sweep_id).state == SweepState.FINISHED
    finally:
        backend.close()


# ---- the W&B backend (the stand-in server) --------------------------------------------------

ENTITY, PROJECT = "standin", "sweeper-states"


def _wandb_sweep(store: Path, tmp_path: Path, **overrides: Any) -> str:
    """A probe sweep made on the stand-in, as `launch` makes it; its entity/project/id path.

    This process's wandb service is shut down after: the `sweeper` processes the test starts
    must each start their own, as a user's do (one that inherits WANDB_SERVICE attaches to
    it instead, and wandb 0.31 then prints a traceback when it exits early).
    """
    import wandb

    from sweeper.agent.launch import create_stage
    from sweeper.backends.wandb import WandbBackend
    from sweeper.spec.load import load_spec

    spec = write_spec(tmp_path, probe_spec(project=PROJECT, **overrides))
    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    try:
        return create_stage(backend, load_spec(spec))
    finally:
        backend.close()
        wandb.teardown()


@pytest.mark.slow  # one `sweeper` process per command (each imports wandb)
def test_the_verbs_set_the_sweeps_state_on_w_and_b(
    wandb_server: Any, store: Path, tmp_path: Path
) -> None:
    path = _wandb_sweep(store, tmp_path)
    server_sweep = wandb_server.sweeps[path.rsplit("/", 1)[1]]
    for verb, state in [("pause", "paused"), ("resume", "running"), ("stop", "finished")]:
        result = sweeper(verb, path)  # an entity/project/id path: the W&B backend
        assert result.returncode == 0, result.stderr
        assert f"sweep {path} probe [{state}]: " in result.stdout, result.stdout
        assert server_sweep.state == state.upper()
    shown = sweeper("status", path)
    assert shown.returncode == 0 and f"sweep {path} probe [finished]" in shown.stdout, shown
    refused = sweeper("cancel", path)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert f"cannot cancel sweep {path}: it is already finished" in lines[0]
    assert server_sweep.state == "FINISHED"
    missing = sweeper("pause", f"{ENTITY}/{PROJECT}/nosuch00")
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1 and "nosuch00" in lines[0], missing.stderr


def _wandb_agent(path: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb",
         "--threads", "1", "--heartbeat-timeout", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.slow  # an agent process on the stand-in
def test_an_agent_on_w_and_b_waits_through_a_pause_and_finishes_after_resume(
    wandb_server: Any, store: Path, tmp_path: Path
) -> None:
    path = _wandb_sweep(store, tmp_path, search={"x": [0.0, 1.0]}, base={"epochs": 1})
    server_sweep = wandb_server.sweeps[path.rsplit("/", 1)[1]]
    assert sweeper("pause", path).returncode == 0
    agent = _wandb_agent(path)
    out = Lines(agent)
    out.wait_for("is paused: waiting for a resume")
    time.sleep(2.5)  # two more heartbeats at least: the server hands out nothing
    assert agent.poll() is None and not server_sweep.run_ids, out.join()
    assert sweeper("resume", path).returncode == 0
    assert agent.wait(timeout=180) == 0, out.join()
    runs = [wandb_server.runs[run_id] for run_id in server_sweep.run_ids]
    assert sorted(run.state for run in runs) == ["finished", "finished"], out.join()
    assert server_sweep.state == "FINISHED"


@pytest.mark.slow  # an agent process on the stand-in and a trial of several epochs
def test_cancel_on_w_and_b_stops_the_running_trial_with_its_summary(
    wandb_server: Any, store: Path, tmp_path: Path
) -> None:
    path = _wandb_sweep(
        store, tmp_path, search={"x": [3.0, 4.0]}, base={"epochs": 60, "epoch_seconds": 0.25}
    )
    server_sweep = wandb_server.sweeps[path.rsplit("/", 1)[1]]
    agent = _wandb_agent(path)
    out = Lines(agent)
    wait_for(lambda: len(server_sweep.run_ids) == 1, timeout=90, what="the trial's run")
    (run,) = [wandb_server.runs[run_id] for run_id in server_sweep.run_ids]
    # its history reaches the server in wandb-core's periodic uploads: wait on its state
    wait_for(lambda: run.state == "running", timeout=60, what="the trial's run to start")
    time.sleep(1.0)
    cancelled = sweeper("cancel", path)
    assert cancelled.returncode == 0 and "[canceled]" in cancelled.stdout, cancelled.stderr
    assert agent.wait(timeout=90) == 0, out.join()
    assert len(server_sweep.run_ids) == 1, "the second point was never handed out"
    assert run.state == "killed" and run.exitcode == 0, (run.state, out.join())
    assert 1 <= len(run.history) < 60 and "loss" in run.summary
    assert server_sweep.state == "CANCELED"

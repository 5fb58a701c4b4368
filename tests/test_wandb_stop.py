"""A stop from W&B ends a trial `stopped`, on every path that runs one against a W&B server.

W&B stops a run (the App's "Stop run", which `WandbServer.stop_run` stands for; hyperband on
the server; a cancelled sweep) by answering the run's file_stream `"stopped": true`. wandb's
stop checker in the run's own process polls for that (wandb/sdk/lib/run_stopping.py, every
15 s) and interrupts the main thread with SIGINT (wandb/sdk/lib/interrupt.py); the server's
agent heartbeat says `stop` too. The trial ends at its next epoch boundary with its summary
and checkpoint, and the run ends `killed` (W&B's state for a stopped run), never preempted and
handed to the next agent. The rule for each signal: sweeper/agent/loop.py.

wandb hears `stopped` only in the answer to a file_stream POST, which wandb-core sends every
15 s while the run logs and every 30 s when it logs nothing (tests/wandb_server/quick_stop.py);
on W&B, a trial whose epoch outlasts that and the 15 s poll gets wandb's SIGINT inside the
epoch the stop came in. Here the children run in `quick_stop_env` (both intervals 1 s) and the
probe logs a batch row a second, as a trainer that logs its batches does, so wandb's SIGINT
lands within about 2 s, inside a 6 s epoch. (With 0.2 s epochs a trial is over before it.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, wait_for, write_spec
from wandb_server import WandbServer, quick_stop_env

from sweeper.backends.base import STOPPED_EXIT, Claim
from sweeper.sweep import RunState

ENTITY = "standin"
PROJECT = "sweeper-stop"
EPOCHS = 4
EPOCH_SECONDS = 6.0
"""Longer than wandb's stop check takes in quick_stop_env (about 2 polls of 1 s)."""


def _spec(tmp_path: Path) -> Path:
    base = {"epochs": EPOCHS, "epoch_seconds": EPOCH_SECONDS, "batches": int(EPOCH_SECONDS)}
    return write_spec(tmp_path, probe_spec(project=PROJECT, search={"x": [0.0]}, base=base))


def _only_run(server: WandbServer) -> Any:
    """The sweep's one run, once the server has it (wandb.init made it)."""
    wait_for(lambda: len(server.runs) > 0, timeout=120, what="the trial's run")
    (run,) = {run.id: run for run in server.runs.values()}.values()
    return run


def _start(*command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=quick_stop_env(),
    )


def _assert_stopped_in_its_first_epoch(server: WandbServer, run: Any, out: str) -> None:
    """Killed on the server, with the one epoch it ran as its summary, and only one run."""
    assert run.state == "killed" and run.exitcode == 0, (run.state, run.exitcode, out)
    epochs = [row for row in run.history if "loss" in row]  # the rest are batch rows
    assert len(epochs) == 1, "it ended at the epoch boundary after the stop"
    assert run.summary["loss"] == epochs[-1]["loss"]
    assert run.summary["stopped_early"] is True
    assert len({r.id for r in server.runs.values()}) == 1, "no second run"
    assert "preempt" not in out and "(resumed" not in out, out


def test_a_child_that_exits_stopped_is_recorded_stopped_where_the_server_keeps_the_record(
    tmp_path: Path,
) -> None:
    """W&B keeps the record, so the agent knows a stopped trial by its child's exit code."""
    from sweeper.agent.loop import exit_record
    from sweeper.backends.wandb import WandbRunSink

    sink = WandbRunSink(Claim("run1", "e/p/s", 1, {}), tmp_path, None)
    assert exit_record(sink, STOPPED_EXIT, None) == (RunState.STOPPED, None)
    assert exit_record(sink, 0, None) == (RunState.FINISHED, None)


@pytest.mark.slow  # an agent and its trial in child processes, an epoch of 6 s
def test_a_user_stop_ends_an_agents_trial_stopped_with_its_summary_and_checkpoint(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """`sweeper agent --backend wandb`: wandb's SIGINT in the trial is W&B's stop, not the
    node going away (that is SIGTERM): no preempting mark, no requeue."""
    from sweeper.agent.launch import create_stage
    from sweeper.backends.wandb import WandbBackend
    from sweeper.spec.load import load_spec

    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    path = create_stage(backend, load_spec(_spec(tmp_path)))
    # a heartbeat a second: the agent's `stop` and wandb's SIGINT both reach the trial
    agent = _start(
        sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb",
        "--heartbeat-timeout", "6",
    )  # fmt: skip
    run = _only_run(wandb_server)
    wandb_server.stop_run(run.id)
    out, _ = agent.communicate(timeout=120)

    assert agent.returncode == 0, out
    _assert_stopped_in_its_first_epoch(wandb_server, run, out)
    assert f"trial {run.id} stopped" in out
    assert (store.parent / "runs" / run.id / "checkpoint.pt").is_file()
    assert backend.counts(path) == {"stopped": 1} and backend.is_complete(path)


@pytest.mark.slow  # launch, its agent and the trial in child processes, an epoch of 6 s
def test_a_user_stop_ends_a_launched_trial_stopped_and_the_launch_completes(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """`sweeper launch --backend wandb`: the same through the agents launch starts."""
    launch = _start(
        sys.executable, "-m", "sweeper", "launch", str(_spec(tmp_path)), "--backend", "wandb",
        "--heartbeat-timeout", "6",
    )  # fmt: skip
    run = _only_run(wandb_server)
    wandb_server.stop_run(run.id)
    out, _ = launch.communicate(timeout=180)

    assert launch.returncode == 0, out
    _assert_stopped_in_its_first_epoch(wandb_server, run, out)
    logs = "".join(log.read_text() for log in (store.parent / "agents").glob("*.log"))
    assert f"trial {run.id} stopped" in logs and "preempt" not in logs, logs
    assert (store.parent / "runs" / run.id / "checkpoint.pt").is_file()


@pytest.mark.slow  # wandb's own agent and the trial in child processes, an epoch of 6 s
def test_a_user_stop_ends_a_stock_wandb_agents_trial_stopped(
    wandb_server: WandbServer, tmp_path: Path
) -> None:
    """`wandb agent` running `python -m sweeper.agent.wandb_agent_trial` (a compiled sweep):
    W&B's agent sends SIGTERM, wandb's stop checker SIGINT; both stop the trial. (It keeps no
    checkpoint there: its working folder is the user's.)"""
    compiled = tmp_path / "sweep.yaml"
    made = subprocess.run(
        [sys.executable, "-m", "sweeper", "compile", str(_spec(tmp_path)), "-o", str(compiled)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    created = subprocess.run(
        [sys.executable, "-m", "wandb", "sweep", "--entity", ENTITY, str(compiled)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    (sweep,) = wandb_server.sweeps.values()
    agent = _start(
        sys.executable, "-m", "wandb", "agent", "--count", "1", f"{ENTITY}/{PROJECT}/{sweep.id}"
    )
    run = _only_run(wandb_server)
    wandb_server.stop_run(run.id)
    out, _ = agent.communicate(timeout=120)

    assert agent.returncode == 0, out
    _assert_stopped_in_its_first_epoch(wandb_server, run, out)


PROGRAM = """
import time, wandb
run = wandb.init()
for epoch in range(run.config["epochs"]):
    time.sleep(1)
    run.log({"acc": epoch / 100})
run.finish()
"""


@pytest.mark.slow  # an agent and the user's program in child processes
def test_a_user_stop_of_a_plain_sweeps_program_ends_its_run_stopped(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """A plain W&B sweep: the user's program opens its own run, so wandb's stop checker
    interrupts the program itself (KeyboardInterrupt). The agent heartbeats once in 50 s here,
    so that SIGINT, not the agent's `stop`, is what ends the program."""
    from sweeper.backends.wandb import WandbBackend
    from sweeper.spec.load import load_sweep_file
    from sweeper.spec.plain import PlainSweep

    (tmp_path / "train.py").write_text(PROGRAM)
    sweep_file = tmp_path / "sweep.yaml"
    config = {
        "name": "mine",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"epochs": {"value": 60}},
    }
    sweep_file.write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_sweep_file(sweep_file)
    assert isinstance(loaded, PlainSweep)
    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    path = backend.create_sweep(
        loaded.config, trainer="", spec=loaded.record(), spec_hash=loaded.hash
    )
    agent = _start(
        sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb",
        "--heartbeat-timeout", "300",
    )  # fmt: skip
    run = _only_run(wandb_server)
    wait_for(lambda: len(run.history) > 0, timeout=60, what="the program's first epoch")
    wandb_server.stop_run(run.id)
    out, _ = agent.communicate(timeout=120)

    assert agent.returncode == 0, out
    assert run.state == "killed", (run.state, out)
    assert 0 < len(run.history) < 60 and run.summary["acc"] == run.history[-1]["acc"]
    assert f"trial {run.id} stopped" in out, out
    assert "failed" not in out and "preempt" not in out and "(resumed" not in out, out
    assert len({r.id for r in wandb_server.runs.values()}) == 1, "no second run"
    assert backend.counts(path) == {"stopped": 1}

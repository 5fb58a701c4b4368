"""The product's failure paths against a W&B server (the stand-in): a sweep deleted under its
agent, an API key revoked mid-run, a server that answers 5xx for minutes.

Each ends the agent (and `launch`) with one line and exit 2, never a traceback, and its running
trials end as the rule for that fault says (sweeper.agent.loop.Agent._end_on): a deleted
sweep's trials finish, as under W&B's own agent; a refused key or a server silent past
--outage-limit preempts them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, wait_for, write_spec
from wandb_server import WandbServer

from sweeper.spec.compile import compile_stage
from sweeper.spec.load import load_spec

ENTITY = "standin"
PROJECT = "sweeper-failures"

# Each test runs `sweeper agent` or `launch` in a child process against the stand-in.
pytestmark = pytest.mark.slow

QUICK = ("--heartbeat-timeout", "6", "--grace", "3")
"""A heartbeat a second, and at most 6 s waiting for one answer; 3 s to reach an epoch end."""


def _sweep(store: Path, tmp_path: Path, **base: Any) -> str:
    """A probe sweep over x in {0, 1} on the stand-in, made as `launch` makes it; its path.

    This process's wandb service is shut down after, so that the agent starts its own, as a
    user's does (one that inherits WANDB_SERVICE prints a traceback when it exits early).
    """
    import wandb

    from sweeper.backends.wandb import WandbBackend

    spec = write_spec(tmp_path, probe_spec(project=PROJECT, search={"x": [0.0, 1.0]}, base=base))
    loaded = load_spec(spec)
    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    try:
        return backend.create_sweep(
            compile_stage(loaded.spec), trainer="probe", spec={}, spec_hash=loaded.hash
        )
    finally:
        backend.close()
        wandb.teardown()


def _agent(path: str, *flags: str) -> subprocess.Popen[str]:
    """`sweeper agent` on the stand-in; its runs stream every second (wandb-core's default, 15
    s, would show a 10-s trial's history only at its end: `_training` would see it too late)."""
    env = {**os.environ, "WANDB__FILE_STREAM_TRANSMIT_INTERVAL": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb", *QUICK, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _runs(server: WandbServer) -> list[Any]:
    return list({run.id: run for run in server.runs.values()}.values())


def _training(server: WandbServer) -> Any:
    """The first run, once its history reached the server (it trains)."""
    wait_for(lambda: any(run.history for run in _runs(server)), timeout=90, what="a run training")
    return next(run for run in _runs(server) if run.history)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_deleted_sweep_lets_its_running_trial_finish_then_ends_the_agent_in_one_line(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """W&B's stock agent on SweepNotFoundError (wandb/wandb_agent.py): no new run, the
    running one finishes, then the agent ends."""
    path = _sweep(store, tmp_path, epochs=80, epoch_seconds=0.25)
    agent = _agent(path)
    run = _training(wandb_server)  # 20 s of epochs: deleted while it trains
    wandb_server.delete_sweep(path.rsplit("/", 1)[1])
    out, err = agent.communicate(timeout=90)
    assert agent.returncode == 2, out + err
    line = _one_line(err)
    assert line == f"error: W&B sweep {path} was deleted: the server answers its agent with 404"
    assert run.state == "finished" and len(run.history) == 80, "the running trial finished"
    assert _runs(wandb_server) == [run], "no trial started after the deletion"


def test_a_revoked_key_preempts_the_running_trial_and_ends_the_agent_in_one_line(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """Nothing a trial logs reaches W&B once the key is refused, nor would a stop: the agent
    preempts its trial at once (checkpointed, to resume) instead of training on for nothing."""
    path = _sweep(store, tmp_path, epochs=200, epoch_seconds=0.25)
    agent = _agent(path)
    run = _training(wandb_server)
    wandb_server.revoke_key()
    revoked = time.monotonic()
    out, err = agent.communicate(timeout=90)
    took = time.monotonic() - revoked
    assert agent.returncode == 2, out + err
    line = _one_line(err)
    assert line.startswith("error: W&B: heartbeat: the server refused the API key (HTTP 401"), line
    assert f"trial {run.id} preempted" in out, out
    assert took < 30, f"{took:.0f} s: ended at once, not after the trial's 50 s of epochs"


def test_a_server_answering_5xx_past_the_outage_limit_ends_the_agent_in_one_line(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """Within --outage-limit the agent keeps its trial and retries (test_backend_wandb's
    short outage); past it, it preempts the trial and ends, rather than wait forever."""
    path = _sweep(store, tmp_path, epochs=200, epoch_seconds=0.25)
    agent = _agent(path, "--outage-limit", "10")  # past one heartbeat's 6 s wait
    run = _training(wandb_server)
    wandb_server.set_unreachable(True)
    down = time.monotonic()
    out, err = agent.communicate(timeout=120)
    took = time.monotonic() - down
    assert agent.returncode == 2, out + err
    line = _one_line(err)
    assert line.startswith("error: W&B: heartbeat: "), line
    assert "(--outage-limit 10)" in line, line
    assert "trials keep running, retrying" in out, "the outage was waited out first"
    assert f"trial {run.id} preempted" in out, out
    assert 10 < took < 50, f"{took:.0f} s"


def _launch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", *args, "--backend", "wandb", *QUICK[:2]],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_cap_ends_a_wandb_launch_as_it_ends_a_local_one(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """W&B's server hands out no run past `run_cap` and tells the agents `exit`."""
    spec = write_spec(
        tmp_path,
        probe_spec(project=PROJECT, search={"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}, run_cap=3),
    )
    launched = _launch(str(spec), "--agents", "2")
    assert launched.returncode == 0, launched.stdout + launched.stderr
    runs = _runs(wandb_server)
    assert len(runs) == 3 and {run.state for run in runs} == {"finished"}
    (sweep,) = wandb_server.sweeps.values()
    assert sweep.state == "FINISHED"


PROGRAM = """
import wandb
run = wandb.init()
wandb.log({"acc": float(run.config["x"])})
run.finish()
"""


def test_a_reached_metric_target_ends_a_wandb_launch(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """W&B docs, "Sweep configuration options" (`metric.target`): once a run reaches it, the
    sweep is finished: no new runs; the launch ends with it."""
    import yaml

    (tmp_path / "train.py").write_text(PROGRAM)
    config = {
        "name": "target",
        "project": PROJECT,
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize", "target": 2},
        "parameters": {"x": {"values": [1, 2, 3, 4, 5]}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    launched = _launch(str(path))
    assert launched.returncode == 0, launched.stdout + launched.stderr
    runs = _runs(wandb_server)
    assert sorted(run.config["x"] for run in runs) == [1, 2], "none after the target was met"
    (sweep,) = wandb_server.sweeps.values()
    assert sweep.state == "FINISHED"


def _trial_process(root: int, run_id: str) -> int:
    """The pid of the process below `root` that runs `run_id`: the agent's forked child
    whose stdout is the run's output.log (sweeper.agent.loop._child_main)."""
    below = [root]
    while below:
        pid = below.pop()
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/1").endswith(f"/{run_id}/output.log"):
                return pid
        with contextlib.suppress(OSError):
            below += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    raise AssertionError(f"no process below {root} runs {run_id}")


def test_launch_fails_a_trial_whose_child_was_killed_at_once_on_wandb(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """The agent saw its child die: it ends the run failed itself (W&B: "Run ended with a
    non-zero exit status", docs "Run states"), not leaving it running until the server's
    crash timeout (W&B: about 5 minutes without a heartbeat)."""
    wandb_server.state.crash_after_s = 600.0  # never reached in this test
    launch = _long_launch(tmp_path)
    run = _training(wandb_server)
    os.kill(_trial_process(launch.pid, run.id), signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: run.state != "running", timeout=30, what="the killed run's end on W&B")
    assert time.monotonic() - killed < 20
    assert (run.state, run.exitcode) == ("failed", 1)
    assert run.summary["error"] == "trial process died (killed by SIGKILL)", run.summary
    out, err = launch.communicate(timeout=120)
    assert launch.returncode == 2, out + err
    assert "no run finished with metric 'loss'" in _one_line(err)


def _long_launch(tmp_path: Path, *flags: str) -> subprocess.Popen[str]:
    """`launch --backend wandb` of one long trial (50 s of epochs)."""
    base = {"epochs": 200, "epoch_seconds": 0.25}
    spec = write_spec(tmp_path, probe_spec(project=PROJECT, search={"x": [0.0]}, base=base))
    command = [sys.executable, "-m", "sweeper", "launch", str(spec), "--backend", "wandb"]
    return subprocess.Popen(
        [*command, *QUICK[:2], *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_launch_ends_in_one_line_on_a_revoked_key(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    launch = _long_launch(tmp_path)
    _training(wandb_server)
    wandb_server.revoke_key()
    revoked = time.monotonic()
    out, err = launch.communicate(timeout=120)
    assert launch.returncode == 2, out + err
    line = _one_line(err)
    assert line.startswith("error: sweep ") and "agents exited with codes [2]" in line, line
    assert "W&B: heartbeat: the server refused the API key (HTTP 401" in line, line
    assert time.monotonic() - revoked < 40


def test_launch_ends_in_one_line_when_the_server_answers_5xx_past_the_outage_limit(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    launch = _long_launch(tmp_path, "--outage-limit", "10")
    _training(wandb_server)
    wandb_server.set_unreachable(True)
    down = time.monotonic()
    out, err = launch.communicate(timeout=240)
    assert launch.returncode == 2, out + err
    line = _one_line(err)
    assert "agents exited with codes [2]" in line and "(--outage-limit 10)" in line, line
    # launch's own capped request waits add to the agents' limit (about 85 s here; no hang)
    assert time.monotonic() - down < 200

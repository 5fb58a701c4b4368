"""A `scheduler:` sweep on a W&B server (issue 23 §3), against the stand-in: `launch --backend
wandb` creates the sweep, runs its scheduler beside the agents as `wandb sweep-scheduler` does
(wandb's own `run_scheduler`, whose wandb-core queues suggestions with `enqueueSweepRun`), and
the agents run the queued runs the server hands them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from wandb_server import WandbServer

pytest.importorskip("optuna", reason="the optuna extra (uv sync --extra optuna)")

# `sweeper launch` in a child process against the stand-in.
pytestmark = pytest.mark.slow

ENTITY = "standin"
PROJECT = "sweeper-scheduler"

PROGRAM = """
import wandb
run = wandb.init()
x = float(run.config["x"])
wandb.log({"f1": x * x, "f2": (x - 2) ** 2})
run.finish()
"""
"""Two objectives of one parameter (their front: every x in [0, 2])."""


def _runs(server: WandbServer) -> list[Any]:
    return list({run.id: run for run in server.runs.values()}.values())


def test_launch_runs_the_scheduler_beside_its_agents_to_run_cap(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """The scheduler queues optuna's suggestions as runs of the sweep; two agents run them;
    no suggestion runs twice; the sweep ends FINISHED once run_cap runs have finished."""
    (tmp_path / "train.py").write_text(PROGRAM)
    config = {
        "name": "scheduled",
        "project": PROJECT,
        "program": "train.py",
        "method": "custom",
        "metrics": [{"name": "f1", "goal": "minimize"}, {"name": "f2", "goal": "minimize"}],
        "parameters": {"x": {"min": 0.0, "max": 4.0}},
        "scheduler": {"engine": "optuna"},
        "run_cap": 6,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    on_wandb = ["--backend", "wandb", "--entity", ENTITY, "--heartbeat-timeout", "6"]
    launched = subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", str(path), *on_wandb, "--agents", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    logs = "".join(log.read_text() for log in tmp_path.rglob("*scheduler.log"))
    (sweep,) = wandb_server.sweeps.values()
    assert sweep.state == "FINISHED", logs
    runs = [run for run in _runs(wandb_server) if run.sweep_id == sweep.id]
    table = [(r.id, r.state, r.agent_id, r.assigned, r.created_at) for r in runs]
    assert len(runs) == 6 and {run.state for run in runs} == {"finished"}, table
    assert len({run.assigned["x"]["value"] for run in runs}) == 6, "no suggestion ran twice"
    for run in runs:
        x = run.assigned["x"]["value"]
        assert run.config["x"] == x  # the agent ran the queued run with its own config
        assert (run.summary["f1"], run.summary["f2"]) == (x * x, (x - 2) ** 2)
    assert len({run.agent_id for run in runs}) == 2, "both agents ran the scheduler's runs"
    operations = set(wandb_server.operations())
    assert {"EnqueueSweepRun", "SweepConfig", "SweepWatchedRuns"} <= operations
    assert not wandb_server.errors

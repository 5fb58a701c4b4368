"""NaN and inf on W&B's paths, against the stand-in W&B server (tests/wandb_server).

W&B keeps non-finite floats: its client encodes them as the JSON constants NaN, Infinity and
-Infinity (wandb/sdk/lib/json_util.py, `inf_nan_mode="constants"`). Only a NaN in the sweep's
metric fails a run, on every path a trial can take: the stock `wandb agent` running a compiled
sweep, `sweeper launch --backend wandb`, and `sweeper sync` of a local sweep.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from wandb_server import WandbServer

from sweeper.backends.local import LocalBackend

ENTITY = "standin"
PROJECT = "sweeper-nonfinite"
NAN_OR_NOT = {"crash": ["none", "nan"]}


def _run(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _by_crash(server: WandbServer) -> dict[str, Any]:
    runs = list({run.id: run for run in server.runs.values()}.values())
    return {run.config["crash"]: run for run in runs}


def _nan_fails_and_the_other_finishes(server: WandbServer, out: str) -> None:
    runs = _by_crash(server)
    assert sorted(runs) == ["nan", "none"], out
    assert runs["none"].state == "finished" and runs["none"].exitcode == 0, out
    failed = runs["nan"]
    assert failed.state == "failed" and failed.exitcode != 0, out
    assert failed.summary["error"] == "the metric 'loss' is nan at step 0", failed.summary


@pytest.mark.slow  # `wandb sweep` + `wandb agent` over two trials: ~40 s
def test_the_stock_wandb_agent_fails_a_run_whose_metric_is_nan(
    wandb_server: WandbServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, probe_spec(project=PROJECT, search=NAN_OR_NOT, base={"epochs": 2}))
    compiled = tmp_path / "sweep.yaml"
    done = _run(sys.executable, "-m", "sweeper", "compile", str(spec), "-o", str(compiled))
    assert done.returncode == 0, done.stderr
    created = _run(sys.executable, "-m", "wandb", "sweep", "--entity", ENTITY, str(compiled))
    assert created.returncode == 0, created.stderr
    (sweep,) = wandb_server.sweeps.values()
    agent = _run(
        sys.executable, "-m", "wandb", "agent", "--count", "2", f"{ENTITY}/{PROJECT}/{sweep.id}"
    )
    _nan_fails_and_the_other_finishes(wandb_server, agent.stdout + agent.stderr)
    assert "Traceback" not in agent.stdout + agent.stderr


@pytest.mark.slow  # `sweeper launch --backend wandb` over two trials: ~40 s
def test_the_wandb_backend_fails_a_run_whose_metric_is_nan(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, probe_spec(project=PROJECT, search=NAN_OR_NOT, base={"epochs": 2}))
    done = _run(sys.executable, "-m", "sweeper", "launch", str(spec), "--backend", "wandb")
    _nan_fails_and_the_other_finishes(wandb_server, done.stdout + done.stderr)


@pytest.mark.slow  # sweeper sync in a child process, uploading through wandb-core
def test_sync_uploads_nan_and_inf_as_wandb_keeps_them(
    wandb_server: WandbServer, backend: LocalBackend, make_sweep: Any
) -> None:
    """History and summary reach W&B with their NaN and inf; a key a row did not log is not
    made up as NaN."""
    sweep_id = make_sweep(probe_spec(project=PROJECT, search={"x": [1.0]}))
    claim = backend.claim(sweep_id, "t")
    assert claim is not None
    assert backend.log(claim.run_id, claim.attempt, 0, {"acc": 0.5, "loss": math.nan})
    assert backend.log(claim.run_id, claim.attempt, 1, {"acc": math.inf, "grad": -math.inf})
    summary = {"acc": math.inf, "loss": math.nan, "grad": -math.inf}
    assert backend.finish(claim.run_id, claim.attempt, "finished", summary=summary)

    done = _run(sys.executable, "-m", "sweeper", "sync", sweep_id, "--entity", ENTITY)
    assert done.returncode == 0, done.stderr
    (run,) = {run.id: run for run in wandb_server.runs.values()}.values()
    first, second = run.history
    assert first["acc"] == 0.5 and math.isnan(first["loss"]) and "grad" not in first
    assert second["acc"] == math.inf and second["grad"] == -math.inf and "loss" not in second
    assert run.summary["acc"] == math.inf and run.summary["grad"] == -math.inf
    assert math.isnan(run.summary["loss"])

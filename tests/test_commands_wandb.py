"""`status`, `runs`, `report` and `compile --stage` on the W&B backend (the stand-in server).

One staged study is launched on the stand-in; then each command reads it by the names it takes
on the local store (a study id, a spec path, a sweep path), through the Backend protocol.
`sync` (local -> W&B) is tested in test_backend_wandb.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, write_spec
from wandb_server import WandbServer

# A launch on the stand-in and one `sweeper` process per command: not in the `-m "not slow"` loop.
pytestmark = pytest.mark.slow

ENTITY = "standin"
PROJECT = "sweeper-commands"
ON_WANDB = ("--backend", "wandb", "--entity", ENTITY, "--project", PROJECT)


def sweeper(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args], capture_output=True, text=True, timeout=timeout
    )


def _launch_study(server: WandbServer, tmp_path: Path) -> tuple[Path, str, list[Any]]:
    """A two-stage study run on the stand-in (x: 0 beats 3; then the learning rate): its
    spec file, its study id, and the server's two sweeps in stage order."""
    stages = [
        {"name": "x", "search": {"x": [0.0, 3.0]}},
        {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
    ]
    spec = write_spec(
        tmp_path, probe_spec(project=PROJECT, search={}, base={"epochs": 2}, stages=stages)
    )
    launched = sweeper("launch", str(spec), "--backend", "wandb", "--entity", ENTITY)
    assert launched.returncode == 0, launched.stderr + launched.stdout
    by_name = {s.config["name"]: s for s in server.sweeps.values()}
    ordered = [by_name["probe / x"], by_name["probe / lr"]]
    marks = [s.config["description"].split("sweeper: ", 1)[1] for s in ordered]
    (study_id,) = {json.loads(mark)["study"] for mark in marks}
    return spec, study_id, ordered


def test_runs_status_report_and_compile_read_a_wandb_study_as_they_read_the_store(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """One launch, then each command by the names it takes on the store (one set-up: a
    launch on the stand-in takes most of the test's time)."""
    from sweeper.backends.wandb import WandbBackend

    spec, study_id, sweeps = _launch_study(wandb_server, tmp_path)
    run_ids = sorted(run_id for sweep in sweeps for run_id in sweep.run_ids)

    # runs: a study id, with --backend wandb and the project
    result = sweeper("runs", study_id, *ON_WANDB, "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert sorted(r["run_id"] for r in records) == run_ids
    assert {r["stage_name"] for r in records} == {"x", "lr"}
    first = sorted((r for r in records if r["stage_name"] == "x"), key=lambda r: r["config.x"])
    assert [r["summary.loss"] for r in first] == [1.5, 4.5], "(x - 1)^2 + 0.5 per point"
    assert all(r["state"] == "finished" for r in records)
    path = f"{ENTITY}/{PROJECT}/{sweeps[0].id}"  # a sweep path needs no --backend
    table = sweeper("runs", path)
    assert table.returncode == 0, table.stderr
    assert "probe / x" in table.stdout and sweeps[0].run_ids[0] in table.stdout

    # status: the spec file names its latest study, every stage
    status = sweeper("status", str(spec), *ON_WANDB)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("progress: 2/2 done (2 finished)") == 2, status.stdout
    assert "probe / x" in status.stdout and "probe / lr" in status.stdout

    # report: the study by its spec; its curves come from the backend's history
    report = sweeper("report", str(spec), *ON_WANDB, "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "x" in text and "optim.lr" in text, "both stages' parameters"
    history = WandbBackend(store, entity=ENTITY, project=PROJECT).history(run_ids, ["loss"])
    assert list(history.columns) == ["run_id", "_step", "loss"]
    assert history.groupby("run_id")["_step"].apply(list).to_dict() == {r: [0, 1] for r in run_ids}

    # compile --stage: the best of the stage before, read from W&B (the spec's project)
    out = tmp_path / "lr.yaml"
    compiled = sweeper("compile", str(spec), "--stage", "lr", "--backend", "wandb", "-o", str(out))
    assert compiled.returncode == 0, compiled.stderr
    config = yaml.safe_load(out.read_text())
    assert config["parameters"]["x"] == {"value": 0}, "x=0 won stage one"
    assert config["parameters"] == sweeps[1].config["parameters"], "what launch made"
    elsewhere = sweeper(  # a project with no launch of this spec: refused, as on the store
        "compile", str(spec), "--stage", "lr", "--backend", "wandb", "--project", "empty"
    )
    assert elsewhere.returncode == 2
    assert "stages.1: 'lr' starts from the best of 'x'" in elsewhere.stderr

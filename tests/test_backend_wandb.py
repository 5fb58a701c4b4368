"""The W&B backend, end to end: the real wandb client against the stand-in W&B server.

Only the server is replaced (tests/wandb_server, on the loopback interface); `sweeper launch`,
`sweeper agent`, wandb's agent protocol, online runs (wandb-core) and the public API all run
for real. What the stand-in cannot prove (the real server's controller) is said in the README.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, wait_for, write_spec
from helpers import fill_study, probe_history, sweeper
from PIL import Image
from wandb_server import WandbServer

from sweeper.agent.launch import create_stage
from sweeper.spec.compile import compile_stage
from sweeper.spec.load import load_spec

ENTITY = "standin"
PROJECT = "sweeper-e2e"

# Every test here runs `sweeper` (launch, agent, sync, status) or wandb's own agent in child
# processes against the stand-in server: seconds each, so not in the `-m "not slow"` loop.
pytestmark = pytest.mark.slow


def _spec(tmp_path: Path, **overrides: Any) -> Path:
    return write_spec(tmp_path, probe_spec(project=PROJECT, **overrides))


def _study(tmp_path: Path, base: dict[str, Any]) -> Path:
    """Two stages: x (0 beats 3: loss 1 against 4), then the learning rate."""
    stages = [
        {"name": "x", "search": {"x": [0.0, 3.0]}},
        {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
    ]
    return _spec(tmp_path, search={}, base=base, stages=stages)


def _runs(server: WandbServer) -> list[Any]:
    return list({run.id: run for run in server.runs.values()}.values())


def _only_sweep(server: WandbServer) -> Any:
    (sweep,) = server.sweeps.values()
    return sweep


def _started_run(server: WandbServer) -> Any:
    """The one run, once it has trained a little (its history reaches the server only in
    wandb-core's periodic uploads, so wait on the run's creation, then on the clock)."""
    wait_for(lambda: len(_runs(server)) == 1, timeout=90, what="the trial's run")
    time.sleep(2.5)
    return _runs(server)[0]


def _everything_written(root: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in root.rglob("*") if path.is_file())


def test_launch_creates_a_wandb_sweep_that_two_agents_run_each_point_once(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, search={"x": [0.0, 1.0, 2.0, 3.0]}, base={"epochs": 2})
    launched = sweeper("launch", str(spec), "--backend", "wandb", "--agents", "2")
    assert launched.returncode == 0, launched.stderr + launched.stdout

    sweep = _only_sweep(wandb_server)
    path = f"{ENTITY}/{PROJECT}/{sweep.id}"
    assert sweep.state == "FINISHED"
    assert sweep.config["program"] == "sweeper.agent.wandb_agent_trial"
    for line in (path, f"sweeper agent {path} --backend wandb", "docker run"):
        assert line in launched.stdout
    runs = _runs(wandb_server)
    assert sorted(run.config["x"] for run in runs) == [0, 1, 2, 3], "each point exactly once"
    assert all(run.state == "finished" and run.exitcode == 0 for run in runs)
    assert len(wandb_server.agents) == 2, "each agent registered with W&B as an agent"
    first: dict[str, dict[str, Any]] = {}  # each run's first upsert, which creates it
    for *_, op, body in wandb_server.requests:
        if op == "UpsertBucket" and (fields := json.loads(body)["variables"])["name"]:
            first.setdefault(fields["name"], fields)
    assert sorted(first) == sorted(run.id for run in runs)
    assert {(f["entity"], f["project"], f["sweep"]) for f in first.values()} == {
        (ENTITY, PROJECT, sweep.id)
    }, "each trial's run names its sweep itself, as a run under `wandb agent` does"
    assert {run.agent_id for run in runs} <= set(wandb_server.agents)
    for run in runs:  # one config shape, the trainer's: nested sections, no dotted keys
        assert not [key for key in run.config if "." in key], run.config
        assert run.config["optim"]["name"] == "sgd" and run.config["epochs"] == 2
        assert run.summary["loss"] == (run.config["x"] - 1) ** 2 + 0.5
        assert len(run.history) == 2
    assert "best run" in launched.stdout and "loss = 0.5000 (x=1" in launched.stdout

    status = sweeper("status", path)  # an entity/project/id path means W&B
    assert status.returncode == 0, status.stderr
    assert "progress: 4/4 done (4 finished)" in status.stdout
    assert "loss = 0.5000" in status.stdout

    report = sweeper("report", path, "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "x" in (tmp_path / "report" / "report.md").read_text()

    key = wandb_server.api_key  # planted by the fixture: it may reach the server as auth only
    assert key not in wandb_server.payload_text()
    for output in (launched, status, report):
        assert key not in output.stdout + output.stderr
    assert key not in _everything_written(tmp_path / "store")
    assert key not in _everything_written(tmp_path / "report")
    assert key not in spec.read_text()


def test_a_stop_command_ends_the_trial_at_an_epoch_boundary_with_its_summary(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    from sweeper.backends.wandb import WandbBackend

    loaded = load_spec(
        _spec(tmp_path, search={"x": [0.0, 1.0]}, base={"epochs": 40, "epoch_seconds": 0.2})
    )
    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    path = backend.create_sweep(
        compile_stage(loaded.spec),
        trainer="probe",
        spec=loaded.spec.model_dump(mode="json"),
        spec_hash=loaded.hash,
    )
    command = ["agent", path, "--backend", "wandb", "--count", "1", "--heartbeat-timeout", "6"]
    agent = subprocess.Popen(  # --heartbeat-timeout 6: a heartbeat a second
        [sys.executable, "-m", "sweeper", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = _started_run(wandb_server)
    wandb_server.stop_run(run.id)
    out, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, out
    assert run.state == "killed" and run.exitcode == 0, (run.state, out)
    assert 2 <= len(run.history) < 40, "stopped early, at an epoch boundary"
    assert run.summary["loss"] == run.history[-1]["loss"]
    assert backend.counts(path) == {"stopped": 1}


def test_a_staged_study_chains_its_stages_on_wandb_and_resumes(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    spec = _study(tmp_path, {"epochs": 1})
    first = sweeper("launch", str(spec), "--backend", "wandb")
    assert first.returncode == 0, first.stderr + first.stdout
    by_name = {s.config["name"]: s for s in wandb_server.sweeps.values()}
    assert set(by_name) == {"probe / x", "probe / lr"}
    second_stage = by_name["probe / lr"].config["parameters"]
    assert second_stage["x"] == {"value": 0}, "x=0 won stage one (loss 1 against 4)"
    assert second_stage["optim"]["parameters"]["lr"] == {"values": [0.1, 0.01]}
    runs_before = len(_runs(wandb_server))

    again = sweeper("launch", str(spec), "--backend", "wandb")
    assert again.returncode == 0, again.stderr + again.stdout
    assert again.stdout.count("(resumed,") == 2, again.stdout
    assert len(wandb_server.sweeps) == 2 and len(_runs(wandb_server)) == runs_before


def test_the_stock_wandb_agent_runs_a_compiled_sweep_and_stops_it_cleanly(
    wandb_server: WandbServer, tmp_path: Path
) -> None:
    """What a W&B user does with `sweeper compile`: `wandb sweep` + `wandb agent`."""
    spec = _spec(tmp_path, search={"x": [0.0, 1.0]}, base={"epochs": 60, "epoch_seconds": 0.2})
    compiled = tmp_path / "sweep.yaml"
    assert sweeper("compile", str(spec), "-o", str(compiled)).returncode == 0
    created = subprocess.run(
        [sys.executable, "-m", "wandb", "sweep", "--entity", ENTITY, str(compiled)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    sweep = _only_sweep(wandb_server)
    assert sweep.config == yaml.safe_load(compiled.read_text())
    agent = subprocess.Popen(
        [sys.executable, "-m", "wandb", "agent", "--count", "1", f"{ENTITY}/{PROJECT}/{sweep.id}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = _started_run(wandb_server)
    # the stock agent sends SIGTERM to `python -m sweeper.agent.wandb_agent_trial`
    wandb_server.stop_run(run.id)
    out, _ = agent.communicate(timeout=90)
    assert agent.returncode == 0, out
    assert run.exitcode == 0 and len(run.history) < 60, (run.state, out[-2000:])
    assert run.summary["stopped_early"] is True and "loss" in run.summary
    assert not [key for key in run.config if "." in key], run.config
    assert run.config["optim"] == {
        "name": "sgd", "lr": 0.1, "momentum": 0, "weight_decay": 0, "nesterov": False,
        "betas": [0.9, 0.999],
    }  # fmt: skip


def test_wandb_backend_bad_input_is_one_line_and_exit_2(
    wandb_server: WandbServer, store: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    spec = _spec(tmp_path, search={"x": [0.0]}, base={"epochs": 1})
    cases = [
        ("agent", f"{ENTITY}/{PROJECT}/nosuchid", "--backend", "wandb"),
        ("status", "not-a-path", "--backend", "wandb"),
        ("launch", str(spec), "--backend", "wandb", "--wandb", "offline"),
    ]
    for args in cases:
        result = sweeper(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    monkeypatch.delenv("WANDB_API_KEY")
    started = time.monotonic()
    result = sweeper("launch", str(spec), "--backend", "wandb")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: W&B: connect: No API key configured. Use `wandb login` to log in."
    ]
    assert result.stdout == "", "refused before the progress bar drew anything"
    assert time.monotonic() - started < 30 and not wandb_server.sweeps


def test_a_stage_whose_predecessor_has_no_finished_run_is_refused(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    spec = _study(tmp_path, {"epochs": 1, "crash": "raise"})
    result = sweeper("launch", str(spec), "--backend", "wandb")
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "no run finished with metric 'loss'" in line and "(x)" in line
    assert len(wandb_server.sweeps) == 1, "stage two was never created"
    assert all(run.state == "failed" for run in _runs(wandb_server))
    assert all(run.summary["error"].startswith("RuntimeError: boom") for run in _runs(wandb_server))


def test_sync_publishes_a_local_study_once_with_the_stores_run_ids(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    from sweeper.backends.local import LocalBackend

    spec = _study(tmp_path, {"epochs": 3})
    local = LocalBackend(store)
    fill_study(local, load_spec(spec), probe_history)  # the study's runs, through the store
    launched = sweeper("launch", str(spec), "--wandb", "disabled")  # complete: runs nothing
    assert launched.returncode == 0, launched.stderr
    stages = local.sweeps(local.sweeps()[0].study)
    table = local.runs([s.id for s in stages])
    pictured = table["run_id"].iloc[0]  # as `sweeper landscape` leaves it in the run's folder
    picture = local.run_dir(pictured) / "landscape" / "contour.png"
    picture.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(picture)

    first = sweeper("sync", stages[0].study, "--entity", ENTITY)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("2 uploaded, 0 already there") == 2, first.stdout
    runs = {run.id: run for run in _runs(wandb_server)}
    assert set(runs) == set(table["run_id"]), "W&B run ids are the store's run ids"
    for row in table.to_dict("records"):
        run = runs[row["run_id"]]
        assert run.state == "finished" and run.uploads == 1
        media = [path for path in run.files if path.startswith("media/images/landscape/contour")]
        assert len(media) == (row["run_id"] == pictured), sorted(run.files)
        assert run.group == stages[0].study and run.job_type == row["stage_name"]
        assert run.summary["loss"] == row["summary.loss"]
        assert [h["loss"] for h in run.history] == list(local.history([row["run_id"]])["loss"])
        assert not [key for key in run.config if "." in key]
        assert (
            run.config["x"] == row["config.x"]
            and run.config["_sweeper"]["sweep"] == row["sweep_id"]
        )
    by_name = {s.config["name"]: s for s in wandb_server.sweeps.values()}
    assert set(by_name) == {"probe / x", "probe / lr"}
    for stage in stages:
        synced = by_name[stage.name]
        assert sorted(synced.run_ids) == sorted(table[table["sweep_id"] == stage.id]["run_id"])
        assert synced.config["parameters"] == stage.config["parameters"]

    second = sweeper("sync", stages[0].study, "--entity", ENTITY)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("0 uploaded, 2 already there") == 2, second.stdout
    assert all(run.uploads == 1 for run in _runs(wandb_server)), "syncing twice uploads once"
    assert len(wandb_server.sweeps) == 2
    assert wandb_server.api_key not in wandb_server.payload_text() + first.stdout + second.stdout


def test_an_agent_keeps_its_trial_through_a_server_outage(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    from sweeper.backends.wandb import WandbBackend

    loaded = load_spec(
        _spec(tmp_path, search={"x": [0.0]}, base={"epochs": 30, "epoch_seconds": 0.2})
    )
    path = WandbBackend(store, entity=ENTITY, project=PROJECT).create_sweep(
        compile_stage(loaded.spec), trainer="probe", spec={}, spec_hash=loaded.hash
    )
    command = ["agent", path, "--backend", "wandb", "--heartbeat-timeout", "6"]
    agent = subprocess.Popen(
        [sys.executable, "-m", "sweeper", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = _started_run(wandb_server)
    wandb_server.set_unreachable(True)
    time.sleep(4)  # heartbeats and uploads fail meanwhile; the trial goes on
    wandb_server.set_unreachable(False)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 0, out
    assert run.state == "finished" and len(run.history) == 30, (run.state, out)
    assert wandb_server.sweeps[path.rsplit("/", 1)[1]].state == "FINISHED"


def test_a_preempted_trial_is_requeued_by_w_and_b_and_resumes_from_its_checkpoint(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    from sweeper.backends.wandb import WandbBackend

    loaded = load_spec(
        _spec(tmp_path, search={"x": [0.0]}, base={"epochs": 12, "epoch_seconds": 0.3})
    )
    backend = WandbBackend(store, entity=ENTITY, project=PROJECT)
    path = create_stage(backend, loaded)
    command = [sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = _started_run(wandb_server)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert (run.state, run.exitcode) == ("preempted", 1), (run.state, out)
    assert "marked preempting" in out
    done = len(run.history)
    assert 1 <= done < 12
    assert backend.counts(path) == {"preempted": 1} and not backend.is_complete(path)

    second = sweeper("agent", path, "--backend", "wandb")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"trial {run.id} (resumed)" in second.stdout
    assert _runs(wandb_server) == [run], "W&B resumed the same run, not a new one"
    assert run.state == "finished" and "error" not in run.summary
    assert run.summary["resumed_from"] == done, "from the checkpoint, not from scratch"
    assert run.summary["epochs_run"] == 12 - done
    assert [row["_step"] for row in run.history] == list(range(12))
    assert backend.is_complete(path)


def test_an_unreachable_server_is_one_line_and_exit_2(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, search={"x": [0.0]}, base={"epochs": 1})
    wandb_server.set_unreachable(True)
    result = sweeper("launch", str(spec), "--backend", "wandb", timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: W&B: connect: ") and "Traceback" not in result.stderr

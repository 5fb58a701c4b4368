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


SCHEDULED: dict[str, Any] = {
    "method": "custom",
    "metrics": [{"name": "f1", "goal": "minimize"}, {"name": "f2", "goal": "minimize"}],
    "parameters": {"x": {"min": 0.0, "max": 4.0}},
    "scheduler": {"engine": "optuna"},
}


def _made(config: dict[str, Any]) -> Any:
    """A sweep made as `wandb sweep` makes it, read back through the public API."""
    import wandb
    from wandb.apis.public.sweeps import _upsert_sweep

    api = wandb.Api()
    created, _ = _upsert_sweep(api, config, entity=ENTITY, project=PROJECT)
    return api.sweep(f"{ENTITY}/{PROJECT}/{created['name']}")


def _launch_on_wandb(folder: Path, file: str, agents: int) -> subprocess.CompletedProcess[str]:
    """`sweeper launch FILE --backend wandb` from `folder`, against the stand-in (ENTITY)."""
    on_wandb = ["--backend", "wandb", "--entity", ENTITY, "--heartbeat-timeout", "6"]
    return subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", file, *on_wandb, "--agents", str(agents)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_queued_runs_go_to_idle_agents_up_to_run_cap(wandb_server: WandbServer) -> None:
    """The server's side of a local scheduler, through wandb's own public API: a sweep with
    `scheduler:` and `metrics:` is accepted; `Sweep.enqueue_run` queues a pending run; an idle
    agent's heartbeat gets the oldest queued run as a `run` command with its config, and
    nothing while none is queued (it waits for the scheduler, never W&B's own search); at
    `run_cap` runs handed out, `exit`, the sweep FINISHED once none runs, its queue dropped
    (and a run queued after that at once)."""
    import wandb
    from wandb.apis.public.sweeps import _agent_heartbeat, _register_agent

    sweep = _made({**SCHEDULED, "run_cap": 2})
    api = wandb.Api()
    agent = _register_agent(api, "node", sweep_id=sweep.id, project=PROJECT, entity=ENTITY)
    assert _agent_heartbeat(api, agent["id"], {}, {}) == []  # nothing queued yet
    queued = [sweep.enqueue_run({"x": {"value": x}}) for x in (0.5, 1.5, 2.5)]
    assert [wandb_server.runs[rid].state for rid in queued] == ["pending"] * 3

    handed = []
    for expected in queued[:2]:
        (command,) = _agent_heartbeat(api, agent["id"], {}, {})
        assert (command["type"], command["run_id"]) == ("run", expected)
        assert command["args"] == wandb_server.runs[expected].assigned
        handed.append(command["run_id"])
    assert [wandb_server.runs[rid].assigned["x"]["value"] for rid in handed] == [0.5, 1.5]

    (record,) = wandb_server.sweeps.values()
    wandb_server.runs[handed[0]].state = "finished"
    wandb_server.runs[handed[1]].state = "running"  # as another agent's run would
    assert _agent_heartbeat(api, agent["id"], {}, {}) == [{"type": "exit"}]
    assert record.state == "RUNNING", "a run of the sweep still runs"
    wandb_server.runs[handed[1]].state = "finished"
    assert _agent_heartbeat(api, agent["id"], {}, {}) == [{"type": "exit"}]
    assert record.state == "FINISHED"
    assert sorted(record.run_ids) == sorted(handed), "the queue past run_cap is dropped"
    assert queued[2] not in wandb_server.runs
    # wandb-core checks the state once per batch: a run queued after the close never runs.
    late = sweep.enqueue_run({"x": {"value": 3.5}})
    assert late not in wandb_server.runs and sorted(record.run_ids) == sorted(handed)


def test_a_sweep_without_a_scheduler_queues_nothing(wandb_server: WandbServer) -> None:
    """enqueueSweepRun is a local scheduler's: on a sweep W&B's own search runs, refused."""
    sweep = _made({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    with pytest.raises(Exception, match="has no scheduler"):
        sweep.enqueue_run({"x": {"value": 0.5}})
    assert not any(run.sweep_id for run in _runs(wandb_server))


def test_a_silent_run_asked_to_stop_ends_killed_not_crashed() -> None:
    """W&B docs, "Stop a run": a run asked to stop goes to Killed however its process ended,
    so one that went silent (its program ended by its agent's SIGTERM, saying nothing) too;
    a silent run nobody stopped is crashed."""
    from wandb_server.state import RunRecord, ServerState

    state = ServerState(crash_after_s=0.0)
    asked = state.add_run(RunRecord(id="asked", entity=ENTITY, project=PROJECT))
    silent = state.add_run(RunRecord(id="silent", entity=ENTITY, project=PROJECT))
    asked.stop_requested = True
    state.expire_silent_runs()
    assert (asked.state, silent.state) == ("killed", "crashed")


@pytest.mark.slow  # `sweeper launch` in a child process against the stand-in
def test_launch_runs_the_scheduler_beside_its_agents_to_run_cap(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """The scheduler queues optuna's suggestions as runs of the sweep; two agents run them;
    no suggestion runs twice; the sweep ends FINISHED once run_cap runs have finished."""
    (tmp_path / "train.py").write_text(PROGRAM)
    config = {"name": "scheduled", "project": PROJECT, "program": "train.py", **SCHEDULED}
    config["run_cap"] = 6
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    launched = _launch_on_wandb(tmp_path, "sweep.yaml", agents=2)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "Pareto front over f1 (minimize), f2 (minimize)" in launched.stdout
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
    assert {"EnqueueSweepRun", "SweepConfig"} <= operations
    assert not wandb_server.errors


SLOW_PROGRAM = """
import time
import wandb
run = wandb.init()
for step in range(120):
    wandb.log({"loss": 10.0 * float(run.config["x"])}, step=step)
    time.sleep(0.5)
run.finish()
"""
"""A minute of training at a loss of 10 x."""

PRUNING = """
import optuna

def study(sweep):
    return optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.ThresholdPruner(upper=5.0),
    )
"""
"""The user's optimizer factory (scheduler.optimizer): its sampler's first two suggestions are
x = 0.417 and 0.720 (optuna's RandomSampler, seed 1); its pruner stops a run whose loss is
above 5 at any step, so the second."""


@pytest.mark.slow  # a minute of training, and the server's crash timeout for the stopped run
def test_a_run_the_optimizer_prunes_is_stopped_on_the_server(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """wandb-core's scheduler stops a pruned run with `stopRun`; the run's agent hears `stop`
    in its heartbeat and ends its program, and the run is killed (W&B: a run asked to stop
    ends Killed, however its process ended) long before its minute of training is over; the
    run the pruner keeps finishes."""
    wandb_server.state.crash_after_s = 40.0  # the stopped program's run ends unsaid
    (tmp_path / "train.py").write_text(SLOW_PROGRAM)
    (tmp_path / "pruning.py").write_text(PRUNING)
    config = {
        "name": "pruned",
        "project": PROJECT,
        "program": "train.py",
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}},
        "scheduler": {"engine": "optuna", "source": "pruning.py", "optimizer": "study"},
        "run_cap": 2,
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    launched = _launch_on_wandb(tmp_path, "sweep.yaml", agents=2)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    (sweep,) = wandb_server.sweeps.values()
    runs = {
        round(run.assigned["x"]["value"], 3): run
        for run in _runs(wandb_server)
        if run.sweep_id == sweep.id
    }
    assert sorted(runs) == [0.417, 0.72]
    kept, pruned = runs[0.417], runs[0.72]
    assert (kept.state, len(kept.history)) == ("finished", 120)
    assert pruned.state == "killed" and pruned.stop_requested
    assert 0 < len(pruned.history) < 120, "stopped before its training ended"
    assert "StopRun" in wandb_server.operations()


@pytest.mark.slow  # `sweeper launch` in a child process against the stand-in
def test_a_server_without_the_local_scheduler_ends_launch_in_one_line(
    wandb_server: WandbServer, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A W&B server older than the local scheduler (no SWEEPS_LOCAL_SCHEDULER feature):
    wandb's scheduler refuses to start; launch stops its agents and says wandb's reason in
    one line, exit 2, no traceback."""
    import wandb_server.graphql as served

    features = tuple(f for f in served.SERVER_FEATURES if f != "SWEEPS_LOCAL_SCHEDULER")
    monkeypatch.setattr(served, "SERVER_FEATURES", features)
    (tmp_path / "train.py").write_text(PROGRAM)
    config = {"name": "old-server", "project": PROJECT, "program": "train.py", **SCHEDULED}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    launched = _launch_on_wandb(tmp_path, "sweep.yaml", agents=2)
    assert launched.returncode == 2, launched.stdout + launched.stderr
    (line,) = [line for line in launched.stderr.splitlines() if line.startswith("error:")]
    assert "its scheduler exited with code 1" in line
    assert "does not support the local sweep scheduler" in line, line
    assert "Traceback" not in launched.stdout + launched.stderr
    assert not [run for run in _runs(wandb_server) if run.sweep_id], "no run was queued"


@pytest.mark.slow  # `sweeper launch` in a child process against the stand-in
def test_a_trainer_specs_base_reaches_the_runs_the_scheduler_queues(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """A probe spec whose `search_space` gives only `x` and whose base says epochs 2 (the
    probe's default is 3): each queued run carries epochs 2, and its trainer ran with it."""
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'x': trial.suggest_float('x', 0.0, 2.0)}\n"
    )
    spec = {
        "name": "scheduled-probe",
        "project": PROJECT,
        "trainer": "probe",
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "scheduler": {"engine": "optuna", "source": "space.py", "search_space": "space"},
        "base": {"epochs": 2},
        "run_cap": 2,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    launched = _launch_on_wandb(tmp_path, "spec.yaml", agents=1)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    (sweep,) = wandb_server.sweeps.values()
    runs = [run for run in _runs(wandb_server) if run.sweep_id == sweep.id]
    assert len(runs) == 2 and {run.state for run in runs} == {"finished"}
    for run in runs:
        assert run.assigned["epochs"]["value"] == 2 and "x" in run.assigned
        assert run.config["epochs"] == 2  # the trainer's whole config, as the trial logged it

"""The stand-in W&B server against the real wandb client: sweeps, agents, runs, auth."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from wandb_server import WandbServer

ENTITY = "standin"
PROJECT = "stand-in-tests"

NESTED_GRID: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "optim": {"parameters": {"lr": {"values": [0.1, 0.2]}}},
        "batch_size": {"values": [8, 16]},
    },
}


def _api() -> Any:
    import wandb

    return wandb.Api()


def _sweep(config: dict[str, Any]) -> str:
    import wandb

    return wandb.sweep(config, entity=ENTITY, project=PROJECT)


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    return {key: value["value"] for key, value in args.items()}


def test_sweep_config_round_trips(wandb_server: WandbServer) -> None:
    sweep_id = _sweep(NESTED_GRID)

    sweep = _api().sweep(f"{ENTITY}/{PROJECT}/{sweep_id}")

    assert sweep.config == NESTED_GRID
    assert sweep.state == "RUNNING"
    assert wandb_server.sweeps[sweep_id].config == NESTED_GRID
    assert wandb_server.sweeps[sweep_id].project == PROJECT
    assert [s.id for s in _api().project(PROJECT, ENTITY).sweeps()] == [sweep_id]


def test_unknown_sweep_raises(wandb_server: WandbServer) -> None:
    _sweep(NESTED_GRID)

    with pytest.raises(Exception, match="Could not find sweep"):
        _api().sweep(f"{ENTITY}/{PROJECT}/nosuchid")


def test_agent_protocol_runs_each_nested_grid_point_once(
    wandb_server: WandbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb
    from wandb.apis.public.sweeps import _agent_heartbeat, _register_agent

    sweep_id = _sweep(NESTED_GRID)
    api = _api()
    agent = _register_agent(api, "test-host", sweep_id=sweep_id, entity=ENTITY, project=PROJECT)
    monkeypatch.setenv("WANDB_SWEEP_ID", sweep_id)

    handed: list[dict[str, Any]] = []
    for _ in range(6):
        commands = _agent_heartbeat(api, agent["id"], {}, {})
        assert len(commands) == 1
        if commands[0]["type"] == "exit":
            break
        assert commands[0]["type"] == "run"
        config = _plain(commands[0]["args"])
        handed.append(config)
        run = wandb.init(id=commands[0]["run_id"], entity=ENTITY, project=PROJECT, config=config)
        run.log({"loss": 1.0})
        run.log({"loss": config["optim"]["lr"] * config["batch_size"]})
        run.summary["points"] = 2
        run.finish()
    else:
        pytest.fail("the controller never sent exit")

    points = sorted((c["optim"]["lr"], c["batch_size"]) for c in handed)
    assert points == [(0.1, 8), (0.1, 16), (0.2, 8), (0.2, 16)]
    assert wandb_server.sweeps[sweep_id].state == "FINISHED"

    sweep = _api().sweep(f"{ENTITY}/{PROJECT}/{sweep_id}")
    runs = list(sweep.runs)
    assert len(runs) == 4
    for run in runs:
        expected = run.config["optim"]["lr"] * run.config["batch_size"]
        assert run.state == "finished"
        assert run.summary["loss"] == pytest.approx(expected)
        assert run.summary["points"] == 2
        assert run.sweep_name == sweep_id
        assert run.created_at
        history = run.history(samples=10, keys=["loss"], pandas=True)
        assert list(history["loss"]) == pytest.approx([1.0, expected])
    assert sweep.best_run().config == {"optim": {"lr": 0.1}, "batch_size": 8}

    stored = wandb_server.runs[runs[0].id]
    assert stored.exitcode == 0
    assert stored.uploads == 1
    assert len(stored.history) == 2
    assert wandb_server.api_key not in wandb_server.payload_text()


def test_stop_run_makes_next_heartbeat_stop_it(wandb_server: WandbServer) -> None:
    import wandb
    from wandb.apis.public.sweeps import _agent_heartbeat, _register_agent, _set_sweep_state

    sweep_id = _sweep(NESTED_GRID)
    api = _api()
    agent = _register_agent(api, "test-host", sweep_id=sweep_id, entity=ENTITY, project=PROJECT)
    [command] = _agent_heartbeat(api, agent["id"], {}, {})
    run_id = command["run_id"]
    # The run's process; a stop must not SIGINT pytest, so its stop checker does nothing.
    settings = wandb.Settings(stop_fn=lambda: None)
    run = wandb.init(id=run_id, entity=ENTITY, project=PROJECT, settings=settings)
    assert _agent_heartbeat(api, agent["id"], {}, {run_id: True}) == []

    wandb_server.stop_run(run_id)

    assert _agent_heartbeat(api, agent["id"], {}, {run_id: True}) == [
        {"type": "stop", "run_id": run_id}
    ]
    run.finish()  # the run's own end; W&B gives a stopped run the state killed
    # Once the agent reports the run gone, the sweep goes on with the next point.
    [following] = _agent_heartbeat(api, agent["id"], {}, {})
    assert following["type"] == "run"
    assert wandb_server.runs[run_id].state == "killed"

    # `wandb sweep --cancel` stops live runs and ends the agent.
    _set_sweep_state(api, sweep_id, "CANCELED", entity=ENTITY, project=PROJECT)
    live = {following["run_id"]: True}
    assert _agent_heartbeat(api, agent["id"], {}, live)[0]["type"] == "stop"
    assert _agent_heartbeat(api, agent["id"], {}, {}) == [{"type": "exit"}]


def test_prior_runs_join_a_new_sweep(wandb_server: WandbServer) -> None:
    import wandb
    from wandb.apis.public.sweeps import _upsert_sweep

    run_ids = []
    for lr in (0.1, 0.3):
        run = wandb.init(entity=ENTITY, project=PROJECT, config={"lr": lr}, group="early")
        run.log({"loss": lr})
        run.finish()
        run_ids.append(run.id)

    sweep, _ = _upsert_sweep(
        _api(),
        {"method": "random", "parameters": {"lr": {"values": [0.1, 0.3]}}},
        entity=ENTITY,
        project=PROJECT,
        prior_runs=run_ids,
    )

    assert wandb_server.sweeps[sweep["name"]].run_ids == run_ids
    listed = _api().runs(f"{ENTITY}/{PROJECT}", filters={"sweep": sweep["name"]})
    assert sorted(r.id for r in listed) == sorted(run_ids)
    by_name = _api().runs(f"{ENTITY}/{PROJECT}", filters={"name": {"$in": run_ids[:1]}})
    assert [(r.id, r.group, r.config) for r in by_name] == [(run_ids[0], "early", {"lr": 0.1})]
    either = _api().runs(f"{ENTITY}/{PROJECT}", filters={"$or": [{"name": run_ids[1]}]})
    assert [r.id for r in either] == [run_ids[1]]
    assert _api().run(f"{ENTITY}/{PROJECT}/{run_ids[1]}").summary["loss"] == 0.3


def test_wrong_api_key_fails_fast(
    wandb_server: WandbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    monkeypatch.setenv("WANDB_API_KEY", "local-" + "0" * 40)
    wandb.teardown()
    started = time.monotonic()

    with pytest.raises(Exception, match=r"(?i)api key|credentials"):
        wandb.Api().sweep(f"{ENTITY}/{PROJECT}/whatever")

    assert time.monotonic() - started < 10
    assert any(path == "/graphql" for _, path, _, _ in wandb_server.requests)


@pytest.mark.slow  # wandb's own agent and a program in child processes
def test_stock_wandb_agent_cli_runs_a_program(wandb_server: WandbServer, tmp_path: Path) -> None:
    program = tmp_path / "train.py"
    program.write_text(
        textwrap.dedent(
            """
            import wandb

            run = wandb.init()
            run.log({"loss": run.config.lr * 2})
            run.finish()
            """
        )
    )
    sweep_id = _sweep(
        {
            "method": "grid",
            "program": str(program),
            "command": ["${env}", sys.executable, "${program}", "${args}"],
            "parameters": {"lr": {"values": [0.25, 0.5]}},
        }
    )

    agent = subprocess.run(
        [sys.executable, "-m", "wandb", "agent", "--count", "1", f"{ENTITY}/{PROJECT}/{sweep_id}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert agent.returncode == 0, agent.stderr
    [run_id] = wandb_server.sweeps[sweep_id].run_ids
    run = wandb_server.runs[run_id]
    assert run.state == "finished"
    assert run.config == {"lr": 0.25}
    assert run.summary["loss"] == 0.5


@pytest.mark.slow  # an offline run made and synced by wandb in child processes
def test_syncing_an_offline_run_twice_uploads_it_once(wandb_server: WandbServer) -> None:
    import wandb

    run = wandb.init(entity=ENTITY, project=PROJECT, mode="offline", config={"lr": 0.5})
    run.log({"loss": 0.25})
    run.finish()
    run_dir = Path(run.dir).parent

    for _ in range(2):
        sync = [sys.executable, "-m", "wandb", "sync", str(run_dir)]
        subprocess.run(sync, check=True, capture_output=True, timeout=60)

    stored = wandb_server.runs[run.id]
    assert stored.uploads == 1
    assert stored.state == "finished"
    assert stored.config == {"lr": 0.5}
    assert [row["loss"] for row in stored.history] == [0.25]


def test_a_config_the_sweeps_schema_rejects_creates_no_sweep(wandb_server: WandbServer) -> None:
    """W&B refuses such a config with an error (not a warning), so sweeper must hear of it."""
    from wandb.errors import CommError

    bad = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": []}}}

    with pytest.raises(CommError, match=r"Invalid sweep config: .*'values': \[\]"):
        _sweep(bad)

    assert wandb_server.sweeps == {}
    assert wandb_server.errors == []  # a refusal, not a gap in the stand-in


def test_newer_w_and_b_keys_and_sweeper_shapes_are_accepted(wandb_server: WandbServer) -> None:
    """`run_cap` and hyperband's `strict` postdate the `sweeps` 0.2.0 schema; W&B takes them."""
    config = {
        **NESTED_GRID,
        "method": "random",
        "run_cap": 3,
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2, "strict": True},
        "program": "sweeper.agent.wandb_agent_trial",
        "command": ["${env}", "${interpreter}", "-m", "${program}", "--trainer", "probe"],
        "description": 'sweeper: {"stage": 0}',
    }

    sweep_id = _sweep(config)

    assert wandb_server.sweeps[sweep_id].config == config

"""The stand-in follows W&B's server-side rules, each driven through the real wandb client.

Every rule is W&B's, cited where the stand-in applies it (tests/wandb_server/state.py,
server.py, graphql.py); these tests pin each one down.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from wandb_server import WandbServer, quick_stop_env

ENTITY = "standin"
PROJECT = "stand-in-rules"

GRID: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"lr": {"values": [0.1, 0.2, 0.3]}},
}


def _api() -> Any:
    import wandb

    return wandb.Api()


def _sweep(config: dict[str, Any]) -> str:
    import wandb

    return wandb.sweep(config, entity=ENTITY, project=PROJECT)


def _post_file_stream(server: WandbServer, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """One file_stream POST as wandb-core sends it; returns the JSON answer."""
    token = base64.b64encode(f"api:{server.api_key}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/files/{ENTITY}/{PROJECT}/{run_id}/file_stream",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def _post_graphql(
    server: WandbServer, query: str, variables: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """One GraphQL POST; returns the HTTP status and the JSON answer, error statuses too."""
    token = base64.b64encode(f"api:{server.api_key}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _start_run(run_id: str | None = None, config: dict[str, Any] | None = None) -> Any:
    """A run in this process; a stop from the server must not SIGINT pytest, so its stop
    checker does nothing (the real SIGINT is tested in a child process below)."""
    import wandb

    settings = wandb.Settings(stop_fn=lambda: None)
    return wandb.init(
        id=run_id, entity=ENTITY, project=PROJECT, config=config or {}, settings=settings
    )


def _agent(sweep_id: str) -> tuple[Any, str]:
    from wandb.apis.public.sweeps import _register_agent

    api = _api()
    agent = _register_agent(api, "test-host", sweep_id=sweep_id, entity=ENTITY, project=PROJECT)
    return api, agent["id"]


def _beat(api: Any, agent_id: str, live: Sequence[str] = ()) -> list[dict[str, Any]]:
    from wandb.apis.public.sweeps import _agent_heartbeat

    return _agent_heartbeat(api, agent_id, {}, {run_id: True for run_id in live})


def _set_state(sweep_id: str, state: Literal["RUNNING", "PAUSED", "FINISHED", "CANCELED"]) -> None:
    from wandb.apis.public.sweeps import _set_sweep_state

    _set_sweep_state(_api(), sweep_id, state, entity=ENTITY, project=PROJECT)


def _sweep_state(sweep_id: str) -> str:
    state: str = _api().sweep(f"{ENTITY}/{PROJECT}/{sweep_id}").state
    return state


# -- 1. a run asked to stop hears `stopped` from file_stream --------------------------


def test_file_stream_answers_stopped_once_a_run_is_asked_to_stop(
    wandb_server: WandbServer,
) -> None:
    run = _start_run()
    run.log({"loss": 1.0})
    heartbeat = {"files": {}}

    before = _post_file_stream(wandb_server, run.id, heartbeat)
    wandb_server.stop_run(run.id)
    after = _post_file_stream(wandb_server, run.id, heartbeat)
    run.finish()

    assert before["stopped"] is False
    assert after["stopped"] is True
    stored = wandb_server.runs[run.id]
    assert stored.state == "killed"  # W&B docs, "Stop a run": running -> Killed
    assert stored.summary["loss"] == 1.0
    assert _api().run(f"{ENTITY}/{PROJECT}/{run.id}").state == "killed"


def test_stop_run_of_an_unknown_run_raises(wandb_server: WandbServer) -> None:
    with pytest.raises(KeyError):
        wandb_server.stop_run("nosuchrun")


_STOPPABLE = textwrap.dedent(
    """
    import json, signal, sys, time
    import wandb

    got = []

    def on_sigint(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    run = wandb.init(entity=sys.argv[1], project=sys.argv[2], config={"lr": 0.1})
    print(json.dumps({"run_id": run.id}), flush=True)
    epoch = 0
    try:
        while epoch < 600:
            run.log({"loss": 1.0 / (epoch + 1), "epoch": epoch})
            epoch += 1
            time.sleep(0.1)
    except KeyboardInterrupt:
        run.summary["interrupted_at"] = epoch
    run.finish()
    print(json.dumps({"signals": got, "epochs": epoch}), flush=True)
    """
)


@pytest.mark.slow  # a wandb run in a child process, stopped from the server (~4 s)
def test_a_stopped_run_process_gets_sigint_from_wandbs_own_stop_checker(
    wandb_server: WandbServer, tmp_path: Path
) -> None:
    """file_stream `stopped` -> wandb-core `IsStopped` -> run_stopping -> SIGINT, for real."""
    script = tmp_path / "stoppable.py"
    script.write_text(_STOPPABLE)
    child = subprocess.Popen(
        [sys.executable, str(script), ENTITY, PROJECT],
        env=quick_stop_env(poll_s=1),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id = json.loads(child.stdout.readline())["run_id"]
        deadline = time.monotonic() + 30
        while not wandb_server.runs.get(run_id) or not wandb_server.runs[run_id].history:
            assert time.monotonic() < deadline, "the run never streamed its history"
            time.sleep(0.1)
        stopped_at = time.monotonic()
        wandb_server.stop_run(run_id)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    latency = time.monotonic() - stopped_at

    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["signals"] == [2]  # SIGINT, from wandb's interrupt_main
    assert report["epochs"] < 600
    assert latency < 12  # 2 polls of 1 s and the finish; wandb's own poll alone is 15 s
    stored = wandb_server.runs[run_id]
    assert stored.state == "killed"
    assert stored.summary["interrupted_at"] == report["epochs"]
    assert stored.exitcode == 0


# -- 2. a deleted sweep answers its agents with 404 ---------------------------------


def test_a_deleted_sweeps_agent_gets_404_and_wandb_raises_sweep_not_found(
    wandb_server: WandbServer,
) -> None:
    from wandb.apis.public.sweeps import _agent_heartbeat, _register_agent
    from wandb.sdk.sweeps import SweepNotFoundError

    sweep_id = _sweep(GRID)
    api = _api()
    agent = _register_agent(api, "test-host", sweep_id=sweep_id, entity=ENTITY, project=PROJECT)
    [command] = _agent_heartbeat(api, agent["id"], {}, {})
    assert command["type"] == "run"

    wandb_server.delete_sweep(sweep_id)

    with pytest.raises(SweepNotFoundError):
        _agent_heartbeat(api, agent["id"], {}, {command["run_id"]: True})
    with pytest.raises(Exception, match=r"404|not found"):
        _register_agent(api, "test-host", sweep_id=sweep_id, entity=ENTITY, project=PROJECT)
    with pytest.raises(Exception, match="Could not find sweep"):
        _api().sweep(f"{ENTITY}/{PROJECT}/{sweep_id}")
    status, answer = _post_graphql(
        wandb_server,
        "mutation Heartbeat($id: ID!) { agentHeartbeat(input: {id: $id}) { commands } }",
        {"id": agent["id"]},
    )
    assert status == 404
    assert answer["data"] == {"agentHeartbeat": None}
    assert wandb_server.errors == []  # a refusal W&B makes, not a gap in the stand-in


def test_delete_sweep_of_an_unknown_sweep_raises(wandb_server: WandbServer) -> None:
    with pytest.raises(KeyError):
        wandb_server.delete_sweep("nosuchsweep")


# -- 3. sweep states as the CLI verbs set them -------------------------------------


def test_a_paused_sweep_hands_out_nothing_until_resumed_and_lets_runs_go_on(
    wandb_server: WandbServer,
) -> None:
    sweep_id = _sweep(GRID)
    api, agent = _agent(sweep_id)
    [first] = _beat(api, agent)

    _set_state(sweep_id, "PAUSED")  # wandb sweep --pause

    assert _sweep_state(sweep_id) == "PAUSED"
    assert _beat(api, agent, [first["run_id"]]) == []  # the live run is not stopped
    assert wandb_server.runs[first["run_id"]].stop_requested is False
    assert _beat(api, agent) == []  # idle: nothing new, and no exit either
    assert _beat(api, agent) == []

    _set_state(sweep_id, "RUNNING")  # wandb sweep --resume

    assert _sweep_state(sweep_id) == "RUNNING"
    [following] = _beat(api, agent)
    assert following["type"] == "run"
    assert following["run_id"] != first["run_id"]


def test_a_stopped_sweep_is_finished_lets_its_runs_finish_and_hands_out_nothing(
    wandb_server: WandbServer,
) -> None:
    sweep_id = _sweep(GRID)
    api, agent = _agent(sweep_id)
    [command] = _beat(api, agent)
    run = _start_run(command["run_id"], {"lr": 0.1})

    _set_state(sweep_id, "FINISHED")  # wandb sweep --stop

    assert _beat(api, agent, [run.id]) == []  # not stopped
    assert _post_file_stream(wandb_server, run.id, {"files": {}})["stopped"] is False
    run.log({"loss": 0.5})
    run.finish()
    assert wandb_server.runs[run.id].state == "finished"
    assert _beat(api, agent) == [{"type": "exit"}]  # no new run
    assert _sweep_state(sweep_id) == "FINISHED"
    assert len(wandb_server.sweeps[sweep_id].run_ids) == 1


def test_a_cancelled_sweep_stops_its_running_runs_at_once(wandb_server: WandbServer) -> None:
    sweep_id = _sweep(GRID)
    api, agent = _agent(sweep_id)
    [command] = _beat(api, agent)
    run = _start_run(command["run_id"], {"lr": 0.1})
    run.log({"loss": 0.5})

    _set_state(sweep_id, "CANCELED")  # wandb sweep --cancel

    assert _beat(api, agent, [run.id]) == [{"type": "stop", "run_id": run.id}]
    assert _post_file_stream(wandb_server, run.id, {"files": {}})["stopped"] is True
    run.finish()
    assert wandb_server.runs[run.id].state == "killed"  # W&B docs, "Run states"
    assert wandb_server.runs[run.id].summary["loss"] == 0.5
    assert _beat(api, agent) == [{"type": "exit"}]
    assert _sweep_state(sweep_id) == "CANCELED"


def test_an_exhausted_sweep_is_finished_only_once_no_run_is_active(
    wandb_server: WandbServer,
) -> None:
    sweep_id = _sweep({**GRID, "parameters": {"lr": {"values": [0.1]}}})
    api, first_agent = _agent(sweep_id)
    _, second_agent = _agent(sweep_id)
    [command] = _beat(api, first_agent)
    run = _start_run(command["run_id"], {"lr": 0.1})

    assert _beat(api, second_agent) == [{"type": "exit"}]  # nothing left for it
    assert _sweep_state(sweep_id) == "RUNNING"  # but a run is still active
    run.finish()
    assert _beat(api, first_agent) == [{"type": "exit"}]
    assert _sweep_state(sweep_id) == "FINISHED"


def test_states_w_and_b_does_not_have_are_refused(wandb_server: WandbServer) -> None:
    sweep_id = _sweep(GRID)
    storage_id = wandb_server.sweeps[sweep_id].storage_id
    mutation = (
        "mutation UpsertSweep($id: ID, $state: String) "
        "{ upsertSweep(input: {id: $id, state: $state}) { sweep { name } } }"
    )

    for state in ("STOPPED", "FAILED"):
        status, answer = _post_graphql(wandb_server, mutation, {"id": storage_id, "state": state})
        assert status == 400, answer
        assert wandb_server.sweeps[sweep_id].state == "RUNNING"
    assert wandb_server.errors == []


# -- 4. run_cap, early_terminate and metric.target, applied by the server ------------


def _finished_run(run_id: str, losses: list[float]) -> None:
    run = _start_run(run_id)
    for loss in losses:
        run.log({"loss": loss})
    run.finish()


def test_run_cap_ends_the_sweep_and_the_expected_count_is_the_grid_size(
    wandb_server: WandbServer,
) -> None:
    sweep_id = _sweep({**GRID, "run_cap": 2})
    api, agent = _agent(sweep_id)

    handed = []
    for _ in range(4):
        [command] = _beat(api, agent)
        if command["type"] == "exit":
            break
        handed.append(command["run_id"])
        _finished_run(command["run_id"], [0.5])

    assert len(handed) == 2  # W&B docs, sweep config keys: run_cap
    assert _sweep_state(sweep_id) == "FINISHED"
    sweep = _api().sweep(f"{ENTITY}/{PROJECT}/{sweep_id}")
    assert sweep.expected_run_count == 3  # the grid's points, not run_cap
    random_id = _sweep({**GRID, "method": "random", "run_cap": 5})
    assert _api().sweep(f"{ENTITY}/{PROJECT}/{random_id}").expected_run_count is None


def test_the_grid_size_counts_as_w_and_bs_grid_walks() -> None:
    from wandb_server.state import grid_size

    config = {
        "method": "grid",
        "parameters": {
            "a": {"values": [1, 2, 3]},
            "b": {"value": 7},
            "c": {"distribution": "int_uniform", "min": 2, "max": 5},
            "d": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
            "nested": {"parameters": {"e": {"values": ["x", "y"]}}},
        },
    }

    assert grid_size(config) == 3 * 1 * 4 * 4 * 2
    assert grid_size({**config, "method": "bayes"}) is None
    continuous = {"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}}
    assert grid_size(continuous) is None


def test_hyperband_on_the_server_stops_a_run_that_falls_behind(
    wandb_server: WandbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wandb-core posts file_stream at most every 15 s by default; 1 s lets a live run's
    # history arrive while the test waits.
    monkeypatch.setenv("WANDB__FILE_STREAM_TRANSMIT_INTERVAL", "1")
    sweep_id = _sweep({**GRID, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2}})
    api, agent = _agent(sweep_id)
    for losses in ([10.0, 1.0, 1.0], [10.0, 2.0, 2.0]):
        [command] = _beat(api, agent)
        _finished_run(command["run_id"], losses)
    [command] = _beat(api, agent)
    run = _start_run(command["run_id"])
    run.log({"loss": 10.0})
    assert _beat(api, agent, [run.id]) == []  # nothing to compare at band 1 yet

    run.log({"loss": 9.0})  # band 1 (iteration 1): 9 is past the threshold 2 of [1, 2, 9]
    deadline = time.monotonic() + 30
    while len(wandb_server.runs[run.id].history) < 2:
        assert time.monotonic() < deadline, "the run's history never arrived"
        time.sleep(0.2)

    assert _beat(api, agent, [run.id]) == [{"type": "stop", "run_id": run.id}]
    assert _post_file_stream(wandb_server, run.id, {"files": {}})["stopped"] is True
    run.finish()
    assert wandb_server.runs[run.id].state == "killed"
    assert _beat(api, agent) == [{"type": "exit"}]  # the grid's 3 points are out
    assert _sweep_state(sweep_id) == "FINISHED"


def test_a_run_reaching_metric_target_finishes_the_sweep_and_lets_others_finish(
    wandb_server: WandbServer,
) -> None:
    sweep_id = _sweep({**GRID, "metric": {"name": "loss", "goal": "minimize", "target": 0.5}})
    api, first = _agent(sweep_id)
    _, second = _agent(sweep_id)
    [one] = _beat(api, first)
    [two] = _beat(api, second)
    other = _start_run(two["run_id"])
    other.log({"loss": 3.0})

    _finished_run(one["run_id"], [2.0, 0.4])  # reaches 0.5

    assert _sweep_state(sweep_id) == "FINISHED"
    assert _beat(api, second, [other.id]) == []  # the other run goes on
    assert _post_file_stream(wandb_server, other.id, {"files": {}})["stopped"] is False
    assert _beat(api, first) == [{"type": "exit"}]  # nothing new
    other.finish()
    assert wandb_server.runs[other.id].state == "finished"
    assert len(wandb_server.sweeps[sweep_id].run_ids) == 2


# -- 5. a silent run is crashed after the server's timeout, not at once ----------------


def test_a_run_its_agent_stops_listing_is_crashed_only_once_silent_for_the_timeout(
    wandb_server: WandbServer,
) -> None:
    wandb_server.state.crash_after_s = 1.0
    sweep_id = _sweep(GRID)
    api, agent = _agent(sweep_id)
    [command] = _beat(api, agent)
    run_id = command["run_id"]
    _post_file_stream(wandb_server, run_id, {"files": {}})  # the run starts
    assert wandb_server.runs[run_id].state == "running"

    [following] = _beat(api, agent)  # its process is gone: the agent no longer lists it

    assert following["type"] == "run"  # the idle agent gets the next point
    assert wandb_server.runs[run_id].state == "running"  # not crashed at once
    time.sleep(1.3)
    assert wandb_server.runs[run_id].state == "crashed"
    assert _api().run(f"{ENTITY}/{PROJECT}/{run_id}").state == "crashed"


def test_a_run_kept_alive_by_agent_heartbeats_or_file_stream_is_not_crashed(
    wandb_server: WandbServer,
) -> None:
    wandb_server.state.crash_after_s = 2.0
    sweep_id = _sweep(GRID)
    api, first = _agent(sweep_id)
    _, second = _agent(sweep_id)
    [listed] = _beat(api, first)
    [streaming] = _beat(api, second)
    for run_id in (listed["run_id"], streaming["run_id"]):
        _post_file_stream(wandb_server, run_id, {"files": {}})

    for _ in range(6):  # 3 s in all, past the 2 s window
        time.sleep(0.5)
        assert _beat(api, first, [listed["run_id"]]) == []
        _post_file_stream(wandb_server, streaming["run_id"], {"files": {}})

    assert wandb_server.runs[listed["run_id"]].state == "running"
    assert wandb_server.runs[streaming["run_id"]].state == "running"


def test_a_silent_preempting_run_is_preempted_and_requeued(wandb_server: WandbServer) -> None:
    wandb_server.state.crash_after_s = 1.0
    sweep_id = _sweep(GRID)
    api, agent = _agent(sweep_id)
    [command] = _beat(api, agent)
    _post_file_stream(wandb_server, command["run_id"], {"files": {}, "preempting": True})
    _, other = _agent(sweep_id)

    time.sleep(1.3)

    assert wandb_server.runs[command["run_id"]].state == "preempted"
    [resume] = _beat(api, other)
    assert (resume["type"], resume["run_id"]) == ("resume", command["run_id"])


# -- 6. listing order and server features --------------------------------------------


def test_sweeps_are_listed_newest_first(wandb_server: WandbServer) -> None:
    made = [_sweep({**GRID, "name": f"sweep-{i}"}) for i in range(3)]

    listed = [s.id for s in _api().project(PROJECT, ENTITY).sweeps()]

    assert listed == made[::-1]


def test_server_features_are_a_current_servers(wandb_server: WandbServer) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    service_api = _api()._service_api

    assert service_api.feature_enabled(pb.SWEEPS_QUERY_FILTERING)
    assert service_api.feature_enabled(pb.MARK_RUN_FILES_UPLOADED)
    assert service_api.feature_enabled(pb.STRUCTURED_CONSOLE_LOGS)
    # The local sweep scheduler's enqueueSweepRun is served (issue 23 §3).
    assert service_api.feature_enabled(pb.SWEEPS_LOCAL_SCHEDULER)
    # A part the stand-in does not serve is reported unsupported, as an old server would.
    assert not service_api.feature_enabled(pb.ARTIFACT_TAGS)

"""Real agent processes on a real store: concurrency, crashes, kills, preemption, early stop."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, start_agent, wait_for

# Every test here starts `sweeper agent` processes (each imports torch) and waits on real trials.
pytestmark = pytest.mark.slow


def _runs(backend: Any, sweep_id: str) -> list[dict[str, Any]]:
    return [backend.run(run_id) for run_id in backend.runs(sweep_id)["run_id"]]


def test_three_agents_share_a_grid_without_duplicates_or_gaps(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    xs = [float(x) for x in range(12)]
    sweep_id = make_sweep(
        probe_spec(
            search={"x": xs},
            base={"epochs": 2, "epoch_seconds": 0.3},
        )
    )
    agents = [start_agent(sweep_id, store) for _ in range(3)]
    for agent in agents:
        out, _ = agent.communicate(timeout=180)
        assert agent.returncode == 0, out
    runs = _runs(backend, sweep_id)
    assert sorted(r["params"]["x"]["value"] for r in runs) == xs
    assert all(r["state"] == "finished" and r["attempt"] == 1 for r in runs)
    assert len({r["agent"] for r in runs}) >= 2, "the agents should have shared the work"
    assert backend.is_complete(sweep_id)


def test_a_killed_agents_trial_is_requeued_and_completed_once(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(
        probe_spec(
            search={"x": [0.0, 1.0]},
            # 1 s epochs: a save is skipped when it costs over 5% of the time since the last
            # (Checkpoint.due), which a loaded machine's save can at shorter epochs
            base={"epochs": 6, "epoch_seconds": 1.0},
        )
    )
    doomed = start_agent(sweep_id, store, "--count", "1", "--heartbeat-timeout", "2")
    wait_for(  # epoch 2 logged: the checkpoint of epoch 1 was written before it began
        lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 3,
        what="the first trial to log three epochs",
    )
    victim = backend.runs(sweep_id)["run_id"].iloc[0]
    doomed.kill()  # SIGKILL: no chance to clean up
    doomed.wait()
    survivor = start_agent(sweep_id, store, "--heartbeat-timeout", "2")
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out
    runs = {r["id"]: r for r in _runs(backend, sweep_id)}
    assert len(runs) == 2 and all(r["state"] == "finished" for r in runs.values())
    assert runs[victim]["attempt"] == 2
    history = backend.history([victim])
    assert sorted(history["_step"]) == list(range(6)), "each epoch recorded exactly once"
    # checkpointed every epoch: the second attempt goes on from the last one, not epoch 0
    assert runs[victim]["summary"]["resumed_from"] >= 2


def test_crashing_trials_are_recorded_and_the_agent_goes_on(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(
        probe_spec(search={"crash": ["raise", "segfault", "exit", "nan", "none"]})
    )
    agent = start_agent(sweep_id, store)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 0, out
    by_crash = {r["params"]["crash"]["value"]: r for r in _runs(backend, sweep_id)}
    expected = {
        "raise": ("failed", "RuntimeError: boom at epoch 0"),
        "segfault": ("crashed", "trial process died (killed by SIGSEGV)"),
        "exit": ("crashed", "trial process died (exit code 3)"),
        "nan": ("failed", "the metric 'loss' is nan at step 0"),
    }
    for crash, (state, first_line) in expected.items():
        assert by_crash[crash]["state"] == state
        assert by_crash[crash]["error"].splitlines()[0] == first_line
    assert "Traceback" in by_crash["raise"]["error"]
    assert by_crash["none"]["state"] == "finished"


def test_five_failures_in_a_row_stop_the_agent(backend: Any, make_sweep: Any, store: Path) -> None:
    sweep_id = make_sweep(
        probe_spec(
            base={"crash": "raise"},
            search={"x": [float(x) for x in range(8)]},
        )
    )
    agent = start_agent(sweep_id, store)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 1
    assert "5 trials failed in a row with no success" in out
    assert len(backend.runs(sweep_id)) == 5


def test_sigterm_preempts_requeues_and_the_trial_resumes_from_its_checkpoint(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(
        probe_spec(
            search={"x": [3.0]},
            base={"epochs": 8, "epoch_seconds": 0.3},
        )
    )
    agent = start_agent(sweep_id, store)
    wait_for(
        lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 2, what="two epochs"
    )
    os.kill(agent.pid, signal.SIGTERM)
    out, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, out
    (run,) = _runs(backend, sweep_id)
    assert run["state"] == "preempted"
    assert run["error"] == "requeued: SIGTERM"
    done = len(backend.history([run["id"]]))
    assert (backend.run_dir(run["id"]) / "checkpoint.pt").exists()

    again = start_agent(sweep_id, store)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0, out
    (run,) = _runs(backend, sweep_id)
    assert (run["state"], run["attempt"]) == ("finished", 2)
    assert run["summary"]["resumed_from"] == done
    assert run["summary"]["epochs_run"] == 8 - done
    assert sorted(backend.history([run["id"]])["_step"]) == list(range(8))


def test_hyperband_stops_a_bad_trial_early(backend: Any, make_sweep: Any, store: Path) -> None:
    sweep_id = make_sweep(
        probe_spec(
            search={"x": [1.0, 1.5, 9.0]},
            base={"epochs": 6},
            early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2},
        )
    )
    agent = start_agent(sweep_id, store)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 0, out
    by_x = {r["params"]["x"]["value"]: r for r in _runs(backend, sweep_id)}
    assert by_x[9.0]["state"] == "stopped"
    assert len(backend.history([by_x[9.0]["id"]])) < 6
    for good in (1.0, 1.5):
        assert by_x[good]["state"] == "finished"
        assert len(backend.history([by_x[good]["id"]])) == 6


def test_ctrl_c_is_recorded_as_sigint_and_requeues(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    sweep_id = make_sweep(
        probe_spec(search={"x": [3.0]}, base={"epochs": 30, "epoch_seconds": 0.3})
    )
    agent = start_agent(sweep_id, store)
    wait_for(
        lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 1, what="an epoch"
    )
    os.kill(agent.pid, signal.SIGINT)
    out, _ = agent.communicate(timeout=60)
    (run,) = _runs(backend, sweep_id)
    assert (run["state"], run["error"]) == ("preempted", "requeued: SIGINT"), out


def test_a_trial_past_its_timeout_is_killed_and_failed_with_that_reason(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    spec = probe_spec(search={"x": [3.0]}, base={"epochs": 50, "epoch_seconds": 0.3})
    sweep_id = make_sweep({**spec, "agents": {"trial_timeout": 2}})
    agent = start_agent(sweep_id, store)
    out, _ = agent.communicate(timeout=60)
    (run,) = _runs(backend, sweep_id)
    assert run["state"] == "failed", out
    assert run["error"].startswith("timed out after 2 s (agents.trial_timeout)")
    assert 0 < len(backend.history([run["id"]])) < 50
    override = start_agent(make_sweep(spec), store, "--trial-timeout", "1.5")
    out, _ = override.communicate(timeout=60)
    assert "timed out after 1.5 s" in out


def test_a_standby_killed_while_it_waits_is_replaced_and_none_outlives_the_agent(
    backend: Any, make_sweep: Any, store: Path
) -> None:
    from sweeper.agent.loop import Agent, AgentOptions

    sweep_id = make_sweep(probe_spec(base={"epochs": 1}, search={"x": [0.0, 1.0]}))
    agent = Agent(AgentOptions(sweep_id, store=store, wandb_mode="disabled", poll=0.05))
    first = agent._fork_standby()
    agent._standby = first
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.join()

    assert agent.run() == 0  # a dead standby is not sent a trial: a fresh one is forked
    assert list(backend.runs(sweep_id)["state"]) == ["finished", "finished"]
    assert first.process.exitcode == -signal.SIGKILL and agent._standby is None

"""The Backend protocol, one suite over every backend (conftest.BACKENDS: the SQLite store and
the W&B backend against the stand-in server): claims, caps, a trial's record through its sink,
the run table and history, and an unknown sweep.

Only protocol members are called, so a test that passes here passes on every backend; what one
backend alone does (fencing by attempt, requeue order, hyperband in the store; W&B's stop
command, outages) stays in test_backend.py and test_backend_wandb.py. On W&B an agent slot
holds one run at a time (W&B hands each agent one), so concurrent claims use one slot each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from conftest import probe_spec

from sweeper.backends.base import Backend, Claim, TrialSink
from sweeper.errors import NotFoundError, SweeperError
from sweeper.sweep import RunState, SweepState


def _trial(backend: Backend, claim: Claim) -> TrialSink:
    """The claim's sink, opened as the agent's trial child opens it, its config recorded
    (on W&B this opens the run the server created, online)."""
    mode = "online" if backend.kind == "wandb" else "disabled"
    sink = backend.open_sink(claim, backend.sweep(claim.sweep_id or ""), wandb_mode=mode)
    sink.record_meta({"config": dict(claim.params)})
    return sink


def _finish(backend: Backend, claim: Claim, state: RunState, summary: Mapping[str, Any]) -> bool:
    """Record a claimed trial's end through its sink, as the agent does."""
    sink = _trial(backend, claim)
    try:
        return sink.finish(state, summary=summary)
    finally:
        sink.close()


def test_claims_walk_the_grid_then_report_exhaustion(any_backend: Any, make_any_sweep: Any) -> None:
    backend = any_backend
    sweep_id = make_any_sweep(probe_spec())
    claims = [backend.claim(sweep_id, f"a{i}") for i in range(3)]
    assert sorted(c.params["x"] for c in claims) == [0.0, 1.0, 2.0]
    assert backend.claim(sweep_id, "a3") is None
    assert backend.sweep(sweep_id).exhausted
    assert not backend.is_complete(sweep_id)  # still running
    for claim in claims:
        assert _finish(backend, claim, RunState.FINISHED, {"loss": claim.params["x"]})
    assert backend.is_complete(sweep_id)


def test_run_cap_is_enforced_for_random_search(any_backend: Any, make_any_sweep: Any) -> None:
    backend = any_backend
    sweep_id = make_any_sweep(
        probe_spec(method="random", run_cap=4, search={"x": {"min": 0.0, "max": 2.0}})
    )
    claims = [backend.claim(sweep_id, f"a{i}") for i in range(6)]
    assert sum(c is not None for c in claims) == 4
    assert len(backend.runs(sweep_id)) == 4


def test_unknown_sweep_is_a_clear_error(any_backend: Any) -> None:
    backend = any_backend
    with pytest.raises(NotFoundError, match="no sweep 'nope'"):
        backend.sweep("nope")
    with pytest.raises(NotFoundError, match="no sweep 'nope'"):
        backend.claim("nope", "a")


def test_run_table_has_config_and_summary_columns(any_backend: Any, make_any_sweep: Any) -> None:
    backend = any_backend
    sweep_id = make_any_sweep(probe_spec(search={"x": [0.0, 2.0]}))
    for _ in range(2):
        claim = backend.claim(sweep_id, "a")
        sink = _trial(backend, claim)
        sink.log(0, {"loss": 1.5})
        sink.finish(RunState.FINISHED, summary={"loss": claim.params["x"]})
        sink.close()
    table = backend.runs(sweep_id)
    assert {"run_id", "state", "config.x", "config.epochs", "summary.loss", "runtime"} <= set(table)
    assert sorted(table["summary.loss"]) == [0.0, 2.0]
    history = backend.history(list(table["run_id"]))
    assert list(history.columns) == ["run_id", "_step", "loss"] and len(history) == 2


def test_a_trials_record_reads_back_as_logged(any_backend: Any, make_any_sweep: Any) -> None:
    backend = any_backend
    sweep_id = make_any_sweep(probe_spec(search={"x": [2.0]}))
    claim = backend.claim(sweep_id, "a")
    sink = _trial(backend, claim)
    assert sink.log(0, {"loss": 3.0, "acc": 0.25}) and sink.log(1, {"loss": 2.0})
    assert sink.finish(RunState.FAILED, summary={"loss": 2.0}, error="RuntimeError: boom\nat")
    sink.close()
    run = backend.run(claim.run_id)
    assert (run["id"], run["sweep_id"], run["state"]) == (claim.run_id, sweep_id, "failed")
    assert run["params"]["x"] == {"value": 2.0} and run["meta"]["config"]["x"] == 2.0
    assert run["summary"]["loss"] == 2.0 and run["error"].startswith("RuntimeError: boom")
    assert backend.logged_rows(claim.run_id) == [
        (0, {"loss": 3.0, "acc": 0.25}),
        (1, {"loss": 2.0}),
    ]
    with pytest.raises(NotFoundError):
        backend.run("nosuchrun")


def test_pause_resume_and_stop_govern_claims_as_w_and_b_does(
    any_backend: Any, make_any_sweep: Any
) -> None:
    """W&B's meanings ("Pause, resume, stop and cancel sweeps"): paused hands out nothing and
    is not complete (agents wait); resumed hands out again; finished (`stop`) hands out
    nothing, lets the running trial end, and is complete once it has."""
    backend = any_backend
    sweep_id = make_any_sweep(probe_spec())
    first = backend.claim(sweep_id, "a0")
    assert first is not None
    assert backend.set_sweep_state(sweep_id, SweepState.PAUSED) == SweepState.PAUSED
    assert backend.sweep(sweep_id).state == SweepState.PAUSED
    assert backend.claim(sweep_id, "a1") is None
    assert _finish(backend, first, RunState.FINISHED, {"loss": 1.0})
    assert not backend.is_complete(sweep_id), "a paused sweep waits for a resume"
    assert backend.set_sweep_state(sweep_id, SweepState.RUNNING) == SweepState.RUNNING
    second = backend.claim(sweep_id, "a1")
    assert second is not None and second.params["x"] != first.params["x"]
    assert backend.set_sweep_state(sweep_id, SweepState.FINISHED) == SweepState.FINISHED
    assert backend.claim(sweep_id, "a2") is None
    assert not backend.is_complete(sweep_id), "its running trial goes on"
    assert _finish(backend, second, RunState.FINISHED, {"loss": 2.0})
    assert backend.is_complete(sweep_id) and len(backend.runs(sweep_id)) == 2
    with pytest.raises(SweeperError, match=r"cannot cancel sweep .*: it is already finished"):
        backend.set_sweep_state(sweep_id, SweepState.CANCELED)
    with pytest.raises(SweeperError, match=r"cannot pause sweep .*: it is already finished"):
        backend.set_sweep_state(sweep_id, SweepState.PAUSED)
    assert backend.sweep(sweep_id).state == SweepState.FINISHED
    with pytest.raises(NotFoundError):
        backend.set_sweep_state(_missing(backend, sweep_id), SweepState.PAUSED)


def test_cancel_tells_the_running_trial_to_stop_and_hands_out_nothing(
    any_backend: Any, make_any_sweep: Any
) -> None:
    """A canceled sweep's running trial is told to stop: by its sink (a store marks it, read at
    the trial's next epoch) or by its agent's heartbeat (W&B's stop command)."""
    backend = any_backend
    sweep_id = make_any_sweep(probe_spec())
    claim = backend.claim(sweep_id, "a0")
    sink = _trial(backend, claim)
    try:

        def told_to_stop() -> bool:
            return sink.should_stop() or backend.heartbeat(claim.run_id, claim.attempt) == "stop"

        assert not told_to_stop()
        assert backend.set_sweep_state(sweep_id, SweepState.CANCELED) == SweepState.CANCELED
        assert told_to_stop()
        assert backend.claim(sweep_id, "a1") is None
        assert sink.finish(RunState.STOPPED, summary={"loss": 1.0})
    finally:
        sink.close()
    assert backend.sweep(sweep_id).state == SweepState.CANCELED
    assert backend.is_complete(sweep_id) and len(backend.runs(sweep_id)) == 1


def _missing(backend: Backend, sweep_id: str) -> str:
    """A sweep id the backend has no sweep for, in the form it takes (on W&B: a path)."""
    return sweep_id.rsplit("/", 1)[0] + "/nosuch00" if "/" in sweep_id else "nosuch00"

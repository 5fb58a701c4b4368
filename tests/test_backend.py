"""The SQLite store around the `sweeps` engine: fencing, requeue order, early stop (what the
protocol suite over every backend, test_backend_protocol.py, does not cover)."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec

from sweeper.sweep import RunView
from sweeper.sweep.engine import next_params, runs_to_stop


def test_a_requeued_attempt_can_no_longer_write(backend: Any, make_sweep: Any) -> None:
    sweep_id = make_sweep(probe_spec(search={"x": [0.0]}))
    first = backend.claim(sweep_id, "a")
    assert backend.log(first.run_id, first.attempt, 0, {"loss": 3.0})
    time.sleep(0.05)
    second = backend.claim(sweep_id, "b", heartbeat_timeout=0.01)  # a's heartbeat lapsed
    assert second.run_id == first.run_id and second.attempt == first.attempt + 1
    assert not backend.log(first.run_id, first.attempt, 1, {"loss": 2.0})
    assert backend.heartbeat(first.run_id, first.attempt) == "lost"
    assert not backend.finish(first.run_id, first.attempt, "finished", {"loss": 2.0})
    assert backend.finish(second.run_id, second.attempt, "finished", {"loss": 1.0})
    run = backend.run(first.run_id)
    assert (run["state"], run["summary"]["loss"], run["attempt"]) == ("finished", 1.0, 2)


def test_preempted_runs_are_handed_out_before_new_points(backend: Any, make_sweep: Any) -> None:
    sweep_id = make_sweep(probe_spec())
    first = backend.claim(sweep_id, "a")
    backend.finish(first.run_id, first.attempt, "preempted", error="requeued: SIGTERM")
    again = backend.claim(sweep_id, "b")
    assert (again.run_id, again.attempt, again.params) == (first.run_id, 2, first.params)


def test_hyperband_stops_the_run_behind_the_band(backend: Any, make_sweep: Any) -> None:
    sweep_id = make_sweep(
        probe_spec(
            search={"x": [1.0, 1.5, 9.0]},
            early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2},
        )
    )
    claims = {c.params["x"]: c for c in (backend.claim(sweep_id, "a") for _ in range(3))}
    for x, claim in claims.items():
        for step in range(3):
            backend.log(claim.run_id, claim.attempt, step, {"loss": (x - 1) ** 2 + 1 / (step + 1)})
    assert backend.should_stop(claims[9.0].run_id)
    assert not backend.should_stop(claims[1.0].run_id)
    assert backend.run(claims[9.0].run_id)["should_stop"] == 1


def test_the_engine_adapter_is_pure() -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1, 2]}},
    }
    done = RunView("r1", "finished", {"x": {"value": 1}}, {"loss": 0.5})
    assert next_params(config, [done]) == {"x": {"value": 2}}
    assert next_params(config, [done], run_cap=1) is None
    assert runs_to_stop(config, [done]) == []


def test_both_backends_implement_the_whole_protocol(backend: Any, tmp_path: Path) -> None:
    from sweeper.backends.base import Backend
    from sweeper.backends.wandb import WandbBackend

    wanted = [n for n in {*vars(Backend), *Backend.__annotations__} if not n.startswith("_")]
    for implementation in (backend, WandbBackend(tmp_path / "sweeper.db")):
        missing = []
        for name in wanted:
            try:  # static: a W&B property must not reach for a server here
                inspect.getattr_static(implementation, name)
            except AttributeError:
                missing.append(name)
        assert not missing, (type(implementation).__name__, missing)


def test_a_sweep_over_seeds_alone_has_one_configuration() -> None:
    import pandas as pd

    from sweeper.sweep import best_configuration, config_table

    runs = pd.DataFrame(
        {"state": ["finished", "finished", "failed"], "summary.loss": [1.0, 3.0, None]}
    )
    table = config_table(runs, [], "loss", "minimize")
    assert table[["mean", "std", "n"]].to_dict("records") == [
        {"mean": 2.0, "std": pytest.approx(1.4142, 1e-4), "n": 2}
    ]
    best = best_configuration(runs, [], "loss", "minimize")
    assert best is not None and best.config == {} and best.best_value == 1.0

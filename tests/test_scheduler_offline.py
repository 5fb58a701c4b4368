"""W&B's scheduler engines (`scheduler:` sweeps) driven offline over the store (issue 23 §2):
one lease holder keeps `batch_size` runs in flight as pending runs, agents claim them (the
`sweeps` engine is never asked), ended runs are told back, pruned runs are stopped through
`should_stop`, a lapsed holder's lease is taken and the optimizer rebuilt from the stored runs.
Store-level tests run over SQLite, PostgreSQL and the in-memory store with a fake clock; the
process-level ones (marked slow) run real `sweeper agent` processes over a SQLite store."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import start_agent, wait_for
from helpers import sweep_record
from test_coordinator import FakeClock, MemoryStore

import sweeper.backends.coordinator as coordinator_module
from sweeper.backends.coordinator import Coordinator
from sweeper.backends.scheduler import (
    BATCH_SIZE,
    SchedulerStore,
    SweepScheduler,
    build_optimizer,
    check_engine,
)
from sweeper.backends.sqlite import SqliteStore
from sweeper.errors import SweeperError
from sweeper.sweep import RunState, SweepState

pytest.importorskip("optuna", reason="the optuna extra (uv sync --extra optuna)")

BI = [{"name": "f1", "goal": "minimize"}, {"name": "f2", "goal": "minimize"}]
SPACE = {"x": {"min": 0.0, "max": 2.0}, "y": {"min": 0.0, "max": 2.0}}
OPTUNA_MO: dict[str, Any] = {
    "method": "custom",
    "metrics": BI,
    "parameters": SPACE,
    "scheduler": {"engine": "optuna"},
}
LEASE = 30.0


class HistoryMemoryStore(MemoryStore):
    """The coordinator tests' in-memory store, plus the history reads the scheduler makes."""

    def history_rows(
        self, run_ids: list[str], metrics: list[str] | None = None
    ) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for run_id in run_ids:
            for step, logged in self.data.history.get(run_id, {}).items():
                if metrics is None:
                    rows.append((run_id, step, dict(logged)))
                else:
                    rows.append((run_id, step, *(logged.get(m) for m in metrics)))
        return rows


@dataclass
class Setup:
    store: SchedulerStore
    clock: FakeClock

    def sweep(self, config: Mapping[str, Any], seed: int | None = 7, sweep_id: str = "sw1") -> str:
        with self.store.transaction() as tx:
            tx.insert_sweep(sweep_record(sweep_id, config, tx.now, seed=seed))
        return sweep_id

    def scheduler(self, holder: str, sweep_id: str = "sw1", batch_size: int = 3) -> SweepScheduler:
        return SweepScheduler(
            self.store,
            sweep_id,
            holder,
            batch_size=batch_size,
            lease=LEASE,
            every=0.0,
            clock=self.clock,
        )


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    clock = FakeClock()
    if request.param == "memory":
        yield Setup(HistoryMemoryStore(clock), clock)
        return
    if request.param == "postgresql":
        from sweeper.backends.postgres import PostgresStore

        postgres = PostgresStore(request.getfixturevalue("postgres_url"), clock=clock)
        yield Setup(postgres, clock)
        postgres.close()
        return
    sqlite = SqliteStore(tmp_path / "sweeper.db", clock=clock)
    yield Setup(sqlite, clock)
    sqlite.close()


@pytest.fixture
def no_sweeps_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim of a scheduled sweep must never ask W&B's `sweeps` engine."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the sweeps engine was asked for a scheduler's sweep")

    for name in ("next_params", "next_random_params", "next_grid_point", "runs_to_stop"):
        monkeypatch.setattr(coordinator_module, name, refuse)


def _run(
    coordinator: Coordinator, sweep_id: str, values: Mapping[str, float] | None = None
) -> dict[str, Any] | None:
    """Claim a run and finish it with f1 = x + y, f2 = (x - 2)^2 + (y - 2)^2 (or `values`)."""
    claim = coordinator.claim(sweep_id, "agent")
    if claim is None:
        return None
    x, y = claim.params.get("x", 0.0), claim.params.get("y", 0.0)
    summary = dict(values or {"f1": x + y, "f2": (x - 2) ** 2 + (y - 2) ** 2})
    assert coordinator.log(claim.run_id, claim.attempt, 0, summary)
    assert coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, summary)
    return claim.params


def _params(setup: Setup, sweep_id: str = "sw1") -> list[tuple[Any, ...]]:
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None
    return [tuple(sorted((k, v["value"]) for k, v in r.params.items())) for r in snapshot.runs]


def _states(setup: Setup, sweep_id: str = "sw1") -> list[RunState]:
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None
    return [RunState(r.state) for r in snapshot.runs]


def test_one_holder_keeps_the_batch_in_flight_and_runs_to_run_cap(
    setup: Setup, no_sweeps_engine: None
) -> None:
    sweep_id = setup.sweep({**OPTUNA_MO, "run_cap": 7})
    holder, other = setup.scheduler("a"), setup.scheduler("b")
    coordinator = Coordinator(setup.store)
    assert coordinator.claim(sweep_id, "agent") is None  # nothing pending yet: the agent polls
    step = holder.step()
    assert step is not None and len(step.suggested) == 3  # batch_size
    assert other.step() is None  # the lease is held: b only claims
    assert _states(setup) == [RunState.PENDING] * 3
    assert holder.step() is not None and len(_states(setup)) == 3  # still 3 in flight
    claimed = coordinator.claim(sweep_id, "agent")
    assert claimed is not None and claimed.run_id == step.suggested[0]
    holder.step()
    assert len(_states(setup)) == 3  # a running run is in flight too: W&B's --batch-size
    assert coordinator.finish(claimed.run_id, claimed.attempt, RunState.FINISHED, {"f1": 1.0})
    for _ in range(30):
        holder.step()
        if _run(coordinator, sweep_id) is None:
            break
    params = _params(setup)
    assert len(params) == 7 and len(set(params)) == 7  # run_cap, no duplicate suggestion
    assert set(_states(setup)) == {RunState.FINISHED}
    sweep = setup.store.sweep(sweep_id)
    assert sweep is not None and sweep.exhausted and sweep.state == SweepState.FINISHED
    assert sweep.lease_holder == "a" and sweep.lease_until == setup.clock.now + LEASE


def _pending(setup: Setup) -> int:
    return _states(setup).count(RunState.PENDING)


def test_finished_runs_are_told_back_to_the_study(setup: Setup) -> None:
    sweep_id = setup.sweep(OPTUNA_MO)
    holder, coordinator = setup.scheduler("a"), Coordinator(setup.store)
    holder.step()
    done = [_run(coordinator, sweep_id) for _ in range(2)]
    holder.step()
    tenure = holder._tenure
    assert tenure is not None
    study = tenure.optimizer.study  # type: ignore[attr-defined]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(tuple(sorted(t.params.items())) for t in complete) == sorted(
        tuple(sorted(p.items())) for p in done if p is not None
    )
    assert all(len(t.values) == 2 for t in complete)  # both objectives


def test_a_lapsed_lease_is_taken_and_the_optimizer_rebuilt_from_the_store(
    setup: Setup, no_sweeps_engine: None
) -> None:
    sweep_id = setup.sweep({**OPTUNA_MO, "run_cap": 9})
    first, second = setup.scheduler("a"), setup.scheduler("b")
    coordinator = Coordinator(setup.store)
    first.step()
    _run(coordinator, sweep_id)
    running = coordinator.claim(sweep_id, "agent")  # in flight when its holder dies
    assert running is not None
    first.step()
    before = _params(setup)
    assert second.step() is None  # held: b only claims
    setup.clock.now += LEASE - 1
    assert second.step() is None  # not lapsed yet
    setup.clock.now += 2  # a died: its lease lapsed
    step = second.step()
    assert step is not None and step.suggested == []  # adopted: still 3 in flight, none new
    assert _params(setup) == before
    tenure = second._tenure
    assert tenure is not None
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None
    active = {r.id for r in snapshot.runs if r.state in (RunState.PENDING, RunState.RUNNING)}
    assert set(tenure.ids) == active  # tell_existing_active_run kept each returned id
    study = tenure.optimizer.study  # type: ignore[attr-defined]
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 1  # the finished one
    assert first.step() is None and not first.holds  # a came back: b holds it now
    summary = {"f1": 0.5, "f2": 0.5}
    assert coordinator.finish(running.run_id, running.attempt, RunState.FINISHED, summary)
    while _run(coordinator, sweep_id) is not None or _pending_after(second, setup):
        pass
    params = _params(setup)
    assert len(params) == 9 and len(set(params)) == 9
    assert set(_states(setup)) == {RunState.FINISHED}
    # The run in flight when a died reached b's optimizer when it ended.
    assert [0.5, 0.5] in [t.values for t in study.trials if t.state.name == "COMPLETE"]


def _pending_after(scheduler: SweepScheduler, setup: Setup) -> bool:
    scheduler.step()
    return _pending(setup) > 0


PRUNING = """
import optuna


def study(sweep):
    return optuna.create_study(
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
"""


def test_the_pruner_stops_a_run_through_should_stop(setup: Setup, tmp_path: Path) -> None:
    (tmp_path / "pruning.py").write_text(PRUNING)
    config = {
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 2.0}},
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "pruning.py"),
            "optimizer": "study",
        },
    }
    sweep_id = setup.sweep(config)
    holder, coordinator = setup.scheduler("a"), Coordinator(setup.store)
    holder.step()
    good = coordinator.claim(sweep_id, "agent")
    assert good is not None
    for step in range(3):
        coordinator.log(good.run_id, good.attempt, step, {"loss": 1.0 / (step + 1)})
    assert coordinator.finish(good.run_id, good.attempt, RunState.FINISHED, {"loss": 0.33})
    holder.step()
    bad = coordinator.claim(sweep_id, "agent")
    assert bad is not None
    coordinator.log(bad.run_id, bad.attempt, 0, {"loss": 50.0})
    assert not coordinator.should_stop(bad.run_id)
    step = holder.step()
    assert step is not None and step.pruned == [bad.run_id]
    assert coordinator.should_stop(bad.run_id)  # what the trial reads each epoch
    # Requeued before its trial read the mark, and claimed afresh (the mark cleared): the
    # scheduler marks it again, as W&B's keeps stopping a pruned run until it stops.
    assert coordinator.finish(bad.run_id, bad.attempt, RunState.PREEMPTED, error="SIGTERM")
    again = coordinator.claim(sweep_id, "agent")
    assert again is not None and again.run_id == bad.run_id
    assert not coordinator.should_stop(bad.run_id)
    step = holder.step()
    assert step is not None and step.pruned == [bad.run_id]
    assert coordinator.should_stop(bad.run_id)
    assert coordinator.finish(bad.run_id, again.attempt, RunState.STOPPED, {"loss": 50.0})
    holder.step()
    tenure = holder._tenure
    assert tenure is not None
    states = sorted(t.state.name for t in tenure.optimizer.study.trials)  # type: ignore[attr-defined]
    assert states[:2] == ["COMPLETE", "PRUNED"]


SEARCH_SPACE = """
def space(trial):
    name = trial.suggest_categorical("optim.name", ["sgd", "adam"])
    params = {"optim.name": name, "optim.lr": trial.suggest_float("optim.lr", 1e-3, 1e-1, log=True)}
    if name == "sgd":
        params["optim.momentum"] = trial.suggest_float("optim.momentum", 0.0, 0.95)
    return params
"""


def test_a_define_by_run_space_gives_conditional_parameters(setup: Setup, tmp_path: Path) -> None:
    (tmp_path / "space.py").write_text(SEARCH_SPACE)
    config = {
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"optim.name": {"values": ["sgd", "adam"]}},
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "space.py"),
            "search_space": "space",
        },
        "run_cap": 12,
    }
    sweep_id = setup.sweep(config)
    setup.scheduler("a", batch_size=12).step()
    snapshot = setup.store.snapshot(sweep_id)
    assert snapshot is not None and len(snapshot.runs) == 12
    names = set()
    for run in snapshot.runs:
        name = run.params["optim.name"]["value"]
        names.add(name)
        assert ("optim.momentum" in run.params) == (name == "sgd")
    assert names == {"sgd", "adam"}


def test_the_same_seed_suggests_the_same_configs_in_order(setup: Setup) -> None:
    runs = []
    for sweep_id, seed in (("s1", 11), ("s2", 11), ("s3", 12)):
        setup.sweep({**OPTUNA_MO, "run_cap": 5, "scheduler": {"engine": "optuna"}}, seed, sweep_id)
        setup.scheduler("a", sweep_id, batch_size=BATCH_SIZE).step()
        runs.append(_params(setup, sweep_id))
    assert len(runs[0]) == 5
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_a_rebuilt_seeded_study_does_not_draw_the_first_configs_again(setup: Setup) -> None:
    sweep_id = setup.sweep({**OPTUNA_MO, "scheduler": {"engine": "optuna"}})
    coordinator = Coordinator(setup.store)
    setup.scheduler("a", batch_size=2).step()
    _run(coordinator, sweep_id)
    _run(coordinator, sweep_id)
    setup.clock.now += LEASE + 1
    setup.scheduler("b", batch_size=2).step()
    params = _params(setup)
    assert len(params) == 4 and len(set(params)) == 4


def test_the_wandb_engine_suggests_through_sweeps(setup: Setup) -> None:
    config = {
        "method": "random",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}, "act": {"values": ["relu", "tanh"]}},
        "scheduler": {"engine": "wandb"},
        "run_cap": 4,
    }
    sweep_id = setup.sweep(config)
    holder, coordinator = setup.scheduler("a"), Coordinator(setup.store)
    while holder.step() is not None and _run(coordinator, sweep_id, {"loss": 1.0}) is not None:
        pass
    params = _params(setup)
    assert len(params) == 4 and len(set(params)) == 4
    for run in params:
        values = dict(run)
        assert 0.0 <= values["x"] <= 1.0 and values["act"] in ("relu", "tanh")
    sweep = setup.store.sweep(sweep_id)
    assert sweep is not None and sweep.state == SweepState.FINISHED


def test_by_default_wandbs_batch_of_ten_is_kept_in_flight(setup: Setup) -> None:
    setup.sweep(OPTUNA_MO)
    scheduler = SweepScheduler(setup.store, "sw1", "a")
    assert scheduler.step() is not None and len(_states(setup)) == BATCH_SIZE == 10


def test_an_engine_whose_package_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("optuna", "ax") else real(name),
    )
    with pytest.raises(SweeperError, match=r"not installed; install uv sync --extra optuna"):
        check_engine({"scheduler": {"engine": "optuna"}})
    with pytest.raises(
        SweeperError, match=r"'ax' package is not installed; install uv pip install 'ax-platform"
    ):
        check_engine({"scheduler": {"engine": "ax"}})
    check_engine({"scheduler": {"engine": "wandb"}})  # W&B's sweeps: a dependency


def test_a_factory_that_does_not_load_is_one_line(tmp_path: Path) -> None:
    config = {
        **OPTUNA_MO,
        "scheduler": {"engine": "optuna", "source": str(tmp_path / "nope.py"), "optimizer": "f"},
    }
    record = sweep_record("sw", config, trainer="")
    with pytest.raises(SweeperError) as caught:
        build_optimizer(record)
    assert "\n" not in str(caught.value) and "sweep sw: scheduler:" in str(caught.value)


# A define-by-run space in the run table -------------------------------------------------------


def test_the_run_table_leaves_a_parameter_a_run_never_had_empty(tmp_path: Path) -> None:
    from sweeper.backends.local import LocalBackend

    (tmp_path / "space.py").write_text(SEARCH_SPACE)
    config = {
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"optim.name": {"values": ["sgd", "adam"]}},
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "space.py"),
            "search_space": "space",
        },
    }
    backend = LocalBackend(tmp_path / "sweeper.db")
    try:
        sweep_id = _insert_sweep(backend, config, trainer="probe", seed=3)
        SweepScheduler(backend.store, sweep_id, "a", batch_size=12).step()
        for _ in range(12):
            _run(backend.coordinator, sweep_id, {"loss": 1.0})
        table = backend.runs(sweep_id)
    finally:
        backend.close()
    assert len(table) == 12
    sgd = table["config.optim.name"] == "sgd"
    assert sgd.any() and (~sgd).any()
    assert table.loc[sgd, "config.optim.momentum"].notna().all()
    assert table.loc[~sgd, "config.optim.momentum"].isna().all()


WIDTHS = """
def space(trial):
    params = {"opt": trial.suggest_categorical("opt", ["sgd", "adam"])}
    params["width"] = trial.suggest_categorical("width", [4, 8])
    if params["opt"] == "sgd":
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.9)
    return params
"""


def test_the_report_searches_what_a_define_by_run_space_gave(tmp_path: Path) -> None:
    """A `parameters:` block that lists `width` alone: the report's tables and files also
    search `opt` and `momentum`, which only the space gives, and keep sgd and adam apart."""
    import pandas as pd

    from sweeper.backends.local import LocalBackend
    from sweeper.report.build import build_report
    from sweeper.report.load import report_data

    (tmp_path / "space.py").write_text(WIDTHS)
    config = {
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"width": {"values": [4, 8]}},
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "space.py"),
            "search_space": "space",
        },
    }
    backend = LocalBackend(tmp_path / "sweeper.db")
    try:
        sweep_id = _insert_sweep(backend, config, seed=5)
        SweepScheduler(backend.store, sweep_id, "a", batch_size=16).step()
        while (claim := backend.coordinator.claim(sweep_id, "agent")) is not None:
            loss = {"loss": claim.params["width"] + (10.0 if claim.params["opt"] == "sgd" else 0.0)}
            backend.coordinator.log(claim.run_id, claim.attempt, 0, loss)
            backend.coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, loss)
        data = report_data(backend, sweep_id)
        folder = build_report(data, tmp_path / "report", fmt="md")
    finally:
        backend.close()
    assert data.params[0] == "width" and sorted(data.params) == ["momentum", "opt", "width"]
    assert {p.name for p in folder.glob("param_*.csv")} == {
        "param_width.csv",
        "param_opt.csv",
        "param_momentum.csv",
    }
    configs = pd.read_csv(folder / "configs.csv")
    assert {"width", "opt", "momentum"} <= set(configs.columns)
    runs = data.done()
    seen = runs[["config.width", "config.opt"]].drop_duplicates()
    assert len(seen) == 4  # the seeded space drew every (width, opt) pair
    # one configuration per (width, opt, momentum): no row averages sgd's runs with adam's
    sgd = (configs["opt"] == "sgd").astype(float)
    assert (configs["mean"] == configs["width"] + 10.0 * sgd).all()
    assert configs["momentum"].isna().eq(configs["opt"] == "adam").all()
    opt = pd.read_csv(folder / "param_opt.csv").set_index("value")
    by_opt = runs.groupby("config.opt")["summary.loss"].mean()
    assert opt["loss"].to_dict() == pytest.approx(by_opt.to_dict())


def test_a_trainer_specs_base_reaches_a_define_by_run_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's `epochs` is 3 by default; the spec's base says 2 and its space only `x`:
    the run's params and the trial's trainer config say 2, and it trains 2 epochs. A plain
    W&B sweep of the same config keeps W&B's rule: its runs get what the space returned."""
    from conftest import probe_spec, write_spec

    from sweeper.agent.launch import create_stage
    from sweeper.agent.trial import run_trial, workload_of
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import load_spec
    from sweeper.sweep import swept_params

    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'x': trial.suggest_float('x', 0.0, 2.0)}\n"
    )
    scheduler = {"engine": "optuna", "source": "space.py", "search_space": "space"}
    spec = probe_spec(method="custom", base={"epochs": 2}, scheduler=scheduler, run_cap=2)
    del spec["search"]  # the space is the search
    backend = LocalBackend(tmp_path / "sweeper.db")
    try:
        sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, spec)))
        sweep = backend.sweep(sweep_id)
        SweepScheduler(backend.store, sweep_id, "a", batch_size=2).step()
        claim = backend.claim(sweep_id, "agent")
        assert claim is not None
        assert claim.params["epochs"] == 2 and 0.0 <= claim.params["x"] <= 2.0
        sink = backend.open_sink(claim, sweep, wandb_mode="disabled", fork=False)
        assert run_trial(workload_of(sweep, claim), sink) == "finished"
        run = backend.run(claim.run_id)
        assert run["meta"]["config"]["epochs"] == 2
        assert len(backend.history([claim.run_id], ["loss"]).dropna()) == 2
        # the base is carried, not searched: the space's `x` alone varies
        assert swept_params(sweep.config, columns=backend.runs(sweep_id).columns) == ["x"]
        plain = _insert_sweep(backend, sweep.config, seed=1)
        SweepScheduler(backend.store, plain, "a", batch_size=2).step()
        snapshot = backend.store.snapshot(plain)
        assert snapshot is not None and len(snapshot.runs) == 2
        assert all(set(r.params) == {"x"} for r in snapshot.runs)
    finally:
        backend.close()


def _insert_sweep(
    backend: Any, config: Mapping[str, Any], trainer: str = "", seed: int | None = None
) -> str:
    """A sweep made straight in the store, its config as compiled (a `scheduler:` block)."""
    from sweeper.backends.store import new_id

    sweep_id = new_id()
    with backend.store.transaction() as tx:
        tx.insert_sweep(sweep_record(sweep_id, config, tx.now, trainer=trainer, seed=seed))
    return sweep_id


# Real agents over a SQLite store ---------------------------------------------------------------

TWO: dict[str, Any] = {
    "method": "custom",
    "metrics": BI,
    "parameters": {
        **SPACE,
        "epochs": {"value": 2},
        "epoch_seconds": {"value": 0.5},  # a trial: 1 s, so both agents get some
    },
    "scheduler": {"engine": "optuna"},
}


def _agent(sweep_id: str, store: Path, batch_size: int = 3) -> subprocess.Popen[str]:
    """An agent whose lease (its heartbeat timeout) lapses 3 s after it dies."""
    return start_agent(sweep_id, store, "--heartbeat-timeout", "3", "--batch-size", str(batch_size))


def _ended(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


@pytest.mark.slow
def test_two_agents_run_a_multi_objective_optuna_sweep_to_run_cap(backend: Any) -> None:
    sweep_id = _insert_sweep(backend, {**TWO, "run_cap": 10}, "two-objectives", seed=1)
    agents = [_agent(sweep_id, backend.path) for _ in range(2)]
    outs = [_ended(agent) for agent in agents]
    snapshot = backend.store.snapshot(sweep_id)
    configs = [(r.params["x"]["value"], r.params["y"]["value"]) for r in snapshot.runs]
    assert len(configs) == 10 and len(set(configs)) == 10  # run_cap, no duplicate suggestion
    assert {RunState(r.state) for r in snapshot.runs} == {RunState.FINISHED}
    assert all({"f1", "f2"} <= set(r.summary) for r in snapshot.runs)
    assert snapshot.sweep.state == SweepState.FINISHED
    assert sum("trial" in out for out in outs) == 2, outs  # both agents ran trials


@pytest.mark.slow
def test_killing_the_lease_holder_loses_nothing_and_another_goes_on(backend: Any) -> None:
    slow = {**TWO["parameters"], "epochs": {"value": 3}, "epoch_seconds": {"value": 1.0}}
    config = {**TWO, "parameters": slow, "run_cap": 5}
    sweep_id = _insert_sweep(backend, config, "two-objectives", seed=2)
    first = _agent(sweep_id, backend.path)

    def holding_a_running_trial() -> bool:
        sweep = backend.store.sweep(sweep_id)
        counts = backend.store.run_counts(sweep_id)
        return bool(sweep.lease_holder) and counts.get(RunState.RUNNING, 0) > 0

    wait_for(holding_a_running_trial, 60, "the first agent to hold the lease and run a trial")
    holder = backend.store.sweep(sweep_id).lease_holder
    assert f"-{first.pid}-" in holder
    before = {r.id: r.params for r in backend.store.snapshot(sweep_id).runs}
    first.kill()  # SIGKILL: no release, the lease and the trial's heartbeat lapse
    first.communicate()
    assert len(before) < 5  # the rest must come from a rebuilt optimizer
    second = _agent(sweep_id, backend.path)
    said = _ended(second)
    assert "drives its optuna scheduler now" in said and "trial" in said
    snapshot = backend.store.snapshot(sweep_id)
    after = {r.id: r.params for r in snapshot.runs}
    assert {k: after[k] for k in before} == before  # every run the dead holder made is kept
    configs = [(p["x"]["value"], p["y"]["value"]) for p in after.values()]
    assert len(configs) == 5 and len(set(configs)) == 5
    assert {RunState(r.state) for r in snapshot.runs} == {RunState.FINISHED}
    assert max(r.attempt for r in snapshot.runs) == 2  # the killed trial was requeued, rerun
    assert snapshot.sweep.state == SweepState.FINISHED


@pytest.mark.slow
def test_one_agent_and_the_same_seed_give_the_same_configs_in_order(backend: Any) -> None:
    quick = {**TWO["parameters"], "epochs": {"value": 1}, "epoch_seconds": {"value": 0.0}}
    config = {**TWO, "parameters": quick, "run_cap": 4}
    runs = []
    for seed in (21, 21):
        sweep_id = _insert_sweep(backend, config, "two-objectives", seed=seed)
        _ended(_agent(sweep_id, backend.path))
        snapshot = backend.store.snapshot(sweep_id)
        runs.append([(r.params["x"]["value"], r.params["y"]["value"]) for r in snapshot.runs])
    assert len(runs[0]) == 4 and runs[0] == runs[1]


PRUNER = """
import optuna


def study(sweep):
    return optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=6),  # x: 0, 0, 10
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1),
    )
"""


@pytest.mark.slow
def test_an_agent_trial_the_pruner_stops_ends_stopped(backend: Any, tmp_path: Path) -> None:
    (tmp_path / "pruner.py").write_text(PRUNER)
    config = {
        "method": "custom",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "x": {"values": [0.0, 10.0]},
            "epochs": {"value": 8},
            "epoch_seconds": {"value": 0.5},
        },
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "pruner.py"),
            "optimizer": "study",
        },
        "run_cap": 3,
    }
    sweep_id = _insert_sweep(backend, config, "two-objectives")
    _ended(_agent(sweep_id, backend.path, batch_size=1))
    runs = backend.store.snapshot(sweep_id).runs
    assert [r.params["x"]["value"] for r in runs] == [0.0, 0.0, 10.0]
    assert [r.state for r in runs] == [RunState.FINISHED, RunState.FINISHED, RunState.STOPPED]
    assert len(backend.logged_rows(runs[2].id)) < 8  # it ended before its last epoch


@pytest.mark.slow
def test_launch_takes_the_lease_and_its_agents_claim(backend: Any) -> None:
    from sweeper.agent.launch import AgentSettings, run_agents

    quick = {**TWO["parameters"], "epochs": {"value": 1}, "epoch_seconds": {"value": 0.2}}
    sweep_id = _insert_sweep(backend, {**TWO, "parameters": quick, "run_cap": 12}, "two-objectives")
    holders: set[str] = set()

    def seen(_progress: Any) -> None:
        holders.add(backend.store.sweep(sweep_id).lease_holder or "")

    settings = AgentSettings(wandb_mode="disabled", heartbeat_timeout=3.0)
    run_agents(backend, backend.sweep(sweep_id), 2, [None], settings, seen)
    snapshot = backend.store.snapshot(sweep_id)
    configs = {(r.params["x"]["value"], r.params["y"]["value"]) for r in snapshot.runs}
    assert len(snapshot.runs) == 12 == len(configs)
    assert {RunState(r.state) for r in snapshot.runs} == {RunState.FINISHED}
    assert any(holder.startswith("launch-") for holder in holders), holders
    assert snapshot.sweep.state == SweepState.FINISHED and snapshot.sweep.lease_holder is None


def test_a_process_that_finds_the_lease_held_asks_again_without_a_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    store = HistoryMemoryStore(clock)
    setup = Setup(store, clock)
    setup.sweep(OPTUNA_MO)
    holder, other = setup.scheduler("a"), setup.scheduler("b")
    holder.step()
    assert other.step() is None  # the store says a holds it
    writes: list[float] = []
    transaction = store.transaction

    def counted() -> Any:
        writes.append(clock.now)
        return transaction()

    monkeypatch.setattr(store, "transaction", counted)
    for _ in range(3):
        clock.now += LEASE / 4
        assert other.step() is None
    assert writes == []  # unrenewed for less than a lease: not asked under the lock
    clock.now += LEASE / 2
    step = other.step()  # unrenewed for longer: the store's clock says it lapsed
    assert step is not None and writes and other.holds


def test_a_seeded_wandb_engine_suggests_what_the_seeded_random_sweep_does(setup: Setup) -> None:
    """W&B's `sweeps` under the scheduler draws each run under its own seq's seed, so the
    k-th run is the plain random sweep's k-th for the same seed (sweeper.sweep.engine.seeded)."""
    random_config = {
        "method": "random",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}, "act": {"values": ["relu", "tanh"]}},
    }
    coordinator = Coordinator(setup.store)
    setup.sweep(random_config, seed=9, sweep_id="plain")
    for _ in range(4):
        _run(coordinator, "plain", {"loss": 1.0})
    scheduled = {**random_config, "scheduler": {"engine": "wandb"}}
    for sweep_id, seed in (("s1", 9), ("s2", 10)):
        setup.sweep(scheduled, seed=seed, sweep_id=sweep_id)
        setup.scheduler("a", sweep_id, batch_size=2).step()
        _run(coordinator, sweep_id, {"loss": 1.0})
        setup.scheduler("a", sweep_id, batch_size=2).step()  # a rebuild: the seeds hold
        setup.scheduler("a", sweep_id, batch_size=3).step()
    assert _params(setup, "s1") == _params(setup, "plain")
    assert _params(setup, "s2")[:4] != _params(setup, "plain")


CONDITIONAL = """
def space(trial):
    params = {"x": trial.suggest_float("x", 0.0, 2.0)}
    if trial.suggest_categorical("kind", ["one", "two"]) == "two":
        params["y"] = trial.suggest_float("y", 0.0, 2.0)
    return params
"""


@pytest.mark.slow
def test_launch_runs_a_conditional_multi_objective_spec(tmp_path: Path, store: Path) -> None:
    """`sweeper launch` of a spec with `scheduler:` (optuna, a define-by-run space beside the
    spec) and `metrics:`: two agents run it to run_cap; a run without `y` has it empty."""
    import sys

    import yaml

    from sweeper.backends.local import LocalBackend

    (tmp_path / "space.py").write_text(CONDITIONAL)
    spec = {
        "name": "conditional",
        "trainer": "two-objectives",
        "method": "custom",
        "metrics": BI,
        "scheduler": {"engine": "optuna", "source": "space.py", "search_space": "space"},
        "base": {"epochs": 1},
        "search": {"x": {"min": 0.0, "max": 2.0}},
        "run_cap": 8,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [sys.executable, "-m", "sweeper", "launch", "spec.yaml", "--agents", "2"]
    done = subprocess.run(
        [*command, "--wandb", "disabled", "--seed", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Pareto front over f1 (minimize), f2 (minimize)" in done.stdout
    front = done.stdout.split("Pareto front over", 1)[1].splitlines()[1:]
    header = next(line for line in front if "run" in line and "f1" in line)
    assert re.search(r"\by\b", header), front  # the space's own parameter is a column
    assert "Trial" not in done.stdout + done.stderr  # optuna's INFO lines stay out of it
    backend = LocalBackend(store, create=False)
    try:
        (sweep,) = backend.sweeps()
        table = backend.runs(sweep.id)
    finally:
        backend.close()
    assert len(table) == 8 and set(table["state"]) == {"finished"}
    assert len(table[["config.x", "config.y"]].astype(str).drop_duplicates()) == 8
    has_y = table["config.y"].notna()
    assert has_y.any() and (~has_y).any()  # the conditional parameter: absent is empty
    assert (table.loc[~has_y, "summary.f2"] == (table.loc[~has_y, "config.x"] - 2) ** 2 + 4).all()


def test_a_holder_whose_optimizer_fails_says_so_in_one_line_and_gives_the_lease_up(
    setup: Setup, tmp_path: Path
) -> None:
    (tmp_path / "bad.py").write_text("def study(sweep):\n    raise ValueError('no study today')\n")
    source = str(tmp_path / "bad.py")
    setup.sweep(
        {**OPTUNA_MO, "scheduler": {"engine": "optuna", "source": source, "optimizer": "study"}}
    )
    holder = setup.scheduler("a")
    with pytest.raises(SweeperError, match=r"^sweep sw1: scheduler: no study today$"):
        holder.step()
    sweep = setup.store.sweep("sw1")
    assert sweep is not None and sweep.lease_holder == "a" and not holder.holds
    holder.release()  # the agent's exit: the next process need not wait for a lapse
    sweep = setup.store.sweep("sw1")
    assert sweep is not None and sweep.lease_holder is None and sweep.lease_until is None


FAILING = """
def space(trial):
    if trial.number >= 2:
        raise ValueError("space exhausted by hand")
    return {"x": trial.suggest_float("x", 0.0, 2.0), "epoch_seconds": 0.5}
"""


@pytest.mark.slow
def test_an_agent_whose_optimizer_fails_ends_on_one_line_and_keeps_its_runs(
    backend: Any, tmp_path: Path
) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    config = {
        "method": "custom",
        "metrics": BI,
        "scheduler": {
            "engine": "optuna",
            "source": str(tmp_path / "failing.py"),
            "search_space": "space",
        },
    }
    sweep_id = _insert_sweep(backend, config, "two-objectives", seed=1)
    agent = _agent(sweep_id, backend.path, batch_size=2)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 2, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: ") and "scheduler's optimizer failed" in last, out
    assert "space exhausted by hand" in last and "Traceback" not in out
    runs = backend.store.snapshot(sweep_id).runs
    # The second run was pending when the ask failed, or already running: then it finished.
    assert len(runs) == 2 and runs[0].state == RunState.FINISHED
    assert runs[1].state in (RunState.PENDING, RunState.FINISHED)
    if runs[1].state == RunState.FINISHED:
        assert "its running trials finish first" in out
    sweep = backend.store.sweep(sweep_id)
    assert sweep.lease_holder is None and sweep.state == SweepState.RUNNING  # resumable


def _quiet(_progress: Any) -> None:
    """launch's progress, not shown."""


@pytest.mark.slow
def test_launch_whose_optimizer_fails_hands_over_and_reports_the_agents_end(
    backend: Any, tmp_path: Path
) -> None:
    from sweeper.agent.launch import AgentSettings, run_agents

    (tmp_path / "failing.py").write_text(FAILING)
    source = str(tmp_path / "failing.py")
    config = {
        "method": "custom",
        "metrics": BI,
        "scheduler": {"engine": "optuna", "source": source, "search_space": "space"},
    }
    sweep_id = _insert_sweep(backend, config, "two-objectives", seed=1)
    notes: list[str] = []
    settings = AgentSettings(wandb_mode="disabled", heartbeat_timeout=3.0)
    with pytest.raises(SweeperError) as failed:
        run_agents(backend, backend.sweep(sweep_id), 1, [None], settings, _quiet, notes.append)
    assert any("space exhausted by hand" in note for note in notes), notes
    assert "\n" not in str(failed.value) and "space exhausted by hand" in str(failed.value)
    assert backend.store.snapshot(sweep_id).runs == []  # the first ask (10 runs) failed whole
    sweep = backend.store.sweep(sweep_id)
    assert sweep.lease_holder is None and sweep.state == SweepState.RUNNING  # resumable


def test_the_wandb_engine_stops_runs_by_hyperband(setup: Setup) -> None:
    """W&B's hyperband (`early_terminate`) through WandbOptimizer.prune_runs: the run behind
    the band is marked to stop, the rule the coordinator applies to a plain grid sweep."""
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1.0, 1.5, 9.0]}},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
        "scheduler": {"engine": "wandb"},
    }
    sweep_id = setup.sweep(config)
    holder, coordinator = setup.scheduler("a"), Coordinator(setup.store)
    holder.step()
    claims = {}
    for _ in range(3):
        claim = coordinator.claim(sweep_id, "agent")
        assert claim is not None
        claims[claim.params["x"]] = claim
    for x, claim in claims.items():
        for step in range(3):
            loss = (x - 1) ** 2 + 1 / (step + 1)
            coordinator.log(claim.run_id, claim.attempt, step, {"loss": loss})
    assert not coordinator.should_stop(claims[9.0].run_id)  # the scheduler decides, not hyperband
    step = holder.step()
    assert step is not None and step.pruned == [claims[9.0].run_id]
    assert coordinator.should_stop(claims[9.0].run_id)
    assert not coordinator.should_stop(claims[1.0].run_id)


TERMINATOR = """
import optuna


def study(sweep):
    made = optuna.create_study(directions=["minimize", "minimize"])

    def enough(study):
        return sum(t.state.name == "COMPLETE" for t in study.trials) >= 2

    return made, enough
"""


def test_the_optimizers_terminator_exhausts_the_sweep(setup: Setup, tmp_path: Path) -> None:
    """`should_terminate_sweep` (a terminator returned by the `optimizer` factory): no new
    suggestion; the runs already suggested still run, and the sweep finishes after them."""
    (tmp_path / "terminator.py").write_text(TERMINATOR)
    source = str(tmp_path / "terminator.py")
    scheduler = {"engine": "optuna", "source": source, "optimizer": "study"}
    sweep_id = setup.sweep({**OPTUNA_MO, "scheduler": scheduler})
    holder, coordinator = setup.scheduler("a"), Coordinator(setup.store)
    holder.step()
    _run(coordinator, sweep_id)
    step = holder.step()
    assert step is not None and not step.exhausted and len(step.suggested) == 1
    _run(coordinator, sweep_id)
    step = holder.step()
    assert step is not None and step.exhausted and step.suggested == []
    while _run(coordinator, sweep_id) is not None:
        holder.step()
    assert len(_states(setup)) == 4 and set(_states(setup)) == {RunState.FINISHED}
    sweep = setup.store.sweep(sweep_id)
    assert sweep is not None and sweep.exhausted and sweep.state == SweepState.FINISHED

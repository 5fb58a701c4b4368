"""Seeded suggestions (issue 23 §4): a sweep's seed makes random and bayes suggest the same
configurations in the same order; several agents on random get the same set; the seed is
drawn when none is given, stored, shown by `status`, and replays the sweep."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import probe_spec, write_spec
from helpers import fill_sweep, sweep_record, sweeper
from testing_trainers import probe_loss
from typer.testing import CliRunner

import sweeper.backends.coordinator as coordinator_module
from sweeper.agent.launch import create_stage, unseeded_note
from sweeper.backends.base import SweepRecord
from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.cli.status import seed_text
from sweeper.spec.compile import compile_stage
from sweeper.spec.load import load_spec
from sweeper.sweep.engine import next_random_params
from sweeper.sweep.seeds import SEED_BOUND, seed_for

RANDOM = probe_spec(
    name="seeded",
    method="random",
    run_cap=6,
    search={"x": {"min": -3.0, "max": 5.0}, "optim.lr": [0.1, 0.01, 0.001]},
    base={"epochs": 2},
)
BAYES = {**RANDOM, "method": "bayes", "run_cap": 5}


def _loss(params: dict[str, Any]) -> list[dict[str, float]]:
    """What the probe trainer logs for these parameters (deterministic, so bayes sees the
    same results on every replay)."""
    return [{"loss": probe_loss(params["x"], epoch)} for epoch in range(2)]


def _made(backend: LocalBackend, tmp_path: Path, spec: dict[str, Any], seed: int | None) -> str:
    return create_stage(backend, load_spec(write_spec(tmp_path, spec)), seed=seed)


def _suggested(backend: LocalBackend, sweep_id: str) -> list[dict[str, Any]]:
    """Every run's parameters, one agent claiming and finishing them in turn."""
    return [params for _, params in fill_sweep(backend, sweep_id, _loss)]


def test_seed_for_is_a_function_of_seed_and_k_alone() -> None:
    assert seed_for(1234, 3) == seed_for(1234, 3)
    drawn = {seed_for(seed, k) for seed in (0, 1, 2**63 - 1) for k in range(50)}
    assert len(drawn) == 150, "no two (seed, k) share a stream"
    assert all(0 <= value < 2**32 for value in drawn)
    with pytest.raises(ValueError, match="-1"):
        seed_for(-1, 0)


def test_a_seeded_suggestion_neither_reads_nor_moves_the_global_generators() -> None:
    """Another thread drawing from Python's `random` (psycopg_pool's workers do) changes no
    seeded suggestion, and the engine's draws leave the global streams where they were."""
    compiled = {"method": "random", "parameters": {"x": {"min": -3.0, "max": 5.0}}}
    quiet = [next_random_params(compiled, k, None, 11) for k in range(30)]
    stop = threading.Event()

    def thief() -> None:
        while not stop.is_set():
            random.random()
            np.random.random()

    drawing = threading.Thread(target=thief)
    drawing.start()
    try:
        busy = [next_random_params(compiled, k, None, 11) for k in range(30)]
    finally:
        stop.set()
        drawing.join()
    assert busy == quiet
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    next_random_params(compiled, 0, None, 11)
    assert (random.random(), np.random.random()) == expected


@pytest.mark.parametrize("spec", [RANDOM, BAYES], ids=["random", "bayes"])
def test_the_same_spec_and_seed_suggest_the_same_configurations_in_order(
    backend: LocalBackend, tmp_path: Path, spec: dict[str, Any]
) -> None:
    first = _suggested(backend, _made(backend, tmp_path, spec, 1234))
    again = _suggested(backend, _made(backend, tmp_path, spec, 1234))
    other = _suggested(backend, _made(backend, tmp_path, spec, 4321))
    assert len(first) == spec["run_cap"]
    assert again == first
    assert [p["x"] for p in other] != [p["x"] for p in first], "another seed, other points"
    assert len({p["x"] for p in first}) == len(first), "a seed does not repeat one draw"


def _claim_all(where: str | Path, sweep_id: str, agent: str, got: list[tuple[int, Any]]) -> None:
    """One agent: claim and finish runs until there are none; (seq, params) of each."""
    backend = LocalBackend(where)
    try:
        while (claim := backend.claim(sweep_id, agent)) is not None:
            run = backend.store.run(claim.run_id)
            assert run is not None
            got.append((run.seq, claim.params))
            steps = _loss(claim.params)
            backend.finish(claim.run_id, claim.attempt, "finished", steps[-1])
    finally:
        backend.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_agents_on_random_get_the_one_agent_set(
    request: pytest.FixtureRequest, store: Path, tmp_path: Path, kind: str
) -> None:
    """Run k is suggested under (seed, k) whichever agent claims it: three claimers at once
    make the same runs, seq for seq, as one agent alone."""
    where: str | Path = store if kind == "sqlite" else request.getfixturevalue("postgres_url")
    spec = {**RANDOM, "run_cap": 12}
    maker = LocalBackend(where)
    try:
        alone_id, shared_id = (_made(maker, tmp_path, spec, 77) for _ in range(2))
    finally:
        maker.close()
    alone: list[tuple[int, Any]] = []
    _claim_all(where, alone_id, "solo", alone)
    shared: list[tuple[int, Any]] = []
    agents = [
        threading.Thread(target=_claim_all, args=(where, shared_id, f"a{i}", shared))
        for i in range(3)
    ]
    for agent in agents:
        agent.start()
    for agent in agents:
        agent.join(timeout=120)
    assert len(shared) == 12
    assert sorted(shared, key=lambda got: got[0]) == alone


def test_a_random_claim_outrun_by_another_agent_keeps_the_seed_of_its_run(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's optimistic insert: another agent inserts run 1 while this claim's engine
    computes run 1's suggestion; the claim asks again, for run 2, under run 2's seed."""
    alone_id, raced_id = (_made(backend, tmp_path, RANDOM, 5) for _ in range(2))
    alone = _suggested(backend, alone_id)
    other = LocalBackend(backend.path)
    real = coordinator_module.next_random_params
    calls: list[int] = []

    def engine(*args: Any) -> Any:
        calls.append(args[1])  # how many runs the suggestion was for
        if len(calls) == 1:
            assert other.claim(raced_id, "b") is not None  # takes run 1 meanwhile
        return real(*args)

    monkeypatch.setattr(coordinator_module, "next_random_params", engine)
    try:
        claim = backend.claim(raced_id, "a")
    finally:
        other.close()
    assert calls[0] == 0 and calls[-1] == 1, "asked again for run 2"
    assert claim is not None and claim.params == alone[1]
    runs = backend.store.snapshot(raced_id)
    assert runs is not None and [r.params for r in runs.runs] == [
        {k: {"value": v} for k, v in params.items()} for params in alone[:2]
    ]


def test_a_seed_is_drawn_stored_and_shown_and_replays_the_sweep(
    backend: LocalBackend, tmp_path: Path, store: Path
) -> None:
    """No seed given: one is drawn and stored; `status` prints it; a sweep made with that
    seed (`launch --seed N`) suggests what the first did."""
    first_id = _made(backend, tmp_path, RANDOM, None)
    seed = backend.sweep(first_id).seed
    assert seed is not None and 0 <= seed < SEED_BOUND
    reopened = LocalBackend(store, create=False)
    try:
        assert reopened.sweep(first_id).seed == seed
    finally:
        reopened.close()
    shown = CliRunner().invoke(app, ["status", first_id, "--store", str(store)])
    assert shown.exit_code == 0, shown.output
    found = re.search(r"^seed (\d+)$", shown.output, re.MULTILINE)
    assert found is not None, shown.output
    assert int(found.group(1)) == seed
    replay_id = _made(backend, tmp_path, RANDOM, int(found.group(1)))
    assert _suggested(backend, replay_id) == _suggested(backend, first_id)
    assert len({_made(backend, tmp_path, RANDOM, None) for _ in range(3)}) == 3
    drawn = {backend.sweep(s.id).seed for s in backend.sweeps()}
    assert len(drawn) >= 3, "each sweep draws its own"


def test_the_spec_seed_is_the_sweeps_and_a_launch_seed_wins(
    backend: LocalBackend, tmp_path: Path
) -> None:
    spec = {**RANDOM, "seed": 2024}
    assert backend.sweep(_made(backend, tmp_path, spec, None)).seed == 2024
    assert backend.sweep(_made(backend, tmp_path, spec, 9)).seed == 9


def test_status_says_when_a_sweep_has_no_seed_or_the_server_ignores_it() -> None:
    def record(seed: int | None, **config: Any) -> SweepRecord:
        return sweep_record("e/p/s", {"method": "random", **config}, name="s", seed=seed)

    assert seed_text(record(None), "local") == "seed none (made before seeds)"
    assert seed_text(record(12), "local") == "seed 12"
    assert seed_text(record(12), "wandb") == "seed 12 (not applied: W&B's server draws its own)"
    assert seed_text(record(None), "wandb") == "seed none (W&B's server draws its own)"
    scheduled = record(12, scheduler={"engine": "optuna"})
    assert seed_text(scheduled, "wandb") == "seed 12"
    note = unseeded_note("wandb", record(12))
    assert note is not None and "cannot be seeded" in note and "e/p/s" in note
    assert unseeded_note("wandb", scheduled) is None
    assert unseeded_note("wandb", record(12, method="grid")) is None
    assert unseeded_note("local", record(12)) is None
    assert unseeded_note("wandb", record(None)) is None


def test_a_launch_seed_out_of_range_is_one_line(store: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, RANDOM)
    for bad in ("-1", str(2**63)):
        result = CliRunner().invoke(app, ["launch", str(spec), "--seed", bad])
        assert result.exit_code == 2, result.output
        assert "--seed: must be from 0 to" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def _params_in_order(store: Path, sweep_id: str) -> list[dict[str, Any]]:
    backend = LocalBackend(store, create=False)
    try:
        snapshot = backend.store.snapshot(sweep_id)
        assert snapshot is not None
        return [{k: v["value"] for k, v in run.params.items()} for run in snapshot.runs]
    finally:
        backend.close()


@pytest.mark.slow  # three real launches, each with its agent process
def test_launch_with_the_shown_seed_replays_the_sweep(store: Path, tmp_path: Path) -> None:
    """The user's path: launch, read the seed off `status`, launch again with `--seed` it
    shows: the same launch resumes its sweep (nothing new); with --fresh, a new sweep
    suggests the same configurations in the same order; another seed, other ones."""
    spec = write_spec(tmp_path, {**RANDOM, "run_cap": 3, "base": {"epochs": 1}})
    options = ["--store", str(store), "--agents", "1", "--wandb", "disabled"]
    first = sweeper("launch", str(spec), *options, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    backend = LocalBackend(store, create=False)
    try:
        (made,) = backend.sweeps()
    finally:
        backend.close()
    shown = sweeper("status", made.id, "--store", str(store), cwd=tmp_path)
    found = re.search(r"^seed (\d+)$", shown.stdout, re.MULTILINE)
    assert found is not None, shown.stdout
    seed = found.group(1)

    again = sweeper("launch", str(spec), *options, "--seed", seed, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    replay = sweeper("launch", str(spec), *options, "--seed", seed, "--fresh", cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    other = sweeper("launch", str(spec), *options, "--seed", str(int(seed) + 1), cwd=tmp_path)
    assert other.returncode == 0, other.stdout + other.stderr
    backend = LocalBackend(store, create=False)
    try:
        sweeps = backend.sweeps()
    finally:
        backend.close()
    assert [s.seed for s in sweeps] == [int(seed), int(seed), int(seed) + 1], "resumed once"
    original, replayed, reseeded = (_params_in_order(store, s.id) for s in sweeps)
    assert len(original) == 3 and replayed == original
    assert [p["x"] for p in reseeded] != [p["x"] for p in original]


def test_a_wandb_sweep_keeps_a_given_seed_and_draws_none(
    wandb_server: Any, store: Path, tmp_path: Path
) -> None:
    """On a W&B server the seed rides in the sweep's description mark: kept when given (for
    the record: the server's own search takes none), not drawn when not (a `scheduler:` sweep,
    whose engine sweeper runs, gets one drawn: the stand-in takes no `scheduler:` yet)."""
    from sweeper.backends.wandb import WandbBackend

    loaded = load_spec(write_spec(tmp_path, RANDOM))
    config = compile_stage(loaded.spec)
    backend = WandbBackend(store, entity="standin", project="seeds")
    made = {
        seed: backend.create_sweep(config, trainer="probe", spec={}, spec_hash="h", seed=seed)
        for seed in (None, 31)
    }
    assert backend.sweep(made[31]).seed == 31
    assert backend.sweep(made[None]).seed is None
    shown = CliRunner().invoke(app, ["status", made[31], "--backend", "wandb"])
    assert shown.exit_code == 0, shown.output
    assert "seed 31 (not applied: W&B's server draws its own)" in shown.output

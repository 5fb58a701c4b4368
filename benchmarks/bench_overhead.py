"""Per-trial overhead of `sweeper launch` against Optuna with SQLite storage, side by side.

A no-op trainer (benchmarks/plugins/noop_trainer.py) runs as grids of SMALL and LARGE trials;
the marginal cost per trial is (time(LARGE) - time(SMALL)) / (LARGE - SMALL), so start-up and
imports cancel out. Ours runs each trial in a forked child with the store in SQLite; Optuna runs
its objective in-process with the same kind of storage. Also: the engine's claim at 10,000
runs, claims through the SQLite store (median and p99) at 1,000, 10,000 and 100,000 stored
runs (grid and random; PostgreSQL's beside them: benchmarks/bench_postgres.py), bayes
suggestion time at 100/300/1,000 runs, 1 vs 2 agents on
CPU-bound trials, and the time from `launch` to its first trial's start beside the floor of
`python -c "import torch"`.

    uv run --group bench python benchmarks/bench_overhead.py [--small 10] [--large 200]
    uv run --group bench python benchmarks/bench_overhead.py --store-claims-only
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PLUGINS = Path(__file__).parent / "plugins"


def _spec(folder: Path, trials: int, trainer: str = "noop", **base: object) -> Path:
    spec = {
        "name": f"overhead-{trials}",
        "trainer": trainer,
        "metric": {"name": "loss", "goal": "minimize"},
        "base": base,
        "search": {"x": [float(i) for i in range(trials)]},
    }
    path = folder / f"spec-{trials}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _launch(spec: Path, store: Path, *args: str) -> float:
    env = {**os.environ, "SWEEPER_PLUGINS": "noop_trainer", "PYTHONPATH": str(PLUGINS)}
    command = [sys.executable, "-m", "sweeper", "launch", str(spec), "--store", str(store)]
    start = time.perf_counter()
    subprocess.run([*command, *args], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def ours(small: int, large: int, wandb: str) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        times = {
            n: _launch(_spec(folder, n), folder / f"{n}.db", "--wandb", wandb)
            for n in (small, large)
        }
    return (times[large] - times[small]) / (large - small)


def optuna_marginal(small: int, large: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def timed(n: int, folder: Path) -> float:
        start = time.perf_counter()
        study = optuna.create_study(
            storage=f"sqlite:///{folder / f'optuna-{n}.db'}",
            sampler=optuna.samplers.GridSampler({"x": [float(i) for i in range(n)]}),
        )
        study.optimize(lambda trial: trial.suggest_float("x", 0, n), n_trials=n)
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        times = {n: timed(n, folder) for n in (small, large)}
    return (times[large] - times[small]) / (large - small)


def claim_times() -> dict[str, float]:
    """Seconds for one claim once the store holds 10,000 finished runs; bayes suggestions at
    100/300/1,000 runs."""
    from sweeper.sweep import RunView
    from sweeper.sweep.engine import next_params

    out: dict[str, float] = {}
    grid = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": list(range(20_000))}},
    }
    random = {**grid, "method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}
    bayes = {**random, "method": "bayes"}
    for name, config, sizes in (("grid", grid, [10_000]), ("random", random, [10_000])):
        for n in sizes:
            runs = [
                RunView(f"r{i}", "finished", {"x": {"value": i}}, {"loss": i}) for i in range(n)
            ]
            next_params(config, runs)  # an agent claims again and again: time a later claim
            start = time.perf_counter()
            next_params(config, runs)
            out[f"claim, {name}, {n:,} runs"] = time.perf_counter() - start
    for n in (100, 300, 1_000):
        runs = [
            RunView(f"r{i}", "finished", {"x": {"value": i / n}}, {"loss": (i / n - 0.3) ** 2})
            for i in range(n)
        ]
        start = time.perf_counter()
        next_params(bayes, runs)
        out[f"bayes suggestion, {n:,} runs"] = time.perf_counter() - start
    return out


CLAIM_GRID = {"a": list(range(100)), "b": list(range(100)), "c": list(range(20))}
"""200,000 grid points: room for 100,000 stored runs and the claims after them."""


def _claim_config(method: str) -> dict[str, object]:
    metric = {"name": "loss", "goal": "minimize"}
    if method == "grid":
        parameters = {name: {"values": values} for name, values in CLAIM_GRID.items()}
    else:
        parameters = {"x": {"min": 0.0, "max": 1.0}}
    return {"method": method, "metric": metric, "parameters": parameters}


def _stored_params(method: str, i: int) -> str:
    """The i-th stored run's params (W&B's form, JSON): the grid's i-th point in the engine's
    order (the last parameter fastest), or a random draw."""
    import json
    import random

    if method != "grid":
        return json.dumps({"x": {"value": random.random()}})
    a, rest = divmod(i, len(CLAIM_GRID["b"]) * len(CLAIM_GRID["c"]))
    b, c = divmod(rest, len(CLAIM_GRID["c"]))
    return json.dumps({"a": {"value": a}, "b": {"value": b}, "c": {"value": c}})


def store_claim(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000),
    methods: tuple[str, ...] = ("grid", "random"),
    claims: int = 20,
) -> dict[str, tuple[float, float, float]]:
    """Claims through the SQLite store once a sweep holds each number of finished runs (grid
    and random): (median, p99, longest write-lock hold) in seconds over `claims` no-op trials
    (claim, then finish), after one untimed claim (an agent claims again and again; that
    first one also numbers the grid points of runs stored here with plain inserts, as it
    would an older store's). The runs go in with plain SQL inserts, not by running trials.
    The lock hold is what other agents wait (the engine's suggestion is computed outside it).
    """
    from collections.abc import Iterator
    from contextlib import contextmanager

    from sweeper.backends.local import LocalBackend
    from sweeper.backends.sqlite import SqliteStore

    held: list[float] = []
    write = SqliteStore.write

    @contextmanager
    def timed_write(self: SqliteStore) -> Iterator[sqlite3.Connection]:
        with write(self) as db:
            start = time.perf_counter()
            yield db
        held.append(time.perf_counter() - start)

    out = {}
    for method in methods:
        with tempfile.TemporaryDirectory() as scratch:
            backend = LocalBackend(Path(scratch) / "claim.db")
            sweep_id = backend.create_sweep(
                _claim_config(method), trainer="noop", spec={}, spec_hash="bench"
            )
            assert backend.sqlite is not None
            stored = 0
            for size in sizes:
                with backend.sqlite.write() as db:
                    db.executemany(
                        "INSERT INTO runs (id, sweep_id, seq, params, state, attempt, summary,"
                        " created_at) VALUES (?, ?, ?, ?, 'finished', 1, ?, 0)",
                        [
                            (f"r{i}", sweep_id, i + 1, _stored_params(method, i), '{"loss": 0}')
                            for i in range(stored, size)
                        ],
                    )
                totals, locks = [], []
                SqliteStore.write = timed_write  # type: ignore[method-assign]
                try:
                    for n in range(claims + 1):
                        held.clear()
                        start = time.perf_counter()
                        claim = backend.claim(sweep_id, "bench")
                        if n:
                            totals.append(time.perf_counter() - start)
                            locks.append(max(held))
                        assert claim is not None
                        backend.finish(claim.run_id, claim.attempt, "finished", {"loss": 0})
                finally:
                    SqliteStore.write = write  # type: ignore[method-assign]
                # The claims' runs took the next points and seqs: the next fill goes on after.
                stored = size + claims + 1
                totals.sort()
                p99 = totals[min(len(totals) - 1, math.ceil(0.99 * len(totals)) - 1)]
                out[f"store claim, {method}, {size:,} runs"] = (
                    totals[len(totals) // 2],
                    p99,
                    max(locks),
                )
            backend.close()
    return out


def print_store_claims(figures: dict[str, tuple[float, float, float]]) -> None:
    print("claims through the SQLite store (ms; target: flat, median <= 50 at 100,000 runs)")
    for name, (median, p99, lock) in figures.items():
        print(
            f"  {name:34}: median {median * 1e3:7.1f}  p99 {p99 * 1e3:7.1f}  lock {lock * 1e3:5.1f}"
        )


def _trials_span(store: Path) -> float:
    """First trial start to last trial end: the agents' work once they are up."""
    with sqlite3.connect(store) as db:
        start, end = db.execute("SELECT MIN(started_at), MAX(finished_at) FROM runs").fetchone()
    return end - start


def agents_speedup(trials: int) -> dict[str, tuple[float, float]]:
    """CPU-bound trials (the xor trainer) with 1 and 2 agents: the whole launch (start-up
    included), and the span of the trials themselves."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        spec = folder / "xor.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "agents",
                    "trainer": "xor",
                    "metric": {"name": "val_acc"},
                    "base": {"epochs": 300, "model": {"depth": 3, "width": 3}},
                    "agents": {"cpus_per_trial": 1},
                    "search": {"seed": list(range(trials))},
                }
            )
        )
        one = _launch(spec, folder / "one.db", "--agents", "1", "--wandb", "disabled")
        two = _launch(spec, folder / "two.db", "--agents", "2", "--wandb", "disabled")
        spans = _trials_span(folder / "one.db"), _trials_span(folder / "two.db")
    return {"whole launch": (one, two), "trials only": spans}


def first_trial_start(repeats: int) -> list[tuple[float, float]]:
    """Seconds from `sweeper launch` of a one-trial no-op sweep to its trial's start (the
    store's started_at, the claim), beside `python -c "import torch"` timed in the same
    round: a loaded machine slows both alike."""
    rounds = []
    env = {**os.environ, "SWEEPER_PLUGINS": "noop_trainer", "PYTHONPATH": str(PLUGINS)}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        spec = _spec(folder, 1)
        for i in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            torch_s = time.perf_counter() - start
            store = folder / f"first-{i}.db"
            command = [sys.executable, "-m", "sweeper", "launch", str(spec), "--store", str(store)]
            began = time.time()
            subprocess.run(
                [*command, "--wandb", "disabled"], check=True, env=env, capture_output=True
            )
            with sqlite3.connect(store) as db:
                (started,) = db.execute("SELECT MIN(started_at) FROM runs").fetchone()
            rounds.append((started - began, torch_s))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=200)
    parser.add_argument("--agents-trials", type=int, default=12)
    parser.add_argument("--start-repeats", type=int, default=3)
    parser.add_argument("--claims", type=int, default=20, help="timed claims per store size")
    parser.add_argument(
        "--store-claims-only", action="store_true", help="only the store-claim figures"
    )
    args = parser.parse_args()
    if args.store_claims_only:
        print_store_claims(store_claim(claims=args.claims))
        return
    rounds = first_trial_start(args.start_repeats)
    print("launch to first trial start, one-trial no-op sweep (s; target <= 3 on a quiet machine)")
    for launch_s, torch_s in rounds:
        print(f"  launch to first trial start {launch_s:6.2f}   import torch {torch_s:6.2f}")
    disabled = ours(args.small, args.large, "disabled")
    offline = ours(args.small, args.large // 2, "offline")
    optuna_s = optuna_marginal(args.small, args.large)
    print("per-trial overhead (marginal, ms/trial)")
    print(f"  sweeper, forked child, wandb disabled : {disabled * 1e3:7.1f}   (target <= 50)")
    print(f"  sweeper, forked child, offline mirror : {offline * 1e3:7.1f}   (target <= 120)")
    print(f"  Optuna, in-process, SQLite storage    : {optuna_s * 1e3:7.1f}")
    print(f"  ratio sweeper (disabled) / Optuna     : {disabled / optuna_s:7.2f}")
    for name, seconds in claim_times().items():
        print(f"{name:34}: {seconds * 1e3:8.1f} ms")
    print_store_claims(store_claim(claims=args.claims))
    for what, (one, two) in agents_speedup(args.agents_trials).items():
        print(
            f"{what:>12}: 1 agent {one:.1f} s, 2 agents {two:.1f} s: "
            f"speed-up {one / two:.2f}x (target >= 1.8)"
        )


if __name__ == "__main__":
    main()

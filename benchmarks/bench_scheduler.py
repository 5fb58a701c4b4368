"""The optuna engine's suggestion time through sweeper's offline scheduler vs Optuna used
directly, and the engine's share of the per-trial overhead (issue 23).

Both sides use the same sampler (TPE, seeded, as sweeper configures wandb's optuna engine)
over the same two parameters, after the same number of prior finished trials. Optuna
direct: `study.ask(distributions)` then `study.tell`. Through sweeper: one scheduler step
(`SweepScheduler.step`: read the store, tell the run that just ended, ask one suggestion,
insert it as a pending run) after one run was claimed and finished through the coordinator,
on a SQLite store. The rebuild row is what a process that takes the lease pays once: an
optimizer warm-started from every stored run. The overhead row is the rest of a trial's
platform cost (claim, one logged step, finish) beside the step.

    uv run --extra optuna python benchmarks/bench_scheduler.py [--prior 100 1000] [--asks 30]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from sweeper.backends.base import SweepRecord
from sweeper.backends.coordinator import Coordinator
from sweeper.backends.scheduler import SweepScheduler
from sweeper.backends.sqlite import SqliteStore
from sweeper.backends.store import RunRecord, new_id
from sweeper.sweep import RunState, SweepState

CONFIG: dict[str, Any] = {
    "method": "custom",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}},
    "scheduler": {"engine": "optuna"},
}
DISTRIBUTIONS = {
    "x": optuna.distributions.FloatDistribution(0.0, 1.0),
    "y": optuna.distributions.FloatDistribution(0.0, 1.0),
}


def loss(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.7) ** 2


def direct(prior: int, asks: int) -> list[float]:
    """Seconds per ask (and its tell) of Optuna alone after `prior` finished trials."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for i in range(prior):
        x, y = (i * 0.618) % 1.0, (i * 0.382) % 1.0
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x, "y": y}, distributions=DISTRIBUTIONS, value=loss(x, y)
            )
        )
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = study.ask(DISTRIBUTIONS)
        study.tell(trial, loss(trial.params["x"], trial.params["y"]))
        times.append(time.perf_counter() - start)
    return times


def through_sweeper(prior: int, asks: int, folder: Path) -> dict[str, Any]:
    """Seconds of a rebuild and of each step, and of the trial's other store calls."""
    store = SqliteStore(folder / f"bench-{prior}.db")
    sweep_id = new_id()
    with store.transaction() as tx:
        tx.insert_sweep(
            SweepRecord(
                id=sweep_id,
                name="bench",
                project="bench",
                trainer="",
                config=CONFIG,
                spec={},
                spec_hash="bench",
                spec_path=None,
                state=SweepState.RUNNING,
                exhausted=False,
                study=None,
                stage=0,
                stage_name=None,
                carried={},
                created_at=tx.now,
                seed=0,
            )
        )
        for i in range(prior):
            x, y = (i * 0.618) % 1.0, (i * 0.382) % 1.0
            tx.insert_run(
                RunRecord(
                    id=new_id(),
                    sweep_id=sweep_id,
                    seq=i + 1,
                    params={"x": {"value": x}, "y": {"value": y}},
                    state=RunState.FINISHED,
                    attempt=1,
                    summary={"loss": loss(x, y)},
                    created_at=tx.now,
                )
            )
    coordinator = Coordinator(store)
    scheduler = SweepScheduler(store, sweep_id, "bench", batch_size=1, every=0.0)
    start = time.perf_counter()
    scheduler.step()  # takes the lease, rebuilds from `prior` runs, asks the first
    rebuild = time.perf_counter() - start
    steps, others = [], []
    for _ in range(asks):
        start = time.perf_counter()
        claim = coordinator.claim(sweep_id, "bench")
        assert claim is not None
        value = loss(claim.params["x"], claim.params["y"])
        coordinator.log(claim.run_id, claim.attempt, 0, {"loss": value})
        coordinator.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"loss": value})
        others.append(time.perf_counter() - start)
        start = time.perf_counter()
        step = scheduler.step()  # tells the run that ended, asks the next
        steps.append(time.perf_counter() - start)
        assert step is not None and len(step.suggested) == 1
    store.close()
    return {"rebuild": rebuild, "steps": steps, "others": others}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prior", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--asks", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp())
    through_sweeper(5, 1, folder)  # imports (wandb's scheduler modules) paid before timing
    print(f"median of {args.asks} suggestions, TPE (seeded), 2 float parameters; ms")
    print(
        f"{'prior':>6} {'optuna':>8} {'sweeper':>8} {'ratio':>6} {'rebuild':>9}"
        f" {'claim+log+finish':>17} {'engine share':>13}"
    )
    for prior in args.prior:
        alone = statistics.median(direct(prior, args.asks))
        ours = through_sweeper(prior, args.asks, folder)
        step = statistics.median(ours["steps"])
        other = statistics.median(ours["others"])
        share = step / (step + other)
        print(
            f"{prior:>6} {ms(alone)} {ms(step)} {step / alone:>6.2f} {ms(ours['rebuild'])} "
            f"{ms(other):>17} {share:>12.0%}"
        )


if __name__ == "__main__":
    main()

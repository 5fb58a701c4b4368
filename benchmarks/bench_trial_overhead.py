"""Per-trial overhead: a child forked from the warm agent vs a fresh interpreter per trial.

Both sides run the same 1-epoch XOR trial through the same code (claim, provenance, train,
record), side by side in one run. Prints seconds per trial and the speed-up of forking.

    uv run python benchmarks/bench_trial_overhead.py [--trials 6]
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeper.agent.trial import TrainerRun, run_trial
from sweeper.backends.local import LocalBackend
from sweeper.spec.paths import flatten
from sweeper.trainers.classify.config import XorConfig

FRESH = """
import sys
from sweeper.agent.trial import TrainerRun, run_trial
from sweeper.backends.local import LocalBackend
from sweeper.trainers.classify.config import XorConfig
backend = LocalBackend(sys.argv[1])
config = XorConfig(epochs=1).model_dump(mode="json")
claim = backend.create_run(flatten(config), agent="fresh")
sink = backend.open_sink(claim, None, fork=False)
assert run_trial(TrainerRun("xor", config), sink) == "finished"
"""


def forked_trial(store: Path) -> None:
    backend = LocalBackend(store)
    config = XorConfig(epochs=1).model_dump(mode="json")
    claim = backend.create_run(flatten(config), agent="fork")
    sink = backend.open_sink(claim, None, fork=False)
    assert run_trial(TrainerRun("xor", config), sink) == "finished"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "bench.db"
    LocalBackend(store).close()
    for module in ("sweeper.trainers.classify.xor", "torch._dynamo"):  # what the agent warms
        importlib.import_module(module)
    context = multiprocessing.get_context("fork")
    fork, fresh = [], []
    for _ in range(args.trials):  # interleaved, so both sides see the same machine load
        start = time.perf_counter()
        child = context.Process(target=forked_trial, args=(store,))
        child.start()
        child.join()
        assert child.exitcode == 0
        fork.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH, str(store)], check=True)
        fresh.append(time.perf_counter() - start)
    f, s = statistics.median(fork), statistics.median(fresh)
    print(f"forked from warm agent: {f:.3f} s/trial (median of {args.trials})")
    print(f"fresh interpreter:      {s:.3f} s/trial")
    print(f"speed-up of forking:    {s / f:.1f}x")


if __name__ == "__main__":
    main()

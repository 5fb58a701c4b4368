"""The quickstart study (36 XOR trials, 100 epochs) against its 2-minute budget on 2 cores.

    uv run python benchmarks/bench_quickstart.py [--agents 1] [--wandb offline]

Prints the wall time of `sweeper launch sweeps/quickstart.yaml` in a scratch directory and
the ratio budget / actual (>= 1 meets the target).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 120.0
SPEC = Path(__file__).parents[1] / "sweeps" / "quickstart.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", default="1")
    parser.add_argument("--wandb", default="offline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sweeper",
                "launch",
                str(SPEC),
                "--agents",
                args.agents,
                "--wandb",
                args.wandb,
            ],
            cwd=scratch,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        took = time.perf_counter() - start
    print(f"quickstart, {args.agents} agent(s), wandb {args.wandb}: {took:.1f} s")
    print(f"budget {BUDGET_S:.0f} s / actual: {BUDGET_S / took:.2f} (target >= 1)")


if __name__ == "__main__":
    main()

"""Every trainer's throughput against a minimal hand-written loop, gathered into one table.

Runs the side-by-side measurements of bench_classify_loop.py, bench_reid.py and
bench_segment.py (each prints its own detail first) at a smaller size, then prints their
trainer / hand-loop ratios, by wall clock and by this process's CPU time, in one table.
Target: >= 0.95 on CPU for each. Run it when the machine is quiet.

    uv run python benchmarks/bench_trainers.py [--repeats 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench_classify_loop
import bench_reid
import bench_segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="paired runs per trainer")
    args = parser.parse_args()
    rows = {}
    print("== classify (MNIST-sized CNN on digits) vs the plainest loop + validation")
    rows["classify"] = bench_classify_loop.measure(epochs=3, repeats=args.repeats)
    print("== reid (resnet18_fc512, 64x64 generated VeRi) vs a hand loop, epochs alternating")
    with tempfile.TemporaryDirectory() as scratch:
        reid_args = argparse.Namespace(
            arch="resnet18_fc512", size=64, batch_size=32, epochs=args.repeats
        )
        rows["reid"] = bench_reid.throughput(reid_args, Path(scratch) / "veri")
    print("== segment (U-Net mobilenet_v2, 64x64 generated X-rays) vs a hand smp loop")
    rows["segment"] = bench_segment.measure(epochs=3, repeats=args.repeats, rss=False)
    print("\n| trainer | trainer / hand loop (wall) | (CPU time) | target |")
    print("| --- | --- | --- | --- |")
    for name, ratio in rows.items():
        print(f"| {name} | {ratio['wall']:.3f} | {ratio['cpu']:.3f} | >= 0.95 |")


if __name__ == "__main__":
    main()

"""`sweeper report` on a 10,000-run x 50-step sweep against its 10-second target.

    uv run python benchmarks/bench_report.py [--runs 10000] [--steps 50]

Writes a synthetic random-search sweep (log-uniform lr, batch size, optimizer, depth) into a
real store, then times what `sweeper report SWEEP` does: load the run table and history,
compute tables, importance and plots, and write HTML, PNGs, Markdown and CSV. Prints the
ratio target / actual (>= 1 meets the target).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sweeper.backends.local import LocalBackend
from sweeper.report.build import build_report
from sweeper.report.load import report_data

TARGET_S = 10.0

CONFIG = {
    "name": "bench-report",
    "project": "bench",
    "method": "random",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "epochs": {"value": 50},
        "optim.lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "data.batch_size": {"values": [16, 32, 64, 128]},
        "optim.name": {"values": ["sgd", "adam", "rmsprop"]},
        "model.depth": {"values": [0, 1, 2, 3]},
    },
}


def fill(backend: LocalBackend, runs: int, steps: int, seed: int = 0) -> str:
    """A finished sweep whose accuracy depends on lr (most), optimizer and depth, plus noise."""
    rng = np.random.default_rng(seed)
    spec = {"name": "bench-report", "base": {"epochs": steps}}
    sweep_id = backend.create_sweep(CONFIG, trainer="xor", spec=spec, spec_hash="bench")
    lr = 10 ** rng.uniform(-5, -1, runs)
    batch = rng.choice([16, 32, 64, 128], runs)
    optim = rng.choice(["sgd", "adam", "rmsprop"], runs)
    depth = rng.integers(0, 4, runs)
    quality = 1 - np.abs(np.log10(lr) + 2.5) / 3 + 0.05 * (optim == "adam") + 0.02 * depth
    now = time.time()
    run_rows, history_rows = [], []
    for i in range(runs):
        run_id = f"r{i:07d}"
        params = {
            "epochs": steps, "optim.lr": lr[i], "data.batch_size": int(batch[i]),
            "optim.name": str(optim[i]), "model.depth": int(depth[i]),
        }  # fmt: skip
        curve = quality[i] * (1 - np.exp(-np.arange(1, steps + 1) / 10)) + rng.normal(
            0, 0.01, steps
        )
        loss = 1.5 * np.exp(-np.arange(steps) / 15 * quality[i]) + 0.1
        for step in range(steps):
            metrics = {
                "val_acc": curve[step],
                "val_loss": loss[step],
                "train_loss": loss[step] * 0.9,
            }
            history_rows.append((run_id, step, json.dumps(metrics)))
        state = "failed" if i % 500 == 499 else "finished"
        summary = json.dumps(metrics) if state == "finished" else "{}"
        wandb_params = json.dumps({k: {"value": v} for k, v in params.items()}, default=float)
        run_rows.append((run_id, sweep_id, i + 1, wandb_params, state, summary, now, now, now + 60))
    assert backend.sqlite is not None
    db = backend.sqlite.db
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO runs (id, sweep_id, seq, params, state, summary, created_at, started_at,"
        " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    db.executemany("INSERT INTO history (run_id, step, metrics) VALUES (?, ?, ?)", history_rows)
    db.execute("UPDATE sweeps SET state = 'finished', exhausted = 1 WHERE id = ?", (sweep_id,))
    db.execute("COMMIT")
    return sweep_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        backend = LocalBackend(Path(scratch) / "sweeper.db")
        start = time.perf_counter()
        sweep_id = fill(backend, args.runs, args.steps)
        print(
            f"wrote {args.runs:,} runs x {args.steps} steps in {time.perf_counter() - start:.1f} s"
        )
        start = time.perf_counter()
        data = report_data(backend, sweep_id)
        loaded = time.perf_counter() - start
        out = build_report(data, Path(scratch) / "report")
        took = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        print(f"report: {took:.2f} s (run table {loaded:.2f} s), {size:.1f} MB in {out.name}/")
    print(f"target {TARGET_S:.0f} s / actual: {TARGET_S / took:.2f} (target >= 1)")


if __name__ == "__main__":
    main()

"""Report data from a W&B sweep through the public API, in the local store's run-table columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from sweeper.backends.wandb import runs_frame, trainer_of
from sweeper.errors import SweeperError
from sweeper.report.data import ReportData, SweepPart
from sweeper.report.local_runs import resolved_base
from sweeper.sweep import flat_parameters, key_paths

HISTORY_SAMPLES = 10_000


def history_frame(runs: Mapping[str, Any], run_ids: list[str], keys: list[str]) -> pd.DataFrame:
    """Sampled history of the given runs, one frame with a run_id column."""
    frames = []
    for run_id in run_ids:
        rows = runs[run_id].history(samples=HISTORY_SAMPLES, keys=keys, pandas=True)
        if len(rows):
            frames.append(rows.assign(run_id=run_id))
    if not frames:
        return pd.DataFrame(columns=["run_id", "_step", *keys])
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.reindex(columns=["run_id", "_step", *keys])
    return frame.sort_values(["run_id", "_step"], ignore_index=True)


def load_wandb(path: str, metric: str | None = None, api: Any = None) -> ReportData:
    """Read a W&B sweep (entity/project/sweep_id); `api` is wandb.Api() unless given."""
    if api is None:
        import wandb

        api = wandb.Api()
    try:
        sweep = api.sweep(path.replace("/sweeps/", "/"))
        runs = list(sweep.runs)
    except Exception as exc:  # the public API raises many types for a bad path or login
        raise SweeperError(f"cannot read W&B sweep {path}: {str(exc).splitlines()[0]}") from None
    config = sweep.config
    by_id = {run.id: run for run in runs}
    metric_spec = config.get("metric", {})
    return ReportData(
        title=config.get("name") or sweep.id,
        source=f"W&B sweep {path}",
        metric=metric or metric_spec.get("name", ""),
        goal=metric_spec.get("goal", "minimize"),
        parts=[
            SweepPart(
                sweep.id,
                config.get("name") or sweep.id,
                0,
                None,
                flat_parameters(config["parameters"]),
            )
        ],
        runs=runs_frame(runs, sweep.id, paths=key_paths(config)),
        history=lambda run_ids, keys: history_frame(by_id, run_ids, keys),
        base=resolved_base(trainer_of(config), {}),
        key=sweep.id,
        backend="wandb",
        project=getattr(sweep, "project", None),
        entity=getattr(sweep, "entity", None),
    )

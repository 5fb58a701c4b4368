"""Report data from a W&B sweep through the public API, in the local store's run-table columns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from sweeper.backends.local import RUN_COLUMNS
from sweeper.errors import SweeperError
from sweeper.report.data import ReportData, SweepPart
from sweeper.report.local_runs import resolved_base
from sweeper.sweep import flat_parameters

WANDB_PATH = re.compile(r"^[\w.-]+/[\w.-]+/(sweeps/)?[\w-]+$")
"""entity/project/sweep_id (also as W&B's URL tail entity/project/sweeps/sweep_id)."""

STATES = {"killed": "stopped"}
"""W&B run states that differ from ours: a killed sweep run was stopped early."""

HISTORY_SAMPLES = 10_000


def is_wandb_path(target: str) -> bool:
    return bool(WANDB_PATH.match(target))


def runs_frame(runs: Iterable[Any], sweep_id: str) -> pd.DataFrame:
    """Public-API runs -> the run table (`config.*`, `summary.*`, as LocalBackend.runs gives)."""
    records = []
    for run in runs:
        summary = _scalars(dict(run.summary))
        record: dict[str, Any] = {
            "run_id": run.id,
            "sweep_id": sweep_id,
            "stage": 0,
            "stage_name": None,
            "state": STATES.get(run.state, run.state),
            "agent": None,
            "attempts": 1,
            "created_at": _utc_naive(run.created_at),
            "runtime": dict(run.summary).get("_runtime"),
            "exit_code": None,
            "error": None,
        }
        record.update({f"config.{k}": v for k, v in _flat_config(run.config).items()})
        record.update({f"summary.{k}": v for k, v in summary.items()})
        records.append(record)
    return pd.DataFrame.from_records(records, columns=_columns(records))


def _utc_naive(when: Any) -> pd.Timestamp:
    """W&B gives ISO strings (UTC); the store gives naive UTC timestamps."""
    stamp = pd.Timestamp(when)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _columns(records: list[dict[str, Any]]) -> list[str]:
    seen = dict.fromkeys(RUN_COLUMNS)
    for record in records:
        seen.update(dict.fromkeys(record))
    config = sorted(c for c in seen if c.startswith("config."))
    summary = [c for c in seen if c.startswith("summary.")]
    return [*RUN_COLUMNS, *config, *summary]


def _flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """W&B config, nested or dotted, as dotted keys; W&B's own `_wandb` keys dropped."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if isinstance(value, Mapping) and set(value) <= {"value", "desc"} and "value" in value:
            value = value["value"]
        if isinstance(value, Mapping) and value:
            flat.update(_flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _scalars(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers and strings only: W&B summaries also hold histograms, tables and media."""
    return {
        k: v
        for k, v in summary.items()
        if not k.startswith("_") and isinstance(v, int | float | str | bool) and v is not None
    }


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
        runs=runs_frame(runs, sweep.id),
        history=lambda run_ids, keys: history_frame(by_id, run_ids, keys),
        base=resolved_base(_trainer(config), {}),
        key=sweep.id,
        backend="wandb",
        project=getattr(sweep, "project", None),
        entity=getattr(sweep, "entity", None),
    )


def _trainer(config: Mapping[str, Any]) -> str | None:
    """Our compiled sweeps run `-m sweeper.trial --trainer NAME`: the base defaults are its."""
    command = list(config.get("command") or [])
    if "--trainer" in command and command.index("--trainer") + 1 < len(command):
        return command[command.index("--trainer") + 1]
    return None

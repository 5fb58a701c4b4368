"""The run table as `sweeper runs` shows it to a person, and as it prints it for scripts."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sweeper.backends.base import SweepRecord
from sweeper.report.values import distinct_labels, metric_label
from sweeper.sweep import sweep_objectives, swept_params

MISSING = "-"


def readable_runs(
    table: pd.DataFrame, sweeps: Sequence[SweepRecord]
) -> tuple[pd.DataFrame, set[str]]:
    """The columns a person reads, as text: run id, stage (for a study), state, the swept
    values, seed, the sweep's metric (each of its `metrics:`) and runtime. Numbers are rounded
    to what tells them apart (`--csv` and `--json` keep every column and digit); a missing
    value is `-`.

    Returns:
        The text table, and the names of its columns that hold numbers (shown right-aligned).
    """
    # the sweep's metric, or each of its `metrics:` (sweeper.sweep.pareto.sweep_objectives)
    metrics = [m for m, _ in sweep_objectives(sweeps[0].config)] or [sweeps[0].metric[0]]
    params = list(
        dict.fromkeys(p for s in sweeps for p in swept_params(s.config, columns=table.columns))
    )
    columns: dict[str, list[str]] = {"run": _texts(table, "run_id")}
    if len(sweeps) > 1:
        columns["stage"] = [
            _text(name) if _present(name) else str(stage)
            for stage, name in zip(table["stage"], table["stage_name"], strict=True)
        ]
    columns["state"] = _texts(table, "state")
    for param in params:
        columns[param] = _numbers(table, f"config.{param}", least=3)
    if "config.seed" in table:
        columns["seed"] = _texts(table, "config.seed")
    shown_metrics = {metric_label(m): m for m in metrics}
    for shown_metric, metric in shown_metrics.items():
        columns[shown_metric] = _numbers(table, f"summary.{metric}", least=4)
    columns["runtime"] = [_duration(v) for v in table["runtime"]] if len(table) else []
    numeric = {*shown_metrics, "runtime", "seed"} | {
        p for p in params if f"config.{p}" in table and _all_numbers(table[f"config.{p}"])
    }
    return pd.DataFrame(columns, dtype=object), numeric


def runs_json(table: pd.DataFrame) -> str:
    """Every column of the run table as JSON records: times in ISO 8601 (UTC), NaN and values a
    run lacks as null, infinities as the strings "inf" and "-inf" (JSON has no such numbers)."""
    records = [{str(k): _json_value(v) for k, v in row.items()} for row in table.to_dict("records")]
    return json.dumps(records, indent=1, allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.tz_localize("UTC").isoformat() if value.tzinfo is None else value.isoformat()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _present(value: Any) -> bool:
    """Not None, not NaN (what pandas puts where a run has no such value)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an int column pandas made float to hold a gap
    return str(value)


def _texts(table: pd.DataFrame, column: str) -> list[str]:
    if column not in table:
        return [MISSING] * len(table)
    return [_text(v) if _present(v) else MISSING for v in table[column]]


def _numbers(table: pd.DataFrame, column: str, least: int) -> list[str]:
    """Values to the fewest significant digits (`least` or more) that keep them distinct."""
    if column not in table:
        return [MISSING] * len(table)
    values = list(table[column])
    labels = distinct_labels([v for v in values if _present(v)], least=least)
    shown = iter(labels)
    return [next(shown) if _present(v) else MISSING for v in values]


def _all_numbers(values: pd.Series) -> bool:
    present = [v for v in values if _present(v)]
    return bool(present) and all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present
    )


def _duration(seconds: Any) -> str:
    """12.3s, 4:05, 1:02:03: a runtime at a glance."""
    if not _present(seconds):
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

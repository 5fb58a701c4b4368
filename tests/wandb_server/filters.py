"""The MongoDB-style run filters and order keys of W&B's `runs` query, on stored runs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import RunRecord

_MISSING = object()


def run_field(run: RunRecord, key: str) -> Any:
    """The value a filter or order key names: `name`, `sweep`, `config.lr`, `summary_metrics.x`."""
    direct = {
        "name": run.id,
        "id": run.storage_id,
        "sweep": run.sweep_id,
        "sweepName": run.sweep_id,
        "group": run.group,
        "jobType": run.job_type,
        "job_type": run.job_type,
        "state": run.state,
        "displayName": run.display_name,
        "display_name": run.display_name,
        "tags": run.tags,
        "createdAt": run.created_at,
        "created_at": run.created_at,
        "heartbeatAt": run.heartbeat_at,
        "heartbeat_at": run.heartbeat_at,
    }
    if key in direct:
        return direct[key]
    root, _, rest = key.partition(".")
    if root == "config":
        parts = rest.split(".")
        if parts[-1] == "value":
            parts = parts[:-1]
        return _dig(run.config, parts)
    if root in ("summary_metrics", "summaryMetrics", "summary"):
        return _dig(run.summary, rest.split("."))
    return _MISSING


def _dig(data: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "$exists":
        return (value is not _MISSING and value is not None) == bool(operand)
    if value is _MISSING:
        value = None
    if op == "$eq":
        return value == operand or (isinstance(value, list) and operand in value)
    if op == "$ne":
        return not _compare(value, "$eq", operand)
    if op == "$in":
        return any(_compare(value, "$eq", item) for item in operand)
    if op == "$nin":
        return not _compare(value, "$in", operand)
    if op == "$regex":
        return isinstance(value, str) and re.search(operand, value) is not None
    if value is None or operand is None:
        return False
    try:
        return {
            "$gt": value > operand,
            "$gte": value >= operand,
            "$lt": value < operand,
            "$lte": value <= operand,
        }[op]
    except TypeError:
        return False
    except KeyError:
        raise ValueError(f"unsupported filter operator {op}") from None


def matches(run: RunRecord, filters: dict[str, Any] | None) -> bool:
    """Whether `run` passes a W&B runs filter (`$and`, `$or`, `$nor`, field conditions)."""
    for key, condition in (filters or {}).items():
        if key == "$and":
            ok = all(matches(run, sub) for sub in condition)
        elif key == "$or":
            ok = any(matches(run, sub) for sub in condition)
        elif key == "$nor":
            ok = not any(matches(run, sub) for sub in condition)
        elif key == "$not":
            ok = not matches(run, condition)
        elif (
            isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
        ):
            value = run_field(run, key)
            ok = all(_compare(value, op, operand) for op, operand in condition.items())
        else:
            ok = _compare(run_field(run, key), "$eq", condition)
        if not ok:
            return False
    return True


def sort_runs(runs: list[RunRecord], order: str | None) -> list[RunRecord]:
    """Sort by a W&B order key like `+created_at` or `-summary_metrics.loss`.

    Runs that lack the key go last, whichever the direction.
    """
    if not order:
        order = "-created_at"
    descending = order.startswith("-")
    key = order.lstrip("+-")
    present: list[tuple[Any, RunRecord]] = []
    absent: list[RunRecord] = []
    for run in runs:
        value = run_field(run, key)
        if value is _MISSING or value is None or isinstance(value, dict | list):
            absent.append(run)
        else:
            present.append((value, run))
    try:
        present.sort(key=lambda pair: pair[0], reverse=descending)
    except TypeError:
        present.sort(key=lambda pair: str(pair[0]), reverse=descending)
    return [run for _, run in present] + absent

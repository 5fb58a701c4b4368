"""The run table: one pandas DataFrame of a sweep's runs, the same from every backend.

It has the columns W&B's own run export has (`wandb.apis.public.Runs`, read with
`run.config` and `run.summary`): one row per run, a `config.<name>` column per config value
and a `summary.<key>` column per summary value, beside sweeper's fixed columns (RUN_COLUMNS).
A backend turns each of its runs into a `RunRow` and calls `run_table`; summaries, reports,
`runs --csv` and the best configuration read only this table, so they agree on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

RUN_COLUMNS = [
    "run_id",
    "sweep_id",
    "stage",
    "stage_name",
    "state",
    "agent",
    "attempts",
    "created_at",
    "runtime",
    "exit_code",
    "error",
]
"""The run table's fixed columns; `config.*` and `summary.*` columns follow."""


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run, as a backend hands it to `run_table`."""

    run_id: str
    sweep_id: str
    state: str
    """Its `RunState` value (a backend maps its own states first: W&B's `killed` is stopped)."""
    created_at: float | None
    """Seconds since the epoch (UTC) when the run was made; None if unknown."""
    config: Mapping[str, Any]
    """{column name: value}: a sweep parameter by its column name (`sweeper.sweep.params`),
    whole even when the value is a dict; None is a value (W&B keeps null)."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """{key: value}: the run's last logged numbers and strings."""
    stage: int = 0
    stage_name: str | None = None
    agent: str | None = None
    attempts: int = 1
    """Times the run was handed to an agent (a requeued run is one run, tried again)."""
    runtime: float | None = None
    """Seconds it ran (so far, while running); None before it started."""
    exit_code: int | None = None
    error: str | None = None


def run_table(rows: Iterable[RunRow], params: Sequence[str] = ()) -> pd.DataFrame:
    """The run table of `rows`, in their order.

    Args:
        rows: the runs, each as a `RunRow`.
        params: the sweeps' parameter column names, in their sweep configs' order: their
            `config.*` columns come first, in that order; other config columns (what a run
            logged beyond the sweep's parameters) follow, sorted by name.

    Returns:
        A DataFrame with the RUN_COLUMNS, then `config.<name>` columns, then `summary.<key>`
        columns in the order they first appear. `created_at` is datetime64 (naive, UTC). A
        config column in which some run has None or no value at all holds Python objects,
        with None there (a value W&B keeps, not NaN); a missing summary value is NaN. No
        rows: the RUN_COLUMNS alone.
    """
    import pandas as pd

    records: list[dict[str, Any]] = []
    config_seen: dict[str, None] = {}
    summary_seen: dict[str, None] = {}
    for row in rows:
        record: dict[str, Any] = {
            "run_id": row.run_id,
            "sweep_id": row.sweep_id,
            "stage": row.stage,
            "stage_name": row.stage_name,
            "state": row.state,
            "agent": row.agent,
            "attempts": row.attempts,
            "created_at": row.created_at,
            "runtime": row.runtime,
            "exit_code": row.exit_code,
            "error": row.error,
        }
        for name, value in row.config.items():
            record[f"config.{name}"] = value
            config_seen[f"config.{name}"] = None
        for key, value in row.summary.items():
            record[f"summary.{key}"] = value
            summary_seen[f"summary.{key}"] = None
        records.append(record)
    if not records:
        return pd.DataFrame(columns=RUN_COLUMNS)
    swept = [f"config.{p}" for p in dict.fromkeys(params) if f"config.{p}" in config_seen]
    rest = sorted(set(config_seen) - set(swept))
    config = [*swept, *rest]
    table = pd.DataFrame.from_records(records, columns=[*RUN_COLUMNS, *config, *summary_seen])
    for column in config:
        values = [record.get(column) for record in records]
        if any(value is None for value in values):  # a value W&B keeps, not NaN
            table[column] = pd.Series(values, dtype=object)
    table["created_at"] = pd.to_datetime(table["created_at"], unit="s")  # once, not per row
    return table

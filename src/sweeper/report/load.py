"""Which backend a report target names: a W&B sweep path, else the local store."""

from __future__ import annotations

import os
from pathlib import Path

from sweeper.report.data import ReportData


def load_report_data(
    target: str, store: str | os.PathLike[str] | None = None, metric: str | None = None
) -> ReportData:
    """entity/project/sweep_id reads W&B; a sweep id, study id or spec path reads the store."""
    from sweeper.backends.local import LocalBackend
    from sweeper.report.local_runs import load_local
    from sweeper.report.wandb_runs import is_wandb_path, load_wandb

    path = Path(target)
    if is_wandb_path(target) and path.suffix not in (".yaml", ".yml") and not path.exists():
        return load_wandb(target, metric)
    return load_local(LocalBackend(store, create=False, readonly=True), target, metric)

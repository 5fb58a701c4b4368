"""Which backend a report target names: a W&B sweep path, else the local store."""

from __future__ import annotations

import os

from sweeper.report.data import ReportData


def load_report_data(
    target: str, store: str | os.PathLike[str] | None = None, metric: str | None = None
) -> ReportData:
    """entity/project/sweep_id reads W&B; a sweep id, study id, spec path or name reads the
    store (`sweeper.backends.targets`)."""
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.targets import is_wandb_target
    from sweeper.report.local_runs import load_local
    from sweeper.report.wandb_runs import load_wandb

    if is_wandb_target(target):
        return load_wandb(target, metric)
    return load_local(LocalBackend(store, create=False, readonly=True), target, metric)

"""A trial's wandb run: the record where a W&B server keeps the sweep, a mirror beside the store.

Both sinks (`local.StoreSink`, `wandb.WandbRunSink`) and `sweeper sync` open runs here, so a run
has one identity, one config shape and one way of logging steps wherever it is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweeper.backends.base import Claim, SweepRecord, WandbMode
from sweeper.sweep import RunState, swept_params


def wandb_identity(claim: Claim, sweep: SweepRecord | None) -> dict[str, Any]:
    """What ties a wandb run to its sweep: W&B cannot know a local sweep's id, so the run
    carries it, with the swept parameters and the metric, under `_sweeper`."""
    if sweep is None:
        return {"run": claim.run_id, "attempt": claim.attempt}
    metric, goal = sweep.metric
    return {
        "run": claim.run_id,
        "attempt": claim.attempt,
        "sweep": sweep.id,
        "study": sweep.study,
        "stage": sweep.stage_name,
        "parameters": swept_params(sweep.config, include_seed=True),
        "metric": {"name": metric, "goal": goal},
    }


def run_config(meta: Mapping[str, Any], claim: Claim, sweep: SweepRecord | None) -> dict[str, Any]:
    """The wandb run's config from a trial's meta (`config` plus provenance): the trainer's own
    config, with provenance and identity under `_sweeper` (W&B's report ignores keys starting
    with an underscore)."""
    extra = {k: v for k, v in meta.items() if k != "config"}
    return {**meta["config"], "_sweeper": {**wandb_identity(claim, sweep), **extra}}


def summary_to_set(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's summary sets on its wandb run at the end: every value but NaN (inf kept).

    wandb's client writes a NaN set on a summary as null (wandb/util.py, json_friendly), while
    the summary it keeps from history holds a logged NaN as NaN: leaving NaN out keeps that.
    """
    return {k: v for k, v in summary.items() if not (isinstance(v, float) and math.isnan(v))}


def start_wandb(
    mode: WandbMode,
    *,
    run_id: str,
    project: str,
    entity: str | None,
    group: str | None,
    job_type: str | None,
    config: dict[str, Any],
    directory: Path,
    sweep_id: str | None = None,
) -> Any | None:
    """A wandb run with the store's run id (a requeued attempt resumes the same W&B run),
    grouped by study or sweep; None when disabled. `sweep_id`: the W&B sweep the run belongs
    to, given as a setting because wandb reads WANDB_SWEEP_ID once per process, at setup."""
    if mode == "disabled":
        return None
    import wandb

    directory.mkdir(parents=True, exist_ok=True)
    settings = wandb_settings(wandb)
    if sweep_id:
        settings.sweep_id = sweep_id
    return wandb.init(
        mode=mode,
        project=project,
        entity=entity,
        id=run_id,
        name=run_id,
        resume="allow",
        group=group,
        job_type=job_type,
        config=config,
        dir=str(directory),
        reinit="finish_previous",
        settings=settings,
    )


def wandb_settings(wandb: Any) -> Any:
    """Quiet and lean: the run's provenance (git, versions, host) is already in its config."""
    return wandb.Settings(
        silent=True,
        console="off",
        x_disable_stats=True,
        x_disable_meta=True,
        x_disable_machine_info=True,
        x_save_requirements=False,
        disable_git=True,
        save_code=False,
        disable_job_creation=True,
    )


class StepLog:
    """A trainer's rows on a wandb run, with W&B's step kept monotonic.

    Epoch rows are logged at `step=epoch`, so `_step` is the epoch, as the report and W&B's
    hyperband read it. Batch rows cannot sit between two epochs' steps, so from a run's first
    batch row on, every row is logged at wandb's own row counter and carries its x-axis:
    `epoch` or `batch`, bound to each key with define_metric (W&B charts plot against them).
    Runs that never log batches (the default) keep `_step == epoch`.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self._axes: dict[str, str] = {}
        """key -> x-axis already declared with define_metric (batch-row mode only)."""
        self._open_step: int | None = None
        """The step of the row wandb still holds open: a row logged at an explicit step is
        committed only when a later step comes, or on commit=True (wandb's `Run.log`)."""

    @property
    def by_rows(self) -> bool:
        return bool(self._axes)

    def _declare(self, keys: Sequence[str], axis: str) -> None:
        if axis not in self._axes:
            self.run.define_metric(axis, hidden=True)
            self._axes[axis] = axis
        for key in keys:
            if self._axes.get(key) != axis:
                self.run.define_metric(key, step_metric=axis)
                self._axes[key] = axis

    def log(self, values: Mapping[str, Any], step: int) -> None:
        if not self.by_rows:
            self.run.log(dict(values), step=step)
            self._open_step = step
            return
        self._declare(list(values), "epoch")
        self.run.log({**values, "epoch": step})
        self._open_step = None  # a row logged without a step commits the open one with it

    def _commit(self) -> None:
        """Commit the open row now, so what is set after it (the summary) is not overwritten."""
        if self._open_step is not None:
            self.run.log({}, step=self._open_step, commit=True)
            self._open_step = None

    def log_batch(self, values: Mapping[str, float], batch: int) -> None:
        self._declare(list(values), "batch")
        self.run.log({**values, "batch": batch})
        self._open_step = None

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        import wandb

        self.log({name: [wandb.Image(str(path), caption=path.stem) for path in paths]}, step)

    def end(self, state: RunState, summary: Mapping[str, Any], error: str | None) -> None:
        """Set the summary and finish the run: exit code 0 for a finished or stopped trial,
        1 otherwise, which is how W&B marks a run failed (wandb/sdk/wandb_run.py, finish);
        a failure's first line goes under `error`. The last row is committed first: committed
        at finish, it would overwrite the summary's values with its own."""
        self._commit()
        self.run.summary.update(summary_to_set(summary))
        if state in (RunState.FAILED, RunState.CRASHED):
            self.run.summary["error"] = (error or state).splitlines()[0]
        self.run.finish(exit_code=0 if state.done else 1)

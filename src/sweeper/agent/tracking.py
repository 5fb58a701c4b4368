"""The logger a trial gets: the store is the source of truth, wandb a mirror for `wandb sync`."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sweeper.backends.base import Claim
    from sweeper.backends.local import LocalBackend


WandbMode = Literal["offline", "online", "disabled"]


class TrialLost(RuntimeError):
    """The store no longer lists this attempt as running (requeued after a lapse): stop now."""


class StopFlag:
    """Set by a signal handler; read at the next epoch boundary.

    `reason` says the agent is going away (the trial is preempted and requeued); `by_sweep`
    says the sweep stopped the trial (early termination): it ends as `stopped`.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.by_sweep = False
        self.preempting = threading.Event()
        """Set with `reason`, for a thread that must act before the next epoch boundary."""

    def set(self, reason: str) -> None:
        self.reason = reason
        self.preempting.set()

    def stop_by_sweep(self) -> None:
        self.by_sweep = True

    @property
    def raised(self) -> bool:
        return self.reason is not None or self.by_sweep


class NonFiniteMetricError(ArithmeticError):
    """The sweep's metric went NaN: the trial fails (other keys, and inf, are kept)."""


def check_metric(metric: str | None, values: Mapping[str, float], step: int) -> None:
    """Fail the trial when the sweep's metric is NaN: NaN cannot be ranked (every comparison
    with it is false), so the run could never count. inf is a number: it ranks last for its
    goal. Any other key may be non-finite; it is logged and kept."""
    value = values.get(metric) if metric else None
    if value is not None and math.isnan(value):
        raise NonFiniteMetricError(f"the metric {metric!r} is nan at step {step}")


class TrialLogger:
    def __init__(
        self,
        backend: LocalBackend,
        claim: Claim,
        run_dir: Path | None,
        wandb_run: Any | None = None,
        stop_flag: StopFlag | None = None,
        echo: Any | None = None,
        metric: str | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.metric = metric
        self._backend, self._claim = backend, claim
        self._wandb = WandbMirror(wandb_run) if wandb_run is not None else None
        self.stop_flag = stop_flag or StopFlag()
        self._echo = echo

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        if not self._backend.log(self._claim.run_id, self._claim.attempt, step, values):
            raise TrialLost(f"run {self._claim.run_id} attempt {self._claim.attempt} was requeued")
        if self._wandb is not None:
            self._wandb.log(values, step)
        if self._echo is not None:
            self._echo(step, values)
        check_metric(self.metric, values, step)

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        """Batch metrics are not store history (its steps are epochs): they go to
        run_dir/batches.jsonl, one JSON object per line, and to the wandb mirror."""
        values = {k: float(v) for k, v in metrics.items()}
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / BATCHES).open("a") as file:
                file.write(json.dumps({"batch": batch, **values}) + "\n")
        if self._wandb is not None:
            self._wandb.log_batch(values, batch)

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        """The files stay where the trainer wrote them (the run folder); wandb gets a copy."""
        if self._wandb is not None:
            self._wandb.log_images(name, paths, step)

    def should_stop(self) -> bool:
        if not self.stop_flag.raised and self._backend.should_stop(self._claim.run_id):
            self.stop_flag.stop_by_sweep()
        return self.stop_flag.raised


class WandbLogger:
    """Logs to a wandb run, which is the record when W&B coordinates the sweep.

    W&B stops a trial by signalling it; the signal sets `stop_flag` and the trainer ends at
    the next epoch boundary.
    """

    run_dir: Path | None = None

    def __init__(
        self,
        run: Any,
        stop_flag: StopFlag,
        run_dir: Path | None = None,
        metric: str | None = None,
    ) -> None:
        self._run, self.stop_flag, self.run_dir = WandbMirror(run), stop_flag, run_dir
        self.metric = metric

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        self._run.log(values, step)
        check_metric(self.metric, values, step)

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        self._run.log_batch({k: float(v) for k, v in metrics.items()}, batch)

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        self._run.log_images(name, paths, step)

    def should_stop(self) -> bool:
        return self.stop_flag.raised


BATCHES = "batches.jsonl"


class WandbMirror:
    """A trainer's records on a wandb run, with W&B's step kept monotonic.

    Epoch rows are logged at `step=epoch`, so `_step` is the epoch, as the report and W&B's
    hyperband read it. Batch rows cannot sit between two epochs' steps, so from a run's first
    batch row on, every row is logged at wandb's own row counter and carries its x-axis:
    `epoch` or `batch`, bound to each key with define_metric (W&B charts plot against them).
    Runs that never log batches (the default) keep `_step == epoch`.
    """

    def __init__(self, run: Any) -> None:
        self._run = run
        self._axes: dict[str, str] = {}
        """key -> x-axis already declared with define_metric (batch-row mode only)."""

    @property
    def by_rows(self) -> bool:
        return bool(self._axes)

    def _declare(self, keys: Sequence[str], axis: str) -> None:
        if axis not in self._axes:
            self._run.define_metric(axis, hidden=True)
            self._axes[axis] = axis
        for key in keys:
            if self._axes.get(key) != axis:
                self._run.define_metric(key, step_metric=axis)
                self._axes[key] = axis

    def log(self, values: dict[str, Any], step: int) -> None:
        if not self.by_rows:
            self._run.log(values, step=step)
            return
        self._declare(list(values), "epoch")
        self._run.log({**values, "epoch": step})

    def log_batch(self, values: dict[str, float], batch: int) -> None:
        self._declare(list(values), "batch")
        self._run.log({**values, "batch": batch})

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        import wandb

        self.log({name: [wandb.Image(str(path), caption=path.stem) for path in paths]}, step)


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

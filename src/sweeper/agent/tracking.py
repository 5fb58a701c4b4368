"""The logger a trial gets: the store is the source of truth, wandb a mirror for `wandb sync`."""

from __future__ import annotations

import math
from collections.abc import Mapping
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

    def set(self, reason: str) -> None:
        self.reason = reason

    def stop_by_sweep(self) -> None:
        self.by_sweep = True

    @property
    def raised(self) -> bool:
        return self.reason is not None or self.by_sweep


class TrialLogger:
    def __init__(
        self,
        backend: LocalBackend,
        claim: Claim,
        run_dir: Path | None,
        wandb_run: Any | None = None,
        stop_flag: StopFlag | None = None,
        echo: Any | None = None,
    ) -> None:
        self.run_dir = run_dir
        self._backend, self._claim, self._wandb = backend, claim, wandb_run
        self.stop_flag = stop_flag or StopFlag()
        self._echo = echo

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        if not self._backend.log(self._claim.run_id, self._claim.attempt, step, values):
            raise TrialLost(f"run {self._claim.run_id} attempt {self._claim.attempt} was requeued")
        if self._wandb is not None:
            self._wandb.log(values, step=step)
        if self._echo is not None:
            self._echo(step, values)

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

    def __init__(self, run: Any, stop_flag: StopFlag, run_dir: Path | None = None) -> None:
        self._run, self.stop_flag, self.run_dir = run, stop_flag, run_dir

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log({k: float(v) for k, v in metrics.items()}, step=step)

    def should_stop(self) -> bool:
        return self.stop_flag.raised


def finite(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary without NaN or infinities (JSON and W&B summaries cannot hold them)."""
    return {k: v for k, v in summary.items() if not (isinstance(v, float) and not math.isfinite(v))}


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
) -> Any | None:
    """A wandb run with the store's run id (a requeued attempt resumes the same W&B run),
    grouped by study or sweep; None when disabled."""
    if mode == "disabled":
        return None
    import wandb

    directory.mkdir(parents=True, exist_ok=True)
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
        settings=wandb_settings(wandb),
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

"""The logger a trial gets: the store is the source of truth, wandb a mirror for `wandb sync`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sweeper.backends.local import Claim, LocalBackend

WandbMode = Literal["offline", "online", "disabled"]


class TrialLost(RuntimeError):
    """The store no longer lists this attempt as running (requeued after a lapse): stop now."""


class StopFlag:
    """Set by a signal handler; read at the next epoch boundary."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = reason


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
        self.stopped_by_sweep = False
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
        if self.stop_flag.reason is not None:
            return True
        if self._backend.should_stop(self._claim.run_id):
            self.stopped_by_sweep = True
        return self.stopped_by_sweep


def start_wandb(
    mode: WandbMode,
    *,
    project: str,
    entity: str | None,
    group: str | None,
    name: str,
    job_type: str | None,
    config: dict[str, Any],
    directory: Path,
) -> Any | None:
    """A wandb run grouped by sweep, or None when disabled."""
    if mode == "disabled":
        return None
    import wandb

    directory.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        mode=mode,
        project=project,
        entity=entity,
        group=group,
        name=name,
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

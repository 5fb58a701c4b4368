"""The Backend protocol: what the agent, `launch`, `status` and the report ask of a sweep's home.

Two backends implement it: the embedded SQLite store (`local`) and a W&B server (`wandb`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sweeper.sweep import RunView

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.agent.tracking import StopFlag, WandbMode

Beat = Literal["alive", "stop", "lost"]
"""A heartbeat's answer: keep going; stop at the next epoch (W&B's stop command); or the trial
is no longer ours (requeued elsewhere) and must die now."""

PREEMPTED_EXIT = 75
"""A trial child's exit code when it stopped to be requeued (EX_TEMPFAIL: try again later):
how the agent tells a preempted trial from a finished one where the server keeps the record."""


@dataclass(frozen=True)
class SweepRecord:
    id: str
    name: str
    project: str
    trainer: str
    """The registered trainer; "" for a plain W&B sweep (see `is_command`)."""
    config: dict[str, Any]
    """The compiled W&B sweep config."""
    spec: dict[str, Any]
    spec_hash: str
    spec_path: str | None
    state: str
    exhausted: bool
    study: str | None
    stage: int
    stage_name: str | None
    carried: dict[str, Any]
    created_at: float
    entity: str | None = None

    @property
    def metric(self) -> tuple[str, str]:
        metric = self.config.get("metric", {})
        return metric.get("name", ""), metric.get("goal", "minimize")

    @property
    def title(self) -> str:
        """`id name`, or the id alone for an unnamed sweep (whose name is its id)."""
        return self.id if self.name == self.id else f"{self.id} {self.name}"

    @property
    def is_command(self) -> bool:
        """A plain W&B sweep: each trial runs the sweep's `command`, not a trainer."""
        return not self.trainer

    @property
    def key(self) -> str:
        """The id as a file name (a W&B sweep's id is entity/project/sweep_id)."""
        return self.id.replace("/", "-")

    @property
    def agents(self) -> dict[str, Any]:
        """The spec's `agents` section (a W&B sweep made elsewhere has none: the defaults)."""
        defaults = {"gpus_per_trial": 1, "cpus_per_trial": None, "trial_timeout": None}
        return {**defaults, **self.spec.get("agents", {})}


@dataclass(frozen=True)
class Claim:
    """A trial handed to one agent: run it as attempt `attempt`."""

    run_id: str
    sweep_id: str | None
    attempt: int
    params: dict[str, Any]
    """Flat {dotted path: value}."""
    resumed: bool = False
    """W&B handed out a run it had before; it says so, but does not count attempts."""


@dataclass(frozen=True)
class LiveTrial:
    """A running trial as its last logged step left it, for a progress line."""

    run_id: str
    agent: str | None
    step: int | None
    """The last step (epoch) it logged; None before its first."""
    summary: dict[str, Any]
    """Its last logged values."""
    elapsed: float
    """Seconds since it started."""


class Backend(Protocol):
    """Where sweeps live. Agent-side calls are made from the agent's parent process only;
    `run_trial` runs in the forked child."""

    kind: str
    """"local" or "wandb"."""
    path: Path
    """The local store (the W&B backend keeps run files beside it, not runs)."""
    root: Path
    """Where runs keep files: logs, checkpoints, wandb's run folders."""
    where: str
    """Said to the user: the store's path, or the W&B server."""
    progress_every: float
    """Seconds between progress polls: a server is asked less often than a file."""

    def run_dir(self, run_id: str) -> Path: ...

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given):
        what a re-run launch resumes."""
        ...

    def create_sweep(
        self,
        config: Mapping[str, Any],
        *,
        trainer: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        spec_path: str | None = None,
        study: str | None = None,
        stage: int = 0,
        stage_name: str | None = None,
        carried: Mapping[str, Any] | None = None,
    ) -> str: ...

    def sweep(self, sweep_id: str) -> SweepRecord: ...

    def set_sweep_state(self, sweep_id: str, state: str) -> None: ...

    def counts(self, sweep_id: str) -> dict[str, int]: ...

    def is_complete(self, sweep_id: str) -> bool: ...

    def run_views(self, sweep_id: str) -> list[RunView]: ...

    def live_trials(self, sweep_id: str) -> list[LiveTrial]: ...

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame: ...

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """The next trial for this agent slot, or None when there is none now."""
        ...

    def heartbeat(self, run_id: str, attempt: int) -> Beat: ...

    def run_trial(
        self, claim: Claim, sweep: SweepRecord, *, wandb_mode: WandbMode, stop_flag: StopFlag
    ) -> str:
        """In the forked child: train and record the outcome; returns the trial's state."""
        ...

    def record_exit(
        self, claim: Claim, exit_code: int | None, verdict: tuple[str, str] | None
    ) -> tuple[str, str | None]:
        """After the child exited: its final state and reason, recording what the child could
        not record itself: a crash, or the agent's `verdict` (state, reason) when the agent
        killed it (preempted at shutdown, or timed out)."""
        ...

    def close(self) -> None: ...

"""Run and sweep states, as W&B names them, and the groups every part of sweeper counts by.

W&B's run states are running, finished, failed, crashed and preempted (wandb's
`wandb.apis.public.Run.state`; https://docs.wandb.ai/guides/runs/#run-states), and a sweep's
engine also sees pending runs. sweeper adds `stopped` for a run early termination cut short
(W&B files it as finished with `stopped` set; `sweeps.SweepRun.stopped`).
"""

from __future__ import annotations

from enum import StrEnum

from sweeper.errors import SweeperError


class RunState(StrEnum):
    """A run's state. A `str`, so it is stored, compared and printed as its W&B name."""

    PENDING = "pending"
    """Made by the engine, not yet handed to an agent."""
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    """Early-terminated: finished, but cut short."""
    FAILED = "failed"
    """The trial raised or its program exited non-zero."""
    CRASHED = "crashed"
    """The trial's process died (a signal, out of memory) or its agent stopped heartbeating."""
    PREEMPTED = "preempted"
    """Stopped to be requeued (SIGTERM, a lapsed lease): the next agent runs it again."""

    @property
    def terminal(self) -> bool:
        """A state the run never leaves."""
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Still to run, or running: the sweep is not over while any run is active."""
        return self in ACTIVE

    @property
    def done(self) -> bool:
        """Its metric counts: finished, or stopped early; failed runs are shown but never win."""
        return self in DONE


TERMINAL = (RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.CRASHED)
"""States a run never leaves. A preempted run is not one: it is requeued and runs again."""
ACTIVE = (RunState.PENDING, RunState.PREEMPTED, RunState.RUNNING)
"""Still to run, or running: a sweep is complete when none of its runs is active."""
DONE = (RunState.FINISHED, RunState.STOPPED)
"""Runs whose metric counts for the best configuration; failed and crashed runs are shown,
never ranked. W&B's bayes search likewise fits the metric of finished runs only
(sweeps/bayes_search.py), and an early-stopped run reaches it as finished."""


class SweepState(StrEnum):
    """A sweep's state, W&B's name in lower case; stored, compared and printed as such.

    What each means for agents is W&B's ("Pause, resume, stop and cancel sweeps":
    https://docs.wandb.ai/guides/sweeps/pause-resume-and-cancel-sweeps/), and the CLI verbs
    set them as `wandb sweep --pause/--resume/--stop/--cancel` does (wandb/cli/cli.py `sweep`).
    """

    RUNNING = "running"
    """Agents get new runs."""
    PAUSED = "paused"
    """No new runs; running ones go on; agents wait for a resume."""
    FINISHED = "finished"
    """No new runs; running ones finish normally; agents exit once theirs are done. Also
    what a sweep becomes when its engine has nothing left and no run is active."""
    CANCELED = "canceled"
    """No new runs, and the running ones are stopped at their next epoch; agents exit."""

    @property
    def over(self) -> bool:
        """It hands out no run again unless resumed: its agents exit."""
        return self in (SweepState.FINISHED, SweepState.CANCELED)

    @classmethod
    def read(cls, text: str | None) -> SweepState:
        """A state as a store or a W&B server gives it.

        W&B's are upper case; its PENDING (a sweep no agent has asked yet) hands out runs, so
        it reads as running. `stopped` is what a store written before these four states
        called a cancelled sweep (its only writer sent it to W&B as CANCELED). Any other state
        a server reports (a failed or crashed sweep's) hands out nothing: finished.
        """
        name = (text or "running").lower()
        if name == "pending":
            return cls.RUNNING
        if name == "stopped":
            return cls.CANCELED
        return cls(name) if name in cls._value2member_map_ else cls.FINISHED


SWEEP_VERBS: dict[str, SweepState] = {
    "pause": SweepState.PAUSED,
    "resume": SweepState.RUNNING,
    "stop": SweepState.FINISHED,
    "cancel": SweepState.CANCELED,
}
"""The CLI verbs and the state each sets, as `wandb sweep --pause/...` maps them
(wandb/cli/cli.py: stop=FINISHED, cancel=CANCELED, pause=PAUSED, resume=RUNNING)."""


def check_transition(sweep: str, current: SweepState, wanted: SweepState) -> None:
    """Refuse a state change W&B's client refuses (wandb/apis/public/sweeps.py
    `_set_sweep_state`): pausing, stopping or cancelling a sweep that is over. Resuming is
    allowed from any state, as there; setting the state a sweep already has changes nothing.

    Raises:
        SweeperError: the change is refused (one line naming the sweep and its state).
    """
    if wanted == current or wanted == SweepState.RUNNING or not current.over:
        return
    verb = next(name for name, state in SWEEP_VERBS.items() if state == wanted)
    raise SweeperError(f"cannot {verb} sweep {sweep}: it is already {current}")

"""Run states, as W&B names them, and the groups every part of sweeper counts by.

W&B's run states are running, finished, failed, crashed and preempted (wandb's
`wandb.apis.public.Run.state`; https://docs.wandb.ai/guides/runs/#run-states), and a sweep's
engine also sees pending runs. sweeper adds `stopped` for a run early termination cut short
(W&B files it as finished with `stopped` set; `sweeps.SweepRun.stopped`).
"""

from __future__ import annotations

from enum import StrEnum


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

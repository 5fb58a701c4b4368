"""What a trainer logs through: its trial's sink (the record), with the agent's stop signals."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sweeper.backends.base import TrialSink


class TrialLost(RuntimeError):
    """The store no longer lists this attempt as running (requeued after a lapse): stop now."""


class StopFlag:
    """Set by a signal handler; read at the next epoch boundary.

    `reason` says the agent is going away (the trial is preempted and requeued); `by_sweep`
    says the sweep or W&B stopped the trial (early termination, a user's "Stop run", a
    cancelled sweep): it ends as `stopped`. Which signal means which: agent/loop.py.
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
    goal. Any other key may be non-finite; it is logged and kept.

    Raises:
        NonFiniteMetricError: `values[metric]` is NaN.
    """
    value = values.get(metric) if metric else None
    if value is not None and math.isnan(value):
        raise NonFiniteMetricError(f"the metric {metric!r} is nan at step {step}")


Echo = Callable[[int, dict[str, float]], None]
"""Shown each epoch's row as it is logged (`sweeper train`'s progress line)."""


class TrialLogger:
    """The trainers.logger.Logger a trial's trainer gets: every call goes to its sink."""

    def __init__(
        self,
        sink: TrialSink,
        stop_flag: StopFlag | None = None,
        *,
        metric: str | None = None,
        echo: Echo | None = None,
        keep_files: bool = True,
    ) -> None:
        """`metric`: the one whose NaN fails the trial; `keep_files`: the trainer may keep
        checkpoints in the sink's run folder."""
        self.run_dir: Path | None = sink.run_dir if keep_files else None
        self.metric = metric
        self.stop_flag = stop_flag or StopFlag()
        self._sink, self._echo = sink, echo

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Raises:
        TrialLost: the claim is no longer this trial's.
        NonFiniteMetricError: the sweep's metric is NaN (the row is recorded first)."""
        values = {k: float(v) for k, v in metrics.items()}
        if not self._sink.log(step, values):
            claim = self._sink.claim
            raise TrialLost(f"run {claim.run_id} attempt {claim.attempt} was requeued")
        if self._echo is not None:
            self._echo(step, values)
        check_metric(self.metric, values, step)

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        self._sink.log_batch(batch, {k: float(v) for k, v in metrics.items()})

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        self._sink.log_images(name, list(paths), step)

    def should_stop(self) -> bool:
        if not self.stop_flag.raised and self._sink.should_stop():
            self.stop_flag.stop_by_sweep()
        return self.stop_flag.raised

"""The store's TrialSink: a trial's record in the local store, with an optional wandb mirror.

Every write goes through LocalBackend's fenced methods (run id + attempt), so a trial requeued
behind its back can no longer write. The mirror (a wandb run under the store's run id, offline
by default, for `wandb sync`) gets the same rows; the store stays the source of truth.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sweeper.backends.base import Claim, SweepRecord, WandbMode
from sweeper.backends.postgres import TransactionLost
from sweeper.backends.wandbrun import StepLog, run_config, start_wandb
from sweeper.errors import Unreachable
from sweeper.sweep import RunState

if TYPE_CHECKING:
    from sweeper.backends.local import LocalBackend

BATCHES = "batches.jsonl"
"""run_dir/batches.jsonl: a trial's batch metrics, one JSON object per line (the store's
history holds epochs only)."""

FLUSH = "0.5"
"""Seconds between wandb's writes of a running program's run file (its default, 15 s, would
leave hyperband judging rows a quarter of a minute old)."""


STEP_WAIT = 5.0
"""Seconds a trial's step or stop check waits on an unreachable store before it trains on:
its steps are kept in order and written when the store answers again (issue 22: a running
trial keeps running through an outage and flushes what it logged)."""

RETRY_AFTER = 10.0
"""Seconds a trial that found the store unreachable trains on before it tries again."""

END_WAIT = 300.0
"""Seconds a trial's end waits for the store to answer, its buffered steps first (the agent's
default --outage-limit: past it the agent gives up too)."""

LOST_TRIES = 4
"""How often a trial's write is tried when its connection dies inside the transaction (each
later try itself waits out an unreachable server, as every store call does)."""

T = TypeVar("T")


def _say(line: str) -> None:
    """A line in the trial's output (its log file), where the agent shows a trial's story."""
    print(f"sweeper: {line}", file=sys.stderr, flush=True)


def _again(call: Callable[[], T]) -> T:
    """`call()`, tried again after a connection lost inside its transaction (a PostgreSQL
    restart mid-write), so a running trial rides out the restart. Safe to repeat: meta and a
    step are replaced by their repeat, and an end that did commit fences its repeat off.

    Raises:
        TransactionLost: still lost after LOST_TRIES tries.
    """
    for tries in range(1, LOST_TRIES + 1):
        try:
            return call()
        except TransactionLost:
            if tries == LOST_TRIES:
                raise
            time.sleep(0.25 * 2**tries)
    raise AssertionError("unreachable")


class StoreSink:
    """One claim's record in the local store (see base.TrialSink)."""

    by_exit_code = False

    def __init__(
        self,
        backend: LocalBackend,
        claim: Claim,
        sweep: SweepRecord | None,
        wandb_mode: WandbMode,
        *,
        owned: bool,
    ) -> None:
        self.claim, self.sweep = claim, sweep
        self.run_dir: Path = backend.run_dir(claim.run_id)
        self._backend, self._owned = backend, owned
        self._mode = wandb_mode
        self._mirror: StepLog | None = None
        self._unwritten: list[tuple[int, dict[str, float]]] = []
        """Steps logged while the store did not answer, oldest first."""
        self._retry_at = 0.0
        """When (monotonic) to try the store again after it did not answer."""

    def record_meta(self, meta: Mapping[str, Any]) -> None:
        """Store the meta, then open the mirror (if any) with it as the run's config."""
        _again(lambda: self._backend.record_meta(self.claim.run_id, self.claim.attempt, meta))
        sweep = self.sweep
        run = start_wandb(
            self._mode,
            run_id=self.claim.run_id,
            project=sweep.project if sweep else "sweeper",
            entity=sweep.entity if sweep else None,
            group=(sweep.study or sweep.id) if sweep else None,
            job_type=sweep.stage_name if sweep else None,
            directory=self._backend.root,
            config=run_config(meta, self.claim, sweep),
        )
        self._mirror = StepLog(run) if run is not None else None

    def log(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Write the step, after any the store missed; with the store unreachable, keep it
        and train on (True), to be written when it answers. False once the run is no longer
        this attempt's (fenced)."""
        self._unwritten.append((step, dict(metrics)))
        if self._mirror is not None:
            self._mirror.log(metrics, step)
        if time.monotonic() < self._retry_at:
            return True
        try:
            with self._backend.patience(STEP_WAIT):
                return self._flush()
        except Unreachable as exc:
            self._unreachable(exc)
            return True

    def _flush(self) -> bool:
        """Write the unwritten steps in order; False (and none kept) once one is fenced off."""
        claim = self.claim
        while self._unwritten:
            step, metrics = self._unwritten[0]
            if not _again(partial(self._backend.log, claim.run_id, claim.attempt, step, metrics)):
                self._unwritten.clear()
                return False
            self._unwritten.pop(0)
        if self._retry_at:
            self._retry_at = 0.0
            _say(f"run {claim.run_id}: the store answers again; buffered steps written")
        return True

    def _unreachable(self, exc: Unreachable) -> None:
        if not self._retry_at:
            _say(f"run {self.claim.run_id}: {exc}; training goes on, steps kept until it answers")
        self._retry_at = time.monotonic() + RETRY_AFTER

    def log_batch(self, batch: int, metrics: Mapping[str, float]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / BATCHES).open("a") as file:
            file.write(json.dumps({"batch": batch, **metrics}) + "\n")
        if self._mirror is not None:
            self._mirror.log_batch(metrics, batch)

    def log_images(self, name: str, paths: list[Path], step: int) -> None:
        """The files stay where the trainer wrote them (the run folder); the mirror gets a copy."""
        if self._mirror is not None:
            self._mirror.log_images(name, paths, step)

    def should_stop(self) -> bool:
        """The store's answer; with the store unreachable, go on (no stop can be read)."""
        if time.monotonic() < self._retry_at:
            return False
        try:
            with self._backend.patience(STEP_WAIT):
                return self._backend.should_stop(self.claim.run_id)
        except Unreachable as exc:
            self._unreachable(exc)
            return False

    def program_env(self, attempt_dir: Path) -> dict[str, str]:
        """Offline into `attempt_dir`, where the agent reads the program's run file back."""
        sweep = self.sweep
        env = {
            "WANDB_MODE": "offline",
            "WANDB_RUN_ID": self.claim.run_id,
            "WANDB_SWEEP_PARAM_PATH": str(attempt_dir / "sweep-params.yaml"),
            "WANDB_DIR": str(attempt_dir),
            "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL": FLUSH,
        }
        if sweep is not None:
            env.update(WANDB_SWEEP_ID=sweep.id, WANDB_PROJECT=sweep.project)
            if sweep.entity:
                env["WANDB_ENTITY"] = sweep.entity
        return env

    def mark_preempting(self) -> None:
        """Nothing to say early: the agent records the preemption when the trial ends."""

    def finish(
        self,
        state: RunState,
        *,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """The mirror ends first (its summary; a failure's first line), then the store."""
        if self._mirror is not None:
            mirror, self._mirror = self._mirror, None
            mirror.end(state, summary or {}, error)
        with self._backend.patience(END_WAIT):
            if not _again(self._flush):
                return False
            return _again(
                lambda: self._backend.finish(
                    self.claim.run_id,
                    self.claim.attempt,
                    state,
                    summary=summary,
                    exit_code=exit_code,
                    error=error,
                )
            )

    def ended(self) -> tuple[RunState, str | None] | None:
        run = self._backend.run(self.claim.run_id)
        if run["state"] == RunState.RUNNING and run["attempt"] == self.claim.attempt:
            return None
        return RunState(run["state"]), run["error"]

    def close(self) -> None:
        if self._owned:
            self._backend.close()

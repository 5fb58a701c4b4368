"""One trial, start to end: `run_trial(workload, sink)`, wherever its record goes.

The workload says what runs: a registered trainer with its config, or a plain W&B sweep's
command (the user's program, started as `wandb agent` starts it; see agent/program.py). The
sink says where the record goes: the store, or the run a W&B server created (see
backends/base.TrialSink). Runs inside the agent's forked child, in-process for `sweeper train`,
or under the stock `wandb agent` (agent/wandb_agent_trial.py). Whatever happens (an
exception, NaN, a stop), the record ends with one state and a reason.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sweeper.agent.provenance import provenance
from sweeper.agent.tracking import Echo, NonFiniteMetricError, StopFlag, TrialLogger, TrialLost
from sweeper.backends.base import Claim, SweepRecord, TrialSink, WandbMode
from sweeper.errors import NoSpace, StoreLost, no_space
from sweeper.spec.paths import flatten, unflatten
from sweeper.sweep import RunState, key_paths, run_config
from sweeper.text import REASON_LIMIT, cap, strip_controls
from sweeper.trainers.registry import TrainerInfo, get_trainer

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sweeper.backends.local import LocalBackend

TRACEBACK_TAIL = 20
"""Lines of a trial's traceback kept in its reason."""
PREEMPT_POLL = 0.5
"""Seconds between looks for the agent's preemption (a trial's thread ends with it)."""

TrialEnd = RunState | Literal["lost"]
"""How `run_trial` ended: the state recorded, or "lost" when the claim was no longer the
trial's (requeued behind its back) and nothing was recorded."""


@dataclass(frozen=True)
class TrainerRun:
    """A registered trainer and its config (the trainer's nested shape, not yet validated)."""

    name: str
    config: Mapping[str, Any]
    metric: str | None = None
    """The sweep's metric: a NaN in it fails the trial. None (`sweeper train`): the
    trainer's own metric is watched for NaN, and the summary is not judged."""
    spec_hash: str | None = None
    keep_files: bool = True
    """The trainer may keep checkpoints in the sink's run folder (not under `wandb agent`,
    whose working folder is the user's)."""


@dataclass(frozen=True)
class CommandRun:
    """A plain W&B sweep's trial: its `command`, run in `folder` with these parameters."""

    command: list[str]
    program: str | None
    """The sweep's `program` (what `${program}` expands to)."""
    folder: str
    args: dict[str, Any]
    """The run config: parameters by their W&B names, nested along nested blocks."""
    metric: str | None


Workload = TrainerRun | CommandRun


def workload_of(sweep: SweepRecord, claim: Claim) -> Workload:
    """What a claim of this sweep runs."""
    metric = sweep.metric[0] or None
    if not sweep.is_command:
        return TrainerRun(sweep.trainer, unflatten(claim.params), metric, sweep.spec_hash)
    from sweeper.spec.command import command_of

    return CommandRun(
        command=command_of(sweep.config),
        program=sweep.config.get("program"),
        folder=sweep.spec.get("folder", "."),
        args=run_config(claim.params, key_paths(sweep.config)),
        metric=metric,
    )


def run_trial(
    workload: Workload, sink: TrialSink, flag: StopFlag | None = None, echo: Echo | None = None
) -> TrialEnd:
    """Run one trial and record how it ended through `sink`; returns that state.

    `flag` carries the agent's signals (its own preemption, the sweep's stop); `echo` sees
    each epoch's row (a trainer only).

    Raises:
        NoSpace: a full disk stopped the trial; it is requeued (preempted) if the store
            still takes that write.
        StoreLost: the store file is not the one opened; nothing was recorded.
    """
    flag = flag or StopFlag()
    over = threading.Event()
    threading.Thread(target=_tell_preempting, args=(sink, flag, over), daemon=True).start()
    try:
        if isinstance(workload, CommandRun):
            from sweeper.agent.program import follow  # no torch for a program (1.4 s import)

            return follow(workload, sink, flag)
        return _train(workload, sink, flag, echo)
    finally:
        over.set()


def _tell_preempting(sink: TrialSink, flag: StopFlag, over: threading.Event) -> None:
    """The agent is going away: the record hears it now, not at the next epoch boundary."""
    while not over.is_set():
        if flag.preempting.wait(PREEMPT_POLL):
            sink.mark_preempting()
            return


def _device(info: TrainerInfo, name: str) -> str:
    """The device recorded with the run. A trainer without torch records its config's device
    as written: asking torch would cost that trial the 2-3 s torch import."""
    if not info.torch:
        return name
    from sweeper.trainers.common.device import describe, select_device

    return describe(select_device(name))


def _error_text(exc: BaseException) -> str:
    """One line of reason, then the traceback tail for the curious; a message's own escapes
    and its length (an exception may quote a whole tensor) cut to what a row should hold."""
    head = f"{type(exc).__name__}: {exc}".splitlines()[0]
    tail = "".join(traceback.format_exception(exc)).splitlines()[-TRACEBACK_TAIL:]
    return cap(strip_controls("\n".join([head, *tail])), REASON_LIMIT)


def _outcome(
    summary: dict[str, Any], flag: StopFlag, metric: str | None
) -> tuple[RunState, str | None]:
    """How a trial that returned ended: finished, stopped early, preempted, or a NaN metric
    (see tracking.check_metric)."""
    value = summary.get(metric) if metric else None
    if isinstance(value, float) and math.isnan(value):
        return RunState.FAILED, f"the metric {metric!r} is nan in the summary"
    if flag.reason:
        return RunState.PREEMPTED, f"requeued: {flag.reason}"
    return (RunState.STOPPED if flag.by_sweep else RunState.FINISHED), None


def _train(work: TrainerRun, sink: TrialSink, flag: StopFlag, echo: Echo | None) -> TrialEnd:
    state, summary, error = RunState.FAILED, dict[str, Any](), None
    full: NoSpace | None = None
    lost = False
    try:
        info = get_trainer(work.name)
        config = info.config_model().model_validate(work.config)
        meta = provenance(config, work.spec_hash, _device(info, config.device))
        meta["trainer"] = work.name  # a `sweeper train` run has no sweep to say it
        sink.record_meta(meta)
        # `sweeper train`: a NaN in the trainer's metric fails the run too
        watched = work.metric or info.metric
        logger = TrialLogger(sink, flag, metric=watched, echo=echo, keep_files=work.keep_files)
        summary = dict(info.train_fn()(config, logger))
        state, error = _outcome(summary, flag, work.metric)
    except TrialLost:
        lost = True
    except KeyboardInterrupt:
        state, error = RunState.CRASHED, "interrupted"
    except NonFiniteMetricError as exc:
        error = str(exc)
    except StoreLost:
        raise
    except Exception as exc:
        full = no_space(exc, sink.run_dir)
        if full is not None:  # the disk, not the trial: it reruns once there is space
            state, error = RunState.PREEMPTED, f"requeued: {full}"
        else:
            error = _error_text(exc)
    done = state in (RunState.FINISHED, RunState.STOPPED, RunState.PREEMPTED)
    try:  # fenced: a lost trial's end changes nothing in the store (its mirror still ends)
        sink.finish(state, summary=summary, exit_code=0 if done else 1, error=error)
    except NoSpace:
        if full is None:
            raise
    if full is not None:
        raise full  # the agent stops: every trial after this one would meet the same disk
    if lost:
        return "lost"
    if error and sink.by_exit_code:
        print(error, file=sys.stderr)  # the child's output.log, which the agent quotes
    return state


def run_alone(
    backend: LocalBackend,
    trainer: str,
    config: BaseModel,
    *,
    threads: int,
    wandb_mode: WandbMode,
    echo: Echo | None = None,
    on_start: Callable[[Claim], None] = lambda claim: None,
) -> tuple[TrialEnd, dict[str, Any]]:
    """`sweeper train`: one trial of a validated trainer config outside any sweep, in this
    process, recorded in the store as a run of no sweep; returns its end and its row.

    `threads`: torch's CPU threads, as an agent with one slot would give its trial.
    `on_start` is told the run before it trains.

    Raises:
        NoSpace, StoreLost: as run_trial.
    """
    info = get_trainer(trainer)
    claim = backend.create_run(flatten(config.model_dump(mode="json")), agent="train")
    on_start(claim)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if info.torch:
        import torch

        torch.set_num_threads(threads)
    sink = backend.open_sink(claim, None, wandb_mode=wandb_mode, fork=False)
    try:
        end = run_trial(TrainerRun(trainer, unflatten(claim.params)), sink, echo=echo)
    finally:
        sink.close()
    return end, backend.run(claim.run_id)

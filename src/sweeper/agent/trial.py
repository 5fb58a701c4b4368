"""One trial, start to end: resolve its config, train, record the outcome.

Runs inside the agent's forked child (or in-process for `sweeper train`). Whatever happens
(an exception, NaN, a stop), the store ends with one state and a reason.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from sweeper.agent.provenance import provenance
from sweeper.agent.tracking import (
    NonFiniteMetricError,
    StopFlag,
    TrialLogger,
    TrialLost,
    WandbLogger,
    WandbMode,
    start_wandb,
    summary_to_set,
)
from sweeper.backends.base import Claim, SweepRecord
from sweeper.backends.local import LocalBackend
from sweeper.errors import NoSpace, StoreLost, no_space
from sweeper.spec.paths import unflatten
from sweeper.sweep import swept_params
from sweeper.text import REASON_LIMIT, cap, strip_controls
from sweeper.trainers.registry import TrainerInfo, get_trainer

TRACEBACK_TAIL = 20


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


def wandb_identity(claim: Claim, sweep: SweepRecord | None) -> dict[str, Any]:
    """What ties a mirrored wandb run to its sweep: W&B cannot know a local sweep's id, so the
    run carries it, with the swept parameters and the metric, under `_sweeper`."""
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


def _outcome(summary: dict[str, Any], flag: StopFlag, metric: str | None) -> tuple[str, str | None]:
    """How a trial that returned ended: finished, stopped early, preempted, or a NaN metric
    (see tracking.check_metric)."""
    value = summary.get(metric) if metric else None
    if isinstance(value, float) and math.isnan(value):
        return "failed", f"the metric {metric!r} is nan in the summary"
    if flag.reason:
        return "preempted", f"requeued: {flag.reason}"
    return ("stopped" if flag.by_sweep else "finished"), None


def _sweeper_config(meta: dict[str, Any], claim: Claim, sweep: SweepRecord | None) -> dict:
    """The wandb run's config: the trainer's own, plus provenance and identity under
    `_sweeper` (W&B's report ignores keys starting with an underscore)."""
    extra = {k: v for k, v in meta.items() if k != "config"}
    return {**meta["config"], "_sweeper": {**wandb_identity(claim, sweep), **extra}}


def execute(
    backend: LocalBackend,
    claim: Claim,
    trainer: str,
    *,
    sweep: SweepRecord | None = None,
    wandb_mode: WandbMode = "offline",
    stop_flag: StopFlag | None = None,
    echo: Any | None = None,
) -> str:
    """Run a trial of the local store and record how it ended; returns that state.

    Raises:
        NoSpace: a full disk stopped the trial; it is requeued (preempted) if the store
            still takes that write.
        StoreLost: the store file is not the one opened; nothing was recorded.
    """
    flag = stop_flag or StopFlag()
    wandb_run = None
    state, summary, error = "failed", {}, None
    full: NoSpace | None = None
    try:
        info = get_trainer(trainer)
        config = info.config_model().model_validate(unflatten(claim.params))
        meta = provenance(config, sweep.spec_hash if sweep else None, _device(info, config.device))
        meta["trainer"] = trainer  # a `sweeper train` run has no sweep to say it
        backend.record_meta(claim.run_id, claim.attempt, meta)
        wandb_run = start_wandb(
            wandb_mode,
            run_id=claim.run_id,
            project=sweep.project if sweep else "sweeper",
            entity=sweep.entity if sweep else None,
            group=(sweep.study or sweep.id) if sweep else None,
            job_type=sweep.stage_name if sweep else None,
            directory=backend.root,
            config=_sweeper_config(meta, claim, sweep),
        )
        metric = sweep.metric[0] if sweep else None
        watched = metric or info.metric  # `sweeper train`: a NaN in the trainer's metric fails too
        logger = TrialLogger(
            backend, claim, backend.run_dir(claim.run_id), wandb_run, flag, echo, watched
        )
        summary = dict(info.train_fn()(config, logger))
        state, error = _outcome(summary, flag, metric)
    except TrialLost:
        return "lost"
    except KeyboardInterrupt:
        state, error = "crashed", "interrupted"
    except NonFiniteMetricError as exc:
        error = str(exc)
    except StoreLost:
        raise
    except Exception as exc:
        full = no_space(exc, backend.run_dir(claim.run_id))
        if full is not None:  # the disk, not the trial: it reruns once there is space
            state, error = "preempted", f"requeued: {full}"
        else:
            error = _error_text(exc)
    finally:
        kept = summary  # the store holds every float (backends/storejson.py)
        if wandb_run is not None:
            wandb_run.summary.update(summary_to_set(kept))
            wandb_run.finish(exit_code=0 if state in ("finished", "stopped") else 1)
    try:
        backend.finish(
            claim.run_id,
            claim.attempt,
            state,
            summary=kept,
            exit_code=0 if state in ("finished", "stopped", "preempted") else 1,
            error=error,
        )
    except NoSpace:
        if full is None:
            raise
    if full is not None:
        raise full  # the agent stops: every trial after this one would meet the same disk
    return state


def run_on_wandb(
    claim: Claim,
    sweep: SweepRecord,
    *,
    entity: str,
    project: str,
    sweep_id: str,
    directory: Path,
    run_dir: Path,
    stop_flag: StopFlag,
) -> str:
    """Run a trial a W&B server handed out, logging online to the run it created.

    The run is the record: its summary carries the outcome, `error` the reason of a failure,
    and its exit code tells W&B whether it finished or failed. A preempted run is marked
    preempting and ends non-zero, which is how W&B knows to hand it to an agent again.
    """
    state, summary, error = "failed", {}, None
    run = None
    try:
        info = get_trainer(sweep.trainer)
        config = info.config_model().model_validate(unflatten(claim.params))
        meta = provenance(config, sweep.spec_hash, _device(info, config.device))
        run = start_wandb(
            "online",
            run_id=claim.run_id,
            project=project,
            entity=entity,
            group=sweep.study,
            job_type=sweep.stage_name,
            directory=directory,
            config=_sweeper_config(meta, claim, sweep),
            sweep_id=sweep_id,
        )
        threading.Thread(target=_mark_preempting, args=(run, stop_flag), daemon=True).start()
        metric = sweep.metric[0]
        logger = WandbLogger(run, stop_flag, run_dir, metric)
        summary = dict(info.train_fn()(config, logger))
        state, error = _outcome(summary, stop_flag, metric)
    except KeyboardInterrupt:
        state, error = "crashed", "interrupted"
    except NonFiniteMetricError as exc:
        error = str(exc)
    except Exception as exc:
        error = _error_text(exc)
    finally:
        if run is not None:
            run.summary.update(summary_to_set(summary))
            if state in ("failed", "crashed"):
                run.summary["error"] = (error or state).splitlines()[0]
            run.finish(exit_code=0 if state in ("finished", "stopped") else 1)
    if error:
        print(error, file=sys.stderr)  # the child's output.log, which the agent quotes
    return state


def _mark_preempting(run: Any, flag: StopFlag) -> None:
    """Tell W&B at once, not at the next epoch boundary: a trial killed when the agent's grace
    period ends is still requeued."""
    flag.preempting.wait()
    with contextlib.suppress(Exception):  # the run ended meanwhile: nothing left to requeue
        run.mark_preempting()

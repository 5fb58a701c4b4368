"""One trial, start to end: resolve its config, train, record the outcome.

Runs inside the agent's forked child (or in-process for `sweeper train`). Whatever happens
(an exception, NaN, a stop), the store ends with one state and a reason.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

from sweeper.agent.provenance import provenance
from sweeper.agent.tracking import StopFlag, TrialLogger, TrialLost, WandbMode, start_wandb
from sweeper.backends.local import Claim, LocalBackend
from sweeper.spec.paths import unflatten
from sweeper.trainers.common.device import describe, select_device
from sweeper.trainers.registry import get_trainer

TRACEBACK_TAIL = 20


def _error_text(exc: BaseException) -> str:
    """One line of reason, then the traceback tail for the curious."""
    head = f"{type(exc).__name__}: {exc}".splitlines()[0]
    tail = "".join(traceback.format_exception(exc)).splitlines()[-TRACEBACK_TAIL:]
    return "\n".join([head, *tail])


def non_finite(summary: dict[str, Any]) -> str | None:
    for name, value in summary.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} is {value}"
    return None


def execute(
    backend: LocalBackend,
    claim: Claim,
    trainer: str,
    *,
    project: str = "sweeper",
    entity: str | None = None,
    stage_name: str | None = None,
    spec_hash: str | None = None,
    wandb_mode: WandbMode = "offline",
    stop_flag: StopFlag | None = None,
    echo: Any | None = None,
) -> str:
    """Run the claimed trial and record how it ended; returns that state."""
    run_dir = backend.run_dir(claim.run_id)
    wandb_run = None
    state, summary, error = "failed", {}, None
    try:
        info = get_trainer(trainer)
        config = info.config_model().model_validate(unflatten(claim.params))
        meta = provenance(config, spec_hash, describe(select_device(config.device)))
        backend.record_meta(claim.run_id, claim.attempt, meta)
        wandb_run = start_wandb(
            wandb_mode,
            project=project,
            entity=entity,
            group=claim.sweep_id,
            name=claim.run_id,
            job_type=stage_name,
            directory=backend.root,
            config={**meta["config"], "_sweeper": {k: v for k, v in meta.items() if k != "config"}},
        )
        logger = TrialLogger(backend, claim, run_dir, wandb_run, stop_flag, echo)
        summary = dict(info.train_fn()(config, logger))
        bad = non_finite(summary)
        if bad:
            error = f"non-finite result: {bad}"
        elif logger.stop_flag.reason:
            state, error = "preempted", f"requeued: {logger.stop_flag.reason}"
        else:
            state = "stopped" if logger.stopped_by_sweep else "finished"
    except TrialLost:
        return "lost"
    except KeyboardInterrupt:
        state, error = "crashed", "interrupted"
    except Exception as exc:
        error = _error_text(exc)
    finally:
        finite = {k: v for k, v in summary.items() if not non_finite({k: v})}
        if wandb_run is not None:
            wandb_run.summary.update(finite)
            wandb_run.finish(exit_code=0 if state in ("finished", "stopped") else 1)
    backend.finish(
        claim.run_id,
        claim.attempt,
        state,
        summary=finite,
        exit_code=0 if state in ("finished", "stopped", "preempted") else 1,
        error=error,
    )
    return state

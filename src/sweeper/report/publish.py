"""Publish a local sweep (or every stage of a study) to a W&B server: the `sweeper sync` command.

Each finished run is uploaded once, under the store's own run id (a requeued trial is one W&B
run), with its config in the trainer's shape, its per-epoch history and its summary, grouped
by study and stage. Then a W&B sweep carrying the compiled config is created over those runs
(W&B's `prior_runs`), so the W&B UI shows them as the sweep they were. Runs already on the
server are skipped, so syncing twice uploads nothing new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.analysis.attach import FOLDER
from sweeper.backends.base import Backend, Claim, SweepRecord
from sweeper.backends.wandb import WandbBackend, with_mark
from sweeper.backends.wandbrun import start_wandb, summary_to_set, wandb_identity
from sweeper.report.values import label
from sweeper.sweep import (
    DONE,
    TERMINAL,
    SweepState,
    best_configuration,
    is_multi_objective,
    key_paths,
    pareto_front,
    run_config,
    sweep_objectives,
    swept_params,
)
from sweeper.sweep.study import sweep_metric

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Published:
    """What publishing did for one local sweep."""

    local: str
    sweep: str
    """entity/project/sweep_id on W&B."""
    uploaded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Runs not yet over (pending, running, preempted): a later sync takes them."""


def publish(
    local: Backend,
    target: WandbBackend,
    sweep_or_study: str,
    say: Callable[[str], None] = lambda line: None,
) -> list[Published]:
    """Publish a local sweep, or each stage of a local study, to W&B (see the module's text).

    Args:
        local: the backend the sweep was run in (the store; read through the protocol only).
        target: the W&B backend to publish to (its entity and project, or the sweep's own).
        sweep_or_study: a local sweep id, or a study id for every stage of it.
        say: told one line per uploaded run.

    Returns:
        One `Published` per local sweep, in stage order.

    Raises:
        NotFoundError: no sweep or study by that id in the store.
    """
    first = local.sweep(sweep_or_study)
    sweeps = local.sweeps(first.study) if first.study == sweep_or_study else [first]
    return [_publish_one(local, target, sweep, say) for sweep in sweeps]


def _publish_one(
    local: Backend, target: WandbBackend, sweep: SweepRecord, say: Callable[[str], None]
) -> Published:
    entity, project = target.entity_and_project(sweep.entity, sweep.project)
    table = local.runs(sweep.id)
    over = table[table["state"].isin(TERMINAL)]
    ids = list(over["run_id"])
    result = Published(local=sweep.id, sweep="")
    result.skipped = [r for r in table["run_id"] if r not in set(ids)]
    result.already = sorted(target.existing_runs(entity, project, ids))
    for run_id in ids:
        if run_id in result.already:
            continue
        _upload(local, sweep, run_id, entity, project, target)
        result.uploaded.append(run_id)
        say(f"uploaded run {run_id}")
    mark: dict[str, Any] = {"synced_from": sweep.id, "study": sweep.study, "stage": sweep.stage}
    mark |= {"stage_name": sweep.stage_name, "carried": sweep.carried}
    mark |= {"spec": sweep.spec_hash[:12], "agents": sweep.spec.get("agents", {})}
    config = {**sweep.config, "project": project}
    outcome = sweep_outcome(table, sweep.config)
    if outcome is not None:
        mark |= outcome[0]
        config["description"] = "\n".join(filter(None, [config.get("description"), outcome[1]]))
    found = target.find_sweep(entity, project, lambda m: m.get("synced_from") == sweep.id)
    config = with_mark(config, mark)
    result.sweep = target.attach_runs(entity, project, config, ids, existing=found)
    target.set_sweep_state(result.sweep, SweepState.FINISHED)
    return result


def sweep_outcome(
    table: pd.DataFrame, sweep_config: dict[str, Any]
) -> tuple[dict[str, Any], str] | None:
    """What a synced sweep's mark and description say it found: W&B's own "best run" is one
    run, so the sweep says which configuration won over its seeds (`best`), or, with several
    `metrics:`, which runs are its Pareto front (`pareto_front`, their ids best first).

    Returns:
        (mark entries, one line for the description); None when no run counts.
    """
    if is_multi_objective(sweep_config):
        objectives = sweep_objectives(sweep_config)
        front = pareto_front(table, objectives)
        if front.empty:
            return None
        ids = [str(r) for r in front["run_id"]]
        over = " and ".join(f"{m} ({g})" for m, g in objectives)
        return {"pareto_front": ids}, f"Pareto front over {over}: runs {', '.join(ids)}"
    metric, goal = sweep_metric(sweep_config)
    best = best_configuration(
        table, swept_params(sweep_config, columns=table.columns), metric, goal
    )
    if best is None:
        return None
    return {"best": dataclasses.asdict(best)}, best.describe(metric, label)


def _log_landscape(run: Any, folder: Path) -> None:
    """A run's loss-landscape pictures (`sweeper landscape`) as media, after its last epoch."""
    pictures = sorted(folder.glob("*.png"))
    if pictures:
        import wandb

        run.log({f"{FOLDER}/{p.stem}": wandb.Image(str(p)) for p in pictures})


def _upload(
    local: Backend,
    sweep: SweepRecord,
    run_id: str,
    entity: str,
    project: str,
    target: WandbBackend,
) -> None:
    row = local.run(run_id)
    claim = Claim(run_id, sweep.id, row["attempt"], {})
    meta = row["meta"]
    trainer_config = meta.get("config") or run_config(
        {k: v["value"] for k, v in row["params"].items()}, key_paths(sweep.config)
    )
    extra = {k: v for k, v in meta.items() if k != "config"}
    run = start_wandb(
        "online",
        run_id=run_id,
        project=project,
        entity=entity,
        group=sweep.study or sweep.id,
        job_type=sweep.stage_name,
        directory=target.root,
        config={**trainer_config, "_sweeper": {**wandb_identity(claim, sweep), **extra}},
    )
    assert run is not None  # start_wandb gives None only when W&B is disabled
    # NaN and inf go up as they were logged: W&B keeps them (its client writes the JSON
    # constants NaN, Infinity, -Infinity: wandb/sdk/lib/json_util.py, inf_nan_mode="constants")
    for step, values in local.logged_rows(run_id):
        run.log(values, step=step)
    _log_landscape(run, local.run_dir(run_id) / FOLDER)
    run.summary.update(summary_to_set(row["summary"]))
    if row["error"]:
        run.summary["error"] = row["error"].splitlines()[0]
    run.summary["state"] = row["state"]
    run.finish(exit_code=0 if row["state"] in DONE else 1)

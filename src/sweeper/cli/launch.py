"""`launch` (a sweep run to completion by local agents) and `agent` (one more agent)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from sweeper.cli.common import (
    BackendOpt,
    Entity,
    EstimateOpt,
    HeartbeatTimeout,
    OutageLimit,
    Project,
    Sets,
    Smoke,
    SpecArg,
    Store,
    TrialTimeout,
    Wandb,
    at_least,
    check_seed,
    choose_backend_kind,
    choose_wandb_mode,
    console,
    errors,
    load_spec,
    print_estimate,
    say,
    user_errors,
)


@user_errors
def launch(
    spec: SpecArg,
    agents: Annotated[
        int | None, typer.Option(help="Agent processes [default: one per GPU, else 1].")
    ] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPU ids to use, e.g. 0,1 [default: all visible].")
    ] = None,
    store: Store = None,
    wandb: Wandb = None,
    sets: Sets = None,
    smoke: Smoke = False,
    device: Annotated[
        str | None,
        typer.Option(help="Trainer device: auto, cpu, cuda, cuda:N [default: the spec's]."),
    ] = None,
    heartbeat_timeout: HeartbeatTimeout = 60.0,
    outage_limit: OutageLimit = 300.0,
    backend_kind: BackendOpt = None,
    entity: Entity = None,
    project: Project = None,
    trial_timeout: TrialTimeout = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new study, even if this spec has one.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            help="The sweep's seed: random and bayes suggest the same configurations again "
            "(`status` shows each sweep's) [default: the spec's, else one drawn]."
        ),
    ] = None,
    estimate: EstimateOpt = False,
) -> None:
    """Create the sweep, run it to completion with local agents, print the best and a summary.

    With --backend wandb the sweep (one per stage) is created on the W&B server; the agents
    started here, and any `sweeper agent` elsewhere, pull trials from it. A `scheduler:` sweep's
    scheduler runs here beside them, as `wandb sweep-scheduler` (one per sweep). Running the same
    launch again resumes the latest study made from this exact spec (--fresh: a new one; a
    --seed it was not made with: a new one under that seed, a replay).
    """
    from sweeper.agent import prestart
    from sweeper.cli import standby

    if not estimate:  # the estimate's probe would share the CPU with its imports
        prestart.start(standby.__name__)  # the first agent imports while this makes the sweep
    from sweeper.agent.launch import AgentSettings, Interrupted
    from sweeper.agent.launch import launch as run_launch
    from sweeper.agent.progress import LaunchBar
    from sweeper.agent.slots import chosen_gpus, make_slots
    from sweeper.backends import open_backend
    from sweeper.spec.plain import PlainSweep
    from sweeper.spec.preflight import preflight

    loaded = load_spec(spec, sets, smoke, device)
    at_least("--agents", agents, 1)
    at_least("--heartbeat-timeout", heartbeat_timeout, 0, strict=True)
    at_least("--trial-timeout", trial_timeout, 0, strict=True)
    at_least("--outage-limit", outage_limit, 0)
    check_seed(seed)
    gpu_list = chosen_gpus(gpus)
    make_slots(gpu_list, loaded.agents.gpus_per_trial)  # refused before the store is made
    if not isinstance(loaded, PlainSweep):  # a missing data set: refused before any trial
        preflight(loaded)
    if estimate:
        print_estimate(loaded, agents, gpus)
        return
    kind = choose_backend_kind(backend_kind)
    mode = choose_wandb_mode(wandb, kind)
    backend = open_backend(
        kind,
        store,
        entity=entity or loaded.entity,
        project=project or loaded.project,
        wait=outage_limit,  # launch waits on a silent server no longer than its agents do
    )
    bar = LaunchBar(console, backend)
    try:
        with bar:
            results = run_launch(
                loaded,
                backend,
                agents=agents,
                gpus=gpu_list,
                settings=AgentSettings(mode, heartbeat_timeout, trial_timeout, outage_limit),
                fresh=fresh,
                seed=seed,
                on_stage=bar.start_stage,
                on_progress=bar.update,
                on_note=say,
            )
    except Interrupted as stopped:
        errors.print(f"{stopped}: running trials were requeued; the same launch resumes")
        raise typer.Exit(128 + stopped.signum) from None
    finished = [_print_summary(backend, result.sweep.id) for result in results]
    if len(results) > 1:
        _print_stages(results)
    if not all(finished):  # the failures and the first reason are printed above
        raise typer.Exit(1)


def _print_summary(backend: Any, sweep_id: str) -> bool:
    """Print the sweep's table, best run and failures (with several `metrics:`, its Pareto
    front instead of a best); False when no run finished."""
    from sweeper.cli.status import print_front
    from sweeper.report.tables import config_cells, has_repeats, summary_title
    from sweeper.report.values import label, metric_label
    from sweeper.sweep import best_configuration, config_table, is_multi_objective, swept_params

    sweep = backend.sweep(sweep_id)
    metric, goal = sweep.metric
    runs = backend.runs(sweep.id)
    params = swept_params(sweep.config, columns=runs.columns)
    if is_multi_objective(sweep.config):
        print_front(runs, sweep.config, sweep.name)
        return _print_end(sweep, runs)
    table = config_table(runs, params, metric, goal)
    # One line above the table: rich wraps a Table's own title to the table's width.
    console.print(summary_title(sweep.name, metric_label(metric), goal, has_repeats(table)))
    cells = config_cells(table, params, metric_label(metric))
    out = Table()
    for column in cells.columns:
        out.add_column(str(column), justify="right")
    for row in cells.itertuples(index=False):
        out.add_row(*row)
    console.print(out)
    best = best_configuration(runs, params, metric, goal)
    if best:
        console.print(best.describe(metric_label(metric), label))
    return _print_end(sweep, runs)


def _print_end(sweep: Any, runs: Any) -> bool:
    """Print the sweep's failures; False when no run finished."""
    from sweeper.agent.progress import sweep_end

    end = sweep_end(runs)
    if end.first_failure:
        run_id, reason = end.first_failure
        errors.print(
            f"{end.failed} of {end.runs} runs failed; run {run_id}: {reason} "
            f"(`sweeper status {sweep.id}` lists them)",
            soft_wrap=True,
        )
    if end.any_done:
        return True
    if not end.failed:
        errors.print(f"sweep {sweep.id} ended with no finished run", soft_wrap=True)
    return False


def _print_stages(results: list[Any]) -> None:
    from sweeper.report.values import label
    from sweeper.sweep import swept_params

    out = Table(title="staged study: best configuration carried from each stage")
    for column in ("stage", "searched", "best", "chosen by"):
        out.add_column(column)
    for result in results:
        searched = ", ".join(swept_params(result.sweep.config))
        best = ", ".join(f"{k}={label(v)}" for k, v in (result.best_config or {}).items())
        out.add_row(result.sweep.stage_name or result.sweep.name, searched, best, result.rule)
    console.print(out)


@user_errors
def agent(
    sweep_id: Annotated[
        str,
        typer.Argument(
            metavar="SWEEP",
            help="A local sweep or study id, or entity/project/sweep_id on W&B.",
        ),
    ],
    count: Annotated[
        int | None, typer.Option(help="Run at most this many trials [default: no limit].")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPU ids, one trial per slot; '' for CPU [default: all visible]."),
    ] = None,
    store: Store = None,
    wandb: Wandb = None,
    heartbeat_timeout: HeartbeatTimeout = 60.0,
    outage_limit: OutageLimit = 300.0,
    grace: Annotated[
        float, typer.Option(help="Seconds a stopped trial gets before it is killed.")
    ] = 10.0,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads per trial [default: agents.cpus_per_trial, else cores/slots]."
        ),
    ] = None,
    backend_kind: BackendOpt = None,
    trial_timeout: TrialTimeout = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="A scheduler: sweep: runs its scheduler keeps in flight while this agent"
            " holds it (wandb sweep-scheduler's --batch-size)."
        ),
    ] = 10,
) -> None:
    """Pull trials of a sweep and run each in its own child process until the sweep is done.

    SWEEP is a local sweep or study id, or entity/project/sweep_id with --backend wandb.
    """
    from sweeper.agent.loop import Agent, AgentOptions
    from sweeper.agent.slots import chosen_gpus

    at_least("--count", count, 1)
    at_least("--threads", threads, 1)
    at_least("--grace", grace, 0)
    at_least("--heartbeat-timeout", heartbeat_timeout, 0, strict=True)
    at_least("--trial-timeout", trial_timeout, 0, strict=True)
    at_least("--outage-limit", outage_limit, 0)
    at_least("--batch-size", batch_size, 1)
    kind = choose_backend_kind(backend_kind, sweep_id)
    options = AgentOptions(
        sweep_id=sweep_id,
        store=store,
        backend=kind,
        gpus=chosen_gpus(gpus),
        count=count,
        wandb_mode=choose_wandb_mode(wandb, kind),
        heartbeat_timeout=heartbeat_timeout,
        heartbeat_interval=max(0.2, heartbeat_timeout / 6),
        grace=grace,
        threads=threads,
        trial_timeout=trial_timeout,
        outage_limit=outage_limit,
        batch_size=batch_size,
    )
    runner = Agent(options, say=say)
    raise typer.Exit(runner.run())

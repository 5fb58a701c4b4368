"""`status`, `sweeps` (`ls`), `runs`: what a store or W&B holds."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sweeper.cli.common import (
    BackendOpt,
    ReadEntity,
    ReadProject,
    Store,
    Target,
    choose_backend_kind,
    console,
    errors,
    styled,
    user_errors,
)

if TYPE_CHECKING:
    from sweeper.backends.base import SweepRecord


@user_errors
def status(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """States, progress and best configuration so far of a sweep, or of each stage of a study
    (with several `metrics:`, its Pareto front)."""
    from sweeper.backends import open_backend
    from sweeper.backends.targets import resolve_target
    from sweeper.report.values import label
    from sweeper.sweep import (
        best_configuration,
        ended_trials,
        is_multi_objective,
        planned_trials,
        swept_params,
    )

    kind = choose_backend_kind(backend_kind, target)
    backend = open_backend(kind, store, create=False, readonly=True, entity=entity, project=project)
    for sweep in resolve_target(backend, target):
        counts = backend.counts(sweep.id)
        metric, goal = sweep.metric
        total, done = planned_trials(sweep.config), ended_trials(counts)
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs yet"
        console.print(styled("sweep ", (sweep.title, "bold"), f" [{sweep.state}]"))
        console.print(f"progress: {done}/{total if total is not None else '?'} done ({states})")
        console.print(seed_text(sweep, backend.kind))
        runs = backend.runs(sweep.id)
        if is_multi_objective(sweep.config):
            print_front(runs, sweep.config, "so far")
            continue
        best = best_configuration(runs, swept_params(sweep.config), metric, goal)
        if best:
            console.print(f"so far, {best.describe(metric, label)}")


def seed_text(sweep: SweepRecord, kind: str) -> str:
    """The `seed ...` line of `status`: the seed that replays the sweep (`launch --seed`), or
    why there is none, or why it was not applied (a W&B server draws random and bayes
    suggestions itself; only a `scheduler:` engine, run by sweeper, is seeded there)."""
    server = kind == "wandb" and not sweep.config.get("scheduler")
    if sweep.seed is None:
        return (
            "seed none (W&B's server draws its own)" if server else "seed none (made before seeds)"
        )
    if server:
        return f"seed {sweep.seed} (not applied: W&B's server draws its own)"
    return f"seed {sweep.seed}"


def print_front(runs: Any, sweep_config: dict[str, Any], name: str) -> None:
    """A multi-objective sweep's Pareto front (sweeper.sweep.pareto.pareto_front): a title line
    and one row per run on it (its metrics, then its swept values); nothing while no run
    counts."""
    from sweeper.report.tables import front_cells, front_title
    from sweeper.sweep import pareto_front, scored_runs, sweep_objectives, swept_params

    objectives = sweep_objectives(sweep_config)
    front = pareto_front(runs, objectives)
    if front.empty:
        return
    console.print(front_title(name, objectives, len(front), len(scored_runs(runs, objectives))))
    cells = front_cells(front, swept_params(sweep_config, columns=runs.columns), objectives)
    out = Table()
    for column in cells.columns:
        out.add_column(str(column), justify="left" if column == "run" else "right")
    for row in cells.itertuples(index=False):
        out.add_row(*row)
    console.print(out)


@user_errors
def sweeps_(store: Store = None) -> None:
    """List the store's sweeps, newest first, a study's stages together: id, name, spec, stage,
    state, runs done of planned, and the best configuration's mean metric (with several
    `metrics:`, how many runs the Pareto front holds)."""
    from sweeper.backends import open_backend
    from sweeper.sweep import (
        best_configuration,
        ended_trials,
        is_multi_objective,
        pareto_front,
        planned_trials,
        sweep_objectives,
        swept_params,
    )

    backend = open_backend("local", store, create=False, readonly=True)
    launches: dict[str, list[Any]] = {}
    for sweep in backend.sweeps():  # in creation order; a study's stages under its id
        launches.setdefault(sweep.study or sweep.id, []).append(sweep)
    out = Table(title=f"sweeps in {backend.where}, newest first", title_justify="left")
    for column in ("id", "name", "spec", "stage", "state", "done", "best"):
        out.add_column(column, justify="right" if column == "done" else "left")
    for launch in reversed(launches.values()):
        for sweep in sorted(launch, key=lambda s: s.stage):
            counts = backend.counts(sweep.id)
            total, done = planned_trials(sweep.config), ended_trials(counts)
            metric, goal = sweep.metric
            runs = backend.runs(sweep.id)
            if is_multi_objective(sweep.config):
                front = pareto_front(runs, sweep_objectives(sweep.config))
                shown = f"front: {len(front)} runs" if len(front) else "-"
            else:
                best = best_configuration(runs, swept_params(sweep.config), metric, goal)
                shown = f"{metric} {best.mean:.4g}" if best else "-"
            out.add_row(
                sweep.id,
                sweep.name,
                _shown_path(sweep.spec_path),
                f"{sweep.stage + 1} {sweep.stage_name}" if sweep.study else "-",
                sweep.state,
                f"{done}/{total if total is not None else '?'}",
                shown,
            )
    if not launches:
        console.print(f"no sweeps in {backend.where} yet (`sweeper launch SPEC` makes one)")
        return
    console.print(out)


def _shown_path(path: str | None) -> str:
    """A spec path as the user would type it here: relative when under this folder."""
    if not path:
        return "-"
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(Path.cwd()))
    return path


@user_errors
def runs(
    target: Target,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Write the complete run table (every column) to this CSV file "
            "[default: none: print the table].",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the complete run table as JSON records for scripts: times in ISO "
            "8601 (UTC), NaN and missing values null, infinities the strings inf and -inf.",
        ),
    ] = False,
) -> None:
    """The runs of a sweep or study: id, state, swept values, seed, metric and runtime."""
    from sweeper.backends import open_backend
    from sweeper.backends.targets import resolve_target
    from sweeper.errors import SweeperError
    from sweeper.report.runlist import readable_runs, runs_json

    kind = choose_backend_kind(backend_kind, target)
    backend = open_backend(kind, store, create=False, readonly=True, entity=entity, project=project)
    sweeps = resolve_target(backend, target)
    table = backend.runs([s.id for s in sweeps])
    if csv:
        from sweeper.output import write_csv

        try:
            write_csv(table, csv)
        except OSError as exc:
            raise SweeperError(f"--csv {csv}: cannot write: {exc.strerror or exc}") from None
        (errors if as_json else console).print(f"wrote {csv} ({len(table)} runs)")
    if as_json:
        sys.stdout.write(runs_json(table) + "\n")
    elif not csv:
        shown, numeric = readable_runs(table, sweeps)
        out = Table(title=", ".join(s.title for s in sweeps), title_justify="left")
        for column in shown.columns:
            out.add_column(column, justify="right" if column in numeric else "left")
        for row in shown.itertuples(index=False):
            out.add_row(*row)
        console.print(out)

"""`report`: tables and plots of a sweep or study in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sweeper.cli.common import (
    BackendOpt,
    ReadEntity,
    ReadProject,
    Store,
    Target,
    console,
    user_errors,
)


@user_errors
def report(
    sweep_or_spec: Target,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder [default: reports/ID].")
    ] = None,
    fmt: Annotated[
        Literal["html", "md", "latex"],
        typer.Option(
            "--format",
            help="html (with Markdown, PNG, CSV), md (no HTML) or latex (report.tex: every "
            "table, beside the Markdown, PNG and CSV).",
        ),
    ] = "html",
    axes: Annotated[
        str | None, typer.Option(help="Parallel-coordinates axes: a,b [default: by importance].")
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(help="Baseline for the deltas: PATH=VALUE [default: the spec's base]."),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric [default: the sweep's].")] = None,
    store: Store = None,
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
    wandb_report: Annotated[
        bool, typer.Option("--wandb-report", help="Also save a W&B Report (W&B sweeps).")
    ] = False,
) -> None:
    """Tables, parallel coordinates, importance and curves of a sweep or study, in one folder."""
    from sweeper.report.build import FORMATS, build_report
    from sweeper.report.load import load_report_data
    from sweeper.report.wandb_report import publish
    from sweeper.report.wandb_report import wandb_report as make_wandb_report
    from sweeper.spec.load import parse_overrides

    data = load_report_data(sweep_or_spec, store, metric, backend_kind, entity, project)
    chosen = [a.strip() for a in axes.split(",") if a.strip()] if axes else None
    if wandb_report:
        make_wandb_report(data, chosen or data.params)  # refuse before writing anything
    out = build_report(
        data,
        output or Path("reports") / data.key,
        fmt,
        chosen,
        parse_overrides(baseline or [], "--baseline"),
    )
    console.print(f"wrote {out / FORMATS[fmt]}")
    if wandb_report:
        console.print(f"W&B report: {publish(data, chosen or data.params)}", soft_wrap=True)

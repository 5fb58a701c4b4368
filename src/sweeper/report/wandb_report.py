"""`--wandb-report`: the same view as a W&B Report (parallel coordinates, importance, run
comparer), through the optional `wandb-workspaces` package.

Saving needs a W&B server and a login, so only the report's construction is tested here.
"""

from __future__ import annotations

from typing import Any

from sweeper.errors import SweeperError
from sweeper.report.data import ReportData


def wandb_report(data: ReportData, axes: list[str]) -> Any:
    """The unsaved Report: one panel grid over the sweep's runs.

    Parallel coordinates over `axes` and the metric, parameter importance for the metric,
    and a run comparer (`wandb_workspaces.reports.v2`).

    Raises:
        SweeperError: the sweep is not on W&B (a Report lives on a W&B server), or the
            optional wandb-workspaces package is not installed.
    """
    if data.backend != "wandb" or not data.project or not data.entity:
        raise SweeperError("--wandb-report needs a W&B sweep given as entity/project/sweep_id")
    try:
        import wandb_workspaces.reports.v2 as wr
        from wandb_workspaces.reports.v2.interface import PanelTypes
    except ImportError:
        raise SweeperError(
            "--wandb-report needs the optional wandb-workspaces package: "
            "uv sync --extra wandb-report"
        ) from None
    runsets = [
        wr.Runset(
            entity=data.entity,
            project=data.project,
            name=part.name,
            # W&B's run filter names a sweep by its id alone, not entity/project/sweep_id
            filters=f"Sweep == '{part.id.rsplit('/', 1)[-1]}'",
        )
        for part in data.parts
    ]
    columns = [
        wr.ParallelCoordinatesPlotColumn(metric=wr.Config(name), log=data.kind(name) == "log")
        for name in axes
    ]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(data.metric)))
    panels: list[PanelTypes] = [
        wr.ParallelCoordinatesPlot(columns=columns, layout=wr.Layout(x=0, y=0, w=24, h=9)),
        wr.ParameterImportancePlot(with_respect_to=data.metric, layout=wr.Layout(0, 9, 12, 9)),
        wr.RunComparer(diff_only="split", layout=wr.Layout(12, 9, 12, 9)),
    ]
    return wr.Report(
        project=data.project,
        entity=data.entity,
        title=f"{data.title}: sweep report",
        description=f"{data.metric} ({data.goal}) over {len(data.runs)} runs, made by sweeper",
        blocks=[
            wr.P(f"Sweep {', '.join(p.id for p in data.parts)}; metric {data.metric}."),
            wr.PanelGrid(runsets=runsets, panels=panels),
        ],
    )


def publish(data: ReportData, axes: list[str]) -> str:
    """Save the report to the W&B server; returns its URL.

    Raises:
        SweeperError: as `wandb_report`, or the save failed (network, login, permission),
            said in the server's first line.
    """
    report = wandb_report(data, axes)
    try:
        report.save()
    except Exception as exc:  # network, login and permission errors all end here
        raise SweeperError(f"could not save the W&B report: {str(exc).splitlines()[0]}") from None
    return str(report.url)

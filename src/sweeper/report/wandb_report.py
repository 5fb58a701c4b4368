"""`--wandb-report`: the same view as a W&B Report (parallel coordinates, importance, run
comparer), through the optional `wandb-workspaces` package, saved on the sweep's W&B server.
"""

from __future__ import annotations

import re
import urllib.parse
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
    """Save the report to the sweep's W&B server (`Report.save()`: W&B's `upsertView`);
    returns its URL.

    Raises:
        SweeperError: as `wandb_report`, or the save failed (network, login, permission),
            said in the server's first line.
    """
    import wandb

    report = wandb_report(data, axes)
    try:
        report.save()
        # The app's address for the API it was saved through, as wandb.Api forms its own
        # settings (wandb/apis/public/api.py): WANDB_APP_URL, else derived from the API host.
        settings = wandb.setup().settings.model_copy()
        settings.base_url = str(wandb.Api().settings["base_url"])
        app = str(settings.app_url)
    except Exception as exc:  # network, login and permission errors all end here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweeperError(f"could not save the W&B report: {first}") from None
    return report_url(app, report.entity, report.project, report.title, report.id)


def report_url(app_url: str, entity: str, project: str, title: str, view_id: str) -> str:
    """A saved report's address as W&B's app forms it: `APP/ENTITY/PROJECT/reports/SLUG--ID`.

    The slug is the title with each non-word character a dash, runs of dashes one and none
    at either end (URL-quoted); the id is the view's GraphQL id without its base64 padding.
    The rule is wandb's `wandb/apis/public/reports.py` (`BetaReport.url`, which follows the
    app's `util/report/urls.ts`); wandb-workspaces' own `Report.url` only replaces spaces,
    so a title holding "/" (a study's stage: "probe / lr") would break its path.
    """
    slug = urllib.parse.quote(re.sub(r"-+", "-", re.sub(r"\W", "-", title)).strip("-"))
    return "/".join(
        [app_url.rstrip("/"), entity, project, "reports", f"{slug}--{view_id.replace('=', '')}"]
    )

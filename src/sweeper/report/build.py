"""`sweeper report`: run table -> tables, parallel coordinates and curves, in one folder.

The folder is sweeper's own or new: the report is staged inside it and moved into place at the
end (:class:`sweeper.output.OutputFolder`), so a failed build never leaves half a report and no
file sweeper did not write is ever replaced or removed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.errors import SweeperError
from sweeper.output import OutputFolder
from sweeper.report import curves, parcoords, pareto
from sweeper.report.data import ReportData, SweepPart
from sweeper.report.importance import importance, param_order
from sweeper.report.render import (
    Block,
    Heading,
    Plot,
    Table,
    Text,
    html_page,
    latex,
    markdown,
    write_files,
)
from sweeper.report.tables import (
    config_cells,
    front_cells,
    has_repeats,
    param_table,
    pivot_table,
    stage_table,
)
from sweeper.report.values import distinct_labels, group_values, is_number, label
from sweeper.sweep import (
    DONE,
    BestConfiguration,
    SelectRule,
    best_configuration,
    config_table,
    pareto_front,
    scored_runs,
    select_from_front,
)

FORMATS = {"html": "report.html", "md": "report.md", "latex": "report.tex"}
"""--format -> the page it writes; every format also writes report.md, the PNGs and CSVs."""
MAX_AXES = 12
"""Parallel-coordinates axes by default (the most important parameters), plus the metric."""
MAX_CURVES = 4
"""Curve plots per sweep: one per parameter, the most important first."""
CONFIG_ROWS = 50
RUN_ROWS = 100
"""Finished runs listed in the page (best first); every failed or running run is listed too."""


def build_report(
    data: ReportData,
    out: Path,
    fmt: str = "html",
    axes: list[str] | None = None,
    baseline: dict[str, Any] | None = None,
) -> Path:
    """Check the input and the folder, build every block, then write the folder's files.

    Returns:
        The folder; its page is named by FORMATS.

    Raises:
        SweeperError: bad input, or an output folder sweeper report did not write.
    """
    if fmt not in FORMATS:
        raise SweeperError(f"--format: expected {', '.join(FORMATS)}, got {fmt!r}")
    data.check()
    folder = OutputFolder(out, "sweeper report")
    baselines = _baselines(data, baseline or {})
    done = data.done()
    kinds = {p: data.kind(p) for p in data.params}
    ranks = importance(done, data.params, kinds, data.metric)
    order = param_order(ranks, data.params)
    axis_names = _axes(data, axes) if axes else order[:MAX_AXES]

    blocks: list[Block] = [Text(_summary_line(data, done))]
    if data.is_study:
        blocks += [Heading("Stages"), _stage_block(data)]
    blocks += [Heading("Parallel coordinates"), _parcoords(data, done, axis_names, kinds)]
    if data.is_multi_objective:
        blocks += [Heading("Pareto front"), *_front_blocks(data)]
    blocks += [Heading("Parameter importance"), _importance_block(data, ranks)]
    history = _history(data, done)
    for part in data.parts:
        blocks += _part_blocks(data, part, done, kinds, order, baselines, history)
    blocks += [Heading("Runs"), _runs_block(data)]

    if data.is_multi_objective:
        over = ", ".join(f"{m} ({g})" for m, g in data.objectives)
        subtitle = f"{data.source} · metrics {over}; plots coloured by {data.metric}"
    else:
        subtitle = f"{data.source} · metric {data.metric} ({data.goal})"
    with folder as staging:
        write_files(blocks, staging)
        (staging / "report.md").write_text(
            markdown(data.title, [Text(subtitle), *blocks]), encoding="utf-8"
        )
        if fmt == "html":
            (staging / "report.html").write_text(
                html_page(data.title, subtitle, blocks), encoding="utf-8"
            )
        if fmt == "latex":
            (staging / "report.tex").write_text(latex(data.title, blocks), encoding="utf-8")
    return out.resolve()


# input checks -----------------------------------------------------------------------------


def _baselines(data: ReportData, given: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Per swept parameter, the value the deltas are taken from and where it comes from:
    --baseline, else the spec's base."""
    unknown = [p for p in given if p not in data.params]
    if unknown:
        raise SweeperError(
            f"--baseline {unknown[0]}: not a swept parameter (swept: {', '.join(data.params)})"
        )
    return {
        p: (given[p], "--baseline") if p in given else (data.base.get(p), "the spec's base")
        for p in data.params
    }


def _axes(data: ReportData, names: list[str]) -> list[str]:
    known = [c.removeprefix("config.") for c in data.runs.columns if c.startswith("config.")]
    for name in names:
        if name not in known:
            raise SweeperError(f"--axes {name}: not a config parameter (known: {', '.join(known)})")
    return names


# blocks ------------------------------------------------------------------------------------


def _summary_line(data: ReportData, done: pd.DataFrame) -> str:
    """The counts, and the best configuration (sweeper.sweep.best_configuration) of each
    sweep, or its Pareto front with several metrics: a study's last stage holds its result."""
    counts = data.runs["state"].value_counts().to_dict()
    states = ", ".join(f"{n} {s}" for s, n in counts.items())
    if data.is_multi_objective:
        lines = [
            (f"In stage {part.stage_name or part.name}, the " if data.is_study else "The ")
            + _front_line(data, part)
            for part in data.parts
        ]
        return (
            f"{len(data.runs)} runs ({states}); failed and running runs are listed but never on"
            f" a front. {'; '.join(lines)}."
        )
    lines = [
        (f"In stage {part.stage_name or part.name}, the " if data.is_study else "The ")
        + best.describe(data.metric, label)
        for part, best in _bests(data, done)
    ]
    return (
        f"{len(data.runs)} runs ({states}); failed and running runs are listed but never best. "
        + "; ".join(lines)
        + "."
    )


def _bests(data: ReportData, done: pd.DataFrame) -> list[tuple[SweepPart, BestConfiguration]]:
    """Each sweep's best configuration, from its finished runs."""
    found = []
    for part in data.parts:
        best = best_configuration(_runs_of(done, part), part.params, data.metric, data.goal)
        if best is not None:
            found.append((part, best))
    return found


FRONT_NAMED = 5
"""Runs of a front named in the summary line; the table below the scatter lists them all."""


def _front_line(data: ReportData, part: SweepPart) -> str:
    """One sweep's front in words: what it is over, how many runs, the first few by name."""
    runs = _runs_of(data.runs, part)
    front = pareto_front(runs, data.objectives)
    over = " and ".join(f"{m} ({g})" for m, g in data.objectives)
    counted = len(scored_runs(runs, data.objectives))
    if front.empty:
        return f"Pareto front over {over} is empty: no finished run logged every metric"
    named = [
        f"{row['run_id']} ("
        + ", ".join(f"{m} {_num(row[f'summary.{m}'])}" for m, _ in data.objectives)
        + ")"
        for _, row in front.head(FRONT_NAMED).iterrows()
    ]
    more = f" and {len(front) - FRONT_NAMED} more" if len(front) > FRONT_NAMED else ""
    return (
        f"Pareto front over {over} holds {len(front)} of {counted} finished runs: "
        + ", ".join(named)
        + more
    )


def _front_blocks(data: ReportData) -> list[Block]:
    """The Pareto scatter (a matrix for three or more metrics), its front highlighted, and the
    front's runs listed (metrics, then configuration), for each sweep of the report."""
    blocks: list[Block] = []
    for part in data.parts:
        runs = _runs_of(data.runs, part)
        scored = scored_runs(runs, data.objectives)
        if scored.empty:
            continue
        front = pareto_front(scored, data.objectives)
        on_front = scored["run_id"].isin(front["run_id"]).to_numpy()
        slug = f"stage{part.stage}_" if data.is_study else ""
        name = (
            f"{data.title}, stage {part.stage_name or part.name}" if data.is_study else data.title
        )
        title = f"{name}: {len(front)} of {len(scored)} finished runs on the Pareto front"
        kind = "scatter" if len(data.objectives) == 2 else "scatter matrix"
        blocks.append(
            Plot(
                f"Pareto {kind}",
                f"{slug}pareto.png",
                partial(pareto.save_png, scored, on_front, data.objectives, title),
                pareto.figure(scored, on_front, data.objectives, title),
                "Red: the Pareto front (no other finished run is as good in every metric and"
                " better in one); grey: the other finished runs."
                + (
                    " Values of +-inf are on the front's list but not drawn."
                    if _infinite(scored, data)
                    else ""
                ),
            )
        )
        shown = front_cells(front, part.params, data.objectives)
        table = front[["run_id", *(f"summary.{m}" for m, _ in data.objectives)]].copy()
        for p in part.params:
            table[p] = front.get(f"config.{p}")
        blocks.append(
            Table(
                f"Pareto front: {len(front)} runs, best {data.objectives[0][0]} first",
                shown,
                table,
                f"{slug}pareto_front.csv",
            )
        )
    return blocks


def _infinite(scored: pd.DataFrame, data: ReportData) -> bool:
    values = scored[[f"summary.{m}" for m, _ in data.objectives]].apply(
        pd.to_numeric, errors="coerce"
    )
    return bool(np.isinf(values.to_numpy(dtype=float)).any())


def _front_stage_block(data: ReportData) -> Table:
    """A multi-objective study's stages: the configuration each carried on, chosen from its
    front by the spec's `select:` rule (sweeper.sweep.study.carry_over), and that run's
    metrics."""
    rule = SelectRule.from_spec(data.select)
    rows = []
    for part in data.parts:
        runs = _runs_of(data.runs, part)
        front = pareto_front(runs, data.objectives)
        row: dict[str, Any] = {
            "stage": part.stage_name or part.name,
            "searched": ", ".join(part.params),
            "front": len(front),
        }
        choice = select_from_front(front, data.objectives, rule, part.params) if rule else None
        if choice is not None:
            row["chosen"] = ", ".join(f"{p}={label(v)}" for p, v in choice.config.items())
            row["run"] = choice.run_id
            row.update(choice.values)
        row["chosen by"] = f"Pareto front, {rule.describe()}" if rule else "no select: rule"
        rows.append(row)
    table = pd.DataFrame(rows)
    shown = pd.DataFrame(
        {
            c: table.get(c, pd.Series([""] * len(table)))
            for c in ("stage", "searched", "front", "chosen", "chosen by", "run")
        }
    ).fillna("")
    shown["front"] = table["front"].astype(str)
    for metric, _ in data.objectives:
        shown[metric] = table.get(metric, pd.Series([float("nan")] * len(table))).map(_num)
    return Table("The configuration each stage carried on", shown, table, "stages.csv")


def _stage_block(data: ReportData) -> Table:
    if data.is_multi_objective:
        return _front_stage_block(data)
    metrics = data.metrics()
    parts = [
        (part.stage_name or part.name, part.params, _runs_of(data.runs, part), part.carried)
        for part in data.parts
    ]
    table = stage_table(parts, metrics, data.metric, data.goal)
    shown = pd.DataFrame(
        {c: table.get(c, "") for c in ("stage", "searched", "best", "configuration")}
    )
    shown["n"] = table.get("n", pd.Series(dtype=float)).map(_int)
    for metric in metrics:
        shown[metric] = [
            _pm(m, s) for m, s in zip(table[metric], table[f"{metric} std"], strict=True)
        ]
    delta = f"{data.metric} Δ vs previous stage"
    shown[delta] = table[f"{data.metric} Δ"].map(_signed)
    best = _best_cells(table, shown, {m: data.metric_goal(m) for m in metrics})
    return Table("Best configuration after each stage", shown.fillna(""), table, "stages.csv", best)


def _parcoords(data: ReportData, done: pd.DataFrame, names: list[str], kinds: dict) -> Plot:
    axes = [
        parcoords.make_axis(
            name,
            done[f"config.{name}"],
            kinds.get(name) or _kind_of(done[f"config.{name}"]),
            data.declared(name),
        )
        for name in names
    ]
    color = done[f"summary.{data.metric}"].to_numpy(dtype=float)
    axes.append(parcoords.Axis(data.metric, "numeric", color, None, None))
    title = f"{data.title}: {len(done)} finished runs, coloured by {data.metric}"
    return Plot(
        "parallel coordinates",
        "parallel_coordinates.png",
        partial(parcoords.save_png, axes, color, title),
        parcoords.figure(axes, color, title),
    )


def _kind_of(values: pd.Series) -> Any:
    from sweeper.report.values import param_kind

    return param_kind({}, values)


def _importance_block(data: ReportData, ranks: pd.DataFrame) -> Table:
    shown = pd.DataFrame(
        {
            "parameter": ranks["feature"],
            "importance": ranks["importance"].map(_num),
            f"correlation with {data.metric}": ranks["correlation"].map(_signed),
        }
    )
    note = (
        "Importance: a random forest (scikit-learn, 100 trees) predicting the metric from the "
        "parameters of finished runs; correlation: Pearson's r. Categorical parameters are "
        "one-hot (one row per value), log-scaled ones enter as log10."
    )
    return Table("Parameter importance", shown, ranks, "importance.csv", note=note)


def _part_blocks(
    data: ReportData,
    part: SweepPart,
    done: pd.DataFrame,
    kinds: dict,
    order: list[str],
    baselines: dict[str, tuple[Any, str]],
    history: pd.DataFrame,
) -> list[Block]:
    runs = _runs_of(done, part)
    params = [p for p in order if p in part.params]
    slug = f"stage{part.stage}_" if data.is_study else ""
    blocks: list[Block] = []
    if data.is_study:
        carried = ", ".join(f"{k}={label(v)}" for k, v in part.carried.items()) or "the base"
        blocks += [
            Heading(f"Stage {part.stage}: {part.stage_name or part.name}"),
            Text(f"Sweep {part.id}; starts from {carried}."),
        ]
    groups = {p: group_values(data.runs[f"config.{p}"], kinds[p], data.declared(p)) for p in params}
    blocks.append(Heading("Per parameter", 3))
    for param in params:
        blocks.append(_param_block(data, runs, param, groups[param], baselines[param], slug))
    if len(params) >= 2:
        rows, cols = params[0], params[1]
        blocks.append(Heading(f"Grid: {rows} x {cols}", 3))
        for metric in data.metrics():
            blocks.append(_pivot_block(data, runs, rows, cols, groups, metric, slug))
    if part.has_repeats or len(params) > 1:
        blocks += [Heading("Configurations", 3), _config_block(data, runs, part, slug)]
    blocks.append(Heading("Training curves", 3))
    for param in params[:MAX_CURVES]:
        blocks.append(_curves_block(data, runs, param, groups[param][0], history, slug))
    return blocks


def _param_block(
    data: ReportData,
    runs: pd.DataFrame,
    param: str,
    grouping: tuple[pd.Series, Callable[[Any], str | None]],
    baseline: tuple[Any, str],
    slug: str,
) -> Table:
    groups, place = grouping
    value, source = baseline
    metrics = data.metrics()
    base_group = place(value) if value is not None else None
    table = param_table(runs, groups, metrics, base_group)
    has_delta = bool(table["baseline"].any())
    shown = pd.DataFrame({param: table["value"] + np.where(table["baseline"], " (baseline)", "")})
    shown["n"] = table["n"].astype(str)
    goals = {}
    for metric in metrics:
        shown[metric] = [
            _pm(m, s) for m, s in zip(table[metric], table[f"{metric} std"], strict=True)
        ]
        goals[metric] = data.metric_goal(metric)
        if has_delta:
            shown[f"{metric} Δ"] = table[f"{metric} Δ"].map(_signed)
            goals[f"{metric} Δ"] = goals[metric]
    stated = f"{param}={base_group if has_delta else label(value)} ({source})"
    if value is None:
        note = f"No baseline value for {param}: give one with --baseline {param}=VALUE."
    elif not has_delta:
        note = f"Baseline {stated} was not run in this sweep, so there is no Δ."
    else:
        note = f"Δ: difference from the baseline {stated}; best per column in bold."
    if _binned(groups):
        note += " Values are grouped into ranges with equal run counts."
    spread = " (mean ± std over runs)" if (table["n"] > 1).any() else ""
    return Table(
        f"{param}: {', '.join(metrics)} per value{spread}"
        + (f", Δ from {stated}" if has_delta else ""),
        shown,
        table,
        f"{slug}param_{_file(param)}.csv",
        _best_cells(table, shown, goals),
        note=note,
    )


def _pivot_block(
    data: ReportData,
    runs: pd.DataFrame,
    rows: str,
    cols: str,
    groups: dict[str, tuple[pd.Series, Any]],
    metric: str,
    slug: str,
) -> Table:
    stats = pivot_table(runs, groups[rows][0], groups[cols][0], metric)
    mean, std = stats["mean"], stats["std"]
    shown = pd.DataFrame({f"{rows} \\ {cols}": mean.index.astype(str)})
    for col in mean.columns:
        shown[str(col)] = [_pm(m, s) for m, s in zip(mean[col], std[col], strict=True)]
    values = mean.to_numpy(dtype=float)
    best = set()
    if np.isfinite(values).any():
        pick = np.nanargmax if data.metric_goal(metric) == "maximize" else np.nanargmin
        r, c = np.unravel_index(pick(values), values.shape)
        best.add((int(r), str(mean.columns[c])))
    flat = stats.stack(level=1, future_stack=True).reset_index()
    flat.columns = [rows, cols, *flat.columns[2:]]
    return Table(
        f"{metric}: {rows} x {cols}"
        + (" (mean ± std)" if (stats["count"] > 1).to_numpy().any() else ""),
        shown,
        flat,
        f"{slug}pivot_{_file(metric)}.csv",
        best,
    )


def _config_block(data: ReportData, runs: pd.DataFrame, part: SweepPart, slug: str) -> Table:
    table = config_table(runs, part.params, data.metric, data.goal)
    shown = config_cells(table.head(CONFIG_ROWS), part.params, data.metric)
    repeats = has_repeats(table)
    note = f"Showing the best {CONFIG_ROWS} of {len(table)}." if len(table) > CONFIG_ROWS else ""
    best = {(0, shown.columns[len(part.params)])} if len(shown) else set()
    return Table(
        f"Configurations: {data.metric}" + (" mean ± std over seeds" if repeats else ""),
        shown,
        table,
        f"{slug}configs.csv",
        best,
        note=note,
    )


def _curves_block(
    data: ReportData,
    runs: pd.DataFrame,
    param: str,
    groups: pd.Series,
    history: pd.DataFrame,
    slug: str,
) -> Plot:
    by_run = curves.run_groups(groups.loc[runs.index], runs["run_id"])
    part_history = history[history["run_id"].isin(by_run.index)]
    keys = [k for k in curves.curve_keys(data.metric, list(history.columns)) if k in history]
    title = f"{', '.join(keys)} per epoch by {param} (mean ± std over runs)"
    stats = {key: curves.curve_stats(part_history, by_run, key) for key in keys}
    reasons = [curves.metric_range(key, part_history[key])[2] for key in keys]
    return Plot(
        title,
        f"{slug}curves_{_file(param)}.png",
        partial(curves.save_png, part_history, by_run, stats, param, title),
        curves.figure(part_history, by_run, stats, param, title),
        "; ".join(r for r in reasons if r) + ("." if any(reasons) else ""),
    )


def _runs_block(data: ReportData) -> Table:
    runs = data.runs
    column = f"summary.{data.metric}"
    ok = runs["state"].isin(DONE) & runs[column].notna()
    ranked = runs[ok].sort_values(column, ascending=data.goal != "maximize")
    # the best configuration's best run of each sweep is highlighted, so always listed (with
    # several metrics, every run of each sweep's Pareto front)
    if data.is_multi_objective:
        bests = {
            str(r)
            for part in data.parts
            for r in pareto_front(_runs_of(runs, part), data.objectives)["run_id"]
        }
    else:
        bests = {best.best_run for _, best in _bests(data, data.done())}
    shortlist = (np.arange(len(ranked)) < RUN_ROWS) | ranked["run_id"].isin(bests)
    listed = pd.concat([runs[~ok], ranked[shortlist]])
    metrics = data.metrics()
    shown = pd.DataFrame({"run": listed["run_id"], "state": listed["state"]})
    if data.is_study:
        shown["stage"] = listed["stage_name"]
    for p in data.params:
        shown[p] = _value_cells(listed[f"config.{p}"])
    if "config.seed" in listed and listed["config.seed"].notna().any():
        shown["seed"] = _value_cells(listed["config.seed"])  # repeats differ only by it
    for metric in metrics:
        shown[metric] = listed[f"summary.{metric}"].map(_num)
    shown["runtime (s)"] = listed["runtime"].map(lambda v: _num(v, 3))
    shown["error"] = listed["error"].fillna("").astype(str).str.slice(0, 80)
    shown = shown.reset_index(drop=True)
    marked = set(range(int((~ok).sum())))
    marks = [m for m, _ in data.objectives] if data.is_multi_objective else [data.metric]
    best = {(i, m) for i in shown.index[shown["run"].isin(bests)] for m in marks if m in shown}
    note = (
        f"Best {RUN_ROWS} of {len(ranked)} finished runs shown." if len(ranked) > RUN_ROWS else ""
    )
    return Table(
        "All runs (failed and running runs flagged)", shown, runs, "runs.csv", best, marked, note
    )


# helpers ------------------------------------------------------------------------------------


def _value_cells(values: pd.Series) -> list[str]:
    """One column of parameter values as the tables show them; a missing value is blank."""
    shown = distinct_labels([v for v in values if not _missing(v)])
    cells = iter(shown)
    return ["" if _missing(v) else next(cells) for v in values]


def _history(data: ReportData, done: pd.DataFrame) -> pd.DataFrame:
    logged = [c.removeprefix("summary.") for c in data.runs.columns if c.startswith("summary.")]
    keys = curves.curve_keys(data.metric, logged)
    return data.history(done["run_id"].tolist(), keys)


def _runs_of(runs: pd.DataFrame, part: SweepPart) -> pd.DataFrame:
    return runs[runs["sweep_id"] == part.id]


def _best_cells(
    table: pd.DataFrame, shown: pd.DataFrame, goals: dict[str, str]
) -> set[tuple[int, str]]:
    best: set[tuple[int, str]] = set()
    for column, goal in goals.items():
        if column not in table:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().all():
            continue
        position = int(np.nanargmax(values) if goal == "maximize" else np.nanargmin(values))
        if column in shown:
            best.add((position, column))
    return best


def _binned(groups: pd.Series) -> bool:
    return any(".." in str(c) for c in groups.cat.categories)


def _file(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int(value: Any) -> str:
    return "" if _missing(value) else str(int(value))


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if is_number(value) else ""


def _signed(value: Any) -> str:
    return f"{value:+.4g}" if is_number(value) else ""


def _pm(mean: Any, std: Any) -> str:
    if not is_number(mean):
        return ""
    return f"{mean:.4g} ± {std:.2g}" if is_number(std) and std > 0 else f"{mean:.4g}"

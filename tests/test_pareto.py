"""Issue 23 §5: a sweep with several `metrics:` shows its Pareto front (non-dominated finished
runs, each goal respected) instead of one best, and a staged study carries the one run of the
front its `select:` rule picks."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import Result
from conftest import probe_spec, write_spec
from helpers import fill_sweep
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweeper.agent.launch import create_stage, stage_carry
from sweeper.backends.local import LocalBackend
from sweeper.backends.store import new_id
from sweeper.cli import app
from sweeper.errors import SpecError
from sweeper.spec.load import load_spec
from sweeper.sweep import (
    RunState,
    SelectRule,
    carry_over,
    carry_rule,
    front_mask,
    pareto_front,
    select_from_front,
    sweep_objectives,
)
from sweeper.sweep.runtable import RunRow, run_table

MAX, MIN = "maximize", "minimize"


def _dominates(a: np.ndarray, b: np.ndarray, goals: list[str]) -> bool:
    """The definition, written out: a is at least as good as b everywhere, better somewhere."""
    better = [x > y if g == MAX else x < y for x, y, g in zip(a, b, goals, strict=True)]
    as_good = [x >= y if g == MAX else x <= y for x, y, g in zip(a, b, goals, strict=True)]
    return all(as_good) and any(better)


# values from a small set, so ties and repeated rows are common; NaN and +-inf among them
VALUE = st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.5, math.inf, -math.inf, math.nan])


@st.composite
def _problems(draw: Any) -> tuple[np.ndarray, list[str]]:
    k = draw(st.integers(1, 4))
    n = draw(st.integers(0, 30))
    rows = draw(st.lists(st.lists(VALUE, min_size=k, max_size=k), min_size=n, max_size=n))
    goals = draw(st.lists(st.sampled_from([MAX, MIN]), min_size=k, max_size=k))
    return np.array(rows, dtype=float).reshape(n, k), goals


@settings(max_examples=300, deadline=None)
@given(_problems())
def test_the_front_is_exactly_the_non_dominated_rows(problem: tuple[np.ndarray, list[str]]) -> None:
    values, goals = problem
    mask = front_mask(values, goals)
    valid = [i for i in range(len(values)) if not np.isnan(values[i]).any()]
    for i in range(len(values)):
        if i not in valid:
            assert not mask[i], "a NaN row is never on the front"
            continue
        dominated = any(_dominates(values[j], values[i], goals) for j in valid)
        assert mask[i] == (not dominated), (values, goals, i)
        if not mask[i]:  # and a member of the front dominates it
            assert any(_dominates(values[j], values[i], goals) for j in valid if mask[j])


def test_goals_mix_ties_stay_and_nan_is_off() -> None:
    values = np.array([[1, 5], [2, 4], [2, 4], [0, 0], [3, 1], [math.nan, 9], [1, 6]], float)
    assert front_mask(values, [MAX, MAX]).tolist() == [0, 1, 1, 0, 1, 0, 1]
    # maximise the first, minimise the second: (3, 1) beats all but (0, 0), lowest second
    assert front_mask(values, [MAX, MIN]).tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert front_mask(values, [MIN, MIN]).tolist() == [0, 0, 0, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="for 3 goals"):
        front_mask(values, [MAX, MAX, MAX])


def test_objectives_read_as_wandbs_scheduler_reads_them() -> None:
    metrics = {"metrics": [{"name": "mAP", "goal": "Maximize"}, {"name": "t"}]}
    assert sweep_objectives(metrics) == [("mAP", MAX), ("t", MIN)]  # W&B's default: minimize
    assert sweep_objectives({"metric": {"name": "loss"}}) == [("loss", MIN)]
    assert sweep_objectives({}) == []


def _table(rows: list[tuple[float, Any, Any]], **columns: Any) -> pd.DataFrame:
    """Runs in creation order, (x, acc, seconds) each."""
    return run_table(
        [
            RunRow(
                run_id=f"r{i}",
                sweep_id="s",
                state=columns.get("states", ["finished"] * len(rows))[i],
                created_at=1_700_000_000.0 + i,
                config={"x": x},
                summary={k: v for k, v in (("acc", acc), ("seconds", s)) if v is not None},
            )
            for i, (x, acc, s) in enumerate(rows)
        ],
        ["x"],
    )


OBJECTIVES = [("acc", MAX), ("seconds", MIN)]


def test_the_run_table_front_counts_only_finished_runs_with_every_metric() -> None:
    runs = _table(
        [
            (0, 0.9, 10.0),  # r0: front (the best acc)
            (1, 0.8, 5.0),  # r1: front
            (2, 0.8, 5.0),  # r2: a tie of r1, kept
            (3, 0.7, 6.0),  # r3: dominated by r1
            (4, 0.99, 1.0),  # r4: would dominate all, but failed
            (5, 0.95, None),  # r5: no seconds logged
            (6, "text", 1.0),  # r6: text never scores
            (7, 0.5, 2.0),  # r7: stopped (early-terminated) counts: front (fastest)
        ],
        states=["finished"] * 4 + ["failed", "finished", "finished", "stopped"],
    )
    front = pareto_front(runs, OBJECTIVES)
    assert list(front["run_id"]) == ["r0", "r1", "r2", "r7"]  # best acc first, ties by age
    assert pareto_front(runs, [("acc", MAX), ("never_logged", MIN)]).empty


def test_the_select_rule_picks_one_run_of_the_front() -> None:
    front = pareto_front(_table([(0, 0.9, 10.0), (1, 0.8, 2.0), (2, 0.6, 1.0)]), OBJECTIVES)
    by_acc = select_from_front(front, OBJECTIVES, SelectRule(metric="acc"), ["x"])
    assert by_acc is not None and by_acc.config == {"x": 0} and by_acc.rule == "best acc"
    by_time = select_from_front(front, OBJECTIVES, SelectRule(metric="seconds"), ["x"])
    assert by_time is not None and by_time.run_id == "r2"  # minimised
    # 0.9 - 0.05*10 = 0.4; 0.8 - 0.1 = 0.7; 0.6 - 0.05 = 0.55
    weighted = SelectRule(weights={"acc": 1.0, "seconds": -0.05})
    chosen = select_from_front(front, OBJECTIVES, weighted, ["x"])
    assert chosen is not None and chosen.config == {"x": 1}
    assert chosen.values == {"acc": 0.8, "seconds": 2.0}
    assert chosen.rule == "max 1*acc - 0.05*seconds"
    with pytest.raises(ValueError, match=r"\['loss'\]; the metrics are acc, seconds"):
        select_from_front(front, OBJECTIVES, SelectRule(metric="loss"), ["x"])


def test_a_weighted_tie_goes_to_the_front_s_first_row() -> None:
    # r0 is faster, r1 more accurate: both on the front, r1 first (the better first metric)
    front = pareto_front(_table([(0, 0.5, 1.0), (1, 0.9, 1.4)]), OBJECTIVES)
    assert list(front["run_id"]) == ["r1", "r0"]
    slow = SelectRule(weights={"acc": 0.0, "seconds": -1.0})  # -1.4 < -1.0
    chosen = select_from_front(front, OBJECTIVES, slow, ["x"])
    assert chosen is not None and chosen.run_id == "r0"
    even = SelectRule(weights={"acc": 0.0, "seconds": 0.0})  # 0 = 0: a tie
    tied = select_from_front(front, OBJECTIVES, even, ["x"])
    assert tied is not None and tied.run_id == "r1"


MULTI = {
    "method": "grid",
    "metrics": [{"name": "acc", "goal": MAX}, {"name": "seconds", "goal": MIN}],
    "parameters": {"x": {"values": [0, 1, 2]}},
}


def test_a_multi_objective_stage_carries_the_rule_s_choice() -> None:
    runs = _table([(0, 0.9, 10.0), (1, 0.8, 2.0), (2, 0.6, 1.0)])
    weights = {"weights": {"acc": 1.0, "seconds": -0.05}}
    carry = carry_over(runs, MULTI, ["x"], {"lr": 0.1}, select=weights)
    assert carry is not None and carry.best is None
    assert carry.choice is not None and carry.choice.run_id == "r1"
    assert carry.config == {"x": 1} and carry.carried == {"lr": 0.1, "x": 1}
    fastest = carry_over(runs, MULTI, ["x"], {}, select={"metric": "seconds"})
    assert fastest is not None and fastest.carried == {"x": 2}
    # no rule: nothing is carried (a study's spec must name one; a last stage needs none)
    unruled = carry_over(runs, MULTI, ["x"], {"lr": 0.1})
    assert unruled is not None and unruled.config == {} and unruled.carried == {"lr": 0.1}
    failed = _table([(0, 0.9, 10.0)], states=[RunState.FAILED])
    assert carry_over(failed, MULTI, ["x"], {}, select=weights) is None
    assert carry_rule(MULTI, weights) == "Pareto front, max 1*acc - 0.05*seconds"
    assert carry_rule(MULTI, {"metric": "acc"}) == "Pareto front, best acc"
    assert carry_rule({"metric": {"name": "loss"}}, None) == "best mean loss"


def test_sync_marks_the_front_not_a_best() -> None:
    from sweeper.report.publish import sweep_outcome

    runs = _table([(0, 0.9, 10.0), (1, 0.8, 2.0), (2, 0.6, 1.0), (3, 0.5, 3.0)])
    mark, line = sweep_outcome(runs, MULTI) or ({}, "")
    assert mark == {"pareto_front": ["r0", "r1", "r2"]}
    assert line == "Pareto front over acc (maximize) and seconds (minimize): runs r0, r1, r2"
    single = {"metric": {"name": "acc", "goal": MAX}, "parameters": MULTI["parameters"]}
    mark, line = sweep_outcome(runs, single) or ({}, "")
    assert mark["best"]["config"] == {"x": 0} and line.startswith("best run r0: acc = 0.9000")
    assert sweep_outcome(runs.iloc[0:0], MULTI) is None


# where a best was shown ---------------------------------------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


SCORES = {0: (0.9, 10.0), 1: (0.8, 2.0), 2: (0.6, 1.0), 3: (0.5, 3.0)}
"""x -> (acc, seconds): x=3 is dominated by x=1; the other three are the front."""


@pytest.fixture
def multi_sweep(backend: LocalBackend) -> tuple[str, dict[int, str]]:
    config = {**MULTI, "name": "multi", "parameters": {"x": {"values": list(SCORES)}}}
    sweep_id = backend.create_sweep(config, trainer="", spec={}, spec_hash="h")
    runs = fill_sweep(
        backend,
        sweep_id,
        lambda p: [dict(zip(("acc", "seconds"), SCORES[int(p["x"])], strict=True))],
    )
    return sweep_id, {int(params["x"]): run_id for run_id, params in runs}


def _rows(output: str) -> list[list[str]]:
    """A rich table's header and rows as cells."""
    return [
        [cell.strip() for cell in line.replace("┃", "│").split("│")[1:-1]]
        for line in output.splitlines()
        if line.replace("┃", "│").count("│") > 2
    ]


def test_status_lists_the_front_not_one_best(
    multi_sweep: tuple[str, dict[int, str]], store: Path
) -> None:
    sweep_id, ids = multi_sweep
    shown = cli("status", sweep_id, "--store", str(store))
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "Pareto front over acc (maximize), seconds (minimize): 3 of 4 finished runs" in text
    assert "best" not in text
    rows = _rows(shown.output)
    assert rows[0] == ["run", "acc", "seconds", "x"], shown.output
    assert rows[1:] == [
        [ids[0], "0.9", "10", "0"],
        [ids[1], "0.8", "2", "1"],
        [ids[2], "0.6", "1", "2"],
    ]
    assert ids[3] not in shown.output
    listed = cli("sweeps", "--store", str(store))
    assert "front: 3 runs" in " ".join(listed.output.split()), listed.output


def test_runs_shows_every_metric(multi_sweep: tuple[str, dict[int, str]], store: Path) -> None:
    sweep_id, ids = multi_sweep
    shown = cli("runs", sweep_id, "--store", str(store))
    assert shown.exit_code == 0, shown.output
    rows = _rows(shown.output)
    assert rows[0][-3:] == ["acc", "seconds", "runtime"], shown.output
    assert [row[-3:-1] for row in rows[1:] if row[0] == ids[3]] == [["0.5", "3"]]


def test_the_progress_bar_names_no_best_of_several_metrics(
    multi_sweep: tuple[str, dict[int, str]], backend: LocalBackend
) -> None:
    from sweeper.agent.launch import _snapshot

    sweep = backend.sweep(multi_sweep[0])
    assert sweep.metric == ("acc", MAX)  # the first objective: the plots are coloured by it
    assert _snapshot(backend, sweep, 4, "acc", MAX).best is None


def _plotly_data(html: str) -> list[dict[str, Any]]:
    """The traces of the first plotly figure in a page: `Plotly.newPlot("id", [traces], ...)`."""
    start = html.index("[", html.index("Plotly.newPlot("))
    data, _ = json.JSONDecoder().raw_decode(html[start:])
    return data


def test_the_report_draws_the_front_beside_the_parallel_coordinates(
    multi_sweep: tuple[str, dict[int, str]], store: Path, tmp_path: Path
) -> None:
    sweep_id, ids = multi_sweep
    out = tmp_path / "report"
    made = cli("report", sweep_id, "-o", str(out), "--store", str(store))
    assert made.exit_code == 0, made.output
    page = (out / "report.html").read_text()
    assert page.index("Parallel coordinates") < page.index("<h2>Pareto front</h2>")
    summary = "The Pareto front over acc (maximize) and seconds (minimize) holds 3 of 4 finished"
    assert summary in page
    # the scatter: one trace of the front (its runs, joined in order of acc), one of the rest
    traces = {t["name"]: t for t in _plotly_data(page[page.index("<h2>Pareto front</h2>") :])}
    assert traces["Pareto front"]["type"] == "scatter"
    assert traces["Pareto front"]["text"] == [ids[2], ids[1], ids[0]]
    assert traces["other runs"]["text"] == [ids[3]]
    assert (out / "pareto.png").stat().st_size > 0
    listed = pd.read_csv(out / "pareto_front.csv")
    assert list(listed["run_id"]) == [ids[0], ids[1], ids[2]] and list(listed["x"]) == [0, 1, 2]
    # the runs table highlights each front run's metrics, never the dominated one
    runs_table = page[page.index("All runs") :]
    highlighted = re.findall(r"<tr[^>]*>(?:(?!</tr>).)*class='best'.*?</tr>", runs_table)
    assert sorted(re.search(r"<td>(\w+)</td>", row)[1] for row in highlighted) == sorted(
        [ids[0], ids[1], ids[2]]
    )


@pytest.mark.slow  # headless Chromium draws the page (a browser process: 5-15 s)
def test_the_pareto_scatter_renders_in_chromium(
    multi_sweep: tuple[str, dict[int, str]], store: Path, tmp_path: Path
) -> None:
    from test_report import _chromium

    sweep_id, _ = multi_sweep
    out = tmp_path / "report"
    assert cli("report", sweep_id, "-o", str(out), "--store", str(store)).exit_code == 0
    dom = _chromium(tmp_path, "--dump-dom", (out / "report.html").as_uri()).stdout
    points = re.findall(r'<path class="point"[^>]*fill: (rgb\([^)]*\))', dom)
    assert points.count("rgb(228, 0, 43)") == 3, "the front's three runs, drawn in red"
    assert points.count("rgb(158, 158, 158)") == 1, "the dominated run, in grey"
    assert 'data-unformatted="Pareto front"' in dom  # the legend names it


def test_three_metrics_draw_a_scatter_matrix(tmp_path: Path) -> None:
    from sweeper.report import pareto as plot

    runs = _table([(0, 0.9, 10.0), (1, 0.8, 2.0), (2, 0.6, 1.0), (3, 0.5, 3.0)])
    runs["summary.mb"] = [5.0, 1.0, 9.0, 0.5]  # x=3 is now the smallest: on the front too
    objectives = [*OBJECTIVES, ("mb", MIN)]
    front = pareto_front(runs, objectives)
    assert list(front["run_id"]) == ["r0", "r1", "r2", "r3"]
    on_front = runs["run_id"].isin(["r0", "r1"]).to_numpy()  # any split draws
    figure = plot.figure(runs, on_front, objectives, "t")
    assert [t.type for t in figure.data] == ["splom", "splom"]
    assert [len(t.dimensions) for t in figure.data] == [3, 3]
    assert list(figure.data[1].text) == ["r0", "r1"] and figure.data[1].name == "Pareto front"
    assert figure.data[0].dimensions[2].label == "mb (min)"
    plot.save_png(runs, on_front, objectives, "t", tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


# a staged study with several metrics --------------------------------------------------------

STUDY = {
    "name": "mo-study",
    "trainer": "two-objectives",  # f1 = x + y, f2 = (x-2)^2 + (y-2)^2, both minimised
    "method": "grid",
    "metrics": [{"name": "f1", "goal": MIN}, {"name": "f2", "goal": MIN}],
    "base": {"epochs": 1},
    "stages": [
        {"name": "a", "search": {"x": [0.0, 1.0, 2.0, 3.0]}},
        {"name": "b", "search": {"y": [0.0, 1.0, 2.0]}},
    ],
}


@pytest.mark.parametrize(
    ("select", "error"),
    [
        (None, r"select: a study with several `metrics` carries one run .* \{metric: NAME\}"),
        ({"metric": "loss"}, r"select: 'loss' is not one of the `metrics` \(f1, f2\)"),
        ({"weights": {"f1": 1.0, "mAP": 1.0}}, r"select: 'mAP' is not one of the `metrics`"),
        ({"metric": "f1", "weights": {"f1": 1.0}}, r"select: give `metric` or `weights`, one"),
        ({}, r"select: give `metric` or `weights`, one of the two"),
        ({"weights": {"f1": 0, "f2": 0.0}}, r"select: `weights` are all 0"),
        ({"weights": {"f1": "1"}}, r"select\.weights\.f1: Input should be a valid number"),
        ({"weights": {"f1": math.inf}}, r"select\.weights\.f1: Input should be a finite number"),
    ],
)
def test_a_multi_objective_study_names_a_valid_select_rule(
    tmp_path: Path, select: dict[str, Any] | None, error: str
) -> None:
    spec = STUDY if select is None else {**STUDY, "select": select}
    with pytest.raises(SpecError, match=error):
        load_spec(write_spec(tmp_path, spec))


def test_select_is_needed_only_where_a_front_is_carried(tmp_path: Path) -> None:
    one_stage = {**STUDY, "stages": STUDY["stages"][:1]}  # nothing to carry: no rule needed
    assert load_spec(write_spec(tmp_path, one_stage)).spec.select is None
    weights = {"weights": {"f1": -1.0, "f2": -0.5}}
    assert load_spec(write_spec(tmp_path, {**STUDY, "select": weights})).spec.select is not None
    single = {**probe_spec(), "select": {"metric": "loss"}}  # one metric: no front
    with pytest.raises(SpecError, match="select: only a spec with several `metrics`"):
        load_spec(write_spec(tmp_path, single))
    lone = {**one_stage, "select": {"metric": "f1"}}  # no next stage: the rule would do nothing
    with pytest.raises(SpecError, match="select: only a study of two or more `stages`"):
        load_spec(write_spec(tmp_path, lone))


def test_a_multi_objective_study_carries_the_select_choice_and_says_so(
    backend: LocalBackend, tmp_path: Path
) -> None:
    path = write_spec(tmp_path, {**STUDY, "select": {"metric": "f2"}})
    loaded, study, seed = load_spec(path), new_id(), 7
    stages = loaded.spec.stage_list()

    def history(p: dict[str, Any]) -> list[dict[str, float]]:
        x, y = float(p["x"]), float(p.get("y", 0.0))  # stage a runs with the base y = 0
        return [{"f1": x + y, "f2": (x - 2) ** 2 + (y - 2) ** 2}]

    # stage a: x=0 (0, 8), x=1 (1, 5), x=2 (2, 4) are the front; x=3 (3, 5) is dominated
    first = create_stage(backend, loaded, 0, {}, study, seed)
    fill_sweep(backend, first, history)
    best, carried = stage_carry(backend, backend.sweep(first), stages[0], {})
    assert best == carried == {"x": 2.0}  # the front's lowest f2
    compiled = cli("compile", str(path), "--stage", "b")
    assert compiled.exit_code == 0, compiled.output
    assert yaml.safe_load(compiled.stdout)["parameters"]["x"] == {"value": 2.0}
    # stage b, from x=2: y=0 (2, 4), y=1 (3, 1), y=2 (4, 0): all three on the front
    fill_sweep(backend, create_stage(backend, loaded, 1, carried, study, seed), history)

    done = cli("launch", str(path), "--wandb", "disabled")  # both complete: prints, runs nothing
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "mo-study / a: Pareto front over f1 (minimize), f2 (minimize): 3 of 4 finished" in text
    assert "mo-study / b: Pareto front over f1 (minimize), f2 (minimize): 3 of 3 finished" in text
    table = _rows(done.output[done.output.index("staged study") :])
    assert table[0] == ["stage", "searched", "best", "chosen by"], done.output
    assert table[1:] == [
        ["a", "x", "x=2", "Pareto front, best f2"],
        ["b", "y", "y=2", "Pareto front, best f2"],
    ], done.output

    out = tmp_path / "report"
    made = cli("report", study, "-o", str(out))
    assert made.exit_code == 0, made.output
    stages_csv = pd.read_csv(out / "stages.csv")
    assert list(stages_csv["chosen"]) == ["x=2", "y=2"]
    assert set(stages_csv["chosen by"]) == {"Pareto front, best f2"}
    assert list(stages_csv["front"]) == [3, 3] and list(stages_csv["f2"]) == [4.0, 0.0]
    page = (out / "report.html").read_text()
    assert "In stage a, the Pareto front over f1 (minimize) and f2 (minimize) holds 3 of 4" in page
    assert (out / "stage0_pareto.png").exists() and (out / "stage1_pareto_front.csv").exists()

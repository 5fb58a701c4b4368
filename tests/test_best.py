"""Issue 19 §1: "best" means one thing everywhere.

The best configuration is the one with the best mean over its seeds (ties: the lower std, then
more runs, then the one that ran first); its best and median runs are named beside it. The
runs below are written through the store's own API (claim, finish), so each place that shows a
best reads data where one lucky seed and the best mean disagree: x=1 has the single best run
(loss 0.125), x=0 and x=2 tie on the mean (0.5), and x=2 wins the tie with no spread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import Result
from conftest import probe_spec, write_spec
from helpers import fill_sweep, sweeper  # sweeper: wandb's online runs keep to their own process
from typer.testing import CliRunner
from wandb_server import WandbServer

from sweeper.agent.launch import create_stage, stage_carry
from sweeper.backends.local import LocalBackend
from sweeper.backends.store import new_id
from sweeper.backends.wandb import read_mark
from sweeper.cli import app
from sweeper.spec.load import load_spec
from sweeper.sweep import best_configuration, config_table

LOSS = {(0, 0): 0.25, (0, 1): 0.75, (1, 0): 0.125, (1, 1): 1.0, (2, 0): 0.5, (2, 1): 0.5}
"""(x, seed) -> loss: x=1 seed 0 is the lucky run; x=2 is the best configuration."""

SPEC = probe_spec(search={"x": [0.0, 1.0, 2.0]}, repeats=2, project="sweeper-best")


def cli(*args: str) -> Result:
    """The real command, in this process (a child process only adds Python's start-up)."""
    return CliRunner().invoke(app, list(args))


def _fill(
    backend: LocalBackend, sweep_id: str, loss: Callable[[dict[str, Any]], float]
) -> dict[tuple[int, int], str]:
    """Run every trial of a sweep through the store's API, one step each, and finish the
    sweep: {(x, seed): run id}."""
    runs = fill_sweep(backend, sweep_id, lambda params: [{"loss": loss(params)}])
    return {(int(params["x"]), int(params["seed"])): run_id for run_id, params in runs}


def _by_table(params: dict[str, Any]) -> float:
    return LOSS[int(params["x"]), int(params["seed"])]


@pytest.fixture
def filled(backend: LocalBackend, tmp_path: Path) -> tuple[Path, str, dict[tuple[int, int], str]]:
    """The spec file, its finished sweep, and the run ids by (x, seed)."""
    path = write_spec(tmp_path, SPEC)
    sweep_id = create_stage(backend, load_spec(path))
    ids = _fill(backend, sweep_id, _by_table)
    return path, sweep_id, ids


def _best_line(ids: dict[tuple[int, int], str]) -> str:
    # x=2's two runs tie at 0.5: the earlier is its best run, the other its median
    first, second = sorted([ids[2, 0], ids[2, 1]], key=lambda r: list(ids.values()).index(r))
    return (
        f"best configuration (x=2): loss = 0.5000 ± 0.0000 over 2 runs; best run {first} "
        f"(0.5000), median run {second} (0.5000)"
    )


# the one definition ---------------------------------------------------------------------------


def _table(rows: list[tuple[Any, float]], **columns: Any) -> pd.DataFrame:
    """Finished runs in creation order: (x, metric value) each."""
    return pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(rows))],
            "state": columns.pop("state", ["finished"] * len(rows)),
            "config.x": [x for x, _ in rows],
            "summary.loss": [v for _, v in rows],
            **columns,
        }
    )


def _winner(runs: pd.DataFrame, goal: str = "minimize") -> Any:
    best = best_configuration(runs, ["x"], "loss", goal)
    assert best is not None
    return best.config["x"]


def test_the_best_mean_wins_over_the_luckiest_run() -> None:
    runs = _table([(1, 0.1), (1, 0.9), (2, 0.3), (2, 0.3)])
    best = best_configuration(runs, ["x"], "loss", "minimize")
    assert best is not None
    assert (best.config, best.mean, best.std, best.n) == ({"x": 2}, 0.3, 0.0, 2)
    assert (best.best_run, best.median_run) == ("r2", "r3")
    assert _winner(runs, "maximize") == 1  # mean 0.5 beats 0.3


def test_ties_go_to_the_lower_std_then_more_runs_then_the_first_to_run() -> None:
    assert _winner(_table([(1, 0.25), (1, 0.75), (2, 0.5), (2, 0.5)])) == 2  # lower std
    assert _winner(_table([(1, 0.5), (2, 0.5), (2, 0.5)])) == 2  # more runs
    assert _winner(_table([(3, 0.5), (1, 0.5)])) == 3  # ran first, though 1 sorts first
    # created_at, where the table has it, is the creation order
    when = pd.to_datetime([2, 1], unit="s")
    assert _winner(_table([(3, 0.5), (1, 0.5)], created_at=when)) == 1


def test_the_median_run_is_the_middle_one_and_never_flatters() -> None:
    runs = _table([(1, 0.4), (1, 0.1), (1, 0.2), (2, 5.0), (2, 6.0)])
    table = config_table(runs, ["x"], "loss", "minimize")
    assert list(table["best_run"]) == ["r1", "r3"]
    assert list(table["median_run"]) == ["r2", "r4"]  # n=2: the worse of the two


def test_nan_never_wins_and_inf_ranks_by_plain_ordering() -> None:
    nan, inf = math.nan, math.inf
    assert _winner(_table([(1, nan), (2, 3.0)])) == 2
    assert _winner(_table([(1, nan), (2, 3.0)]), "maximize") == 2
    assert _winner(_table([(1, inf), (2, 3.0)])) == 2
    assert _winner(_table([(1, inf), (2, 3.0)]), "maximize") == 1
    assert _winner(_table([(1, -inf), (2, 3.0)])) == 1
    # a mean of +inf and -inf is NaN: it ranks after every number, for either goal
    assert _winner(_table([(1, inf), (1, -inf), (2, 3.0)]), "maximize") == 2
    assert _winner(_table([(1, inf), (1, -inf), (2, 3.0)])) == 2
    assert best_configuration(_table([(1, nan)]), ["x"], "loss", "minimize") is None


def test_failed_running_and_textual_runs_never_count() -> None:
    states = ["failed", "crashed", "running", "stopped"]
    runs = _table([(1, 0.0), (2, 0.0), (3, 0.0), (4, 9.0)], state=states)
    assert _winner(runs) == 4  # stopped (early-terminated) counts
    assert _winner(_table([(1, "oops"), (2, 9.0)])) == 2  # type: ignore[list-item]


def test_no_repeats_the_configuration_is_the_run() -> None:
    best = best_configuration(_table([(1, 0.4), (2, 0.1)]), ["x"], "loss", "minimize")
    assert best is not None and best.n == 1 and best.best_run == best.median_run == "r1"
    assert best.describe("loss") == "best run r1: loss = 0.1000 (x=2)"


# every place that shows a best ----------------------------------------------------------------


def test_launch_closing_line_and_table_show_the_best_configuration(filled: Any) -> None:
    path, _, ids = filled
    done = cli("launch", str(path), "--wandb", "disabled")  # complete: prints, runs nothing
    assert done.exit_code == 0, done.output
    assert _best_line(ids) in " ".join(done.output.split()), done.output
    assert ids[1, 0] not in done.output, "the lucky run is named nowhere"
    rows = [line.split("│")[1].strip() for line in done.output.splitlines() if "│" in line]
    assert [float(x) for x in rows] == [2.0, 0.0, 1.0], done.output


def test_status_names_the_best_configuration(filled: Any, store: Path) -> None:
    _, sweep_id, ids = filled
    shown = cli("status", sweep_id, "--store", str(store))
    assert shown.exit_code == 0, shown.output
    assert f"so far, {_best_line(ids)}" in " ".join(shown.output.split()), shown.output
    assert ids[1, 0] not in shown.output


def test_the_progress_snapshot_shows_the_best_mean(backend: LocalBackend, filled: Any) -> None:
    from sweeper.agent.launch import _snapshot

    _, sweep_id, _ = filled
    sweep = backend.sweep(sweep_id)
    assert _snapshot(backend, sweep, 6, "loss", "minimize").best == 0.5  # not the lucky 0.125


def test_report_summary_table_and_highlight_name_the_best_configuration(
    filled: Any, store: Path, tmp_path: Path
) -> None:
    _, sweep_id, ids = filled
    out = tmp_path / "report"
    made = cli("report", sweep_id, "-o", str(out), "--store", str(store))
    assert made.exit_code == 0, made.output
    page = (out / "report.html").read_text()
    assert f"The {_best_line(ids)}." in page
    configs = pd.read_csv(out / "configs.csv")
    assert list(configs["x"]) == [2.0, 0.0, 1.0]
    assert configs["best_run"].iloc[0] == ids[2, 0] and configs["median_run"].iloc[0] == ids[2, 1]
    runs_table = page[page.index("All runs") :]
    highlighted = re.findall(r"<tr[^>]*>(?:(?!</tr>).)*class='best'.*?</tr>", runs_table)
    assert len(highlighted) == 1, highlighted
    assert f"<td>{ids[2, 0]}</td>" in highlighted[0], highlighted[0]


def test_a_stage_carries_the_best_configuration_not_the_lucky_run(
    backend: LocalBackend, tmp_path: Path
) -> None:
    stages = [
        {"name": "x", "search": {"x": [0.0, 1.0, 2.0]}},
        {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
    ]
    path = write_spec(tmp_path, probe_spec(search={}, repeats=2, stages=stages))
    loaded, study = load_spec(path), new_id()
    first = create_stage(backend, loaded, 0, {}, study)
    _fill(backend, first, _by_table)
    compiled = cli("compile", str(path), "--stage", "lr")
    assert compiled.exit_code == 0, compiled.output
    assert yaml.safe_load(compiled.output)["parameters"]["x"] == {"value": 2.0}

    # what launch carries on; lr=0.01 then has the lucky run (0.05), lr=0.1 the better mean
    best, carried = stage_carry(backend, backend.sweep(first), loaded.spec.stage_list()[0], {})
    assert best == {"x": 2.0} and carried == {"x": 2.0}
    second = create_stage(backend, loaded, 1, carried, study)
    _fill(backend, second, lambda p: {0.1: [0.3, 0.3], 0.01: [0.05, 0.9]}[p["optim.lr"]][p["seed"]])
    done = cli("launch", str(path), "--wandb", "disabled")  # both complete: prints, runs nothing
    assert done.exit_code == 0, done.output
    table = done.output[done.output.index("staged study") :]
    assert re.search(r"│ x +│ x +│ x=2 +│", table) and re.search(
        r"│ lr +│ optim\.lr +│ optim\.lr=0\.1 ", table
    ), table
    assert "optim.lr=0.01 " not in table


@pytest.mark.slow  # four wandb online runs uploaded: 25-35 s
def test_sync_marks_the_best_configuration_and_wandb_status_reads_it(
    wandb_server: WandbServer, backend: LocalBackend, store: Path, tmp_path: Path
) -> None:
    path = write_spec(tmp_path, probe_spec(search={"x": [0.0, 1.0]}, repeats=2))
    sweep_id = create_stage(backend, load_spec(path))
    # x=1 has the lucky run (0.125) and the worse mean; x=0 the better mean (0.5)
    ids = _fill(backend, sweep_id, lambda p: [[0.5, 0.5], [0.125, 1.0]][int(p["x"])][p["seed"]])
    synced = sweeper("sync", sweep_id, "--entity", "standin", "--store", str(store))
    assert synced.returncode == 0, synced.stderr
    (remote,) = wandb_server.sweeps.values()

    shown = sweeper("status", f"standin/{remote.project}/{remote.id}")  # read back from W&B
    assert shown.returncode == 0, shown.stderr
    line = "so far, best configuration (x=0): loss = 0.5000 ± 0.0000 over 2 runs"
    assert line in " ".join(shown.stdout.split()), shown.stdout
    assert ids[1, 0] not in shown.stdout, shown.stdout

    mark = read_mark(remote.config["description"])
    assert mark["best"]["config"] == {"x": 0.0}
    assert (mark["best"]["mean"], mark["best"]["n"]) == (0.5, 2)
    assert mark["best"]["best_run"] == ids[0, 0] and mark["best"]["median_run"] == ids[0, 1]
    assert "best configuration (x=0): loss = 0.5000" in remote.config["description"]

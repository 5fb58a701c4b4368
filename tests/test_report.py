"""`sweeper report` on sweeps written through the local store's API: numbers, bad input, output."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import fill_study, xor_history
from typer.testing import CliRunner

from sweeper.agent.launch import AgentSettings, launch
from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.report.build import build_report
from sweeper.report.load import report_data
from sweeper.report.parcoords import make_axis
from sweeper.report.values import param_kind
from sweeper.spec.load import load_spec
from sweeper.sweep import swept_params

BASE = {"epochs": 3, "data": {"n_train": 200, "n_test": 100}}

GRID = {
    "name": "report-grid",
    "trainer": "xor",
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "base": BASE,
    "search": {"model.depth": [0, 1], "model.activation": ["tanh", "relu"]},
    "repeats": 2,
}

STAGED = {
    "name": "report-staged",
    "trainer": "xor",
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "base": BASE,
    "stages": [
        {"name": "depth", "search": {"model.depth": [0, 1]}},
        {"name": "width", "search": {"model.width": [1, 3]}},
        {"name": "learning rate", "search": {"optim.lr": [0.03, 0.3]}},
    ],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def backend(workdir: Path) -> Iterator[LocalBackend]:
    db = LocalBackend(workdir / "store" / "sweeper.db")
    yield db
    db.close()


def _run(workdir: Path, backend: LocalBackend, spec: dict[str, Any]) -> list[Any]:
    """The study's runs written through the store's API; `launch` then finds every stage
    complete and reads them back (what the report reads, without training)."""
    path = workdir / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    fill_study(backend, load_spec(path), xor_history)
    return launch(load_spec(path), backend, agents=2, settings=AgentSettings("disabled"))


@pytest.fixture(scope="module")
def grid(workdir: Path, backend: LocalBackend) -> str:
    return _run(workdir, backend, GRID)[0].sweep.id


@pytest.fixture(scope="module")
def study(workdir: Path, backend: LocalBackend) -> str:
    results = _run(workdir, backend, STAGED)
    return results[0].sweep.study


@pytest.fixture(scope="module")
def grid_report(workdir: Path, backend: LocalBackend, grid: str) -> Path:
    return build_report(report_data(backend, grid), workdir / "grid-report")


def _done(backend: LocalBackend, sweep_id: str) -> pd.DataFrame:
    runs = backend.runs(sweep_id)
    return runs[runs["state"].isin(["finished", "stopped"])]


def test_param_table_matches_the_store(backend: LocalBackend, grid: str, grid_report: Path):
    table = pd.read_csv(grid_report / "param_model.depth.csv")
    done = _done(backend, grid)
    expect = done.groupby("config.model.depth")["summary.val_acc"].agg(["mean", "std", "size"])
    assert table["value"].astype(str).tolist() == ["0", "1"]
    assert table["n"].tolist() == expect["size"].tolist() == [4, 4]
    assert table["val_acc"].tolist() == pytest.approx(expect["mean"].tolist())
    assert table["val_acc std"].tolist() == pytest.approx(expect["std"].tolist())
    # the xor trainer's default depth (1) is the baseline: Δ is measured from its row
    assert table["baseline"].tolist() == [False, True]
    delta = expect["mean"].iloc[0] - expect["mean"].iloc[1]
    assert table["val_acc Δ"].tolist() == pytest.approx([delta, 0.0])


def test_repeats_and_pivot_match_the_store(backend: LocalBackend, grid: str, grid_report: Path):
    done = _done(backend, grid)
    keys = ["config.model.depth", "config.model.activation"]
    expect = done.groupby(keys)["summary.val_acc"].agg(["mean", "std", "size"])
    configs = pd.read_csv(grid_report / "configs.csv")
    assert len(configs) == 4 and (configs["n"] == 2).all()
    for row in configs.to_dict("records"):
        mean, std, _ = expect.loc[(row["model.depth"], row["model.activation"])]
        assert (row["mean"], row["std"]) == pytest.approx((mean, std))
    assert configs["mean"].is_monotonic_decreasing  # best first
    pivot = pd.read_csv(grid_report / "pivot_val_acc.csv")
    assert len(pivot) == 4
    for row in pivot.to_dict("records"):
        key = (row["model.depth"], row["model.activation"])
        assert row["mean"] == pytest.approx(expect.loc[key, "mean"])
        assert row["std"] == pytest.approx(expect.loc[key, "std"])


def test_report_folder_holds_every_output(grid_report: Path):
    names = {p.name for p in grid_report.iterdir()}
    assert {"report.html", "report.md", "parallel_coordinates.png", "runs.csv"} <= names
    assert {"curves_model.depth.png", "curves_model.activation.png", "importance.csv"} <= names
    html = (grid_report / "report.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", html)  # plotly.js is embedded, not fetched
    assert "Plotly.newPlot" in html and len(html) > 3_000_000
    assert html.count("Plotly.newPlot") >= 3  # parallel coordinates + a curve per parameter
    markdown = (grid_report / "report.md").read_text()
    assert "![parallel coordinates](parallel_coordinates.png)" in markdown
    assert "(baseline)" in markdown and "**" in markdown  # baseline row and best cells marked
    importance = pd.read_csv(grid_report / "importance.csv")
    assert set(importance["param"]) == {"model.depth", "model.activation"}
    assert importance["importance"].sum() == pytest.approx(1.0)


def test_staged_study_one_row_per_stage(workdir: Path, backend: LocalBackend, study: str):
    out = build_report(report_data(backend, study), workdir / "study-report")
    stages = pd.read_csv(out / "stages.csv")
    assert stages["stage"].tolist() == ["depth", "width", "learning rate"]
    sweeps = backend.sweeps(study)
    carried: dict[str, Any] = {}
    for row, sweep in zip(stages.itertuples(index=False), sweeps, strict=True):
        (param,) = swept_params(sweep.config)
        means = _done(backend, sweep.id).groupby(f"config.{param}")["summary.val_acc"].mean()
        winner = means.idxmax()
        carried[param] = winner
        assert row.best == f"{param}={winner:g}"
        assert row.val_acc == pytest.approx(means.max())
        assert row.configuration == ", ".join(f"{k}={v:g}" for k, v in carried.items())
    # the next stage started from what this one found
    assert sweeps[1].carried == {"model.depth": carried["model.depth"]}
    assert math.isnan(stages["val_acc Δ"].iloc[0])
    # stage 0's runs used the default width and lr: they count in the study-wide importance
    importance = pd.read_csv(out / "importance.csv")
    assert set(importance["param"]) == {"model.depth", "model.width", "optim.lr"}
    assert importance["importance"].notna().all()


def test_report_from_spec_path_picks_latest_sweep(workdir: Path, backend: LocalBackend, grid: str):
    data = report_data(backend, str(workdir / "report-grid.yaml"))
    assert [p.id for p in data.parts] == [grid]


def _cli(workdir: Path, *args: str) -> Any:
    store = str(workdir / "store" / "sweeper.db")
    return CliRunner().invoke(app, ["report", *args, "--store", store])


def test_cli_writes_report_and_replaces_it_whole(workdir: Path, grid: str):
    out = workdir / "cli-report"
    result = _cli(workdir, grid, "-o", str(out), "--format", "md", "--axes", "model.activation")
    assert result.exit_code == 0, result.output
    assert (out / "report.md").exists() and not (out / "report.html").exists()
    before = (out / "report.md").read_text()
    result = _cli(workdir, grid, "-o", str(out), "--metric", "no_such_metric")
    assert result.exit_code == 2
    assert "no_such_metric" in result.output and len(result.output.strip().splitlines()) == 1
    assert (out / "report.md").read_text() == before  # untouched by the failed build
    assert not [p for p in workdir.iterdir() if p.name.startswith(".cli-report")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchid"], "no sweep, study, spec file or name 'nosuchid'"),
        (["GRID", "--baseline", "optim.lr=0.1"], "not a swept parameter"),
        (["GRID", "--axes", "model.nope"], "not a config parameter"),
        (["GRID", "--wandb-report"], "needs a W&B sweep"),
        (["missing-spec.yaml"], "cannot read"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workdir: Path, grid: str, args: list[str], message: str):
    out = workdir / "bad-report"
    args = [grid if a == "GRID" else a for a in args]
    result = _cli(workdir, *args, "-o", str(out))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_sweep_without_finished_runs_is_refused(workdir: Path, backend: LocalBackend):
    from sweeper.spec.compile import compile_stage

    loaded = load_spec(workdir / "report-grid.yaml")
    config = compile_stage(loaded.spec, 0, file=loaded.path)
    sweep_id = backend.create_sweep(
        config, trainer="xor", spec=loaded.spec.model_dump(mode="json"), spec_hash=loaded.hash
    )
    claim = backend.claim(sweep_id, agent="test")
    assert claim is not None
    backend.finish(claim.run_id, claim.attempt, "failed", exit_code=1, error="boom")
    out = workdir / "failed-report"
    result = _cli(workdir, sweep_id, "-o", str(out))
    assert result.exit_code == 2
    assert "no finished run" in result.output and "1 failed" in result.output
    assert not out.exists()


def test_axes_kinds():
    assert param_kind({"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}) == "log"
    assert param_kind({"values": [1e-4, 1e-3, 1e-2]}) == "log"
    assert param_kind({"values": [8, 16, 32]}) == "numeric"
    assert param_kind({"values": [["flip"], ["flip", "erase"]]}) == "categorical"
    axis = make_axis("optim.lr", pd.Series([1e-4, 1e-2, 1e-3]), "log")
    assert axis.positions.tolist() == pytest.approx([-4, -2, -3])
    assert axis.labels == ["0.0001", "0.001", "0.01"]
    axis = make_axis("model.arch", pd.Series(["b", "a", "b"]), "categorical", ["b", "a"])
    assert axis.positions.tolist() == [0, 1, 0] and axis.labels == ["b", "a"]
    # a stage that did not search aug.preset ran with its null default
    axis = make_axis("aug.preset", pd.Series([None, "none", "hflip"]), "categorical")
    assert axis.positions.tolist() == [2, 1, 0] and axis.labels == ["hflip", "none", "unset"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI must `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow  # headless Chromium draws the page (a browser process: 5-15 s)
def test_parallel_coordinates_render_in_chromium(grid_report: Path, tmp_path: Path):
    from PIL import Image

    url = (grid_report / "report.html").as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert 'class="parcoords"' in dom
    assert dom.count('class="axis-title"') >= 3  # two parameters and the metric
    assert dom.count("gl-canvas") >= 3  # plotly drew the lines with WebGL
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1280,1000", f"--screenshot={shot}", url)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    plot = pixels[200:700, 40:1100]  # the first figure, left of its colour bar
    r, g, b = plot[..., 0], plot[..., 1], plot[..., 2]
    saturated = plot.max(axis=2) - plot.min(axis=2) > 60
    viridis = saturated & (g > r) & (g > b)  # line colours; page text and tables are grey
    assert viridis.sum() > 500, f"only {viridis.sum()} coloured line pixels in the plot area"

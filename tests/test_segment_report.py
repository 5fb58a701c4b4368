"""The picture users asked for: `sweeps/xray-unet.yaml --smoke` run end to end, then its report
(parallel coordinates over batch size, epochs, learning rate and optimizer, per-parameter
tables) drawn by a real headless Chromium, as tests/test_report.py does for the xor sweep."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper.agent.launch import AgentSettings, launch
from sweeper.backends.local import LocalBackend
from sweeper.report.build import build_report
from sweeper.report.load import report_data
from sweeper.spec.load import load_spec

SPEC = Path(__file__).parents[1] / "sweeps" / "xray-unet.yaml"
PARAMS = ["data.batch_size", "epochs", "optim.lr", "optim.name"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# The smoke sweep trains three U-Nets through real agents (~20 s on 2 cores), then Chromium
# draws the report: end to end on purpose, so not in the `-m "not slow"` loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("xray-report")
    cwd = os.getcwd()
    os.chdir(workdir)  # the smoke spec generates its data under ./.sweeper/data
    try:
        backend = LocalBackend(workdir / ".sweeper" / "sweeper.db")
        (result,) = launch(
            load_spec(SPEC, smoke=True), backend, agents=2, settings=AgentSettings("disabled")
        )
        runs = backend.runs(result.sweep.id)
        assert (runs["state"] == "finished").sum() == 3, runs[["state", "error"]]
        for run_id in runs["run_id"]:
            assert len(list((backend.run_dir(run_id) / "overlays").glob("val_*.png"))) == 2
        out = build_report(report_data(backend, result.sweep.id), workdir / "report")
        backend.close()
    finally:
        os.chdir(cwd)
    return out


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


def test_per_parameter_tables(report: Path) -> None:
    runs = pd.read_csv(report / "runs.csv")
    assert len(runs) == 3
    for param in PARAMS:
        table = pd.read_csv(report / f"param_{param}.csv")
        assert table["n"].sum() == 3 and "val_loss" in table.columns


def test_parallel_coordinates_over_the_four_parameters_in_chromium(
    report: Path, tmp_path: Path
) -> None:
    from PIL import Image

    url = (report / "report.html").as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert 'class="parcoords"' in dom and dom.count("gl-canvas") >= 3
    titles = re.findall(r'class="axis-title"[^>]*>([^<]+)<', dom)
    assert set(PARAMS) <= set(titles) and "val_loss" in titles, titles
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1280,1000", f"--screenshot={shot}", url)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    plot = pixels[200:700, 40:1100]  # the first figure, left of its colour bar
    coloured = (plot.max(axis=2) - plot.min(axis=2) > 60).sum()  # text and axes are grey
    assert coloured > 200, f"only {coloured} coloured line pixels in the plot area"

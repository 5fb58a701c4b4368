"""Issue 19 §5/§7: summary tables say only what the runs support, numbers rounded to what tells
them apart (full values in CSV), report Δ tables name their baseline, LaTeX export, and the
small commands (`generate`, `augment`) say what they did."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import probe_spec, write_spec
from helpers import fill_study, probe_history, xor_history
from helpers import sweeper as child_sweeper

from sweeper.backends.local import LocalBackend
from sweeper.report.curves import curve_stats, metric_range
from sweeper.report.tables import summary_title
from sweeper.report.values import distinct_labels
from sweeper.spec.load import load_spec

LONG = "a-sweep-name-long-enough-to-push-the-summary-title-past-the-edge-of-eighty-columns"


def sweeper(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a child process on an 80-column terminal."""
    return child_sweeper(*args, cwd=cwd, env={"COLUMNS": "80"})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.010536, 0.0205, 0.1], ["0.0105", "0.0205", "0.1"]),  # 3 digits tell them apart
        ([0.1, 0.1001, 0.1002], ["0.1", "0.1001", "0.1002"]),  # 4 needed
        ([1e-4, 3.16227766e-4, 1e-3], ["0.0001", "0.000316", "0.001"]),
        ([0.1 + 1e-15, 0.1], ["0.100000000000001", "0.1"]),  # as many as it takes
        ([1, 2, 30], ["1", "2", "30"]),  # ints as they are
        (["relu", None, 2.5, [0.5, 1]], ["relu", "None", "2.5", "[0.5, 1]"]),
        ([float("nan"), 0.123456], ["nan", "0.123"]),
    ],
)
def test_distinct_labels_use_the_fewest_digits_that_keep_values_apart(values, expected):
    assert distinct_labels(values) == expected


def test_summary_title_fits_eighty_columns_and_names_what_it_shows():
    short = summary_title("quickstart", "val_acc", "maximize", repeats=True)
    assert short == "quickstart: val_acc (maximize), mean ± std over seeds"
    assert summary_title("q", "val_acc", "maximize", repeats=False) == "q: val_acc (maximize)"
    long = summary_title(LONG, "val_acc", "maximize", repeats=True)
    assert len(long) == 80 and long.endswith("…: val_acc (maximize), mean ± std over seeds")


def _launch(tmp_path: Path, spec: dict) -> subprocess.CompletedProcess[str]:
    """`launch` of a spec whose trials were written through the store's API: it finds the
    sweep complete and prints its closing table, as after running it."""
    path = write_spec(tmp_path, spec)
    store = tmp_path / "s.db"
    backend = LocalBackend(store)
    try:
        fill_study(backend, load_spec(path), probe_history)
    finally:
        backend.close()
    result = sweeper("launch", str(path), "--store", str(store), "--wandb", "disabled")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow  # sweeper launch in a child process (on an 80-column terminal)
def test_launch_table_without_repeats_has_no_spread_and_rounded_values(tmp_path: Path):
    spec = probe_spec(name=LONG, base={"epochs": 1}, search={"x": [0.010536, 0.0205, 0.1]})
    out = _launch(tmp_path, spec).stdout
    lines = out.splitlines()
    (title,) = [line for line in lines if line.endswith(": loss (minimize)")]
    assert len(title) <= 80 and "…" in title
    assert "±" not in out and "over seeds" not in out
    table = "\n".join(line for line in lines if line.startswith("│"))
    assert "0.0105" in table and "0.010536" not in table and "0.0205" in table
    assert all(len(line) <= 80 for line in lines), out


@pytest.mark.slow  # sweeper launch in a child process (on an 80-column terminal)
def test_launch_table_with_repeats_shows_mean_std_and_n(tmp_path: Path):
    spec = probe_spec(base={"epochs": 1}, search={"x": [0.0, 2.0]}, repeats=2)
    out = _launch(tmp_path, spec).stdout
    assert "probe: loss (minimize), mean ± std over seeds" in out
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert "loss mean ± std" in header and " n " in header


PROGRAM = """
import wandb
run = wandb.init()
wandb.log({"acc": run.config["q"]})
run.finish()
"""


@pytest.mark.slow
def test_an_unnamed_plain_sweep_is_not_named_twice(tmp_path: Path):
    (tmp_path / "train.py").write_text(PROGRAM)
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"q": {"values": [0.25, 0.5]}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    result = sweeper(
        "launch", "sweep.yaml", "--store", "s.db", "--wandb", "offline", "--agents", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("sweep ")]
    sweep_id = line.split()[1]
    assert line.count(sweep_id) == 1 and line.startswith(f"sweep {sweep_id} (created"), line


@pytest.mark.parametrize(
    ("key", "values", "low", "high"),
    [
        ("val_acc", [1.0, 1.0, 0.7], 0.0, 1.0),  # mean 0.9 + std 0.17 would pass 1
        ("val_dice", [0.0, 0.0, 0.3], 0.0, 1.0),  # mean 0.1 - std 0.17 would pass 0
        ("top1_acc_pct", [100.0, 100.0, 70.0], 0.0, 100.0),  # a percentage
        ("val_loss", [0.0, 0.0, 0.3], 0.0, None),
        ("reward", [-1.0, 1.0, 0.0], None, None),  # nothing known: drawn as computed
        ("val_acc", [-0.5, 0.5, 0.0], None, None),  # the values say it is no fraction
    ],
)
def test_std_bands_are_clipped_to_the_metric_range(key, values, low, high):
    history = pd.DataFrame({"run_id": ["a", "b", "c"], "_step": [0, 0, 0], key: values})
    stats = curve_stats(history, pd.Series({"a": "g", "b": "g", "c": "g"}), key)
    (row,) = stats.to_dict("records")
    spread = pd.Series(values).std()
    assert row["low"] == (
        max(low, row["mean"] - spread) if low is not None else row["mean"] - spread
    )
    assert row["high"] == (
        min(high, row["mean"] + spread) if high is not None else row["mean"] + spread
    )
    assert (metric_range(key, history[key])[2] != "") == (low is not None)


REPORTED = {
    "name": "report_tables",
    "trainer": "xor",
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "base": {"epochs": 1, "data": {"n_train": 64, "n_test": 32}, "optim": {"lr": 0.010536}},
    "search": {"optim.lr": [0.010536, 0.0205, 0.1]},
    "repeats": 2,
}


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of REPORTED's runs, written through the store's API."""
    from sweeper.report.build import build_report
    from sweeper.report.load import report_data

    folder = tmp_path_factory.mktemp("tables")
    backend = LocalBackend(folder / "s.db")
    try:
        (sweep_id,) = fill_study(backend, load_spec(write_spec(folder, REPORTED)), xor_history)
        return build_report(report_data(backend, sweep_id), folder / "report")
    finally:
        backend.close()


def test_report_tables_state_baseline_round_values_and_list_seeds(reported: Path):
    markdown = (reported / "report.md").read_text()
    # the Δ table names its baseline and where it comes from (the spec's base)
    assert "Δ from optim.lr=0.0105 (the spec's base)" in markdown
    assert "difference from the baseline optim.lr=0.0105 (the spec's base)" in markdown
    tables = "\n".join(line for line in markdown.splitlines() if line.startswith("|"))
    assert "0.010536" not in tables and "| 0.0205 |" in tables and "| 0.0105 |" in tables
    runs = pd.read_csv(reported / "runs.csv")
    assert sorted(runs["config.optim.lr"].unique().tolist()) == [0.010536, 0.0205, 0.1]  # full
    header = next(line for line in markdown.splitlines() if line.startswith("| run | state"))
    assert " seed |" in header


def test_one_epoch_curves_show_markers_and_clipped_bands(reported: Path, tmp_path: Path):
    html = (reported / "report.html").read_text()
    assert '"mode":"markers"' in html  # one epoch: the mean is a point, not an empty line
    assert '"dtick":1' in html  # whole epochs on the axis, not -0.045..0.045
    assert "val_acc is a fraction by its name: bands clipped to [0, 1]" in html
    assert "val_loss is never negative by its name: bands clipped at 0" in html


@pytest.mark.slow  # headless Chromium draws the page (a browser process: 5-15 s)
def test_report_tables_fit_the_page_in_chromium(reported: Path, tmp_path: Path):
    from test_report import _chromium

    dom = _chromium(tmp_path, "--dump-dom", (reported / "report.html").as_uri()).stdout
    tables = re.findall(r"<div class=\"scroll\"><table>", dom)
    assert len(tables) >= 3  # every table scrolls inside its own box, not the page
    assert "<th>seed</th>" in dom


@pytest.mark.slow  # sweeper report in a child process (and pdflatex when present)
def test_latex_export_holds_every_table_escaped(reported: Path, tmp_path: Path):
    runs = pd.read_csv(reported / "runs.csv")
    out = tmp_path / "tex"
    result = sweeper(
        "report", runs["sweep_id"].iloc[0], "--store", str(reported.parent / "s.db"),
        "--format", "latex", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "".join(result.stdout.split()) == f"wrote{out.resolve() / 'report.tex'}"
    tex = (out / "report.tex").read_text()
    assert r"\section*{report\_tables}" in tex
    markdown = (out / "report.md").read_text()
    tables = [line for line in markdown.splitlines() if line.startswith("**")]
    assert tex.count(r"\begin{tabular}") == len(tables) >= 4
    assert tex.count("{") == tex.count("}")  # no brace of the user's text left unescaped
    assert "±" not in tex and "Δ" not in tex and r"$\pm$" in tex and r"$\Delta$" in tex
    if shutil.which("pdflatex"):
        subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
            cwd=out, check=True, capture_output=True, timeout=120,
        )  # fmt: skip


SPECIALS = "a_b 50% & #1 {$x^2$} ~\\ ± Δ"
ESCAPED = (
    r"a\_b 50\% \& \#1 \{\$x\textasciicircum{}2\$\} \textasciitilde{}\textbackslash{}"
    r" $\pm$ $\Delta$"
)


def test_latex_escapes_every_special_character_in_titles_headers_cells_and_notes():
    from sweeper.report.render import Table, latex

    shown = pd.DataFrame({SPECIALS: [SPECIALS, "0.5"], "n": ["1", "2"]})
    table = Table(SPECIALS, shown, shown, "t.csv", {(0, SPECIALS)}, note=SPECIALS)
    tex = latex(SPECIALS, [table])
    assert tex.count(ESCAPED) == 5  # title, table title, header, bold cell, note
    assert rf"\textbf{{{ESCAPED}}}" in tex and "±" not in tex
    body = tex.replace(ESCAPED, "")
    assert not re.search(r"(?<!\\)[_%#&$^~]", body.replace(r"\\", "").replace(" & ", " "))


@pytest.mark.slow  # sweeper generate in a child process per data set
@pytest.mark.parametrize(
    ("name", "folders"),
    [
        ("shapes", {"train/circle", "train/square", "test/circle", "test/square"}),
        ("veri", {"image_train", "image_query", "image_test"}),
        ("xray", {"images", "masks"}),
    ],
)
def test_generate_says_what_it_wrote_and_what_to_run_next(tmp_path: Path, name, folders):
    result = sweeper("generate", name, "my data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = {line.split("/  ")[0].strip(): int(line.split()[-2]) for line in lines[1:-1]}
    assert set(listed) == folders
    on_disk = {f: len(list((tmp_path / "my data" / f).iterdir())) for f in folders}
    assert listed == on_disk
    assert lines[0] == f"wrote {sum(on_disk.values())} files into my data:"
    command = lines[-1].removeprefix("next: ")
    assert lines[-1].startswith("next: sweeper ") and "data.root='my data'" in command
    if name == "shapes":  # the next command works as printed (a shell would split it so)
        import shlex

        step = sweeper(*shlex.split(command)[1:], "-o", "grid.png", cwd=tmp_path)
        assert step.returncode == 0, step.stderr
        assert (tmp_path / "grid.png").stat().st_size > 0


@pytest.mark.parametrize("steps", [3, 5, 7, 11, 21, 41])
def test_landscape_contour_labels_do_not_pile_up(steps: int):
    """Measured on the drawn figure: no two level labels overlap, and a coarse grid gets few
    (every one of 20 levels was labelled before: 25-27 labels, overlapping at 3, 7, 11 steps)."""
    import itertools

    import matplotlib.pyplot as plt
    import numpy as np

    from sweeper.analysis.plots import draw_contour

    axis = np.linspace(-1, 1, steps)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    loss = 0.1 + a**2 + 2 * b**2 + 0.3 * a * b  # a tilted bowl, as around trained weights
    fig, ax = plt.subplots(figsize=(6, 5))
    try:
        texts = draw_contour(ax, axis, axis, loss)
        fig.canvas.draw()
        boxes = [t.get_window_extent() for t in texts]
    finally:
        plt.close(fig)
    assert 1 <= len(texts) <= max(3, steps // 2)
    assert not [(x, y) for x, y in itertools.combinations(boxes, 2) if x.overlaps(y)]

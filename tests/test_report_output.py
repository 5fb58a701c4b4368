"""What `sweeper report` (and every command that writes a folder or a CSV) may touch, and what
hostile names and values become in its files: nothing deleted that sweeper did not make, no
formula a spreadsheet runs, no markup a Markdown viewer or the HTML page renders, no control
characters."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.output import MARKER, OutputFolder, csv_text
from sweeper.report.build import build_report
from sweeper.report.load import report_data

LINK = '<a href="http://x">click</a>'
BOLD = "<b>bold</b>"
NAMES = [
    LINK,
    BOLD,
    '=HYPERLINK("http://x","click")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "two\nlines | pipe",
    "nul\x00 del\x7f c1\x85 esc\x1b[31mred",
    "*star* _under_ `tick` [text](http://x) & \\ # ~ $x$",
    r"$\frac$",  # matplotlib's mathtext cannot parse it: the PNGs must still be drawn
]
"""A categorical parameter's values: HTML, formulas, Markdown, control characters."""
PARAM = "<i>p</i>"
"""A numeric parameter with a hostile name; its values -0.5 and 1.5 must stay numbers."""
LOSS = "<b>v</b>_loss"
ERROR = '=cmd|" /C calc"!A0\n<b>boom</b>\x00'
CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
"""Control characters as bytes in UTF-8 (C0 but tab and newline, DEL, C1)."""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalBackend, str]]:
    """A plain W&B sweep over hostile values, its runs written through the store's API."""
    folder = tmp_path_factory.mktemp("hostile")
    backend = LocalBackend(folder / ".sweeper" / "sweeper.db")
    config = {
        "name": "<script>alert(1)</script>\nsweep",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"name": {"values": NAMES}, PARAM: {"values": [-0.5, 1.5]}},
    }
    sweep_id = backend.create_sweep(config, trainer="", spec={}, spec_hash="0" * 64)
    for i in range(2 * len(NAMES)):
        claim = backend.claim(sweep_id, agent="test")
        assert claim is not None
        for step in range(3):
            backend.log(claim.run_id, claim.attempt, step, {"acc": i + step, LOSS: 1 / (1 + i)})
        if i == 2 * len(NAMES) - 1:  # the last grid point fails, with a hostile error
            backend.finish(claim.run_id, claim.attempt, "failed", exit_code=1, error=ERROR)
        else:
            summary = {"acc": i + 2, LOSS: 1 / (1 + i)}
            backend.finish(claim.run_id, claim.attempt, "finished", summary)
    yield backend, sweep_id
    backend.close()


@pytest.fixture(scope="module")
def report(hostile: tuple[LocalBackend, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    backend, sweep_id = hostile
    return build_report(report_data(backend, sweep_id), tmp_path_factory.mktemp("r") / "report")


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under a folder with its bytes (None for folders and for the store's files,
    which SQLite's shared memory changes on every read)."""
    return {
        str(p.relative_to(folder)): (
            p.read_bytes() if p.is_file() and not p.name.startswith("sweeper.db") else None
        )
        for p in folder.rglob("*")
    }


# output folders --------------------------------------------------------------------------------


def _refused(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def test_report_into_the_current_folder_deletes_nothing(
    hostile: tuple[LocalBackend, str], monkeypatch: pytest.MonkeyPatch
):
    backend, sweep_id = hostile
    cwd = backend.root.parent
    (cwd / "notes.txt").write_text("mine")
    before = _tree(cwd)
    monkeypatch.chdir(cwd)
    _refused(_cli("report", sweep_id, "-o", "."), "not empty", "not written by sweeper report")
    assert _tree(cwd) == before  # store, .sweeper/ and the user's file untouched, nothing added


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_refuses_a_folder_it_did_not_make(
    hostile: tuple[LocalBackend, str], tmp_path: Path, fmt: str
):
    backend, sweep_id = hostile
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work")
    (precious / "sub" / "runs.csv").write_text("mine")
    before = _tree(tmp_path)
    result = _cli(
        "report", sweep_id, "-o", str(precious), "--format", fmt, "--store", str(backend.path)
    )
    _refused(result, str(precious), "not empty")
    assert _tree(tmp_path) == before


def test_report_refuses_a_file_and_the_root_folder(hostile: tuple[LocalBackend, str], tmp_path):
    backend, sweep_id = hostile
    target = tmp_path / "a-file"
    target.write_text("mine")
    _refused(
        _cli("report", sweep_id, "-o", str(target), "--store", str(backend.path)), "not a folder"
    )
    assert target.read_text() == "mine"
    root = set(os.listdir("/"))
    _refused(_cli("report", sweep_id, "-o", "/", "--store", str(backend.path)), "not empty")
    assert set(os.listdir("/")) == root  # no `/..old.XXXX` or staging folder left behind


def test_report_writes_into_an_empty_or_new_folder(hostile: tuple[LocalBackend, str], tmp_path):
    backend, sweep_id = hostile
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        store = ("--store", str(backend.path))
        result = _cli("report", sweep_id, "-o", str(out), "--format", "md", *store)
        assert result.exit_code == 0, result.output
        listed = json.loads((out / MARKER).read_text())
        assert listed["written_by"] == "sweeper report"
        files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert set(listed["files"]) == files - {MARKER}
        assert {"report.md", "runs.csv", "parallel_coordinates.png"} <= files


def test_report_rewrites_its_own_folder_and_removes_only_its_stale_files(
    hostile: tuple[LocalBackend, str], tmp_path: Path
):
    backend, sweep_id = hostile
    out = tmp_path / "out"
    store = ("--store", str(backend.path))
    assert _cli("report", sweep_id, "-o", str(out), *store).exit_code == 0
    assert (out / "report.html").exists()
    (out / "my-notes.md").write_text("mine")  # the user's, added later: kept
    (out / "runs.csv").write_text("stale")  # sweeper's: replaced
    result = _cli("report", sweep_id, "-o", str(out), "--format", "md", *store)
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()  # sweeper's, not written this time: removed
    assert (out / "my-notes.md").read_text() == "mine"
    assert (out / "runs.csv").read_text() != "stale"
    assert "report.html" not in json.loads((out / MARKER).read_text())["files"]
    assert not [p for p in out.iterdir() if p.name.startswith(".sweeper-staging")]
    # A file of sweeper's name that the user put there is theirs: refused, not replaced.
    (out / "report.html").write_text("the user's page")
    _refused(_cli("report", sweep_id, "-o", str(out), *store), "report.html", "not replacing")
    assert (out / "report.html").read_text() == "the user's page"
    assert (out / "my-notes.md").read_text() == "mine"


def test_a_marker_naming_paths_outside_or_another_command_is_refused(
    hostile: tuple[LocalBackend, str], tmp_path: Path
):
    backend, sweep_id = hostile
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    for files, writer, words in [
        (["../victim.txt"], "sweeper report", ["outside the folder"]),
        ([str(victim)], "sweeper report", ["outside the folder"]),
        (["images/x.png"], "sweeper generate xray", ["written by sweeper generate xray"]),
    ]:
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        (out / MARKER).write_text(json.dumps({"written_by": writer, "files": files}))
        _refused(_cli("report", sweep_id, "-o", str(out), "--store", str(backend.path)), *words)
        assert victim.read_text() == "mine"
    (out / MARKER).write_text("{not json")
    _refused(_cli("report", sweep_id, "-o", str(out), "--store", str(backend.path)), "marker")


def test_a_failed_fill_leaves_the_folder_as_it_was(tmp_path: Path):
    ours = tmp_path / "ours"
    with OutputFolder(ours, "sweeper report") as staging:
        (staging / "a.csv").write_text("1")
    before = _tree(tmp_path)
    with pytest.raises(ZeroDivisionError), OutputFolder(ours, "sweeper report") as staging:
        (staging / "a.csv").write_text("2")
        (staging / "b.csv").write_text("2")
        1 / 0  # noqa: B018  (a build that fails half-way)
    assert _tree(tmp_path) == before
    new = tmp_path / "new" / "deeper"
    with pytest.raises(ZeroDivisionError), OutputFolder(new, "sweeper report") as staging:
        1 / 0  # noqa: B018
    assert not (tmp_path / "new").exists()  # the folders it made are gone again


@pytest.mark.slow
def test_a_report_killed_mid_build_is_rebuilt_in_the_same_folder(
    hostile: tuple[LocalBackend, str], tmp_path: Path
):
    """SIGKILL leaves the staging folder (no cleanup runs); it does not make the folder the
    user's, and the next report writes there."""
    backend, sweep_id = hostile
    out = tmp_path / "out"
    args = ["report", sweep_id, "-o", str(out), "--store", str(backend.path)]
    child = subprocess.Popen([sys.executable, "-m", "sweeper", *args])
    try:
        wait_for(lambda: any(out.glob(".sweeper-staging-*/*.csv")), 120, "a staged CSV")
    finally:
        child.kill()
        child.wait()
    assert not (out / MARKER).exists() and not (out / "report.md").exists()
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    assert (out / "report.md").exists() and (out / MARKER).exists()


def test_generate_refuses_a_folder_it_did_not_make(tmp_path: Path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "xray_000.png").write_bytes(b"a real x-ray")
    before = _tree(tmp_path)
    _refused(_cli("generate", "xray", str(data)), "not empty", "sweeper generate xray")
    assert _tree(tmp_path) == before
    fresh = tmp_path / "fresh"
    assert _cli("generate", "shapes", str(fresh)).exit_code == 0
    assert (fresh / "train" / "circle" / "000.png").exists()
    assert _cli("generate", "shapes", str(fresh), "--seed", "1").exit_code == 0  # its own
    _refused(_cli("generate", "xray", str(fresh)), "written by sweeper generate shapes")


def test_landscape_refuses_an_out_folder_it_did_not_make(tmp_path: Path, backend: LocalBackend):
    """Refused before the run is even looked up: no minutes of scanning to be thrown away."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "curve.csv").write_text("mine")
    before = _tree(tmp_path / "precious")
    result = _cli("landscape", "norun", "--out", str(out), "--store", str(backend.path))
    _refused(result, "not empty", "sweeper landscape")
    assert _tree(tmp_path / "precious") == before


# CSV -------------------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _formula_free(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for key, value in row.items():
            for text in (key, value):
                if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    assert re.fullmatch(r"-?\d+(\.\d+)?(e[+-]\d+)?", text), (key, text)


def test_csv_text_cells_cannot_run_as_formulas(report: Path):
    runs = _rows(report / "runs.csv")
    _formula_free(runs)
    names = {r["config.name"] for r in runs if r["state"] == "finished"}
    assert '\'=HYPERLINK("http://x","click")' in names
    assert {"'+SUM(1,2)", "'-2+3", "'@SUM(A1)", "' TAB", "'CR"} <= names
    assert "two lines | pipe" in names and LINK in names  # text, not a formula: kept
    assert {r[f"config.{PARAM}"] for r in runs if r["state"] == "finished"} == {"-0.5", "1.5"}
    assert any(r["error"].startswith("'=cmd") for r in runs)
    param_files = sorted(report.glob("param_*.csv"))
    assert len(param_files) == 2
    for path in [*param_files, *report.glob("pivot_*.csv"), *report.glob("*.csv")]:
        _formula_free(_rows(path))
    values = {r["value"] for path in param_files for r in _rows(path)}
    assert {"-0.5", "1.5", '\'=HYPERLINK("http://x","click")'} <= values


def test_runs_csv_export_is_formula_free(hostile: tuple[LocalBackend, str], tmp_path: Path):
    backend, sweep_id = hostile
    out = tmp_path / "runs.csv"
    result = _cli("runs", sweep_id, "--csv", str(out), "--store", str(backend.path))
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    _formula_free(rows)
    assert {"'@SUM(A1)", "'-2+3"} <= {r["config.name"] for r in rows}
    assert {r[f"config.{PARAM}"] for r in rows} == {"-0.5", "1.5"}
    assert not CONTROLS.search(out.read_bytes())


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("=1+1", "'=1+1"),
        ("-0.5", "-0.5"),
        ("+1e-3", "+1e-3"),
        ("-1..0", "'-1..0"),
        ("-inf", "'-inf"),
        (" =1", "' =1"),
        ("\t=1", "' =1"),
        ("a\x00b\nc", "ab c"),
        ("plain", "plain"),
    ],
)
def test_csv_text(given: str, written: str):
    assert csv_text(given) == written


# Markdown, HTML, control characters --------------------------------------------------------


def test_no_control_characters_in_any_file(report: Path):
    from plotly.offline import get_plotlyjs

    # plotly.js itself holds two (PNG and PSD magic numbers in string literals): not ours
    bundle = get_plotlyjs().encode()
    for path in report.iterdir():
        if path.suffix in (".md", ".csv", ".html", ".json") or path.name == MARKER:
            found = CONTROLS.search(path.read_bytes().replace(bundle, b""))
            assert found is None, (path.name, found)


def test_markdown_tables_hold_hostile_text_as_text(report: Path):
    md = (report / "report.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert '<a href="http' not in html and "<b>" not in html and "<i>" not in html
    assert "<script" not in html and "<del>" not in html
    assert "<em>" not in html.split("<h2>Parallel")[1].split("<em>Importance")[0]
    assert "<code>" not in html
    # every row of every table has as many cells as its header
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        head = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S):
            assert len(re.findall(r"<td", row)) == head, row
    assert "&lt;a href=&quot;http://x&quot;&gt;click&lt;/a&gt;" in html
    assert "two lines | pipe" in html
    assert "*star* _under_ `tick` [text](http://x) &amp; \\ # ~ $x$" in html


def _plotly_figures(page: str) -> list[dict[str, Any]]:
    """The data and layout of every `Plotly.newPlot(id, data, layout, config)` in a page."""
    decoder = json.JSONDecoder()
    figures = []
    for call in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", page):
        data, end = decoder.raw_decode(page, call.end())
        start = re.compile(r",\s*").match(page, end)
        assert start is not None
        layout, _ = decoder.raw_decode(page, start.end())
        figures.append({"data": data, "layout": layout})
    return figures


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)
    elif isinstance(node, str):
        yield node


def test_plotly_text_is_escaped(report: Path):
    figures = _plotly_figures((report / "report.html").read_text())
    assert len(figures) >= 3  # parallel coordinates and two curve plots
    texts = [t for figure in figures for t in _texts(figure)]
    assert not [t for t in texts if "<" in t or ">" in t], "raw markup in a plotly figure"
    names = [t["name"] for f in figures for t in f["data"] if t.get("name")]
    assert 'name=&lt;a href="http://x"&gt;click&lt;/a&gt;' in names
    assert f"{'&lt;i&gt;p&lt;/i&gt;'}=-0.5" in names


@pytest.mark.slow  # headless Chromium draws the page (a browser process: 5-15 s)
def test_legend_renders_no_link_and_no_bold_in_chromium(report: Path, tmp_path: Path):
    from test_report import _chromium

    dom = _chromium(tmp_path, "--dump-dom", (report / "report.html").as_uri()).stdout
    legend = re.findall(r'<text[^>]*class="legendtext"[^>]*>(.*?)</text>', dom, re.S)
    assert legend, "no legend was rendered"
    shown = " ".join(legend)
    assert '&lt;a href="http://x"&gt;click&lt;/a&gt;' in shown  # the value, as text
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown
    assert "<a" not in shown and "font-weight:bold" not in shown and "<tspan" not in shown
    assert not re.search(r'<a[^>]*href="http://x"', dom)  # no live link anywhere on the page


def test_output_folder_refuses_a_non_empty_folder_without_a_marker(tmp_path: Path):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(SweeperError, match="not empty"):
        OutputFolder(tmp_path, "sweeper report")


def test_latex_export_keeps_hostile_text_literal(hostile: tuple[LocalBackend, str], tmp_path: Path):
    """Every parameter value (Markdown, `$\\frac$`, `& \\ # ~ $x$`, control characters) lands in
    report.tex as text: no LaTeX special character of the user's survives unescaped."""
    import re

    backend, sweep_id = hostile
    out = build_report(report_data(backend, sweep_id), tmp_path / "tex", "latex")
    tex = (out / "report.tex").read_text()
    assert "\\x00" not in tex and "\x1b" not in tex
    assert r"\$\textbackslash{}frac\$" in tex  # r"$\frac$", as text
    assert r"\_under\_" in tex and r"\& \textbackslash{} \# \textasciitilde{} \$x\$" in tex
    body = tex.split(r"\begin{document}")[1]
    # what is left once the commands sweeper writes are removed: no special character at all
    ours = (
        r"\\(textbackslash|textasciitilde|textasciicircum|textbf|dots|begin|end|toprule|"
        r"midrule|bottomrule|centering|footnotesize|par|smallskip|small|section\*)(\{\})?|"
        r"\\[&%$#_{}]|\$\\(pm|Delta)\$|\{(table|tabular)\}(\[htbp\])?|\{l?r*\}| & |\\\\"
    )
    left = re.sub(ours, "", body)
    assert not re.search(r"[\\&%$#_^~]", left), left[:2000]
    assert left.count("{") == left.count("}")

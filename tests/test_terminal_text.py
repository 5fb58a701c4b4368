"""User text in the terminal, and input that passes `validate` but would fail later (issue 24).

Names, values and a program's output may hold rich markup (`[/bold]`) or terminal control
sequences (`\\x1b[2J`): every command prints them literally and without the sequences. What W&B
would refuse later (a project with `/`, a NUL byte, a 5,000-character name, deep nesting) is
refused by `validate` and `launch` in one line, exit 2, before anything is written.
Real parts: the real CLI (in-process through typer's runner, and as subprocesses), real agents
and a real wandb program.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from conftest import probe_spec, write_spec
from helpers import sweeper
from typer.testing import CliRunner

from sweeper.cli import app

CLEAR = "\x1b[2J"


def test_help_shows_every_default() -> None:
    """Each `[default: …]` written in an option's help is printed (rich markup ate them)."""
    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        result = CliRunner().invoke(app, [name, "--help"], terminal_width=100)
        assert result.exit_code == 0, result.output
        shown = "".join(result.output.split())
        for param in command.params:
            for default in re.findall(r"\[default: [^\]]*\]", getattr(param, "help", "") or ""):
                assert "".join(default.split()) in shown, (name, param.name, result.output)
                checked += 1
    assert checked >= 18
    launch = CliRunner().invoke(app, ["launch", "--help"], terminal_width=100).output
    assert "Agent processes [default: one per GPU, else 1]." in launch


PROGRAM = """
import sys, wandb
run = wandb.init()
value = run.config["p"]
print("[/bold]output line \\x1b[2J", value, flush=True)
if value == "boom":
    sys.exit("\\x1b[31m[/bold]boom[link=http://x]y[/link]")
wandb.log({"[link=http://x]y[/link]": 1.0 if value == "[/bold]v" else 0.5})
run.finish()
"""


def _no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text, repr(text)


@pytest.mark.slow
def test_markup_and_escapes_in_a_plain_sweep_print_literally(tmp_path: Path) -> None:
    """Sweep and metric names, values and the program's output line: validate,
    launch, status and runs succeed and print them as written, control sequences dropped."""
    (tmp_path / "train.py").write_text(PROGRAM)
    sweep = {
        "name": "[/bold]sweep[red]",
        "project": "[bold]proj",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "[link=http://x]y[/link]", "goal": "maximize"},
        "parameters": {"p": {"values": ["[/bold]v", f"a{CLEAR}b", "boom"]}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    store = str(tmp_path / "store.db")

    result = sweeper("validate", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok [/bold]sweep[red]: grid, up to 3 trials"), result.stdout

    result = sweeper("launch", str(path), "--agents", "1", "--wandb", "disabled", "--store", store,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    _no_controls(result.stdout + result.stderr)
    assert "[/bold]sweep[red]" in result.stdout
    assert "[/bold]v" in result.stdout and "ab" in result.stdout  # the table's cells
    assert "[link=http://x]y[/link]" in result.stdout
    assert "1 of 3 runs failed" in result.stderr

    with sqlite3.connect(store) as db:
        (sweep_id,) = db.execute("SELECT id FROM sweeps").fetchone()
        states = sorted(state for (state,) in db.execute("SELECT state FROM runs"))
    assert states == ["failed", "finished", "finished"]
    result = sweeper("status", sweep_id, "--store", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _no_controls(result.stdout)
    assert f"sweep {sweep_id} [/bold]sweep[red] [finished]" in result.stdout, result.stdout
    assert "[link=http://x]y[/link] = 1.0000" in result.stdout
    result = sweeper("runs", sweep_id, "--store", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _no_controls(result.stdout)
    assert "[/bold]v" in result.stdout and "ab" in result.stdout


@pytest.mark.slow
def test_markup_in_stage_and_project_names_prints_literally(tmp_path: Path) -> None:
    """A staged spec: stage names reach the progress bar, the sweep lines and the study
    table; the project reaches the store's records."""
    spec = probe_spec(
        project="[bold]proj",
        base={"epochs": 1},
        search=None,
        stages=[
            {"name": "[/bold]first", "search": {"x": [0.0]}},
            {"name": f"[red]second{CLEAR}", "search": {"epochs": [1]}},
        ],
    )
    del spec["search"]
    path = write_spec(tmp_path, spec)
    store = str(tmp_path / "store.db")
    result = sweeper("launch", str(path), "--agents", "1", "--wandb", "disabled", "--store", store,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    _no_controls(result.stdout + result.stderr)
    assert "probe / [/bold]first" in result.stdout and "[red]second" in result.stdout


def _spec(**fields: Any) -> dict[str, Any]:
    return probe_spec(**fields)


def _plain(**fields: Any) -> dict[str, Any]:
    return {
        "name": "plain",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"p": {"values": [1, 2]}},
        **fields,
    }


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


LONG = "n" * 50_000
BAD: list[tuple[str, dict[str, Any] | str, str]] = [
    # (case, the file (a dict dumped as YAML, or YAML text), what the line must say)
    ("spec project /etc/passwd", _spec(project="/etc/passwd"), "project: '/etc/passwd'"),
    ("plain project /etc/passwd", _plain(project="/etc/passwd"), "project: '/etc/passwd'"),
    ("spec project ../../x", _spec(project="../../x"), "project: '../../x': W&B names"),
    ("plain project ../../x", _plain(project="../../x"), "project: '../../x': W&B names"),
    ("spec project 5,000", _spec(project="p" * 5000), "project: 5,000 characters"),
    ("plain project 5,000", _plain(project="p" * 5000), "project: 5,000 characters"),
    ("spec entity a/b", _spec(entity="a/b"), "entity: 'a/b': W&B names cannot contain"),
    ("plain entity 5,000", _plain(entity="e" * 5000), "entity: 5,000 characters"),
    ("spec project NUL", _spec(project="a\0b"), "project: 'a\\x00b' holds a NUL byte"),
    ("plain project NUL", _plain(project="a\0b"), "project: 'a\\x00b' holds a NUL byte"),
    ("spec metric NUL", _spec(metric={"name": "lo\0ss"}), "metric.name: 'lo\\x00ss' holds"),
    ("plain metric NUL", _plain(metric={"name": "a\0"}), "metric.name: 'a\\x00' holds"),
    ("spec value NUL", _spec(search={"x": [0.0, "a\0"]}), "search.x[1]: 'a\\x00' holds"),
    (
        "plain value NUL",
        _plain(parameters={"p": {"values": [1, "a\0"]}}),
        "parameters.p.values[1]: 'a\\x00' holds",
    ),
    (
        "plain parameter name NUL",
        _plain(parameters={"p\0": {"value": 1}}),
        "parameters: the key 'p\\x00' holds a NUL byte",
    ),
    ("spec search name NUL", _spec(search={"x\0": [1.0]}), "search: the key 'x\\x00' holds"),
    (
        "spec nested 500",
        f"name: s\ntrainer: probe\nmetric: {{name: loss}}\nsearch: {{x: [{_nested(500)}]}}\n",
        "nested more than 64 levels deep (line 4)",
    ),
    (
        "plain nested 500",
        f"program: train.py\nparameters:\n  p: {{value: {_nested(500)}}}\n",
        "nested more than 64 levels deep (line 3)",
    ),
    (
        "plain nested 100,000 (past libyaml's stack)",
        f"program: train.py\nparameters:\n  p: {{value: {_nested(100_000)}}}\n",
        "nested more than 64 levels deep (line 3)",
    ),
    (
        "plain nested block mappings",
        "program: train.py\nparameters:\n  p:\n    value:\n"
        + "".join(f"{'  ' * (i + 3)}k{i}:\n" for i in range(80)),
        "nested more than 64 levels deep",
    ),
    (
        "an alias inside itself",
        "program: train.py\nparameters:\n  p: {value: &a [1, *a]}\n",
        "an alias refers to the value that holds it (line 3)",
    ),
    ("spec name 50,000", _spec(name=LONG), "name: String should have at most 128 characters"),
    ("plain name 50,000", _plain(name=LONG), "name: 50,000 characters; the limit is 128"),
    ("plain name 200,000", _plain(name="n" * 200_000), "name: 200,000 characters"),
    (
        "stage name 5,000",
        {**_spec(search=None), "stages": [{"name": "s" * 5000, "search": {"x": [1.0]}}]},
        "stages.0.name: String should have at most 128 characters",
    ),
    ("spec metric 50,000", _spec(metric={"name": LONG}), f"never logs '{'n' * 40}"),
]


@pytest.mark.parametrize(("case", "content", "says"), BAD, ids=[case for case, _, _ in BAD])
def test_what_would_fail_later_is_refused_by_validate_and_launch(
    tmp_path: Path, case: str, content: dict[str, Any] | str, says: str
) -> None:
    if isinstance(content, dict):
        content = {k: v for k, v in content.items() if v is not None}
        text = yaml.safe_dump(content, sort_keys=False)
    else:
        text = content
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    (tmp_path / "train.py").write_text("import wandb\nwandb.init()\n")
    store = tmp_path / "store" / "sweeper.db"
    for command in ("validate", "launch"):
        started = time.perf_counter()
        args = [command, str(path)] + (["--store", str(store)] if command == "launch" else [])
        result = CliRunner().invoke(app, args)
        seconds = time.perf_counter() - started
        assert result.exit_code == 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
        assert says in lines[0], lines[0]
        assert len(lines[0]) < 300, lines[0]
        assert result.stdout == "", result.stdout
        assert seconds < 3, (command, seconds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml", "train.py"]


@pytest.mark.slow  # times sweeper validate in child processes
def test_a_refusal_costs_no_more_than_start_up(tmp_path: Path) -> None:
    """As a user runs it, in a new process (a 200,000-character name took over 120 s): no
    slower than validating a good file, start-up included (about 1.5 s on an idle machine)."""
    (tmp_path / "train.py").write_text("")
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(_plain()))
    started = time.perf_counter()
    assert sweeper("validate", str(good), cwd=tmp_path).returncode == 0
    baseline = time.perf_counter() - started
    for content in (
        json.dumps(_plain(name="n" * 200_000)),
        f"program: train.py\nparameters: {{p: {{value: {_nested(500)}}}}}\n",
    ):
        path = tmp_path / "sweep.yaml"
        path.write_text(content)
        started = time.perf_counter()
        result = sweeper("validate", str(path), cwd=tmp_path)
        seconds = time.perf_counter() - started
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert seconds < baseline + 1.5, (seconds, baseline)

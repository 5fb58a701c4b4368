"""The CLI explains itself (issue 19 §2): help with choices, defaults and SPEC/SWEEP names;
`--version`; `sweeper sweeps`; one way to name a sweep for status, runs and report; a readable
`runs` table with complete CSV and JSON; agent names without `/None`; no uv noise.

Real parts: the real command (typer's runner in-process, or a subprocess), a real SQLite
store filled through the store's own API, a real agent process, real uv.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import probe_spec, start_agent, write_spec
from typer.core import TyperArgument
from typer.testing import CliRunner

from sweeper.backends.local import LocalBackend
from sweeper.cli import app

ROOT = Path(__file__).parents[1]


def cli(*args: str, width: int = 200, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), terminal_width=width, env=env)


def one_error_line(result: Any) -> str:
    """A refusal: exit 2 and exactly one line, `error: …`."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def fill(backend: LocalBackend, sweep_id: str, value: Callable[[dict[str, Any]], float]) -> None:
    """Run every trial of a sweep through the store's API; a NaN value fails the run."""
    while (claim := backend.claim(sweep_id, "host-1-abcd")) is not None:
        loss = value(claim.params)
        if math.isnan(loss):
            backend.finish(claim.run_id, claim.attempt, "failed", {}, 1, "RuntimeError: boom")
        else:
            backend.finish(claim.run_id, claim.attempt, "finished", {"loss": loss})


# help --------------------------------------------------------------------------------------


def test_help_names_arguments_shows_choices_and_every_default() -> None:
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        text = cli(name, "--help", width=100).output
        usage = text.splitlines()[0]
        assert "{" not in usage and "<bool>" not in text, (name, text)
        for param in command.params:
            if isinstance(param, TyperArgument):
                metavar = param.display_name_raw
                assert metavar.isupper() and metavar in usage, (name, usage)
            elif param.name != "help" and not getattr(param, "is_flag", False):
                # the help record of an option with a value: its default, given or stated
                _, record = param.get_help_record(group.make_context(name, [name]))
                assert "[default:" in " ".join(record.split()), (name, param.name, record)
    launch = "".join(cli("launch", "--help").output.split())
    assert "--backend<local|wandb>" in launch and "--wandb<offline|online|disabled>" in launch
    assert "launch[OPTIONS]SPEC" in launch
    assert "--format<html|md|latex>" in "".join(cli("report", "--help").output.split())
    landscape = "".join(cli("landscape", "--help").output.split())
    for choice in ("--split<train|val>", "--ignore<biasbn|none>", "--dims<1|2>"):
        assert choice in landscape
    assert "augment[OPTIONS]TRAINER[CONFIG]" in "".join(cli("augment", "--help").output.split())


BAD_CHOICES = [
    (["launch", "s.yaml", "--backend", "cloud"], "--backend: expected local or wandb, got 'cloud'"),
    (
        ["launch", "s.yaml", "--wandb", "loud"],
        "--wandb: expected offline, online or disabled, got 'loud'",
    ),
    (["agent", "s", "--wandb", "on"], "--wandb: expected offline, online or disabled, got 'on'"),
    (["report", "s", "--format", "pdf"], "--format: expected html, md or latex, got 'pdf'"),
    (["landscape", "r", "--split", "test"], "--split: expected train or val, got 'test'"),
    (["landscape", "r", "--dims", "3"], "--dims: expected 1 or 2, got '3'"),
    (["landscape", "r", "--ignore", "all"], "--ignore: expected biasbn or none, got 'all'"),
    (["launch"], "Missing argument 'SPEC'"),
    (["lunch", "x"], "No such command 'lunch'. Did you mean 'launch'?"),
    (["status", "s", "--bogus"], "No such option: --bogus"),
]


@pytest.mark.parametrize(("args", "message"), BAD_CHOICES)
def test_the_parser_refuses_a_bad_value_in_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    line = one_error_line(cli(*args))
    assert message in line and "--help" in line, line
    assert not any(tmp_path.iterdir())


def test_a_bad_backend_from_the_environment_is_one_line_too(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "status", "abc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "SWEEPER_BACKEND": "cloud"},
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "SWEEPER_BACKEND: expected local or wandb, got 'cloud'" in line


def test_version_comes_from_the_package_metadata() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"sweeper {version('sweeper')}\n"


# one store with three launches ---------------------------------------------------------------


@pytest.fixture
def launches(backend: LocalBackend, tmp_path: Path) -> dict[str, Any]:
    """Oldest first: `alpha` (3 runs over optim.lr, one failed), the study `staged` (2 stages,
    its first run), then `alpha` again from its spec (re-launched), then `beta` from another
    spec file but named `alpha-twin`, and `gamma` with repeats."""
    from sweeper.agent.launch import create_stage
    from sweeper.spec.load import load_spec

    lrs = {0.010536: 0.5, 0.0105: 0.25, 0.1: math.nan}
    alpha = write_spec(tmp_path, probe_spec(name="alpha", search={"optim.lr": list(lrs)}), "a.yaml")
    first = create_stage(backend, load_spec(alpha))
    fill(backend, first, lambda p: lrs[p["optim.lr"]])
    stages = [
        {"name": "x", "search": {"x": [0.0, 3.0]}},
        {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
    ]
    staged = write_spec(tmp_path, probe_spec(name="staged", search={}, stages=stages), "s.yaml")
    loaded = load_spec(staged)
    study = "study123"
    stage0 = create_stage(backend, loaded, 0, None, study)
    claim = backend.claim(stage0, "host-2-efgh/0")
    assert claim is not None
    backend.finish(claim.run_id, claim.attempt, "finished", {"loss": float("inf")})
    stage1 = create_stage(backend, loaded, 1, {"x": 0.0}, study)
    second = create_stage(backend, load_spec(alpha))  # the same spec, launched again
    twin = write_spec(tmp_path, probe_spec(name="alpha", search={"x": [1.0]}), "b.yaml")
    other = create_stage(backend, load_spec(twin))
    gamma = write_spec(
        tmp_path, probe_spec(name="gamma", search={"x": [0.0, 2.0]}, repeats=2), "g.yaml"
    )
    repeated = create_stage(backend, load_spec(gamma))
    fill(backend, repeated, lambda p: (p["x"] - 1) ** 2 + p["seed"])
    return {
        "alpha": alpha,
        "first": first,
        "second": second,
        "study": study,
        "stages": [stage0, stage1],
        "other": other,
        "gamma": repeated,
    }


def rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│")]


def test_sweeps_lists_studies_and_sweeps_newest_first(launches: dict[str, Any]) -> None:
    for command in ("sweeps", "ls"):
        result = cli(command)
        assert result.exit_code == 0, result.output
        ids = [line.split("│")[1].strip() for line in rows(result.output)]
        expected = [launches["gamma"], launches["other"], launches["second"], *launches["stages"]]
        assert ids == [*expected, launches["first"]], result.output
        first = next(line for line in rows(result.output) if launches["first"] in line)
        cells = [c.strip() for c in first.split("│")[1:-1]]
        assert cells == [launches["first"], "alpha", "a.yaml", "-", "finished", "3/3", "loss 0.25"]
        stage = next(line for line in rows(result.output) if launches["stages"][0] in line)
        assert "staged / x" in stage and "1 x" in stage and "1/2" in stage and "loss inf" in stage
        gamma = next(line for line in rows(result.output) if launches["gamma"] in line)
        assert "4/4" in gamma and "loss 1.5" in gamma  # the mean over seeds


def test_an_empty_store_says_how_to_fill_it(backend: LocalBackend) -> None:
    result = cli("sweeps")
    assert result.exit_code == 0 and "no sweeps in" in result.output, result.output


@pytest.mark.parametrize("command", ["status", "runs"])
def test_status_and_runs_take_an_id_a_study_a_spec_or_a_name(
    command: str, launches: dict[str, Any]
) -> None:
    def shown(target: str) -> set[str]:
        result = cli(command, target)
        assert result.exit_code == 0, (target, result.output)
        every = [launches["first"], launches["second"], *launches["stages"], launches["other"]]
        return {sweep for sweep in every if sweep in result.output}

    assert shown(launches["first"]) == {launches["first"]}
    assert shown(launches["study"]) == set(launches["stages"])  # every stage of the study
    assert shown(launches["stages"][1]) == {launches["stages"][1]}
    assert shown(str(launches["alpha"])) == {launches["second"]}  # its latest launch
    assert shown("staged") == set(launches["stages"])  # a spec's name: its latest study
    assert shown("staged / lr") == {launches["stages"][1]}  # a stage sweep's name
    line = one_error_line(cli(command, "alpha"))  # made from a.yaml and from b.yaml
    assert "'alpha' names sweeps made from 2 different specs" in line
    assert launches["second"] in line and launches["other"] in line and "b.yaml" in line
    line = one_error_line(cli(command, "nothing-by-this-name"))
    assert "no sweep, study, spec file or name 'nothing-by-this-name'" in line
    assert "`sweeper sweeps` lists them" in line


def test_report_takes_a_spec_name(launches: dict[str, Any], tmp_path: Path) -> None:
    """`sweeper report xray-unet`, as the spec comments promise: the spec's name."""
    result = cli("report", "gamma", "--format", "md", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.md").is_file()
    line = one_error_line(cli("report", "alpha", "-o", str(tmp_path / "none")))
    assert "names sweeps made from 2 different specs" in line
    assert not (tmp_path / "none").exists()


# runs ----------------------------------------------------------------------------------------


def test_runs_prints_a_readable_table_that_fits(launches: dict[str, Any]) -> None:
    result = cli("runs", launches["first"], width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    header = next(line for line in lines if "run" in line and "state" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "run",
        "state",
        "optim.lr",
        "loss",
        "runtime",
    ]
    body = {line.split("│")[2].strip(): line for line in rows(result.output)}
    assert "0.01054" in result.output and "0.0105 " in result.output  # told apart, not 0.010536
    assert [c.strip() for c in body["failed"].split("│")[3:5]] == ["0.1", "-"]
    assert "None" not in result.output and "nan" not in result.output
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", result.output), "no nanosecond timestamps"
    assert "created_at" not in result.output and "host-1-abcd" not in result.output
    seeds = cli("runs", launches["gamma"])
    header = next(line for line in seeds.output.splitlines() if "┃ run" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "run",
        "state",
        "x",
        "seed",
        "loss",
        "runtime",
    ]
    study = cli("runs", launches["study"])
    assert "┃ stage" in study.output and "│ x " in study.output and "inf" in study.output


@pytest.mark.slow
def test_runs_ids_are_not_coloured_as_numbers(launches: dict[str, Any], store: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "runs", launches["first"]],
        capture_output=True,
        text=True,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout, "colour is on: the table's frame and headers"
    backend = LocalBackend(store, readonly=True, create=False)
    for run_id in backend.runs(launches["first"])["run_id"]:
        assert f" {run_id} " in result.stdout, (run_id, result.stdout)


def test_runs_csv_and_json_are_complete(launches: dict[str, Any], store: Path) -> None:
    backend = LocalBackend(store, readonly=True, create=False)
    table = backend.runs([*launches["stages"], launches["first"]])
    csv = store.parent / "runs.csv"
    result = cli("runs", launches["first"], "--csv", str(csv))
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    import pandas as pd

    written = pd.read_csv(csv)
    assert {"created_at", "agent", "error", "config.optim.lr", "summary.loss"} <= set(written)
    assert 0.010536 in written["config.optim.lr"].tolist()  # every digit

    result = cli("runs", launches["study"], "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)  # valid JSON: no bare NaN or Infinity
    assert [r["run_id"] for r in records] == table[table["sweep_id"].isin(launches["stages"])][
        "run_id"
    ].tolist()
    assert records[0]["summary.loss"] == "inf" and records[0]["agent"] == "host-2-efgh/0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", records[0]["created_at"])
    result = cli("runs", launches["first"], "--json")
    records = json.loads(result.output)
    failed = next(r for r in records if r["state"] == "failed")
    assert failed["summary.loss"] is None and failed["error"] == "RuntimeError: boom"
    assert set(records[0]) == set(backend.runs(launches["first"]).columns)


# the agent's name, uv --------------------------------------------------------------------------


@pytest.mark.slow
def test_an_agent_without_a_gpu_slot_names_no_none_slot(
    make_sweep: Callable[..., str], store: Path, backend: LocalBackend
) -> None:
    sweep = make_sweep(probe_spec(base={"epochs": 1}, search={"x": [0.0]}))
    agent = start_agent(sweep, store, "--gpus", "")
    output, _ = agent.communicate(timeout=120)
    assert agent.returncode == 0, output
    assert "/None" not in output
    (name,) = backend.runs(sweep)["agent"]
    assert "/" not in name and "None" not in name, name


@pytest.mark.slow  # uv run in a child process
def test_uv_run_prints_no_bytecode_line(tmp_path: Path) -> None:
    """`uv run` of the project says nothing the user did not ask for (uv with compile-bytecode
    set re-compiles the whole environment on every run: astral-sh/uv#12202)."""
    uv = shutil.which("uv")
    assert uv, "the tests run under uv"
    env = {k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"}
    for _ in range(2):  # the second run finds the environment in sync
        result = subprocess.run(
            [uv, "run", "--offline", "--frozen", "python", "-c", "pass"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    assert "Bytecode compiled" not in result.stderr, result.stderr
    assert result.stderr == "", result.stderr

"""Sweep files and specs read as W&B reads them (issue 18 §3): YAML 1.2 numbers, deprecated
distributions run with a warning, and every remaining error naming the parameter and field.

Real parts: the real YAML loader and validation, the real CLI in a subprocess, and the casebook
program run by a real agent with the real wandb client offline.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, write_spec
from helpers import sweeper

from sweeper.errors import SpecError
from sweeper.spec.load import load_spec, load_sweep_file, parse_value
from sweeper.spec.plain import PlainSweep

CASEBOOK = Path(__file__).parent / "casebook" / "13-exponent-notation-numbers"


def _plain_file(folder: Path, parameters_yaml: str, **extra: Any) -> Path:
    """A plain W&B sweep file whose `parameters:` block is written by hand (the number forms
    under test must reach the loader as typed, not as yaml.safe_dump would quote them)."""
    (folder / "train.py").write_text("import wandb\nwandb.init()\n")
    head = {"program": "train.py", "method": "random", "metric": {"name": "acc"}, **extra}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(head, sort_keys=False) + "parameters:\n" + parameters_yaml)
    return path


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1e-5", 1e-5),
        ("3e6", 3e6),
        ("-2E+3", -2e3),
        ("+1e2", 1e2),
        ("1.5e3", 1.5e3),  # a decimal point but an unsigned exponent: text to YAML 1.1 too
        (".5e1", 5.0),
        ("2E-1", 0.2),
    ],
)
def test_exponent_numbers_are_numbers_in_plain_files_specs_and_set(
    tmp_path: Path, text: str, number: float
) -> None:
    plain = load_sweep_file(_plain_file(tmp_path, f"  v: {{value: {text}}}\n"))
    assert isinstance(plain, PlainSweep)
    value = plain.config["parameters"]["v"]["value"]
    assert isinstance(value, float) and value == number

    assert parse_value(text) == number


def test_exponent_numbers_are_numbers_in_a_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: exp\ntrainer: probe\nmethod: random\nrun_cap: 1\n"
        "metric: {name: loss, goal: minimize}\nbase: {epochs: 2e0}\n"
        "search:\n  x: {distribution: uniform, min: -5e1, max: 1.5e1}\n"
        "  epoch_seconds: {values: [1e-2, 2E-1]}\n"
    )
    loaded = load_spec(spec)
    assert loaded.spec.base == {"epochs": 2.0}
    x = loaded.spec.search["x"]
    assert (x.kind, x.min, x.max) == ("uniform", -50.0, 15.0)
    assert loaded.spec.search["epoch_seconds"].values == [0.01, 0.2]


def test_a_quoted_exponent_stays_text(tmp_path: Path) -> None:
    plain = load_sweep_file(_plain_file(tmp_path, "  v: {values: ['1e-5', \"3e6\", 1e-5]}\n"))
    assert isinstance(plain, PlainSweep)
    assert plain.config["parameters"]["v"]["values"] == ["1e-5", "3e6", 1e-5]


@pytest.mark.slow  # sweeper validate in child processes
def test_exponent_bounds_validate_through_the_cli(tmp_path: Path) -> None:
    shutil.copytree(CASEBOOK, tmp_path / "case")
    result = sweeper("validate", "sweep.yaml", cwd=tmp_path / "case")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok sweep: random, up to 2 trials"), result.stdout


DEPRECATED = {
    "log_uniform": "log_uniform_values",
    "q_log_uniform": "q_log_uniform_values",
    "inv_log_uniform": "inv_log_uniform_values",
}


@pytest.mark.slow  # sweeper validate in a child process per case
@pytest.mark.parametrize("distribution", sorted(DEPRECATED))
def test_what_wandb_only_warns_about_is_one_warning_line(tmp_path: Path, distribution: str) -> None:
    """Natural-log bounds, as older W&B docs teach: W&B creates the sweep and warns."""
    path = _plain_file(
        tmp_path, f"  lr: {{distribution: {distribution}, min: -9.21, max: -2.30}}\n"
    )
    result = sweeper("validate", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"warning: {path}: parameters.lr: uses {distribution}")
    assert DEPRECATED[distribution] in lines[0]

    # the probe takes x in [-100, 100]: inv_log_uniform draws e^-max .. e^-min
    low, high = (0.0, 4.0) if distribution == "inv_log_uniform" else (-9.21, -2.30)
    spec = write_spec(
        tmp_path,
        probe_spec(
            method="random",
            run_cap=1,
            search={"x": {"distribution": distribution, "min": low, "max": high}},
        ),
    )
    result = sweeper("validate", str(spec), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"warning: {spec}: search.x: uses {distribution}, where min/max specify base-e "
        f"exponents. Use {DEPRECATED[distribution]} to specify limit values."
    ]


@pytest.mark.slow
def test_a_deprecated_distribution_runs_with_wandbs_meaning(tmp_path: Path) -> None:
    """log_uniform from -9.21 to -2.30 draws e^-9.21 .. e^-2.30 (sweeps/params.py)."""
    spec = write_spec(
        tmp_path,
        probe_spec(
            method="random",
            run_cap=3,
            base={"epochs": 1},
            search={"x": {"distribution": "log_uniform", "min": -9.21, "max": -2.30}},
        ),
    )
    store = tmp_path / "store.db"
    result = sweeper(
        "launch", str(spec), "--agents", "1", "--wandb", "disabled", "--store", str(store),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "search.x: uses log_uniform" in result.stderr
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT state, params FROM runs").fetchall()
    assert [state for state, _ in rows] == ["finished"] * 3, rows
    xs = [json.loads(params)["x"]["value"] for _, params in rows]
    assert all(math.exp(-9.21) <= x <= math.exp(-2.30) for x in xs), xs


@pytest.mark.parametrize(
    ("param", "field", "message"),
    [
        ("{distribution: uniform, min: abc, max: 1.0}", "min", "expected a number, got 'abc'"),
        ("{distribution: uniform, min: 0, max: [1]}", "max", "expected a number, got [1]"),
        ("{distribution: q_uniform, min: 0, max: 1, q: -1}", "q", "greater than 0"),
        ("{distribution: normal, mu: 0, sigma: x}", "sigma", "valid number"),
        ("{values: [1, 2], probabilities: [0.5, p]}", "probabilities.1", "valid number"),
    ],
)
def test_every_error_names_the_parameter_and_the_field(
    tmp_path: Path, param: str, field: str, message: str
) -> None:
    path = _plain_file(tmp_path, f"  lr0: {param}\n")
    with pytest.raises(SpecError) as plain:
        load_sweep_file(path)
    assert plain.value.field == f"parameters.lr0.{field}", str(plain.value)
    assert message in plain.value.message

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: s\ntrainer: probe\nmethod: random\nmetric: {{name: loss}}\nsearch:\n  x: {param}\n"
    )
    with pytest.raises(SpecError) as trainer_spec:
        load_spec(spec)
    assert trainer_spec.value.field == f"search.x.{field}", str(trainer_spec.value)
    assert message in trainer_spec.value.message


@pytest.mark.slow
def test_the_casebook_sweep_runs_with_numbers(tmp_path: Path) -> None:
    """tests/casebook/13-exponent-notation-numbers: both runs finish and the program got
    total_steps as a number (its own check fails the run otherwise)."""
    case = tmp_path / "case"
    shutil.copytree(CASEBOOK, case)
    store = tmp_path / "store" / "sweeper.db"
    result = sweeper(
        "launch", "sweep.yaml", "--agents", "1", "--wandb", "disabled", "--store", str(store),
        cwd=case,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT state, params, error FROM runs").fetchall()
    assert [state for state, _, _ in rows] == ["finished", "finished"], rows
    for _, params, _ in rows:
        steps = json.loads(params)["total_steps"]["value"]
        assert isinstance(steps, float) and steps == 3e6, params

"""Issue 18 §1, §2, §5: a parameter's identity is W&B's key, values are never split, every
float survives, and the end of a launch says what happened.

Real parts: real SQLite stores, W&B's `sweeps` engine, real `sweeper launch` processes running
real wandb programs offline (the casebook inputs are copied beside this file).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeper.backends.local import LocalBackend
from sweeper.errors import SpecError
from sweeper.spec.load import load_sweep_file
from sweeper.sweep import RunView, config_table, key_paths, run_config, values_of
from sweeper.sweep.engine import next_params

CASEBOOK = Path(__file__).parent / "casebook"

ECHO = """
import json, os, sys, wandb
run = wandb.init()
seen = {"argv": sys.argv[1:], "config": dict(wandb.config)}
with open(f"seen-{os.environ['WANDB_RUN_ID']}.json", "w") as file:
    json.dump(seen, file)
wandb.log({"loss": 1.0})
run.finish()
"""


LAUNCH = ("--wandb", "disabled")


def _launch(folder: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", "sweep.yaml", "--agents", "1", *LAUNCH],
        cwd=folder,
        env={**os.environ, "SWEEPER_STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _case(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(CASEBOOK / name, folder)
    return folder


def _runs(store: Path) -> list[dict[str, Any]]:
    backend = LocalBackend(store, create=False)
    try:
        (sweep,) = backend.sweeps()
        return [backend.run(r) for r in backend.runs(sweep.id)["run_id"]]
    finally:
        backend.close()


def _walk(config: dict[str, Any], cap: int = 50) -> list[dict[str, Any]]:
    """Every run the engine hands out (each finished at once), as {column: value}."""
    runs: list[RunView] = []
    while (params := next_params(config, runs)) is not None:
        runs.append(RunView(f"r{len(runs)}", "finished", params, {"loss": 1.0}))
        assert len(runs) <= cap, "the sweep never ends"
    return [{k: v["value"] for k, v in run.params.items()} for run in runs]


# §1: identity ---------------------------------------------------------------------------------


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_casebook_hydra_dotted_names_reach_the_program_as_written(tmp_path: Path) -> None:
    folder = _case("01-hydra-dotted-names", tmp_path)
    store = tmp_path / "store" / "sweeper.db"
    done = _launch(folder, store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(store)
    assert [r["state"] for r in runs] == ["finished", "finished"], [r["error"] for r in runs]
    assert [r["meta"]["command"][-2:] for r in runs] == [
        ["optimizer.lr=0.1", "model.width=8"],
        ["optimizer.lr=0.01", "model.width=8"],
    ]
    for run in runs:  # what wandb.init reads into wandb.config (WANDB_SWEEP_PARAM_PATH)
        attempt = store.parent / "runs" / run["id"] / "attempt-1" / "sweep-params.yaml"
        assert set(yaml.safe_load(attempt.read_text())) == {
            "wandb_version",
            "optimizer.lr",
            "model.width",
        }


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_flat_dotted_keys_nested_blocks_and_opaque_values_reach_wandb_config(
    tmp_path: Path,
) -> None:
    """Dict values (a grid of 2 distinct points: exactly 2 runs, then the sweep ends), a list,
    None and booleans stay one value; a nested block nests; a dotted key does not."""
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "train.py").write_text(ECHO)
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "arch": {"values": [{"layers": 1, "width": 8}, {"layers": 2, "width": 16}]},
            "optimizer.lr": {"value": 0.1},
            "model": {"parameters": {"depth": {"value": 3}}},
            "sizes": {"value": [1, 2]},
            "extra": {"value": None},
            "flag": {"value": True},
            "off": {"value": False},
        },
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    store = tmp_path / "store" / "sweeper.db"
    done = _launch(folder, store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "KeyError" not in done.stderr
    runs = _runs(store)
    assert [r["state"] for r in runs] == ["finished", "finished"]
    seen = [json.loads((folder / f"seen-{r['id']}.json").read_text()) for r in runs]
    assert [s["config"]["arch"] for s in seen] == [
        {"layers": 1, "width": 8},
        {"layers": 2, "width": 16},
    ]
    config = seen[0]["config"]
    assert config["optimizer.lr"] == 0.1 and "optimizer" not in config
    assert config["model"] == {"depth": 3}
    assert config["sizes"] == [1, 2] and config["extra"] is None
    assert config["flag"] is True and config["off"] is False
    argv = seen[0]["argv"]  # ${args}: str(value) per wandb's create_sweep_command_args
    assert "--arch={'layers': 1, 'width': 8}" in argv
    assert "--model={'depth': 3}" in argv and "--optimizer.lr=0.1" in argv
    assert "--extra=None" in argv and "--sizes=[1, 2]" in argv and "--off=False" in argv
    backend = LocalBackend(store, create=False)
    table = backend.runs(backend.sweeps()[0].id)
    backend.close()
    assert list(table["config.arch"]) == [{"layers": 1, "width": 8}, {"layers": 2, "width": 16}]
    assert list(table["config.extra"]) == [None, None]


def test_the_engine_sees_a_grid_of_dict_values_and_ends_it() -> None:
    config = {
        "method": "grid",
        "parameters": {"arch": {"values": [{"layers": 1}, {"layers": 2}]}, "x": {"value": 1}},
    }
    assert _walk(config) == [{"arch": {"layers": 1}, "x": 1}, {"arch": {"layers": 2}, "x": 1}]


def test_a_dotted_key_and_a_nested_block_are_different_identities() -> None:
    flat = {"method": "grid", "parameters": {"a.b": {"values": [1, 2]}}}
    nested = {"method": "grid", "parameters": {"a": {"parameters": {"b": {"values": [1, 2]}}}}}
    assert key_paths(flat) == {"a.b": ("a.b",)}
    assert key_paths(nested) == {"a.b": ("a", "b")}
    assert _walk(flat) == _walk(nested) == [{"a.b": 1}, {"a.b": 2}]
    assert run_config({"a.b": 1}, key_paths(flat)) == {"a.b": 1}
    assert run_config({"a.b": 1}, key_paths(nested)) == {"a": {"b": 1}}
    assert values_of({"a": {"value": {"b": 2}}}, key_paths(nested)) == {"a.b": 2}
    assert values_of({"a.b": {"value": 2}}, key_paths(flat)) == {"a.b": 2}


def test_a_store_with_dotted_names_still_reads_and_nests_along_its_blocks() -> None:
    """Runs stored before key paths name nested parameters by their dotted column."""
    nested = {"parameters": {"optim": {"parameters": {"lr": {"values": [0.1]}}}}}
    assert run_config({"optim.lr": 0.1, "seed": 0}, key_paths(nested)) == {
        "optim": {"lr": 0.1},
        "seed": 0,
    }


def test_two_identities_with_one_column_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    sweep = {
        "program": "train.py",
        "method": "grid",
        "parameters": {"a.b": {"value": 1}, "a": {"parameters": {"b": {"value": 2}}}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    with pytest.raises(
        SpecError, match=r"parameters\.a\.b: .*a\.parameters\.b.* the column 'a\.b'"
    ):
        load_sweep_file(str(path))


def test_trainer_dotted_search_paths_still_compile_to_nested_blocks(tmp_path: Path) -> None:
    """Sweeper's own shorthand: a trainer spec's `optim.lr` is the nested trainer field."""
    from sweeper.spec.compile import compile_spec
    from sweeper.spec.load import load_spec

    spec = {
        "name": "nest",
        "trainer": "xor",
        "method": "grid",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "search": {"optim.lr": [0.1, 0.01]},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    (config,) = compile_spec(load_spec(path).spec)
    assert config["parameters"]["optim"]["parameters"]["lr"] == {"values": [0.1, 0.01]}
    assert key_paths(config)["optim.lr"] == ("optim", "lr")
    first = _walk(config)[0]
    assert run_config(first, key_paths(config))["optim"]["lr"] == 0.1


def test_summary_groups_dict_list_and_none_values() -> None:
    import pandas as pd

    runs = pd.DataFrame(
        {
            "state": ["finished"] * 4,
            "config.arch": [{"w": 1}, {"w": 2}, {"w": 1}, None],
            "summary.loss": [1.0, 2.0, 3.0, 4.0],
        }
    )
    table = config_table(runs, ["arch"], "loss", "minimize")
    assert list(table["arch"]) == [{"w": 2}, {"w": 1}, None]  # a tied mean: the lower std first
    assert list(table["mean"]) == [2.0, 2.0, 4.0]


# §2: non-finite numbers -----------------------------------------------------------------------


def test_the_store_holds_and_gives_back_every_float(backend: LocalBackend) -> None:
    claim = backend.create_run({"x": 1}, agent="t")
    values = {"nan": math.nan, "inf": math.inf, "minus": -math.inf, "ok": 0.5}
    assert backend.log(claim.run_id, claim.attempt, 0, values)
    assert backend.finish(claim.run_id, claim.attempt, "finished", summary={"end": math.inf})
    summary = backend.run(claim.run_id)["summary"]
    assert math.isnan(summary["nan"]) and summary["inf"] == math.inf
    assert summary["minus"] == -math.inf and summary["end"] == math.inf and summary["ok"] == 0.5
    whole = backend.history([claim.run_id]).iloc[0]
    picked = backend.history([claim.run_id], ["nan", "inf", "ok"]).iloc[0]
    for row in (whole, picked):
        assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ok"] == 0.5


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_casebook_nan_metric_fails_its_run_and_the_bayes_sweep_goes_on(tmp_path: Path) -> None:
    folder = _case("03-nan-metric-bayes", tmp_path)
    store = tmp_path / "store" / "sweeper.db"
    done = _launch(folder, store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(store)
    assert len(runs) == 4
    failed = [r for r in runs if r["state"] == "failed"]
    assert [r["state"] for r in runs].count("finished") == 3, [r["error"] for r in runs]
    (nan_run,) = failed
    assert "'valid_loss'" in nan_run["error"] and "nan" in nan_run["error"]
    assert "step 1" in nan_run["error"]


def test_a_trainer_logs_every_float_and_fails_only_on_a_nan_metric(
    backend: LocalBackend,
) -> None:
    from sweeper.agent.tracking import NonFiniteMetricError, TrialLogger

    claim = backend.create_run({"x": 1}, agent="t")
    logger = TrialLogger(backend.open_sink(claim, None, fork=False), metric="loss")
    logger.log({"loss": math.inf, "grad": math.nan}, step=0)  # inf is a number; grad is kept
    with pytest.raises(NonFiniteMetricError, match=r"the metric 'loss' is nan at step 1"):
        logger.log({"loss": math.nan}, step=1)
    steps = backend.history([claim.run_id])
    assert steps["loss"].iloc[0] == math.inf and math.isnan(steps["grad"].iloc[0])
    assert math.isnan(steps["loss"].iloc[1])  # the NaN step itself is kept


INF_AND_NAN = """
import math, wandb
run = wandb.init()
wandb.log({"loss": math.inf if run.config.x == 1 else 1.0, "grad": math.nan, "top": math.inf})
run.finish()
"""


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_inf_is_a_number_and_other_non_finite_keys_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "inf"
    folder.mkdir()
    (folder / "train.py").write_text(INF_AND_NAN)
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1, 2]}},
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    store = tmp_path / "store" / "sweeper.db"
    done = _launch(folder, store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(store)
    assert [r["state"] for r in runs] == ["finished", "finished"], [r["error"] for r in runs]
    assert runs[0]["summary"]["loss"] == math.inf and math.isnan(runs[0]["summary"]["grad"])
    assert runs[1]["summary"]["top"] == math.inf
    assert "best run" in done.stdout and "loss = 1.0000" in done.stdout  # +inf ranks last


# §5: the end of a launch ----------------------------------------------------------------------


@pytest.mark.slow  # a real `sweeper launch` child process: agents import torch, run trials
def test_launch_exits_1_when_no_run_finished(tmp_path: Path) -> None:
    folder = tmp_path / "fails"
    folder.mkdir()
    (folder / "train.py").write_text("import sys\nprint('broken on purpose')\nsys.exit(4)\n")
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1, 2]}},
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    done = _launch(folder, tmp_path / "store" / "sweeper.db")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 of 2 runs failed" in done.stderr and "exit code 4" in done.stderr


def test_none_shows_as_none_and_a_spaced_metric_is_quoted() -> None:
    from sweeper.report.values import label, metric_label

    assert label(None) == "None"
    assert metric_label(" loss") == "' loss'" and metric_label("loss") == "loss"


def test_sweeper_train_fails_on_a_nan_in_its_trainers_metric(store: Path) -> None:
    """Outside a sweep the trainer's own metric is watched: NaN fails the run, naming it."""
    from typer.testing import CliRunner

    from sweeper.cli import app

    result = CliRunner().invoke(
        app, ["train", "probe", "--set", "crash=nan", "--wandb", "disabled"]
    )
    assert result.exit_code == 1, result.output
    assert "the metric 'loss' is nan at step 0" in result.output

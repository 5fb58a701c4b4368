"""The `sweeper` command as users type it: real subprocesses, exit codes, what gets written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from helpers import sweeper

ROOT = Path(__file__).parents[1]
QUICKSTART = ROOT / "sweeps" / "quickstart.yaml"


@pytest.mark.slow  # a child interpreter, to see what it imports
def test_help_and_validate_do_not_import_torch_or_wandb(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sweeper.cli import app\n"
        f"r = CliRunner().invoke(app, ['validate', {str(QUICKSTART)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = ('torch', 'wandb', 'torchvision', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow  # sweeper in three child processes
def test_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probe_spec(search={"x": [0.0, 500.0]}))
    for command in ("validate", "launch", "compile"):
        result = sweeper(command, str(spec), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "search.x[1]: 500.0 rejected" in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"], "nothing may be written"


@pytest.mark.slow  # sweeper in two child processes
def test_unknown_sweep_and_bad_set_exit_2(tmp_path: Path) -> None:
    result = sweeper("status", "nope", "--store", str(tmp_path / "none.db"), cwd=tmp_path)
    assert result.returncode == 2 and "no sweeper store" in result.stderr
    result = sweeper("train", "xor", "--set", "model.depth=9", cwd=tmp_path)
    assert result.returncode == 2
    assert "model.depth: Input should be less than or equal to 3" in result.stderr


@pytest.mark.slow  # sweeper in two child processes
def test_schema_and_trainers() -> None:
    schema = json.loads(sweeper("schema", "xor").stdout)
    assert schema["properties"]["epochs"]["default"] == 100
    assert "XorModel" in schema["$defs"]
    listing = sweeper("trainers").stdout
    assert "xor" in listing and "classify" in listing and "reid" in listing


@pytest.mark.slow  # sweeper train in a child process: imports torch, trains 3 epochs
def test_train_runs_one_trial_and_records_what_reproduces_it(tmp_path: Path) -> None:
    result = sweeper(
        "train", "xor", str(QUICKSTART), "--set", "epochs=3", "--wandb", "disabled", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch ") == 3
    from sweeper.backends.local import LocalBackend

    backend = LocalBackend(tmp_path / ".sweeper" / "sweeper.db", create=False)
    (run_id,) = [r[0] for r in backend.sqlite.db.execute("SELECT id FROM runs")]
    run = backend.run(run_id)
    assert run["state"] == "finished"
    meta = run["meta"]
    assert meta["config"]["epochs"] == 3 and meta["seed"] == 0
    assert set(meta["versions"]) == {"python", "torch", "torchvision", "sweeper"}
    assert all(meta["versions"].values())
    assert meta["device"] == "cpu"


@pytest.mark.slow  # 36 trials through two real agents, wandb offline
def test_quickstart_smoke_launch_end_to_end(tmp_path: Path) -> None:
    result = sweeper(
        "launch", str(QUICKSTART), "--smoke", "--agents", "2", "--wandb", "offline", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "36/36" in out and "best run" in out and "mean ± std" in out
    from sweeper.backends.local import LocalBackend

    backend = LocalBackend(tmp_path / ".sweeper" / "sweeper.db", create=False)
    (sweep,) = backend.sweeps()
    table = backend.runs(sweep.id)
    assert len(table) == 36 and set(table["state"]) == {"finished"}
    points = table[["config.model.depth", "config.model.width", "config.seed"]]
    assert not points.duplicated().any()
    offline_runs = list((tmp_path / ".sweeper" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 36, "every run is mirrored to wandb offline for `wandb sync`"
    status = sweeper("status", sweep.id, cwd=tmp_path)
    assert status.returncode == 0 and "36/36 done (36 finished)" in status.stdout


@pytest.mark.slow  # a trial in a child process with torch and wandb offline
def test_wandb_agent_entry_point_runs_a_trial_offline(tmp_path: Path) -> None:
    args = tmp_path / "config.json"
    # W&B's ${args_json_file} maps each top-level parameter to its value, a nested block's to
    # a dict (wandb/sdk/launch/sweeps/utils.py, create_sweep_command_args: args_json); a spec
    # compiled for a scheduler engine keeps trainer paths flat (`optim.lr`)
    args.write_text(json.dumps({"epochs": 2, "model": {"depth": 1}, "optim.lr": 0.05}))
    env: dict[str, Any] = {
        **__import__("os").environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper.agent.wandb_agent_trial",
            "--trainer",
            "xor",
            "--metric=val_acc",
            str(args),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "wandb").glob("offline-run-*"))


BAD_OPTIONS = [
    (["launch", "{spec}", "--agents", "-1"], "--agents: must be at least 1, got -1"),
    (["launch", "{spec}", "--heartbeat-timeout", "0"], "--heartbeat-timeout: must be above 0"),
    (["launch", "{spec}", "--gpus", "abc"], "--gpus: 'abc' is not a GPU index or UUID"),
    (["launch", "{spec}", "--backend", "cloud"], "--backend: expected local or wandb"),
    (["launch", "{spec}", "--wandb", "loud"], "--wandb: expected offline, online or disabled"),
    (["agent", "s", "--count", "-3"], "--count: must be at least 1, got -3"),
    (["agent", "s", "--threads", "-1"], "--threads: must be at least 1, got -1"),
    (["agent", "s", "--heartbeat-timeout", "-5"], "--heartbeat-timeout: must be above 0"),
    (["agent", "s", "--grace", "-1"], "--grace: must be at least 0, got -1"),
    (["agent", "s", "--gpus", "0,0"], "--gpus: '0,0' names a GPU twice"),
    (["compile", "{spec}", "--stage", "9"], "--stage: no stage '9'"),
    (["compile", "{spec}", "--carry", "x"], "--carry: x: expected PATH=VALUE"),
    (["validate", "{folder}"], "is a folder, not a YAML file"),
    (["train", "classify", str(QUICKSTART)], "trainer: the spec is for 'xor', not 'classify'"),
    (["generate", "shapes", "{spec}"], "spec.yaml: exists and is not a folder"),
    (
        ["generate", "xray", "{spec}/xray"],
        "spec.yaml/xray: cannot be created: ",
    ),
    (["generate", "veri", "{folder}/veri", "--seed", "-1"], "--seed: must be at least 0, got -1"),
]


def test_every_bad_option_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sweeper.cli import app

    spec = write_spec(tmp_path, probe_spec())
    (tmp_path / "folder").mkdir()
    runner = CliRunner()
    for args, message in BAD_OPTIONS:
        argv = [a.format(spec=spec, folder=tmp_path / "folder") for a in args]
        store = [] if args[0] in ("validate", "generate") else ["--store", str(tmp_path / "s.db")]
        result = runner.invoke(app, [*argv, *store])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and message in lines[0], (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "spec.yaml"]
    assert not any((tmp_path / "folder").iterdir())


@pytest.mark.slow  # a real launch: an agent process runs both trials
def test_launch_names_how_many_runs_failed_and_why(tmp_path: Path) -> None:
    spec = probe_spec(base={"epochs": 1}, search={"crash": ["none", "raise"]})
    store = tmp_path / "s.db"
    result = sweeper(
        "launch", str(write_spec(tmp_path, spec)), "--store", str(store), "--wandb", "disabled"
    )
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "runs failed" in x]
    assert line.startswith("1 of 2 runs failed; run ") and "RuntimeError: boom at epoch 0" in line

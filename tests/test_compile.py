"""Compiled configs are plain W&B: the `sweeps` schema accepts them and its engine runs them."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import probe_spec, write_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweeper._sweeps import sweeps
from sweeper.agent.launch import planned_trials
from sweeper.cli import app
from sweeper.spec.compile import compile_spec, compile_stage
from sweeper.spec.load import load_spec
from sweeper.spec.models import Spec

QUICKSTART = Path(__file__).parents[1] / "sweeps" / "quickstart.yaml"


def _schema_ok(config: dict) -> None:
    # run_cap is newer than the schema bundled with sweeps 0.2.0 (see compile.check_wandb_schema)
    sweeps.SweepConfig({k: v for k, v in config.items() if k != "run_cap"})


def test_quickstart_compiles_to_a_valid_w_and_b_config() -> None:
    loaded = load_spec(QUICKSTART)
    (config,) = compile_spec(loaded.spec)
    _schema_ok(config)
    assert config["parameters"]["seed"] == {"values": [0, 1, 2]}
    assert config["parameters"]["epochs"] == {"value": 100}
    assert config["command"][-1] == "${args_json_file}"
    assert config["command"][:4] == ["${env}", "${interpreter}", "-m", "sweeper.trial"]


def test_grid_engine_enumerates_every_point_once() -> None:
    (config,) = compile_spec(load_spec(QUICKSTART).spec)
    runs: list = []
    while (run := sweeps.next_run(config, runs)) is not None:
        runs.append(sweeps.SweepRun(config=run.config, state="finished"))
    points = {
        (
            r.config["model.depth"]["value"],
            r.config["model.width"]["value"],
            r.config["seed"]["value"],
        )
        for r in runs
    }
    assert len(runs) == len(points) == planned_trials(config) == 36


@settings(max_examples=40, deadline=None)
@given(
    depths=st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True),
    lrs=st.lists(st.floats(1e-5, 10, allow_nan=False), min_size=1, max_size=3, unique=True),
    repeats=st.integers(1, 3),
)
def test_any_valid_grid_compiles_and_runs_exactly_its_points(
    depths: list[int], lrs: list[float], repeats: int
) -> None:
    spec = Spec.model_validate(
        {
            "name": "h",
            "trainer": "xor",
            "metric": {"name": "val_acc"},
            "repeats": repeats,
            "search": {"model.depth": depths, "optim.lr": lrs},
        }
    )
    config = compile_stage(spec)
    _schema_ok(config)
    runs: list = []
    while (run := sweeps.next_run(config, runs)) is not None:
        runs.append(sweeps.SweepRun(config=run.config, state="finished"))
    assert len(runs) == len(depths) * len(lrs) * repeats == planned_trials(config)


def test_later_stages_carry_the_previous_best(tmp_path: Path) -> None:
    spec = load_spec(
        write_spec(
            tmp_path,
            probe_spec(
                search={},
                stages=[
                    {"name": "x", "search": {"x": [0.0, 1.0]}},
                    {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
                ],
            ),
        )
    ).spec
    second = compile_stage(spec, 1, carried={"x": 1.0})
    assert second["parameters"]["x"] == {"value": 1.0}
    assert second["parameters"]["optim.lr"] == {"values": [0.1, 0.01]}
    assert second["name"] == "probe / lr"


def test_compile_cli_writes_one_document_per_stage(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        probe_spec(
            search={},
            stages=[
                {"name": "a", "search": {"x": [0.0]}},
                {"name": "b", "search": {"x": [1.0]}},
            ],
        ),
    )
    out = tmp_path / "sweep.yaml"
    result = CliRunner().invoke(app, ["compile", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(out.read_text()))
    assert [d["name"] for d in documents] == ["probe / a", "probe / b"]
    for document in documents:
        _schema_ok(document)

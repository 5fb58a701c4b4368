"""Compiled configs are plain W&B: the `sweeps` schema accepts them and its engine runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import probe_spec, write_spec
from helpers import fill_study, probe_history
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweeper.agent.launch import compile_for_stage
from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.spec.compile import NEWER_KEYS, compile_spec, compile_stage
from sweeper.spec.load import load_spec
from sweeper.spec.models import Spec
from sweeper.sweep import RunView, planned_trials
from sweeper.sweep.engine import next_params, sweeps

QUICKSTART = Path(__file__).parents[1] / "sweeps" / "quickstart.yaml"


def _schema_ok(config: dict) -> None:
    # run_cap, metrics and scheduler are newer than the schema bundled with sweeps 0.2.0
    # (see compile.NEWER_KEYS)
    sweeps.SweepConfig({k: v for k, v in config.items() if k not in NEWER_KEYS})


def _walk(config: dict) -> list[dict]:
    """Every run the engine hands out, through sweep.engine, as flat {path: value}."""
    runs: list[RunView] = []
    while (params := next_params(config, runs)) is not None:
        runs.append(RunView(f"r{len(runs)}", "finished", params))
        assert len(runs) <= 10_000, "the grid never ends"
    return [{name: p["value"] for name, p in run.params.items()} for run in runs]


def test_quickstart_compiles_to_a_valid_w_and_b_config() -> None:
    loaded = load_spec(QUICKSTART)
    (config,) = compile_spec(loaded.spec)
    _schema_ok(config)
    parameters = config["parameters"]
    assert parameters["seed"] == {"values": [0, 1, 2]}
    assert parameters["epochs"] == {"value": 100}
    assert parameters["model"] == {
        "parameters": {"depth": {"values": [0, 1, 2, 3]}, "width": {"values": [1, 2, 3]}}
    }, "nested as the trainer config is, so a W&B run's config has the trainer's shape"
    assert config["program"] == "sweeper.agent.wandb_agent_trial"
    assert config["command"] == [
        "${env}", "${interpreter}", "-m", "${program}", "--trainer", "xor", "--metric=val_acc",
        "${args_json_file}",
    ]  # fmt: skip


def test_grid_engine_enumerates_every_point_once() -> None:
    (config,) = compile_spec(load_spec(QUICKSTART).spec)
    runs = _walk(config)
    points = {(r["model.depth"], r["model.width"], r["seed"]) for r in runs}
    assert len(runs) == len(points) == planned_trials(config) == 36
    assert all(r["optim.name"] == "sgd" and r["epochs"] == 100 for r in runs)


def test_the_raw_engine_repeats_a_nested_grid_point_forever() -> None:
    """Why sweep.engine renames nested parameters: sweeps 0.2.0 alone never advances."""
    (config,) = compile_spec(load_spec(QUICKSTART).spec)
    runs: list = []
    for _ in range(3):
        runs.append(sweeps.SweepRun(config=sweeps.next_run(config, runs).config, state="finished"))
    assert runs[0].config == runs[1].config == runs[2].config


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
    runs = _walk(config)
    assert len(runs) == len(depths) * len(lrs) * repeats == planned_trials(config)
    assert {(r["model.depth"], r["optim.lr"]) for r in runs} == {
        (d, x) for d in depths for x in lrs
    }


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
    assert second["parameters"]["optim"]["parameters"]["lr"] == {"values": [0.1, 0.01]}
    assert second["name"] == "probe / lr"


def _study(tmp_path: Path) -> Path:
    return write_spec(
        tmp_path,
        probe_spec(
            search={},
            base={"epochs": 1},
            stages=[
                {"name": "a", "search": {"x": [0.0, 3.0]}},
                {"name": "b", "search": {"optim.lr": [0.1, 0.01]}},
            ],
        ),
    )


def test_compile_cli_writes_one_document_that_wandbs_loader_takes(tmp_path: Path) -> None:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    spec = _study(tmp_path)
    out = tmp_path / "sweep.yaml"
    result = CliRunner().invoke(app, ["compile", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    loaded = load_sweep_config(str(out))  # wandb's own loader: one document, or it refuses
    assert loaded is not None and loaded["name"] == "probe / a"
    assert loaded == yaml.safe_load(out.read_text())
    _schema_ok(loaded)


def test_a_later_stage_compiles_with_the_winner_of_the_one_before(
    tmp_path: Path, backend: LocalBackend
) -> None:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    spec = _study(tmp_path)
    refused = CliRunner().invoke(app, ["compile", str(spec), "--stage", "b"])
    assert refused.exit_code == 2
    assert "stages.1: 'b' starts from the best of 'a'" in refused.output
    fill_study(backend, load_spec(spec), probe_history)  # the probe's runs, through the store
    launched = CliRunner().invoke(app, ["launch", str(spec), "--wandb", "disabled"])
    assert launched.exit_code == 0, launched.output
    out = tmp_path / "b.yaml"
    result = CliRunner().invoke(app, ["compile", str(spec), "--stage", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    stage_b = load_sweep_config(str(out))
    assert stage_b["parameters"]["x"] == {"value": 0.0}, "the probe's loss is lowest at x=0"
    by_hand = CliRunner().invoke(app, ["compile", str(spec), "--stage", "b", "--carry", "x=3.0"])
    assert yaml.safe_load(by_hand.stdout)["parameters"]["x"] == {"value": 3.0}
    unknown = CliRunner().invoke(app, ["compile", str(spec), "--stage", "c"])
    assert unknown.exit_code == 2 and "no stage 'c'; the stages are a, b" in unknown.output


@pytest.mark.parametrize(
    "spec_file", sorted(QUICKSTART.parent.glob("*.yaml")), ids=lambda p: p.name
)
def test_every_stage_of_every_ready_spec_loads_with_wandbs_own_loader(
    spec_file: Path, tmp_path: Path
) -> None:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    loaded = load_spec(spec_file)
    for number in range(1, len(loaded.spec.stage_list()) + 1):
        config, _note = compile_for_stage(loaded, str(number), {}, None)
        out = tmp_path / f"stage-{number}.yaml"
        out.write_text(yaml.safe_dump(config, sort_keys=False))
        assert load_sweep_config(str(out)) == config
        _schema_ok(config)
        if config["method"] == "grid":  # and the engine walks it, each point once
            assert len(_walk(config)) == planned_trials(config)


def test_a_metric_target_compiles_into_w_and_bs_metric_and_none_leaves_no_key(
    tmp_path: Path,
) -> None:
    """W&B's `metric.target` (sweep-config-keys, metric) passes through; a spec without one
    compiles as before, with no `target: null` for W&B's schema to refuse."""
    spec = probe_spec()
    plain = compile_spec(load_spec(write_spec(tmp_path, spec)).spec)[0]
    assert "target" not in plain["metric"]
    spec["metric"] = {**spec["metric"], "target": 0.25}
    (config,) = compile_spec(load_spec(write_spec(tmp_path, spec)).spec)
    assert config["metric"] == {**plain["metric"], "target": 0.25}
    _schema_ok(config)


@pytest.mark.parametrize("target", ["0.5", True, ".nan"])
def test_a_metric_target_that_is_not_a_finite_number_is_refused_in_one_line(
    tmp_path: Path, target: object
) -> None:
    """As W&B's schema reads `metric.target` (a number): a quoted "0.5" stays text, and no
    NaN, which no run could reach."""
    spec = probe_spec()
    spec["metric"] = {**spec["metric"], "target": target}
    text = yaml.safe_dump(spec).replace("'.nan'", ".nan")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "metric.target" in lines[0] and str(path) in lines[0], lines

"""Issue 23 §1: `metrics:`, `scheduler:`, `method: custom` and `seed`, read and checked as
wandb 0.31's sweep scheduler reads them, for plain W&B sweep files and for sweeper specs.

What passes `validate` is handed to wandb's own pieces here (its YAML loader and its
`make_optimizer`, which `wandb sweep-scheduler` builds the engine with), so "accepted" means
the scheduler takes it, not only that sweeper does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import write_spec
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.errors import SpecError
from sweeper.spec.compile import compile_spec
from sweeper.spec.load import LoadedSpec, load_spec, load_sweep_file
from sweeper.spec.plain import PlainSweep

SPACE = """
def conditional(trial):
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    params = {"optimizer": optimizer, "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}
    if optimizer == "sgd":
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    return params


def study(sweep):
    import optuna
    return optuna.create_study(directions=["maximize", "minimize"])


not_a_function = 3


def two_arguments(sweep, extra):
    return None


def returns_a_list(trial):
    return [trial.suggest_float("lr", 0.0, 1.0)]


def exits(trial):
    raise SystemExit(0)


def returns_a_number(sweep):
    return 42


def raises(sweep):
    raise ValueError("optimizer boom")


def one_direction(sweep):
    import optuna
    return optuna.create_study(direction="maximize")
"""


def plain(folder: Path, name: str = "sweep.yaml", **keys: Any) -> Path:
    """A plain W&B sweep file whose program exists: method custom, engine optuna, two
    objectives; `keys` replace or add top-level keys (None removes one)."""
    (folder / "train.py").write_text("import wandb\n")
    config: dict[str, Any] = {
        "program": "train.py",
        "method": "custom",
        "metrics": [{"name": "acc", "goal": "maximize"}, {"name": "seconds", "goal": "minimize"}],
        "scheduler": {"engine": "optuna"},
        "parameters": {"lr": {"min": 0.0001, "max": 0.1}, "width": {"values": [8, 16]}},
    }
    config.update(keys)
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def xor_spec(**overrides: Any) -> dict[str, Any]:
    """A spec of the xor trainer (it logs val_acc, val_loss, best_val_acc, train_loss, lr)."""
    spec: dict[str, Any] = {
        "name": "xor-mo",
        "trainer": "xor",
        "method": "random",
        "metrics": [
            {"name": "val_acc", "goal": "maximize"},
            {"name": "train_loss", "goal": "minimize"},
        ],
        "base": {"epochs": 5},
        "search": {"model.width": [2, 3], "optim.lr": {"min": 0.01, "max": 0.5}},
        "run_cap": 4,
    }
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def refused(path: Path) -> str:
    """`sweeper validate` refuses the file: exit 2 and one line, which is returned."""
    result = cli("validate", str(path))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def scheduler_of(config: dict[str, Any]) -> Any:
    """The optimizer `wandb sweep-scheduler` would build for this config (its own code)."""
    from wandb.sdk.sweeps.scheduler.optimizer import make_optimizer
    from wandb.sdk.sweeps.sweep_info import SweepInfo

    info = SweepInfo(
        id="abc", name="s", entity="e", project="p", config=config, controller_run_name="c"
    )
    return make_optimizer(info)


def test_plain_custom_optuna_sweep_validates_and_compiles_for_wandbs_own_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = plain(tmp_path)
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "custom, runs until stopped" in result.output
    out = tmp_path / "compiled.yaml"
    result = cli("compile", str(path), "-o", str(out))
    assert result.exit_code == 0, result.output
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    compiled = load_sweep_config(str(out))  # what `wandb sweep` reads
    assert compiled is not None and compiled == yaml.safe_load(path.read_text())
    optimizer = scheduler_of(compiled)
    assert optimizer.engine == "optuna"
    assert [d.name for d in optimizer.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    (suggestion,) = optimizer.ask_n_runs(1)
    assert set(suggestion.config.flat_dict()) == {"lr", "width"}


BAD_METRICS: list[tuple[Any, str]] = [
    ([{"name": "acc", "goal": "maximize"}], "metrics: give two or more objectives, got 1"),
    (
        [{"name": "acc", "goal": "maximize"}, {"name": "acc", "goal": "minimize"}],
        "metrics: 'acc' is given twice",
    ),
    ([{"name": "acc"}, {"name": "loss", "goal": "maximise"}], "metrics.1.goal: Input should be"),
    ([{"name": 1e-3}, {"name": "loss"}], "metrics.0.name: Input should be a valid string"),
    ([{"name": "acc", "target": 0.9}, {"name": "loss"}], "metrics.0.target: Extra inputs"),
    ({"name": "acc", "goal": "maximize"}, "metrics: expected a list of {name, goal}"),
    (["acc", "loss"], "metrics.0: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("metrics", "message"), BAD_METRICS)
def test_bad_metrics_are_one_line_naming_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: Any, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    line = refused(plain(tmp_path, metrics=metrics))
    assert f"sweep.yaml: {message}" in line


def test_metric_names_are_kept_as_written_dots_and_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    metrics = [{"name": "val.acc", "goal": "maximize"}, {"name": "time/epoch"}]
    loaded = load_sweep_file(plain(tmp_path, metrics=metrics))
    assert isinstance(loaded, PlainSweep)
    assert loaded.config["metrics"] == metrics  # no goal filled in: W&B's default applies
    assert scheduler_of(loaded.config).metric_goals() == ["maximize", "minimize"]


def test_multiple_metrics_beside_one_metric_with_wandbs_own_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No scheduler: W&B's search runs `method`, and `metrics` are carried for the report;
    bayes still needs its one `metric`."""
    monkeypatch.chdir(tmp_path)
    loaded = load_sweep_file(plain(tmp_path, method="random", scheduler=None))
    assert isinstance(loaded, PlainSweep) and len(loaded.config["metrics"]) == 2
    line = refused(plain(tmp_path, method="bayes", scheduler=None))
    assert line.endswith("sweep.yaml: metric: bayes search needs a `metric` to optimise")


BAD_SCHEDULERS: list[tuple[dict[str, Any], str]] = [
    ({"scheduler": {"engine": "hyperopt"}}, "scheduler.engine: Input should be 'wandb', 'optuna'"),
    ({"scheduler": {"source": "space.py"}}, "scheduler.engine: Field required"),
    (
        {"scheduler": {"engine": "optuna", "batch_size": 4}},
        "scheduler.batch_size: not a key of W&B's scheduler (it reads engine, source, optimizer,"
        " search_space); the batch is `wandb sweep-scheduler --batch-size`",
    ),
    ({"scheduler": "optuna"}, "scheduler: Input should be a valid dictionary"),
    ({"scheduler": None}, "method: method custom: nothing suggests runs without a `scheduler:`"),
    ({"scheduler": {"engine": "wandb"}}, "method: engine wandb runs W&B's own search"),
    ({"metrics": None}, "metric: engine optuna optimises the sweep's `metric` or `metrics`"),
    (
        {"scheduler": {"engine": "optuna", "search_space": "conditional"}},
        "scheduler.source: missing: the Python file that defines search_space 'conditional'",
    ),
    (
        {"parameters": {"lr": {"distribution": "normal", "mu": 0, "sigma": 1}}},
        "parameters.lr: wandb's optuna engine cannot read it: Sweep distribution 'normal' has no"
        " optuna equivalent",
    ),
    (
        {"parameters": {"optim": {"parameters": {"lr": {"values": [0.1, 0.2]}}}}},
        "parameters.optim: a nested `parameters:` block: wandb's optuna engine reads one flat",
    ),
    (  # wandb's WandbOptimizer would suggest the block's first grid point for ever
        {
            "method": "grid",
            "scheduler": {"engine": "wandb"},
            "parameters": {"opt": {"parameters": {"width": {"values": [1, 2]}}}},
        },
        "parameters.opt: a nested `parameters:` block: wandb's scheduler engine `wandb` walks",
    ),
]


@pytest.mark.parametrize(("keys", "message"), BAD_SCHEDULERS)
def test_bad_schedulers_are_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: dict[str, Any], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert f"sweep.yaml: {message}" in refused(plain(tmp_path, **keys))


def test_wandb_engine_runs_the_method_and_warns_of_what_it_does_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.py").write_text(SPACE)
    scheduler = {"engine": "wandb", "source": "space.py", "search_space": "conditional"}
    path = plain(tmp_path, method="random", scheduler=scheduler)
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep)
    assert loaded.warnings == (
        f"{path}: scheduler.search_space: engine wandb does not read it",
        f"{path}: scheduler.source: nothing of engine wandb is loaded from it",
    )
    assert loaded.scheduler_source is None
    assert scheduler_of(loaded.config).engine == "wandb"


@pytest.mark.parametrize(
    ("engine", "install"),
    [("optuna", "uv sync --extra optuna"), ("ax", "uv pip install 'ax-platform>=1.3.1'")],
)
def test_an_engine_whose_package_is_missing_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, install: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, engine, None)  # `import optuna` raises ImportError
    line = refused(plain(tmp_path, scheduler={"engine": engine}))
    package = {"optuna": "optuna", "ax": "ax"}[engine]
    assert f"sweep.yaml: scheduler.engine: engine {engine} needs the {package} package" in line
    assert install in line


def test_a_search_space_beside_the_sweep_file_resolves_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wandb sweep-scheduler` finds `source` in its working directory; failing that, it is
    found beside the sweep file, as `program` is."""
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "space.py").write_text(SPACE)
    scheduler = {"engine": "optuna", "source": "space.py", "search_space": "conditional"}
    path = plain(sweeps, scheduler=scheduler)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep)
    assert loaded.scheduler_source == str(sweeps / "space.py")
    assert loaded.record()["scheduler_source"] == str(sweeps / "space.py")
    # the working directory's file wins, as wandb's loader would read it
    (elsewhere / "space.py").write_text(SPACE)
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep) and loaded.scheduler_source == str(elsewhere / "space.py")


def test_a_source_path_is_read_from_the_launchers_folder_like_a_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source: tools/sweep/space.py` from the repository root, the sweep file in `sweeps/`
    (the casebook's program-path kind): found where `wandb sweep-scheduler` runs."""
    (tmp_path / "tools" / "sweep").mkdir(parents=True)
    (tmp_path / "tools" / "sweep" / "space.py").write_text(SPACE)
    (tmp_path / "sweeps").mkdir()
    source = "tools/sweep/space.py"
    scheduler = {"engine": "optuna", "source": source, "search_space": "conditional"}
    path = plain(tmp_path / "sweeps", scheduler=scheduler)
    monkeypatch.chdir(tmp_path)
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.output
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep)
    assert loaded.scheduler_source == str(tmp_path / source)
    assert loaded.config["scheduler"]["source"] == source  # as written, for wandb's scheduler


SOURCE_FAULTS: list[tuple[dict[str, Any], str | None, str]] = [
    ({"search_space": "conditional"}, None, "scheduler.source: space.py not found (looked in"),
    (
        {"search_space": "missing"},
        SPACE,
        "scheduler.search_space: {src} has no attribute 'missing'",
    ),
    (
        {"search_space": "spaces.conditional"},
        SPACE,
        "has no attribute 'spaces.conditional' (a name defined in the file; a dotted path is not"
        " followed)",
    ),
    (
        {"search_space": "returns_a_list"},
        SPACE,
        "scheduler.search_space: 'returns_a_list' in {src} returned list, not a dict",
    ),
    (
        {"optimizer": "not_a_function"},
        SPACE,
        "scheduler.optimizer: 'not_a_function' in {src} is a int, not a function",
    ),
    (
        {"optimizer": "two_arguments"},
        SPACE,
        "scheduler.optimizer: 'two_arguments' in {src} cannot be called with one argument",
    ),
    (
        {"search_space": "conditional"},
        "import no_such_module_here\n",
        "scheduler.source: {src} fails to import: ModuleNotFoundError: No module named",
    ),
    (
        {"search_space": "conditional"},
        "raise SystemExit(3)\n",
        "scheduler.source: {src} fails to import: SystemExit: 3",
    ),
    # the search space exits instead of returning: one line, never a silent exit 0
    ({"search_space": "exits"}, SPACE, "scheduler.search_space: 'exits' in {src} fails on a trial"),
    # the optimizer is built as `wandb sweep-scheduler` builds it: its faults are said at validate
    ({"optimizer": "returns_a_number"}, SPACE, "scheduler.optimizer: the scheduler cannot start"),
    (
        {"optimizer": "raises"},
        SPACE,
        "scheduler.optimizer: the scheduler cannot start: optimizer boom",
    ),
    (
        {"optimizer": "one_direction"},
        SPACE,
        "scheduler.optimizer: the scheduler cannot start: Study has 1 objectives but the sweep",
    ),
]


@pytest.mark.parametrize(("names", "source", "message"), SOURCE_FAULTS)
def test_what_source_names_is_loaded_as_wandb_loads_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    names: dict[str, str],
    source: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if source is not None:
        (tmp_path / "space.py").write_text(source)
    path = plain(tmp_path, scheduler={"engine": "optuna", "source": "space.py", **names})
    line = refused(path)
    assert message.format(src=tmp_path / "space.py") in line, line


def test_an_optimizer_and_a_conditional_space_load_and_the_scheduler_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.py").write_text(SPACE)
    scheduler = {
        "engine": "optuna",
        "source": "space.py",
        "optimizer": "study",
        "search_space": "conditional",
    }
    loaded = load_sweep_file(plain(tmp_path, scheduler=scheduler))
    assert isinstance(loaded, PlainSweep) and loaded.warnings == ()
    optimizer = scheduler_of(loaded.config)
    configs = [s.config.flat_dict() for s in optimizer.ask_n_runs(8)]
    assert {frozenset(c) for c in configs} <= {
        frozenset({"optimizer", "lr", "momentum"}),
        frozenset({"optimizer", "lr"}),
    }
    assert all(("momentum" in c) == (c["optimizer"] == "sgd") for c in configs)


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ('"42"', "'42'"),
        ("4.2e1", "42.0"),  # an exponent is a number (as W&B reads it), but not a whole one
        ("-1", "-1"),
        ("true", "True"),
        (str(2**63), str(2**63)),
    ],
)
def test_a_plain_files_seed_is_a_whole_number_kept_out_of_wandbs_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = plain(tmp_path, method="random", scheduler=None)
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep) and loaded.seed is None
    with path.open("a") as f:
        f.write("seed: 7\n")
    seeded = load_sweep_file(path)
    assert isinstance(seeded, PlainSweep) and seeded.seed == 7
    assert "seed" not in seeded.config and seeded.hash != loaded.hash
    path.write_text(path.read_text().replace("seed: 7", f"seed: {seed}"))
    line = refused(path)
    assert line.endswith(
        f"sweep.yaml: seed: expected a whole number from 0 to 2**63 - 1, got {message}"
    )


def test_a_spec_with_metrics_and_an_optuna_scheduler_compiles_for_wandbs_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = xor_spec(method="custom", scheduler={"engine": "optuna"}, seed=11)
    path = write_spec(tmp_path, spec)
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.output
    loaded = load_spec(path)
    assert loaded.spec.seed == 11
    (config,) = compile_spec(loaded.spec, loaded.path)
    assert config["metrics"] == spec["metrics"] and "metric" not in config
    assert config["scheduler"] == {"engine": "optuna"} and "seed" not in config
    assert "--metric" not in " ".join(config["command"])
    # one flat level, as wandb's optuna engine reads parameters; dotted paths stay one key
    assert set(config["parameters"]) == {"epochs", "model.width", "optim.lr"}
    (suggestion,) = scheduler_of(config).ask_n_runs(1)
    assert set(suggestion.config.flat_dict()) == {"epochs", "model.width", "optim.lr"}
    # the compiled file is what `wandb sweep` reads, and it validates as a plain W&B file
    out = tmp_path / "compiled.yaml"
    assert cli("compile", str(path), "-o", str(out)).exit_code == 0
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    assert load_sweep_config(str(out)) == config


def test_a_spec_keeps_its_single_metric_beside_metrics_and_nests_under_wandbs_search(
    tmp_path: Path,
) -> None:
    spec = xor_spec(metric={"name": "val_acc", "goal": "maximize"})
    loaded = load_spec(write_spec(tmp_path, spec))
    (config,) = compile_spec(loaded.spec, loaded.path)
    assert config["metric"] == {"name": "val_acc", "goal": "maximize"}
    assert "--metric=val_acc" in config["command"]
    assert config["parameters"]["model"] == {"parameters": {"width": {"values": [2, 3]}}}
    assert loaded.spec.seed is None and "scheduler" not in config


def test_a_spec_under_the_wandb_engine_compiles_flat_and_its_grid_walks_every_point(
    tmp_path: Path,
) -> None:
    """wandb's WandbOptimizer over a nested block suggests its first point for ever; flat
    dotted keys are one level it walks: each grid point once, then nothing."""
    spec = xor_spec(
        method="grid", scheduler={"engine": "wandb"}, search={"model.width": [1, 3]}, metrics=None
    )
    spec["metric"] = {"name": "val_acc", "goal": "maximize"}
    loaded = load_spec(write_spec(tmp_path, spec))
    (config,) = compile_spec(loaded.spec, loaded.path)
    assert config["parameters"]["model.width"] == {"values": [1, 3]}
    optimizer = scheduler_of(config)
    first = optimizer.ask_n_runs(5)
    assert sorted(s.config.flat_dict()["model.width"] for s in first) == [1, 3]
    assert not optimizer.ask_n_runs(5)  # the grid is walked


BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    (
        {"metrics": [{"name": "val_acc", "goal": "maximize"}, {"name": "val_los", "goal": "min"}]},
        "metrics.1.goal: Input should be 'maximize' or 'minimize'",
    ),
    (
        {"metrics": [{"name": "val_acc", "goal": "maximize"}, {"name": "val_los"}]},
        "metrics.1.name: the xor trainer never logs 'val_los'; did you mean 'val_loss'?",
    ),
    (
        {"metrics": [{"name": "val_acc", "goal": "maximize"}, {"name": "val_loss"}]},
        "metrics.1.goal: missing: say whether val_loss is maximized or minimized",
    ),
    ({"metrics": [{"name": "val_acc", "goal": "maximize"}]}, "metrics: give two or more"),
    ({"metrics": None}, "give a `metric`, or `metrics` (two or more objectives)"),
    ({"method": "custom"}, "method: method custom: nothing suggests runs without a `scheduler:`"),
    (
        {"method": "custom", "scheduler": {"engine": "wandb"}},
        "method: engine wandb runs W&B's own search",
    ),
    ({"scheduler": {"engine": "optuna", "batch": 2}}, "scheduler.batch: not a key of W&B's"),
    ({"method": "bayes"}, "method: bayes search needs a `metric` to optimise"),
    (
        {"early_terminate": {"type": "hyperband", "min_iter": 2}},
        "metric: early_terminate needs a `metric` to optimise",
    ),
    ({"scheduler": {"engine": "optuna", "source": 1e-3}}, "scheduler.source: Input should be a"),
    ({"scheduler": {"engine": "Optuna"}}, "scheduler.engine: Input should be 'wandb', 'optuna'"),
    ({"seed": "42"}, "seed: Input should be a valid integer"),
    ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
    (
        {
            "scheduler": {"engine": "optuna"},
            "search": {"optim.lr": {"distribution": "beta", "a": 1, "b": 2}},
        },
        "search.optim.lr: wandb's optuna engine cannot read it: Sweep distribution 'beta'",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SPECS)
def test_bad_spec_keys_are_one_line_naming_the_field(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    line = refused(write_spec(tmp_path, xor_spec(**overrides)))
    assert f"spec.yaml: {message}" in line, line


def test_a_specs_search_space_suggests_fields_of_its_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scheduler = {"engine": "optuna", "source": "space.py", "search_space": "space"}
    path = write_spec(tmp_path, xor_spec(method="custom", scheduler=scheduler))
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'optim.lr': trial.suggest_float('optim.lr', 0.01, 0.5)}\n"
    )
    loaded = load_spec(path)
    assert isinstance(loaded, LoadedSpec)
    assert loaded.scheduler_source == str(tmp_path / "space.py")
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'optim.rate': trial.suggest_float('r', 0.01, 0.5)}\n"
    )
    with pytest.raises(SpecError, match=r"scheduler.search_space: suggests 'optim.rate', not a"):
        load_spec(path)
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'model.width': trial.suggest_int('w', -3, -1)}\n"
    )
    with pytest.raises(SpecError, match=r"scheduler.search_space: -\d rejected: "):
        load_spec(path)


def test_a_specs_search_space_alone_is_its_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `scheduler.search_space` a spec (or a stage) needs no `search:`; the compiled
    config keeps the base as its constants, which W&B's schema needs; without the space, or
    with nothing fixed either, it is refused in one line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.py").write_text(
        "def space(trial):\n    return {'optim.lr': trial.suggest_float('optim.lr', 0.01, 0.5)}\n"
    )
    scheduler = {"engine": "optuna", "source": "space.py", "search_space": "space"}
    path = write_spec(tmp_path, xor_spec(method="custom", scheduler=scheduler, search=None))
    loaded = load_spec(path)
    assert isinstance(loaded, LoadedSpec)
    (config,) = compile_spec(loaded.spec)
    assert config["parameters"] == {"epochs": {"value": 5}}
    assert config["scheduler"]["search_space"] == "space"
    stages = [{"name": "one"}, {"name": "two", "search": {"model.width": [2, 3]}}]
    staged = xor_spec(method="custom", scheduler=scheduler, search=None, stages=stages)
    staged["select"] = {"metric": "val_acc"}
    loaded = load_spec(write_spec(tmp_path, staged))
    assert isinstance(loaded, LoadedSpec)
    assert [c["parameters"] for c in compile_spec(loaded.spec)] == [
        {"epochs": {"value": 5}},
        {"epochs": {"value": 5}, "model.width": {"values": [2, 3]}},
    ]
    assert "nothing to sweep" in refused(write_spec(tmp_path, xor_spec(search=None)))
    del staged["scheduler"]
    staged["method"] = "random"
    assert "stage 'one': nothing to sweep" in refused(write_spec(tmp_path, staged))
    bare = xor_spec(method="custom", scheduler=scheduler, search=None, base=None)
    assert "`base`: give one fixed value" in refused(write_spec(tmp_path, bare))

"""Spec validation: good specs load, every mistake is caught with file, field and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, write_spec

from sweeper.errors import SpecError
from sweeper.spec.load import grid_size, load_spec

QUICKSTART = Path(__file__).parents[1] / "sweeps" / "quickstart.yaml"


def test_quickstart_spec_is_valid() -> None:
    loaded = load_spec(QUICKSTART)
    assert loaded.spec.trainer == "xor"
    assert grid_size(loaded.spec.search) * loaded.spec.repeats == 36
    assert len(loaded.hash) == 64


def test_smoke_and_set_change_the_effective_spec_and_its_hash() -> None:
    plain = load_spec(QUICKSTART)
    smoke = load_spec(QUICKSTART, smoke=True)
    tuned = load_spec(QUICKSTART, {"optim.lr": 0.05})
    assert smoke.spec.base["epochs"] == 5
    assert tuned.spec.base["optim"] == {"name": "sgd", "lr": 0.05}
    assert len({plain.hash, smoke.hash, tuned.hash}) == 3


def _error(tmp_path: Path, spec: dict[str, Any], **kwargs: Any) -> SpecError:
    path = write_spec(tmp_path, spec)
    with pytest.raises(SpecError) as info:
        load_spec(path, **kwargs)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    return info.value


XOR = {
    "name": "xor",
    "trainer": "xor",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "search": {"model.depth": [0, 1]},
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"search": {"model.detph": [1]}}, "search.model.detph", "did you mean 'depth'"),
        ({"search": {"optim.lr.x": [1]}}, "search.optim.lr.x", "is a value, not a section"),
        ({"search": {"model.depth": [1, 2, 7]}}, "search.model.depth[2]", "7 rejected"),
        (
            {"method": "random", "search": {"optim.lr": {"min": -1.0, "max": 0.1}}},
            "search.optim.lr",
            "greater than 0",
        ),
        (
            {
                "method": "grid",
                "search": {
                    "optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1}
                },
            },
            "search.optim.lr",
            "grid search needs discrete values",
        ),
        (
            {"search": {"model.width": {"values": [1, 2], "probabilities": [0.5, 0.5]}}},
            "search.model.width",
            "with probabilities",
        ),
        (
            {
                "method": "bayes",
                "search": {"model.width": {"values": [1, 2], "probabilities": [0.3, 0.7]}},
            },
            "search.model.width",
            "bayes search cannot weight values with `probabilities`",
        ),
        ({"search": {"model.depth": []}}, "search.model.depth.values", "at least 1 item"),
        (
            {"method": "random", "search": {"optim.lr": {"min": 0.1, "max": 0.01}}},
            "search.optim.lr",
            "`min` (0.1) must be below `max` (0.01)",
        ),
        (
            {
                "method": "random",
                "search": {"optim.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
            },
            "search.optim.lr",
            "needs `min` > 0",
        ),
        (
            {"search": {"model.depth": {"values": [1, 2], "probabilities": [0.3, 0.3]}}},
            "search.model.depth",
            "`probabilities` must sum to 1",
        ),
        (
            {"method": "random", "search": {"optim.lr": {"distribution": "normal", "sigma": -1}}},
            "search.optim.lr.sigma",
            "greater than 0",
        ),
        (
            {"search": {"seed": {"min": 0, "max": 10**12}}},
            "search",
            "grid has 1,000,000,000,001 points",
        ),
        ({"trainer": "nope"}, "trainer", "unknown trainer 'nope'"),
        ({"metric": {"name": "val_ac"}}, "metric.name", "never logs 'val_ac'; did you mean"),
        ({"base": {"epochs": 0}}, "base.epochs", "greater than or equal to 1"),
        ({"base": {"model": {"colour": 1}}}, "base.model.colour", "Extra inputs"),
        ({"repeats": 3, "search": {"seed": [1, 2]}}, "search.seed", "swept by `repeats`"),
        ({"metric": {"name": "val_acc", "goal": "up"}}, "metric.goal", "'maximize' or 'minimize'"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        (
            {
                "base": {"optim": {"momentum": 0.9}},
                "search": {"optim.name": ["sgd", "adam"], "optim.nesterov": [True]},
            },
            "search",
            "grid point optim.name='adam', optim.nesterov=True is invalid",
        ),
    ],
)
def test_bad_specs_name_file_field_and_reason(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    error = _error(tmp_path, {**XOR, **change})
    assert error.field == field
    assert message in error.message


def test_grid_over_100k_points_is_rejected(tmp_path: Path) -> None:
    search = {f"optim.{p}": list(range(1, 50)) for p in ("lr", "momentum")}
    search["optim.lr"] = [0.1 * i for i in range(1, 50)]
    search["optim.momentum"] = [0.01 * i for i in range(50)]
    search["epochs"] = list(range(1, 50))
    error = _error(tmp_path, {**XOR, "search": search})
    assert "the limit is 100,000" in error.message


def test_random_search_accepts_distributions_and_checks_both_bounds(tmp_path: Path) -> None:
    good = {
        **XOR,
        "method": "random",
        "run_cap": 5,
        "search": {"optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0}},
    }
    assert load_spec(write_spec(tmp_path, good)).spec.run_cap == 5
    bad = {**good, "search": {"optim.momentum": {"min": 0.5, "max": 1.5}}}
    assert "1.5 rejected" in _error(tmp_path, bad).message


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: a\n\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 8)"),
        (bytes(range(256)), "not UTF-8 text (byte 0x80 at offset 128)"),
        (b"name: a\nmethod: grid\nmethod: random\n", "`method` is given twice (line 3)"),
        (BOMB.encode(), "the document holds more than 100,000 values (aliases expanded)"),
        (
            b"x: [" + b"1, " * 100_001 + b"]\n",
            "the document holds more than 100,000 values (aliases expanded)",
        ),
        (
            b"x: [" + b"1, " * 1_000_000 + b"]\n",
            "3,000,006 bytes: larger than any spec (limit 2 MiB)",
        ),
    ],
    ids=["non-utf8", "binary", "duplicate-key", "alias-bomb", "huge", "megabytes"],
)
def test_files_that_are_not_specs_are_refused_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_folder_is_not_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a folder, not a YAML file"):
        load_spec(tmp_path)


def test_a_huge_value_list_is_refused_before_any_value_is_checked(tmp_path: Path) -> None:
    spec = {**XOR, "method": "random", "search": {"seed": list(range(100_001))}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="holds more than 100,000 values"):
        load_spec(path)


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken.yaml: invalid YAML at line"):
        load_spec(path)


def test_smoke_without_section_is_an_error(tmp_path: Path) -> None:
    assert "no `smoke` section" in _error(tmp_path, XOR, smoke=True).message


def test_stages_are_validated_per_stage(tmp_path: Path) -> None:
    spec = {
        **probe_spec(),
        "search": {},
        "stages": [
            {"name": "a", "search": {"x": [0.0, 1.0]}},
            {"name": "b", "search": {"optim.lr": [0.1, 20.0]}},
        ],
    }
    error = _error(tmp_path, spec)
    assert error.field == "stages.1.search.optim.lr[1]"


@pytest.mark.parametrize("method", ["grid", "random", "bayes"])
@pytest.mark.parametrize(
    "param",
    [
        {"distribution": "int_uniform", "min": 1.5, "max": 3.5},  # W&B wants integer bounds
        {"distribution": "normal", "mu": "a"},
        {"min": 1, "max": "x"},
    ],
)
def test_a_parameter_w_and_b_s_schema_rejects_is_one_line_naming_it(
    tmp_path: Path, method: str, param: dict[str, Any]
) -> None:
    # Before the grid is counted or deprecations are looked up: both ask W&B's engine, which
    # raises a bare jsonschema error on such a parameter.
    error = _error(tmp_path, {**XOR, "method": method, "search": {"model.depth": param}})
    assert error.field.startswith("search.model.depth"), error  # sweeper's own check may be finer
    if param.get("distribution") == "int_uniform":
        assert error.message.startswith("the W&B sweep schema rejects it: "), error

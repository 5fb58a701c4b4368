"""The segment config: defaults, the ready specs, and bad input refused at spec time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweeper.errors import SpecError
from sweeper.spec.load import load_spec
from sweeper.spec.models import as_distribution
from sweeper.trainers.registry import get_trainer
from sweeper.trainers.segment.config import SegmentConfig

SPECS = Path(__file__).parents[1] / "sweeps"
READY = ["xray-unet.yaml", "xray-unet-log.yaml"]


def test_config_module_does_not_import_torch() -> None:
    code = (
        "import sys, sweeper.trainers.segment.config as c; c.SegmentConfig(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_with_defaults_from_the_issue() -> None:
    assert get_trainer("segment").config_model() is SegmentConfig
    config = SegmentConfig()
    assert (config.model.arch, config.model.encoder_name) == ("unet", "efficientnet-b0")
    assert config.model.encoder_weights is None and config.log_every == 0
    assert config.model.decoder() == (256, 128, 64, 32, 16)
    assert SegmentConfig.model_validate({"model": {"encoder_depth": 3}}).model.decoder() == (
        256,
        128,
        64,
    )


@pytest.mark.parametrize("name", READY)
@pytest.mark.parametrize("smoke", [False, True])
def test_ready_specs_validate(name: str, smoke: bool) -> None:
    spec = load_spec(SPECS / name, smoke=smoke).spec
    assert spec.trainer == "segment" and spec.method == "random"
    assert set(spec.search) == {"data.batch_size", "epochs", "optim.lr", "optim.name"}
    assert as_distribution(spec.search["data.batch_size"]).values == [8, 16, 32, 40]
    assert as_distribution(spec.search["optim.name"]).values == ["adam", "sgd"]


def test_learning_rate_distributions() -> None:
    uniform = load_spec(SPECS / "xray-unet.yaml").spec
    log = load_spec(SPECS / "xray-unet-log.yaml").spec
    assert uniform.run_cap == 5
    assert as_distribution(uniform.search["epochs"]).values == [50, 100, 150]
    lr, log_lr = (as_distribution(s.search["optim.lr"]) for s in (uniform, log))
    assert (lr.distribution, lr.min, lr.max) == ("uniform", 0.01, 0.1)
    assert (log_lr.distribution, log_lr.min, log_lr.max) == ("log_uniform_values", 1e-4, 1e-2)


def _spec(tmp_path: Path, base: dict, search: dict | None = None) -> Path:
    spec = {
        "name": "bad",
        "trainer": "segment",
        "method": "random",
        "metric": {"name": "val_dice", "goal": "maximize"},
        "base": base,
        "search": search or {"optim.lr": [1e-3, 1e-2]},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("base", "search", "field", "words"),
    [
        ({"model": {"encoder_name": "resnet19"}}, None, "base.model.encoder_name", "resnet18"),
        (
            {},
            {"model.encoder_name": ["resnet34", "effnet"]},
            "search.model.encoder_name[1]",
            "'effnet'",
        ),
        (
            {"data": {"image_size": 100}},
            None,
            "base.data.image_size",
            "not a multiple of 32 (try 96)",
        ),
        ({}, {"data.image_size": [64, 250]}, "search.data.image_size[1]", "multiple of 32"),
        (
            {"model": {"encoder_weights": "imagenet"}},
            None,
            "base.model.encoder_weights",
            "downloaded",
        ),
        (
            {"model": {"encoder_depth": 3, "decoder_channels": [8, 4]}},
            None,
            "base.model",
            "encoder_depth 3",
        ),
        ({"aug": {"names": ["mixup"]}}, None, "base.aug.names.0", "hflip"),
        ({"loss": {"name": "focal"}}, None, "base.loss.name", "dice_bce"),
    ],
)
def test_bad_values_are_one_line_naming_file_and_field(
    tmp_path: Path, base: dict, search: dict | None, field: str, words: str
) -> None:
    path = _spec(tmp_path, base, search)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}"), message
    assert words in message and "\n" not in message

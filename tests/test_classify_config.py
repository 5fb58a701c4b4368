"""The classify config: defaults, bounds, bad input rejected at spec time with the field named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sweeper.spec.load import load_spec
from sweeper.trainers.classify.config import ClassifyConfig, XorConfig
from sweeper.trainers.registry import get_trainer

SPECS = Path(__file__).parents[1] / "sweeps"
CLASSIFY_SPECS = [
    "mnist-mlp-vs-cnn.yaml",
    "lenet-alexnet-binary.yaml",
    "cifar10-lenet5.yaml",
    "cifar10-two-branch.yaml",
]


def rejected(config: dict) -> str:
    with pytest.raises(ValidationError) as info:
        ClassifyConfig.model_validate(config)
    return str(info.value)


def test_config_module_does_not_import_torch() -> None:
    code = (
        "import sys, sweeper.trainers.classify.config as c; c.ClassifyConfig(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_resolves_classify_and_xor() -> None:
    assert get_trainer("classify").config_model() is ClassifyConfig
    assert get_trainer("xor").config_model() is XorConfig
    assert XorConfig().model.depth == 1


def test_unknown_model_name() -> None:
    message = rejected({"model": {"arch": "resnet9000"}})
    assert "model.arch" in message
    assert "unknown model 'resnet9000'" in message


def test_torchvision_names_accepted_by_name_and_prefix() -> None:
    config = ClassifyConfig.model_validate(
        {"model": {"arch": "resnet18"}, "data": {"name": "folder", "image_size": [32, 32]}}
    )
    assert config.data.shape() == (3, 32, 32)
    ClassifyConfig.model_validate({"model": {"arch": "tv.alexnet"}, "data": {"name": "folder"}})


def test_unknown_dataset_name() -> None:
    message = rejected({"data": {"name": "imagenet"}})
    assert "data.name" in message
    assert "'digits', 'mnist', 'cifar10', 'folder' or 'xor'" in message


def test_lenet5_on_mnist_without_resize() -> None:
    message = rejected({"model": {"arch": "lenet5"}, "data": {"name": "mnist"}})
    assert "model.arch 'lenet5' does not fit data 'mnist' (1x28x28)" in message
    assert "lenet5 takes 3x32x32 images" in message
    assert "data.image_size" in message
    fixed = {
        "model": {"arch": "lenet5"},
        "data": {"name": "mnist", "image_size": [32, 32], "channels": 3},
    }
    assert ClassifyConfig.model_validate(fixed).data.shape() == (3, 32, 32)


def test_small_inputs_for_conv_models() -> None:
    assert "cnn needs images of at least 10x10" in rejected({"model": {"arch": "cnn"}})
    assert "lenet needs images of at least 12x12" in rejected(
        {"model": {"arch": "lenet"}, "data": {"name": "digits", "image_size": [10, 10]}}
    )
    assert "torchvision model resnet18 takes 3-channel images" in rejected(
        {"model": {"arch": "resnet18"}, "data": {"name": "mnist"}}
    )
    assert "needs images" in rejected({"model": {"arch": "cnn"}, "data": {"name": "xor"}})


def test_binary_loss_with_more_than_two_classes() -> None:
    for loss in ("bce", "hinge"):
        message = rejected({"loss": {"name": loss}, "data": {"name": "mnist"}})
        assert (
            f"loss.name '{loss}' is binary (one logit) but data 'mnist' has 10 classes" in message
        )
    # Two classes, or a folder set whose classes are only known once read: accepted here.
    ClassifyConfig.model_validate({"loss": {"name": "hinge"}, "data": {"name": "xor"}})
    ClassifyConfig.model_validate({"loss": {"name": "bce"}, "data": {"name": "folder"}})


def test_other_cross_field_checks() -> None:
    assert "label_smoothing is for cross_entropy" in rejected(
        {"loss": {"name": "bce", "label_smoothing": 0.1}, "data": {"name": "xor"}}
    )
    assert "weights is for torchvision models" in rejected(
        {"model": {"arch": "mlp", "weights": "w.pt"}}
    )
    assert "nothing to evaluate on" in rejected({"data": {"val_fraction": 0}})
    assert "nothing to evaluate on" in rejected({"data": {"retrain_full": True}})
    ClassifyConfig.model_validate({"data": {"retrain_full": True, "test_fraction": 0.2}})
    assert "aug.names needs images" in rejected(
        {"data": {"name": "xor"}, "aug": {"names": ["hflip"]}}
    )


def test_bounds() -> None:
    assert "data.val_fraction" in rejected({"data": {"val_fraction": 0.9}})
    assert "model.dropout" in rejected({"model": {"dropout": 1.0}})
    assert "aug.names" in rejected({"aug": {"names": ["mixup"]}})


@pytest.mark.parametrize("name", ["quickstart.yaml", *CLASSIFY_SPECS])
@pytest.mark.parametrize("smoke", [False, True])
def test_ready_specs_validate(name: str, smoke: bool) -> None:
    """Base, every searched value and every grid point pass the trainer config."""
    loaded = load_spec(SPECS / name, smoke=smoke)
    assert loaded.spec.trainer == ("xor" if name == "quickstart.yaml" else "classify")


@pytest.mark.parametrize("name", CLASSIFY_SPECS)
def test_smoke_runs_on_generated_or_bundled_data(name: str) -> None:
    spec = load_spec(SPECS / name, smoke=True).spec
    data = ClassifyConfig.model_validate(spec.base).data
    assert data.name == "digits" or (data.name == "folder" and data.synthetic)

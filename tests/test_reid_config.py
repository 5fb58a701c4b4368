"""Spec-time errors of the reid config, and the config's torch-free import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from sweeper.trainers.reid.config import ReidConfig


def error_of(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        ReidConfig(**fields)
    return str(caught.value)


def test_defaults_follow_the_issue() -> None:
    config = ReidConfig()
    assert (config.optim.name, config.optim.lr, config.optim.weight_decay) == (
        "amsgrad",
        3e-4,
        5e-4,
    )
    assert (config.loss.label_smooth, config.loss.margin) == (0.1, 0.3)
    assert (config.data.num_instances, config.data.augment) == (4, ["translate", "flip"])
    assert config.model.pretrained is None


def test_unknown_backbone_names_the_field() -> None:
    message = error_of(model={"arch": "resnet999"})
    assert "model.arch" in message and "'resnet50_fc512'" in message


def test_image_too_small_for_the_backbone() -> None:
    message = error_of(model={"arch": "vit_b_16"}, data={"image_size": [128, 128]})
    assert "data.image_size 128x128 is too small for model.arch 'vit_b_16'" in message
    assert "at least 224x224" in message
    assert "at least 32x32" in error_of(model={"arch": "resnet18"}, data={"image_size": [16, 64]})
    assert "multiple of 16" in error_of(model={"arch": "vit_b_16"}, data={"image_size": [224, 256]})
    ReidConfig(model={"arch": "vit_b_16"}, data={"image_size": [224, 224]})


def test_triplet_needs_the_identity_sampler() -> None:
    message = error_of(data={"sampler": "random"})
    assert "loss.lambda_htri > 0 (triplet loss) needs data.sampler 'identity'" in message
    ReidConfig(data={"sampler": "random"}, loss={"lambda_htri": 0})


def test_batch_size_must_be_a_multiple_of_k() -> None:
    message = error_of(data={"batch_size": 30, "num_instances": 4})
    assert "data.batch_size 30 is not a multiple of data.num_instances (K) 4" in message
    assert "P >= 2" in error_of(data={"batch_size": 4, "num_instances": 4})


def test_both_losses_off_and_unknown_fields() -> None:
    assert "nothing to train" in error_of(loss={"lambda_xent": 0, "lambda_htri": 0})
    assert "augment" in error_of(data={"augment": ["rotate"]})
    assert "Extra inputs are not permitted" in error_of(data={"bogus": 1})


def test_config_module_does_not_import_torch() -> None:
    code = "import sys, sweeper.trainers.reid.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

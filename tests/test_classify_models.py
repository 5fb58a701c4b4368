"""Model builders: hand-computed parameter counts, every name builds, misfits fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyModel
from sweeper.trainers.classify.models.build import build_model, parameter_count
from sweeper.trainers.classify.models.catalog import BUILTIN, TORCHVISION


def build(shape: tuple[int, ...], n_outputs: int = 10, **model: object) -> torch.nn.Module:
    return build_model(ClassifyModel.model_validate(model), shape, n_outputs)


def test_mnist_mlp_784_128_64_10() -> None:
    model = build((1, 28, 28), arch="mlp", hidden=[128, 64])
    assert parameter_count(model) == (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert parameter_count(model) == 109_386


def test_mlp_depth_and_width() -> None:
    model = build((2,), n_outputs=1, arch="mlp", depth=2, width=3, activation="tanh")
    assert parameter_count(model) == (2 * 3 + 3) + (3 * 3 + 3) + (3 + 1)


def test_classic_mnist_cnn_has_12810_parameters() -> None:
    # conv 1->16 3x3 (160), pool, conv 16->32 3x3 (4,640), pool, 32*5*5 -> 10 (8,010)
    model = build((1, 28, 28), arch="cnn", n_base=16)
    assert parameter_count(model) == 12_810


def test_lenet5_cifar10() -> None:
    model = build((3, 32, 32), arch="lenet5")
    expected = (3 * 25 * 6 + 6) + (6 * 25 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + 850
    assert parameter_count(model) == expected == 62_006


def test_lenet_width_multiplier_and_batch_norm() -> None:
    n = 8  # 32x32 -> conv5 pad2 -> 32 -> pool 16 -> conv5 -> 12 -> pool 6
    plain = build((3, 32, 32), n_outputs=1, arch="lenet", n_base=n)
    expected = (3 * 25 * n + n) + (n * 25 * 2 * n + 2 * n) + (2 * n * 36 * 8 * n + 8 * n)
    expected += (8 * n * 4 * n + 4 * n) + (4 * n + 1)
    assert parameter_count(plain) == expected
    normed = build((3, 32, 32), n_outputs=1, arch="lenet", n_base=n, batch_norm=True)
    # conv biases dropped (n + 2n), batch norm weight and bias added (2n + 4n)
    assert parameter_count(normed) == expected - 3 * n + 6 * n


@pytest.mark.parametrize("arch", BUILTIN)
def test_every_builtin_trains_a_step(arch: str) -> None:
    shape = (3, 32, 32) if arch != "mlp" else (1, 8, 8)
    model = build(shape, n_outputs=3, arch=arch, n_base=4, dropout=0.5, batch_norm=True)
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_torchvision_catalog_matches_torchvision() -> None:
    assert set(torchvision.models.list_models(module=torchvision.models)) == TORCHVISION


def test_torchvision_model_from_local_weights(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(num_classes=1000)
    path = tmp_path / "resnet18.pt"
    torch.save(source.state_dict(), path)
    model = build((3, 32, 32), n_outputs=2, arch="resnet18", weights=str(path))
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 2  # the 1000-class head is not loaded


def test_missing_weights_file() -> None:
    with pytest.raises(SweeperError, match=r"model\.weights 'nowhere\.pt' is not a file"):
        build((3, 32, 32), n_outputs=2, arch="resnet18", weights="nowhere.pt")


def test_misfit_input_is_a_one_line_error() -> None:
    with pytest.raises(SweeperError) as info:
        build((3, 8, 8), n_outputs=2, arch="squeezenet1_1")
    assert str(info.value).startswith("model.arch 'squeezenet1_1' cannot take 3x8x8 input:")
    assert "\n" not in str(info.value)
    with pytest.raises(SweeperError, match="lenet5 takes 3x32x32 images"):
        build((3, 28, 28), arch="lenet5")

"""The classify trainer end to end: real training on tiny data, 1-3 epochs, on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.classify.data.synthetic import write_shapes
from sweeper.trainers.classify.train import train
from sweeper.trainers.logger import MemoryLogger


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"), seed=0)


def run(logger: MemoryLogger | None = None, **config: object) -> dict[str, float]:
    config.setdefault("device", "cpu")
    return train(ClassifyConfig.model_validate(config), logger or MemoryLogger())


@pytest.mark.slow  # trains a classifier
def test_digits_mlp_learns_and_logs_every_epoch() -> None:
    logger = MemoryLogger()
    summary = run(logger, epochs=3, optim={"name": "adam", "lr": 3e-3})
    assert [h["_step"] for h in logger.history] == [0, 1, 2]
    for row in logger.history:
        assert {"train_loss", "val_loss", "val_acc", "lr"} <= set(row)
    assert logger.history[-1]["train_loss"] < logger.history[0]["train_loss"]
    assert summary["val_acc"] > 0.85
    assert summary["best_val_acc"] == max(h["val_acc"] for h in logger.history)
    assert summary["n_params"] == (64 * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)
    per_class = [summary[f"val_acc_class_{c}"] for c in range(10)]
    assert min(per_class) <= summary["val_acc"] <= max(per_class)
    assert "test_acc" not in summary  # digits has no test split unless one is carved


@pytest.mark.slow  # trains a CNN with augmentation
def test_mnist_cnn_shape_on_digits_with_augmentation() -> None:
    summary = run(
        epochs=2,
        model={"arch": "cnn"},
        data={"image_size": [28, 28], "test_fraction": 0.2},
        aug={"names": ["crop", "rotate", "erase"]},
        optim={"name": "adam", "lr": 3e-3},
    )
    assert summary["n_params"] == 12_810
    assert 0.0 <= summary["test_acc"] <= 1.0
    assert summary["val_acc"] > 0.5


@pytest.mark.slow  # trains an MLP until it learns xor
def test_xor_points_with_a_small_mlp() -> None:
    summary = run(
        epochs=25,
        model={"depth": 1, "width": 3, "activation": "tanh"},
        data={"name": "xor", "n_samples": 400, "batch_size": 16},
        optim={"lr": 0.1},
    )
    assert summary["val_acc"] > 0.95
    assert summary["test_acc"] > 0.95


@pytest.mark.slow  # trains each binary model: 1-4 s each
@pytest.mark.parametrize(
    ("arch", "loss", "optim"),
    [
        ("lenet", "bce", "adam"),
        ("alexnet", "hinge", "rmsprop"),
        ("lenet5", "bce", "sgd"),
        ("two_branch", "hinge", "sgd"),
    ],
)
def test_binary_folder_models(shapes: Path, arch: str, loss: str, optim: str) -> None:
    summary = run(
        epochs=1,
        model={"arch": arch, "n_base": 8, "dropout": 0.5},
        loss={"name": loss},
        data={"name": "folder", "root": str(shapes), "batch_size": 8},
        optim={"name": optim, "lr": 1e-3},
    )
    assert set(summary) >= {"val_acc", "test_acc", "val_acc_class_0", "val_acc_class_1"}
    assert 0.0 <= summary["test_acc"] <= 1.0


def test_retrain_full_scores_epochs_on_the_test_split(shapes: Path) -> None:
    summary = run(
        epochs=1,
        model={"arch": "lenet", "n_base": 4},
        data={"name": "folder", "root": str(shapes), "retrain_full": True},
    )
    assert summary["val_acc"] == summary["test_acc"]


@pytest.mark.slow  # trains a classifier three times
def test_same_seed_same_result_and_checkpoint_resume(tmp_path: Path) -> None:
    config = {"epochs": 2, "seed": 3, "aug": {"names": ["noise"]}, "data": {"batch_size": 32}}
    full = run(**config)
    assert run(**config) == full
    first = MemoryLogger(run_dir=tmp_path, stop_after=1)
    run(first, **config)
    assert len(first.history) == 1
    resumed = MemoryLogger(run_dir=tmp_path)
    summary = run(resumed, **config)
    assert [h["_step"] for h in resumed.history] == [1]
    assert summary["val_loss"] == pytest.approx(full["val_loss"], rel=1e-6)


def test_binary_loss_on_three_classes_fails_in_one_line(tmp_path: Path) -> None:
    for i, name in enumerate(("a", "b", "c")):
        (tmp_path / name).mkdir()
        for j in range(4):
            Image.new("RGB", (16, 16), (80 * i, 10 * j, 0)).save(tmp_path / name / f"{j}.png")
    with pytest.raises(SweeperError) as info:
        run(
            loss={"name": "bce"},
            model={"arch": "lenet"},
            data={"name": "folder", "root": str(tmp_path), "val_fraction": 0.25},
        )
    assert str(info.value) == (
        "loss.name 'bce' is binary (one logit) but the data has 3 classes; use cross_entropy"
    )


def test_shape_known_only_at_read_time_fails_in_one_line(tmp_path: Path) -> None:
    for i, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for j in range(4):
            pixels = np.full((28, 28, 3), 60 * i + j, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{j}.png")
    with pytest.raises(SweeperError) as info:
        run(
            model={"arch": "lenet5"},
            data={"name": "folder", "root": str(tmp_path), "val_fraction": 0.5},
        )
    assert str(info.value) == (
        "model.arch 'lenet5' does not fit the data: lenet5 takes 3x32x32 images"
    )


def test_missing_data_root_fails_the_trial(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match=r"mnist not found under data.root"):
        run(data={"name": "mnist", "root": str(tmp_path)})
    with pytest.raises(SweeperError, match=r"does not exist"):
        run(data={"name": "folder", "root": str(tmp_path / "none")}, model={"arch": "lenet"})

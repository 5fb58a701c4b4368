"""Data: readers for every layout, stratified splits, normalisation, augmentations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import AugConfig, ClassifyData
from sweeper.trainers.classify.data.augment import Augment
from sweeper.trainers.classify.data.build import load_data
from sweeper.trainers.classify.data.synthetic import write_shapes
from sweeper.trainers.common.generate import ensure_generated

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"), seed=0)


def load(**fields: object):
    return load_data(ClassifyData.model_validate(fields), CPU)


def test_digits_stratified_split_and_normalisation() -> None:
    data = load(name="digits", val_fraction=0.2, test_fraction=0.1)
    assert data.shape == (1, 8, 8)
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert len(data.test) == 180
    for split in (data.val, data.test):  # every class keeps its share, within one image
        counts = torch.bincount(split.y, minlength=10).float()
        assert (counts - len(split) / 10).abs().max() <= 2
    assert data.train.x.mean().abs() < 1e-4
    assert (data.train.x.std() - 1).abs() < 1e-2


def test_split_seed_fixes_the_split() -> None:
    first, again = load(name="digits", split_seed=1), load(name="digits", split_seed=1)
    other = load(name="digits", split_seed=2)
    assert torch.equal(first.val.x, again.val.x)
    assert not torch.equal(first.val.x, other.val.x)


def test_retrain_full_merges_validation_into_training() -> None:
    data = load(name="digits", retrain_full=True, test_fraction=0.2)
    assert data.val is None
    assert len(data.train) == 1797 - len(data.test)


def test_resize_and_channels() -> None:
    data = load(name="digits", image_size=[28, 28], channels=3)
    assert data.shape == (3, 28, 28)
    assert data.train.x.shape[1:] == (3, 28, 28)


def test_folder_layout(shapes: Path) -> None:
    data = load(name="folder", root=str(shapes), val_fraction=0.25)
    assert data.classes == ["circle", "square"]
    assert data.shape == (3, 32, 32)
    assert len(data.train) + len(data.val) == 120
    assert len(data.test) == 40
    gray = load(name="folder", root=str(shapes), channels=1, image_size=[16, 16])
    assert gray.shape == (1, 16, 16)


def test_folder_without_test_subfolder(tmp_path: Path, shapes: Path) -> None:
    root = tmp_path / "flat"
    for name in ("circle", "square"):
        (root / name).mkdir(parents=True)
        for png in sorted((shapes / "train" / name).glob("*.png"))[:10]:
            (root / name / png.name).write_bytes(png.read_bytes())
    data = load(name="folder", root=str(root), val_fraction=0.2)
    assert data.test is None
    assert len(data.train) == 16


def test_synthetic_folder_written_once(tmp_path: Path) -> None:
    root = tmp_path / "gen" / "shapes"
    ensure_generated(root, write_shapes)
    written = sorted(root.rglob("*.png"))
    assert len(written) == 160
    stamp = written[0].stat().st_mtime_ns
    ensure_generated(root, write_shapes)
    assert written[0].stat().st_mtime_ns == stamp
    data = load(name="folder", root=str(tmp_path / "other"), synthetic=True)
    assert data.classes == ["circle", "square"]


def test_missing_folder_root(tmp_path: Path) -> None:
    with pytest.raises(SweeperError) as info:
        load(name="folder", root=str(tmp_path / "absent"))
    message = str(info.value)
    assert f"data.root '{tmp_path / 'absent'}' does not exist" in message
    assert "data.synthetic: true" in message


@pytest.mark.parametrize(("name", "layout"), [("mnist", "MNIST/raw"), ("cifar10", "cifar-10")])
def test_missing_torchvision_root(tmp_path: Path, name: str, layout: str) -> None:
    with pytest.raises(SweeperError) as info:
        load(name=name, root=str(tmp_path))
    message = str(info.value)
    assert f"{name} not found under data.root '{tmp_path}'" in message
    assert layout in message
    assert "data.download: true" in message


def _idx(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: zero, dtype code 8 (ubyte), ndim, big-endian sizes, data."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_reader_on_torchvision_layout(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load(name="mnist", root=str(tmp_path), val_fraction=0.25)
    assert data.shape == (1, 28, 28)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 20)
    assert sorted(data.val.y.tolist()) == list(range(10))


def _augment(*names: str, **cfg: object) -> Augment:
    return Augment(
        AugConfig(names=list(names), **cfg), torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    )


def test_flips_act_per_image() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    out = _augment("hflip")(x)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (flipped | kept).all()
    assert 10 < flipped.sum() < 54


def test_crop_is_a_window_of_the_padded_image() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    out = _augment("crop", crop_padding=2)(x)
    padded = F.pad(x, (2, 2, 2, 2))
    for o, p in zip(out, padded, strict=True):
        windows = [p[:, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(o, w) for w in windows)
    assert not torch.equal(out, x)


@pytest.mark.parametrize("name", ["vflip", "rotate", "translate", "jitter", "noise", "erase"])
def test_each_augmentation_keeps_shape_and_changes_the_batch(name: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(32, 3, 16, 16)
    out = _augment(name, degrees=30, translate=3, erase_prob=1.0)(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, x)


def test_translation_by_whole_pixels_moves_content() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    augment = Augment(
        AugConfig(names=["translate"], translate=2), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    )
    torch.manual_seed(3)
    out = augment(x)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)
    row, col = divmod(int(out.flatten().argmax()), 9)
    assert abs(row - 4) <= 2 and abs(col - 4) <= 2

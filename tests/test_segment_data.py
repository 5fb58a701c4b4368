"""Segment data: the three real layouts, the generator, bad files, splits and augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sweeper.errors import SweeperError
from sweeper.trainers.segment.config import SegmentAug, SegmentConfig
from sweeper.trainers.segment.data.augment import build_augment
from sweeper.trainers.segment.data.images import check_sizes, decode
from sweeper.trainers.segment.data.layouts import list_pairs
from sweeper.trainers.segment.data.loaders import build_loaders, split
from sweeper.trainers.segment.data.synthetic import write_xray


def _png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _half(width: int, height: int, right: bool) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    columns = slice(width // 2, None) if right else slice(None, width // 2)
    mask[:, columns] = 255
    return mask


def test_montgomery_mask_is_the_union_of_both_lungs(tmp_path: Path) -> None:
    for name in ("MCUCXR_0001_0.png", "MCUCXR_0002_1.png"):
        _png(tmp_path / "CXR_png" / name, np.full((40, 48), 100))
        _png(tmp_path / "ManualMask" / "leftMask" / name, _half(48, 40, right=False))
        _png(tmp_path / "ManualMask" / "rightMask" / name, _half(48, 40, right=True))
    listing = list_pairs(tmp_path)
    assert listing.layout == "montgomery" and len(listing.pairs) == 2
    image, mask = decode(listing.pairs[0], 32)
    assert image.shape == mask.shape == (32, 32) and image.dtype == np.uint8
    assert mask.min() == mask.max() == 1  # left half + right half = everything


def test_shenzhen_skips_and_counts_images_without_masks(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "CXR_png" / f"CHNCXR_000{i}_0.png", np.zeros((32, 32)))
    _png(tmp_path / "masks" / "CHNCXR_0001_0_mask.png", _half(32, 32, right=True))
    listing = list_pairs(tmp_path)
    assert listing.layout == "shenzhen" and listing.skipped == 2
    assert [p.image.name for p in listing.pairs] == ["CHNCXR_0001_0.png"]
    assert decode(listing.pairs[0], 32)[1][:, 16:].all()


def test_generator_writes_the_generic_layout(tmp_path: Path) -> None:
    write_xray(tmp_path, seed=3, n=6, size=64)
    listing = list_pairs(tmp_path)
    assert listing.layout == "folders" and len(listing.pairs) == 6
    image, mask = decode(listing.pairs[0], 64)
    share = mask.mean()
    assert 0.1 < share < 0.5  # two lungs inside the body, not the whole picture
    # lungs are darker than the rest of the body: the task is learnable but not a threshold
    assert image[mask == 1].mean() < image[mask == 0].mean()


def test_bad_files_are_one_line_naming_the_file(tmp_path: Path) -> None:
    image = _png(tmp_path / "images" / "a.png", np.zeros((32, 32)))
    mask = _png(tmp_path / "masks" / "a.png", np.zeros((16, 32)))
    (pair,) = list_pairs(tmp_path).pairs
    with pytest.raises(SweeperError, match=f"mask {mask} is 32x16 but its image {image} is 32x32"):
        check_sizes(pair)
    grey = np.zeros((32, 32))
    grey[4:8] = 128
    _png(mask, grey)
    with pytest.raises(SweeperError, match=r"is not binary: it holds 0, 128 \(expected 0 and 255"):
        decode(pair, 32)
    _png(tmp_path / "images" / "b.png", np.zeros((32, 32)))
    with pytest.raises(SweeperError, match=r"b\.png has no mask"):
        list_pairs(tmp_path)


@pytest.mark.parametrize(
    ("folders", "words"),
    [
        ([], "does not exist"),
        (["images"], "masks is missing"),
        (["CXR_png", "ManualMask"], "Montgomery mask folder"),
        (["somewhere"], "is not a chest X-ray layout"),
    ],
)
def test_missing_folders(tmp_path: Path, folders: list[str], words: str) -> None:
    root = tmp_path / "xray"
    for folder in folders:
        (root / folder).mkdir(parents=True)
    with pytest.raises(SweeperError, match=words):
        list_pairs(root)


def test_split_is_seeded_and_disjoint() -> None:
    train, val, test = split(20, 0.2, 0.1, seed=1)
    assert (len(train), len(val), len(test)) == (14, 4, 2)
    assert sorted(train + val + test) == list(range(20))
    assert split(20, 0.2, 0.1, seed=1) == (train, val, test)
    assert split(20, 0.2, 0.1, seed=2) != (train, val, test)
    with pytest.raises(SweeperError, match="cannot fill"):
        split(2, 0.5, 0.5, seed=0)


def test_augmentation_moves_image_and_mask_together_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    mask = (image > 128).astype(np.uint8)
    cfg = SegmentAug(names=["hflip", "affine", "elastic"], p=1.0, rotate=30)
    out = build_augment(cfg, seed=5)(image=image, mask=mask)
    assert out["image"].shape == (64, 64) and set(np.unique(out["mask"])) <= {0, 1}
    assert not np.array_equal(out["mask"], mask)
    # geometry is shared: where the moved mask is lung, the moved image was bright
    inside = out["mask"] == 1
    assert out["image"][inside].mean() > out["image"][~inside & (out["image"] > 0)].mean() + 40
    again = build_augment(cfg, seed=5)(image=image, mask=mask)
    assert np.array_equal(again["image"], out["image"])
    assert build_augment(SegmentAug(), seed=5) is None


def test_loaders_cache_decoded_uint8_batches(tmp_path: Path) -> None:
    write_xray(tmp_path / "x", n=10, size=64)
    config = SegmentConfig.model_validate(
        {"data": {"root": str(tmp_path / "x"), "image_size": 32, "batch_size": 4}}
    )
    loaders = build_loaders(config, torch.Generator().manual_seed(0), pin=False)
    assert loaders.train.dataset.cache is not None
    images, masks = next(iter(loaders.train))
    assert images.shape == masks.shape == (4, 1, 32, 32) and images.dtype == torch.uint8
    assert loaders.sizes() == {"n_train": 7.0, "n_val": 2.0, "n_test": 1.0, "n_skipped": 0.0}
    uncached = config.model_copy(update={"data": config.data.model_copy(update={"cache_mb": 0})})
    loaders = build_loaders(uncached, torch.Generator().manual_seed(0), pin=False)
    assert loaders.val.dataset.cache is None
    assert torch.equal(next(iter(loaders.val))[1], next(iter(loaders.val))[1])

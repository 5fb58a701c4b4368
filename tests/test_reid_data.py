"""The VeRi-776 loader on generated data, the generator's layout, and the transforms."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from sweeper.errors import SweeperError
from sweeper.trainers.common.generate import ensure_generated
from sweeper.trainers.reid.config import AUGMENTS
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.reid.data.transforms import KNOWN, build_transforms
from sweeper.trainers.reid.data.veri import load_veri

NAME = re.compile(r"^(\d{4})_c(\d{3})_(\d{8})_(\d)\.jpg$")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_veri(tmp_path_factory.mktemp("veri"), seed=0)


def raw_ids(path: Path) -> tuple[int, int]:
    match = NAME.match(path.name)
    assert match, path.name
    return int(match[1]), int(match[2])


def test_generator_writes_the_real_layout(root: Path) -> None:
    for split in ("image_train", "image_query", "image_test"):
        files = sorted((root / split).iterdir())
        assert files and all(NAME.match(f.name) for f in files)
        with Image.open(files[0]) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
    cams_per_id: dict[int, set[int]] = {}
    for f in (root / "image_train").iterdir():
        pid, cam = raw_ids(f)
        assert 1 <= cam <= 20
        cams_per_id.setdefault(pid, set()).add(cam)
    assert len(cams_per_id) >= 8 and all(len(c) >= 3 for c in cams_per_id.values())


def test_loader_relabels_train_and_keeps_raw_test_ids(root: Path) -> None:
    veri = load_veri(root)
    labels = sorted({item.pid for item in veri.train})
    assert labels == list(range(veri.num_train_ids))
    label_of: dict[int, int] = {}
    for item in veri.train:  # one raw id <-> one label, in raw-id order
        raw, cam = raw_ids(item.path)
        assert label_of.setdefault(raw, item.pid) == item.pid
        assert item.camid == cam
    assert sorted(label_of) == sorted(label_of, key=label_of.get)
    for item in veri.query + veri.gallery:
        assert (item.pid, item.camid) == raw_ids(item.path)
    test_ids = {item.pid for item in veri.gallery}
    assert {item.pid for item in veri.query} <= test_ids
    assert not test_ids & set(label_of)  # train and test vehicles are disjoint, as in VeRi
    for q in veri.query:  # every query has a true match from another camera
        assert any(g.pid == q.pid and g.camid != q.camid for g in veri.gallery)


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match=r"VeRi-776 root .*nowhere does not exist.*synthetic"):
        load_veri(tmp_path / "nowhere")


def test_missing_split_and_no_matching_files(tmp_path: Path, root: Path) -> None:
    shutil.copytree(root, tmp_path / "v")
    shutil.rmtree(tmp_path / "v" / "image_query")
    with pytest.raises(SweeperError, match=r"image_query is missing"):
        load_veri(tmp_path / "v")
    (tmp_path / "v" / "image_query").mkdir()
    (tmp_path / "v" / "image_query" / "car.jpg").write_bytes(b"")
    with pytest.raises(SweeperError, match=r"no VVVV_cCCC_FFFFFFFF_N.jpg images in .*image_query"):
        load_veri(tmp_path / "v")


def test_ensure_synthetic_writes_once(tmp_path: Path) -> None:
    target = tmp_path / "data" / "veri-synth"
    assert ensure_generated(target, write_veri) == target
    stamp = (target / "image_train").stat().st_mtime_ns
    ensure_generated(target, write_veri)
    assert (target / "image_train").stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == ["veri-synth"]  # no scratch left


def test_every_augmentation_by_name(root: Path) -> None:
    assert set(AUGMENTS) == KNOWN
    with Image.open(next((root / "image_train").iterdir())) as image:
        image = image.convert("RGB")
        for names in [[], *([name] for name in AUGMENTS), list(AUGMENTS)]:
            train, evaluate = build_transforms((48, 32), names)
            torch.manual_seed(0)
            for _ in range(4):  # the random branches too
                out = train(image)
                assert out.shape == (3, 48, 32) and torch.isfinite(out).all()
            assert evaluate(image).shape == (3, 48, 32)
    with pytest.raises(ValueError, match="unknown augmentations"):
        build_transforms((48, 32), ["rotate"])

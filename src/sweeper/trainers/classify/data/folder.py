"""ImageFolder layout: one sub-folder per class, in root or in root/train and root/test.

Every image is decoded and resized once, at load; epochs then index the stored tensor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sweeper.errors import SweeperError
from sweeper.trainers.classify.data.check import EXTENSIONS
from sweeper.trainers.classify.data.source import Source


def read_folder(root: str, channels: int, size: tuple[int, int] | None) -> Source:
    """Decode every image once into uint8 [N, channels, H, W], resized bilinearly to `size`
    (height, width; the first image's size when None); labels [N] int64 by sorted class name.

    Raises:
        SweeperError: root is not a folder, it holds fewer than two classes, or test/ has a
            class that train/ has not.
    """
    base = Path(root)
    if not base.is_dir():
        raise SweeperError(
            f"data.root {root!r} does not exist: it should hold one sub-folder of images per "
            "class (or train/ and test/ holding them); data.synthetic: true writes a generated "
            "two-shape set there"
        )
    train_dir = base / "train" if (base / "train").is_dir() else base
    files = _listing(train_dir)
    classes = sorted(files)
    if len(classes) < 2:
        raise SweeperError(
            f"{str(train_dir)!r} needs at least two class sub-folders with images, "
            f"found {len(classes)}"
        )
    if size is None:
        with Image.open(files[classes[0]][0]) as first:
            size = (first.height, first.width)
    x_train, y_train = _decode(files, classes, channels, size)
    test_dir = base / "test"
    if train_dir is base or not test_dir.is_dir():
        return Source(x_train, y_train, classes)
    test_files = _listing(test_dir)
    strangers = sorted(set(test_files) - set(classes))
    if strangers:
        raise SweeperError(f"{str(test_dir)!r} has classes not in train/: {', '.join(strangers)}")
    x_test, y_test = _decode(test_files, classes, channels, size)
    return Source(x_train, y_train, classes, x_test, y_test)


def _listing(directory: Path) -> dict[str, list[Path]]:
    listing = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in EXTENSIONS)
        if images:
            listing[sub.name] = images
    return listing


def _decode(
    files: dict[str, list[Path]], classes: list[str], channels: int, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    mode = "L" if channels == 1 else "RGB"
    height, width = size
    arrays, labels = [], []
    for label, name in enumerate(classes):
        for path in files.get(name, []):
            with Image.open(path) as file:
                image = file.convert(mode)
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(image, dtype=np.uint8).reshape(height, width, -1))
            labels.append(label)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels)

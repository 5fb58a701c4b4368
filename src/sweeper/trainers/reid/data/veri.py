"""VeRi-776 on disk: image_train/ (training), image_query/ and image_test/ (the gallery)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sweeper.errors import SweeperError

NAME = re.compile(r"^(\d{4})_c(\d{3})_(\d{8})_(\d+)\.jpg$")
SPLITS = ("image_train", "image_query", "image_test")
HOW_TO_GET = (
    "VeRi-776 is distributed by its authors on request (https://vehiclereid.github.io/VeRi/); "
    "unpack it there, or set data.synthetic: true to generate a small stand-in"
)


@dataclass(frozen=True)
class Item:
    """One image: its file, vehicle id and camera id (both from the VeRi file name)."""

    path: Path
    pid: int
    camid: int


@dataclass(frozen=True)
class Veri:
    """The images of a VeRi-776 root, split as the protocol splits them."""

    train: list[Item]
    """Identities relabelled 0..num_train_ids-1, for the classifier."""
    query: list[Item]
    gallery: list[Item]
    """Query and gallery keep the raw vehicle and camera ids that the protocol compares."""
    num_train_ids: int


def _scan(folder: Path) -> list[Item]:
    if not folder.is_dir():
        raise SweeperError(f"VeRi-776 folder {folder} is missing: {HOW_TO_GET}")
    items = []
    for name in sorted(os.listdir(folder)):
        match = NAME.match(name)
        if match:
            items.append(Item(folder / name, pid=int(match[1]), camid=int(match[2])))
    if not items:
        raise SweeperError(
            f"no VVVV_cCCC_FFFFFFFF_N.jpg images in {folder}: not a VeRi-776 layout; {HOW_TO_GET}"
        )
    return items


def load_veri(root: str | Path) -> Veri:
    """The three splits' image lists, training identities relabelled 0..n-1 in id order.

    Raises:
        SweeperError: root or a split folder is missing, or a split holds no VeRi-named image.
    """
    root = Path(root)
    if not root.is_dir():
        raise SweeperError(f"VeRi-776 root {root} does not exist: {HOW_TO_GET}")
    train, query, gallery = (_scan(root / split) for split in SPLITS)
    label = {pid: i for i, pid in enumerate(sorted({item.pid for item in train}))}
    train = [Item(item.path, label[item.pid], item.camid) for item in train]
    return Veri(train, query, gallery, num_train_ids=len(label))

"""Is a reid trial's data there? Checked before the first trial, without reading it."""

from __future__ import annotations

from pathlib import Path

from sweeper.trainers.common.check import MissingInput, first_entry, local_file, writable_target
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.veri import HOW_TO_GET, NAME, SPLITS


def check(config: ReidConfig) -> None:
    """Raises MissingInput naming the field when a trial could not read VeRi-776 (or write
    the synthetic stand-in) at data.root, or its backbone weights file."""
    local_file("model.pretrained", config.model.pretrained)
    root = Path(config.data.root)
    if (
        config.data.synthetic and not root.is_dir()
    ):  # common.generate.ensure_generated writes it there
        writable_target("data.root", config.data.root)
        return
    if not root.is_dir():
        raise MissingInput("data.root", f"{root} does not exist: {HOW_TO_GET}")
    for split in SPLITS:
        folder = root / split
        if not first_entry(folder, lambda entry: NAME.match(entry.name) is not None):
            what = "no VVVV_cCCC_FFFFFFFF_N.jpg images" if folder.is_dir() else "is missing"
            raise MissingInput("data.root", f"{folder} {what}: not a VeRi-776 layout; {HOW_TO_GET}")

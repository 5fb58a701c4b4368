"""Is a segment trial's data there? Checked before the first trial, without reading it."""

from __future__ import annotations

from pathlib import Path

from sweeper.errors import SweeperError
from sweeper.trainers.common.check import MissingInput, first_entry, local_file, writable_target
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.layouts import EXTENSIONS, LAYOUT_HELP, detect

IMAGES = {"montgomery": "CXR_png", "shenzhen": "CXR_png", "folders": "images"}


def check(config: SegmentConfig) -> None:
    """Raises MissingInput naming the field when a trial could not find a chest X-ray layout
    (or write the synthetic set) at data.root, or its encoder weights file."""
    local_file("model.encoder_weights", config.model.encoder_weights)
    data = config.data
    root = Path(data.root)
    if data.synthetic and not root.is_dir():  # common.generate.ensure_generated writes it there
        writable_target("data.root", data.root)
        return
    if not root.is_dir():
        raise MissingInput("data.root", f"{root} does not exist: {LAYOUT_HELP}")
    try:
        layout = detect(root) if data.layout == "auto" else data.layout
    except SweeperError:
        raise MissingInput(
            "data.root", f"{root} is not a chest X-ray layout: {LAYOUT_HELP}"
        ) from None
    images = root / IMAGES[layout]
    if not first_entry(images, lambda entry: Path(entry.name).suffix.lower() in EXTENSIONS):
        raise MissingInput("data.root", f"{images} holds no images ({layout} layout)")

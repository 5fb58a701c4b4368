"""Where the images and masks of each supported data set live, as (image, mask files) pairs.

Montgomery County: CXR_png/MCUCXR_####_{0|1}.png with ManualMask/leftMask/ and rightMask/
(same names; the lung mask is their union). Shenzhen with the community masks:
CXR_png/CHNCXR_####_{0|1}.png and masks/CHNCXR_####_{0|1}_mask.png; images without a mask
are skipped and counted. Generic: images/ and masks/ with matching file stems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweeper.errors import SweeperError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
LAYOUT_HELP = (
    "expected Montgomery (CXR_png/ + ManualMask/leftMask, rightMask), Shenzhen (CXR_png/ + "
    "masks/) or images/ + masks/; data.synthetic: true writes a generated set there"
)


@dataclass(frozen=True)
class Pair:
    """An X-ray and its lung mask file(s)."""

    image: Path
    masks: tuple[Path, ...]
    """One file, or several (Montgomery's left and right lung) whose union is the mask."""


@dataclass(frozen=True)
class Listing:
    """The pairs found under a root, and in which layout."""

    layout: str
    pairs: list[Pair]
    skipped: int
    """Images that have no mask (Shenzhen has masks for part of its images)."""


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SweeperError(f"{folder} is missing: {LAYOUT_HELP}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def detect(root: Path) -> str:
    """The layout of root by its folders: montgomery, shenzhen or folders.

    Raises:
        SweeperError: root does not exist or has none of the layouts' folders.
    """
    if not root.is_dir():
        raise SweeperError(f"data.root {str(root)!r} does not exist: {LAYOUT_HELP}")
    if (root / "CXR_png").is_dir() and (root / "ManualMask").is_dir():
        return "montgomery"
    if (root / "CXR_png").is_dir() and (root / "masks").is_dir():
        return "shenzhen"
    if (root / "images").is_dir() or (root / "masks").is_dir():
        return "folders"
    raise SweeperError(f"data.root {str(root)!r} is not a chest X-ray layout: {LAYOUT_HELP}")


def montgomery(root: Path) -> Listing:
    """CXR_png/ with ManualMask/leftMask and rightMask of the same file names.

    Raises:
        SweeperError: a mask folder, or an image's left or right mask, is missing.
    """
    sides = [root / "ManualMask" / side for side in ("leftMask", "rightMask")]
    for side in sides:
        if not side.is_dir():
            raise SweeperError(f"Montgomery mask folder {side} is missing")
    pairs = []
    for image in _images(root / "CXR_png"):
        masks = tuple(side / image.name for side in sides)
        for mask in masks:
            if not mask.is_file():
                raise SweeperError(f"{image} has no mask {mask}")
        pairs.append(Pair(image, masks))
    return Listing("montgomery", pairs, 0)


def shenzhen(root: Path) -> Listing:
    """CXR_png/ with masks/<stem>[_mask].<ext>; images without a mask are counted, not listed.

    Raises:
        SweeperError: CXR_png/ or masks/ is missing.
    """
    masks = {p.stem.removesuffix("_mask"): p for p in _images(root / "masks")}
    images = _images(root / "CXR_png")
    pairs = [Pair(p, (masks[p.stem],)) for p in images if p.stem in masks]
    return Listing("shenzhen", pairs, len(images) - len(pairs))


def folders(root: Path) -> Listing:
    """images/ with masks/ of the same file stems.

    Raises:
        SweeperError: a folder is missing, or an image has no mask.
    """
    masks = {p.stem: p for p in _images(root / "masks")}
    pairs = []
    for image in _images(root / "images"):
        if image.stem not in masks:
            raise SweeperError(f"{image} has no mask in {root / 'masks'} (same file stem)")
        pairs.append(Pair(image, (masks[image.stem],)))
    return Listing("folders", pairs, 0)


READERS = {"montgomery": montgomery, "shenzhen": shenzhen, "folders": folders}


def list_pairs(root: str | Path, layout: str = "auto") -> Listing:
    """Every (image, masks) pair under root, in file-name order.

    Raises:
        SweeperError: root is missing, not in the layout, or holds no image with a mask.
    """
    root = Path(root)
    if layout == "auto":
        layout = detect(root)
    elif not root.is_dir():
        raise SweeperError(f"data.root {str(root)!r} does not exist: {LAYOUT_HELP}")
    listing = READERS[layout](root)
    if not listing.pairs:
        raise SweeperError(f"no image with a mask under {root} ({layout} layout)")
    return listing

"""What each data set looks like before it is read. Torch-free: used at spec time."""

from __future__ import annotations

DATASETS = ("digits", "mnist", "cifar10", "folder", "xor")

NATIVE_SHAPE: dict[str, tuple[int | None, ...]] = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "folder": (3, None, None),
    "xor": (2,),
}
"""(channels, height, width) as stored; folder images are read as RGB unless told otherwise."""

N_CLASSES: dict[str, int | None] = {
    "digits": 10,
    "mnist": 10,
    "cifar10": 10,
    "folder": None,
    "xor": 2,
}

HAS_TEST_SPLIT: dict[str, bool | None] = {
    "digits": False,
    "mnist": True,
    "cifar10": True,
    "folder": None,
    "xor": True,
}
"""None: a folder set has a test split when its root holds train/ and test/."""


def input_shape(
    name: str, image_size: tuple[int, int] | None, channels: int | None
) -> tuple[int | None, ...]:
    """A data set's input shape, (C, H, W) or (F,), as configured: None where only the files
    can tell (a folder set's channels or size)."""
    native = NATIVE_SHAPE[name]
    if len(native) == 1:
        return native
    height_width = tuple(image_size) if image_size else native[1:]
    return (channels or native[0], *height_width)


def shape_text(shape: tuple[int | None, ...]) -> str:
    """'3x32x32', with '?' for a size not known before reading the files."""
    return "x".join("?" if s is None else str(s) for s in shape)

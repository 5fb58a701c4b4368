"""A small VeRi-776 stand-in written to disk in the real layout, for tests and smoke runs.

Identity is carried by body colour, body type and livery (stripe, roof box); the camera
changes background, lighting and viewpoint, so a model has to see past the camera to
match a vehicle, as on the real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

TRAIN_IDS, TEST_IDS = 12, 8
CAMERAS_PER_ID, IMAGES_PER_CAMERA, QUERY_CAMERAS = 4, 3, 2
NUM_CAMERAS = 20
VIEWS = ("left", "right", "front", "rear")
CABINS = {  # side-view cabin: x of its four corners along an 80-long body, then its height
    "sedan": (18, 28, 56, 66, 16),
    "van": (4, 4, 70, 78, 22),
    "truck": (54, 56, 78, 80, 20),
    "hatchback": (10, 20, 62, 70, 18),
}


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    red, green, blue = (int(c) for c in rng.integers(low, high, 3))
    return red, green, blue


def _identity(rng: np.random.Generator) -> dict:
    return {
        "body": _colour(rng, 20, 236),
        "type": list(CABINS)[rng.integers(len(CABINS))],
        "stripe": _colour(rng) if rng.random() < 0.6 else None,
        "roof_box": bool(rng.random() < 0.3),
    }


def _camera(rng: np.random.Generator) -> dict:
    return {
        "sky": _colour(rng, 60, 220),
        "road": _colour(rng, 40, 140),
        "gain": rng.uniform(0.6, 1.3, 3),
        "views": rng.choice(VIEWS, size=2, replace=False).tolist(),
    }


def _draw_side(draw: ImageDraw.ImageDraw, ident: dict, x: float, y: float, s: float) -> None:
    length, height = 80 * s, (30 if ident["type"] == "sedan" else 38) * s
    draw.rectangle([x, y, x + length, y + height], fill=ident["body"])
    *xs, rise = CABINS[ident["type"]]
    cabin = [(x + dx * s, y - (rise * s if 0 < i < 3 else 0)) for i, dx in enumerate(xs)]
    draw.polygon(cabin, fill=ident["body"], outline=(30, 30, 30))
    top = min(p[1] for p in cabin)
    draw.rectangle(
        [cabin[1][0] + 3 * s, top + 3 * s, cabin[2][0] - 3 * s, y - 2 * s], fill=(90, 120, 150)
    )
    if ident["stripe"] is not None:
        draw.rectangle([x, y + height * 0.45, x + length, y + height * 0.6], fill=ident["stripe"])
    if ident["roof_box"]:
        draw.rectangle([cabin[1][0], top - 6 * s, cabin[2][0], top], fill=(40, 40, 40))
    for wx in (x + 16 * s, x + 64 * s):
        draw.ellipse(
            [wx - 9 * s, y + height - 9 * s, wx + 9 * s, y + height + 9 * s], fill=(15, 15, 15)
        )
        draw.ellipse(
            [wx - 4 * s, y + height - 4 * s, wx + 4 * s, y + height + 4 * s], fill=(150, 150, 150)
        )


def _draw_end(
    draw: ImageDraw.ImageDraw, ident: dict, x: float, y: float, s: float, front: bool
) -> None:
    width, height = 56 * s, (34 if ident["type"] == "sedan" else 44) * s
    draw.rectangle([x, y, x + width, y + height], fill=ident["body"])
    draw.rectangle(
        [x + 6 * s, y - 18 * s, x + width - 6 * s, y], fill=ident["body"], outline=(30, 30, 30)
    )
    draw.rectangle([x + 9 * s, y - 15 * s, x + width - 9 * s, y - 3 * s], fill=(90, 120, 150))
    if ident["stripe"] is not None:
        draw.rectangle([x, y + height * 0.5, x + width, y + height * 0.62], fill=ident["stripe"])
    if ident["roof_box"]:
        draw.rectangle([x + 8 * s, y - 24 * s, x + width - 8 * s, y - 18 * s], fill=(40, 40, 40))
    lamp = (250, 250, 210) if front else (200, 20, 20)
    for lx in (x + 4 * s, x + width - 14 * s):
        draw.rectangle([lx, y + 6 * s, lx + 10 * s, y + 12 * s], fill=lamp)
    for wx in (x + 4 * s, x + width - 12 * s):
        draw.rectangle([wx, y + height, wx + 8 * s, y + height + 6 * s], fill=(15, 15, 15))


def _render(ident: dict, cam: dict, rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(100, 140)), int(rng.integers(80, 110))
    image = Image.new("RGB", (width, height), cam["sky"])
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.45, 0.6))
    draw.rectangle([0, horizon, width, height], fill=cam["road"])
    for _ in range(3):  # clutter, so the background is not a constant per camera
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, horizon))
        draw.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill=_colour(rng, 40, 200))
    view = cam["views"][rng.integers(2)]
    scale = rng.uniform(0.85, 1.15)
    x, y = width * rng.uniform(0.1, 0.25), height * rng.uniform(0.42, 0.5)
    if view in ("left", "right"):
        _draw_side(draw, ident, x - 4, y, scale)
        if view == "left":
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    else:
        _draw_end(draw, ident, x + 10, y, scale, front=view == "front")
    pixels = np.asarray(image, dtype=np.float32) * cam["gain"] * rng.uniform(0.85, 1.15)
    pixels += rng.normal(0, 6, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


def write_veri(out: str | Path, seed: int = 0) -> Path:
    """Write image_train/, image_query/, image_test/ with VVVV_cCCC_FFFFFFFF_N.jpg names."""
    root = Path(out)
    folders = {name: root / name for name in ("image_train", "image_query", "image_test")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 777), TRAIN_IDS + TEST_IDS, replace=False)
    cameras = {cam: _camera(rng) for cam in range(1, NUM_CAMERAS + 1)}
    for i, vid in enumerate(ids):
        ident = _identity(rng)
        seen_by = rng.choice(np.arange(1, NUM_CAMERAS + 1), CAMERAS_PER_ID, replace=False)
        for j, cam in enumerate(seen_by):
            frame = int(rng.integers(0, 10**7))
            for k in range(IMAGES_PER_CAMERA):
                if i < TRAIN_IDS:
                    split = "image_train"
                else:  # test identity: the first image of the first cameras is a query
                    split = "image_query" if j < QUERY_CAMERAS and k == 0 else "image_test"
                name = f"{vid:04d}_c{cam:03d}_{frame + 15 * k:08d}_0.jpg"
                _render(ident, cameras[int(cam)], rng).save(folders[split] / name, quality=90)
    return root

"""Augmentation presets do what their names say; `sweeper augment` pictures them per trainer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from pydantic import ValidationError
from typer.testing import CliRunner

from sweeper.analysis.augment_grid import draw_grid, figure_size, layout
from sweeper.cli import app
from sweeper.trainers.classify.config import AUG_PRESETS, AugConfig, AugPreset, ClassifyConfig
from sweeper.trainers.classify.data.augment import Augment
from sweeper.trainers.classify.data.synthetic import write_shapes
from sweeper.trainers.registry import get_trainer
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.synthetic import write_veri
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.synthetic import write_xray


def preset(name: str, mean: float = 0.0, std: float = 1.0, channels: int = 1) -> Augment:
    """The classify augmentation a preset resolves to, on images normalised by (mean, std)."""
    view = (1, channels, 1, 1)
    return Augment(AugConfig(preset=name), torch.full(view, mean), torch.full(view, std))


def test_every_preset_is_defined_and_validates() -> None:
    assert set(get_args(AugPreset)) == set(AUG_PRESETS)
    for name, fixed in AUG_PRESETS.items():
        config = AugConfig(preset=name)
        for field, value in fixed.items():
            assert getattr(config, field) == value, (name, field)
        assert AugConfig.model_validate(config.model_dump()) == config  # stored runs reload


def test_preset_bounds_as_named() -> None:
    assert AugConfig(preset="rotate10").degrees == 10
    assert AugConfig(preset="rotate_upto90").degrees == 90
    assert AugConfig(preset="shift5").translate == 5
    combined = AugConfig(preset="combined")
    assert combined.names == ["hflip", "rotate", "translate", "contrast"]
    assert (combined.degrees, combined.translate) == (10, 5)


def test_preset_conflicts_are_refused_with_the_field_named() -> None:
    conflict = re.escape("preset 'rotate10' sets degrees to 10.0, not 30")
    with pytest.raises(ValidationError, match=conflict):
        ClassifyConfig.model_validate({"aug": {"preset": "rotate10", "degrees": 30}})
    with pytest.raises(ValidationError, match=r"aug\.preset"):
        ClassifyConfig.model_validate({"aug": {"preset": "rotate45"}})
    assert AugConfig(preset="rotate10", degrees=10).names == ["rotate"]


def test_none_is_the_identity() -> None:
    x = torch.randn(8, 3, 16, 16)
    assert torch.equal(preset("none", channels=3)(x), x)


@pytest.mark.parametrize(("name", "axis"), [("hflip", -1), ("vflip", -2)])
def test_flips_mirror_the_named_axis(name: str, axis: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    out = preset(name)(x)
    flipped = [torch.equal(o, i.flip(axis)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def dots(batch: int, size: int, row: int, col: int) -> torch.Tensor:
    x = torch.zeros(batch, 1, size, size)
    x[:, 0, row - 1 : row + 2, col - 1 : col + 2] = 1.0
    return x


def centroids(x: torch.Tensor) -> torch.Tensor:
    """(B, 2) centre of mass (row, col) of single-channel images."""
    size = x.shape[-1]
    grid = torch.arange(size, dtype=torch.float32)
    mass = x.sum(dim=(1, 2, 3))
    rows = (x[:, 0].sum(-1) * grid).sum(-1) / mass
    cols = (x[:, 0].sum(-2) * grid).sum(-1) / mass
    return torch.stack([rows, cols], 1)


def test_shift5_moves_content_by_whole_pixels_up_to_5() -> None:
    torch.manual_seed(0)
    x = dots(128, 21, 10, 10)
    out = preset("shift5")(x)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), atol=1e-4)  # all kept
    moved = centroids(out) - 10
    assert torch.allclose(moved, moved.round(), atol=1e-4)  # whole pixels, no blur
    assert moved.abs().max().item() == pytest.approx(5, abs=1e-4)
    assert (moved.abs() <= 5 + 1e-4).all()
    assert len({tuple(m) for m in moved.round().tolist()}) > 20  # both axes, many shifts


@pytest.mark.parametrize(("name", "degrees"), [("rotate10", 10), ("rotate_upto90", 90)])
def test_rotation_angles_stay_within_the_named_bound(name: str, degrees: int) -> None:
    torch.manual_seed(0)
    x = dots(256, 41, 20, 34)  # a blob 14 pixels right of the centre: angle 0
    out = preset(name)(x)
    offset = centroids(out) - 20
    angles = torch.rad2deg(torch.atan2(-offset[:, 0], offset[:, 1])).abs()
    assert angles.max().item() <= degrees + 1.0
    assert angles.max().item() >= 0.9 * degrees  # the bound is reached, not just respected
    radius = offset.norm(dim=1)
    assert torch.allclose(radius, torch.full_like(radius, 14.0), atol=0.3)  # a turn, no shift


def test_contrast_scales_deviations_around_each_image_mean() -> None:
    torch.manual_seed(0)
    pixels = 0.5 + 0.15 * (torch.rand(64, 3, 8, 8) - 0.5)  # clear of 0 and 1: no clamping
    mean, std = 0.4, 0.2
    out = preset("contrast", mean, std, channels=3)((pixels - mean) / std) * std + mean
    centre = pixels.mean(dim=(1, 2, 3), keepdim=True)
    factor = (out - centre).flatten(1).norm(dim=1) / (pixels - centre).flatten(1).norm(dim=1)
    expected = (pixels - centre) * factor.view(-1, 1, 1, 1) + centre
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), centre.flatten(), atol=1e-5)
    assert 0.7 - 1e-4 <= factor.min() < 0.85 and 1.15 < factor.max() <= 1.3 + 1e-4


def test_noise_is_gaussian_with_the_configured_sigma() -> None:
    torch.manual_seed(0)
    std = 0.25
    x = torch.zeros(16, 3, 32, 32)
    added = preset("noise", 0.5, std, channels=3)(x) * std  # back on the 0-1 pixel scale
    assert added.mean().item() == pytest.approx(0.0, abs=2e-3)
    assert added.std().item() == pytest.approx(0.05, rel=0.03)
    within = (added.abs() < 0.05).float().mean().item()
    assert within == pytest.approx(0.6827, abs=0.02)  # one sigma holds 68% of a Gaussian


# --- previews and the grid -------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("augment")
    return {
        "shapes": write_shapes(root / "shapes"),
        "veri": write_veri(root / "veri"),
        "xray": write_xray(root / "xray", n=10, size=64),
    }


def previews(trainer: str, config: Any, n: int = 5, seed: int = 0) -> list:
    return get_trainer(trainer).augment_fn()(config, n, seed)


def mirrored_or_same(pairs: list) -> list[bool]:
    """Per pair: True when the augmented image is the original mirrored left-right."""
    result = []
    for original, augmented in pairs:
        mirrored = np.array_equal(augmented, original[:, ::-1])
        assert mirrored or np.array_equal(augmented, original)
        result.append(mirrored)
    return result


def test_classify_preview_shows_the_configured_augmentation(data: dict[str, Path]) -> None:
    folder = {"name": "folder", "root": str(data["shapes"])}
    plain = previews("classify", ClassifyConfig(data=folder, aug={"preset": "none"}))
    assert len(plain) == 5
    for original, augmented in plain:
        assert original.shape == (32, 32, 3) and original.dtype == np.uint8
        assert np.array_equal(original, augmented)
    flipped = previews("classify", ClassifyConfig(data=folder, aug={"preset": "hflip"}), n=16)
    assert any(mirrored_or_same(flipped))
    again = previews("classify", ClassifyConfig(data=folder, aug={"preset": "hflip"}), n=16)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(flipped, again, strict=True))


def test_reid_preview_runs_the_training_transform(data: dict[str, Path]) -> None:
    size = {"root": str(data["veri"]), "image_size": [64, 48]}
    plain = previews("reid", ReidConfig(data={**size, "augment": []}))
    for original, augmented in plain:
        assert original.shape == (64, 48, 3) and original.dtype == np.uint8
        assert np.array_equal(original, augmented)
    assert any(mirrored_or_same(previews("reid", ReidConfig(data={**size, "augment": ["flip"]}))))


def test_segment_preview_augments_image_and_mask_together(data: dict[str, Path]) -> None:
    root = {"root": str(data["xray"]), "image_size": 64}
    plain = previews("segment", SegmentConfig(data=root))
    for original, augmented in plain:
        assert original.shape == (64, 64, 3)
        assert np.array_equal(original, augmented)
        green = original[..., 1].astype(int) - original[..., 0].astype(int)
        assert (green > 20).mean() > 0.05  # the lung mask is drawn over the image
    flipped = previews("segment", SegmentConfig(data=root, aug={"names": ["hflip"], "p": 1.0}))
    assert all(mirrored_or_same(flipped))  # the overlay flipped whole: the mask moved too


def runs(line: np.ndarray) -> list[str]:
    """Colour runs along a line of RGB pixels: r(ed), b(lue), w(hite) and other, merged."""
    names = np.where(
        (line[:, 0] > 0.8) & (line[:, 2] < 0.2),
        "r",
        np.where((line[:, 2] > 0.8) & (line[:, 0] < 0.2), "b", "w"),
    )
    return [name for i, name in enumerate(names) if i == 0 or name != names[i - 1]]


@pytest.mark.parametrize("n", [9, 5, 1])
def test_grid_puts_each_original_beside_its_augmented_copy(tmp_path: Path, n: int) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 255
    out = draw_grid([(red, blue)] * n, tmp_path / "grid.png", "test")
    image = imread(out)[..., :3]
    width, height = figure_size(n)
    assert image.shape[:2] == (height, width)
    rows, cols = layout(n)
    assert (rows, cols) == {9: (3, 3), 5: (2, 3), 1: (1, 1)}[n]
    first_row_y = next(y for y in range(height) if "r" in runs(image[y]))
    across = [c for c in runs(image[first_row_y + 5]) if c != "w"]
    assert across == ["r", "b"] * min(n, cols)
    first_col_x = next(x for x in range(width) if "r" in runs(image[:, x]))
    down = [c for c in runs(image[:, first_col_x + 5]) if c != "w"]
    assert down == ["r"] * rows
    assert list(tmp_path.iterdir()) == [out]  # the partial file is gone


# --- the command -----------------------------------------------------------------------


@pytest.mark.slow  # sweeper augment in a child process (imports torch)
@pytest.mark.parametrize(
    ("trainer", "sets", "names", "child"),
    [
        ("classify", ["data.name=folder", "data.root={shapes}"], "rotate_upto90", True),
        ("reid", ["data.root={veri}", "data.image_size=[64,64]"], "translate,flip,erase", False),
        ("segment", ["data.root={xray}", "data.image_size=64"], "hflip,affine", False),
    ],
)
def test_command_writes_the_grid(
    tmp_path: Path,
    data: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    trainer: str,
    sets: list[str],
    names: str,
    child: bool,
) -> None:
    """One trainer through a real `sweeper` process, the others in this one (torch is slow to
    import, and the path through the command is the same)."""
    config = tmp_path / "config.yaml"
    config.write_text("seed: 1\n")
    options = [f"--set={s.format(**{k: str(v) for k, v in data.items()})}" for s in sets]
    args = ["augment", trainer, str(config), *options, "--names", names, "-o", "g.png"]
    monkeypatch.chdir(tmp_path)
    if child:
        done = subprocess.run(
            [sys.executable, "-m", "sweeper", *args], capture_output=True, text=True, timeout=120
        )
        code, output = done.returncode, done.stdout + done.stderr
    else:
        result = CliRunner().invoke(app, args)
        code, output = result.exit_code, result.output
    assert code == 0, output
    assert output.strip().splitlines()[-1] == "wrote g.png"
    assert imread(tmp_path / "g.png").shape[:2] == figure_size(9)[::-1]


def test_a_spec_base_and_a_preset_by_name(tmp_path: Path, data: dict[str, Path]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: s\ntrainer: classify\nmetric: {name: val_acc, goal: maximize}\n"
        f"base: {{data: {{name: folder, root: {data['shapes']}}}, aug: {{preset: hflip}}}}\n"
        "search: {optim.lr: [0.1]}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "augment",
            "classify",
            str(spec),
            "-n",
            "4",
            "--names",
            "shift5",
            "-o",
            str(tmp_path / "s.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert imread(tmp_path / "s.png").shape[:2] == figure_size(4)[::-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "-n", "0"], "-n: must be between 1 and 64, got 0"),
        (["classify", "-n", "65"], "-n: must be between 1 and 64, got 65"),
        (["classify", "--names", "hflip,twirl"], "--names: unknown augmentation 'twirl'"),
        (
            ["classify", "--names", "hflip,rotate_upto90"],
            "'rotate_upto90' is a preset; give it alone",
        ),
        (["reid", "--names", "rotate_upto90"], "--names: unknown augmentation 'rotate_upto90'"),
        (["classify", "-o", "{tmp}"], "is a folder"),
        (["classify", "-o", "{tmp}/missing/g.png"], "does not exist"),
        (["classify", "-o", "{tmp}/g.jpg"], "name the file *.png"),
        (["classify", "--seed", "-1"], "--seed: must be at least 0"),
        (["xor"], "trainer 'xor' has no augmentation preview"),
        (["nope"], "unknown trainer 'nope'"),
        (
            ["classify", "--set", "data.name=cifar10", "--set", "data.root={tmp}"],
            "cifar10 not found",
        ),
        (["classify", "--set", "data.name=xor"], "holds feature vectors"),
        (["classify", "--set", "aug.preset=rotate10", "--set", "aug.degrees=30"], "sets degrees"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "g.png"
    args = [a.format(tmp=tmp_path) for a in args]
    result = CliRunner().invoke(
        app, ["augment", *args, *(["-o", str(out)] if "-o" not in args else [])]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize(
    ("trainer", "config", "title"),
    [
        (
            "classify",
            {"aug": {"preset": "rotate_upto90"}},
            "classify: rotate ±90° (preset rotate_upto90)",
        ),
        ("classify", {"aug": {"preset": "rotate10"}}, "classify: rotate ±10° (preset rotate10)"),
        ("classify", {"aug": {"preset": "shift5"}}, "classify: translate ±5 (preset shift5)"),
        (
            "classify",
            {"aug": {"names": ["hflip", "noise"]}},
            "classify: hflip, noise noise_std=0.05",
        ),
        ("segment", {"aug": {"names": ["affine"]}}, "segment: affine shift=0.05, scale=0.1, ±10°"),
    ],
)
def test_the_grid_title_shows_each_augmentation_bound(
    trainer: str, config: dict[str, Any], title: str
) -> None:
    """A preset named for its bound says it is one: rotate_upto90 turns by any angle in ±90°."""
    from sweeper.analysis.augment_preview import describe

    info = get_trainer(trainer)
    model = {"classify": ClassifyConfig, "segment": SegmentConfig}[trainer]
    assert describe(info, model.model_validate(config)) == title

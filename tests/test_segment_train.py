"""The segment trainer end to end on generated X-rays, its model, loss, metrics and logging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from PIL import Image

from sweeper.backends.wandbrun import StepLog
from sweeper.errors import SweeperError
from sweeper.trainers.logger import MemoryLogger
from sweeper.trainers.segment.config import SegmentConfig, SegmentLoss, SegmentModel
from sweeper.trainers.segment.data.synthetic import write_xray
from sweeper.trainers.segment.encoders import ENCODERS
from sweeper.trainers.segment.losses import SegmentationLoss
from sweeper.trainers.segment.metrics import MaskStats
from sweeper.trainers.segment.models import build_model
from sweeper.trainers.segment.train import train

ENCODER = {"encoder_name": "mobilenet_v2", "encoder_depth": 3}
TINY = {**ENCODER, "decoder_channels": [16, 8, 8]}


@pytest.fixture(scope="module")
def xrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xray(tmp_path_factory.mktemp("xray") / "set", n=16, size=64)


def config(root: Path, **overrides: Any) -> SegmentConfig:
    base = {
        "epochs": 6,
        "device": "cpu",
        "model": TINY,
        "data": {"root": str(root), "image_size": 32, "batch_size": 4, "test_fraction": 0.125},
        "optim": {"name": "adam", "lr": 3e-3},
        "overlays": 2,
    }
    return SegmentConfig.model_validate({**base, **overrides})


@pytest.fixture(scope="module")
def trained(xrays: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, MemoryLogger]:
    logger = MemoryLogger(run_dir=tmp_path_factory.mktemp("run"))
    summary = train(config(xrays, log_every=2, aug={"names": ["hflip", "affine"]}), logger)
    return summary, logger


@pytest.mark.slow  # shares a U-Net trained for several epochs
def test_learns_lungs_and_scores_the_best_epoch(trained: tuple[dict, MemoryLogger]) -> None:
    summary, logger = trained
    dice = [h["val_dice"] for h in logger.history]
    assert len(dice) == 6 and [h["_step"] for h in logger.history] == list(range(6))
    assert max(dice[3:]) > dice[0] + 0.2  # it learns
    assert summary["best_val_dice"] == max(dice)
    assert summary["best_epoch"] == dice.index(max(dice))
    assert summary["train_loss"] < logger.history[0]["train_loss"]
    assert {"test_dice", "test_iou", "test_dice_per_image", "test_pixel_acc"} <= set(summary)
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (11, 3, 2)
    for h in logger.history:
        assert 0 <= h["val_iou"] <= h["val_dice"] <= 1  # IoU = D / (2 - D) <= Dice


@pytest.mark.slow  # shares a U-Net trained for several epochs
def test_batch_loss_every_n_batches(trained: tuple[dict, MemoryLogger]) -> None:
    _, logger = trained
    batches = [b["batch"] for b in logger.batches]
    per_epoch = 3  # 11 training images in batches of 4
    assert batches == [e * per_epoch + 2 for e in range(6)]
    assert all(b["train/batch_loss"] > 0 for b in logger.batches)


@pytest.mark.slow  # shares a U-Net trained for several epochs
def test_overlays_are_pngs_with_both_masks_drawn(trained: tuple[dict, MemoryLogger]) -> None:
    _, logger = trained
    paths = logger.images["val/overlays"]
    assert len(paths) == 2 and all(p.parent == logger.run_dir / "overlays" for p in paths)
    pixels = np.asarray(Image.open(paths[0]).convert("RGB")).astype(int)
    assert pixels.shape == (32, 32, 3)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((g > r + 30) | (r > g + 30) | ((r > b + 30) & (g > b + 30))).sum() > 25


@pytest.mark.slow  # trains a U-Net twice (stopped, then resumed)
def test_resumes_from_checkpoint(xrays: Path, tmp_path: Path) -> None:
    first = MemoryLogger(run_dir=tmp_path, stop_after=1)
    train(config(xrays, epochs=2, overlays=0), first)
    resumed = MemoryLogger(run_dir=tmp_path)
    summary = train(config(xrays, epochs=2, overlays=0), resumed)
    assert [h["_step"] for h in resumed.history] == [1]
    assert summary["epochs_done"] == 2 and (tmp_path / "best.pt").exists()
    for name in ("checkpoint.pt", "best.pt"):  # tensors and plain types only
        torch.load(tmp_path / name, map_location="cpu", weights_only=True)


def test_encoder_catalog_is_smps() -> None:
    assert sorted(ENCODERS) == sorted(smp.encoders.get_encoder_names())


def test_models_by_name_take_one_channel() -> None:
    x = torch.zeros(2, 1, 64, 64)
    for arch in ("unet", "unetplusplus", "fpn"):
        model = build_model(SegmentModel(arch=arch, **(ENCODER if arch == "fpn" else TINY)))
        assert model(x).shape == (2, 1, 64, 64)
    with pytest.raises(SweeperError, match=r"model\.encoder_name 'tu-no_such_net'"):
        build_model(SegmentModel(encoder_name="tu-no_such_net"))


def test_local_encoder_weights_rgb_kernels_summed(tmp_path: Path) -> None:
    rgb = smp.Unet(encoder_name="resnet18", encoder_weights=None, in_channels=3, encoder_depth=3,
                   decoder_channels=[16, 8, 8]).encoder.state_dict()  # fmt: skip
    torch.save(rgb, tmp_path / "enc.pt")
    resnet = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
    model = build_model(SegmentModel(**resnet, encoder_weights=str(tmp_path / "enc.pt")))
    loaded = model.encoder.state_dict()
    assert torch.allclose(loaded["conv1.weight"], rgb["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(loaded["layer1.0.conv1.weight"], rgb["layer1.0.conv1.weight"])
    with pytest.raises(SweeperError, match="is not a file"):
        build_model(SegmentModel(**resnet, encoder_weights=str(tmp_path / "nope.pt")))


def test_metrics_match_hand_counts() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = (torch.rand(3, 1, 16, 16, generator=gen) > 0.5).float()
    logits = torch.randn(3, 1, 16, 16, generator=gen)
    stats = MaskStats()
    stats.update(logits[:2], masks[:2])
    stats.update(logits[2:], masks[2:])
    got = stats.compute()
    pred = logits > 0
    truth = masks.bool()
    inter, total = (pred & truth).sum().item(), pred.sum().item() + truth.sum().item()
    assert got["dice"] == pytest.approx(2 * inter / total)
    assert got["iou"] == pytest.approx(inter / (pred | truth).sum().item())
    assert got["pixel_acc"] == pytest.approx((pred == truth).float().mean().item())
    per_image = [
        2 * (p & t).sum().item() / (p.sum() + t.sum()).item()
        for p, t in zip(pred, truth, strict=True)
    ]
    assert got["dice_per_image"] == pytest.approx(np.mean(per_image))


def test_dice_bce_is_the_weighted_sum() -> None:
    logits, masks = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    dice = SegmentationLoss(SegmentLoss(name="dice"))(logits, masks)
    bce = SegmentationLoss(SegmentLoss(name="bce"))(logits, masks)
    both = SegmentationLoss(SegmentLoss(name="dice_bce", dice_weight=2, bce_weight=0.5))
    assert both(logits, masks).item() == pytest.approx(2 * dice.item() + 0.5 * bce.item())


class FakeRun:
    """Records calls and enforces wandb's rule: a row's step never goes back."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []
        self.axes: dict[str, str | None] = {}

    def define_metric(self, name: str, step_metric: str | None = None, hidden: bool = False):
        self.axes[name] = step_metric

    def log(self, data: dict, step: int | None = None) -> None:
        last = self.rows[-1][0] if self.rows else -1
        step = last + 1 if step is None else step
        assert step >= last, f"wandb would drop step {step} after {last}"
        self.rows.append((step, data))


def test_wandb_keeps_epoch_steps_until_batches_are_logged(tmp_path: Path) -> None:
    run = FakeRun()
    logger = StepLog(run)
    logger.log({"val_loss": 1.0}, step=0)
    logger.log({"val_loss": 0.5}, step=1)
    assert [s for s, _ in run.rows] == [0, 1] and not run.axes
    _png = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(_png)
    logger.log_images("val/overlays", [_png], step=1)
    assert run.rows[-1][0] == 1 and "val/overlays" in run.rows[-1][1]

    run = FakeRun()
    logger = StepLog(run)
    for epoch in range(2):
        for batch in (1, 2):
            logger.log_batch({"train/batch_loss": 1.0}, batch=epoch * 2 + batch)
        logger.log({"val_loss": 1.0}, step=epoch)
    assert [d.get("batch", d.get("epoch")) for _, d in run.rows] == [1, 2, 0, 3, 4, 1]
    assert run.axes["train/batch_loss"] == "batch" and run.axes["val_loss"] == "epoch"

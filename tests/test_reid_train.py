"""The reid trainer end to end on generated VeRi-layout data: tiny, but real training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sweeper.errors import SweeperError
from sweeper.trainers.logger import MemoryLogger
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.train import train

EPOCH_METRICS = {
    "train_loss",
    "xent_loss",
    "triplet_loss",
    "train_acc",
    "epoch_time",
    "images_per_s",
    "lr",
}
EVAL_METRICS = {"mAP", "rank1", "rank5", "rank10"}


def config(root: Path, data: dict | None = None, **overrides: object) -> ReidConfig:
    fields: dict = {
        "epochs": 2,
        "model": {"arch": "resnet18_fc512"},
        "data": {
            "root": str(root),
            "synthetic": True,
            "image_size": [32, 32],
            "batch_size": 16,
            "workers": 0,
            "augment": ["translate", "flip", "erase"],
            **(data or {}),
        },
        "sched": {"name": "cosine"},
    }
    fields.update(overrides)
    return ReidConfig(**fields)


@pytest.mark.slow  # trains a re-id model for several epochs (the loop's longest test)
def test_trains_and_logs_finite_metrics(tmp_path: Path) -> None:
    logger = MemoryLogger()
    summary = train(config(tmp_path / "veri", eval={"every": 2}), logger)
    assert (tmp_path / "veri" / "image_train").is_dir()  # generated on first use
    assert [h["_step"] for h in logger.history] == [0, 1]
    assert logger.history[0].keys() >= EPOCH_METRICS and not EVAL_METRICS & logger.history[0].keys()
    assert logger.history[1].keys() >= EPOCH_METRICS | EVAL_METRICS
    for entry in logger.history:
        assert all(math.isfinite(v) for v in entry.values())
        assert entry["triplet_loss"] > 0 and entry["xent_loss"] > 0
    assert logger.history[1]["lr"] < logger.history[0]["lr"]  # cosine schedule stepped
    last = logger.history[-1]
    assert 0 < last["mAP"] <= 1 and 0 <= last["rank1"] <= last["rank5"] <= last["rank10"] <= 1
    assert summary["mAP"] == pytest.approx(last["mAP"])
    assert summary["best_mAP"] >= summary["mAP"] and summary["best_epoch"] == 1
    assert summary["epochs_done"] == 2
    epochs = sum(h["epoch_time"] for h in logger.history)
    assert summary["train_time_s"] == pytest.approx(epochs) and summary["train_time_s"] > 0


def test_fewer_identities_than_p_fails_the_trial_in_one_line(tmp_path: Path) -> None:
    big_batch = config(tmp_path / "veri")
    big_batch.data.batch_size = 64  # P = 16 > the 12 generated identities
    with pytest.raises(SweeperError, match=r"has 12 identities, fewer than the 16 \(P ="):
        train(big_batch, MemoryLogger())


def test_missing_real_data_fails_the_trial_in_one_line(tmp_path: Path) -> None:
    real = config(tmp_path / "VeRi")
    real.data.synthetic = False
    with pytest.raises(SweeperError, match=r"VeRi-776 root .*VeRi does not exist"):
        train(real, MemoryLogger())


@pytest.mark.slow  # trains a re-id model with a DataLoader worker process
def test_cross_entropy_alone_with_the_random_sampler_and_a_worker(tmp_path: Path) -> None:
    logger = MemoryLogger()
    overrides = {
        "epochs": 1,
        "model": {"arch": "mobilenet_v3_small"},
        "loss": {"lambda_htri": 0},
        "eval": {"distance": "cosine"},
    }
    data = {"sampler": "random", "workers": 1, "augment": ["color_aug", "grayscale"]}
    summary = train(config(tmp_path / "veri", data, **overrides), logger)
    assert logger.history[0]["triplet_loss"] == 0 and logger.history[0]["xent_loss"] > 0
    assert 0 < summary["mAP"] <= 1


@pytest.mark.slow  # trains a re-id model once per amp setting
def test_amp_switch_is_the_shared_mixed_precision_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reid's `amp` defaults as the other trainers' do and goes to the common Precision step;
    on CPU both settings train in plain float32, so they train to the same numbers."""
    import sweeper.trainers.reid.train as reid
    from sweeper.trainers.classify.config import ClassifyConfig
    from sweeper.trainers.common.precision import Precision
    from sweeper.trainers.segment.config import SegmentConfig

    assert ReidConfig().amp is ClassifyConfig().amp is SegmentConfig().amp is True
    made: list[tuple[bool, Precision]] = []

    class Recorded(Precision):
        def __init__(self, device: torch.device, amp: bool) -> None:
            super().__init__(device, amp)
            made.append((amp, self))

    monkeypatch.setattr(reid, "Precision", Recorded)
    summaries = []
    for amp in (True, False):
        overrides = {"epochs": 1, "device": "cpu", "amp": amp}
        summaries.append(train(config(tmp_path / "veri", **overrides), MemoryLogger()))
    assert [amp for amp, _ in made] == [True, False]
    assert all(not p.amp and not p.scaler.is_enabled() for _, p in made)  # off on CPU
    timed = "train_time_s"  # seconds of wall time: the one summary value two runs never share
    assert timed in summaries[0] and timed in summaries[1]
    same = [{k: v for k, v in summary.items() if k != timed} for summary in summaries]
    assert same[0] == pytest.approx(same[1], rel=1e-6)

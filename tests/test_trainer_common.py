"""Shared trainer pieces: checkpoint resume is exact, optimizers and schedules by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sweeper.trainers.classify.config import XorConfig
from sweeper.trainers.classify.xor import train
from sweeper.trainers.common.best import BestModel
from sweeper.trainers.common.config import OptimConfig, SchedConfig
from sweeper.trainers.common.optim import build_optimizer, build_scheduler
from sweeper.trainers.logger import MemoryLogger


@pytest.mark.slow  # trains a model three times (stopped, resumed)
def test_a_stopped_trial_resumes_to_the_same_result(tmp_path: Path) -> None:
    config = XorConfig(epochs=12, model={"depth": 1, "width": 3})
    straight = train(config, MemoryLogger(run_dir=tmp_path / "a"))

    first = MemoryLogger(run_dir=tmp_path / "b", stop_after=5)
    train(config, first)
    assert len(first.history) == 5
    second = MemoryLogger(run_dir=tmp_path / "b")
    resumed = train(config, second)
    assert [h["_step"] for h in second.history] == list(range(5, 12))
    assert resumed == straight


@pytest.mark.slow  # trains two xor models to convergence
def test_xor_learns_with_a_hidden_layer_and_not_without() -> None:
    hidden = train(XorConfig(epochs=60, model={"depth": 1, "width": 3}), MemoryLogger())
    linear = train(XorConfig(epochs=60, model={"depth": 0}), MemoryLogger())
    assert hidden["val_acc"] > 0.95
    assert linear["val_acc"] < 0.8


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamw", "rmsprop"])
def test_optimizers_by_name(name: str) -> None:
    param = torch.nn.Parameter(torch.ones(1))
    optimizer = build_optimizer([param], OptimConfig(name=name, lr=0.5, weight_decay=0.1))
    assert optimizer.param_groups[0]["lr"] == 0.5
    assert optimizer.param_groups[0]["weight_decay"] == 0.1
    if name == "amsgrad":
        assert optimizer.param_groups[0]["amsgrad"] is True


def test_schedules_by_name() -> None:
    param = torch.nn.Parameter(torch.ones(1))
    optimizer = build_optimizer([param], OptimConfig(lr=1.0))
    assert build_scheduler(optimizer, SchedConfig(name="none"), 10) is None
    step = build_scheduler(optimizer, SchedConfig(name="step", step_size=2, gamma=0.5), 10)
    for _ in range(4):
        optimizer.step()
        step.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_checkpoints_every_epoch_unless_saving_is_slow(tmp_path: Path) -> None:
    import time

    from sweeper.trainers.common.checkpoint import Checkpoint

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoint = Checkpoint(tmp_path)
    assert checkpoint.due(), "the first epoch saves"
    checkpoint.save(1, model, optimizer, None, {})
    time.sleep(checkpoint._cost / Checkpoint.OVERHEAD + 0.01)
    assert checkpoint.due(), "a save of a few milliseconds: every epoch"
    checkpoint._cost = 2.0  # a model whose save takes 2 s saves every 40 s at most
    assert not checkpoint.due()


def test_the_best_model_keeps_the_first_best_epoch_and_survives_a_restart(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    best = BestModel(tmp_path)
    for epoch, (score, weight) in enumerate(
        [(0.5, 1.0), (0.7, 2.0), (0.7, 3.0), (float("nan"), 4.0)]
    ):
        torch.nn.init.constant_(model.weight, weight)
        best.update(score, epoch, model)
    assert (best.score, best.epoch) == (0.7, 1), "a tie or a NaN keeps the earlier best"
    again = BestModel(tmp_path)  # a resumed trial reads it back
    assert (again.score, again.epoch) == (0.7, 1)
    again.restore(model)
    assert torch.equal(model.weight, torch.full((1, 2), 2.0))


def test_a_generated_data_set_is_written_once_and_a_failed_write_leaves_nothing(
    tmp_path: Path,
) -> None:
    from sweeper.trainers.common.generate import ensure_generated

    calls: list[Path] = []

    def write(folder: Path) -> None:
        calls.append(folder)
        (folder / "data.txt").write_text("x")

    root = tmp_path / "sets" / "made"
    assert ensure_generated(root, write) == root
    assert ensure_generated(str(root), write) == root
    assert len(calls) == 1 and calls[0].parent == root.parent and calls[0] != root
    assert (root / "data.txt").read_text() == "x"
    assert [p.name for p in root.parent.iterdir()] == ["made"]  # no scratch left

    def full_disk(folder: Path) -> None:
        (folder / "part.txt").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        ensure_generated(tmp_path / "sets" / "other", full_disk)
    assert [p.name for p in root.parent.iterdir()] == ["made"]

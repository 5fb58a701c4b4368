"""A probe trainer the agent tests steer: slow, crashing, or NaN on demand.

Registered through SWEEPER_PLUGINS, the same way users add their own trainers.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Literal

from pydantic import Field

from sweeper.trainers.common.config import TrainConfig
from sweeper.trainers.logger import Logger
from sweeper.trainers.registry import TrainerInfo, register


class ProbeConfig(TrainConfig):
    epochs: int = Field(3, ge=1, le=1000)
    x: float = Field(0.0, ge=-100, le=100, description="loss = (x - 1)^2 + 1 / (epoch + 1)")
    epoch_seconds: float = Field(0.0, ge=0, le=10)
    batches: int = Field(
        0, ge=0, le=100, description="batch rows logged per epoch, spread over epoch_seconds"
    )
    crash: Literal["none", "raise", "segfault", "exit", "nan"] = "none"
    leak: bool = Field(
        False, description="leave a worker and a setsid'd child running, pids in ./leaked-<pid>"
    )


def _leak() -> None:
    """What a careless trainer leaves behind: a forked worker (as a DataLoader forks one)
    and a child in a session of its own, both still running when train returns."""
    import multiprocessing
    import subprocess

    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(300,))
    worker.start()
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    with open(f"leaked-{os.getpid()}", "w") as file:
        file.write(f"{worker.pid} {child.pid}")


def probe_loss(x: float, epoch: int) -> float:
    """The probe's loss at an epoch (0-based): lowest at x=1, falling with each epoch.

    One definition, so a test that writes the probe's runs through the store's API
    (tests/helpers.py) records what the trainer would have logged.
    """
    return (x - 1) ** 2 + 1 / (epoch + 1)


def train(config: ProbeConfig, logger: Logger) -> dict[str, float]:
    import torch

    from sweeper.trainers.common.loop import fit
    from sweeper.trainers.common.optim import build_optimizer

    model = torch.nn.Linear(1, 1)
    optimizer = build_optimizer(model.parameters(), config.optim)
    first: list[int] = []
    if config.leak:
        _leak()

    def train_epoch(epoch: int) -> dict[str, float]:
        first.append(epoch)
        for batch in range(config.batches):  # as a trainer logging its batches does
            time.sleep(config.epoch_seconds / config.batches)
            logger.log_batch(
                {"batch_loss": probe_loss(config.x, epoch)}, epoch * config.batches + batch
            )
        if not config.batches:
            time.sleep(config.epoch_seconds)
        if config.crash == "raise":
            raise RuntimeError(f"boom at epoch {epoch}")
        if config.crash == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if config.crash == "exit":
            sys.exit(3)
        loss = float("nan") if config.crash == "nan" else probe_loss(config.x, epoch)
        return {"loss": loss}

    history = fit(
        epochs=config.epochs,
        model=model,
        optimizer=optimizer,
        scheduler=None,
        logger=logger,
        train_epoch=train_epoch,
        evaluate=lambda epoch: {},
    )
    return {  # a trial preempted just as it finished resumes with nothing left to run
        "loss": history[-1]["loss"],
        "resumed_from": float(first[0] if first else len(history)),
        "epochs_run": float(len(first)),
        "threads": float(torch.get_num_threads()),
    }


register(
    TrainerInfo(
        name="probe",
        summary="test probe: loss = (x-1)^2 + 1/(epoch+1); sleeps, crashes or NaNs on demand",
        config_ref="testing_trainers:ProbeConfig",
        train_ref="testing_trainers:train",
        metric="loss",
        metrics=("loss", "resumed_from", "epochs_run", "lr", "threads"),
    )
)


class TorchlessConfig(TrainConfig):
    x: float = Field(0.0, ge=-100, le=100)
    seconds: float = Field(0.0, ge=0, le=60, description="how long the trial sleeps first")


def train_torchless(config: TorchlessConfig, logger: Logger) -> dict[str, float]:
    """Reports whether torch was imported before it: the platform's cost, not the trainer's.
    With `seconds`, a no-op trial that takes that long (the cluster test's faults land on it)."""
    time.sleep(config.seconds)
    logger.log({"loss": config.x}, step=0)
    return {"loss": config.x, "torch_imported": float("torch" in sys.modules)}


register(
    TrainerInfo(
        name="torchless",
        summary="test: a trainer that never imports torch",
        config_ref="testing_trainers:TorchlessConfig",
        train_ref="testing_trainers:train_torchless",
        metric="loss",
        torch=False,
    )
)


class TwoObjectiveConfig(TrainConfig):
    x: float = Field(0.0, ge=-100, le=100)
    y: float = Field(0.0, ge=-100, le=100)
    epoch_seconds: float = Field(0.0, ge=0, le=10)


def train_two_objectives(config: TwoObjectiveConfig, logger: Logger) -> dict[str, float]:
    """Two objectives in tension (f1 low near the origin, f2 low near (2, 2)) and a loss that
    falls with each epoch and grows with x (what a pruner compares); torch never imported, so
    a trial takes milliseconds plus `epoch_seconds` per epoch. Ends early on should_stop."""
    row: dict[str, float] = {}
    for epoch in range(config.epochs):
        time.sleep(config.epoch_seconds)
        row = {
            "f1": config.x + config.y,
            "f2": (config.x - 2) ** 2 + (config.y - 2) ** 2,
            "loss": config.x + 1 / (epoch + 1),
        }
        logger.log(row, step=epoch)
        if logger.should_stop():
            break
    return row


register(
    TrainerInfo(
        name="two-objectives",
        summary="test: f1 = x + y and f2 = (x-2)^2 + (y-2)^2, per epoch; torch-free",
        config_ref="testing_trainers:TwoObjectiveConfig",
        train_ref="testing_trainers:train_two_objectives",
        metric="f1",
        metrics=("f1", "f2", "loss"),
        torch=False,
    )
)

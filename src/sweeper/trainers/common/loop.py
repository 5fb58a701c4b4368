"""The epoch loop every trainer shares: resume, log, checkpoint, stop when told."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler

from sweeper.trainers.common.checkpoint import Checkpoint
from sweeper.trainers.logger import Logger

EpochFn = Callable[[int], dict[str, float]]


def fit(
    *,
    epochs: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler | None,
    logger: Logger,
    train_epoch: EpochFn,
    evaluate: EpochFn,
) -> list[dict[str, float]]:
    """Run the remaining epochs and return the whole per-epoch history.

    Resumes from run_dir/checkpoint.pt when there is one; stops after the epoch in which
    `logger.should_stop()` turns true, checkpointed.

    Raises:
        CheckpointError: the checkpoint there is refused or not this trial's.
    """
    checkpoint = Checkpoint(logger.run_dir)
    start, state = checkpoint.restore(model, optimizer, scheduler)
    history: list[dict[str, float]] = state.get("history", [])
    for epoch in range(start, epochs):
        lr = optimizer.param_groups[0]["lr"]
        logged = {**train_epoch(epoch), **evaluate(epoch), "lr": lr}
        # Python floats, not numpy's: the history goes into the checkpoint, plain types only.
        metrics = {name: float(value) for name, value in logged.items()}
        if scheduler is not None:
            scheduler.step()
        history.append(metrics)
        logger.log(metrics, step=epoch)
        stop = logger.should_stop()
        if stop or epoch + 1 == epochs or checkpoint.due():
            checkpoint.save(epoch + 1, model, optimizer, scheduler, {"history": history})
        if stop:
            break
    return history

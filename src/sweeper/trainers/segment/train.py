"""The `segment` trainer: load the X-rays once, train an smp model, score its best epoch."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import cast

import torch

from sweeper.trainers.common.best import BestModel
from sweeper.trainers.common.device import select_device
from sweeper.trainers.common.loop import fit
from sweeper.trainers.common.optim import build_optimizer, build_scheduler
from sweeper.trainers.logger import Logger
from sweeper.trainers.segment.build import build
from sweeper.trainers.segment.config import SegmentConfig
from sweeper.trainers.segment.data.loaders import XrayDataset
from sweeper.trainers.segment.engine import Engine
from sweeper.trainers.segment.models import parameter_count
from sweeper.trainers.segment.overlays import write_overlays


def train(config: SegmentConfig, logger: Logger) -> dict[str, float]:
    """Train on the seeded split, keep the best epoch by validation Dice, score it on test.

    Returns:
        The last epoch's metrics (val_dice, val_iou in [0, 1], val_loss...), the split sizes,
        best_val_dice and its epoch, epochs_done, n_params and the best epoch's test_* metrics.

    Raises:
        SweeperError: the data is missing or unusable (see `build`).
    """
    device = select_device(config.device)
    built = build(config, device)
    model, loaders = built.model, built.data
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.sched, config.epochs)
    engine = Engine(model, built.loss, optimizer, device, config.amp)
    best = BestModel(logger.run_dir)

    def train_epoch(epoch: int) -> dict[str, float]:
        return {"train_loss": engine.train_epoch(loaders.train, epoch, logger, config.log_every)}

    def evaluate(epoch: int) -> dict[str, float]:
        val = {f"val_{name}": value for name, value in engine.evaluate(loaders.val).items()}
        best.update(val["val_dice"], epoch, model)
        return val

    history = fit(
        epochs=config.epochs,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        logger=logger,
        train_epoch=train_epoch,
        evaluate=evaluate,
    )
    summary = {**history[-1], **loaders.sizes()}
    summary.update(
        best_val_dice=best.score,
        best_epoch=float(best.epoch),
        epochs_done=float(len(history)),
        n_params=float(parameter_count(model)),
    )
    best.restore(model)  # the test split and the pictures show the best epoch's model
    if loaders.test is not None:
        summary.update({f"test_{k}": v for k, v in engine.evaluate(loaders.test).items()})
    if config.overlays:
        val = cast(XrayDataset, loaders.val.dataset)
        log_overlays(engine, val, config.overlays, logger, len(history) - 1)
    return summary


def log_overlays(
    engine: Engine, dataset: XrayDataset, count: int, logger: Logger, step: int
) -> None:
    """The first validation images with true and predicted masks: PNGs in run_dir/overlays
    (a scratch folder when the trial keeps no files) and an image panel."""
    shown = [dataset[i] for i in range(min(count, len(dataset)))]
    images, masks = torch.stack([s[0] for s in shown]), torch.stack([s[1] for s in shown])
    logits = engine.predict(engine.to_device(images, masks)[0])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(logger.run_dir) / "overlays" if logger.run_dir is not None else Path(scratch)
        logger.log_images("val/overlays", write_overlays(images, masks, logits, folder), step)

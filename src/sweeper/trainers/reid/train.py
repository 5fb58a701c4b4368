"""The re-id trainer: P x K batches, xent + triplet, CMC/mAP on query vs gallery each eval epoch."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from sweeper.trainers.common.best import BestModel
from sweeper.trainers.common.device import select_device
from sweeper.trainers.common.loop import fit
from sweeper.trainers.common.optim import build_optimizer, build_scheduler
from sweeper.trainers.common.precision import Precision
from sweeper.trainers.logger import Logger
from sweeper.trainers.reid.build import build
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.metrics import rank_features
from sweeper.trainers.reid.models import ReidNet


@torch.no_grad()
def extract_features(
    model: ReidNet, loader: DataLoader, device: torch.device, precision: Precision
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Features [N, D] float32, vehicle ids [N] and camera ids [N] of a query or gallery
    loader, in eval mode (under autocast when the trial trains in mixed precision)."""
    model.eval()
    features, pids, camids = [], [], []
    for images, pid, camid in loader:
        with precision.autocast():
            features.append(model(images.to(device, non_blocking=True)).float())
        pids.append(pid.numpy())
        camids.append(camid.numpy())
    return torch.cat(features), np.concatenate(pids), np.concatenate(camids)


def train(config: ReidConfig, logger: Logger) -> dict[str, float]:
    """Train on VeRi-776 (or its generated stand-in) and rank query against gallery.

    Returns:
        The last evaluation's mAP and rank-1/5/10 (fractions in [0, 1]), best_mAP and its
        epoch, the last train_loss, epochs_done, and train_time_s: seconds spent in the
        training epochs (their epoch_time summed, resumed epochs included; evaluation left
        out), the cost a multi-objective sweep weighs against mAP.

    Raises:
        SweeperError: the data is missing or does not fit the batch (see `build`).
    """
    device = select_device(config.device)
    built = build(config, device)
    model, loaders, criterion = built.model, built.data, built.loss
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.sched, config.epochs)
    precision = Precision(device, config.amp)
    best = BestModel(logger.run_dir)  # the weights `sweeper landscape` looks at

    def objective(
        outputs: tuple[torch.Tensor, torch.Tensor], pids: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        logits, features = outputs
        return (*criterion(logits, features, pids), logits)

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        start = time.perf_counter()
        sums = torch.zeros(4, device=device)  # total, xent, triplet, correct; read once per epoch
        seen = 0
        for images, pids, _ in loaders.train:
            images, pids = images.to(device, non_blocking=True), pids.to(device, non_blocking=True)
            loss, xent, htri, logits = precision.step(model, objective, images, pids, optimizer)
            n = len(pids)
            correct = (logits.argmax(1) == pids).sum()
            sums += torch.stack([loss.detach() * n, xent.detach() * n, htri.detach() * n, correct])
            seen += n
        total, xent, htri, correct = (sums / max(seen, 1)).tolist()
        seconds = time.perf_counter() - start
        return {
            "train_loss": total,
            "xent_loss": xent,
            "triplet_loss": htri,
            "train_acc": correct,
            "epoch_time": seconds,
            "images_per_s": seen / seconds,
        }

    def evaluate(epoch: int, due: bool = False) -> dict[str, float]:
        if not due and (epoch + 1) % config.eval.every and epoch + 1 < config.epochs:
            return {}
        query, q_pids, q_camids = extract_features(model, loaders.query, device, precision)
        gallery, g_pids, g_camids = extract_features(model, loaders.gallery, device, precision)
        cmc, mean_ap = rank_features(
            query,
            gallery,
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            metric=config.eval.distance,
            max_rank=config.eval.max_rank,
        )
        best.update(mean_ap, epoch, model)
        return {"mAP": mean_ap, **{f"rank{k}": float(cmc[k - 1]) for k in (1, 5, 10)}}

    history = fit(
        epochs=config.epochs,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        logger=logger,
        train_epoch=train_epoch,
        evaluate=evaluate,
    )
    evaluated = [h for h in history if "mAP" in h]
    # Stopped before the first evaluation epoch: evaluate now.
    last = evaluated[-1] if evaluated else evaluate(len(history) - 1, due=True)
    return {
        **{name: float(last[name]) for name in ("mAP", "rank1", "rank5", "rank10")},
        "best_mAP": best.score,
        "best_epoch": float(best.epoch),
        "train_loss": history[-1]["train_loss"],
        "epochs_done": float(len(history)),
        "train_time_s": float(sum(h["epoch_time"] for h in history)),
    }

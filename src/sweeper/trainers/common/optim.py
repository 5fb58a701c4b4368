"""Optimizers and LR schedulers by name, from the shared config models."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR

from sweeper.trainers.common.config import OptimConfig, SchedConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig
) -> torch.optim.Optimizer:
    """The configured optimizer over `params` (amsgrad: Adam with Reddi et al. 2018's
    AMSGrad; adamw: decoupled weight decay, Loshchilov and Hutter 2019).

    Raises:
        ValueError: an optimizer name it does not know (configs are checked before).
    """
    params = list(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.name in ("adam", "amsgrad"):
        return torch.optim.Adam(
            params,
            lr=cfg.lr,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
            amsgrad=cfg.name == "amsgrad",
        )
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise ValueError(f"unknown optimizer {cfg.name!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedConfig, epochs: int
) -> LRScheduler | None:
    """A per-epoch scheduler, or None for a constant learning rate."""
    if cfg.name == "step":
        return StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    return None

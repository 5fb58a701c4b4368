"""Pieces the small conv models share."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(
    in_channels: int, out_channels: int, kernel: int, padding: int = 0, batch_norm: bool = False
) -> nn.Sequential:
    """conv -> [batch norm] -> ReLU; the conv drops its bias when batch norm supplies one."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@torch.no_grad()
def flat_features(features: nn.Module, shape: tuple[int, ...]) -> int:
    """Width of `features`' flattened output for one input of `shape` (sizes the first linear)."""
    was_training = features.training
    features.eval()
    out = features(torch.zeros(1, *shape))
    features.train(was_training)
    return out.numel()

"""A linear model on the pooled image plus a conv branch; the two logit vectors are summed.

The linear branch gives a strong start (colour statistics) while the conv branch learns shapes.
"""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.classify.models.blocks import conv_block

POOLED = 4
"""The linear branch sees the image average-pooled to POOLED x POOLED."""


class TwoBranch(nn.Module):
    """[N, C, H, W] images to [N, n_outputs] logits."""

    def __init__(
        self,
        shape: tuple[int, ...],
        n_outputs: int,
        n_base: int = 32,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        n = n_base
        self.linear = nn.Sequential(
            nn.AdaptiveAvgPool2d(POOLED), nn.Flatten(), nn.Linear(shape[0] * POOLED**2, n_outputs)
        )
        self.conv = nn.Sequential(
            conv_block(shape[0], n, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(n, 2 * n, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(2 * n, 4 * n, 3, padding=1, batch_norm=batch_norm),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * n, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The two branches' logits, summed: [N, n_outputs]."""
        return self.linear(x) + self.conv(x)

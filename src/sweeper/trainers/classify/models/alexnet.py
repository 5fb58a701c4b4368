"""A small AlexNet: five 3x3 conv layers (n, 3n, 6n, 4n, 4n), three pools, three linear layers."""

from __future__ import annotations

from torch import nn

from sweeper.trainers.classify.models.blocks import conv_block


class SmallAlexNet(nn.Sequential):
    """[N, C, H, W] images (H, W at least 8: three 2x2 pools) to [N, n_outputs] logits."""

    def __init__(
        self,
        shape: tuple[int, ...],
        n_outputs: int,
        n_base: int = 16,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        n = n_base
        super().__init__(
            conv_block(shape[0], n, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(n, 3 * n, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(3 * n, 6 * n, 3, padding=1, batch_norm=batch_norm),
            conv_block(6 * n, 4 * n, 3, padding=1, batch_norm=batch_norm),
            conv_block(4 * n, 4 * n, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(2),  # any input of at least 8x8 ends as 4n x 2 x 2
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(16 * n, 16 * n),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(16 * n, 16 * n),
            nn.ReLU(inplace=True),
            nn.Linear(16 * n, n_outputs),
        )

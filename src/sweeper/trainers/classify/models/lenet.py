"""LeNet with a width multiplier, and the fixed LeNet-5 of the CIFAR-10 tutorials."""

from __future__ import annotations

from torch import nn

from sweeper.trainers.classify.models.blocks import conv_block, flat_features


class LeNet(nn.Sequential):
    """Two 5x5 conv + pool blocks (n, 2n channels) and three linear layers (8n, 4n, out)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        n_outputs: int,
        n_base: int = 16,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        features = nn.Sequential(
            conv_block(shape[0], n_base, 5, padding=2, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(n_base, 2 * n_base, 5, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        super().__init__(
            features,
            nn.Dropout(dropout),
            nn.Linear(flat_features(features, shape), 8 * n_base),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(8 * n_base, 4 * n_base),
            nn.ReLU(inplace=True),
            nn.Linear(4 * n_base, n_outputs),
        )


class LeNet5(nn.Sequential):
    """3x32x32 -> conv 6 -> pool -> conv 16 -> pool -> 120 -> 84 -> out (62,006 for 10 classes)."""

    def __init__(self, n_outputs: int) -> None:
        super().__init__(
            conv_block(3, 6, 5),
            nn.MaxPool2d(2),
            conv_block(6, 16, 5),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, n_outputs),
        )

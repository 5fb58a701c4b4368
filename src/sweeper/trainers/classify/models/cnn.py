"""The classic MNIST CNN: two 3x3 conv + max-pool blocks and one linear layer.

With n_base 16 on 1x28x28 input: 160 + 4,640 + 8,010 = 12,810 parameters.
"""

from __future__ import annotations

from torch import nn

from sweeper.trainers.classify.models.blocks import conv_block, flat_features


class CNN(nn.Sequential):
    """[N, C, H, W] images to [N, n_outputs] logits (input_problem knows the least size)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        n_outputs: int,
        n_base: int = 16,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        features = nn.Sequential(
            conv_block(shape[0], n_base, 3, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            conv_block(n_base, 2 * n_base, 3, batch_norm=batch_norm),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        super().__init__(
            features, nn.Dropout(dropout), nn.Linear(flat_features(features, shape), n_outputs)
        )

"""Noisy XOR points: Gaussian blobs at the unit square's corners, label = x1 xor x2."""

from __future__ import annotations

import torch

from sweeper.trainers.classify.data.source import Source


def xor_points(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(x [n, 2] float32, y [n] int64): a random corner plus Gaussian noise of standard
    deviation `noise`; label 1 where the corner's coordinates differ."""
    corners = torch.randint(0, 2, (n, 2), generator=generator)
    x = corners.float() + noise * torch.randn(n, 2, generator=generator)
    return x, (corners[:, 0] != corners[:, 1]).long()


def read_xor(n_samples: int, noise: float, seed: int) -> Source:
    """n_samples training points and half as many (at least 4) test points, seeded apart
    from the trial's seed so every trial of a sweep sees the same points."""
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = xor_points(n_samples, noise, generator)
    x_test, y_test = xor_points(max(n_samples // 2, 4), noise, generator)
    return Source(x_train, y_train, ["same", "different"], x_test, y_test)

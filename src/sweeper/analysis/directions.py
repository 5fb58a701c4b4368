"""Directions in weight space: seeded Gaussian, filter-wise normalised (Li et al. 2018).

A raw Gaussian direction moves a layer with small weights as far as one with large weights, so
its surface mixes the scale of the weights into its shape. Rescaling each filter of the
direction to the norm of the same filter of the weights makes surfaces of different nets,
and of scale-invariant (batch-normed) layers, comparable.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Direction = dict[str, torch.Tensor]
"""A tensor per parameter name, of that parameter's shape."""

Ignore = Literal["biasbn", "none"]
EPS = 1e-10


def weights(model: nn.Module) -> Direction:
    """The model's parameters by name (live tensors, not copies). Buffers such as batch-norm
    running statistics are not parameters: they stay where the checkpoint put them."""
    return {name: p.data for name, p in model.named_parameters()}


def normalise_filters(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Rescale every filter (slice along dim 0) of `direction` to the norm of `weight`'s."""
    if direction.ndim == 0:
        return direction * (weight.norm() / (direction.norm() + EPS))
    flat_d = direction.reshape(len(direction), -1)
    flat_w = weight.reshape(len(weight), -1)
    scale = flat_w.norm(dim=1) / (flat_d.norm(dim=1) + EPS)
    return (flat_d * scale[:, None]).reshape(direction.shape)


def random_direction(
    params: Direction, generator: torch.Generator, ignore: Ignore = "biasbn"
) -> Direction:
    """A Gaussian direction, filter-wise normalised. With `ignore="biasbn"` one-dimensional
    tensors (biases, batch-norm scales and shifts) get zero: the surface moves only the
    filters; with "none" each of their entries is a filter of one. Drawn on the CPU from
    `generator`, so a seed gives the same direction on any device."""
    out: Direction = {}
    for name, weight in params.items():
        if weight.ndim <= 1 and ignore == "biasbn":
            out[name] = torch.zeros_like(weight)
            continue
        noise = torch.randn(weight.shape, generator=generator, dtype=torch.float32)
        out[name] = normalise_filters(noise.to(weight.device, weight.dtype), weight)
    return out


def random_directions(
    params: Direction, seed: int, count: int, ignore: Ignore = "biasbn"
) -> list[Direction]:
    """`count` directions from one seed: the same seed gives the same surface."""
    generator = torch.Generator().manual_seed(seed)
    return [random_direction(params, generator, ignore) for _ in range(count)]


def difference(target: Direction, origin: Direction) -> Direction:
    """target - origin: the straight line from one set of weights to another."""
    return {name: target[name] - origin[name] for name in origin}


def float_state(model: nn.Module) -> Direction:
    """Every floating-point entry of the state (parameters and buffers such as batch-norm
    running statistics), live: the line between two checkpoints moves all of it, so each end
    is exactly its checkpoint."""
    return {name: t for name, t in model.state_dict().items() if t.is_floating_point()}

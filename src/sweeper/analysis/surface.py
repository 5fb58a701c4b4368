"""Evaluate the loss at points θ* + Σ cᵢ·dᵢ, with the weights moved in place.

No copy of the model per point: one saved copy of θ* and a `copy_` + `add_` per tensor set a
point, and the same copy restores θ* bit for bit. The model stays in eval mode under
`no_grad`, so batch-norm running statistics are used, never updated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

import numpy as np
import torch

from sweeper.analysis.directions import Direction
from sweeper.trainers.common.rebuild import Rebuilt


class Moved:
    """Moves live tensors to origin + Σ cᵢ·dᵢ; restores the origin on exit."""

    def __init__(self, live: Direction, directions: Sequence[Direction]) -> None:
        self.live, self.directions = live, directions
        self.origin = {name: t.detach().clone() for name, t in live.items()}

    @torch.no_grad()
    def to(self, coefficients: Sequence[float]) -> None:
        """Set the live tensors to origin + Σ cᵢ·dᵢ (one coefficient per direction), in place."""
        for name, tensor in self.live.items():
            tensor.copy_(self.origin[name])
            for c, direction in zip(coefficients, self.directions, strict=True):
                if c:
                    tensor.add_(direction[name], alpha=c)

    @torch.no_grad()
    def restore(self) -> None:
        """Put the origin's values back into the live tensors."""
        for name, tensor in self.live.items():
            tensor.copy_(self.origin[name])

    def __enter__(self) -> Moved:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


@torch.no_grad()
def mean_loss(rebuilt: Rebuilt) -> float:
    """The split's mean loss at the model's current weights, in eval mode."""
    rebuilt.model.eval()
    total, items = torch.zeros((), dtype=torch.float64, device=rebuilt.device), 0
    for batch in rebuilt.batches:
        loss, n = rebuilt.loss(rebuilt.model, batch)
        total += loss.double()
        items += n
    return (total / items).item()


def scan(
    rebuilt: Rebuilt,
    live: Direction,
    directions: Sequence[Direction],
    points: Sequence[Sequence[float]],
    tick: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """The mean loss at each point (one coefficient per direction); θ* is back afterwards."""
    values = np.empty(len(points))
    with Moved(live, directions) as moved:
        for i, point in enumerate(points):
            moved.to(point)
            values[i] = mean_loss(rebuilt)
            tick()
    return values

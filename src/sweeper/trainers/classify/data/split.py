"""Seeded stratified splits (sklearn's StratifiedShuffleSplit)."""

from __future__ import annotations

import torch
from sklearn.model_selection import StratifiedShuffleSplit

from sweeper.errors import SweeperError


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held-out) int64 index tensors, `fraction` of the [N] labels held out with each
    class's share preserved.

    Raises:
        SweeperError: the split cannot be made (a class with one item, or a held-out share
            smaller than the number of classes); `what` names it in the message.
    """
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    try:
        kept, held = next(splitter.split(torch.zeros(len(labels)), labels.numpy()))
    except ValueError as exc:
        raise SweeperError(f"cannot hold out {fraction:g} for {what}: {exc}") from None
    return torch.from_numpy(kept), torch.from_numpy(held)

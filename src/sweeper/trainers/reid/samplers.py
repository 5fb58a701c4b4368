"""The P x K identity sampler that batch-hard triplet mining needs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch

from sweeper.errors import SweeperError


class RandomIdentitySampler(torch.utils.data.Sampler[list[int]]):
    """Batches of P distinct identities x K images each; incomplete batches are dropped.

    Each epoch, every identity's images are shuffled and cut into groups of K (an identity
    with fewer than K images is topped up with repeats); batches draw P identities at random
    among those with groups left, until fewer than P remain. A batch sampler: use it as
    `DataLoader(batch_sampler=...)`.
    """

    def __init__(
        self,
        pids: Sequence[int],
        batch_size: int,
        num_instances: int,
        generator: torch.Generator | None = None,
    ) -> None:
        if batch_size % num_instances:
            raise ValueError(f"batch size {batch_size} is not a multiple of K={num_instances}")
        self.k, self.p = num_instances, batch_size // num_instances
        self.generator = generator
        self.index_of: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_of[pid].append(index)
        if len(self.index_of) < self.p:
            raise SweeperError(
                f"the training set has {len(self.index_of)} identities, fewer than the "
                f"{self.p} (P = data.batch_size / data.num_instances) one batch needs"
            )
        self._next: list[list[int]] | None = None

    def _randperm(self, n: int) -> list[int]:
        return torch.randperm(n, generator=self.generator).tolist()

    def _plan(self) -> list[list[int]]:
        groups: dict[int, list[list[int]]] = {}
        for pid, indices in self.index_of.items():
            if len(indices) < self.k:
                picks = torch.randint(len(indices), (self.k,), generator=self.generator).tolist()
            else:
                picks = self._randperm(len(indices))
            chosen = [indices[i] for i in picks]
            groups[pid] = [
                chosen[i : i + self.k] for i in range(0, len(chosen) - self.k + 1, self.k)
            ]
        batches = []
        available = [pid for pid, g in groups.items() if g]
        while len(available) >= self.p:
            picked = [available[i] for i in self._randperm(len(available))[: self.p]]
            batches.append([index for pid in picked for index in groups[pid].pop()])
            available = [pid for pid in available if groups[pid]]
        return batches

    def __len__(self) -> int:
        if self._next is None:  # the plan is drawn once, so len() and iteration agree
            self._next = self._plan()
        return len(self._next)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._next if self._next is not None else self._plan()
        self._next = None
        yield from batches

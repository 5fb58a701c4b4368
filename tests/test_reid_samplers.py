"""Properties of the P x K identity sampler."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sweeper.errors import SweeperError
from sweeper.trainers.reid.samplers import RandomIdentitySampler


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[int], int, int]:
    k = draw(st.integers(1, 5))
    p = draw(st.integers(1, 5))
    counts = draw(st.lists(st.integers(1, 12), min_size=p, max_size=15))
    pids = [pid for pid, count in enumerate(counts) for _ in range(count)]
    order = draw(st.permutations(range(len(pids))))
    return [pids[i] for i in order], p, k


@settings(max_examples=150, deadline=None)
@given(layouts(), st.integers(0, 2**16))
def test_batches_are_p_identities_times_k(layout: tuple[list[int], int, int], seed: int) -> None:
    pids, p, k = layout
    sampler = RandomIdentitySampler(pids, p * k, k, torch.Generator().manual_seed(seed))
    expected = len(sampler)
    batches = list(sampler)
    assert len(batches) == expected
    used: Counter[int] = Counter()
    for batch in batches:
        assert len(batch) == p * k
        per_id = Counter(pids[i] for i in batch)
        assert len(per_id) == p
        assert set(per_id.values()) == {k}
        used.update(batch)
    counts = Counter(pids)
    for index, times in used.items():
        if counts[pids[index]] >= k:  # enough images: each drawn at most once an epoch
            assert times == 1
    groups = {pid: count // k if count >= k else 1 for pid, count in counts.items()}
    assert len(batches) <= sum(groups.values()) // p
    assert len(batches) >= 1  # at least P identities always yield one batch


def test_same_seed_same_batches_and_epochs_differ() -> None:
    pids = [i // 6 for i in range(60)]
    first = RandomIdentitySampler(pids, 8, 4, torch.Generator().manual_seed(3))
    second = RandomIdentitySampler(pids, 8, 4, torch.Generator().manual_seed(3))
    epoch_one = list(first)
    assert epoch_one == list(second)
    assert list(first) != epoch_one


def test_fewer_identities_than_p_is_a_one_line_error() -> None:
    with pytest.raises(SweeperError, match=r"has 3 identities, fewer than the 4 \(P = data.batch"):
        RandomIdentitySampler([0, 0, 1, 1, 2, 2], batch_size=16, num_instances=4)


def test_batch_size_must_be_a_multiple_of_k() -> None:
    with pytest.raises(ValueError, match="not a multiple of K=4"):
        RandomIdentitySampler([0, 1], batch_size=10, num_instances=4)

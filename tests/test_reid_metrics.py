"""evaluate_rank against a slow, loop-by-loop reading of the VeRi protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeper.trainers.reid.metrics import distance_matrix, evaluate_rank, rank_features


def reference_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    cmcs, aps = [], []
    for q in range(len(q_pids)):
        ranked = sorted(range(len(g_pids)), key=lambda g: (distmat[q, g], g))
        kept = [g for g in ranked if not (g_pids[g] == q_pids[q] and g_camids[g] == q_camids[q])]
        matches = [g_pids[g] == q_pids[q] for g in kept]
        if not any(matches):
            continue
        first = matches.index(True)
        cmcs.append([1.0 if r >= first else 0.0 for r in range(max_rank)])
        precisions, found = [], 0
        for position, match in enumerate(matches, start=1):
            if match:
                found += 1
                precisions.append(found / position)
        aps.append(sum(precisions) / found)
    return np.mean(cmcs, axis=0), float(np.mean(aps))


def random_case(seed: int, n_query: int, n_gallery: int):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, 12, n_query)
    g_pids = rng.integers(0, 12, n_gallery)
    q_pids[:5] = 99  # no such vehicle in the gallery: skipped
    q_camids = rng.integers(1, 5, n_query)
    g_camids = rng.integers(1, 5, n_gallery)
    g_camids[g_pids == 7] = 3
    q_pids[5:10], q_camids[5:10] = 7, 3  # only same-camera views of itself: skipped too
    distmat = rng.random((n_query, n_gallery)).astype(np.float32)
    return distmat, q_pids, g_pids, q_camids, g_camids


@pytest.mark.parametrize(("seed", "n_query", "n_gallery"), [(0, 40, 150), (1, 300, 90)])
def test_matches_the_reference_on_random_data(seed: int, n_query: int, n_gallery: int) -> None:
    case = random_case(seed, n_query, n_gallery)
    cmc, mean_ap = evaluate_rank(*case, max_rank=20)
    ref_cmc, ref_ap = reference_rank(*case, max_rank=20)
    assert cmc.shape == (20,)
    np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
    assert mean_ap == pytest.approx(ref_ap, abs=1e-9)


def test_hand_worked_case() -> None:
    g_pids = np.array([1, 2, 1, 3, 1])
    g_camids = np.array([1, 2, 2, 1, 3])
    q_pids, q_camids = np.array([1, 4, 2]), np.array([1, 1, 1])
    distmat = np.array(
        [
            [
                0.1,
                0.2,
                0.3,
                0.4,
                0.5,
            ],  # g0 same id+camera is removed: -, +, -, + -> AP (1/2 + 2/4)/2
            [0.1, 0.2, 0.3, 0.4, 0.5],  # vehicle 4 is not in the gallery: skipped
            [0.9, 0.1, 0.3, 0.4, 0.5],  # first hit at rank 1 -> AP 1
        ]
    )
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=5)
    np.testing.assert_allclose(cmc, [0.5, 1, 1, 1, 1])
    assert mean_ap == pytest.approx((0.5 + 1.0) / 2)


def test_no_valid_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(np.zeros((1, 2)), [1], [1, 2], [1], [1, 1], max_rank=2)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_distances_and_streamed_ranking(metric: str) -> None:
    generator = torch.Generator().manual_seed(0)
    query, gallery = (
        torch.randn(300, 8, generator=generator),
        torch.randn(50, 8, generator=generator),
    )
    dist = distance_matrix(query, gallery, metric, chunk=64)
    if metric == "euclidean":
        expected = torch.cdist(query, gallery).pow(2)
    else:
        expected = 1 - torch.nn.functional.cosine_similarity(query[:, None], gallery[None], dim=2)
    np.testing.assert_allclose(dist, expected.numpy(), atol=1e-4)
    _, q_pids, g_pids, q_camids, g_camids = random_case(2, 300, 50)
    streamed = rank_features(query, gallery, q_pids, g_pids, q_camids, g_camids, metric, 10)
    whole = evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids, max_rank=10)
    np.testing.assert_allclose(streamed[0], whole[0])
    assert streamed[1] == pytest.approx(whole[1])

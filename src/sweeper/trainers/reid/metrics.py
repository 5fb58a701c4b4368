"""CMC and mAP under the Market-1501 / VeRi-776 protocol, vectorised and chunked by query.

For each query the gallery is ranked by distance, gallery items of the same vehicle seen
by the same camera are removed (matching them is trivial), and queries left with no
true match are skipped. CMC averages the first-match curve; AP averages the precision at
every true match over the whole remaining list. The protocol: Zheng et al. 2015, "Scalable
Person Re-identification: A Benchmark" (Market-1501), as VeRi-776 adopts it (Liu et al. 2016,
"A Deep Learning-Based Approach to Progressive Vehicle Re-identification").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Distance = Literal["euclidean", "cosine"]
CHUNK = 256
"""Queries ranked at once: memory stays at a few CHUNK x gallery arrays."""


def _rank_chunk(
    dist: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (0-based position of the first true match or -1, average precision)."""
    order = np.argsort(dist, axis=1, kind="stable")
    same_id = g_pids[order] == q_pids[:, None]
    keep = ~(same_id & (g_camids[order] == q_camids[:, None]))
    hits = same_id & keep
    position = np.cumsum(keep, axis=1, dtype=np.int32)  # 1-based, among kept items
    found = np.cumsum(hits, axis=1, dtype=np.int32)
    num_hits = found[:, -1]
    rows, cols = np.nonzero(hits)
    precision = found[rows, cols] / position[rows, cols]
    ap = np.bincount(rows, weights=precision, minlength=len(dist)) / np.maximum(num_hits, 1)
    first = position[np.arange(len(dist)), hits.argmax(axis=1)] - 1
    return np.where(num_hits > 0, first, -1), ap


def _summarise(first: np.ndarray, ap: np.ndarray, max_rank: int) -> tuple[np.ndarray, float]:
    valid = first >= 0
    if not valid.any():
        raise ValueError("no query has a true match in the gallery from another camera")
    cmc = (first[valid, None] < np.arange(1, max_rank + 1)).mean(axis=0)
    return cmc.astype(np.float32), float(ap[valid].mean())


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """(CMC, mAP) for a query x gallery distance matrix.

    Args:
        distmat: [Q, G] distances, smaller is closer.
        q_pids, q_camids: [Q] vehicle and camera ids of the queries.
        g_pids, g_camids: [G] those of the gallery.
        max_rank: length of the CMC curve.

    Returns:
        CMC [max_rank] float32, entry k-1 the fraction of queries with a true match within
        the first k; mAP, the mean average precision, a fraction in [0, 1].

    Raises:
        ValueError: no query has a true match from another camera.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids, q_camids, g_camids = map(np.asarray, (q_pids, g_pids, q_camids, g_camids))
    parts = [
        _rank_chunk(
            distmat[i : i + CHUNK], q_pids[i : i + CHUNK], q_camids[i : i + CHUNK], g_pids, g_camids
        )
        for i in range(0, len(distmat), CHUNK)
    ]
    first, ap = (np.concatenate(p) for p in zip(*parts, strict=True))
    return _summarise(first, ap, max_rank)


def distance_chunk(query: torch.Tensor, gallery: torch.Tensor, metric: Distance) -> torch.Tensor:
    """Squared Euclidean or cosine (1 - cos) distances [Q, G] float32 of query features
    [Q, D] to gallery features [G, D]."""
    query, gallery = query.float(), gallery.float()
    if metric == "cosine":
        return 1 - F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T
    squares = query.pow(2).sum(1, keepdim=True) + gallery.pow(2).sum(1)[None, :]
    return (squares - 2 * query @ gallery.T).clamp_min_(0)


def distance_matrix(
    query: torch.Tensor, gallery: torch.Tensor, metric: Distance = "euclidean", chunk: int = CHUNK
) -> np.ndarray:
    """The full [Q, G] float32 matrix of features [Q, D] and [G, D], built a chunk of queries
    at a time."""
    return np.concatenate(
        [
            distance_chunk(query[i : i + chunk], gallery, metric).cpu().numpy()
            for i in range(0, len(query), chunk)
        ]
    )


def rank_features(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    metric: Distance = "euclidean",
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """`evaluate_rank` from query features [Q, D] and gallery features [G, D], never holding
    the whole distance matrix.

    Raises:
        ValueError: no query has a true match from another camera.
    """
    q_pids, g_pids, q_camids, g_camids = map(np.asarray, (q_pids, g_pids, q_camids, g_camids))
    parts = []
    for i in range(0, len(query), CHUNK):
        dist = distance_chunk(query[i : i + CHUNK], gallery, metric).cpu().numpy()
        parts.append(
            _rank_chunk(dist, q_pids[i : i + CHUNK], q_camids[i : i + CHUNK], g_pids, g_camids)
        )
    first, ap = (np.concatenate(p) for p in zip(*parts, strict=True))
    return _summarise(first, ap, max_rank)

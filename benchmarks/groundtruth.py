"""Exact nearest neighbours (float64 brute force) and recall@k with ties counted as hits.

Distances are "lower = nearer" for every metric: euclidean = L2, cosine = 1 - cosine similarity,
dot_product = -inner product. Recall follows ann-benchmarks: a returned row counts when its exact
distance is within a tiny tolerance of the k-th true distance, so exact ties are never misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

BLOCK = 32_768  # base rows per float64 block: bounds memory at ~BLOCK * d * 8 bytes


def distances(base: np.ndarray, rows: npt.NDArray[np.int64], query: np.ndarray, metric: str) -> np.ndarray:
    """Exact float64 distances from ``query`` to ``base[rows]`` (rows < 0 give +inf)."""
    out = np.full(len(rows), np.inf)
    valid = rows >= 0
    if not valid.any():
        return out
    x = np.asarray(base[rows[valid]], dtype=np.float64)
    out[valid] = _block_distances(x, np.asarray(query, dtype=np.float64)[None, :], metric)[0]
    return out


def _block_distances(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """(queries, rows) distances in float64."""
    dots = q @ x.T
    if metric == "dot_product":
        return -dots
    if metric == "cosine":
        norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(x, axis=1)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            sims = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
        return 1.0 - sims
    if metric == "euclidean":
        sq = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * dots
        return np.sqrt(np.maximum(sq, 0.0))
    raise ValueError(f"unknown metric {metric!r}")


def exact_topk(
    base: np.ndarray, queries: np.ndarray, k: int, metric: str, rows: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Row indices (into ``base``) and distances of the ``k`` nearest rows for each query, nearest first.

    ``rows`` limits the search to those base rows (a filter). Missing neighbours are -1 / +inf.
    """
    q = np.asarray(queries, dtype=np.float64)
    nq = len(q)
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    candidates = np.arange(len(base), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    for start in range(0, len(candidates), BLOCK):
        ids = candidates[start:start + BLOCK]
        x = np.asarray(base[ids] if rows is not None else base[start:start + len(ids)], dtype=np.float64)
        d = _block_distances(x, q, metric)
        merged_d = np.concatenate([best_d, d], axis=1)
        merged_i = np.concatenate([best_i, np.broadcast_to(ids, d.shape)], axis=1)
        take = min(k, merged_d.shape[1])
        part = np.argpartition(merged_d, take - 1, axis=1)[:, :take]
        best_d = np.take_along_axis(merged_d, part, axis=1)
        best_i = np.take_along_axis(merged_i, part, axis=1)
    order = np.lexsort((best_i, best_d), axis=1)
    return np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_d, order, axis=1)


def filtered_topk(
    base: np.ndarray, queries: np.ndarray, k: int, metric: str,
    row_category: np.ndarray, query_category: np.ndarray,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Exact top-k of each query among the rows whose category equals the query's category."""
    nq = len(queries)
    ids = np.full((nq, k), -1, dtype=np.int64)
    dist = np.full((nq, k), np.inf)
    codes = np.asarray(row_category)
    for cat in np.unique(query_category):
        which = np.flatnonzero(query_category == cat)
        rows = np.flatnonzero(codes == cat).astype(np.int64)
        i, d = exact_topk(base, np.asarray(queries)[which], k, metric, rows)
        ids[which], dist[which] = i, d
    return ids, dist


def recall(
    base: np.ndarray, queries: np.ndarray, found: Sequence[Sequence[int]], true_dist: np.ndarray,
    k: int, metric: str,
) -> npt.NDArray[np.float64]:
    """Per-query recall@k of ``found`` (row indices, -1 for ids not in the data set).

    A found row is a hit when its exact distance is <= the k-th true distance (+ a relative 1e-6);
    duplicates count once; queries with fewer than k true neighbours are scored on what exists.
    """
    out = np.zeros(len(found))
    for qi, rows in enumerate(found):
        unique = np.array(list(dict.fromkeys(r for r in list(rows)[:k] if r >= 0)), dtype=np.int64)
        expected = int(np.isfinite(true_dist[qi]).sum())
        if expected == 0:
            out[qi] = 1.0
            continue
        kth = true_dist[qi][expected - 1]
        d = distances(base, unique, queries[qi], metric)
        out[qi] = min(expected, int((d <= kth + 1e-6 * max(1.0, abs(kth))).sum())) / expected
    return out

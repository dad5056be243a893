"""From faiss' candidates to hits: scores with the core's semantics, best first, ties by record id.

Where faiss computes each distance in float32 from the stored vector itself (HNSW and IVF without a
quantizer), its distances are the scores, to float32 precision. Elsewhere (quantized codes, and flat
indexes, whose batches go through BLAS) every (query, candidate) pair is scored again in float64 from the
stored vector, with ``vectorknobs.metrics.exact_scores``. Either way one read of the stored vectors serves a
whole batch of queries, and only the records that make the results are read and decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from vectorknobs import Hit
from vectorknobs.fields import FloatArray
from vectorknobs.metrics import F64, DistanceMetric, clip_similarities, exact_scores

from vectorknobs_faiss.database import HitRows
from vectorknobs_faiss.indexes import Labels

#: how far float32 scores may stray from exact ones, relative to the scores' scale
TOLERANCE = 1e-5

Mask = npt.NDArray[np.bool_]


def faiss_scores(distances: npt.NDArray[np.float32], labels: Labels, metric: DistanceMetric) -> F64:
    """Scores of faiss' own distances (inner products of unit vectors for cosine, squared L2 for euclidean);
    -inf where faiss padded with label -1."""
    d = distances.astype(np.float64)
    if metric is DistanceMetric.EUCLIDEAN:
        scores = metric.distance_to_score(np.sqrt(np.maximum(d, 0.0)))
    elif metric is DistanceMetric.COSINE:
        scores = clip_similarities(d)
    else:
        scores = d
    scores[labels < 0] = -np.inf
    return scores


def pair_scores(rids: Labels, matrix: FloatArray, labels: Labels, queries: FloatArray, metric: DistanceMetric
                ) -> tuple[F64, F64]:
    """Exact scores (``exact_scores``, the reference store's) of each query (row of ``queries``) against its
    candidates (its row of ``labels``), from the stored vectors (``matrix``, rows of the sorted ``rids``), and
    how far each query's float32 order may stray from them; -inf for a label faiss padded (-1) or that is not
    stored."""
    at = np.minimum(np.searchsorted(rids, labels), max(len(rids) - 1, 0))
    found = (labels >= 0) & (rids[at] == labels) if len(rids) else np.zeros(labels.shape, dtype=bool)
    if not found.any():
        return np.full(labels.shape, -np.inf), np.zeros(len(labels))
    vectors = matrix.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    scores = np.vstack([exact_scores(vectors[row], query, metric, norms[row])
                        for row, query in zip(at, queries, strict=True)])
    scores[~found] = -np.inf
    scale = np.ones(len(queries))
    if metric is DistanceMetric.DOT_PRODUCT:
        wide = queries.astype(np.float64)
        scale = np.sqrt(np.einsum("qd,qd->q", wide, wide)) * np.max(np.where(found, norms[at], 0.0), axis=1)
    return scores, TOLERANCE * (scale + np.max(np.where(found, np.abs(scores), 0.0), axis=1))


def kth(scores: F64, k: int) -> F64:
    """The k-th best score of each row (the worst, when a row has fewer)."""
    k = min(k, scores.shape[-1])
    return -np.partition(-scores, k - 1, axis=-1)[..., k - 1]


def ties_beyond(scores: F64, kth_best: F64, noise: F64, exact_order: bool) -> Mask:
    """Per row: could candidates after these (in faiss' order) still tie with, or beat, the k-th best score?"""
    last = scores[:, -1]
    beyond = last >= kth_best - noise
    return beyond if exact_order else beyond & (last <= kth_best + noise)


def best_group(labels: Labels, scores: F64, kth_best: float) -> tuple[Labels, F64]:
    """The labels scoring at least the k-th best score (the k best, and every label tied with the k-th)."""
    group = scores >= kth_best
    return labels[group], scores[group]


def top_hits(rows: HitRows, labels: Sequence[int], scores: Sequence[float], k: int, field: str) -> list[Hit]:
    """The ``k`` best of ``labels`` (with their ``scores``, read in ``rows``), ties by record id, decoded."""
    ranked = sorted(zip(scores, map(rows.id, labels), labels, strict=True), key=lambda hit: (-hit[0], hit[1]))
    return [rows.hit(label, score, field) for score, _, label in ranked[:k]]

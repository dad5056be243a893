"""From candidates to hits: exact scores, best first, ties by record id.

Faiss computes in float32 (and approximately, for IVF and HNSW), so its distances only choose
candidates: every candidate is scored again with ``vectorknobs.metrics.exact_scores`` on the stored
vector, the function the reference store uses, so scores and tie order match it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from vectorknobs import Hit, Record
from vectorknobs.fields import FloatArray
from vectorknobs.metrics import F64, DistanceMetric, exact_scores

from vectorknobs_faiss.indexes import Labels, row_norms

#: how far float32 scores may stray from exact ones, relative to the scores' scale
TOLERANCE = 1e-5


def rescore(matrix: FloatArray, query: FloatArray, metric: DistanceMetric) -> tuple[F64, float]:
    """Exact scores of the candidates' stored vectors (``matrix``), and the float32 noise faiss' order may
    hold."""
    scores = exact_scores(matrix, query, metric)
    scale = 1.0
    if metric is DistanceMetric.DOT_PRODUCT:
        scale = float(row_norms(query[None, :])[0]) * float(np.max(row_norms(matrix)))
    return scores, TOLERANCE * (scale + float(np.max(np.abs(scores))))


def kth(scores: F64, k: int) -> float:
    """The k-th best score (the worst, when there are fewer)."""
    return float(-np.partition(-scores, min(k, len(scores)) - 1)[min(k, len(scores)) - 1])


def best(labels: Labels, scores: F64, k: int,
         records: Mapping[int, Record] | Callable[[Labels], Mapping[int, Record]]) -> list[Hit]:
    """The ``k`` best of ``labels`` by score, ties by record id; ``records`` by label, or how to load them."""
    if not len(labels):
        return []
    group = np.flatnonzero(scores >= kth(scores, k))  # the k best and everything tied with the k-th
    if callable(records):
        records = records(labels[group])
    ranked = sorted(((float(scores[i]), records[int(labels[i])]) for i in group), key=lambda h: (-h[0], h[1].key))
    return [Hit(record, value) for value, record in ranked[:k]]

"""Distance metrics and the score semantics every store shares.

Higher score = more similar, on every store:

=============  ===========================  ====================
metric         score                        distance (reported)
=============  ===========================  ====================
cosine         cosine similarity in [-1, 1]  1 - similarity
dot_product    inner product                 -inner product
euclidean      1 / (1 + L2 distance)         L2 distance
=============  ===========================  ====================

A zero vector has cosine similarity 0 with everything (a zero *query* vector is rejected).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from vectorknobs.errors import QueryError, VectorValueError

F64 = npt.NDArray[np.float64]
Number = TypeVar("Number", float, F64)


class DistanceMetric(StrEnum):
    COSINE = "cosine"
    EUCLIDEAN = "euclidean"
    DOT_PRODUCT = "dot_product"

    @classmethod
    def parse(cls, value: DistanceMetric | str) -> DistanceMetric:
        """Accept the enum, its value, or a common alias (``l2``, ``ip``, ``dot``, ``inner_product``)."""
        if isinstance(value, DistanceMetric):
            return value
        key = str(value).strip().lower()
        found = _ALIASES.get(key)
        if found is None:
            raise QueryError(f"unknown metric {value!r}; use one of {', '.join(m.value for m in cls)}")
        return found

    def distance_to_score(self, distance: F64) -> F64:
        if self is DistanceMetric.COSINE:
            return 1.0 - distance
        if self is DistanceMetric.DOT_PRODUCT:
            return -distance
        return 1.0 / (1.0 + distance)

    def score_to_distance(self, score: Number) -> Number:
        """The distance of a score, or of each score of an array."""
        if self is DistanceMetric.COSINE:
            return 1.0 - score
        if self is DistanceMetric.DOT_PRODUCT:
            return -score
        return 1.0 / score - 1.0


_ALIASES = {m.value: m for m in DistanceMetric} | {
    "cos": DistanceMetric.COSINE,
    "l2": DistanceMetric.EUCLIDEAN,
    "euclid": DistanceMetric.EUCLIDEAN,
    "dot": DistanceMetric.DOT_PRODUCT,
    "ip": DistanceMetric.DOT_PRODUCT,
    "inner_product": DistanceMetric.DOT_PRODUCT,
}


def exact_scores(
    matrix: npt.NDArray[np.floating[Any]], query: npt.NDArray[np.float32], metric: DistanceMetric,
    norms: F64 | None = None,
) -> F64:
    """Scores of every row of ``matrix`` against ``query``, in float64 (the oracle's precision).

    A caller scoring the same rows many times passes them as float64 and, for cosine, their ``norms``
    (``np.linalg.norm(rows, axis=1)``), so neither is computed again per query."""
    rows = matrix.astype(np.float64, copy=False)
    q = query.astype(np.float64, copy=False)
    if metric is DistanceMetric.EUCLIDEAN:
        diff = rows - q
        return metric.distance_to_score(np.sqrt(np.einsum("ij,ij->i", diff, diff)))
    dots: F64 = rows @ q
    if metric is DistanceMetric.DOT_PRODUCT:
        return dots
    q_norm = float(np.linalg.norm(q))
    if q_norm == 0.0:
        raise VectorValueError("a zero query vector has no cosine similarity; use another metric")
    norms = (np.linalg.norm(rows, axis=1) if norms is None else norms) * q_norm
    with np.errstate(divide="ignore", invalid="ignore"):
        sims = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return clip_similarities(sims)


def clip_similarities(similarities: F64) -> F64:
    """Cosine similarities held within [-1, 1] against rounding (``np.clip``, without its dispatch cost)."""
    return np.minimum(np.maximum(similarities, -1.0), 1.0)

"""Scores from the distances Chroma's HNSW reports, with the core's semantics (higher = more similar)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from vectorknobs import DistanceMetric
from vectorknobs.metrics import clip_similarities


def scores(distances: Sequence[float], metric: DistanceMetric, query: npt.NDArray[np.float32]) -> list[float]:
    """The scores of Chroma's distances to ``query`` (float32 arithmetic on the stored vectors): ``l2`` is the
    squared distance, ``ip`` is ``1 - dot``, and a cosine collection holds unit vectors in ``ip`` space,
    searched with the query as it is (so ``1 - d`` is the cosine times the query's length)."""
    d = np.asarray(distances, dtype=np.float64)
    if metric is DistanceMetric.EUCLIDEAN:
        found = metric.distance_to_score(np.sqrt(np.maximum(d, 0.0)))
    elif metric is DistanceMetric.DOT_PRODUCT:
        found = 1.0 - d
    else:
        wide = query.astype(np.float64)
        found = clip_similarities((1.0 - d) / np.sqrt(np.dot(wide, wide)))
    return [float(score) for score in found]

"""k-nearest-neighbour SQL and the exact re-scoring of its candidates.

pgvector computes distances with float32 sums, so its order can differ from the float64 oracle's for
near ties. Every candidate row is therefore re-scored with ``vectorknobs.metrics.exact_scores`` and
sorted by (score, id). An exact search fetches a few spare rows, and when rows beyond those could still
tie with the k-th best (within pgvector's rounding), it fetches every row in that band: the result is
then exactly the oracle's. An index search (HNSW, IVFFlat) is approximate by nature: its rows are ranked by
pgvector's own float32 distances (re-scored only when the index holds half-precision copies, whose distances
are rounded); when it finds fewer than k rows although more match (a selective filter), the search is
repeated exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from vectorknobs.fields import FloatArray
from vectorknobs.metrics import DistanceMetric, exact_scores

from vectorknobs_pgvector.indexes import OPERATORS, VectorIndex, column_expression, query_cast
from vectorknobs_pgvector.options import VectorType
from vectorknobs_pgvector.sql import quote

_SPARE_ROWS = 8
_UNIT_ROUNDOFF = 2.0**-24


@dataclass(frozen=True)
class Candidate:
    row: Any  # the asyncpg record: id, _body, vector columns, _d
    vector: FloatArray


def distance_sql(
    field: str, column_type: VectorType, dimensions: int, metric: DistanceMetric, index: VectorIndex | None,
    param: str,
) -> str:
    """The distance expression: the index's own (so the planner uses it), or an exact one it cannot use."""
    op = OPERATORS[metric]
    if index is not None:
        cast = query_cast(column_type, dimensions, index.half)
        return f"({column_expression(field, column_type, dimensions, index.half)}) {op} {param}::{cast}"
    column = quote(field) if column_type is VectorType.VECTOR else f"{quote(field)}::vector"
    if metric is DistanceMetric.COSINE:  # pgvector gives NaN for a zero vector; its similarity is 0
        return f"COALESCE(NULLIF({column} {op} {param}::vector, 'NaN'), 1.0)"
    return f"({column} {op} {param}::vector) + 0"  # "+ 0": never an index scan


def rank(rows: Sequence[Any], field: str, query: FloatArray, metric: DistanceMetric) -> list[tuple[Any, float]]:
    """Rows with their exact float64 scores, best first, ties by id."""
    if not rows:
        return []
    matrix = np.vstack([row[field] for row in rows])
    scores = exact_scores(matrix, query, metric)
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]["id"]))
    return [(rows[i], float(scores[i])) for i in order]


def by_distance(rows: Sequence[Any], metric: DistanceMetric) -> list[tuple[Any, float]]:
    """Rows with the scores of pgvector's distances (``_d``), best first, ties by id (k rows: plain Python)."""
    if metric is DistanceMetric.COSINE:  # pgvector gives NaN for a zero vector, whose similarity is 0
        scored = [(row, 0.0 if (d := row["_d"]) != d else min(1.0, max(-1.0, 1.0 - d))) for row in rows]
    elif metric is DistanceMetric.DOT_PRODUCT:
        scored = [(row, -row["_d"]) for row in rows]
    else:
        scored = [(row, 1.0 / (1.0 + row["_d"])) for row in rows]
    if all(better[1] > worse[1] for better, worse in itertools.pairwise(scored)):
        return scored  # pgvector's order, without ties: nothing to sort
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]["id"]))


def band_limit(ranked: Sequence[tuple[Any, float]], k: int, query: FloatArray, metric: DistanceMetric,
               field: str) -> float:
    """The largest pgvector distance an unfetched row could have and still belong in the top k.

    Its float64 distance must not exceed the k-th best fetched one; pgvector's float32 sums may be off by
    about sqrt(d) unit roundoffs of the terms' magnitude, allowed here eight times over.
    """
    kth_score = ranked[min(k, len(ranked)) - 1][1]
    kth = float(metric.score_to_distance(np.array([kth_score]))[0])
    dims = query.shape[0]
    q_norm = float(np.linalg.norm(query.astype(np.float64)))
    x_norm = max(float(np.linalg.norm(row[field].astype(np.float64))) for row, _ in ranked)
    if metric is DistanceMetric.COSINE:
        scale = 1.0
    elif metric is DistanceMetric.EUCLIDEAN:
        scale = kth + q_norm + x_norm
    else:
        scale = q_norm * x_norm
    return kth + 8.0 * math.sqrt(dims) * _UNIT_ROUNDOFF * scale + 1e-12

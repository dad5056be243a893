"""Data and an exact numpy oracle for the faiss plugin's own tests (imported by the test modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import vectorknobs as vk

F32 = npt.NDArray[np.float32]


def clustered(n: int, dims: int, seed: int = 0, clusters: int = 20) -> F32:
    """Clustered Gaussian vectors: real neighbourhoods, so approximate indexes have something to find."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dims))
    return (centers[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dims))).astype(np.float32)


def records(vectors: F32, start: int = 0, field: str = "embedding") -> list[vk.Record]:
    """One record per row: id ``r<i>``, a text, a ``group`` (i % 10) and the vector."""
    return [
        vk.Record({"text": f"doc {i}", "group": i % 10, field: vk.VectorField(v, source_field="text")}, id=f"r{i}")
        for i, v in enumerate(vectors, start=start)
    ]


def exact_ids(vectors: F32, query: F32, k: int, metric: str = "cosine", rows: Sequence[int] | None = None
              ) -> list[str]:
    """Ids of the exact k nearest rows (float64), among ``rows`` if given."""
    x = vectors.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        scores = (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    elif metric == "dot_product":
        scores = x @ q
    else:
        scores = -np.linalg.norm(x - q, axis=1)
    candidates = np.arange(len(x)) if rows is None else np.asarray(rows)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [f"r{i}" for i in order[:k]]


def recall(found: Sequence[vk.VectorSearchResult], expected: Sequence[str]) -> float:
    return len({r.id for r in found} & set(expected)) / len(expected)


async def mean_recall(store: vk.VectorStore, vectors: F32, queries: F32, k: int = 10, **search: Any) -> float:
    values = []
    for q in queries:
        values.append(recall(await store.vector_search(q, k=k, **search), exact_ids(vectors, q, k)))
    return float(np.mean(values))

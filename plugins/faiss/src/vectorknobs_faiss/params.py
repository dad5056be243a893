"""Per-query search parameters, scoped to the current task with a context variable.

    with store.search_params(ef_search=256):
        hits = await store.vector_search(vector, k=10)

Other tasks keep the store's defaults; worker threads see the values because ``asyncio.to_thread``
copies the context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from vectorknobs import QueryError


@dataclass(frozen=True)
class SearchParams:
    ef_search: int | None = None
    nprobe: int | None = None
    exact: bool = False


DEFAULT = SearchParams()
CURRENT: ContextVar[SearchParams] = ContextVar("vectorknobs_faiss_search_params", default=DEFAULT)


@contextmanager
def search_params(*, ef_search: int | None = None, nprobe: int | None = None, exact: bool = False) -> Iterator[None]:
    """Search with these HNSW ``ef_search`` / IVF ``nprobe`` values, or ``exact`` scoring, inside the block."""
    for name, value in (("ef_search", ef_search), ("nprobe", nprobe)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise QueryError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(exact, bool):
        raise QueryError(f"exact must be True or False, got {exact!r}")
    token = CURRENT.set(SearchParams(ef_search, nprobe, exact))
    try:
        yield
    finally:
        CURRENT.reset(token)

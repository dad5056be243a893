"""The two sides of a benchmark run: the store under test (through vectorknobs) and a raw baseline.

Both implement ``Side``; the worker process drives either one the same way, so the numbers differ only
by what each side does. The store side is ``StoreSide``; raw baselines live in ``benchmarks.baselines``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

VECTOR_FIELD = "embedding"
SOURCE_FIELD = "text"


@dataclass
class Batch:
    """One insert batch, materialised from the data set: what a caller holds before writing.

    ``columns`` are the record fields (``text``, ``category``, ``price``), one Python list each,
    aligned with ``ids`` and the rows of ``vectors`` (float32, C-contiguous, owned by the batch).
    """

    ids: list[str]
    vectors: np.ndarray
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SideContext:
    """What a side is told when it is built.

    ``store_url``: the store URL under test, placeholders resolved (a baseline mirrors its index options).
    ``store_settings``: that store's options as the store resolves them, defaults included (JSON values).
    ``options``: ``--raw-option key=value`` overrides (baselines only).
    ``workdir``: an empty directory the side may write into (files of a raw baseline).
    """

    dim: int
    metric: str
    n: int
    store_url: str
    store_scheme: str
    store_settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path(".")


@runtime_checkable
class Side(Protocol):
    """What the harness calls on each side; ids returned are the record ids, best first.

    Every method is async so async raw clients (asyncpg, chroma's HTTP client...) fit; a synchronous
    client simply calls its library directly inside them.
    """

    async def open(self) -> None: ...
    async def insert(self, batch: Batch) -> None: ...
    async def finish_insert(self) -> None:
        """Whatever makes the inserted data searchable and durable as the store would (flush, fsync...)."""

    async def search(self, vector: np.ndarray, k: int) -> list[str]: ...
    # optional: ``search_concurrent(vector, k)``, what the concurrent phase calls from many tasks at once when a
    # side has it (a synchronous client offloads to threads there, as an async application must); else search
    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]: ...
    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        """``where`` is an equality filter, ``{"category": "books"}``."""

    def describe(self) -> dict[str, Any]:
        """JSON-safe facts for the result file: index type, parameters, versions."""

    async def close(self) -> None: ...


class StoreSide:
    """The store under test, used exactly as an application would use vectorknobs."""

    def __init__(self, ctx: SideContext) -> None:
        self.ctx = ctx
        self.store: Any = None
        self.build_seconds = 0.0  # time spent constructing the RecordBatch or Records (part of insert time)

    async def open(self) -> None:
        import vectorknobs

        self.store = await vectorknobs.connect(self.ctx.store_url)
        existing = await self.store.count()
        if existing:
            await self.store.close()
            self.store = None
            raise RuntimeError(
                f"{self.ctx.store_url} already holds {existing} records; benchmark an empty store "
                "(use {tmp} in a path for a fresh temporary directory)"
            )

    async def insert(self, batch: Batch) -> None:
        from vectorknobs import Record, RecordBatch, VectorColumn, VectorField

        start = time.perf_counter()
        text, category, price = batch.columns["text"], batch.columns["category"], batch.columns["price"]
        if self.ctx.options.get("input", "batch") == "batch":
            columns = {"text": text, "category": category, "price": price,
                       VECTOR_FIELD: VectorColumn(batch.vectors, source_field=SOURCE_FIELD)}
            rows = RecordBatch(columns, ids=batch.ids)
            self.build_seconds += time.perf_counter() - start
            await self.store.bulk_create(rows)
            return
        records = [
            Record(
                {
                    "text": text[i],
                    "category": category[i],
                    "price": price[i],
                    VECTOR_FIELD: VectorField(batch.vectors[i], source_field=SOURCE_FIELD),
                },
                id=batch.ids[i],
            )
            for i in range(len(batch))
        ]
        self.build_seconds += time.perf_counter() - start
        await self.store.bulk_create(records)

    async def finish_insert(self) -> None:
        # A store that builds or retrains indexes in the background (the faiss store's automatic choice,
        # IVF training) offers wait_for_indexes(): until it returns the data is not indexed as asked.
        wait = getattr(self.store, "wait_for_indexes", None)
        if callable(wait):
            await wait()

    # Searches ask for what the raw clients fetch: each hit's fields and source text, not its vector
    # (include_vectors=False).
    async def search(self, vector: np.ndarray, k: int) -> list[str]:
        return hits(await self.store.vector_search(vector, k=k, include_vectors=False))

    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        found = await self.store.vector_search_batch(vectors, k=k, include_vectors=False)
        return [hits(results) for results in found]

    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        return hits(await self.store.vector_search(vector, k=k, filter=where, include_vectors=False))

    def describe(self) -> dict[str, Any]:
        store = self.store
        info: dict[str, Any] = {
            "kind": "store",
            "url": self.ctx.store_url,
            "class": f"{type(store).__module__}.{type(store).__qualname__}" if store is not None else None,
            "settings": self.ctx.store_settings,
            "record_build_seconds": round(self.build_seconds, 4),
        }
        if store is not None:
            info["capabilities"] = _jsonable(store.capabilities.describe())
            index_info = getattr(store, "index_info", None)  # stores that can say which index they built
            if callable(index_info):
                try:
                    info["index_info"] = _jsonable(index_info())
                except Exception as err:  # noqa: BLE001 - introspection is best effort
                    info["index_info"] = f"error: {err}"
        return info

    async def close(self) -> None:
        """Drop what the run wrote (unless ``--keep``), then close."""
        if self.store is not None:
            if self.ctx.options.get("keep") != "true":
                await self.store.drop()
            await self.store.close()


def hits(results: list[Any]) -> list[str]:
    """The ids of search results, best first (each result already holds its record and source text)."""
    return [r.id for r in results]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

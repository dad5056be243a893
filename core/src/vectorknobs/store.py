"""``VectorStore``: the async API every store offers, and the contract a store plugin implements.

The public methods here check every input once, for all stores, then call a handful of primitives
(``_write``, ``_read``, ``_delete``, ``_search``, ``_count``, ``_vector_search``...) that a plugin
implements. A plugin therefore never re-implements validation, score conversion, source-text lookup,
thresholds or paging, and every store rejects bad input with the same typed errors.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Self, overload

import numpy as np
import numpy.typing as npt

from vectorknobs.batch import RecordBatch
from vectorknobs.capabilities import Capabilities
from vectorknobs.config import Option, StoreConfig
from vectorknobs.embedders import embed, resolve_embedder, source_text, stamp
from vectorknobs.errors import (
    CapabilityError,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidRecordError,
    QueryError,
    RecordNotFoundError,
    StoreClosedError,
    UnknownFieldError,
    ValidationError,
    VectorValueError,
    WriteListenerError,
)
from vectorknobs.evaluate import sort_records
from vectorknobs.fields import FieldType, SparseVectorField, VectorField, as_matrix
from vectorknobs.filters import Filter, operators_in, parse_filter
from vectorknobs.metrics import DistanceMetric
from vectorknobs.names import check_field_name, check_record_id
from vectorknobs.query import DEFAULT_VECTOR_FIELD, EmbeddingFnRef, Query, VectorMode, VectorQuery, check_k
from vectorknobs.record import Record
from vectorknobs.results import SourceTexts, VectorSearchResult, source_field_of, without_vectors

FilterLike = Query | Filter | Mapping[str, Any] | None
#: what the bulk writes take: records, or the same rows as columns
Records = Sequence[Record] | RecordBatch

#: batches of at least this many records are checked on a worker thread
_PREPARE_IN_THREAD = 256
#: record batches of at least this many sharing their fields are written as a ``RecordBatch``
_COLUMNS_FROM = 64


class WriteMode(enum.Enum):
    CREATE = "create"  # every id must be new
    UPDATE = "update"  # every id must exist; the record is replaced
    UPSERT = "upsert"


@dataclass
class Schema:
    """What a store knows of its records: top-level field names and each vector field's dimension."""

    fields: set[str] = field(default_factory=set)
    vectors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteEvent:
    """What a write listener (hook ``register_write_listeners``) is told after a batch is stored.

    ``records`` are the records as written, with their ids: read them, never change them (copy first).
    """

    store: VectorStore
    mode: WriteMode
    records: tuple[Record, ...]


class Hit(NamedTuple):
    """What ``_vector_search`` returns per match: the record and its score (higher = more similar).

    A store that leaves the vectors out of ``record`` (the query's ``include_vectors`` is False) gives the
    searched vector field's ``source_field`` here, so the result still gets its source text.
    """

    record: Record
    score: float
    source_field: str | None = None


COMMON_OPTIONS: dict[str, Option] = {
    "metric": Option(DistanceMetric.parse, DistanceMetric.COSINE, "metric used when a search names none"),
}


class VectorStore(ABC):
    """Base class of every store. Use ``await vectorknobs.connect(url)`` rather than constructing one."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    #: options the store accepts in its config string or dict (beyond ``metric``)
    options: ClassVar[Mapping[str, Option]] = {}
    #: ``vector_search_batch`` hands a store's ``_vector_search_batch`` at most this many queries at once,
    #: several such parts concurrently, and builds each part's results as soon as it comes back (a store
    #: that searches in threads overlaps its searching with the results); None: the whole batch in one call
    search_batch_size: ClassVar[int | None] = None
    #: other clients may add fields to the same data while this store is open (a server): a field this store
    #: does not know makes it read its schema again (``_load_schema``) before it writes or searches
    shared_schema: ClassVar[bool] = False

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.settings: dict[str, Any] = config.resolve({**COMMON_OPTIONS, **self.options})
        self.metric: DistanceMetric = self.settings["metric"]
        if self.metric not in self.capabilities.metrics:
            raise CapabilityError(f"{config.scheme}:// does not support metric {self.metric.value!r}")
        self.schema = Schema()
        self._schema_lock = asyncio.Lock()
        self._is_open = False
        self._is_closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> Self:
        await self._open()
        try:
            self.schema = await self._load_schema()
        except BaseException:
            await self._close()  # what _open took (connections, locks) is released
            raise
        self._is_open = True
        return self

    async def close(self) -> None:
        """Release connections, files and locks. Safe to call twice."""
        if self._is_open and not self._is_closed:
            self._is_closed = True
            await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.redacted()}>"

    # -- records --------------------------------------------------------------------------------
    async def create(self, record: Record) -> str:
        """Store a new record; an id is generated when it has none. Raises ``DuplicateIdError``."""
        return (await self.bulk_create([record]))[0]

    async def bulk_create(self, records: Records) -> list[str]:
        """Create all records or none of them. ``records`` may be a ``RecordBatch`` (columns and vector
        matrices, checked once when built): the fastest way to write many rows."""
        return await self._apply(records, WriteMode.CREATE)

    async def update(self, record: Record) -> None:
        """Replace the stored record with this one. Raises ``RecordNotFoundError``."""
        await self.bulk_update([record])

    async def bulk_update(self, records: Records) -> None:
        """Replace all records or none of them."""
        await self._apply(records, WriteMode.UPDATE)

    async def upsert(self, record: Record) -> str:
        return (await self.bulk_upsert([record]))[0]

    async def bulk_upsert(self, records: Records) -> list[str]:
        return await self._apply(records, WriteMode.UPSERT)

    async def read(self, record_id: str) -> Record | None:
        return (await self.bulk_read([record_id]))[0]

    async def bulk_read(self, ids: Sequence[str]) -> list[Record | None]:
        """Records in the order of ``ids``; None where an id is not stored."""
        self._check_open()
        checked = [check_record_id(i) for i in _as_list(ids, "ids")]
        return await self._read(checked) if checked else []

    async def exists(self, record_id: str) -> bool:
        return (await self.read(record_id)) is not None

    async def delete(self, record_id: str) -> bool:
        """Delete one record; False if it was not stored."""
        return await self.bulk_delete([record_id]) == 1

    async def bulk_delete(self, ids: Sequence[str]) -> int:
        """Delete records by id; returns how many existed."""
        self._check_open()
        checked = list(dict.fromkeys(check_record_id(i) for i in _as_list(ids, "ids")))
        return await self._delete(checked) if checked else 0

    # -- queries --------------------------------------------------------------------------------
    @overload
    async def search(self, query: VectorQuery) -> list[VectorSearchResult]: ...  # type: ignore[overload-overlap]
    @overload
    async def search(self, query: Query | None = None) -> list[Record]: ...
    @overload
    async def search(self, query: Mapping[str, Any]) -> list[Record] | list[VectorSearchResult]: ...

    async def search(
        self, query: Query | Mapping[str, Any] | None = None
    ) -> list[Record] | list[VectorSearchResult]:
        """Records matching ``query``; a ``VectorQuery`` returns ranked ``VectorSearchResult``s."""
        self._check_open()
        q = _as_query(query)
        if isinstance(q, VectorQuery):
            return await self._run_vector_query(q)
        await self._know_fields_of(q)
        self._check_query(q)
        return await self._search(q)

    async def count(self, query: FilterLike = None) -> int:
        """How many records match (sort and paging are ignored)."""
        self._check_open()
        where = _as_filter(query)
        self._check_filter(where)
        return await self._count(where)

    async def stream(self, query: FilterLike = None, batch_size: int = 1000) -> AsyncIterator[list[Record]]:
        """Matching records in batches, in id order, without loading them all."""
        async for batch in self._stream(self._stream_filter(query, batch_size), batch_size):
            yield batch

    async def stream_batches(
        self, query: FilterLike = None, batch_size: int = 1000,
    ) -> AsyncIterator[RecordBatch | list[Record]]:
        """``stream``, but a page whose rows share their fields (``RecordBatch.from_records``) comes as one
        ``RecordBatch``: the fastest way to copy records to another store (``bulk_create`` takes either)."""
        async for page in self._stream_pages(self._stream_filter(query, batch_size), batch_size):
            yield page

    def _stream_filter(self, query: FilterLike, batch_size: int) -> Filter | None:
        self._check_open()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise QueryError(f"batch_size must be a positive int, got {batch_size!r}")
        where = _as_filter(query)
        self._check_filter(where)
        return where

    # -- vectors --------------------------------------------------------------------------------
    async def vector_search(
        self,
        query_vector: npt.ArrayLike,
        vector_field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        metric: DistanceMetric | str | None = None,
        filter: FilterLike = None,  # noqa: A002 - the design's name
        include_source: bool = True,
        include_vectors: bool = True,
    ) -> list[VectorSearchResult]:
        """The k records nearest ``query_vector`` among those matching ``filter``. ``include_vectors=False``
        leaves the vector fields out of the results' records (less for the store to read and decode)."""
        base = Query(where=_as_filter(filter))
        return await self.search(base.similar_to(query_vector, vector_field, k, metric, include_source,
                                                 include_vectors))

    async def vector_search_batch(
        self,
        query_vectors: npt.ArrayLike,
        vector_field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        metric: DistanceMetric | str | None = None,
        filter: FilterLike = None,  # noqa: A002 - the design's name
        include_source: bool = True,
        include_vectors: bool = True,
    ) -> list[list[VectorSearchResult]]:
        """One ``vector_search`` per row of ``query_vectors`` (an ``n x d`` matrix), answered together:
        the same results as n single searches, in fewer round trips where the store has a batch API."""
        self._check_open()
        matrix = as_matrix(query_vectors, "query vectors")
        if not len(matrix):
            return []
        if isinstance(query_vectors, np.ndarray) and np.may_share_memory(matrix, query_vectors):
            matrix = matrix.copy()  # the queries keep views of its rows: the caller's array must not change them
        base = Query(where=_as_filter(filter))
        queries = base.similar_to(matrix[0], vector_field, k, metric, include_source, include_vectors).for_rows(matrix)
        query, chosen = await self._vector_plan(queries[0])
        self._check_query_dimensions(query, matrix.shape[1])
        _check_cosine_queries(matrix, chosen)

        async def answer(part: list[VectorQuery]) -> list[list[VectorSearchResult]]:
            found = await self._vector_search_batch(part, chosen)
            return [self._vector_results(q, hits, chosen) for q, hits in zip(part, found, strict=True)]

        size = self.search_batch_size or len(queries)
        if size >= len(queries):
            return await answer(queries)
        parts = await asyncio.gather(*(answer(queries[i:i + size]) for i in range(0, len(queries), size)))
        return [results for part in parts for results in part]

    async def hybrid_search(
        self,
        text: str,
        vector: npt.ArrayLike | None = None,
        alpha: float = 0.5,
        vector_field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        filter: FilterLike = None,  # noqa: A002
        text_fields: Sequence[str] = (),
        embedding_fn: EmbeddingFnRef | None = None,
        include_vectors: bool = True,
    ) -> list[VectorSearchResult]:
        """Blend vector similarity (``alpha``) with keyword match on ``text`` (``1 - alpha``)."""
        base = Query(where=_as_filter(filter))
        query = base.hybrid(text, vector, alpha, vector_field, k, text_fields, embedding_fn,
                            include_vectors=include_vectors)
        return await self.search(query)

    async def bulk_embed_and_store(
        self,
        records: Sequence[Record],
        text_field: str,
        vector_field: str = DEFAULT_VECTOR_FIELD,
        embedding_fn: EmbeddingFnRef | None = None,
        batch_size: int = 100,
    ) -> list[str]:
        """Embed each record's ``text_field`` into ``vector_field`` and upsert, ``batch_size`` at a time."""
        self._check_open()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive int, got {batch_size!r}")
        fn = resolve_embedder(embedding_fn)
        items = _as_list(records, "records")
        ids: list[str] = []
        for start in range(0, len(items), batch_size):
            chunk = _records(items[start:start + batch_size])
            batch = [r.copy() if r.id else r.with_id(Record.new_id()) for r in chunk]
            texts = [source_text(r, [text_field]) for r in batch]
            vectors = await embed(fn, texts)
            for r, text, vector in zip(batch, texts, vectors, strict=True):
                r[vector_field] = stamp(vector, [text_field], text, fn)
            ids.extend(await self.bulk_upsert(batch))
        return ids

    async def has_vector_support(self) -> bool:
        """Can this store hold vectors right now (extension installed, index available...)?"""
        return True

    async def enable_vector_support(self) -> bool:
        """Make vectors storable (e.g. create a database extension); True when they are."""
        return True

    async def detect_vector_fields(self, record: Record) -> list[str]:
        return [name for name, f in record.fields.items() if f.type is FieldType.VECTOR]

    def vector_dimensions(self) -> dict[str, int]:
        """Known vector fields and their dimensions."""
        return dict(self.schema.vectors)

    async def drop(self) -> None:
        """Delete every record and the collection itself (files, table or index)."""
        self._check_open()
        await self._drop()
        self.schema = Schema()

    # -- primitives a plugin implements ------------------------------------------------------------
    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Connect, open files, take locks."""

    async def _close(self) -> None:  # noqa: B027
        """Release what ``_open`` took."""

    @abstractmethod
    async def _load_schema(self) -> Schema:
        """Field names and vector dimensions of what is stored: at open and, for a store with
        ``shared_schema``, again whenever it is about to write a field it does not know or a query names one
        (another client of the same data may have added it since)."""

    @abstractmethod
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        """Apply the batch atomically. Raise ``duplicate_ids`` / ``missing_ids`` errors per ``mode``."""

    @abstractmethod
    async def _read(self, ids: list[str]) -> list[Record | None]: ...

    @abstractmethod
    async def _delete(self, ids: list[str]) -> int: ...

    @abstractmethod
    async def _search(self, query: Query) -> list[Record]:
        """Filter, sort (per ``evaluate.sort_records`` semantics) and page."""

    @abstractmethod
    async def _count(self, where: Filter | None) -> int: ...

    @abstractmethod
    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        """The ``query.vector.k`` best hits among records matching ``query.where`` that have the field,
        best first (ties by id). ``query.vector.vector`` is set and checked."""

    async def _write_batch(self, batch: RecordBatch, mode: WriteMode) -> None:
        """``_write`` of a ``RecordBatch`` (ids set, columns checked against the schema). The default writes
        ``batch.records()``; a store that can take columns and matrices as they are does better."""
        await self._write(batch.records(), mode)

    async def _vector_search_batch(self, queries: list[VectorQuery], metric: DistanceMetric) -> list[list[Hit]]:
        """``_vector_search`` of each query (they differ only in their vectors, already checked). The default
        runs them concurrently; a store with a batch API answers them in one call."""
        return list(await asyncio.gather(*(self._vector_search(q, metric) for q in queries)))

    async def _hybrid_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        raise CapabilityError(f"{self.config.scheme}:// has no hybrid search")

    async def _stream_pages(self, where: Filter | None, batch_size: int) -> AsyncIterator[RecordBatch | list[Record]]:
        """Pages of ``_stream``, each a ``RecordBatch`` when its rows allow; a store that can read a page as
        columns (``RecordBatch.restore``) does better than this default, which converts the records."""
        async for page in self._stream(where, batch_size):
            yield _as_batch(page) if len(page) < _PREPARE_IN_THREAD else await asyncio.to_thread(_as_batch, page)

    async def _stream(self, where: Filter | None, batch_size: int) -> AsyncIterator[list[Record]]:
        """Default: pages of ``_search`` in id order; stores with cursors do better."""
        offset = 0
        while True:
            page = await self._search(Query(where=where, order=(), max_results=batch_size, skip=offset))
            if not page:
                return
            yield page
            offset += len(page)

    @abstractmethod
    async def _drop(self) -> None: ...

    # -- helpers for plugins ------------------------------------------------------------------------
    @staticmethod
    def duplicate_ids(ids: Sequence[str]) -> DuplicateIdError:
        return DuplicateIdError(
            f"record id(s) already stored: {', '.join(map(repr, ids[:5]))}"
            f"{' ...' if len(ids) > 5 else ''}; use upsert or update to replace them. Nothing was written."
        )

    @staticmethod
    def missing_ids(ids: Sequence[str]) -> RecordNotFoundError:
        return RecordNotFoundError(
            f"record id(s) not stored: {', '.join(map(repr, ids[:5]))}"
            f"{' ...' if len(ids) > 5 else ''}; use create or upsert. Nothing was written."
        )

    # -- shared checking ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._is_closed:
            raise StoreClosedError(f"{self!r} is closed; connect again")
        if not self._is_open:
            raise StoreClosedError(f"{self!r} is not open; use 'await vectorknobs.connect(...)'")

    async def _apply(self, records: Records, mode: WriteMode) -> list[str]:
        self._check_open()
        rows = records if isinstance(records, RecordBatch) else _records(_as_list(records, "records"))
        if not len(rows):
            return []
        written = await self._prepare_off_loop(rows, mode)
        if any(name not in self.schema.fields for name in _names(written)):
            # A first write of a field fixes its kind and dimension: check and write such batches one at a
            # time, or concurrent batches could store 3- and 4-dimensional vectors in one field.
            async with self._schema_lock:
                await self._reload_schema()  # another client may have written these fields first
                written = await self._prepare_off_loop(written, mode)
                await self._store(written, mode)
        else:
            await self._store(written, mode)
        if isinstance(written, RecordBatch):
            batch = written
            await _notify_listeners(self, mode, lambda: tuple(batch.records()))
            assert batch.ids is not None
            return list(batch.ids)
        await _notify_listeners(self, mode, lambda: tuple(written))
        return [r.key for r in written]

    async def _store(self, written: list[Record] | RecordBatch, mode: WriteMode) -> None:
        if isinstance(written, RecordBatch):
            await self._write_batch(written, mode)
            self._learn_batch(written)
        else:
            await self._write(written, mode)
            self._learn(written)

    async def _prepare_off_loop(self, rows: list[Record] | RecordBatch, mode: WriteMode) -> list[Record] | RecordBatch:
        """``_prepare``, on a worker thread for big batches (checking and copying 10,000 records takes
        about 0.1 s), against a copy of the schema taken here, on the loop."""
        dims = dict(self.schema.vectors)
        scalars = set(self.schema.fields) - set(dims)
        if len(rows) < _PREPARE_IN_THREAD:
            return self._prepare(rows, mode, dims, scalars)
        return await asyncio.to_thread(self._prepare, rows, mode, dims, scalars)

    def _prepare(
        self, rows: list[Record] | RecordBatch, mode: WriteMode, dims: dict[str, int], scalars: set[str],
    ) -> list[Record] | RecordBatch:
        """The rows to write, checked against the schema and with ids: many records that share their fields
        become one ``RecordBatch`` (no copy per record, and the store's column writes); others are copied."""
        by_record = False
        if isinstance(rows, list) and len(rows) >= _COLUMNS_FROM:
            converted = RecordBatch.from_records(rows)
            if converted is not None:
                rows, by_record = converted, True
        if isinstance(rows, RecordBatch):
            if rows.ids is None:
                if mode is WriteMode.UPDATE:
                    raise InvalidRecordError("update needs records with an id (RecordBatch: ids=...)")
                rows = rows.with_ids([Record.new_id() for _ in range(len(rows))])
            self._check_batch(rows, dims, scalars, by_record)
            return rows
        return self._prepare_records(rows, mode, dims, scalars)

    def _prepare_records(
        self, records: list[Record], mode: WriteMode, dims: dict[str, int], scalars: set[str],
    ) -> list[Record]:
        prepared: list[Record] = []
        seen: set[str] = set()
        for record in records:
            if record.id is None and mode is WriteMode.UPDATE:
                raise InvalidRecordError("update needs records with an id")
            # ``id`` and ``fields`` can be set directly, past Record's checks: check both here
            copy = record.copy()
            copy.id = check_record_id(record.id) if record.id is not None else Record.new_id()
            if copy.id in seen:
                raise InvalidRecordError(f"record id {copy.id!r} appears twice in one batch")
            seen.add(copy.id)
            for name, f in copy.fields.items():
                check_field_name(name)  # Record checks names, but its ``fields`` dict can be filled directly
                if isinstance(f, SparseVectorField) and not self.capabilities.sparse_vectors:
                    raise CapabilityError(f"{self.config.scheme}:// cannot store sparse vectors (field {name!r})")
                dimensions = f.dimensions if isinstance(f, VectorField) else None
                self._check_kind(f"record {copy.id!r}", name, dimensions, f.type.value, dims, scalars)
            prepared.append(copy)
        return prepared

    def _check_batch(self, batch: RecordBatch, dims: dict[str, int], scalars: set[str], by_record: bool) -> None:
        """``_prepare`` for a ``RecordBatch``, whose values were checked when it was built: column by column
        (errors name the first record when the batch was made of records)."""
        assert batch.ids is not None
        first = f"record {batch.ids[0]!r}"
        for name in batch.columns:
            self._check_kind(first if by_record else f"column {name!r}", name, None, "plain values", dims, scalars)
        for name, column in batch.vectors.items():
            self._check_kind(first if by_record else f"column {name!r}", name, column.dimensions, "vectors", dims,
                             scalars)

    def _check_kind(
        self, where: str, name: str, dimensions: int | None, kind: str, dims: dict[str, int], scalars: set[str],
    ) -> None:
        """Check that field ``name`` (a vector field when ``dimensions`` is set, else holding ``kind``) fits
        this store and the fields it already holds (``dims``, ``scalars``, updated here)."""
        if dimensions is None:
            if name in dims:
                raise InvalidRecordError(f"{where}: field {name!r} is a vector field in this store, got {kind}")
            scalars.add(name)
            return
        if dimensions > self.capabilities.max_dimensions:
            raise DimensionMismatchError(
                f"{where}: {dimensions} dimensions exceed this store's limit of {self.capabilities.max_dimensions}"
            )
        expected = dims.setdefault(name, dimensions)
        if dimensions != expected:
            raise DimensionMismatchError(
                f"{where}: vector field {name!r} has {dimensions} dimensions, but this store "
                f"holds {expected}-dimensional vectors in it; re-embed or use another field name"
            )
        if name in scalars:
            raise InvalidRecordError(f"{where}: field {name!r} holds non-vector values in this store")

    def _learn(self, records: list[Record]) -> None:
        for record in records:
            self.schema.fields.update(record.fields)
            for name, f in record.vector_fields().items():
                self.schema.vectors.setdefault(name, f.dimensions)

    def _learn_batch(self, batch: RecordBatch) -> None:
        self.schema.fields.update(batch.names())
        for name, column in batch.vectors.items():
            self.schema.vectors.setdefault(name, column.dimensions)

    def _check_filter(self, where: Filter | None) -> None:
        if where is None:
            return
        unsupported = operators_in(where) - self.capabilities.filter_operators
        if unsupported:
            raise CapabilityError(
                f"{self.config.scheme}:// cannot filter with {', '.join(sorted(o.value for o in unsupported))}"
            )

    async def _reload_schema(self) -> None:
        if self.shared_schema:
            self.schema = await self._load_schema()

    async def _know_fields_of(self, query: Query) -> None:
        """Read the schema again if ``query`` sorts by or searches a field this store does not know."""
        if not self.shared_schema:
            return
        heads = {key.path.split(".")[0] for key in query.order} - {"id"}
        if not heads <= self.schema.fields or (
                isinstance(query, VectorQuery) and query.vector.field not in self.schema.vectors):
            await self._reload_schema()

    def _check_query(self, query: Query) -> None:
        self._check_filter(query.where)
        for key in query.order:
            head = key.path.split(".")[0]
            if head in self.schema.vectors:
                raise QueryError(f"cannot sort by vector field {head!r}")
            if head != "id" and head not in self.schema.fields:
                known = ", ".join(sorted(self.schema.fields)) or "none yet"
                raise UnknownFieldError(f"cannot sort by unknown field {key.path!r}; known fields: {known}")

    async def _run_vector_query(self, query: VectorQuery) -> list[VectorSearchResult]:
        query, metric = await self._vector_plan(query)
        part = query.vector
        assert part.vector is not None
        self._check_query_dimensions(query, part.vector.shape[0])
        _check_cosine_queries(part.vector, metric)
        if part.mode is VectorMode.HYBRID:
            hits = await self._hybrid_search(query, metric)
        else:
            hits = await self._vector_search(query, metric)
        return self._vector_results(query, hits, metric)

    async def _vector_plan(self, query: VectorQuery) -> tuple[VectorQuery, DistanceMetric]:
        """Check a vector query against this store; embed its text if it has no vector yet."""
        await self._know_fields_of(query)
        self._check_query(query)
        part = query.vector
        metric = part.metric or self.metric
        caps = self.capabilities
        if metric not in caps.metrics or (not caps.per_query_metric and metric is not self.metric):
            raise CapabilityError(
                f"{self.config.scheme}:// searches this collection with {self.metric.value} only, "
                f"not {metric.value}; open it with ?metric={metric.value} or search without a metric"
            )
        if part.k > caps.max_k:
            raise QueryError(f"k={part.k} is above this store's maximum of {caps.max_k}")
        check_k(part.k)
        if part.mode is VectorMode.HYBRID and not caps.hybrid_search:
            raise CapabilityError(f"{self.config.scheme}:// has no hybrid search; use similar_to or near_text")
        if part.field not in self.schema.vectors:
            known = ", ".join(sorted(self.schema.vectors)) or "none yet"
            raise UnknownFieldError(f"no vector field {part.field!r} in this store; vector fields: {known}")
        if part.vector is None:
            assert part.text is not None
            if part.embedding_fn is None:
                raise QueryError(f"{part.mode.value} needs an embedding_fn (a registered name or a callable)")
            query = query.with_vector((await embed(resolve_embedder(part.embedding_fn), [part.text]))[0])
        return query, metric

    def _check_query_dimensions(self, query: VectorQuery, dimensions: int) -> None:
        expected = self.schema.vectors[query.vector.field]
        if dimensions != expected:
            raise DimensionMismatchError(
                f"query vector has {dimensions} dimensions; field {query.vector.field!r} holds {expected}"
            )

    def _vector_results(self, query: VectorQuery, hits: list[Hit], metric: DistanceMetric) -> list[VectorSearchResult]:
        """The store's hits as results: score threshold, sort and offset applied, distances and source text."""
        part = query.vector
        if query.min_score is not None:
            hits = [h for h in hits if h.score >= query.min_score]
        if query.order:
            by_id = {h.record.id: h for h in hits}
            keys = [(k.path, k.descending) for k in query.order]
            hits = [by_id[r.id] for r in sort_records([h.record for h in hits], keys)]
        hits = hits[query.skip:]
        field = part.field
        distance_of: Callable[[float], float] = (
            _hybrid_distance if part.mode is VectorMode.HYBRID else metric.score_to_distance)
        texts = SourceTexts() if part.include_source else None
        keep_vectors = part.include_vectors
        mode = {"metric": metric.value, "mode": part.mode.value}
        results = []
        for record, score, source_field in hits:
            text = None
            if texts is not None:
                text = texts(record, source_field_of(record, field) if source_field is None else source_field)
            found = record if keep_vectors or field not in record.fields else without_vectors(record)  # left in
            results.append(VectorSearchResult(found, score, distance_of(score), text, field, mode.copy()))
        return results


def _hybrid_distance(score: float) -> float:
    return 1.0 - score


async def _notify_listeners(store: VectorStore, mode: WriteMode, written: Callable[[], tuple[Record, ...]]) -> None:
    """Run every write listener on the records ``written()`` gives (asked for only if there are listeners);
    all of them run even if one fails, then the first failure is raised."""
    from vectorknobs.plugins import get_registry

    listeners = get_registry().write_listeners()
    if not listeners:
        return
    event = WriteEvent(store, mode, written())
    failures: list[tuple[str, Exception]] = []
    for plugin, listener in listeners:
        try:
            outcome = listener(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as err:  # noqa: BLE001 - reported below, with the plugin named
            failures.append((plugin, err))
    if failures:
        plugin, first = failures[0]
        others = f" ({len(failures) - 1} more listener(s) failed too)" if len(failures) > 1 else ""
        raise WriteListenerError(
            f"the {event.mode.value} of {len(event.records)} record(s) was stored, but write listener of plugin "
            f"{plugin!r} failed afterwards{others}: {type(first).__name__}: {first}"
        ) from first


def _check_cosine_queries(vectors: npt.NDArray[np.float32], metric: DistanceMetric) -> None:
    """A zero query vector (one, or a row of a matrix) has no cosine similarity."""
    if metric is DistanceMetric.COSINE and not vectors.any(axis=-1).all():
        raise VectorValueError("a zero query vector has no cosine similarity; use another metric")


def _as_batch(records: list[Record]) -> RecordBatch | list[Record]:
    return RecordBatch.from_records(records) or records


def _names(rows: list[Record] | RecordBatch) -> Iterator[str]:
    if isinstance(rows, RecordBatch):
        yield from rows.names()
    else:
        for record in rows:
            yield from record.fields


def _as_list(items: Any, what: str) -> list[Any]:
    if isinstance(items, (str, bytes, Mapping, Record)) or not hasattr(items, "__iter__"):
        raise ValidationError(f"{what} must be a list, got {type(items).__name__}")
    return list(items)


def _records(items: list[Any]) -> list[Record]:
    for item in items:
        if not isinstance(item, Record):
            raise InvalidRecordError(f"expected Record objects, got {type(item).__name__}; wrap data in Record(...)")
    return items


def _as_query(query: Query | Mapping[str, Any] | None) -> Query:
    if query is None:
        return Query()
    if isinstance(query, Query):
        return query
    if isinstance(query, Mapping):
        return Query.from_dict(query)
    raise QueryError(f"expected a Query or its dict form, got {type(query).__name__}")


def _as_filter(query: FilterLike) -> Filter | None:
    if query is None:
        return None
    if isinstance(query, Query):
        return query.where
    return parse_filter(query)

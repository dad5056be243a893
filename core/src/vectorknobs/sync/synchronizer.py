"""``VectorTextSynchronizer``: a store's vectors kept in step with the text they are made from."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vectorknobs.embedders import content_hash, describe, embed, resolve_embedder, source_text, stamp
from vectorknobs.errors import RecordNotFoundError, SourceTextError, ValidationError
from vectorknobs.fields import VectorField
from vectorknobs.query import DEFAULT_VECTOR_FIELD, EmbeddingFnRef
from vectorknobs.record import Record
from vectorknobs.store import FilterLike, VectorStore, WriteMode, _as_filter
from vectorknobs.sync._flow import Clock, Failure, Progress, check_batch_size, run_pipeline

_STREAM_PAGE = 1000  # records read per page while looking for outdated ones
_WRITE_BACK_TRIES = 3


@dataclass
class SyncResult:
    """What a sync did: of the ``examined`` records, ``embedded`` got a new vector, ``current`` had one, and
    ``changed_meanwhile`` were changed (or deleted) by another write while being embedded: that write's own
    sync handles them."""

    examined: int = 0
    embedded: int = 0  #: records given a new vector
    current: int = 0  #: records whose vector was already up to date (not embedded again)
    changed_meanwhile: list[str] = field(default_factory=list)  #: ids
    failures: list[Failure] = field(default_factory=list)
    embed_seconds: float = 0.0  #: time spent inside the embedding function
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_ids(self) -> list[str]:
        return [i for f in self.failures for i in f.ids]

    def add(self, other: SyncResult) -> None:
        self.examined += other.examined
        self.embedded += other.embedded
        self.current += other.current
        self.changed_meanwhile.extend(other.changed_meanwhile)
        self.failures.extend(other.failures)
        self.embed_seconds += other.embed_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "examined": self.examined, "embedded": self.embedded, "current": self.current,
            "changed_meanwhile": self.changed_meanwhile, "failures": [f.to_dict() for f in self.failures],
            "embed_seconds": round(self.embed_seconds, 6), "elapsed": round(self.elapsed, 6),
        }


class VectorTextSynchronizer:
    """Keeps ``vector_field`` of ``store``'s records made, by ``embedding_fn``, from their ``text_fields``.

    A vector records its source fields, the model's name and version and a hash of the text it was made
    from, so text that did not change is never embedded again::

        sync = VectorTextSynchronizer(store, "hash", text_fields=["title", "body"])
        await sync.create(Record({"title": "Hi", "body": "..."}))   # embedded, then stored
        result = await sync.bulk_sync()                             # every outdated record, streamed
    """

    def __init__(
        self,
        store: VectorStore,
        embedding_fn: EmbeddingFnRef | None,
        text_fields: str | Sequence[str] = ("text",),
        vector_field: str = DEFAULT_VECTOR_FIELD,
        *,
        batch_size: int = 100,
        track_model_version: bool = True,
    ) -> None:
        self.store = store
        self.embedding_fn: Callable[..., Any] = resolve_embedder(embedding_fn)
        fields = (text_fields,) if isinstance(text_fields, str) else tuple(text_fields)
        if not fields or not all(isinstance(f, str) and f for f in fields):
            raise ValidationError(f"text_fields must name one or more fields, got {text_fields!r}")
        self.text_fields: tuple[str, ...] = fields
        self.vector_field = vector_field
        self.batch_size = check_batch_size(batch_size)
        self.track_model_version = track_model_version

    def __repr__(self) -> str:
        return (f"VectorTextSynchronizer({self.store!r}, {describe(self.embedding_fn)[0]!r}, "
                f"text_fields={list(self.text_fields)}, vector_field={self.vector_field!r})")

    # -- checking ---------------------------------------------------------------------------------
    def is_current(self, record: Record) -> bool:
        """Does ``record`` hold a vector made from its present text, fields and (if tracked) model?"""
        vector = record.fields.get(self.vector_field)
        if not isinstance(vector, VectorField) or vector.source_fields != self.text_fields:
            return False
        name, version, dimensions = describe(self.embedding_fn)
        if self.track_model_version and (vector.model_name != name or vector.model_version != version):
            return False
        if dimensions is not None and vector.dimensions != dimensions:
            return False
        try:
            return vector.content_hash == content_hash(source_text(record, self.text_fields))
        except SourceTextError:
            return False

    def has_text(self, record: Record) -> bool:
        """Does ``record`` hold any of the text fields (present and not None)?"""
        return any(record.get_value(name) is not None for name in self.text_fields)

    # -- embedding without writing ----------------------------------------------------------------
    async def sync_record(self, record: Record) -> Record:
        """A copy of ``record`` with a current vector (embedded only if it is outdated); nothing is written."""
        return (await self.sync_records([record]))[0]

    async def sync_records(self, records: Sequence[Record]) -> list[Record]:
        """``sync_record`` for many, embedding the outdated ones ``batch_size`` at a time.

        ``SourceTextError`` if a record's source field is missing or not text (nothing is embedded then).
        """
        copies = [r.copy() for r in records]
        todo = [(r, source_text(r, self.text_fields)) for r in copies if not self.is_current(r)]
        for start in range(0, len(todo), self.batch_size):
            await self._embed_into(todo[start:start + self.batch_size])
        return copies

    async def _embed_into(self, todo: list[tuple[Record, str]]) -> float:
        """Embed the texts of ``todo`` in one call and set each record's vector; returns the seconds it took."""
        if not todo:
            return 0.0
        started = time.perf_counter()
        vectors = await embed(self.embedding_fn, [text for _, text in todo])
        took = time.perf_counter() - started
        for (record, text), vector in zip(todo, vectors, strict=True):
            record[self.vector_field] = stamp(vector, self.text_fields, text, self.embedding_fn)
        return took

    # -- writing through the synchronizer ---------------------------------------------------------
    async def create(self, record: Record) -> str:
        """Embed ``record``'s text, then store it (``store.create``)."""
        return (await self.bulk_create([record]))[0]

    async def bulk_create(self, records: Sequence[Record]) -> list[str]:
        return await self._write(records, WriteMode.CREATE)

    async def update(self, record: Record) -> None:
        """Store ``record``, re-embedding it first if its text changed (``store.update``)."""
        await self.bulk_update([record])

    async def bulk_update(self, records: Sequence[Record]) -> None:
        await self._write(records, WriteMode.UPDATE)

    async def upsert(self, record: Record) -> str:
        return (await self.bulk_upsert([record]))[0]

    async def bulk_upsert(self, records: Sequence[Record]) -> list[str]:
        return await self._write(records, WriteMode.UPSERT)

    async def _write(self, records: Sequence[Record], mode: WriteMode) -> list[str]:
        synced = await self.sync_records(records)
        if mode is WriteMode.CREATE:
            return await self.store.bulk_create(synced)
        if mode is WriteMode.UPDATE:
            await self.store.bulk_update(synced)
            return [r.key for r in synced]
        return await self.store.bulk_upsert(synced)

    # -- bringing stored records up to date ---------------------------------------------------------
    async def outdated(self, query: FilterLike = None, batch_size: int = _STREAM_PAGE) -> AsyncIterator[list[Record]]:
        """Stored records matching ``query`` whose vector is missing or stale, in batches (streamed)."""
        async for page in self.store.stream(query, batch_size):
            stale = [r for r in page if not self.is_current(r)]
            if stale:
                yield stale

    async def bulk_sync(self, query: FilterLike = None, *, force: bool = False,
                        progress_callback: Progress | None = None) -> SyncResult:
        """Bring every record matching ``query`` up to date (``force``: re-embed all of them).

        Streams the store with flat memory; reading, embedding and writing overlap. A record whose source
        field is missing or not text is reported in ``result.failures`` and the rest go on; a failing
        embedder or store raises (what was written stays written: running it again resumes).
        """
        clock = Clock()
        where = _as_filter(query)
        total = await self.store.count(where)
        result = SyncResult()

        async def batches() -> AsyncIterator[list[Record]]:
            pending: list[Record] = []
            async for page in self.store.stream(where, max(self.batch_size, _STREAM_PAGE)):
                result.examined += len(page)
                for record in page:
                    if not force and self.is_current(record):
                        result.current += 1
                    else:
                        pending.append(record)
                while len(pending) >= self.batch_size:
                    yield pending[:self.batch_size]
                    pending = pending[self.batch_size:]
                if progress_callback is not None and not pending:
                    progress_callback(result.examined, total)
            if pending:
                yield pending

        async def write_batch(item: tuple[list[tuple[Record, str]], SyncResult]) -> None:
            todo, part = item
            part.add(await self._write_back(todo, force))
            result.add(part)
            if progress_callback is not None:
                progress_callback(result.examined, total)

        await run_pipeline(batches(), [self._embed_batch, write_batch])
        result.elapsed = clock.elapsed()
        return result

    async def refresh(self, records: Sequence[Record]) -> SyncResult:
        """Re-embed those of ``records`` (as stored) that are outdated and write them back."""
        result = SyncResult(examined=len(records))
        stale = [r for r in records if not self.is_current(r)]
        result.current = len(records) - len(stale)
        for start in range(0, len(stale), self.batch_size):
            todo, part = await self._embed_batch(stale[start:start + self.batch_size])
            part.add(await self._write_back(todo))
            result.add(part)
        return result

    async def _embed_batch(self, batch: list[Record]) -> tuple[list[tuple[Record, str]], SyncResult]:
        part = SyncResult()
        todo: list[tuple[Record, str]] = []
        for record in batch:
            try:
                todo.append((record.copy(), source_text(record, self.text_fields)))
            except SourceTextError as err:
                part.failures.append(Failure.of([record.key], err))
        part.embed_seconds = await self._embed_into(todo)
        return todo, part

    async def _write_back(self, todo: list[tuple[Record, str]], force: bool = False) -> SyncResult:
        """Store the new vectors on the records as they are *now*, skipping any whose text changed meanwhile.

        Re-reading first keeps other fields written meanwhile, and never stores a vector of text that is
        no longer there (that write's own sync or tracker event re-embeds it).
        """
        part = SyncResult()
        if not todo:
            return part
        made = {record.key: (record.fields[self.vector_field], content_hash(text)) for record, text in todo}
        for attempt in range(_WRITE_BACK_TRIES):
            fresh = await self.store.bulk_read(list(made))
            updates = []
            for record_id, now in zip(list(made), fresh, strict=True):
                vector, text_hash = made[record_id]
                if now is None or _hash_of(now, self.text_fields) != text_hash:
                    del made[record_id]
                    part.changed_meanwhile.append(record_id)
                elif not force and self.is_current(now):
                    del made[record_id]
                    part.current += 1  # someone else stored this very vector meanwhile
                else:
                    now.fields[self.vector_field] = vector
                    updates.append(now)
            try:
                await self.store.bulk_update(updates)
            except RecordNotFoundError:
                if attempt + 1 == _WRITE_BACK_TRIES:
                    raise
                continue  # deleted between our read and write: read again, without it
            part.embedded += len(updates)
            return part
        return part  # pragma: no cover - the loop returns or raises


def _hash_of(record: Record, text_fields: tuple[str, ...]) -> str | None:
    try:
        return content_hash(source_text(record, text_fields))
    except SourceTextError:
        return None

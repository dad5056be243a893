"""``VectorMigration``: add vectors to existing records, or copy records and vectors between stores.

Both stream the source in id order, in batches, with reading, embedding and writing overlapped and
memory flat. With a ``checkpoint`` file, the id of the last batch the target has stored is saved as it
goes (atomically), so a run stopped by Ctrl-C, a crash or ``kill -9`` resumes where it was when called
again: a batch that may or may not have been stored is written again, by id, so nothing is duplicated
and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectorknobs._fs import atomic_write
from vectorknobs.batch import RecordBatch, last_id
from vectorknobs.connect import connect
from vectorknobs.errors import (
    CapabilityError,
    CheckpointError,
    DuplicateIdError,
    MigrationError,
    RecordError,
    ValidationError,
    VectorknobsError,
)
from vectorknobs.filters import Filter, filter_to_dict
from vectorknobs.query import DEFAULT_VECTOR_FIELD, EmbeddingFnRef
from vectorknobs.record import Record
from vectorknobs.store import FilterLike, VectorStore, _as_filter
from vectorknobs.sync._flow import Clock, Failure, Progress, after_id, check_batch_size, retrying, run_pipeline
from vectorknobs.sync.synchronizer import VectorTextSynchronizer

CHECKPOINT_FORMAT = "vectorknobs-migration-checkpoint"
#: seconds between checkpoint saves, after the one made once the first page is stored (a resumed run
#: writes at most this much again)
CHECKPOINT_INTERVAL = 0.5
RETRIES = 4
BACKOFF = 0.5

StoreRef = VectorStore | str | Mapping[str, Any]


@dataclass
class MigrationResult:
    """What a migration did, over all its runs when resumed from a checkpoint."""

    total_records: int = 0  #: records matching the query in the source, when this run started
    processed_records: int = 0  #: read from the source
    written_records: int = 0  #: stored in the target
    skipped_records: int = 0  #: left alone: their vector was already current
    errors: list[Failure] = field(default_factory=list)  #: records that could not be embedded or stored
    resumed_after: str | None = None  #: this run started after this id (from the checkpoint)
    checkpoint: str | None = None
    done: bool = False
    elapsed: float = 0.0  #: seconds, this run

    @property
    def ok(self) -> bool:
        return self.done and not self.errors

    @property
    def failed_ids(self) -> list[str]:
        return [i for f in self.errors for i in f.ids]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_records": self.total_records, "processed_records": self.processed_records,
            "written_records": self.written_records, "skipped_records": self.skipped_records,
            "errors": [e.to_dict() for e in self.errors], "resumed_after": self.resumed_after,
            "checkpoint": self.checkpoint, "done": self.done, "elapsed": round(self.elapsed, 6),
        }


@dataclass
class _Batch:
    """One page of the source on its way through the pipeline."""

    records: list[Record] | RecordBatch  # a RecordBatch only when copying between stores
    last_id: str  # of the source page: where a resumed run continues
    read: int
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    todo: list[tuple[Record, str]] = field(default_factory=list)  # in place: embedded records and their text


class Checkpoint:
    """A migration's progress in a JSON file, replaced atomically; bound to one source, target and query."""

    def __init__(self, path: Path, job: dict[str, Any]) -> None:
        self.path = path
        self.job = job
        self.after: str | None = None
        self.result = MigrationResult(checkpoint=str(path))

    @classmethod
    def open(cls, path: str | Path, job: dict[str, Any]) -> Checkpoint:
        """The checkpoint at ``path`` (a new one if there is no file); ``CheckpointError`` if it is another job's."""
        checkpoint = cls(Path(path), job)
        if not checkpoint.path.exists():
            return checkpoint
        try:
            data = json.loads(checkpoint.path.read_text())
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a migration checkpoint")
            saved_job, state = data["job"], data["state"]
            after = state["after"]
            processed, written, skipped = (int(state[k]) for k in ("processed_records", "written_records",
                                                                   "skipped_records"))
            errors = [Failure(tuple(e["ids"]), e["error"], e["kind"]) for e in state["errors"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"cannot read migration checkpoint {path}: {err}; delete it to start over") \
                from None
        if saved_job != job:
            differs = sorted(k for k in {*saved_job, *job} if saved_job.get(k) != job.get(k))
            raise CheckpointError(
                f"checkpoint {path} belongs to another migration (its {', '.join(differs)} differ): "
                f"{saved_job}; use another checkpoint file, or delete it to start over"
            )
        checkpoint.after = after
        checkpoint.result = MigrationResult(processed_records=processed, written_records=written,
                                            skipped_records=skipped, errors=errors, checkpoint=str(path))
        return checkpoint

    def save(self) -> None:
        r = self.result
        state = {"after": self.after, "processed_records": r.processed_records, "written_records": r.written_records,
                 "skipped_records": r.skipped_records, "errors": [e.to_dict() for e in r.errors]}
        data = {"format": CHECKPOINT_FORMAT, "version": 1, "job": self.job, "state": state}
        atomic_write(self.path, [json.dumps(data, indent=1).encode()])

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


class VectorMigration:
    """Migrations from ``source_db`` into ``target_db`` (the source itself when None: in place)::

        result = await VectorMigration(store).add_vectors_to_existing(["title", "content"], embedding_fn="hash")
        result = await VectorMigration(laptop, production).migrate_between_stores(checkpoint="copy.json")
    """

    def __init__(self, source_db: VectorStore, target_db: VectorStore | None = None) -> None:
        self.source_db = source_db
        self.target_db = target_db or source_db

    @property
    def in_place(self) -> bool:
        return self.target_db is self.source_db

    async def add_vectors_to_existing(
        self,
        text_fields: Sequence[str],
        vector_field: str = DEFAULT_VECTOR_FIELD,
        embedding_fn: EmbeddingFnRef | None = None,
        batch_size: int = 100,
        progress_callback: Progress | None = None,
        *,
        query: FilterLike = None,
        force: bool = False,
        checkpoint: str | Path | None = None,
    ) -> MigrationResult:
        """Give every source record (matching ``query``) a vector of its ``text_fields`` in ``vector_field``.

        Records whose vector is current are skipped (``force``: re-embed them too); with another target,
        every record is copied there, with its vector. ``progress_callback(processed, total)`` after each
        batch. Records without text are listed in ``result.errors`` and the rest go on.
        """
        sync = VectorTextSynchronizer(self.target_db, embedding_fn, text_fields, vector_field,
                                      batch_size=check_batch_size(batch_size))
        job = {**self._job("add_vectors", query), "text_fields": list(sync.text_fields), "vector_field": vector_field}

        async def embed_batch(batch: _Batch) -> _Batch:
            records = batch.records
            assert isinstance(records, list)  # a transform's pages are records
            stale = records if force else [r for r in records if not sync.is_current(r)]
            batch.skipped = len(records) - len(stale)
            todo, part = await retrying(lambda: sync._embed_batch(stale), "embedding a batch", RETRIES, BACKOFF)
            batch.failures = part.failures
            if self.in_place:
                batch.records, batch.todo = [record for record, _ in todo], todo
            else:
                embedded = {record.key: record for record, _ in todo}
                failed = {i for f in part.failures for i in f.ids}
                batch.records = [embedded.get(r.key, r) for r in records if r.key not in failed]
            return batch

        async def write_in_place(batch: _Batch) -> int:
            part = await retrying(lambda: sync._write_back(batch.todo, force), "writing vectors", RETRIES, BACKOFF)
            return part.embedded

        return await self._run(job, query, batch_size, embed_batch, write_in_place if self.in_place else None,
                               checkpoint, progress_callback)

    async def migrate_between_stores(
        self,
        batch_size: int = 1000,
        progress_callback: Progress | None = None,
        *,
        query: FilterLike = None,
        checkpoint: str | Path | None = None,
    ) -> MigrationResult:
        """Copy every source record (matching ``query``), vectors and provenance included, to the target.

        Records already in the target with the same id are replaced. A record the target refuses (too
        many dimensions, a field kind it cannot hold) is listed in ``result.errors``; the rest go on.
        """
        if self.in_place:
            raise ValidationError("migrate_between_stores needs a target store other than the source")
        return await self._run(self._job("copy", query), query, batch_size, None, None, checkpoint, progress_callback)

    # -- the shared run -------------------------------------------------------------------------------
    def _job(self, kind: str, query: FilterLike) -> dict[str, Any]:
        where = _as_filter(query)
        return {"kind": kind, "source": self.source_db.config.redacted(), "target": self.target_db.config.redacted(),
                "query": filter_to_dict(where) if where is not None else None}

    async def _run(
        self,
        job: dict[str, Any],
        query: FilterLike,
        batch_size: int,
        transform: Callable[[_Batch], Awaitable[_Batch]] | None,
        write: Callable[[_Batch], Awaitable[int]] | None,
        checkpoint_path: str | Path | None,
        progress: Progress | None,
    ) -> MigrationResult:
        check_batch_size(batch_size)
        where: Filter | None = _as_filter(query)
        checkpoint = Checkpoint.open(checkpoint_path, job) if checkpoint_path is not None else None
        result = checkpoint.result if checkpoint is not None else MigrationResult()
        result.resumed_after = checkpoint.after if checkpoint is not None else None
        result.total_records = await self.source_db.count(where)
        clock, save_clock = Clock(), Clock(CHECKPOINT_INTERVAL)
        write = write or self._copy

        async def pages() -> AsyncIterator[_Batch]:
            start = after_id(where, result.resumed_after)
            if transform is not None:  # the transform reads and changes records
                async for page in self.source_db.stream(start, batch_size):
                    yield _Batch(page, page[-1].key, len(page))
                return
            async for rows in self.source_db.stream_batches(start, batch_size):  # copied as they are: columns
                yield _Batch(rows, last_id(rows), len(rows))

        saved = False

        async def store_batch(batch: _Batch) -> None:
            nonlocal saved
            written = await write(batch) if batch.records else 0
            result.processed_records += batch.read
            result.written_records += written
            result.skipped_records += batch.skipped
            result.errors.extend(batch.failures)
            if checkpoint is not None:
                checkpoint.after = batch.last_id
                if not saved or save_clock.due():  # at once after the first page, then every interval
                    saved = True
                    await asyncio.to_thread(checkpoint.save)
            if progress is not None:
                progress(result.processed_records, result.total_records)

        stages = [transform, store_batch] if transform is not None else [store_batch]
        try:
            await run_pipeline(pages(), stages)
        except BaseException as err:
            result.elapsed = clock.elapsed()
            if checkpoint is not None:
                checkpoint.save()  # blocking, but brief: it must happen even while being cancelled
            if isinstance(err, VectorknobsError) and not isinstance(err, MigrationError):
                resume = (f"; call it again with the same checkpoint to resume after {checkpoint.after!r}"
                          if checkpoint is not None else "; pass checkpoint=... to make it resumable")
                raise MigrationError(
                    f"migration stopped after {result.processed_records} of {result.total_records} records: "
                    f"{type(err).__name__}: {err}{resume}", result,
                ) from err
            raise
        result.done = True
        result.elapsed = clock.elapsed()
        if checkpoint is not None:
            checkpoint.finish()
        return result

    async def _copy(self, batch: _Batch) -> int:
        """Store ``batch`` in the target: created (fast) unless ids exist there (then replaced); a record the
        target refuses is isolated by halving the batch and reported, the others are stored."""
        target = self.target_db

        async def put(rows: list[Record] | RecordBatch) -> None:
            try:
                await target.bulk_create(rows)
            except DuplicateIdError:  # a re-run of a batch, or a target that already holds some: replace them
                await target.bulk_upsert(rows)

        async def isolate(rows: list[Record] | RecordBatch) -> int:
            try:
                await retrying(lambda: put(rows), f"writing {len(rows)} records", RETRIES, BACKOFF)
                return len(rows)
            except (ValidationError, CapabilityError, RecordError) as err:
                records = rows.records() if isinstance(rows, RecordBatch) else rows
                if len(records) == 1:
                    batch.failures.append(Failure.of([records[0].key], err))
                    return 0
                half = len(records) // 2
                return await isolate(records[:half]) + await isolate(records[half:])

        return await isolate(batch.records)


async def migrate_between_stores(
    source: StoreRef,
    target: StoreRef,
    batch_size: int = 1000,
    progress_callback: Progress | None = None,
    *,
    query: FilterLike = None,
    checkpoint: str | Path | None = None,
) -> MigrationResult:
    """Copy records and vectors from one store to another, by URL or open store; resumable with ``checkpoint``::

        await migrate_between_stores("faiss:///data/docs", "pgvector://app@db/app?table=docs", checkpoint="c.json")
    """
    async with _opened(source) as source_db, _opened(target) as target_db:
        return await VectorMigration(source_db, target_db).migrate_between_stores(
            batch_size, progress_callback, query=query, checkpoint=checkpoint)


class _opened:
    """``async with _opened(ref) as store``: connects a URL or dict (and closes it); passes an open store through."""

    def __init__(self, ref: StoreRef) -> None:
        self.ref = ref
        self.store: VectorStore | None = None

    async def __aenter__(self) -> VectorStore:
        if isinstance(self.ref, VectorStore):
            return self.ref
        self.store = await connect(self.ref)
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        if self.store is not None:
            await self.store.close()

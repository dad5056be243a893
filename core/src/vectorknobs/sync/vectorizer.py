"""``IncrementalVectorizer``: records embedded in the background, in batches, with nothing lost."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from vectorknobs._fs import atomic_write
from vectorknobs.errors import CorruptStoreError, ValidationError, VectorizerError, VectorknobsError
from vectorknobs.names import check_record_id
from vectorknobs.query import DEFAULT_VECTOR_FIELD
from vectorknobs.record import Record
from vectorknobs.store import VectorStore
from vectorknobs.sync._flow import Failure, check_batch_size, retrying
from vectorknobs.sync.synchronizer import SyncResult, VectorTextSynchronizer

logger = logging.getLogger("vectorknobs.sync")

QUEUE_FORMAT = "vectorknobs-vectorizer-queue"

DEFAULTS: dict[str, Any] = {
    "auto_vectorize": True,  # on_create queues the record
    "embedding_fn": None,  # a registered name or a callable (not with a synchronizer)
    "text_fields": ("text",),
    "vector_field": DEFAULT_VECTOR_FIELD,
    "batch_size": 50,  # records embedded per call
    "max_wait": 0.5,  # seconds a partial batch waits for more records
    "max_pending": 1000,  # queued ids before enqueue() waits (back-pressure)
    "max_retries": 3,  # attempts per batch on transient errors
    "backoff": 0.5,  # seconds before the first retry; doubles each time
    "queue_path": None,  # file the queue is saved to on a stop without draining, and loaded from at start
    "on_error": None,  # called with each Failure once retries are exhausted
}


@dataclass
class VectorizerReport:
    """What the vectorizer did: ``failed`` ids with the error that stopped them, ``pending`` ids left queued."""

    embedded: int = 0
    current: int = 0
    gone: int = 0  #: queued ids no longer stored (deleted meanwhile)
    failed: dict[str, Failure] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    saved_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"embedded": self.embedded, "current": self.current, "gone": self.gone,
                "failed": {i: f.to_dict() for i, f in self.failed.items()}, "pending": list(self.pending),
                "saved_to": self.saved_to}


class IncrementalVectorizer:
    """A bounded background queue of record ids whose vectors need (re)making.

    ::

        vectorizer = IncrementalVectorizer(store, {"batch_size": 50, "text_fields": ["content"],
                                                   "embedding_fn": "hash", "queue_path": "queue.json"})
        async with vectorizer:                     # start(); at the end, drain and stop
            await vectorizer.on_create(record)     # or: await vectorizer.enqueue([id1, id2])

    ``enqueue`` waits while ``max_pending`` ids are queued. A batch failing with a transient error (store
    I/O, the embedding model) is retried ``max_retries`` times with exponential backoff; records that still
    fail are logged, passed to ``on_error`` and listed in the report — ``async with`` raises
    ``VectorizerError`` for them. ``stop(drain=False)``, an exception in the ``async with`` body or a
    cancelled worker saves what is queued (the batch in hand included) to ``queue_path``; ``start`` loads it.
    """

    def __init__(self, target: VectorStore | VectorTextSynchronizer, config: Mapping[str, Any] | None = None,
                 **options: Any) -> None:
        settings = {**DEFAULTS, **(config or {}), **options}
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise ValidationError(f"unknown IncrementalVectorizer option(s) {unknown}; known: {sorted(DEFAULTS)}")
        if isinstance(target, VectorTextSynchronizer):
            if settings["embedding_fn"] is not None:
                raise ValidationError("give embedding_fn to the synchronizer, not to the vectorizer as well")
            self.synchronizer = target
        else:
            self.synchronizer = VectorTextSynchronizer(
                target, settings["embedding_fn"], settings["text_fields"], settings["vector_field"],
                batch_size=check_batch_size(settings["batch_size"]),
            )
        self.batch_size = check_batch_size(settings["batch_size"])
        self.max_pending = check_batch_size(settings["max_pending"], "max_pending")
        self.max_retries = check_batch_size(settings["max_retries"], "max_retries")
        self.max_wait = _seconds(settings["max_wait"], "max_wait")
        self.backoff = _seconds(settings["backoff"], "backoff")
        self.auto_vectorize = bool(settings["auto_vectorize"])
        self.queue_path = Path(settings["queue_path"]) if settings["queue_path"] else None
        self.on_error: Callable[[Failure], Any] | None = settings["on_error"]
        self.report = VectorizerReport()
        self._pending: dict[str, None] = {}  # an ordered set
        self._in_hand: list[str] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._drain = True

    @property
    def store(self) -> VectorStore:
        return self.synchronizer.store

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def __len__(self) -> int:
        """Ids queued or being embedded."""
        return len(self._pending) + len(self._in_hand)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> Self:
        """Load a saved queue (``queue_path``) and start the background worker."""
        if self.running:
            return self
        if self.queue_path is not None and self.queue_path.exists():
            for record_id in await asyncio.to_thread(self._load_queue, self.queue_path):
                self._pending[record_id] = None
        self._closing, self._drain = False, True
        self._task = asyncio.create_task(self._work(), name=f"vectorizer of {self.store!r}")
        return self

    async def stop(self, *, drain: bool = True) -> VectorizerReport:
        """Stop the worker. ``drain``: embed everything queued first; otherwise finish the batch in hand
        and save the rest to ``queue_path`` (without one, the report's ``pending`` lists them)."""
        if self._task is not None:
            async with self._changed:
                self._closing, self._drain = True, drain
                self._changed.notify_all()
            try:
                await self._task
            finally:
                self._task = None
        self.report.pending = [*self._in_hand, *self._pending]
        await asyncio.to_thread(self._save_queue)
        return self.report

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        report = await self.stop(drain=exc is None)
        if exc is None and report.failed:
            first = next(iter(report.failed.values()))
            raise VectorizerError(
                f"{len(report.failed)} record(s) could not be vectorized, e.g. {first.ids[0]!r}: "
                f"{first.kind}: {first.error}", report,
            )

    # -- feeding ----------------------------------------------------------------------------------
    async def enqueue(self, ids: Iterable[str]) -> None:
        """Queue records by id (already queued ones once); waits while the queue is full."""
        if not self.running or self._closing:
            raise VectorizerError("the vectorizer is not running: await start() (or use 'async with') first")
        for record_id in ids:
            check_record_id(record_id)
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._pending) < self.max_pending or not self.running)
                if not self.running:
                    raise VectorizerError("the vectorizer stopped while records were being queued")
                self._pending[record_id] = None
                self._changed.notify_all()

    async def on_create(self, record: Record) -> Record:
        """The original design's hook: queue a newly created record (when ``auto_vectorize``)."""
        if self.auto_vectorize:
            await self.enqueue([record.key])
        return record

    async def flush(self) -> None:
        """Wait until everything queued so far has been embedded (or has failed)."""
        async with self._changed:
            await self._changed.wait_for(lambda: (not self._pending and not self._in_hand) or not self.running)

    # -- the worker ---------------------------------------------------------------------------------
    async def _work(self) -> None:
        try:
            while batch := await self._next_batch():
                await self._process(batch)
                async with self._changed:
                    self._in_hand = []
                    self._changed.notify_all()
        except asyncio.CancelledError:
            self._save_queue_now()  # the batch in hand goes back to the queue file: nothing is lost
            raise
        finally:
            async with self._changed:
                self._changed.notify_all()  # wake enqueue()/flush() waiters: they see it is not running

    async def _next_batch(self) -> list[str]:
        loop = asyncio.get_running_loop()
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._pending) or self._closing)
            if self._closing and not self._drain:
                return []
            deadline = loop.time() + self.max_wait
            while len(self._pending) < self.batch_size and not self._closing:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    break
            self._in_hand = list(self._pending)[:self.batch_size]
            for record_id in self._in_hand:
                del self._pending[record_id]
            self._changed.notify_all()  # room in the queue: wake enqueue()
            return list(self._in_hand)

    async def _process(self, batch: list[str]) -> None:
        report = self.report

        async def attempt() -> tuple[int, SyncResult]:
            stored = [r for r in await self.store.bulk_read(batch) if r is not None]
            return len(batch) - len(stored), await self.synchronizer.refresh(stored)

        try:
            gone, result = await retrying(attempt, f"vectorizing {len(batch)} records", self.max_retries, self.backoff)
        except Exception as err:
            if not isinstance(err, VectorknobsError):
                logger.exception("vectorizing records %s failed unexpectedly", batch[:5])
            gone, result = 0, SyncResult(failures=[Failure.of(batch, err)])
        report.gone += gone
        report.embedded += result.embedded
        report.current += result.current
        for record_id in batch:
            report.failed.pop(record_id, None)  # an earlier failure, fixed by a later write
        for failure in result.failures:
            logger.error("could not vectorize %d record(s) %s: %s: %s", len(failure.ids), list(failure.ids[:5]),
                         failure.kind, failure.error)
            report.failed.update(dict.fromkeys(failure.ids, failure))
            if self.on_error is not None:
                self.on_error(failure)
        async with self._changed:
            for record_id in result.changed_meanwhile:  # its text changed while we embedded: embed it again
                self._pending.setdefault(record_id, None)

    # -- the queue file -------------------------------------------------------------------------------
    def _save_queue_now(self) -> None:
        self.report.pending = [*self._in_hand, *self._pending]
        self._save_queue()

    def _save_queue(self) -> None:
        if self.queue_path is None:
            return
        waiting = list(dict.fromkeys([*self.report.pending, *self.report.failed]))
        if not waiting:
            self.queue_path.unlink(missing_ok=True)
            self.report.saved_to = None
            return
        data = {"format": QUEUE_FORMAT, "version": 1, "store": self.store.config.redacted(),
                "vector_field": self.synchronizer.vector_field, "ids": waiting}
        atomic_write(self.queue_path, [json.dumps(data).encode()])
        self.report.saved_to = str(self.queue_path)

    def _load_queue(self, path: Path) -> list[str]:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != QUEUE_FORMAT or not isinstance(data.get("ids"), list):
                raise ValueError("not a vectorizer queue file")
            return [check_record_id(i) for i in data["ids"]]
        except (OSError, ValueError, AttributeError) as err:
            raise CorruptStoreError(f"cannot read the vectorizer queue {path}: {err}; move it away to start empty") \
                from err


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValidationError(f"{what} must be a number of seconds >= 0, got {value!r}")
    return float(value)

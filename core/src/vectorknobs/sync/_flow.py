"""Plumbing shared by the synchronizer, the migration and the vectorizer: bounded pipelines, retries,
failure reports and keyset paging."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from vectorknobs.errors import (
    CorruptStoreError,
    EmbeddingError,
    InvalidEmbeddingError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    ValidationError,
    VectorknobsError,
)
from vectorknobs.filters import Filter, and_, where

logger = logging.getLogger("vectorknobs.sync")

T = TypeVar("T")
Stage = Callable[[Any], Awaitable[Any]]
Progress = Callable[[int, int], None]

_DONE = object()


@dataclass(frozen=True)
class Failure:
    """Records that could not be embedded or written, and why (``kind`` is the error's class name)."""

    ids: tuple[str, ...]
    error: str
    kind: str

    @classmethod
    def of(cls, ids: Sequence[str], err: BaseException) -> Failure:
        return cls(tuple(ids), str(err), type(err).__name__)

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "error": self.error, "kind": self.kind}


async def run_pipeline(source: AsyncIterator[Any], stages: Sequence[Stage], depth: int = 2) -> None:
    """Feed ``source``'s items through ``stages`` in order, each stage in a task of its own.

    Stages overlap (reading batch n+2 while embedding n+1 and writing n) but at most ``depth`` items wait
    between two stages, so memory stays flat. The first failure cancels everything and is raised; so is
    a cancellation of the caller. ``source`` is closed either way.
    """
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=depth) for _ in stages]

    async def feed() -> None:
        try:
            async for item in source:
                await queues[0].put(item)
            await queues[0].put(_DONE)
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def work(i: int, stage: Stage) -> None:
        while (item := await queues[i].get()) is not _DONE:
            out = await stage(item)
            if i + 1 < len(stages):
                await queues[i + 1].put(out)
        if i + 1 < len(stages):
            await queues[i + 1].put(_DONE)

    tasks = [asyncio.create_task(feed()), *(asyncio.create_task(work(i, s)) for i, s in enumerate(stages))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def is_transient(err: BaseException) -> bool:
    """Worth retrying: a store's I/O or connection failure, or a failing embedding model or API."""
    if isinstance(err, (StoreClosedError, StoreLockedError, CorruptStoreError, InvalidEmbeddingError)):
        return False
    return isinstance(err, (StoreError, EmbeddingError, OSError, TimeoutError))


async def retrying(op: Callable[[], Awaitable[T]], what: str, attempts: int, backoff: float) -> T:
    """``await op()``, retried up to ``attempts`` times in all on transient errors, waiting
    ``backoff``, ``2*backoff``, ``4*backoff``... (at most 30 s) in between; the last error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return await op()
        except VectorknobsError as err:
            if attempt == attempts or not is_transient(err):
                raise
            delay = min(backoff * 2 ** (attempt - 1), 30.0)
            logger.warning("%s failed (attempt %d of %d), retrying in %.2fs: %s", what, attempt, attempts, delay, err)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def after_id(where_: Filter | None, after: str | None) -> Filter | None:
    """``where_`` limited to ids after ``after``: keyset paging that survives writes and restarts."""
    if after is None:
        return where_
    tail = where("id", "gt", after)
    return tail if where_ is None else and_(where_, tail)


class Clock:
    """Elapsed seconds since construction, and whether ``interval`` passed since the last ``due()``."""

    def __init__(self, interval: float = 0.5) -> None:
        self.start = self._last = time.monotonic()
        self.interval = interval

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


def check_batch_size(batch_size: int, what: str = "batch_size") -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"{what} must be a positive int, got {batch_size!r}")
    return batch_size

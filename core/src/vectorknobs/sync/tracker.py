"""``ChangeTracker``: re-sync vectors whenever their source text is written, on any store.

It listens through the ``register_write_listeners`` plugin hook, which the core's ``VectorStore`` calls
after every stored batch, so it needs nothing from the store: ours or a third party's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from vectorknobs.errors import SyncError, ValidationError
from vectorknobs.hookspecs import hookimpl
from vectorknobs.plugins import WriteListenerRegistrar, get_registry
from vectorknobs.record import Record
from vectorknobs.store import FilterLike, WriteEvent
from vectorknobs.sync.synchronizer import SyncResult, VectorTextSynchronizer

if TYPE_CHECKING:
    from vectorknobs.sync.vectorizer import IncrementalVectorizer

_ids = itertools.count(1)


class ChangeTracker:
    """Re-embeds a record's vector when a write changes the text it was made from.

    ::

        with ChangeTracker(VectorTextSynchronizer(store, "hash", ["title", "body"])):
            await store.update(record)   # returns once the record's vector matches its new text

    Several synchronizers (one per vector field) may be tracked at once. With a ``vectorizer``, changed
    records are queued for it instead (the write returns at once; back-pressure when its queue is full).
    Only writes through this process's store object are seen. A re-sync that fails makes the write call
    raise ``WriteListenerError`` (the write itself is stored; ``get_outdated_records`` finds the record).
    """

    def __init__(self, *synchronizers: VectorTextSynchronizer, vectorizer: IncrementalVectorizer | None = None) -> None:
        if vectorizer is not None:
            if synchronizers and synchronizers != (vectorizer.synchronizer,):
                raise ValidationError("with a vectorizer, ChangeTracker keeps the vectorizer's synchronizer only")
            synchronizers = (vectorizer.synchronizer,)
        if not synchronizers:
            raise ValidationError("ChangeTracker needs a VectorTextSynchronizer (or an IncrementalVectorizer)")
        self.synchronizers = synchronizers
        self.vectorizer = vectorizer
        self.result = SyncResult()  #: what the tracker re-synced so far
        self._name = f"vectorknobs-change-tracker-{next(_ids)}"
        self._started = False

    @property
    def tracked_fields(self) -> dict[str, tuple[str, ...]]:
        """``vector field -> text fields`` it keeps in step."""
        return {s.vector_field: s.text_fields for s in self.synchronizers}

    # -- attaching --------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start listening to writes (idempotent)."""
        if not self._started:
            get_registry().add_plugin(self, name=self._name)
            self._started = True
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._started:
            get_registry().remove_plugin(self._name)
            self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.stop()

    @hookimpl
    def register_write_listeners(self, register: WriteListenerRegistrar) -> None:
        register(self.on_write)

    # -- reacting ----------------------------------------------------------------------------------
    async def on_write(self, event: WriteEvent) -> None:
        """The write listener: re-sync (or queue) the written records whose vector no longer matches."""
        for sync in self.synchronizers:
            if event.store is not sync.store:
                continue
            stale = [r for r in event.records if sync.has_text(r) and not sync.is_current(r)]
            if not stale:
                continue
            if self.vectorizer is not None:
                await self.vectorizer.enqueue(r.key for r in stale)
                continue
            result = await sync.refresh(stale)
            self.result.add(result)
            if result.failures:
                first = result.failures[0]
                raise SyncError(
                    f"could not re-embed {len(result.failed_ids)} record(s) for {sync.vector_field!r}: "
                    f"{first.kind}: {first.error}", result,
                )

    async def get_outdated_records(self, query: FilterLike = None, *, limit: int | None = None) -> list[Record]:
        """Stored records (matching ``query``, at most ``limit``) whose tracked vectors are missing or stale."""
        found: list[Record] = []
        seen: set[str] = set()
        for sync in self.synchronizers:
            async for batch in sync.outdated(query):
                for record in batch:
                    if record.key not in seen:
                        seen.add(record.key)
                        found.append(record)
                        if limit is not None and len(found) >= limit:
                            return found
        return found

    async def resync(self, ids: Sequence[str]) -> SyncResult:
        """Re-sync these records now, whatever wrote them (another process, a store without this tracker)."""
        result = SyncResult()
        for sync in self.synchronizers:
            stored = [r for r in await sync.store.bulk_read(list(ids)) if r is not None]
            result.add(await sync.refresh(stored))
        self.result.add(result)
        return result

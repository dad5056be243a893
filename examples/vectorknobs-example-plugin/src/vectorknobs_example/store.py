"""``jsondir://``: one JSON file per record in a directory, exact vector search with numpy.

    store = await vectorknobs.connect("jsondir:///var/data/notes")

The store keeps every record in memory and on disk. The core has already checked every input before
a primitive below runs, and it converts scores, applies thresholds and fills in source text after
``_vector_search`` returns. Filters and sorts use the core's reference evaluator (``vectorknobs.evaluate``),
so this store answers every query exactly like the built-in ``memory`` store.

On disk: ``<dir>/<sha256(id)>.json`` holds ``Record.to_json()``. A batch is first written whole to
``<dir>/journal.json``, then applied file by file; ``open`` replays a journal left by a crash, so a
batch is applied entirely or not at all. ``<dir>/.lock`` keeps a second process from writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from vectorknobs import (
    Capabilities,
    ConfigError,
    CorruptStoreError,
    DistanceMetric,
    Hit,
    Option,
    Query,
    Record,
    Schema,
    StoreConfig,
    StoreError,
    StoreLockedError,
    VectorQuery,
    VectorStore,
    WriteMode,
)
from vectorknobs.config import parse_bool
from vectorknobs.evaluate import matches, sort_records
from vectorknobs.filters import ALL_OPERATORS, Filter
from vectorknobs.metrics import exact_scores

JOURNAL = "journal.json"
LOCK = ".lock"


class JsonDirStore(VectorStore):
    """Records as JSON files in one directory; exact search over all of them."""

    capabilities = Capabilities(
        filter_operators=ALL_OPERATORS,  # the reference evaluator answers every operator
        metrics=frozenset(DistanceMetric),
        per_query_metric=True,  # exact scores are computed per query, so any metric works
        hybrid_search=False,  # not implemented: the core raises CapabilityError for hybrid queries
        sparse_vectors=False,  # the core refuses SparseVectorField writes with CapabilityError
        persistence=True,
        transactions=True,  # a batch is journaled: all of it is applied, or none
        exact_search=True,
        extras={"layout": "one JSON file per record"},
    )
    options: ClassVar[Mapping[str, Option]] = {
        "fsync": Option(parse_bool, True, "flush every file to disk before a write returns (false: faster, "
                        "a power loss may lose recent writes)"),
    }

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        if config.host or not config.path:
            raise ConfigError(
                f"jsondir needs an absolute directory: jsondir:///path/to/dir, got {config.redacted()!r}"
            )
        self.directory = Path(config.path)
        self._records: dict[str, Record] = {}  # replaced, never mutated: readers keep a consistent view
        self._lock = threading.Lock()  # one batch at a time, in worker threads
        self._lock_fd: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    async def _close(self) -> None:
        await asyncio.to_thread(self._release)

    async def _load_schema(self) -> Schema:
        schema = Schema()
        for record in self._records.values():
            schema.fields.update(record.fields)
            for name, field in record.vector_fields().items():
                schema.vectors.setdefault(name, field.dimensions)
        return schema

    # -- writes: blocking file I/O runs in a worker thread, under one lock ------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        await asyncio.to_thread(self._write_sync, records, mode)

    async def _delete(self, ids: list[str]) -> int:
        return await asyncio.to_thread(self._delete_sync, ids)

    async def _drop(self) -> None:
        await asyncio.to_thread(lambda: self._delete_sync(list(self._records)))

    def _write_sync(self, records: list[Record], mode: WriteMode) -> None:
        with self._lock:
            current = self._records
            ids = [r.key for r in records]
            if mode is WriteMode.CREATE and (taken := [i for i in ids if i in current]):
                raise self.duplicate_ids(taken)
            if mode is WriteMode.UPDATE and (missing := [i for i in ids if i not in current]):
                raise self.missing_ids(missing)
            self._commit({"write": [r.to_dict() for r in records], "delete": []})
            self._records = {**current, **{r.key: r for r in records}}

    def _delete_sync(self, ids: list[str]) -> int:
        with self._lock:
            current = self._records
            present = [i for i in ids if i in current]
            if present:
                self._commit({"write": [], "delete": present})
                gone = set(present)
                self._records = {k: v for k, v in current.items() if k not in gone}
            return len(present)

    # -- reads: a snapshot of the records, filtered and sorted by the core's evaluator ----------------
    async def _read(self, ids: list[str]) -> list[Record | None]:
        records = self._records
        return [records[i].copy() if i in records else None for i in ids]

    async def _search(self, query: Query) -> list[Record]:
        records = self._records
        return await asyncio.to_thread(_search, records, query)

    async def _count(self, where: Filter | None) -> int:
        records = self._records
        return await asyncio.to_thread(lambda: len(_matching(records, where)))

    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        records = self._records
        return await asyncio.to_thread(_nearest, records, query, metric)

    # -- the directory --------------------------------------------------------------------------------
    def _open_sync(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _take_lock(self.directory / LOCK)
        try:
            for stray in self.directory.glob(".*.tmp"):  # a write interrupted before its rename
                stray.unlink()
            if (self.directory / JOURNAL).exists():  # a batch interrupted after its journal was saved
                self._replay()
            self._records = _load_all(self.directory)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _commit(self, batch: dict[str, Any]) -> None:
        """Save the batch to the journal (the commit point), then apply it."""
        try:
            self._save(self.directory / JOURNAL, json.dumps(batch).encode())
            self._replay()
        except OSError as err:
            raise StoreError(f"jsondir {self.directory}: could not write: {err}") from err

    def _replay(self) -> None:
        """Apply the journal (again: every step is idempotent), then remove it."""
        journal = self.directory / JOURNAL
        try:
            batch = json.loads(journal.read_bytes())
            writes = [Record.from_dict(data) for data in batch["write"]]
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptStoreError(f"{journal} is unreadable: {err}") from None
        for record in writes:  # the renames are made durable together, below
            self._save(self.directory / file_name(record.key), record.to_json().encode(), sync_directory=False)
        for record_id in batch["delete"]:
            (self.directory / file_name(record_id)).unlink(missing_ok=True)
        self._sync_directory()
        journal.unlink()
        self._sync_directory()

    def _save(self, path: Path, data: bytes, *, sync_directory: bool = True) -> None:
        """Write ``path`` whole or not at all: a temporary file, then an atomic rename."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                if self.settings["fsync"]:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync_directory:
            self._sync_directory()

    def _sync_directory(self) -> None:
        if self.settings["fsync"]:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def file_name(record_id: str) -> str:
    """Ids may hold any character, so files are named by a hash of the id."""
    return hashlib.sha256(record_id.encode()).hexdigest() + ".json"


def _take_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(f"{path.parent} is open in another process; close it there first") from None
    return fd


def _load_all(directory: Path) -> dict[str, Record]:
    records: dict[str, Record] = {}
    for path in directory.glob("*.json"):
        if path.name == JOURNAL:
            continue
        try:
            record = Record.from_json(path.read_bytes())
        except ValueError as err:  # InvalidRecordError is a ValueError too
            raise CorruptStoreError(f"{path} is not a vectorknobs record: {err}") from None
        if record.id is None or file_name(record.id) != path.name:
            raise CorruptStoreError(f"{path} holds record {record.id!r}, which belongs in another file")
        records[record.id] = record
    return records


def _matching(records: dict[str, Record], where: Filter | None) -> list[Record]:
    """Records matching ``where``, in id order."""
    return [records[i] for i in sorted(records) if where is None or matches(records[i], where)]


def _search(records: dict[str, Record], query: Query) -> list[Record]:
    found = _matching(records, query.where)
    if query.order:
        found = sort_records(found, [(key.path, key.descending) for key in query.order])
    end = None if query.max_results is None else query.skip + query.max_results
    return [r.copy() for r in found[query.skip:end]]


def _nearest(records: dict[str, Record], query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
    """Exact k nearest: score every matching record that has the field, best first, ties by id."""
    part = query.vector
    assert part.vector is not None  # the core embeds near_text queries before calling the store
    candidates = [r for r in _matching(records, query.where) if part.field in r.vector_fields()]
    if not candidates:
        return []
    matrix = np.vstack([r.vector_fields()[part.field].value for r in candidates])
    scores = exact_scores(matrix, part.vector, metric)
    best = np.argsort(-scores, kind="stable")[: part.k]  # stable: equal scores stay in id order
    return [Hit(candidates[i].copy(), float(scores[i])) for i in best]

"""The built-in ``memory`` store: exact, simple, and the oracle every other store is compared with.

``memory://`` keeps records in this process only; ``memory:///path/to/dir`` also saves them to
``<dir>/records.jsonl`` after every write, atomically (a crash leaves the previous good copy), and locks
the directory against a second writing process.

Every snapshot of the records is immutable: a write builds the next snapshot, saves it, then swaps it
in, so readers never see half a batch and a failed save changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from vectorknobs._fs import DirectoryLock, atomic_write, remove_temp_files
from vectorknobs.capabilities import Capabilities
from vectorknobs.config import Option, StoreConfig, parse_bool, parse_int
from vectorknobs.embedders import tokens
from vectorknobs.errors import ConfigError, CorruptStoreError, InvalidRecordError
from vectorknobs.evaluate import matches, sort_records
from vectorknobs.fields import VectorField
from vectorknobs.filters import Filter
from vectorknobs.metrics import DistanceMetric, exact_scores
from vectorknobs.query import Query, VectorQuery
from vectorknobs.record import Record
from vectorknobs.store import Hit, Schema, VectorStore, WriteMode

FORMAT = "vectorknobs-memory"
VERSION = 1
FILE_NAME = "records.jsonl"


@dataclass(frozen=True)
class _Rows:
    ids: list[str]
    matrix: npt.NDArray[np.float64]
    norms: npt.NDArray[np.float64]


@dataclass
class _Snapshot:
    """An immutable generation of the store's records, with lazily built per-field matrices."""

    records: dict[str, Record] = field(default_factory=dict)
    _matrices: dict[str, _Rows] = field(default_factory=dict)

    def matrix(self, vector_field: str) -> _Rows:
        """The field's vectors in id order, as float64 rows with their norms (built once per generation)."""
        if vector_field not in self._matrices:
            ids = sorted(i for i, r in self.records.items() if isinstance(r.fields.get(vector_field), VectorField))
            rows = np.array([self.records[i].fields[vector_field].value for i in ids], dtype=np.float64)
            self._matrices[vector_field] = _Rows(ids, rows, np.linalg.norm(rows, axis=1) if ids else rows)
        return self._matrices[vector_field]

    def matching(self, where: Filter | None) -> Iterator[Record]:
        for record_id in sorted(self.records):
            record = self.records[record_id]
            if where is None or matches(record, where):
                yield record


class MemoryStore(VectorStore):
    """Exact search over records held in memory, optionally saved to a directory."""

    capabilities = Capabilities(hybrid_search=True, sparse_vectors=True, persistence=True, transactions=True)
    options: ClassVar[dict[str, Option]] = {
        "path": Option(str, None, "directory to save to (same as memory:///path); omit to keep nothing"),
        "autosave": Option(parse_bool, True, "save after every write (false: only on close)"),
        "max_records": Option(parse_int, 1_000_000, "refuse writes beyond this many records"),
    }

    def __init__(self, config: StoreConfig) -> None:
        if config.host:
            raise ConfigError(f"memory store paths are absolute: write memory:///{config.host}{config.path or ''}")
        if config.path and config.params.get("path"):
            raise ConfigError("give the memory store's directory once: in the URL path or as 'path'")
        super().__init__(config)
        path = config.path or self.settings["path"]
        self.path = Path(path) if path else None
        self._snapshot = _Snapshot()
        self._write_lock = asyncio.Lock()
        self._lock = DirectoryLock(self.path) if self.path else None

    # -- lifecycle ------------------------------------------------------------------------------
    async def _open(self) -> None:
        if self.path is None or self._lock is None:
            return
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            await asyncio.to_thread(remove_temp_files, self.path / FILE_NAME)
            self._snapshot = await asyncio.to_thread(_load, self.path / FILE_NAME)
        except BaseException:
            self._lock.release()
            raise

    async def _close(self) -> None:
        if self.path is not None and self._lock is not None:
            try:
                if not self.settings["autosave"]:
                    async with self._write_lock:
                        await asyncio.to_thread(_save, self.path / FILE_NAME, self._snapshot)
            finally:  # a failed final save must not leave the directory locked until the process exits
                self._lock.release()

    async def _load_schema(self) -> Schema:
        schema = Schema()
        for record in self._snapshot.records.values():
            schema.fields.update(record.fields)
            for name, f in record.vector_fields().items():
                schema.vectors.setdefault(name, f.dimensions)
        return schema

    # -- writes ---------------------------------------------------------------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        async with self._write_lock:
            current = self._snapshot.records
            ids = [r.key for r in records]
            if mode is WriteMode.CREATE:
                taken = [i for i in ids if i in current]
                if taken:
                    raise self.duplicate_ids(taken)
            elif mode is WriteMode.UPDATE:
                missing = [i for i in ids if i not in current]
                if missing:
                    raise self.missing_ids(missing)
            updated = dict(current)
            updated.update((r.key, r) for r in records)
            if len(updated) > self.settings["max_records"]:
                raise InvalidRecordError(
                    f"memory store is limited to {self.settings['max_records']} records (option max_records)"
                )
            await self._commit(_Snapshot(updated))

    async def _delete(self, ids: list[str]) -> int:
        async with self._write_lock:
            current = self._snapshot.records
            present = [i for i in ids if i in current]
            if present:
                gone = set(present)
                await self._commit(_Snapshot({k: v for k, v in current.items() if k not in gone}))
            return len(present)

    async def _drop(self) -> None:
        async with self._write_lock:
            await self._commit(_Snapshot())

    async def _commit(self, snapshot: _Snapshot) -> None:
        if self.path is not None and self.settings["autosave"]:
            await asyncio.to_thread(_save, self.path / FILE_NAME, snapshot)
        self._snapshot = snapshot

    # -- reads ----------------------------------------------------------------------------------
    async def _read(self, ids: list[str]) -> list[Record | None]:
        records = self._snapshot.records
        return [records[i].copy() if i in records else None for i in ids]

    async def _search(self, query: Query) -> list[Record]:
        snapshot = self._snapshot
        return await asyncio.to_thread(_search, snapshot, query)

    async def _count(self, where: Filter | None) -> int:
        snapshot = self._snapshot
        return await asyncio.to_thread(lambda: sum(1 for _ in snapshot.matching(where)))

    async def _stream(self, where: Filter | None, batch_size: int) -> AsyncIterator[list[Record]]:
        snapshot = self._snapshot  # a consistent view, even while writes go on
        ids = await asyncio.to_thread(lambda: [r.id for r in snapshot.matching(where)])
        for start in range(0, len(ids), batch_size):
            yield [snapshot.records[i].copy() for i in ids[start:start + batch_size]]  # type: ignore[index]

    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        snapshot = self._snapshot
        return await asyncio.to_thread(_vector_search, snapshot, query, metric, None)

    async def _hybrid_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        snapshot = self._snapshot
        return await asyncio.to_thread(_vector_search, snapshot, query, metric, query.vector.alpha)


def _search(snapshot: _Snapshot, query: Query) -> list[Record]:
    found = list(snapshot.matching(query.where))
    if query.order:
        found = sort_records(found, [(k.path, k.descending) for k in query.order])
    end = None if query.max_results is None else query.skip + query.max_results
    return [r.copy() for r in found[query.skip:end]]


def _vector_search(snapshot: _Snapshot, query: VectorQuery, metric: DistanceMetric, alpha: float | None) -> list[Hit]:
    part = query.vector
    assert part.vector is not None
    found = snapshot.matrix(part.field)
    ids = found.ids
    if not ids:
        return []
    if query.where is not None:
        keep = np.fromiter((matches(snapshot.records[i], query.where) for i in ids), dtype=bool, count=len(ids))
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return []
        scores = exact_scores(found.matrix[rows], part.vector, metric, found.norms[rows])
    else:
        rows = np.arange(len(ids))
        scores = exact_scores(found.matrix, part.vector, metric, found.norms)
    if alpha is not None:
        scores = alpha * _unit_interval(scores, metric) + (1.0 - alpha) * _keyword_scores(
            [snapshot.records[ids[r]] for r in rows], part.text or "", part.field, part.text_fields
        )
    # best first, ties by id: the k best and all tied with the k-th, in id order, stably sorted by score
    candidates = np.arange(len(scores))
    if len(scores) > part.k:
        candidates = np.flatnonzero(scores >= np.partition(scores, len(scores) - part.k)[len(scores) - part.k])
    order = candidates[np.argsort(-scores[candidates], kind="stable")][: part.k]
    return [Hit(snapshot.records[ids[rows[o]]].copy(), float(scores[o])) for o in order]


def _unit_interval(scores: np.ndarray, metric: DistanceMetric) -> np.ndarray:
    """Vector scores mapped to [0, 1] for blending: cosine (s+1)/2, euclidean as is, dot min-max."""
    if metric is DistanceMetric.COSINE:
        return (scores + 1.0) / 2.0
    if metric is DistanceMetric.EUCLIDEAN:
        return scores
    low, high = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if high == low else (scores - low) / (high - low)


def _keyword_scores(records: list[Record], text: str, vector_field: str, text_fields: tuple[str, ...]) -> np.ndarray:
    """Share of the query's distinct words found in each record's text fields."""
    wanted = set(tokens(text))
    out = np.zeros(len(records), dtype=np.float64)
    if not wanted:
        return out
    for row, record in enumerate(records):
        names = text_fields or record.vector_fields()[vector_field].source_fields
        if not names:
            names = tuple(n for n, f in record.fields.items() if isinstance(f.value, str))
        words = set().union(*(tokens(v) for n in names if isinstance(v := record.get_value(n), str)))
        out[row] = len(wanted & words) / len(wanted)
    return out


def _save(path: Path, snapshot: _Snapshot) -> None:
    header = json.dumps({"format": FORMAT, "version": VERSION, "records": len(snapshot.records)})

    def lines() -> Iterator[bytes]:
        yield header.encode() + b"\n"
        for record_id in sorted(snapshot.records):
            yield snapshot.records[record_id].to_json().encode() + b"\n"

    atomic_write(path, lines())


def _load(path: Path) -> _Snapshot:
    if not path.exists():
        return _Snapshot()
    records: dict[str, Record] = {}
    with path.open("rb") as handle:
        try:
            header = json.loads(handle.readline())
        except (json.JSONDecodeError, UnicodeDecodeError):
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CorruptStoreError(f"{path} is not a vectorknobs memory store file")
        if header.get("version") != VERSION:
            raise CorruptStoreError(
                f"{path} has format version {header.get('version')}; this vectorknobs reads version {VERSION}"
            )
        for number, line in enumerate(handle, start=2):
            try:
                record = Record.from_json(line)
            except (InvalidRecordError, ValueError, KeyError, TypeError) as err:
                raise CorruptStoreError(f"{path}, line {number}: {err}") from None
            if record.id is None or record.id in records:
                raise CorruptStoreError(f"{path}, line {number}: missing or repeated record id {record.id!r}")
            records[record.id] = record
    if len(records) != header.get("records"):
        raise CorruptStoreError(f"{path} is truncated: {len(records)} of {header.get('records')} records")
    return _Snapshot(records)

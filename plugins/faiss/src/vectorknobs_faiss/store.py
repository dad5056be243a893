"""``FaissStore``: records in SQLite, one faiss index per vector field, all in one directory.

``faiss:///path/to/dir`` holds ``records.sqlite`` (the durable truth: fields and raw vectors),
``index/field-<n>.faiss`` (derived indexes, saved on close and after rebuilds) and ``.lock``.
An index file that is missing, stale or damaged is rebuilt or caught up from SQLite, so a crash at
any point loses nothing that was committed.

Concurrency: blocking work runs in threads. One writer at a time (an asyncio lock); a write's SQLite
commit and its index update happen together under a readers-writer lock, which searches take for
reading, so a search sees a write entirely or not at all. Index rebuilds (the automatic choice by
size, IVF retraining, HNSW compaction) run in the background and are swapped in when done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    RecordBatch,
    Schema,
    StoreClosedError,
    StoreConfig,
    StoreError,
    VectorQuery,
    VectorStore,
    WriteMode,
)
from vectorknobs._fs import DirectoryLock, remove_temp_files
from vectorknobs.batch import last_id
from vectorknobs.fields import FloatArray
from vectorknobs.filters import Filter
from vectorknobs.metrics import exact_scores

from vectorknobs_faiss import params as search_params_module
from vectorknobs_faiss.codec import Row, encode_batch, encode_record
from vectorknobs_faiss.database import FILE_NAME, Changes, Database, VectorColumn
from vectorknobs_faiss.indexes import FieldIndex, Labels, use_one_thread
from vectorknobs_faiss.options import OPTIONS, IndexSpec, auto_nprobe, plan, still_fits
from vectorknobs_faiss.params import SearchParams
from vectorknobs_faiss.ranking import best_group, faiss_scores, kth, pair_scores, ties_beyond, top_hits
from vectorknobs_faiss.rwlock import RWLock

logger = logging.getLogger("vectorknobs_faiss")

INDEX_DIR = "index"
_OWN_FILES = {".lock", INDEX_DIR, FILE_NAME, f"{FILE_NAME}-wal", f"{FILE_NAME}-shm", f"{FILE_NAME}-journal"}
_BATCH = 65_536
_TRAIN_SAMPLE = 100_000
#: labels kept by the cache of recent filters' matches (8 bytes each), until the next write
_MATCHES_CACHED = 4_000_000


class FaissStore(VectorStore):
    """Faiss indexes over records kept in SQLite, in a directory."""

    capabilities = Capabilities(
        per_query_metric=False,
        persistence=True,
        transactions=True,
        extras={"indexes": "flat, ivf, hnsw (auto by size)", "quantizers": "sq8, pq"},
    )
    options: ClassVar[dict[str, Option]] = OPTIONS
    #: a batch is searched in parts of this many queries, on the search threads side by side, each part's
    #: results built on the event loop while the threads search the next parts
    search_batch_size = 16

    def __init__(self, config: StoreConfig) -> None:
        if config.host:
            raise ConfigError(f"faiss store paths are absolute: write faiss:///{config.host}{config.path or ''}")
        if config.path and config.params.get("path"):
            raise ConfigError("give the faiss store's directory once: in the URL path or as 'path'")
        super().__init__(config)
        path = config.path or self.settings["path"]
        if not path:
            raise ConfigError("the faiss store needs a directory: faiss:///path/to/dir or {'path': ...}")
        self.path = Path(path)
        self._db = Database(self.path)
        self._dir_lock = DirectoryLock(self.path)
        self._write_lock = asyncio.Lock()
        self._rw = RWLock()
        self._indexes: dict[str, FieldIndex] = {}
        self._rebuilds: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        # vector searches run here, each on one OpenMP thread (see use_one_thread); concurrent searches
        # use the cores side by side instead of contending for them
        self._searches = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="vectorknobs-faiss-search",
            initializer=use_one_thread,
        )
        # the matching rids of recent filters, per field: SQLite scans every record to evaluate a filter,
        # and filtered searches often repeat one (a tenant, a category). Cleared by every commit.
        self._matches: OrderedDict[tuple[int, Filter], Labels] = OrderedDict()
        self._matches_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    async def _open(self) -> None:
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        self._dir_lock.acquire()
        try:
            await asyncio.to_thread(self._open_files)
        except BaseException:
            self._db.close()
            self._dir_lock.release()
            raise

    def _open_files(self) -> None:
        if not (self.path / FILE_NAME).exists():
            foreign = sorted(p.name for p in self.path.iterdir() if p.name not in _OWN_FILES)
            if foreign:
                raise CorruptStoreError(
                    f"{self.path} is not a faiss store (it holds {', '.join(foreign[:3])}); "
                    "use a new or empty directory"
                )
        self._db.open()
        (self.path / INDEX_DIR).mkdir(exist_ok=True)
        for column in self._db.columns.values():
            remove_temp_files(self._index_path(column))  # partial copies of a save a crash cut short
            self._indexes[column.name] = self._load_index(column)

    async def _close(self) -> None:
        for task in list(self._rebuilds.values()):
            with contextlib.suppress(Exception):
                await task
        async with self._write_lock:
            await asyncio.to_thread(self._close_files)

    def _close_files(self) -> None:
        with self._rw.write():
            self._closed = True
            for name, index in self._indexes.items():
                if index.dirty:
                    try:
                        self._save_index(self._db.columns[name], index)
                    except StoreError as err:
                        logger.warning("%s; it will be rebuilt from the records at the next open", err)
            self._db.close()
        self._dir_lock.release()
        self._searches.shutdown(wait=False)

    async def _load_schema(self) -> Schema:
        return self._db.schema()

    # -- public extras --------------------------------------------------------------------------
    search_params = staticmethod(search_params_module.search_params)

    async def save_indexes(self) -> None:
        """Write every changed index to its file now (``close`` does it too); ``StoreError`` if it fails."""
        self._check_open()
        async with self._write_lock:
            await asyncio.to_thread(self._save_all)

    async def wait_for_indexes(self) -> None:
        """Wait until background index rebuilds (automatic choice, retraining, compaction) are done."""
        while self._rebuilds:
            await asyncio.gather(*self._rebuilds.values(), return_exceptions=True)

    def index_info(self) -> dict[str, dict[str, Any]]:
        """What each vector field's index is: kind, faiss factory string, size, ..."""
        return {
            name: {
                **index.spec.to_dict(),
                "metric": index.spec.metric.value,
                "factory": index.spec.factory,
                "size": index.size,
                "deleted": len(index.dead),
                "trained_on": index.trained_on,
                "rebuilding": name in self._rebuilds,
            }
            for name, index in self._indexes.items()
        }

    # -- writes ---------------------------------------------------------------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        await self._write_rows(await asyncio.to_thread(lambda: [encode_record(r) for r in records]), mode)

    async def _write_batch(self, batch: RecordBatch, mode: WriteMode) -> None:
        await self._write_rows(await asyncio.to_thread(encode_batch, batch), mode)

    async def _write_rows(self, rows: list[Row], mode: WriteMode) -> None:
        async with self._write_lock:
            await asyncio.to_thread(lambda: self._commit(self._db.stage(rows, mode)))
        self._schedule_rebuilds()

    async def _delete(self, ids: list[str]) -> int:
        async with self._write_lock:

            def delete() -> int:
                count, changes = self._db.stage_delete(ids)
                self._commit(changes)
                return count

            count = await asyncio.to_thread(delete)
        self._schedule_rebuilds()
        return count

    async def _drop(self) -> None:
        async with self._write_lock:
            await asyncio.to_thread(lambda: self._commit(self._db.stage_drop()))

    def _commit(self, changes: Changes) -> None:
        """Commit the staged transaction and update the indexes, with searches held off."""
        with self._rw.write():
            self._db.commit(changes)
            with self._matches_lock:
                self._matches.clear()
            if changes.dropped:
                self._indexes.clear()
                for file in (self.path / INDEX_DIR).glob("*.faiss"):
                    file.unlink(missing_ok=True)
                return
            names = {c.slot: c.name for c in self._db.columns.values()}
            for column in changes.new_columns:
                self._indexes[column.name] = FieldIndex.build(self._plan(column, 0), 0, None, ())
            try:
                for slot, labels in changes.removed.items():
                    self._indexes[names[slot]].remove(labels)
                for slot, (labels, vectors) in changes.added.items():
                    self._indexes[names[slot]].add(labels, vectors)
            except Exception:
                # the records are committed; an index that missed them is dropped and rebuilt from them
                logger.exception("updating the faiss indexes of %s failed; rebuilding them", self.path)
                for slot in changes.removed.keys() | changes.added.keys():
                    self._indexes.pop(names[slot], None)

    # -- reads ----------------------------------------------------------------------------------
    async def _read(self, ids: list[str]) -> list[Record | None]:
        return await asyncio.to_thread(self._db.read, ids)

    async def _search(self, query: Query) -> list[Record]:
        return await asyncio.to_thread(self._db.search, query)

    async def _count(self, where: Filter | None) -> int:
        return await asyncio.to_thread(self._db.count, where)

    async def _stream(self, where: Filter | None, batch_size: int) -> AsyncIterator[list[Record]]:
        after: str | None = None
        while page := await asyncio.to_thread(self._db.page, where, after, batch_size):
            yield page
            after = page[-1].key

    async def _stream_pages(self, where: Filter | None, batch_size: int) -> AsyncIterator[RecordBatch | list[Record]]:
        after: str | None = None
        while page := await asyncio.to_thread(self._db.page_as_batch, where, after, batch_size):
            yield page
            after = last_id(page)

    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        params = search_params_module.CURRENT.get()
        found = await asyncio.get_running_loop().run_in_executor(
            self._searches, self._vector_search_sync, [query], metric, params
        )
        return found[0]

    async def _vector_search_batch(self, queries: list[VectorQuery], metric: DistanceMetric) -> list[list[Hit]]:
        """Queries of one field, k and filter (as ``vector_search_batch`` makes them): one faiss search of their
        matrix and one read of their hits, on a search thread."""
        params = search_params_module.CURRENT.get()
        return await asyncio.get_running_loop().run_in_executor(
            self._searches, self._vector_search_sync, queries, metric, params)

    def _vector_search_sync(self, queries: list[VectorQuery], metric: DistanceMetric, params: SearchParams
                            ) -> list[list[Hit]]:
        """Hits of ``queries``, which share their field, k and filter."""
        part, where = queries[0].vector, queries[0].where
        with self._rw.read():
            if self._closed:
                raise StoreClosedError(f"{self!r} is closed; connect again")
            column = self._db.columns.get(part.field)
            if column is None:
                return [[] for _ in queries]
            vectors = (part.vector[None, :] if len(queries) == 1  # type: ignore[index]  # set by the core
                       else np.vstack([q.vector.vector for q in queries]))  # type: ignore[misc]
            index = self._indexes.get(part.field)
            allowed = None if where is None else self._matching(where, column)
            small = allowed is not None and len(allowed) <= self.settings["exact_limit"]
            keep = part.include_vectors
            found: list[list[Hit] | None] = [None] * len(queries)
            if index is not None and not params.exact and not small:
                found = self._index_search(index, column, vectors, part.k, metric, allowed, params, keep)
            if None not in found:
                return found  # type: ignore[return-value]
            labels, matrix = self._db.vectors(column, allowed)  # scored exactly: the queries the index missed
            if not len(labels):
                return [hits or [] for hits in found]
            return [self._exact_hits(column, labels, exact_scores(matrix, query, metric), part.k, keep)
                    if hits is None else hits for query, hits in zip(vectors, found, strict=True)]

    def _exact_hits(self, column: VectorColumn, labels: Labels, scores: np.ndarray, k: int, keep: bool) -> list[Hit]:
        """The k best of ``labels`` by their exact ``scores``, ties by id."""
        group, group_scores = best_group(labels, scores, float(kth(scores, k)))
        rows = self._db.hit_rows(group.tolist(), keep)
        return top_hits(rows, group.tolist(), group_scores.tolist(), k, column.name)

    def _matching(self, where: Filter, column: VectorColumn) -> Labels:
        """Rids of the records matching ``where`` that have ``column``; the caller holds the read lock, so
        no commit (which clears the cache) runs meanwhile."""
        key = (column.slot, where)
        try:
            with self._matches_lock:
                found = self._matches.get(key)
                if found is not None:
                    self._matches.move_to_end(key)
                    return found
        except TypeError:  # an operand that cannot be hashed: not cached
            return self._db.matching_rids(where, column)
        found = self._db.matching_rids(where, column)
        with self._matches_lock:
            self._matches[key] = found
            total = sum(len(v) for v in self._matches.values())
            while total > _MATCHES_CACHED and len(self._matches) > 1:
                total -= len(self._matches.popitem(last=False)[1])
        return found

    def _index_search(self, index: FieldIndex, column: VectorColumn, vectors: FloatArray, k: int,
                      metric: DistanceMetric, allowed: Labels | None, params: SearchParams, keep: bool
                      ) -> list[list[Hit] | None]:
        """Each query's (row of ``vectors``) k best by the index (scored as ``ranking`` says); None for a query
        the index found fewer than k of the matches for. One faiss search and one read of the hits serve every
        query; a query whose order the candidates leave open is searched again on its own."""
        ef_search = params.ef_search or self.settings["ef_search"]
        nprobe = params.nprobe or self.settings["nprobe"] or auto_nprobe(index.spec.nlist)
        available = index.size if allowed is None else len(allowed)
        if not available:
            return [[] for _ in vectors]
        scan = _Scan(index, column, metric, allowed, available, ef_search, nprobe, keep)
        want = min(k + 1, available)
        distances, labels = index.search(vectors, want, ef_search=ef_search, nprobe=nprobe, allowed=allowed)
        return self._ranked(scan, vectors, distances, labels, k, want, exhaustive=False)

    def _ranked(self, scan: _Scan, queries: FloatArray, distances: np.ndarray, labels: Labels, k: int, want: int,
                *, exhaustive: bool) -> list[list[Hit] | None]:
        """The k best of each query's ``want`` candidates (its row of ``labels``), or, where faiss' order
        leaves them open (a candidate beyond could tie with the k-th), of a wider search; None for a query the
        index finds fewer than k of the matches for, even exhaustively. One read serves every query's hits."""
        if scan.index.exact_distances:
            scores, noise = faiss_scores(distances, labels, scan.metric), np.zeros(len(queries))
        else:  # scored again from the stored vectors
            rids, matrix = self._db.vectors(scan.column, np.unique(labels[labels >= 0]))
            scores, noise = pair_scores(rids, matrix, labels, queries, scan.metric)
        short = (scores > -np.inf).sum(axis=1) < want
        kth_best = kth(scores, k)
        open_order = ties_beyond(scores, kth_best, noise, scan.index.spec.quantizer == "none") & (want < scan.available)
        groups = {int(i): best_group(labels[i], scores[i], kth_best[i]) for i in np.flatnonzero(~short & ~open_order)}
        rows = self._db.hit_rows(sorted({int(rid) for group, _ in groups.values() for rid in group}), scan.keep)
        ranked: list[list[Hit] | None] = []
        for i, query in enumerate(queries):
            if i in groups:
                group, group_scores = groups[i]
                ranked.append(top_hits(rows, group.tolist(), group_scores.tolist(), k, scan.column.name))
            elif short[i]:  # the index missed matches (IVF lists too small, HNSW filtered too hard)
                ranked.append(None if exhaustive else self._search_again(scan, query, k, want, exhaustive=True))
            else:
                ranked.append(self._search_again(scan, query, k, min(scan.available, 2 * want), exhaustive=exhaustive))
        return ranked

    def _search_again(self, scan: _Scan, query: FloatArray, k: int, want: int, *, exhaustive: bool
                      ) -> list[Hit] | None:
        ef_search, nprobe = scan.ef_search, scan.nprobe
        if exhaustive:
            ef_search, nprobe = max(ef_search, 4 * want, 256), scan.index.spec.nlist
        distances, labels = scan.index.search(query[None, :], want, ef_search=ef_search, nprobe=nprobe,
                                              allowed=scan.allowed)
        return self._ranked(scan, query[None, :], distances, labels, k, want, exhaustive=exhaustive)[0]

    # -- indexes --------------------------------------------------------------------------------
    def _plan(self, column: VectorColumn, n: int) -> IndexSpec:
        return plan(self.settings, self.metric, column.dims, n)

    def _index_path(self, column: VectorColumn) -> Path:
        return self.path / INDEX_DIR / f"field-{column.slot}.faiss"

    def _header(self, column: VectorColumn) -> dict[str, Any]:
        return {"store": self._db.uuid, "field": column.name, "dims": column.dims}

    def _load_index(self, column: VectorColumn) -> FieldIndex:
        """The field's saved index brought up to date, or a new one built from the records."""
        live = self._db.labels(column)
        path = self._index_path(column)
        if path.exists():
            try:
                index = FieldIndex.load(path, self._header(column))
            except ValueError as err:
                logger.warning("faiss index %s is unusable (%s); rebuilding it from the records", path, err)
            else:
                if self._fits(index, column, len(live)):
                    self._catch_up(index, column, live)
                    return index
                logger.info("faiss index %s was built with other settings; rebuilding it", path)
        return self._build_index(column)

    def _fits(self, index: FieldIndex, column: VectorColumn, n: int) -> bool:
        wanted = self._plan(column, n)
        fixed = bool(self.settings["nlist"])
        return still_fits(index.spec, index.trained_on, wanted, n, fixed) and not index.needs_compaction

    def _build_index(self, column: VectorColumn) -> FieldIndex:
        """The planned index over every vector stored now (one consistent read of the table).

        Writes may commit while it builds: the caller catches the result up under the write lock. It
        must not be caught up against an earlier list of labels, which would take vectors written in
        between for deleted ones (and HNSW never forgets a deleted label).
        """
        live = self._db.labels(column)
        spec = self._plan(column, len(live))
        train = None
        if spec.training_size:
            sample = np.random.default_rng(0).choice(live, min(len(live), _TRAIN_SAMPLE), replace=False)
            _, train = self._db.vectors(column, np.sort(sample))
        return FieldIndex.build(spec, len(live), train, self._db.vector_batches(column, _BATCH))

    def _catch_up(self, index: FieldIndex, column: VectorColumn, live: Labels) -> None:
        """Make ``index`` hold exactly the ``live`` labels (adding vectors it lacks from SQLite)."""
        have = index.labels()
        index.remove(np.setdiff1d(np.setdiff1d(have, live, assume_unique=True), index.dead, assume_unique=True))
        missing = np.setdiff1d(live, have, assume_unique=True)
        for start in range(0, len(missing), _BATCH):
            index.add(*self._db.vectors(column, missing[start:start + _BATCH]))

    def _save_index(self, column: VectorColumn, index: FieldIndex) -> None:
        index.save(self._index_path(column), self._header(column))

    def _save_all(self) -> None:
        with self._rw.read():
            for name, index in self._indexes.items():
                if index.dirty:
                    self._save_index(self._db.columns[name], index)

    def _schedule_rebuilds(self) -> None:
        for name, column in self._db.columns.items():
            index = self._indexes.get(name)
            if name in self._rebuilds or self._closed:
                continue
            if index is None or not self._fits(index, column, index.size):
                self._rebuilds[name] = asyncio.get_running_loop().create_task(self._rebuild(column))

    async def _rebuild(self, column: VectorColumn) -> None:
        """Build the planned index from a snapshot of the records while the old one serves, then swap; then
        plan again, since writes made during the build (which scheduled nothing while it ran) may call for
        another kind of index."""
        swapped = False
        try:
            built = await asyncio.to_thread(self._build_index, column)
            async with self._write_lock:
                if self._closed or self._db.columns.get(column.name) != column:
                    return  # closed or dropped meanwhile
                await asyncio.to_thread(self._swap, column, built)
                swapped = True
        except Exception:
            logger.exception("rebuilding the faiss index of field %r in %s failed", column.name, self.path)
        finally:
            self._rebuilds.pop(column.name, None)
        if swapped:
            self._schedule_rebuilds()

    def _swap(self, column: VectorColumn, built: FieldIndex) -> None:
        self._catch_up(built, column, self._db.labels(column))  # writes made during the build
        with self._rw.write():
            self._indexes[column.name] = built
        with self._rw.read():
            self._save_index(column, built)


@dataclass(frozen=True)
class _Scan:
    """One field's index searched for one filter (``allowed``: the matching labels, None for all)."""

    index: FieldIndex
    column: VectorColumn
    metric: DistanceMetric
    allowed: Labels | None
    available: int
    ef_search: int
    nprobe: int
    keep: bool  # the results want every vector field too


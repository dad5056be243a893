"""``ChromaStore``: vectorknobs records in Chroma, embedded or client/server.

    store = await vectorknobs.connect("chroma:///var/data/chroma?collection=docs")   # PersistentClient
    store = await vectorknobs.connect("chroma+http://localhost:8000/docs")            # a `chroma run` server

**Several vector fields.** A Chroma entry has one embedding, so each vector field ``F`` gets a collection
``<base>.F.vectors`` and a record has an entry in the collection of each of its vector fields; records
without vectors live in ``<base>``. One of a record's entries is its *home* (its first vector field's,
by name) and holds what rebuilds the record exactly; the others are *guests*. Every entry carries the
record's flattened metadata, so a filtered search on any vector field is a single Chroma query, and a
record with one vector field (the common case) is exactly one Chroma entry, written in one call. The
field names and dimensions live in ``<base>.fields`` (with the layout version in its metadata), the record
signatures written so far (the kinds of their fields, for ``exists`` and ``None`` filters) in
``<base>.kinds``. ``layout.py`` has the encoding, ``where.py`` the filter translation.

**Exact results.** Chroma's HNSW is approximate. A search over at most ``exact_limit`` vectors (a
collection that small, or the records a filter lets through) reads those vectors and scores them with
``vectorknobs.metrics.exact_scores``, like the reference store. A larger one asks HNSW for the k nearest
and scores them from Chroma's own distances (``distances.py``: ``l2`` is squared, ``ip`` is ``1 - dot``),
float32 arithmetic on the stored vectors; if HNSW returns fewer than k while more records match, the
matches are scored exactly. Embeddings are read only when the results want the records' vectors. The size
of each vector collection is taken from this store's own writes and re-read from Chroma at most once a
second, to decide which path a search takes without a request per search.

**Writes.** Chroma has no transactions: a batch is checked against what is stored (duplicates, missing
ids) under this store's write lock before anything is written, then written collection by collection,
guests before homes (the home entry commits a record; a guest without its home is never read). A batch
split by Chroma's batch limit, or a record spread over several collections, is therefore not atomic
against a crash or a lost server (``transactions=False``). Readers of this store never see half a
batch: reads share a lock that writes take alone. Other clients of the same Chroma data can.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
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
    StoreConfig,
    VectorQuery,
    VectorStore,
    WriteMode,
)
from vectorknobs.evaluate import matches, sort_records
from vectorknobs.filters import Filter
from vectorknobs.metrics import exact_scores

from vectorknobs_chroma.client import Chroma, Collection, Entries, Metadata
from vectorknobs_chroma.distances import scores as distance_scores
from vectorknobs_chroma.layout import (
    GUEST,
    HOME,
    NO_VECTOR,
    Encoded,
    Home,
    encode_batch,
    encode_columns,
    entry_vectors,
    is_home,
    parse_home,
)
from vectorknobs_chroma.options import METRIC_KEY, OPTIONS, hnsw_configuration, parse_collection
from vectorknobs_chroma.rwlock import RWLock
from vectorknobs_chroma.where import Signatures, Translation, and_where, translate

T = TypeVar("T")
HTTP_SCHEME = "chroma+http"
DEFAULT_PORT = 8000
#: seconds a vector collection's cached size is trusted (this store's own writes keep it exact)
SIZE_TTL = 1.0
#: batches at least this big are encoded and decoded in a worker thread
THREAD_RECORDS = 256
_PLAIN = {"hnsw": {"space": "l2"}}  # the records, fields and kinds collections: placeholder embeddings only
LAYOUT_KEY, LAYOUT = "vectorknobs_layout", 2  # in the fields collection's metadata (layout.py)
_NOT_GUEST = {GUEST: {"$ne": True}}


class ChromaStore(VectorStore):
    """Records in Chroma collections: one per vector field, plus one for records without vectors."""

    capabilities = Capabilities(
        per_query_metric=False,  # an HNSW index serves the metric its collection was created with
        persistence=True,
        transactions=False,
        exact_search=False,  # exact up to exact_limit vectors; HNSW (rescored exactly) above
        extras={"engine": "Chroma (chromadb)", "index": "hnsw", "exact": "up to exact_limit vectors"},
    )
    options: ClassVar[Mapping[str, Option]] = OPTIONS
    shared_schema = True  # other clients of a server, or other stores on a directory, add fields too

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self.http = config.scheme == HTTP_SCHEME
        collection = self.settings["collection"]
        if self.http:
            if not config.host:
                raise ConfigError(f"{HTTP_SCHEME} needs a server: {HTTP_SCHEME}://host:8000/collection")
            named = (config.path or "").strip("/")
            if named and "collection" in config.params and named != collection:
                raise ConfigError(f"give the collection once, in the URL path or as 'collection': {config.redacted()}")
            if named:
                try:
                    collection = parse_collection(named)
                except ValueError as err:
                    raise ConfigError(f"{config.redacted()}: the URL path names the collection: {err}") from None
        elif config.host or not config.path:
            raise ConfigError(
                f"chroma:// needs an absolute directory: chroma:///path/to/dir (or {HTTP_SCHEME}://host:port/"
                f"collection for a server), got {config.redacted()!r}"
            )
        self.base: str = collection
        self._chroma: Chroma | None = None
        self._records: Collection | None = None
        self._fields: Collection | None = None
        self._kinds: Collection | None = None
        self._signatures = Signatures()
        self._vectors: dict[str, Collection] = {}
        self._dims: dict[str, int] = {}
        self._names: set[str] = set()
        self._sizes: dict[str, tuple[int, float]] = {}
        self._rw = RWLock()
        self._writes: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _open(self) -> None:
        settings = self.settings
        if self.http:
            assert self.config.host is not None
            self._chroma = await Chroma.http(
                self.config.host,
                self.config.port or DEFAULT_PORT,
                ssl=settings["ssl"],
                tenant=settings["tenant"],
                database=settings["database"],
                seconds=settings["timeout"],
                write_batch=settings["write_batch_size"],
            )
        else:
            assert self.config.path is not None
            self._chroma = await Chroma.embedded(
                Path(self.config.path), settings["tenant"], settings["database"], settings["write_batch_size"]
            )
        try:
            await self._open_collections()
        except BaseException:
            await self._chroma.close()
            raise

    async def _open_collections(self) -> None:
        chroma = self._chroma
        assert chroma is not None
        self._records = await chroma.collection(self.base, _PLAIN)
        self._fields = await chroma.collection(f"{self.base}.fields", _PLAIN, {LAYOUT_KEY: LAYOUT})
        if self._fields.metadata.get(LAYOUT_KEY) != LAYOUT:
            if await self._fields.count():
                raise CorruptStoreError(
                    f"collection {self.base!r} of {self.config.redacted()} was written by an earlier development "
                    f"version of vectorknobs-chroma (metadata layout {self._fields.metadata.get(LAYOUT_KEY, 1)}); "
                    f"this version reads layout {LAYOUT}: write its records again into a new collection"
                )
            await chroma.call(f"configure {self._fields.name}", self._fields.raw.modify, metadata={LAYOUT_KEY: LAYOUT})
        self._kinds = await chroma.collection(f"{self.base}.kinds", _PLAIN)
        await self._load_signatures()  # the fields: by _load_schema, which the core calls after _open

    async def _load_fields(self) -> None:
        """Take in the fields written so far (by this store, or by others since it last looked): their names,
        and each vector field's dimension and collection."""
        assert self._chroma is not None
        assert self._fields is not None
        known = await self._fields.get(include=["metadatas"])
        self._names.update(known.ids)
        for name, meta in zip(known.ids, known.metadatas, strict=True):
            if meta and meta.get("dims") and name not in self._vectors:
                collection = await self._chroma.existing(self._vector_name(name))
                if collection is not None:
                    self._check_collection(name, collection)
                    await self._apply_ef_search(collection)
                    self._vectors[name] = collection
                    self._dims[name] = int(meta["dims"])
        self.schema.fields.update(self._names)  # what the core checks queries and writes against
        for name, dims in self._dims.items():
            self.schema.vectors.setdefault(name, dims)

    async def _see_others(self) -> None:
        """Before a read that spans collections: take in the vector fields others added (a store that shares
        its data: a client of a server, or one of several stores on a directory in this process)."""
        assert self._chroma is not None
        if self._chroma.shared:
            await self._load_fields()

    def _check_collection(self, field: str, collection: Collection) -> None:
        made_for = collection.metadata.get(METRIC_KEY)
        if made_for != self.metric.value:
            raise ConfigError(
                f"vector field {field!r} of {self.config.redacted()} is indexed for metric {made_for!r}; connect "
                f"with ?metric={made_for} (an HNSW index serves the metric it was built for)"
            )

    async def _apply_ef_search(self, collection: Collection) -> None:
        """An ``ef_search`` given in the config replaces the collection's (the one HNSW option Chroma lets
        change after creation)."""
        wanted = self.settings["ef_search"]
        if "ef_search" in self.config.params and collection.configuration["hnsw"].get("ef_search") != wanted:
            assert self._chroma is not None
            await self._chroma.call(
                f"configure {collection.name}", collection.raw.modify, configuration={"hnsw": {"ef_search": wanted}}
            )

    async def _close(self) -> None:
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._chroma is not None:
            await self._chroma.close()

    async def _load_signatures(self) -> None:
        """Add the signatures registered since this store last looked (they are never unregistered)."""
        assert self._kinds is not None
        self._signatures.add((await self._kinds.get()).ids)

    async def _load_schema(self) -> Schema:
        async with self._rw.read():
            await self._load_fields()
        return Schema(fields=set(self._names), vectors=dict(self._dims))

    def _vector_name(self, field: str) -> str:
        return f"{self.base}.{field}.vectors"

    def _collections(self) -> list[tuple[str | None, Collection]]:
        """Every collection holding records: ``(vector field or None, collection)``."""
        assert self._records is not None
        return [(None, self._records), *self._vectors.items()]

    def index_info(self) -> dict[str, dict[str, Any]]:
        """Each vector field's HNSW index: Chroma's configuration of its collection, and its size."""
        return {
            name: {
                "kind": "hnsw",
                "collection": collection.name,
                **collection.configuration.get("hnsw", {}),
                "m": collection.configuration.get("hnsw", {}).get("max_neighbors"),
                "size": self._sizes.get(collection.name, (None, 0.0))[0],
            }
            for name, collection in self._vectors.items()
        }

    # -- writes -------------------------------------------------------------------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        await self._write_encoded(len(records), lambda unit: encode_batch(records, unit), mode)

    async def _write_batch(self, batch: RecordBatch, mode: WriteMode) -> None:
        await self._write_encoded(len(batch), lambda unit: encode_columns(batch, unit), mode)

    async def _write_encoded(self, size: int, encode: Callable[[bool], list[Encoded]], mode: WriteMode) -> None:
        """Write ``size`` records as ``encode(unit_vectors)`` gives their entries (encoded in a thread when many)."""
        cosine = self.metric is DistanceMetric.COSINE
        encoded = await _maybe_in_thread(size, lambda: encode(cosine))
        await self._exclusive(self._write_locked(encoded, mode))

    async def _exclusive(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a write under the write lock, to its end even if the caller is cancelled meanwhile (a
        cancelled write then either happened entirely or not at all, as far as this store can tell)."""

        async def locked() -> T:
            async with self._rw.write():
                return await work

        task = asyncio.ensure_future(locked())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def _write_locked(self, encoded: list[Encoded], mode: WriteMode) -> None:
        chroma, fields = self._chroma, self._fields
        assert chroma is not None
        assert fields is not None
        new_vectors = {name: dims for e in encoded for name, dims in e.dims.items() if name not in self._dims}
        configuration = hnsw_configuration(self.settings, self.metric)
        for name in sorted(new_vectors):
            if name not in self._vectors:
                collection = await chroma.collection(
                    self._vector_name(name), configuration, {METRIC_KEY: self.metric.value}
                )
                self._check_collection(name, collection)
                self._vectors[name] = collection
        ids = [e.id for e in encoded]
        before = {c.name: await self._stored_metadata(c, ids) for _, c in self._collections()}
        stored = {i for entries in before.values() for i, meta in entries.items() if is_home(meta)}
        if mode is WriteMode.CREATE and (taken := [i for i in ids if i in stored]):
            raise self.duplicate_ids(taken)
        if mode is WriteMode.UPDATE and (missing := [i for i in ids if i not in stored]):
            raise self.missing_ids(missing)
        signatures = {e.signature for e in encoded if e.signature is not None} - self._signatures.known
        if signatures:  # registered before the entries that have them: a filter on kinds finds every entry
            assert self._kinds is not None
            await self._kinds.write(sorted(signatures), [NO_VECTOR] * len(signatures), [None] * len(signatures),
                                    replace=True)
            self._signatures.add(signatures)
        names = set().union(*(e.names for e in encoded)) - self._names
        if names:
            await fields.write(
                sorted(names),
                [NO_VECTOR] * len(names),
                [{"dims": new_vectors.get(n, 0)} for n in sorted(names)],
                replace=True,
            )
            self._names |= names
            self._dims.update(new_vectors)
        guests: dict[str | None, list[tuple[str, npt.NDArray[np.float32], Metadata]]] = {}
        homes: dict[str | None, list[tuple[str, npt.NDArray[np.float32], Metadata]]] = {}
        for e in encoded:
            for field, (vector, metadata) in e.entries.items():
                (homes if field == e.home else guests).setdefault(field, []).append((e.id, vector, metadata))
        for plan in (guests, homes):
            for field, items in plan.items():
                target = self._vectors[field] if field else self._records
                assert target is not None
                await self._put(target, items, before.get(target.name, {}))
        for field, collection in self._collections():
            placed = {i for i, _, _ in homes.get(field, [])} | {i for i, _, _ in guests.get(field, [])}
            stale = [i for i in before.get(collection.name, {}) if i not in placed]
            if stale:
                await collection.delete(stale)
                self._resize(collection, -len(stale))

    async def _stored_metadata(self, collection: Collection, ids: list[str]) -> dict[str, Metadata]:
        found = await collection.get(ids, include=["metadatas"])
        return dict(zip(found.ids, found.metadatas, strict=True))

    async def _put(
        self,
        collection: Collection,
        items: list[tuple[str, npt.NDArray[np.float32], Metadata]],
        before: Mapping[str, Metadata],
    ) -> None:
        """Add new entries, replace existing ones (Chroma merges metadata: stale keys are set to None)."""
        new = [item for item in items if item[0] not in before]
        if new:
            await collection.write(
                [i for i, _, _ in new], [v for _, v, _ in new], [m for _, _, m in new], replace=False
            )
            self._resize(collection, len(new))
        old = [item for item in items if item[0] in before]
        if old:
            metadatas = [_replacing(before[i], m) for i, _, m in old]
            await collection.write([i for i, _, _ in old], [v for _, v, _ in old], metadatas, replace=True)

    def _resize(self, collection: Collection, delta: int) -> None:
        if collection.name in self._sizes:
            size, stamp = self._sizes[collection.name]
            self._sizes[collection.name] = (size + delta, stamp)

    async def _delete(self, ids: list[str]) -> int:
        return await self._exclusive(self._delete_locked(ids))

    async def _delete_locked(self, ids: list[str]) -> int:
        before = [(c, await self._stored_metadata(c, ids)) for _, c in self._collections()]
        stored = {i for _, entries in before for i, meta in entries.items() if is_home(meta)}
        for collection, entries in sorted(before, key=lambda item: not any(map(is_home, item[1].values()))):
            if entries:  # homes first: a record is gone once its home entry is
                await collection.delete(list(entries))
                self._resize(collection, -len(entries))
        return len(stored)

    async def _drop(self) -> None:
        await self._exclusive(self._drop_locked())

    async def _drop_locked(self) -> None:
        chroma = self._chroma
        assert chroma is not None
        prefix = f"{self.base}."
        ours = {self.base, f"{self.base}.fields", f"{self.base}.kinds", *(c.name for c in self._vectors.values())}
        ours |= {n for n in await chroma.names() if n.startswith(prefix) and n.endswith(".vectors")}
        for name in sorted(ours):
            await chroma.delete(name)
        self._vectors.clear()
        self._dims.clear()
        self._names.clear()
        self._sizes.clear()
        self._signatures = Signatures()
        await self._open_collections()

    # -- reads --------------------------------------------------------------------------------------
    async def _read(self, ids: list[str]) -> list[Record | None]:
        async with self._rw.read():
            await self._see_others()
            found = await self._fetch(list(dict.fromkeys(ids)))
        out: list[Record | None] = []
        seen: set[str] = set()
        for i in ids:
            record = found.get(i)
            out.append(record.copy() if record is not None and i in seen else record)
            seen.add(i)
        return out

    async def _fetch(self, ids: Sequence[str], known: Mapping[str | None, _ById] | None = None) -> dict[str, Record]:
        """Whole records by id. ``known``: entries already read (see ``_by_id``), by vector field; without
        it, every collection is read once."""
        if not ids:
            return {}
        entries: dict[str | None, _ById] = {}
        if known is None:
            for field, collection in self._collections():
                include = ["metadatas"] if field is None else ["metadatas", "embeddings"]
                entries[field] = _by_id(await collection.get(ids, include=include))
        else:
            entries = {field: dict(found) for field, found in known.items()}
            homeless: dict[str | None, list[str]] = {}
            for i in ids:
                if not any(i in got and is_home(got[i][0]) for got in entries.values()):
                    guest = next((got[i][0] for got in entries.values() if i in got), None)
                    homeless.setdefault((guest or {}).get(HOME) or None, []).append(i)
            await self._fill(entries, homeless, ["metadatas", "embeddings"])
        homes: dict[str, tuple[str | None, Home]] = {}
        for field, got in entries.items():
            for i, (meta, _) in got.items():
                if is_home(meta):
                    homes[i] = (field, parse_home(i, meta))
        missing: dict[str | None, list[str]] = {}
        for i, (_, home) in homes.items():
            for name in home.vector_fields:
                if i not in entries.get(name, {}):
                    missing.setdefault(name, []).append(i)
        await self._fill(entries, missing, ["metadatas", "embeddings"])

        def build() -> dict[str, Record]:
            out = {}
            for i, (_, home) in homes.items():
                vectors = {name: entries[name][i][1] for name in home.vector_fields if i in entries.get(name, {})}
                if len(vectors) == len(home.vector_fields):  # else deleted by another client meanwhile
                    out[i] = home.record(vectors)
            return out

        return await _maybe_in_thread(len(homes), build)

    async def _hit_records(self, ids: Sequence[str], field: str, known: _ById, keep: bool
                           ) -> dict[str, tuple[Record, str | None]]:
        """The records of search hits ``ids`` of vector field ``field``, whose entries there are ``known``, with
        the field's ``source_field``: whole (``keep``), or without their vectors, from their home entries alone."""
        if keep:
            return {i: (record, None) for i, record in (await self._fetch(ids, {field: known})).items()}
        entries: dict[str | None, _ById] = {field: known}
        away: dict[str | None, list[str]] = {}
        for i in ids:
            meta = known[i][0]
            if not is_home(meta):
                away.setdefault((meta or {}).get(HOME) or None, []).append(i)
        await self._fill(entries, away, ["metadatas"])
        homes = {i: got[i][0] for got in entries.values() for i in ids if i in got and is_home(got[i][0])}
        return {i: parse_home(i, meta).bare(field) for i, meta in homes.items()}  # a missing home: deleted

    async def _fill(
        self, entries: dict[str | None, _ById], wanted: Mapping[str | None, list[str]], include: list[str]
    ) -> None:
        for field, ids in wanted.items():
            if field is not None and field not in self._vectors:  # a field another store added since
                await self._see_others()
            collection = self._records if field is None else self._vectors.get(field)
            if collection is not None and ids:
                fetched = _by_id(await collection.get(ids, include=include if field else ["metadatas"]))
                entries.setdefault(field, {}).update(fetched)

    async def _search(self, query: Query) -> list[Record]:
        async with self._rw.read():
            await self._see_others()
            t = await self._translate(query.where)
            if t.exact and not query.order:
                ids = sorted(await self._matching_ids(t))
            else:
                found = await self._candidates(t, query.where)
                if query.order:
                    found = sort_records(found, [(key.path, key.descending) for key in query.order])
                else:
                    found.sort(key=lambda r: r.key)
                ids = [r.key for r in found]
            end = None if query.max_results is None else query.skip + query.max_results
            page = ids[query.skip : end]
            records = await self._fetch(page)
        return [records[i] for i in page if i in records]

    async def _count(self, where: Filter | None) -> int:
        async with self._rw.read():
            await self._see_others()
            t = await self._translate(where)
            if not t.exact:
                return len(await self._candidates(t, where))
            if t.where is None and t.ids is None:
                total = 0
                for field, collection in self._collections():
                    total += await collection.count()
                    if field is not None:
                        total -= len(await collection.get(where={GUEST: True}))
                return total
            return len(await self._matching_ids(t))

    async def _stream(self, where: Filter | None, batch_size: int) -> AsyncIterator[list[Record]]:
        async with self._rw.read():
            await self._see_others()
            t = await self._translate(where)
            if t.exact:
                ids = sorted(await self._matching_ids(t))
            else:
                ids = sorted(r.key for r in await self._candidates(t, where))
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            async with self._rw.read():
                found = await self._fetch(chunk)
            batch = [found[i] for i in chunk if i in found and (where is None or matches(found[i], where))]
            if batch:  # records deleted or changed since the ids were listed are left out
                yield batch

    async def _translate(self, where: Filter | None) -> Translation:
        """Chroma's form of ``where``. One that tests the kinds of fields is made against the signatures
        registered now: another store sharing the data (``Chroma.shared``) may have registered more since this
        one last looked."""
        t = translate(where, self._dims, self._signatures)
        if t.kinds_used and self._chroma is not None and self._chroma.shared:
            await self._load_signatures()
            t = translate(where, self._dims, self._signatures)
        return t

    async def _matching_ids(self, t: Translation) -> set[str]:
        """Ids of the records an exact translation selects."""
        ids: set[str] = set()
        for field, collection in self._collections():
            where = t.where if field is None else and_where(t.where, _NOT_GUEST)
            found = await collection.get(None if t.ids is None else sorted(t.ids), where=where)
            ids.update(found.ids)
        return ids

    async def _candidates(self, t: Translation, where: Filter | None) -> list[Record]:
        """Skeletons (vectors left out) of the records matching ``where``: those the translation selects,
        checked with ``matches`` when it selects a superset."""
        homes: list[Home] = []
        for field, collection in self._collections():
            clause = t.where if field is None else and_where(t.where, _NOT_GUEST)
            found = await collection.get(None if t.ids is None else sorted(t.ids), where=clause, include=["metadatas"])
            homes.extend(parse_home(i, meta) for i, meta in zip(found.ids, found.metadatas, strict=True))

        def check() -> list[Record]:
            records = [home.record(None) for home in homes]
            return records if t.exact or where is None else [r for r in records if matches(r, where)]

        return await _maybe_in_thread(len(homes), check)

    # -- vector search ------------------------------------------------------------------------------
    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        part = query.vector
        assert part.vector is not None
        async with self._rw.read():
            collection = self._vectors.get(part.field)
            if collection is None:
                return []
            search = _Search(self, collection, part.field, part.vector, part.k, metric, part.include_vectors)
            t = await self._translate(query.where)
            if not t.exact:  # the matches are known only after checking in Python: search among them
                return await search.among(
                    [r.key for r in await self._candidates(t, query.where) if part.field in r.fields]
                )
            if t.ids is not None:  # Chroma's query fails on ids it does not hold: find those it does
                return await search.among((await collection.get(sorted(t.ids), where=t.where)).ids)
            if await self._size(collection) <= self.settings["exact_limit"]:
                return await search.exact(where=t.where)
            hits = await search.nearest(where=t.where)
            if len(hits) < part.k:  # HNSW came back short: are there more matches?
                matching = (await collection.get(where=t.where)).ids
                if len(matching) > len(hits):
                    return await search.exact(ids=matching)
            return hits

    async def _vector_search_batch(self, queries: list[VectorQuery], metric: DistanceMetric) -> list[list[Hit]]:
        """A batch that HNSW answers (an exact filter, a big enough collection) goes to Chroma as one query
        and its hits are read back with one fetch; any other batch, and any query HNSW left short, is
        searched one by one."""
        part = queries[0].vector
        answers: list[list[Hit] | None] = [None] * len(queries)
        async with self._rw.read():
            collection = self._vectors.get(part.field)
            if collection is None:
                return [[] for _ in queries]
            t = await self._translate(queries[0].where)
            if t.exact and t.ids is None and await self._size(collection) > self.settings["exact_limit"]:
                keep = part.include_vectors
                searches = [_Search(self, collection, part.field, q.vector.vector, part.k, metric, keep)  # type: ignore[arg-type]
                            for q in queries]
                found = await collection.query_many([s.vector for s in searches], part.k, where=t.where,
                                                    include=_Search.include_nearest(keep))
                picked = [search.pick_nearest(entries) for search, entries in zip(searches, found, strict=True)]
                known: _ById = {}
                for _, _, entries in picked:
                    known.update(entries)
                records = await self._hit_records(list(known), part.field, known, keep)
                for n, (best, scores, _) in enumerate(picked):
                    hits = [Hit(records[i][0], score, records[i][1]) for i, score in zip(best, scores, strict=True)
                            if i in records]
                    answers[n] = hits if len(hits) >= part.k else None  # short: the single search decides
        return [hits if hits is not None else await self._vector_search(q, metric)
                for q, hits in zip(queries, answers, strict=True)]

    async def _size(self, collection: Collection) -> int:
        cached = self._sizes.get(collection.name)
        now = time.monotonic()
        if cached is None or now - cached[1] > SIZE_TTL:
            cached = (await collection.count(), now)
            self._sizes[collection.name] = cached
        return cached[0]


class _Search:
    """One k-nearest search on one vector field's collection."""

    def __init__(
        self,
        store: ChromaStore,
        collection: Collection,
        field: str,
        vector: npt.NDArray[np.float32],
        k: int,
        metric: DistanceMetric,
        keep: bool,
    ) -> None:
        self.store, self.collection, self.field, self.vector, self.k, self.metric = (
            store,
            collection,
            field,
            vector,
            k,
            metric,
        )
        self.keep = keep  # the results want the records' vectors

    async def among(self, ids: Sequence[str]) -> list[Hit]:
        """The k best of ``ids`` (all held by the collection): exact when they are few, else HNSW."""
        if len(ids) <= self.store.settings["exact_limit"]:
            return await self.exact(ids=ids)
        hits = await self.nearest(ids=ids)
        return hits if len(hits) >= min(self.k, len(ids)) else await self.exact(ids=ids)

    async def exact(self, *, where: dict[str, Any] | None = None, ids: Sequence[str] | None = None) -> list[Hit]:
        """Score every matching vector exactly; the k best."""
        if ids is not None and not ids:
            return []
        found = await self.collection.get(
            None if ids is None else sorted(ids), where=where, include=["metadatas", "embeddings"]
        )
        return await self.ranked(found)

    async def nearest(self, *, where: dict[str, Any] | None = None, ids: Sequence[str] | None = None) -> list[Hit]:
        """HNSW's k nearest, scored from Chroma's own distances (float32 arithmetic on the stored vectors)."""
        found = await self.collection.query(
            self.vector,
            self.k,
            where=where,
            ids=None if ids is None else sorted(ids),
            include=self.include_nearest(self.keep),
        )
        return await self.hits(*self.pick_nearest(found))

    @staticmethod
    def include_nearest(keep: bool) -> list[str]:
        """What an HNSW query reads: the vectors only when the results want them."""
        return ["metadatas", "distances", "embeddings"] if keep else ["metadatas", "distances"]

    def pick(self, found: Entries) -> tuple[list[str], list[float], _ById]:
        """The ids of the k best of ``found`` by exact score (ties by id), their scores, and their entries."""
        if not len(found):
            return [], [], {}
        vectors = entry_vectors(found.metadatas, found.embeddings)
        return self._best(found, exact_scores(vectors, self.vector, self.metric).tolist(), vectors)

    def pick_nearest(self, found: Entries) -> tuple[list[str], list[float], _ById]:
        """``pick`` of what an HNSW query found, by the scores of Chroma's distances."""
        if not len(found):
            return [], [], {}
        vectors = entry_vectors(found.metadatas, found.embeddings) if self.keep else [None] * len(found)
        return self._best(found, distance_scores(found.distances, self.metric, self.vector), vectors)

    def _best(self, found: Entries, scores: list[float], vectors: Any) -> tuple[list[str], list[float], _ById]:
        group: list[int] = list(range(len(found)))
        if len(found) > self.k:  # the k best and everything tied with the k-th
            kth = sorted(scores, reverse=True)[self.k - 1]
            group = [i for i, score in enumerate(scores) if score >= kth]
        order = sorted(group, key=lambda i: (-scores[i], found.ids[i]))[: self.k]
        known = {found.ids[i]: (found.metadatas[i], vectors[i]) for i in order}
        return [found.ids[i] for i in order], [scores[i] for i in order], known

    async def hits(self, best: list[str], scores: list[float], known: _ById) -> list[Hit]:
        """The hits of the ids ``best`` with their ``scores``, from their entries ``known`` in this collection."""
        if not best:
            return []
        records = await self.store._hit_records(best, self.field, known, self.keep)
        return [Hit(records[i][0], score, records[i][1]) for i, score in zip(best, scores, strict=True)
                if i in records]

    async def ranked(self, found: Entries) -> list[Hit]:
        """The k best of ``found`` by exact score, ties by id, as hits."""
        return await self.hits(*self.pick(found))


_ById: TypeAlias = dict[str, tuple[Metadata, Any]]


def _by_id(found: Entries) -> _ById:
    """``{id: (metadata, vector)}``; vectors as written (cosine ones restored), None when not read."""
    vectors: Any = entry_vectors(found.metadatas, found.embeddings) if len(found.embeddings) else [None] * len(found)
    metadatas: Sequence[Metadata] = found.metadatas or [None] * len(found)
    return {i: (m, v) for i, m, v in zip(found.ids, metadatas, vectors, strict=True)}


def _replacing(old: Metadata, new: Metadata) -> Metadata:
    """Metadata that turns ``old`` into ``new`` under Chroma's merging upsert."""
    merged: dict[str, Any] = {key: None for key in (old or {}) if key not in (new or {})}
    merged.update(new or {})
    return merged or None


async def _maybe_in_thread(size: int, fn: Callable[[], T]) -> T:
    """``fn()``, in a worker thread when it handles many records (so the event loop keeps running)."""
    return await asyncio.to_thread(fn) if size >= THREAD_RECORDS else fn()


__all__ = ["HTTP_SCHEME", "ChromaStore"]

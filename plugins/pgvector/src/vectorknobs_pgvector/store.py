"""``PgvectorStore``: records and their vectors in one PostgreSQL table, searched with pgvector.

>>> store = await vectorknobs.connect("pgvector://app:secret@db:5432/app?table=docs")
>>> store = await vectorknobs.connect("pgvector+embedded:///var/lib/myapp/pg?table=docs")
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import asyncpg
from vectorknobs.batch import RecordBatch
from vectorknobs.capabilities import Capabilities
from vectorknobs.config import Option, StoreConfig
from vectorknobs.errors import CapabilityError, ConfigError, QueryError, StoreError, UnknownFieldError
from vectorknobs.filters import Filter
from vectorknobs.metrics import DistanceMetric
from vectorknobs.query import DEFAULT_VECTOR_FIELD, Query, VectorQuery
from vectorknobs.record import Record
from vectorknobs.store import Hit, Schema, VectorStore, WriteMode

from vectorknobs_pgvector import search
from vectorknobs_pgvector.embedded import EmbeddedServer, acquire_server, release_server
from vectorknobs_pgvector.failures import ConnectionLostError, is_connection_failure, translated
from vectorknobs_pgvector.indexes import (
    IndexKind,
    VectorIndex,
    comment_sql,
    create_sql,
    index_name,
    plan_index,
    probes_for,
)
from vectorknobs_pgvector.options import OPTIONS, IndexMode, VectorType
from vectorknobs_pgvector.pool import (
    Connection,
    ReadLane,
    apply_settings,
    initializer,
    is_open,
    keep_session,
    register_codecs,
    state_of,
)
from vectorknobs_pgvector.rows import hit_of, record_of, row_of, rows_of_batch
from vectorknobs_pgvector.sql import Params, order_sql, quote, where_sql
from vectorknobs_pgvector.tables import Table

T = TypeVar("T")
logger = logging.getLogger("vectorknobs_pgvector")
EMBEDDED_SCHEME = "pgvector+embedded"
COPY_ROWS = 64  # from this many rows a write goes through binary COPY instead of a pipelined INSERT
_THREAD_ROWS = 256  # encode bigger batches in a worker thread, off the event loop


@dataclass(frozen=True)
class SearchOptions:
    """Per-query index settings, set with ``store.search_options(...)``."""

    ef_search: int | None = None
    probes: int | None = None
    exact: bool = False


_search_options: contextvars.ContextVar[dict[int, SearchOptions]] = contextvars.ContextVar("vk_pg_search_options")
_NO_OPTIONS: dict[int, SearchOptions] = {}
_DEFAULT_OPTIONS = SearchOptions()


class PgvectorStore(VectorStore):
    """PostgreSQL + pgvector: one row per record, a vector column per vector field, SQL filters."""

    capabilities = Capabilities(
        per_query_metric=True,  # pgvector computes every metric exactly, whatever the index
        persistence=True,
        transactions=True,
        exact_search=True,  # exact until an ANN index exists (index=auto: from auto_index_rows vectors)
        max_dimensions=16_000,
        extras={"engine": "PostgreSQL + pgvector", "indexes": "hnsw, ivfflat (auto by size)", "ingest": "binary COPY"},
    )
    options: ClassVar[dict[str, Option]] = OPTIONS
    shared_schema = True  # other clients of the database add columns (and indexes) too

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self.embedded = config.scheme == EMBEDDED_SCHEME
        if self.embedded and (config.host or not config.path):
            raise ConfigError(
                f"{EMBEDDED_SCHEME}:// needs an absolute data directory: {EMBEDDED_SCHEME}:///path/to/pgdata, "
                f"got {config.redacted()!r}"
            )
        if self.settings["min_pool_size"] > self.settings["max_pool_size"]:
            raise ConfigError(
                f"min_pool_size={self.settings['min_pool_size']} exceeds max_pool_size="
                f"{self.settings['max_pool_size']}; lower min_pool_size or raise max_pool_size"
            )
        self.table = Table(self.settings["schema"], self.settings["table"])
        self._pool: Any = None
        self._lane: ReadLane | None = None
        self._server: EmbeddedServer | None = None
        self._connect_kwargs: dict[str, Any] = {}
        self._columns: dict[str, tuple[VectorType, int]] = {}
        self._names: set[str] = set()
        self._indexes: dict[tuple[str, DistanceMetric], VectorIndex] = {}
        #: SQL and bound values (but the query vector) of unfiltered vector searches, by (field, k, metric,
        #: include_vectors, through the index); cleared whenever the columns or indexes change
        self._search_sql: dict[tuple[str, int, DistanceMetric, bool, bool], tuple[str, str, Params, str, int]] = {}
        self._unchecked: dict[str, int] = {}  # vectors written per field since its last size check
        self._counted: dict[str, int] = {}  # vectors per field at its last size check
        self._table_ready = False
        self._extension = False  # pgvector is known to be installed: connections need its codecs
        self.where = ""

    # -- lifecycle ------------------------------------------------------------------------------------
    async def _open(self) -> None:
        settings = self.settings
        if self.embedded:
            assert self.config.path is not None
            self._server = await asyncio.to_thread(acquire_server, Path(self.config.path))
            kwargs: dict[str, Any] = {**self._server.connect_kwargs(), "database": settings["database"] or "postgres"}
        else:
            path_db = (self.config.path or "").strip("/") or None
            kwargs = {
                "host": settings["host"] or self.config.host, "port": self.config.port, "user": self.config.user,
                "password": self.config.password, "database": settings["database"] or path_db,
                "ssl": settings["sslmode"],
            }
        self._connect_kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self.where = _describe(self._connect_kwargs, self.table)
        session = {
            "application_name": settings["application_name"],
            "hnsw.ef_search": str(settings["ef_search"]),
            "hnsw.iterative_scan": "strict_order" if settings["iterative_scan"] else "off",
            "ivfflat.iterative_scan": "relaxed_order" if settings["iterative_scan"] else "off",
        }
        if settings["statement_timeout"]:
            session["statement_timeout"] = settings["statement_timeout"]
        # the read lane is one of max_pool_size connections; a pool of one has no lane (writes need it)
        lane = settings["max_pool_size"] > 1
        pooled = settings["max_pool_size"] - lane
        init = initializer(session)

        async def connect_lane() -> Any:
            with translated("connect", self.where):
                conn = await asyncpg.connect(timeout=settings["connect_timeout"], connection_class=Connection,
                                             server_settings=session, **self._connect_kwargs)
            try:
                await init(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn

        try:
            with translated("connect", self.where):
                self._pool = await asyncpg.create_pool(
                    min_size=min(settings["min_pool_size"], pooled),
                    max_size=pooled,
                    timeout=settings["connect_timeout"], init=init, reset=keep_session,
                    connection_class=Connection, server_settings=session, **self._connect_kwargs,
                )
            if lane:
                self._lane = ReadLane(self._pool, connect_lane)
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            with contextlib.suppress(Exception):
                await lane.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(release_server, server, self.settings["keep_running"])

    async def _load_schema(self) -> Schema:
        await self._ensure_table()  # created at open; then as it is now (other clients add columns, indexes)
        return Schema(fields=set(self._names), vectors={name: dims for name, (_, dims) in self._columns.items()})

    async def _ensure_table(self) -> None:
        async def create(conn: Any) -> None:
            async with conn.transaction():
                info = await self.table.describe(conn)
                if not info.exists:
                    await self.table.lock(conn)
                    await self.table.create(conn, self.settings["doc_index"])
                    info = await self.table.describe(conn)
            self._search_sql.clear()
            self._columns = dict(info.vectors)
            self._names = set(info.names)
            self._indexes = {(i.field, i.metric): i for i in info.indexes}
            self._table_ready = True

        await self._run("open the table", create)

    # -- connections ----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connection(self, *, lane: bool = False) -> AsyncIterator[Any]:
        """A pooled connection; ``lane``: the read lane's when it is free (see ``ReadLane``)."""
        if self._pool is None:
            raise StoreError(f"{self!r} has no connection pool")
        source = self._lane.connection() if lane and self._lane is not None else self._pool.acquire()
        async with source as conn:
            try:
                if (self._extension or self._columns) and not state_of(conn).codecs:
                    await register_codecs(conn)
                yield conn
            except BaseException as err:
                if is_connection_failure(err) and is_open(conn):
                    conn.terminate()  # not back into the pool as it is: the pool opens another
                raise

    async def _run(self, action: str, fn: Callable[[Any], Awaitable[T]], *, retry: bool = True,
                   lane: bool = False) -> T:
        """Run ``fn(connection)``; a read that meets a dead pooled connection is tried once more. ``lane``: a
        single-statement read, which may use the read lane."""
        for attempt in (1, 2):
            try:
                with translated(action, self.where):
                    async with self._connection(lane=lane) as conn:
                        return await fn(conn)
            except ConnectionLostError:
                if attempt == 2 or not retry:
                    raise
        raise AssertionError("unreachable")

    async def _ready(self) -> None:
        if not self._table_ready:
            await self._ensure_table()

    # -- vector support -------------------------------------------------------------------------------
    async def has_vector_support(self) -> bool:
        """Is the ``vector`` extension installed in this database?"""
        self._check_open()
        self._extension = await self._run("check for pgvector", _extension_installed)
        return self._extension

    async def enable_vector_support(self) -> bool:
        """``CREATE EXTENSION IF NOT EXISTS vector`` when missing (needs a role allowed to create it)."""
        self._check_open()
        if await self.has_vector_support():
            return True
        database = self._connect_kwargs.get("database", "<your database>")
        command = f"CREATE EXTENSION IF NOT EXISTS vector;  -- in database {database}"
        if not self.settings["create_extension"]:
            raise CapabilityError(
                f"the pgvector extension is not installed in {self.where} and create_extension=false; an "
                f"administrator must run:\n    {command}"
            )

        async def create(conn: Any) -> None:
            if not await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
                raise CapabilityError(
                    f"the PostgreSQL server of {self.where} has no pgvector extension to install: add the pgvector "
                    "package to the server (e.g. postgresql-<version>-pgvector), then run:\n    " + command
                )
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except asyncpg.InsufficientPrivilegeError:
                role = await conn.fetchval("SELECT current_user")
                raise CapabilityError(
                    f"role {role!r} may not create the pgvector extension in database {database!r}. An administrator "
                    f"(a superuser) must run:\n    {command}\nthen retry (open stores pick it up)."
                ) from None
            except (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError):
                pass  # created by another session at the same moment
            await register_codecs(conn)

        await self._run("enable pgvector", create)
        self._extension = True
        return True

    # -- writes ---------------------------------------------------------------------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        vectors: dict[str, int] = {}
        written: Counter[str] = Counter()
        for record in records:
            for name, f in record.vector_fields().items():
                vectors[name] = f.dimensions
                written[name] += 1
        names = {name for r in records for name in r.fields}
        await self._write_rows([r.key for r in records], names, vectors, written, mode,
                               lambda columns: [row_of(r, columns) for r in records])

    async def _write_batch(self, batch: RecordBatch, mode: WriteMode) -> None:
        vectors = {name: column.dimensions for name, column in batch.vectors.items()}
        assert batch.ids is not None
        written = Counter(dict.fromkeys(vectors, len(batch)))
        await self._write_rows(list(batch.ids), set(batch.names()), vectors, written, mode,
                               lambda columns: rows_of_batch(batch, columns, self._float32_columns(columns)))

    def _float32_columns(self, columns: list[str]) -> set[str]:
        """Which of ``columns`` are (or, new, will be) ``vector`` columns rather than ``halfvec``."""
        new_type = self.settings["vector_type"]
        return {name for name in columns if self._columns.get(name, (new_type,))[0] is VectorType.VECTOR}

    async def _write_rows(
        self, ids: list[str], names: set[str], vectors: dict[str, int], written: Counter[str], mode: WriteMode,
        make_rows: Callable[[list[str]], list[tuple[Any, ...]]],
    ) -> None:
        """Write the rows ``make_rows(vector columns)`` gives for ``ids`` (with fields ``names``, vector fields
        ``vectors`` by dimension, ``written`` rows of each) in one transaction, adding columns as needed."""
        await self._ready()
        new_vectors = {name: dims for name, dims in vectors.items() if name not in self._columns}
        if new_vectors:
            await self.enable_vector_support()
        new_names = names - self._names
        columns = [*self._columns, *sorted(new_vectors)]
        rows = await asyncio.to_thread(make_rows, columns) if len(ids) >= _THREAD_ROWS else make_rows(columns)

        async def apply(conn: Any) -> dict[str, tuple[VectorType, int]] | None:
            added = None
            if new_vectors:
                added = await self.table.add_vector_columns(conn, new_vectors, self.settings["vector_type"])
            if new_names:
                await self.table.remember_names(conn, new_names)
            if mode is WriteMode.UPDATE:
                found = {row[0] for row in await conn.fetch(
                    f"SELECT id FROM {self.table.sql} WHERE id = ANY($1::text[]) FOR UPDATE", ids)}
                if missing := [i for i in ids if i not in found]:
                    raise self.missing_ids(missing)
            await self._insert(conn, columns, rows, upsert=mode is not WriteMode.CREATE)
            return added

        try:
            added = await self._transaction(f"write {len(ids)} record(s)", apply)
        except _Duplicate:
            taken = await self._run("look up duplicate ids", lambda conn: conn.fetch(
                f"SELECT id FROM {self.table.sql} WHERE id = ANY($1::text[]) ORDER BY id", ids))
            raise self.duplicate_ids([row[0] for row in taken] or ids) from None
        if added is not None:
            self._search_sql.clear()
            self._columns.update(added)
        self._names |= new_names
        await self._maybe_index(written)

    async def _insert(self, conn: Any, columns: list[str], rows: list[tuple[Any, ...]], upsert: bool) -> None:
        names = ["id", "_body", "_doc", *columns]
        column_list = ", ".join(quote(n) for n in names)
        conflict = ""
        if upsert:
            updates = ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in names[1:])
            conflict = f" ON CONFLICT (id) DO UPDATE SET {updates}"
        try:
            if len(rows) < COPY_ROWS:
                values = ", ".join(f"${i}" for i in range(1, len(names) + 1))
                await conn.executemany(f"INSERT INTO {self.table.sql} ({column_list}) VALUES ({values}){conflict}",
                                       rows)
            elif not upsert:
                await conn.copy_records_to_table(self.table.name, schema_name=self.table.schema, columns=names,
                                                 records=rows)
            else:
                await conn.execute(f"CREATE TEMP TABLE vk_stage (LIKE {self.table.sql}) ON COMMIT DROP")
                await conn.copy_records_to_table("vk_stage", columns=names, records=rows)
                await conn.execute(f"INSERT INTO {self.table.sql} ({column_list}) SELECT {column_list} FROM vk_stage"
                                   f"{conflict}")
        except asyncpg.UniqueViolationError:
            raise _Duplicate() from None

    async def _transaction(self, action: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction. A connection lost before it began is replaced once; one lost later
        fails the whole batch, and the error says whether it was written."""
        for attempt in (1, 2):
            phase = "begin"
            try:
                with translated(action, self.where):
                    async with self._connection() as conn:
                        transaction = conn.transaction()
                        await transaction.start()
                        phase = "work"
                        try:
                            result = await fn(conn)
                        except BaseException:
                            if not conn.is_closed():
                                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                                    await transaction.rollback()
                            raise
                        phase = "commit"
                        await transaction.commit()
                        return result
            except ConnectionLostError as err:
                if phase == "begin" and attempt == 1:
                    continue
                raise err.with_outcome(_OUTCOME[phase]) from err
        raise AssertionError("unreachable")

    async def _read(self, ids: list[str]) -> list[Record | None]:
        await self._ready()
        sql = f"SELECT {self._select()} FROM {self.table.sql} WHERE id = ANY($1::text[])"
        rows = await self._run("read records", lambda conn: conn.fetch(sql, ids), lane=True)
        found = {row["id"]: self._record(row) for row in rows}
        return [found.get(i) for i in ids]

    async def _delete(self, ids: list[str]) -> int:
        await self._ready()
        status = await self._transaction(
            f"delete {len(ids)} record(s)",
            lambda conn: conn.execute(f"DELETE FROM {self.table.sql} WHERE id = ANY($1::text[])", ids),
        )
        return int(status.split()[-1])

    async def _drop(self) -> None:
        async def drop(conn: Any) -> None:
            await self.table.drop(conn)

        await self._transaction("drop the table", drop)
        self._columns, self._names, self._indexes, self._unchecked, self._counted = {}, set(), {}, {}, {}
        self._search_sql.clear()
        self._table_ready = False

    # -- queries --------------------------------------------------------------------------------------
    async def _search(self, query: Query) -> list[Record]:
        await self._ready()
        params = Params()
        where = f" WHERE {where_sql(query.where, params)}" if query.where is not None else ""
        order = order_sql(query.order, params)
        limit = "ALL" if query.max_results is None else params.add(query.max_results, "bigint")
        offset = params.add(query.skip, "bigint")
        sql = f"SELECT {self._select()} FROM {self.table.sql}{where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        rows = await self._run("search", lambda conn: conn.fetch(sql, *params.values), lane=True)
        return [self._record(row) for row in rows]

    async def _count(self, where: Filter | None) -> int:
        await self._ready()
        params = Params()
        condition = f" WHERE {where_sql(where, params)}" if where is not None else ""
        sql = f"SELECT count(*) FROM {self.table.sql}{condition}"
        count: int = await self._run("count", lambda conn: conn.fetchval(sql, *params.values), lane=True)
        return count

    async def _stream(self, where: Filter | None, batch_size: int) -> AsyncIterator[list[Record]]:
        """Batches from a server-side cursor, in one read-only snapshot (writes meanwhile are not seen)."""
        await self._ready()
        params = Params()
        condition = f" WHERE {where_sql(where, params)}" if where is not None else ""
        sql = f"SELECT {self._select()} FROM {self.table.sql}{condition} ORDER BY id"
        with translated("stream records", self.where):
            async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                cursor = await conn.cursor(sql, *params.values)
                while rows := await cursor.fetch(batch_size):
                    yield [self._record(row) for row in rows]

    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        await self._ready()
        part = query.vector
        assert part.vector is not None
        options = _search_options.get(_NO_OPTIONS).get(id(self), _DEFAULT_OPTIONS)
        index = None if options.exact else self._indexes.get((part.field, metric))
        if index is not None:
            hits = await self._nearest(query, metric, index, options)
            if len(hits) == part.k:
                return hits
        return await self._nearest(query, metric, None, options)

    async def _nearest(self, query: VectorQuery, metric: DistanceMetric, index: VectorIndex | None,
                       options: SearchOptions) -> list[Hit]:
        part = query.vector
        vector = part.vector
        assert vector is not None
        field, k, keep = part.field, part.k, part.include_vectors
        rescored = index is None or index.half  # pgvector's distances are rounded: score the rows again
        shape = (field, k, metric, keep, index is not None)
        cached = self._search_sql.get(shape) if query.where is None else None
        if cached is None:
            cached = self._search_statement(query, metric, index, keep)
            if query.where is None:
                self._search_sql[shape] = cached
        base, sql, params, distance, limit = cached
        params = Params(vector, *params.values[1:])
        settings: dict[str, str] = {}
        if index is not None and index.kind is IndexKind.HNSW:
            settings["hnsw.ef_search"] = str(max(options.ef_search or self.settings["ef_search"], k))
        elif index is not None:
            settings["ivfflat.probes"] = str(probes_for(index, options.probes or self.settings["probes"]))

        async def fetch(conn: Any) -> list[Any]:
            await apply_settings(conn, settings)
            rows: list[Any] = await conn.fetch(sql, *params.values)
            if index is None and len(rows) == limit:
                ranked = search.rank(rows, field, vector, metric)
                band = search.band_limit(ranked, k, vector, metric, field)
                if rows[-1]["_d"] <= band:  # rows beyond the spare ones may tie with the k-th: take them all
                    wide = Params(*params.values[:-1])
                    rows = await conn.fetch(f"{base} AND {distance} <= {wide.add(band, 'float8')}",
                                            *wide.values)
            return rows

        rows = await self._run("vector search", fetch, lane=True)
        ranked = search.rank(rows, field, vector, metric)[:k] if rescored else search.by_distance(rows, metric)[:k]
        hits = []
        for row, score in ranked:
            record, source = hit_of(row["id"], row["_body"], row if keep else {}, field)
            hits.append(Hit(record, score, source))
        return hits

    def _search_statement(self, query: VectorQuery, metric: DistanceMetric, index: VectorIndex | None, keep: bool
                          ) -> tuple[str, str, Params, str, int]:
        """``(base, sql, params, distance, limit)`` of a k-nearest search: ``base`` selects the candidates,
        ``sql`` orders and limits them; ``params`` are bound to ``$1`` (the query vector, here a placeholder),
        the filter's values and the limit. Unfiltered statements are cached per shape."""
        part = query.vector
        field, k = part.field, part.k
        column_type, dims = self._columns[field]
        rescored = index is None or index.half
        params = Params(None)
        distance = search.distance_sql(field, column_type, dims, metric, index, "$1")
        where = f"{quote(field)} IS NOT NULL"
        if query.where is not None:
            where += f" AND {where_sql(query.where, params)}"
        columns = self._select() if keep else f"id, _body{', ' + quote(field) if rescored else ''}"
        base = f"SELECT {columns}, {distance} AS _d FROM {self.table.sql} WHERE {where}"
        limit = k if index is not None else k + search._SPARE_ROWS
        sql = f"{base} ORDER BY _d{'' if index is not None else ', id'} LIMIT {params.add(limit, 'bigint')}"
        return base, sql, params, distance, limit

    # -- indexes --------------------------------------------------------------------------------------
    def search_options(self, *, ef_search: int | None = None, probes: int | None = None,
                       exact: bool = False) -> contextlib.AbstractContextManager[None]:
        """Index settings for the searches made inside the ``with`` block (this task only)::

            with store.search_options(ef_search=200):
                hits = await store.vector_search(query, k=50)
        """
        for name, value in (("ef_search", ef_search), ("probes", probes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise QueryError(f"{name} must be a positive int, got {value!r}")
        return _with_options(id(self), SearchOptions(ef_search, probes, bool(exact)))

    def indexes(self) -> list[VectorIndex]:
        """The vector indexes this store searches with."""
        return sorted(self._indexes.values(), key=lambda i: (i.field, i.metric.value))

    def index_info(self) -> dict[str, dict[str, Any]]:
        """``{"<field>/<metric>": {"kind": "hnsw", "m": 16, ...}}`` for every vector index."""
        return {f"{i.field}/{i.metric.value}": i.describe() for i in self.indexes()}

    async def create_index(
        self, vector_field: str = DEFAULT_VECTOR_FIELD, kind: str = "auto", metric: DistanceMetric | str | None = None,
        *, m: int | None = None, ef_construction: int | None = None, lists: int | None = None,
        half: bool | None = None,
    ) -> VectorIndex | None:
        """Build (or rebuild) the index of ``vector_field`` for ``metric``: ``hnsw``, ``ivfflat``, or ``auto``
        (by size, per the original design; None when the field is small enough for exact search)."""
        self._check_open()
        if vector_field not in self._columns:
            known = ", ".join(self._columns) or "none"
            raise UnknownFieldError(f"no vector field {vector_field!r}; vector fields: {known}")
        chosen = self.metric if metric is None else DistanceMetric.parse(metric)
        rows = await self._vector_count(vector_field)
        column_type, dims = self._columns[vector_field]
        plan = plan_index(kind, rows, dims, column_type, self.settings, half=half, m=m,
                          ef_construction=ef_construction, lists=lists)
        if plan is None:
            return None
        index_kind, use_half, params = plan
        index = VectorIndex(vector_field, index_kind, chosen, dims, use_half, params,
                            index_name(self.table.name, vector_field, chosen), rows)
        await self._build(index, column_type)
        return index

    async def _build(self, index: VectorIndex, column_type: VectorType) -> None:
        """Replace the index of ``index.field`` for its metric, in one transaction, with maintenance_work_mem
        raised; warn when pgvector says the graph did not fit into it (the build then runs far slower)."""
        memory = self.settings["maintenance_work_mem"]
        notices: list[str] = []

        def listen(_conn: Any, message: Any) -> None:
            notices.append(str(getattr(message, "message", message)))

        async def build(conn: Any) -> None:
            await self.table.lock(conn)
            await conn.execute(f"DROP INDEX IF EXISTS {quote(self.table.schema)}.{quote(index.name)}")
            await conn.execute("SELECT set_config('maintenance_work_mem', $1, true)", memory)
            conn.add_log_listener(listen)
            try:
                await conn.execute(create_sql(self.table.sql, index, column_type))
            finally:
                conn.remove_log_listener(listen)
            await conn.execute(comment_sql(self.table.schema, index))

        await self._transaction(f"build a {index.kind.value} index on {index.field!r}", build)
        self._search_sql.clear()
        self._indexes[(index.field, index.metric)] = index
        for notice in notices:
            if "maintenance_work_mem" in notice:
                logger.warning("building the %s index on %r of %s: %s; the build ran much slower than it would "
                               "in memory: raise the option maintenance_work_mem (now %s)",
                               index.kind.value, index.field, self.table.sql, notice, memory)

    async def drop_index(
        self, vector_field: str = DEFAULT_VECTOR_FIELD, metric: DistanceMetric | str | None = None
    ) -> bool:
        """Drop the index of ``vector_field`` for ``metric``; searches on it become exact."""
        self._check_open()
        chosen = self.metric if metric is None else DistanceMetric.parse(metric)
        self._search_sql.clear()
        index = self._indexes.pop((vector_field, chosen), None)
        if index is None:
            return False
        await self._transaction("drop an index", lambda conn: conn.execute(
            f"DROP INDEX IF EXISTS {quote(self.table.schema)}.{quote(index.name)}"))
        return True

    async def _maybe_index(self, written: Counter[str]) -> None:
        """After a write of ``written`` rows per vector field: build the index the ``index`` option asks for
        once a field is big enough, and re-plan an automatic IVFFlat index as the field grows (tenfold, or
        past ``hnsw_rows`` under auto)."""
        mode = self.settings["index"]
        if mode is IndexMode.NONE:
            return
        for name, count in written.items():
            index = self._indexes.get((name, self.metric))
            if mode is IndexMode.HNSW:
                if index is None:
                    await self._automatic_index(name, IndexKind.HNSW)
                continue
            if index is not None and (not index.automatic or index.kind is IndexKind.HNSW):
                continue  # built by hand, or an HNSW graph: it grows with the table
            self._unchecked[name] = self._unchecked.get(name, 0) + count
            if self._unchecked[name] < max(1, self.settings["auto_index_rows"] // 10, self._counted.get(name, 0) // 10):
                continue
            self._unchecked[name] = 0
            rows = self._counted[name] = await self._vector_count(name)
            if index is None:
                if rows >= self.settings["auto_index_rows"]:
                    await self._automatic_index(name, mode, rows)
            elif rows >= 10 * index.rows or (mode is IndexMode.AUTO and rows >= self.settings["hnsw_rows"]):
                await self._automatic_index(name, mode, rows)

    async def _automatic_index(self, name: str, kind: IndexMode | IndexKind, rows: int | None = None) -> None:
        rows = await self._vector_count(name) if rows is None else rows
        column_type, dims = self._columns[name]
        plan = plan_index(kind, rows, dims, column_type, self.settings)
        if plan is None:
            return
        index_kind, use_half, params = plan
        current = self._indexes.get((name, self.metric))
        if current is not None and (current.kind, current.half, current.params) == (index_kind, use_half, params):
            return  # the same index again: keep it
        await self._build(VectorIndex(name, index_kind, self.metric, dims, use_half, params,
                                      index_name(self.table.name, name, self.metric), rows, automatic=True),
                          column_type)

    async def _vector_count(self, name: str) -> int:
        sql = f"SELECT count(*) FROM {self.table.sql} WHERE {quote(name)} IS NOT NULL"
        count: int = await self._run("count vectors", lambda conn: conn.fetchval(sql))
        return count

    # -- rows -----------------------------------------------------------------------------------------
    def _select(self) -> str:
        return ", ".join(["id", "_body", *(quote(c) for c in self._columns)])

    def _record(self, row: Any) -> Record:
        return record_of(row["id"], row["_body"], row)  # the row is the mapping of its vector columns


class _Duplicate(Exception):
    """A CREATE hit existing ids (the transaction is rolled back; the ids are looked up afterwards)."""


_OUTCOME = {
    "begin": "nothing was written",
    "work": "the transaction was not committed, so nothing of this batch was written",
    "commit": "the connection broke while committing: the batch may or may not have been written; read it back",
}


@contextlib.contextmanager
def _with_options(store_id: int, options: SearchOptions) -> Iterator[None]:
    token = _search_options.set({**_search_options.get(_NO_OPTIONS), store_id: options})
    try:
        yield
    finally:
        _search_options.reset(token)


async def _extension_installed(conn: Any) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'vector'"))


def _describe(kwargs: dict[str, Any], table: Table) -> str:
    host = kwargs.get("host", "localhost")
    port = kwargs.get("port", 5432)
    user = f"{kwargs['user']}@" if kwargs.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{kwargs.get('database', '')} (table {table.schema}.{table.name})"

"""Raw asyncpg + pgvector: the table, index and queries the pgvector store uses, written by hand.

Insert: ``copy_records_to_table`` (binary COPY, pgvector's own asyncpg codec) of each batch, with the record
fields as one JSON document per row. Search: ``ORDER BY embedding <=> $1 LIMIT $2`` prepared once on one
connection, at the store's ``ef_search`` (and iterative-scan setting); batches as concurrent queries over a
pool of the store's size (the client has no batch search, like the store); filtered search with the category
condition in SQL, prepared the same way. Each
search decodes the hits' fields, as an application would.

Layouts (``--raw-option layout=...``):

* ``store`` (default): the store's own table — ``id``, ``_body json``, ``_doc jsonb`` with a GIN index
  (when the store's ``doc_index`` is on), ``embedding vector(d)`` — filtered with ``_doc @> $3``;
* ``columns``: what a hand-designed schema would hold — ``id``, ``text``, ``category`` (b-tree indexed),
  ``price``, ``embedding`` — filtered with ``WHERE category = $3``.

Server: the store URL's. ``pgvector+embedded://{tmp}`` gets an embedded server of its own in the side's
work directory (the same build as the store's); ``pgvector://...`` uses that server and database, in a
table named after the store's with ``_raw`` appended. The index mirrors the store's ``index`` option and
parameters (``hnsw``: built on the empty table, so every row is inserted into the graph as in the store;
``ivfflat`` / ``auto``: built once the rows are in, with the store's lists rule; ``none``: no index), with the
store's ``maintenance_work_mem``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.sides import Batch, SideContext

NAME = "pgvector"
REQUIRES = ("asyncpg", "pgvector")
SCHEMES = ("pgvector", "pgvector+embedded", "postgres", "postgresql")
TARGETS = (  # (id, what, ratio key, op, threshold): the targets for the pgvector store
    ("insert", "bulk insert store / raw asyncpg binary COPY", "insert_records_per_second", ">=", 0.85),
    ("single_latency", "k=10 search p50 latency store / raw prepared query", "single_p50_latency", "<=", 1.1),
)
OPS = {"cosine": "<=>", "euclidean": "<->", "dot_product": "<#>"}
OPCLASS = {"cosine": "vector_cosine_ops", "euclidean": "vector_l2_ops", "dot_product": "vector_ip_ops"}
_FALLBACK: dict[str, Any] = {"index": "auto", "hnsw_m": 16, "hnsw_ef_construction": 64, "ef_search": 40, "probes": 0,
             "ivfflat_lists": 0, "auto_index_rows": 10_000, "hnsw_rows": 1_000_000, "iterative_scan": True,
             "maintenance_work_mem": "512MB", "doc_index": True, "max_pool_size": 10, "table": "documents",
             "schema": "public"}


def resolve(ctx: SideContext) -> dict[str, Any]:
    """The store's settings this baseline mirrors, with ``--raw-option`` overrides applied."""
    spec = dict(_FALLBACK)
    if ctx.store_scheme in SCHEMES:
        spec.update({k: v for k, v in ctx.store_settings.items() if k in _FALLBACK and v is not None})
    spec["layout"] = "store"
    for key, value in ctx.options.items():
        if key not in (*_FALLBACK, "layout"):
            raise ValueError(f"unknown pgvector baseline option {key!r}")
        spec[key] = _parse(_FALLBACK.get(key, ""), value)
    if spec["layout"] not in ("store", "columns"):
        raise ValueError("pgvector baseline: layout must be store or columns")
    kind = str(spec["index"])
    if kind == "auto":
        kind = "none" if ctx.n < spec["auto_index_rows"] else "hnsw" if ctx.n >= spec["hnsw_rows"] else "ivfflat"
    spec["kind"] = kind
    if kind == "ivfflat":
        n = ctx.n
        spec["lists"] = int(spec["ivfflat_lists"]) or (max(n // 1000, 100) if n <= 1_000_000 else int(math.sqrt(n)))
        spec["probes"] = int(spec["probes"]) or max(1, round(math.sqrt(spec["lists"])))
    return spec


def server_for(ctx: SideContext) -> tuple[Any, dict[str, Any]]:
    """The embedded server this side starts (or None) and asyncpg's connect arguments for the store URL's
    server: ``pgvector+embedded://{tmp}`` gets a server of its own in ``ctx.workdir``."""
    from vectorknobs.config import parse_config

    config = parse_config(ctx.store_url.replace("{tmp}", "/placeholder"))
    if config.scheme == "pgvector+embedded":
        from vectorknobs_pgvector.embedded import acquire_server

        workdir = Path(ctx.workdir)
        workdir.chmod(0o755)  # the server's own system user must reach its data directory
        server = acquire_server(workdir / "pg")
        return server, {**server.connect_kwargs(), "database": "postgres"}
    params = config.params
    kwargs = {"host": params.get("host") or config.host, "port": config.port, "user": config.user,
              "password": config.password, "database": params.get("database") or (config.path or "").strip("/") or None}
    return None, {k: v for k, v in kwargs.items() if v is not None}


def _parse(like: Any, value: str) -> Any:
    """An override as the type of the option's default."""
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(value)
    return value


class PgvectorBaseline:
    def __init__(self, ctx: SideContext) -> None:
        self.ctx = ctx
        self.spec = resolve(ctx)
        self.metric = ctx.metric
        self.server: Any = None
        self.pool: Any = None
        self.table = ""
        self.sql: dict[str, str] = {}
        self.conn: Any = None
        self.prepared: dict[str, Any] = {}
        self.rows = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        import asyncpg
        from pgvector.asyncpg import register_vector

        spec, d = self.spec, self.ctx.dim
        self.server, kwargs = server_for(self.ctx)
        own_server = self.server is not None
        name = spec["table"] if own_server else f"{spec['table']}_raw"
        self.table = f'"{spec["schema"]}"."{name}"'
        settings = {"hnsw.ef_search": str(spec["ef_search"]),
                    "hnsw.iterative_scan": "strict_order" if spec["iterative_scan"] else "off",
                    "ivfflat.iterative_scan": "relaxed_order" if spec["iterative_scan"] else "off"}
        if spec["kind"] == "ivfflat":
            settings["ivfflat.probes"] = str(spec["probes"])
        setup = await asyncpg.connect(**kwargs)
        try:
            await setup.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await setup.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec["schema"]}"')
            await setup.execute(f"DROP TABLE IF EXISTS {self.table}")
            if spec["layout"] == "store":
                await setup.execute(f'CREATE TABLE {self.table} (id text COLLATE "C" PRIMARY KEY, _body json NOT NULL, '
                                    f"_doc jsonb NOT NULL, embedding vector({d}))")
                if spec["doc_index"]:
                    await setup.execute(f"CREATE INDEX ON {self.table} USING gin (_doc jsonb_path_ops)")
            else:
                await setup.execute(f"CREATE TABLE {self.table} (id text PRIMARY KEY, text text, category text, "
                                    f"price float8, embedding vector({d}))")
                await setup.execute(f"CREATE INDEX ON {self.table} (category)")
            if spec["kind"] == "hnsw":
                await self._build_index(setup)
        finally:
            await setup.close()
        self.pool = await asyncpg.create_pool(min_size=1, max_size=int(spec["max_pool_size"]), init=register_vector,
                                              server_settings=settings, **kwargs)
        op = OPS[self.metric]
        fields = "_body" if spec["layout"] == "store" else "text, category, price"
        condition = "_doc @> $3::jsonb" if spec["layout"] == "store" else "category = $3"
        self.sql = {
            "search": f"SELECT id, {fields} FROM {self.table} ORDER BY embedding {op} $1 LIMIT $2",
            "filtered": f"SELECT id, {fields} FROM {self.table} WHERE {condition} ORDER BY embedding {op} $1 LIMIT $2",
        }
        # one query at a time: one connection, each statement prepared once
        self.conn = await asyncpg.connect(server_settings=settings, **kwargs)
        await register_vector(self.conn)
        self.prepared = {key: await self.conn.prepare(sql) for key, sql in self.sql.items()}

    async def _build_index(self, conn: Any) -> None:
        spec = self.spec
        if spec["kind"] == "hnsw":
            params = f"m = {int(spec['hnsw_m'])}, ef_construction = {int(spec['hnsw_ef_construction'])}"
        else:
            params = f"lists = {int(spec['lists'])}"
        async with conn.transaction():
            await conn.execute("SELECT set_config('maintenance_work_mem', $1, true)", str(spec["maintenance_work_mem"]))
            await conn.execute(f"CREATE INDEX ON {self.table} USING {spec['kind']} "
                               f"(embedding {OPCLASS[self.metric]}) WITH ({params})")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                await conn.execute(f"DROP TABLE IF EXISTS {self.table}")
            await self.pool.close()
        if self.server is not None:
            from vectorknobs_pgvector.embedded import release_server

            release_server(self.server)

    # -- insert ---------------------------------------------------------------------------------
    async def insert(self, batch: Batch) -> None:
        text, category, price = batch.columns["text"], batch.columns["category"], batch.columns["price"]
        vectors = batch.vectors
        if self.spec["layout"] == "store":
            columns = ["id", "_body", "_doc", "embedding"]
            docs = [json.dumps({"text": t, "category": c, "price": p}, ensure_ascii=False)
                    for t, c, p in zip(text, category, price, strict=True)]
            rows: list[tuple[Any, ...]] = [(i, doc, doc, vectors[j])
                                           for j, (i, doc) in enumerate(zip(batch.ids, docs, strict=True))]
        else:
            columns = ["id", "text", "category", "price", "embedding"]
            rows = [(i, t, c, p, vectors[j])
                    for j, (i, t, c, p) in enumerate(zip(batch.ids, text, category, price, strict=True))]
        schema, name = (part.strip('"') for part in self.table.split(".", 1))
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table(name, schema_name=schema, columns=columns, records=rows)
        self.rows += len(batch)

    async def finish_insert(self) -> None:
        if self.spec["kind"] == "ivfflat":
            async with self.pool.acquire() as conn:
                await self._build_index(conn)

    # -- search ---------------------------------------------------------------------------------
    def _ids(self, rows: list[Any]) -> list[str]:
        if self.spec["layout"] == "store":
            hits = [(row[0], json.loads(row[1])["text"]) for row in rows]  # id and text, like a search result
        else:
            hits = [(row[0], row[1]) for row in rows]
        return [h[0] for h in hits]

    async def search(self, vector: np.ndarray, k: int) -> list[str]:
        return self._ids(await self.prepared["search"].fetch(vector, k))

    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        import asyncio

        # concurrent queries over the pool (asyncpg prepares and caches each statement per connection)
        sql = self.sql["search"]
        return [self._ids(rows) for rows in await asyncio.gather(*(self.pool.fetch(sql, v, k) for v in vectors))]

    async def search_concurrent(self, vector: np.ndarray, k: int) -> list[str]:
        """Searches from many tasks at once go over the pool (one connection answers one query at a time)."""
        return self._ids(await self.pool.fetch(self.sql["search"], vector, k))

    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        if set(where) != {"category"}:
            raise ValueError(f"pgvector baseline filters on category only, not {sorted(where)}")
        value = json.dumps({"category": where["category"]}) if self.spec["layout"] == "store" else where["category"]
        return self._ids(await self.prepared["filtered"].fetch(vector, k, value))

    def describe(self) -> dict[str, Any]:
        import asyncpg
        import pgvector

        info: dict[str, Any] = {"kind": "raw", "name": NAME, "asyncpg_version": asyncpg.__version__,
                                "pgvector_python_version": getattr(pgvector, "__version__", None),
                                "table": self.table, "rows": self.rows, "sql": self.sql}
        info.update({k: v for k, v in self.spec.items() if k not in ("table", "schema")})
        info["index"] = self.spec["kind"]
        if self.spec["kind"] == "hnsw":
            info.update(m=self.spec["hnsw_m"], ef_construction=self.spec["hnsw_ef_construction"])
        return info


def create(ctx: SideContext) -> PgvectorBaseline:
    return PgvectorBaseline(ctx)

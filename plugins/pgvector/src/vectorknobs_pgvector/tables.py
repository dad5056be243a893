"""The table of one collection: creating it, reading what it holds, adding vector columns.

One row per record: ``id text COLLATE "C" PRIMARY KEY``, ``_body json`` (the lossless record),
``_doc jsonb`` (the filterable projection, GIN-indexed) and one ``vector(d)`` / ``halfvec(d)`` column per
vector field, so text and vectors change in one statement. Field names ever written are listed in the
schema's ``vectorknobs_fields`` table, so connecting never scans the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vectorknobs.errors import ConfigError, DimensionMismatchError

from vectorknobs_pgvector.indexes import VectorIndex
from vectorknobs_pgvector.options import VectorType
from vectorknobs_pgvector.sql import quote

CATALOG = "vectorknobs_fields"
_COLUMNS = """
SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
"""
_INDEXES = """
SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
WHERE x.indrelid = to_regclass($1)
"""


@dataclass
class TableInfo:
    """What the table holds: vector columns ``{field: (type, dimensions)}``, field names, our indexes."""

    exists: bool = False
    vectors: dict[str, tuple[VectorType, int]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    indexes: list[VectorIndex] = field(default_factory=list)


class Table:
    """SQL for one collection table in one schema."""

    def __init__(self, schema: str, name: str) -> None:
        if name == CATALOG:
            raise ConfigError(f"table name {CATALOG!r} is reserved for vectorknobs' own catalog")
        self.schema = schema
        self.name = name
        self.sql = f"{quote(schema)}.{quote(name)}"
        self.catalog_sql = f"{quote(schema)}.{quote(CATALOG)}"
        self.lock_key = f"vectorknobs:{schema}.{name}"

    async def lock(self, conn: Any) -> None:
        """Serialize DDL on this table between sessions, until the transaction ends."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", self.lock_key)

    async def create(self, conn: Any, doc_index: bool) -> None:
        """Create schema, catalog and table where missing (checking first, so a read-only role can connect)."""
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema):
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", self.catalog_sql):
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.catalog_sql} (tbl text NOT NULL, name text NOT NULL, "
                "PRIMARY KEY (tbl, name))"
            )
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", self.sql):
            return
        await conn.execute(
            f'CREATE TABLE {self.sql} (id text COLLATE "C" PRIMARY KEY, _body json NOT NULL, _doc jsonb NOT NULL)'
        )
        if doc_index:
            await conn.execute(f"CREATE INDEX {quote(self.name[:56] + '_doc')} ON {self.sql} "
                               "USING gin (_doc jsonb_path_ops)")

    async def describe(self, conn: Any) -> TableInfo:
        columns = await conn.fetch(_COLUMNS, self.sql)
        if not columns:
            return TableInfo()
        names = {row["attname"] for row in columns}
        if not {"id", "_body", "_doc"} <= names:
            raise ConfigError(
                f"table {self.schema}.{self.name} exists but was not made by vectorknobs (it lacks id, _body and "
                "_doc columns); choose another table with ?table=..."
            )
        info = TableInfo(exists=True)
        for row in columns:
            if row["typname"] in ("vector", "halfvec"):
                info.vectors[row["attname"]] = (VectorType(row["typname"]), int(row["atttypmod"]))
        info.names = {row[0] for row in await conn.fetch(f"SELECT name FROM {self.catalog_sql} WHERE tbl = $1",
                                                         self.name)}
        info.names |= set(info.vectors)
        for name, comment in await conn.fetch(_INDEXES, self.sql):
            index = VectorIndex.from_comment(name, comment)
            if index is not None and index.field in info.vectors:
                info.indexes.append(index)
        return info

    async def remember_names(self, conn: Any, names: set[str]) -> None:
        await conn.execute(
            f"INSERT INTO {self.catalog_sql} (tbl, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            self.name, sorted(names),
        )

    async def add_vector_columns(self, conn: Any, columns: dict[str, int], column_type: VectorType) -> dict[
            str, tuple[VectorType, int]]:
        """Add missing vector columns (inside the caller's transaction); return what the table then has."""
        await self.lock(conn)
        for name, dimensions in sorted(columns.items()):
            await conn.execute(
                f"ALTER TABLE {self.sql} ADD COLUMN IF NOT EXISTS {quote(name)} {column_type.value}({int(dimensions)})"
            )
        current = await self.describe(conn)
        for name, dimensions in columns.items():
            found = current.vectors.get(name)
            if found is None or found[1] != dimensions:
                raise DimensionMismatchError(
                    f"vector field {name!r} holds {found[1] if found else 'no'}-dimensional vectors in table "
                    f"{self.schema}.{self.name} (another client created it); got {dimensions}"
                )
        return current.vectors

    async def drop(self, conn: Any) -> None:
        await self.lock(conn)
        await conn.execute(f"DROP TABLE IF EXISTS {self.sql}")
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", self.catalog_sql):
            await conn.execute(f"DELETE FROM {self.catalog_sql} WHERE tbl = $1", self.name)

"""The store's SQLite database: the durable source of truth for records and their vectors.

Tables: ``records`` (rid, id, doc, pyeval; see ``codec``), ``fields`` (every field name; vector
fields with their slot and dimension), ``vectors_<slot>`` (rid, float32 blob) per vector field and
``meta`` (format, version, the store's uuid). A record's rowid (``rid``) is never reused: an update
deletes the old row and inserts a new one, so a rid always stands for the same vectors.

One writer connection, used under the store's write lock; one reader connection per worker thread
(WAL lets readers and the writer run concurrently). Writes are one transaction per batch with
``synchronous=FULL``: a batch is all there or not at all, and it survives a crash once committed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from vectorknobs import CorruptStoreError, Hit, Query, Record, RecordBatch, Schema, StoreError, VectorStore, WriteMode
from vectorknobs.fields import FloatArray
from vectorknobs.filters import Filter

from vectorknobs_faiss.codec import VECTOR_DTYPE, Row, decode_batch, decode_hit, decode_record
from vectorknobs_faiss.indexes import Labels
from vectorknobs_faiss.sqlfilter import Params, order_sql, register_functions, where_sql

FORMAT = "vectorknobs-faiss"
VERSION = 1
FILE_NAME = "records.sqlite"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_IN_LIST = "(SELECT value FROM json_each(?))"
#: lists of up to this many rids are bound one parameter each (quicker than json_each for a search's few)
_MARKS = 512


@dataclass
class VectorColumn:
    name: str
    slot: int
    dims: int

    @property
    def table(self) -> str:
        return f"vectors_{self.slot}"


@dataclass
class Changes:
    """What a staged write does to each vector field's index (by slot), for after it commits."""

    removed: dict[int, Labels] = field(default_factory=dict)
    added: dict[int, tuple[Labels, FloatArray]] = field(default_factory=dict)
    new_columns: list[VectorColumn] = field(default_factory=list)
    new_fields: set[str] = field(default_factory=set)
    dropped: bool = False


class Database:
    """Records in SQLite. Methods run in worker threads; the store serializes writers."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self.uuid = ""
        self.columns: dict[str, VectorColumn] = {}
        self.fields: set[str] = set()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> None:
        """Open or create the database; ``CorruptStoreError`` if it is not one of ours, whole."""
        with translate_errors(self.path):
            if self.path.exists() and self.path.stat().st_size:
                with self.path.open("rb") as handle:
                    if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                        raise CorruptStoreError(f"{self.path} is not a SQLite database (damaged, or another format)")
            self._writer = conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
            if self.path.stat().st_size < pages:
                raise CorruptStoreError(f"{self.path} is truncated ({self.path.stat().st_size} of {pages} bytes)")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                self._create(conn)
            elif "meta" not in tables:
                raise CorruptStoreError(f"{self.path} is a SQLite database of something else, not a vectorknobs store")
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if meta.get("format") != FORMAT:
                raise CorruptStoreError(f"{self.path} is not a vectorknobs faiss store (format {meta.get('format')!r})")
            if meta.get("version") != str(VERSION):
                raise CorruptStoreError(
                    f"{self.path} has format version {meta.get('version')}; this vectorknobs-faiss reads "
                    f"version {VERSION}"
                )
            self.uuid = meta["uuid"]
            for name, slot, dims in conn.execute("SELECT name, slot, dims FROM fields"):
                self.fields.add(name)
                if slot is not None:
                    self.columns[name] = VectorColumn(name, slot, dims)

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()
            self._writer = None

    def schema(self) -> Schema:
        return Schema(set(self.fields), {c.name: c.dims for c in self.columns.values()})

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.executescript(
            f"""
            BEGIN IMMEDIATE;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE records (
                rid INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                doc TEXT NOT NULL,
                pyeval INTEGER NOT NULL
            );
            CREATE TABLE fields (name TEXT PRIMARY KEY, slot INTEGER UNIQUE, dims INTEGER);
            INSERT INTO meta (key, value) VALUES
                ('format', '{FORMAT}'), ('version', '{VERSION}'), ('uuid', '{uuid.uuid4().hex}');
            COMMIT;
            """
        )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA synchronous = FULL")
        register_functions(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @property
    def writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StoreError(f"{self.path} is closed")
        return self._writer

    # -- writes (writer lock held) ----------------------------------------------------------------
    def stage(self, rows: Sequence[Row], mode: WriteMode) -> Changes:
        """Begin a transaction that applies ``rows`` per ``mode``; ``commit`` or ``rollback`` it next."""
        conn = self.writer
        with translate_errors(self.path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                return self._stage(conn, rows, mode)
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _stage(self, conn: sqlite3.Connection, rows: Sequence[Row], mode: WriteMode) -> Changes:
        ids = [row.id for row in rows]
        existing = dict(conn.execute(f"SELECT id, rid FROM records WHERE id IN {_IN_LIST}", (json.dumps(ids),)))
        if mode is WriteMode.CREATE and existing:
            raise VectorStore.duplicate_ids([i for i in ids if i in existing])
        if mode is WriteMode.UPDATE and len(existing) < len(ids):
            raise VectorStore.missing_ids([i for i in ids if i not in existing])
        changes = Changes()
        if existing:
            changes.removed = self._delete_rids(conn, list(existing.values()))
        columns = dict(self.columns)
        for row in rows:
            for name in row.vectors.keys() - columns.keys():
                slot = 1 + max((c.slot for c in columns.values()), default=0)
                columns[name] = column = VectorColumn(name, slot, int(row.vectors[name].shape[0]))
                changes.new_columns.append(column)
                conn.execute(f"CREATE TABLE {column.table} (rid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
                conn.execute("INSERT INTO fields (name, slot, dims) VALUES (?, ?, ?)", (name, slot, column.dims))
        changes.new_fields = {name for row in rows for name in row.names} - self.fields - columns.keys()
        conn.executemany("INSERT INTO fields (name) VALUES (?)", [(name,) for name in sorted(changes.new_fields)])
        last = conn.execute("SELECT max(seq) FROM sqlite_sequence WHERE name = 'records'").fetchone()[0]
        start = (last or 0) + 1
        rids = np.arange(start, start + len(rows), dtype=np.int64)
        conn.executemany(
            "INSERT INTO records (rid, id, doc, pyeval) VALUES (?, ?, ?, ?)",
            ((int(rid), row.id, row.doc, row.pyeval) for rid, row in zip(rids, rows, strict=True)),
        )
        for name, column in columns.items():
            picked = [(int(rid), row.vectors[name]) for rid, row in zip(rids, rows, strict=True) if name in row.vectors]
            if not picked:
                continue
            conn.executemany(
                f"INSERT INTO {column.table} (rid, vec) VALUES (?, ?)",
                ((rid, memoryview(vector.astype(VECTOR_DTYPE, copy=False))) for rid, vector in picked),
            )
            labels = np.fromiter((rid for rid, _ in picked), dtype=np.int64, count=len(picked))
            changes.added[column.slot] = (labels, np.vstack([vector for _, vector in picked]))
        return changes

    def stage_delete(self, ids: Sequence[str]) -> tuple[int, Changes]:
        """Begin a transaction deleting ``ids``: how many existed, and the index changes."""
        conn = self.writer
        with translate_errors(self.path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(f"SELECT rid FROM records WHERE id IN {_IN_LIST}", (json.dumps(ids),))
                rids = [r for (r,) in found]
                return len(rids), Changes(removed=self._delete_rids(conn, rids))
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def stage_drop(self) -> Changes:
        """Begin a transaction deleting every record and vector field (rids keep counting up)."""
        conn = self.writer
        with translate_errors(self.path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for column in self.columns.values():
                    conn.execute(f"DROP TABLE {column.table}")
                conn.execute("DELETE FROM records")
                conn.execute("DELETE FROM fields")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Changes(dropped=True)

    def commit(self, changes: Changes) -> None:
        """Commit the staged transaction (rolled back if the commit fails, e.g. on a full disk)."""
        conn = self.writer
        with translate_errors(self.path):
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if changes.dropped:
            self.columns.clear()
            self.fields.clear()
            return
        for column in changes.new_columns:
            self.columns[column.name] = column
        self.fields |= changes.new_fields | {c.name for c in changes.new_columns}

    def rollback(self) -> None:
        with translate_errors(self.path), contextlib.suppress(sqlite3.OperationalError):
            self.writer.execute("ROLLBACK")

    def _delete_rids(self, conn: sqlite3.Connection, rids: list[int]) -> dict[int, Labels]:
        listed = json.dumps(rids)
        removed = {}
        for column in self.columns.values():
            gone = [r for (r,) in conn.execute(f"DELETE FROM {column.table} WHERE rid IN {_IN_LIST} RETURNING rid",
                                               (listed,))]
            if gone:
                removed[column.slot] = np.array(sorted(gone), dtype=np.int64)
        conn.execute(f"DELETE FROM records WHERE rid IN {_IN_LIST}", (listed,))
        return removed

    # -- reads (any thread) -----------------------------------------------------------------------
    def read(self, ids: Sequence[str]) -> list[Record | None]:
        found = {r.id: r for _, r in self._rows(f"WHERE r.id IN {_IN_LIST}", (json.dumps(list(ids)),))}
        return [found.get(i) for i in ids]

    def hit_rows(self, rids: Sequence[int], with_vectors: bool) -> HitRows:
        """The rows of ``rids`` read in one query, with their vectors if ``with_vectors``; decoded on demand."""
        columns = list(self.columns.values()) if with_vectors else []
        omit = frozenset() if with_vectors else frozenset(self.columns)
        if not rids:
            return HitRows(self.path, [], [], omit)
        if len(rids) <= _MARKS:
            found = self._fetch(f"WHERE r.rid IN ({','.join('?' * len(rids))})", tuple(rids), columns)
        else:
            found = self._fetch(f"WHERE r.rid IN {_IN_LIST}", (json.dumps(list(rids)),), columns)
        return HitRows(self.path, [c.name for c in columns], found, omit)

    def search(self, query: Query) -> list[Record]:
        params = Params()
        sql = (f"WHERE {where_sql(query.where, params)} "
               f"ORDER BY {order_sql(query.order, params)} LIMIT {params(query.max_results or -1)} "
               f"OFFSET {params(query.skip)}")
        return [record for _, record in self._rows(sql, params.values)]

    def page(self, where: Filter | None, after: str | None, limit: int) -> list[Record]:
        """Up to ``limit`` matching records with ids above ``after``, in id order."""
        return [record for _, record in self.decode(self._page_rows(where, after, limit))]

    def page_as_batch(self, where: Filter | None, after: str | None, limit: int) -> RecordBatch | list[Record]:
        """``page``, as one ``RecordBatch`` when its rows allow (``codec.decode_batch``), read without
        building a ``Record`` per row; else the records."""
        found = self._page_rows(where, after, limit)
        if not found:
            return []
        names = [c.name for c in self.columns.values()]
        blobs = {name: [row[3 + i] for row in found] for i, name in enumerate(names)}
        try:
            batch = decode_batch([row[1] for row in found], [row[2] for row in found], blobs)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CorruptStoreError(f"a page of records in {self.path} cannot be read back: {err}") from None
        return batch if batch is not None else [record for _, record in self.decode(found)]

    def _page_rows(self, where: Filter | None, after: str | None, limit: int) -> list[tuple[Any, ...]]:
        params = Params()
        return self._fetch(f"WHERE {where_sql(where, params)} AND r.id > {params(after or '')} "
                           f"ORDER BY r.id LIMIT {params(limit)}", params.values)

    def count(self, where: Filter | None) -> int:
        params = Params()
        with translate_errors(self.path):
            return int(self._reader().execute(
                f"SELECT count(*) FROM records WHERE {where_sql(where, params)}", params.values
            ).fetchone()[0])

    def matching_rids(self, where: Filter, column: VectorColumn) -> Labels:
        """Rids of the records matching ``where`` that have a vector in ``column``."""
        params = Params()
        joined = f"records AS r JOIN {column.table} AS v ON v.rid = r.rid"
        sql = f"SELECT r.rid FROM {joined} WHERE {where_sql(where, params)}"
        with translate_errors(self.path):
            return np.array([r for (r,) in self._reader().execute(sql, params.values)], dtype=np.int64)

    def vectors(self, column: VectorColumn, rids: Labels | None = None) -> tuple[Labels, FloatArray]:
        """Stored vectors of ``column`` (of ``rids`` only, if given), in rid order."""
        sql = f"SELECT rid, vec FROM {column.table}"
        args: tuple[Any, ...] = ()
        if rids is not None:
            sql += f" WHERE rid IN {_IN_LIST}"
            args = (json.dumps(rids.tolist()),)
        with translate_errors(self.path):
            found = self._reader().execute(sql + " ORDER BY rid", args).fetchall()
        return _matrix(found, column.dims)

    def vector_batches(self, column: VectorColumn, batch_size: int) -> Iterator[tuple[Labels, FloatArray]]:
        """Every stored vector of ``column`` in rid order, ``batch_size`` at a time, from one snapshot."""
        with translate_errors(self.path):
            conn = self._connect()
            try:
                cursor = conn.execute(f"SELECT rid, vec FROM {column.table} ORDER BY rid")
                while batch := cursor.fetchmany(batch_size):
                    yield _matrix(batch, column.dims)
            finally:
                conn.close()

    def labels(self, column: VectorColumn) -> Labels:
        with translate_errors(self.path):
            cursor = self._reader().execute(f"SELECT rid FROM {column.table} ORDER BY rid")
            return np.array([r for (r,) in cursor], dtype=np.int64)

    def _rows(self, clauses: str, params: dict[str, Any] | tuple[Any, ...]) -> Iterator[tuple[int, Record]]:
        """``(rid, record)`` of ``SELECT ... FROM records AS r <clauses>``, vectors joined in."""
        return self.decode(self._fetch(clauses, params))

    def _fetch(self, clauses: str, params: dict[str, Any] | tuple[Any, ...],
               columns: Sequence[VectorColumn] | None = None) -> list[tuple[Any, ...]]:
        """``(rid, id, doc, *vector blobs of columns)`` of ``SELECT ... FROM records AS r <clauses>``
        (``columns``: every vector field's, in column order, unless given)."""
        columns = list(self.columns.values()) if columns is None else columns
        joins = "".join(f" LEFT JOIN {c.table} AS v{c.slot} ON v{c.slot}.rid = r.rid" for c in columns)
        vectors = "".join(f", v{c.slot}.vec" for c in columns)
        sql = f"SELECT r.rid, r.id, r.doc{vectors} FROM records AS r{joins} {clauses}"
        with translate_errors(self.path):
            return list(self._reader().execute(sql, params).fetchall())

    def decode(self, found: list[tuple[Any, ...]]) -> Iterator[tuple[int, Record]]:
        """``(rid, record)`` of rows read by ``_fetch``."""
        columns = list(self.columns.values())
        for rid, record_id, doc, *blobs in found:
            vectors_of = {c.name: blob for c, blob in zip(columns, blobs, strict=True) if blob is not None}
            try:
                record = decode_record(record_id, doc, vectors_of)
            except (ValueError, KeyError, TypeError) as err:
                raise CorruptStoreError(f"record {record_id!r} in {self.path} cannot be read back: {err}") from None
            yield rid, record


class HitRows:
    """Rows of search hits read in one query, by rid; a row is decoded only when it makes the results."""

    def __init__(self, path: Path, names: list[str], rows: list[tuple[Any, ...]], omit: frozenset[str]) -> None:
        self._path = path
        self._names = names
        self._rows = {row[0]: row for row in rows}
        self._omit = omit

    def id(self, rid: int) -> str:
        return str(self._rows[rid][1])

    def hit(self, rid: int, score: float, field: str) -> Hit:
        """The row of ``rid`` as a hit, with the ``source_field`` of its vector field ``field``."""
        _, record_id, doc, *blobs = self._rows[rid]
        vectors = {name: blob for name, blob in zip(self._names, blobs, strict=True) if blob is not None}
        try:
            record, source = decode_hit(record_id, doc, vectors, self._omit, field)
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptStoreError(f"record {record_id!r} in {self._path} cannot be read back: {err}") from None
        return Hit(record, score, source)


def _matrix(rows: list[tuple[int, bytes]], dims: int) -> tuple[Labels, FloatArray]:
    labels = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=VECTOR_DTYPE).reshape(len(rows), dims)
    return labels, matrix.astype(np.float32, copy=False)


@contextlib.contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """SQLite errors as vectorknobs errors: damage is ``CorruptStoreError``, the rest ``StoreError``."""
    try:
        yield
    except sqlite3.Error as err:
        name = getattr(err, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise CorruptStoreError(f"{path} is damaged ({err}); restore it from a backup") from err
        if name.startswith("SQLITE_FULL"):
            raise StoreError(f"{path}: the disk is full; nothing was written") from err
        raise StoreError(f"{path}: {err}") from err

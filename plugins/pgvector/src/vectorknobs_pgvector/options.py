"""The options a ``pgvector://`` or ``pgvector+embedded://`` config accepts, and their parsers."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from vectorknobs.config import Option, parse_bool, parse_int
from vectorknobs.errors import InvalidNameError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DURATION = re.compile(r"\d+\s*(ms|s|min|h)?")
_MEMORY = re.compile(r"\d+\s*(kB|MB|GB)?")


class IndexMode(StrEnum):
    AUTO = "auto"  # no index below auto_index_rows, then IVFFlat, HNSW from hnsw_rows (the original design)
    HNSW = "hnsw"  # an HNSW index from the first vector on, kept up to date by every write
    IVFFLAT = "ivfflat"  # an IVFFlat index once a field holds auto_index_rows vectors
    NONE = "none"  # exact search only, unless create_index() is called


class VectorType(StrEnum):
    VECTOR = "vector"  # float32, lossless
    HALFVEC = "halfvec"  # float16: half the space, values rounded to half precision


def identifier(value: Any) -> str:
    """A table or schema name: a letter or ``_``, then letters, digits, ``_`` (always quoted in SQL)."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidNameError(
            f"invalid SQL identifier {value!r}: use a letter or '_' followed by letters, digits or '_' "
            "(at most 63 characters)"
        )
    return value


def _positive(parse: Callable[[Any], int]) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = parse(value)
        if number < 1:
            raise ValueError(f"expected a positive int, got {value!r}")
        return number

    return check


def _non_negative(value: Any) -> int:
    number = parse_int(value)
    if number < 0:
        raise ValueError(f"expected an int >= 0, got {value!r}")
    return number


def _pattern(regex: re.Pattern[str], example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).strip()
        if not regex.fullmatch(text):
            raise ValueError(f"expected a value like {example!r}, got {value!r}")
        return text

    return check


def _choice(kind: type[StrEnum]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        try:
            return kind(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"expected one of {', '.join(m.value for m in kind)}, got {value!r}") from None

    return check


def _seconds(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return number


OPTIONS: dict[str, Option] = {
    "table": Option(identifier, "documents", "table holding the records (created on first connect)"),
    "schema": Option(identifier, "public", "PostgreSQL schema of the table"),
    "database": Option(str, None, "database name (pgvector://.../<database> sets it too; embedded: postgres)"),
    "host": Option(str, None, "host name, or the directory of a unix socket (libpq's ?host=/var/run/postgresql)"),
    "sslmode": Option(str, None, "disable, prefer, require, verify-ca or verify-full (asyncpg's ssl)"),
    "application_name": Option(str, "vectorknobs", "how the connections show in pg_stat_activity"),
    "min_pool_size": Option(_non_negative, 1, "connections kept open"),
    "max_pool_size": Option(_positive(parse_int), 10, "most connections open at once"),
    "connect_timeout": Option(_seconds, 10.0, "seconds to wait for a connection"),
    "statement_timeout": Option(_pattern(_DURATION, "30s"), None,
                                "cancel statements running longer (e.g. 30s, 500ms); default: no limit"),
    "vector_type": Option(
        _choice(VectorType), VectorType.VECTOR, "column type of vector fields: vector or halfvec (lossy)"
    ),
    "index": Option(_choice(IndexMode), IndexMode.AUTO, "automatic vector indexes: auto, hnsw, ivfflat or none"),
    "auto_index_rows": Option(_positive(parse_int), 10_000, "auto/ivfflat: build an index from this many vectors"),
    "hnsw_rows": Option(_positive(parse_int), 1_000_000, "auto: HNSW instead of IVFFlat from this many vectors"),
    "hnsw_m": Option(_positive(parse_int), 16, "HNSW: links per node (m)"),
    "hnsw_ef_construction": Option(_positive(parse_int), 64, "HNSW: candidate list size while building"),
    "ivfflat_lists": Option(_non_negative, 0, "IVFFlat: number of lists (0: by size, max(rows/1000, 100))"),
    "ef_search": Option(_positive(parse_int), 40, "HNSW: candidate list size per query (hnsw.ef_search)"),
    "probes": Option(_non_negative, 0, "IVFFlat: lists probed per query (0: sqrt of the index's lists)"),
    "iterative_scan": Option(parse_bool, True,
                             "filtered ANN search scans the index further until k rows match (pgvector 0.8)"),
    "halfvec_index": Option(parse_bool, False, "index vector columns at half precision (smaller index, exact reads)"),
    "maintenance_work_mem": Option(_pattern(_MEMORY, "512MB"), "512MB", "memory for index builds"),
    "create_extension": Option(parse_bool, True, "run CREATE EXTENSION vector when vectors need it"),
    "doc_index": Option(parse_bool, True, "GIN index on the filterable fields (faster eq/contains filters)"),
    "keep_running": Option(parse_bool, False, "embedded: leave the server running after the last store closes"),
}

"""Vector indexes: HNSW and IVFFlat, the automatic choice by size, and the SQL that builds and uses them.

Each index the store builds carries a JSON comment (``{"vectorknobs": {...}}``) saying which field and
metric it serves, so a store that connects later knows which searches it can answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vectorknobs.errors import CapabilityError, QueryError
from vectorknobs.metrics import DistanceMetric

from vectorknobs_pgvector.options import IndexMode, VectorType
from vectorknobs_pgvector.sql import quote

MAX_INDEX_DIMENSIONS = {"vector": 2_000, "halfvec": 4_000}
OPERATORS = {DistanceMetric.COSINE: "<=>", DistanceMetric.EUCLIDEAN: "<->", DistanceMetric.DOT_PRODUCT: "<#>"}
_OPCLASS_SUFFIX = {DistanceMetric.COSINE: "cosine_ops", DistanceMetric.EUCLIDEAN: "l2_ops",
                   DistanceMetric.DOT_PRODUCT: "ip_ops"}


class IndexKind(StrEnum):
    HNSW = "hnsw"
    IVFFLAT = "ivfflat"


@dataclass(frozen=True)
class VectorIndex:
    """An ANN index over one vector field for one metric."""

    field: str
    kind: IndexKind
    metric: DistanceMetric
    dimensions: int
    half: bool = False  # the column is indexed cast to halfvec
    params: dict[str, int] = dataclasses.field(default_factory=dict)  # m, ef_construction | lists
    name: str = ""
    rows: int = 0  # vectors in the field when it was built
    automatic: bool = False  # chosen by the index option (and re-planned as the table grows), not create_index

    def describe(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind.value, "metric": self.metric.value,
                "half_precision": self.half, **self.params, "name": self.name, "built_at_rows": self.rows,
                "automatic": self.automatic}

    def comment(self) -> str:
        return json.dumps({"vectorknobs": {"field": self.field, "kind": self.kind.value, "metric": self.metric.value,
                                           "dimensions": self.dimensions, "half": self.half,
                                           "params": self.params, "rows": self.rows,
                                           "automatic": self.automatic}}, sort_keys=True)

    @staticmethod
    def from_comment(name: str, text: str | None) -> VectorIndex | None:
        try:
            data = json.loads(text or "")["vectorknobs"]
            return VectorIndex(str(data["field"]), IndexKind(data["kind"]), DistanceMetric(data["metric"]),
                               int(data["dimensions"]), bool(data["half"]),
                               {str(k): int(v) for k, v in data["params"].items()}, name,
                               int(data.get("rows", 0)), bool(data.get("automatic", False)))
        except (ValueError, KeyError, TypeError):
            return None  # not one of ours


def index_name(table: str, field_name: str, metric: DistanceMetric) -> str:
    digest = hashlib.sha256(f"{table}.{field_name}.{metric.value}".encode()).hexdigest()[:8]
    return f"{table[:24]}_{field_name[:24]}_{digest}"


def column_expression(field_name: str, column_type: VectorType, dimensions: int, half: bool) -> str:
    """What the index covers, and what a search must order by to use it."""
    if half and column_type is VectorType.VECTOR:
        return f"({quote(field_name)})::halfvec({dimensions})"
    return quote(field_name)


def query_cast(column_type: VectorType, dimensions: int, half: bool) -> str:
    return f"halfvec({dimensions})" if half or column_type is VectorType.HALFVEC else "vector"


def plan_index(
    kind: IndexMode | IndexKind | str, rows: int, dimensions: int, column_type: VectorType, settings: dict[str, Any],
    *, half: bool | None = None, m: int | None = None, ef_construction: int | None = None, lists: int | None = None,
) -> tuple[IndexKind, bool, dict[str, int]] | None:
    """The index to build for a field holding ``rows`` vectors, or None when exact search is the better choice.

    ``auto`` follows the original design: nothing below ``auto_index_rows`` (exact search is fast there),
    IVFFlat up to ``hnsw_rows``, HNSW beyond (m doubled from ten million rows).
    """
    mode = str(kind)
    if mode == IndexMode.AUTO:
        if rows < settings["auto_index_rows"]:
            return None
        mode = IndexKind.HNSW if rows >= settings["hnsw_rows"] else IndexKind.IVFFLAT
    if mode not in (IndexKind.HNSW, IndexKind.IVFFLAT):
        raise QueryError(f"unknown index kind {kind!r}; use auto, hnsw or ivfflat")
    chosen = IndexKind(mode)
    use_half = settings["halfvec_index"] if half is None else half
    if column_type is VectorType.HALFVEC:
        use_half = False
    elif dimensions > MAX_INDEX_DIMENSIONS["vector"] and half is None:
        use_half = True  # the only way to index 2,001..4,000 dimensions
    limit = MAX_INDEX_DIMENSIONS["halfvec" if use_half or column_type is VectorType.HALFVEC else "vector"]
    if dimensions > limit:
        raise CapabilityError(
            f"pgvector indexes at most {limit} dimensions"
            f"{'' if use_half else ' (4,000 at half precision: halfvec_index=true)'}; this field has {dimensions}; "
            "searches on it stay exact"
        )
    if chosen is IndexKind.HNSW:
        default_m = settings["hnsw_m"] * (2 if rows >= 10_000_000 and m is None and str(kind) == "auto" else 1)
        params = {"m": m or default_m, "ef_construction": ef_construction or settings["hnsw_ef_construction"]}
        if params["ef_construction"] < 2 * params["m"]:
            raise QueryError("HNSW needs ef_construction >= 2 * m")
    else:
        params = {"lists": lists or settings["ivfflat_lists"] or auto_lists(rows)}
    return chosen, use_half, params


def auto_lists(rows: int) -> int:
    """IVFFlat lists by size (the original design): rows / 1000, at least 100; sqrt(rows) past a million."""
    return max(rows // 1000, 100) if rows <= 1_000_000 else int(math.sqrt(rows))


def create_sql(table_sql: str, index: VectorIndex, column_type: VectorType, concurrently: bool = False) -> str:
    expression = column_expression(index.field, column_type, index.dimensions, index.half)
    base = "halfvec" if index.half or column_type is VectorType.HALFVEC else "vector"
    opclass = f"{base}_{_OPCLASS_SUFFIX[index.metric]}"
    # DDL takes no parameters: every piece here is a validated name, an enum value or an int
    with_sql = ", ".join(f"{key} = {int(value)}" for key, value in sorted(index.params.items()))
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}{quote(index.name)} ON {table_sql} "
        f"USING {index.kind.value} (({expression}) {opclass}) WITH ({with_sql})"
    )


def comment_sql(schema: str, index: VectorIndex) -> str:
    return f"COMMENT ON INDEX {quote(schema)}.{quote(index.name)} IS {literal(index.comment())}"


def literal(text: str) -> str:
    """A SQL string literal (for DDL, which cannot take parameters; standard_conforming_strings is on)."""
    return "'" + text.replace("'", "''") + "'"


def probes_for(index: VectorIndex, probes: int) -> int:
    return probes or max(1, round(math.sqrt(index.params.get("lists", 1))))

"""``NAME://``: vectorknobs records in ENGINE.

    store = await vectorknobs.connect("NAME://host:port/collection?metric=cosine")

The core has checked every input before a primitive below runs (ids, names, vectors, dimensions, k,
metric, filter operators against ``capabilities``); it converts scores, applies thresholds, offsets and
sorts of vector results, and fills in source text after ``_vector_search``. Each primitive's contract is
in ``docs/writing-a-store-plugin.md``. Blocking client calls go through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vectorknobs import (
    Capabilities,
    ConfigError,
    DistanceMetric,
    Hit,
    Option,
    Query,
    Record,
    Schema,
    StoreConfig,
    VectorQuery,
    VectorStore,
    WriteMode,
)
from vectorknobs.config import parse_int
from vectorknobs.evaluate import matches
from vectorknobs.filters import And, Condition, Filter, Not, Operator

#: operators the engine evaluates natively; the rest go to ``vectorknobs.evaluate`` (never ignored)
NATIVE_OPERATORS = frozenset({Operator.EQ, Operator.NE, Operator.IN, Operator.NOT_IN})


class CLASSNAMEStore(VectorStore):
    """Records in ENGINE: TODO one line on how records map to the engine (a row, a document...)."""

    # Declare only what the store does: the conformance suite tests every declared capability, and
    # expects the typed error (CapabilityError) for everything else.
    capabilities = Capabilities(
        metrics=frozenset(DistanceMetric),
        per_query_metric=True,
        hybrid_search=False,
        sparse_vectors=False,
        persistence=True,
        transactions=False,
        exact_search=True,
    )
    # Every option, with its parser, default and help; README's Configuration table lists each one.
    options: ClassVar[Mapping[str, Option]] = {
        "collection": Option(str, "vectorknobs", "collection (table, index) holding the records"),
        "timeout": Option(parse_int, 30, "seconds to wait for the engine"),
    }

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)  # parses self.settings from the options above, checks the metric
        if not config.host:
            raise ConfigError("NAME needs a server: NAME://host:port/collection")
        self._client: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _open(self) -> None:
        raise NotImplementedError("connect, create the collection if missing")

    async def _close(self) -> None:
        self._client = None

    async def _load_schema(self) -> Schema:
        raise NotImplementedError("field names and each vector field's dimension, from the engine")

    # -- writes -------------------------------------------------------------------------------------
    async def _write(self, records: list[Record], mode: WriteMode) -> None:
        # All or nothing: in CREATE mode raise self.duplicate_ids(ids already stored), in UPDATE mode
        # self.missing_ids(ids not stored), before anything is written.
        raise NotImplementedError

    async def _delete(self, ids: list[str]) -> int:
        raise NotImplementedError("delete these ids; return how many existed")

    async def _drop(self) -> None:
        raise NotImplementedError("delete every record and the collection itself")

    # -- reads --------------------------------------------------------------------------------------
    async def _read(self, ids: list[str]) -> list[Record | None]:
        raise NotImplementedError("records in the order of ids, None where missing")

    async def _search(self, query: Query) -> list[Record]:
        raise NotImplementedError("filter, sort (evaluate.sort_records semantics, default id order), page")

    async def _count(self, where: Filter | None) -> int:
        raise NotImplementedError

    async def _vector_search(self, query: VectorQuery, metric: DistanceMetric) -> list[Hit]:
        # k best among records matching query.where that have the field, best first, ties by id;
        # k results whenever k records match (filter inside the engine's search, not after it).
        raise NotImplementedError


def split_filter(f: Filter | None) -> tuple[list[Filter], Filter | None]:
    """Split ``f`` into parts the engine evaluates and a residue for ``vectorknobs.evaluate.matches``.

    A record matches ``f`` when it matches every native part and the residue. Only the children of a
    top-level ``And`` are split; any other filter goes whole to one side. Never drop a part.
    """
    if f is None:
        return [], None
    parts = list(f.children) if isinstance(f, And) else [f]
    native = [p for p in parts if _native(p)]
    rest = [p for p in parts if not _native(p)]
    return native, (None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest)))


def _native(f: Filter) -> bool:
    if isinstance(f, Condition):
        return f.op in NATIVE_OPERATORS
    if isinstance(f, Not):
        return _native(f.child)
    return all(_native(c) for c in f.children)


def to_engine(f: Filter) -> Any:
    """The engine's form of a filter ``_native`` accepted, with the null semantics of filters.py."""
    raise NotImplementedError


def residue_matches(record: Record, residue: Filter | None) -> bool:
    return residue is None or matches(record, residue)

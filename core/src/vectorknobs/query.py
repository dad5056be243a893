"""``Query``: filters, sort and paging, plus the vector parts; a fluent builder and a dict form.

>>> q = Query().filter("category", "technology").similar_to([0.1, 0.2], k=10).sort("created_at", "desc")
>>> Query.from_dict(q.to_dict()) == q
True

Every query is immutable: each builder call returns a new one. ``similar_to``, ``near_text`` and
``hybrid`` turn a ``Query`` into a ``VectorQuery``, whose search returns ``VectorSearchResult``s.
A vector query takes its k nearest matches (after filter and score threshold), then applies
``sort`` to those k and skips ``offset`` of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from vectorknobs.errors import FilterError, InvalidNameError, QueryError
from vectorknobs.fields import FloatArray, as_vector
from vectorknobs.filters import Filter, and_, filter_to_dict, parse_filter, where
from vectorknobs.metrics import DistanceMetric
from vectorknobs.names import check_field_name, split_path

MAX_K = 10_000
DEFAULT_VECTOR_FIELD = "embedding"

EmbeddingFnRef = str | Callable[..., Any]


class VectorMode(StrEnum):
    SIMILAR = "similar_to"
    NEAR_TEXT = "near_text"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SortKey:
    path: str
    descending: bool = False


@dataclass(frozen=True, eq=False)
class VectorPart:
    """The vector half of a query. ``vector`` is None until a text is embedded (near_text, hybrid)."""

    mode: VectorMode
    field: str = DEFAULT_VECTOR_FIELD
    k: int = 10
    vector: FloatArray | None = None
    text: str | None = None
    metric: DistanceMetric | None = None
    include_source: bool = True
    include_vectors: bool = True
    alpha: float = 0.5
    text_fields: tuple[str, ...] = ()
    embedding_fn: EmbeddingFnRef | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorPart):
            return NotImplemented
        pairs = ((getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))
        return all(
            np.array_equal(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else a == b
            for a, b in pairs
        )

    __hash__ = None  # type: ignore[assignment]


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be an int from 1 to {MAX_K}, got {k!r}; page with offset for more")
    return k


@dataclass(frozen=True)
class Query:
    """Filter, sort and paging over records."""

    where: Filter | None = None
    order: tuple[SortKey, ...] = ()
    max_results: int | None = None
    skip: int = 0

    # -- builder -----------------------------------------------------------------------------
    def filter(self, *args: Any) -> Self:
        """AND a condition onto the query.

        ``filter("category", "tech")`` (eq), ``filter("price", ">", 3)``, ``filter(where(...))``,
        or ``filter({"price": {"$lt": 10}})``.
        """
        if len(args) == 1:
            new = parse_filter(args[0])
        elif len(args) == 2:
            new = where(args[0], "eq", args[1])
        elif len(args) == 3:
            new = where(*args)
        else:
            raise FilterError("filter() takes (filter), (path, value) or (path, operator, value)")
        return replace(self, where=new if self.where is None else and_(self.where, new))

    def sort(self, path: str, direction: str = "asc") -> Self:
        """Sort by a field (``"asc"`` or ``"desc"``); nulls come last either way; ties go by id."""
        try:
            segments = split_path(path)
        except InvalidNameError as err:
            raise QueryError(f"cannot sort: {err}") from None
        if direction not in ("asc", "desc"):
            raise QueryError(f"sort direction must be 'asc' or 'desc', got {direction!r}")
        return replace(self, order=(*self.order, SortKey(".".join(segments), direction == "desc")))

    def limit(self, n: int) -> Self:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise QueryError(f"limit must be a positive int, got {n!r}")
        return replace(self, max_results=n)

    def offset(self, n: int) -> Self:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise QueryError(f"offset must be an int >= 0, got {n!r}")
        return replace(self, skip=n)

    def similar_to(
        self,
        vector: npt.ArrayLike,
        field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        metric: DistanceMetric | str | None = None,
        include_source: bool = True,
        include_vectors: bool = True,
    ) -> VectorQuery:
        """Nearest neighbours of ``vector`` in vector field ``field``. ``include_vectors=False``: the results'
        records come without their vector fields (less to read and decode; the source text is still given)."""
        part = VectorPart(
            VectorMode.SIMILAR,
            _vector_field_name(field),
            check_k(k),
            vector=as_vector(vector, "query vector"),
            metric=None if metric is None else DistanceMetric.parse(metric),
            include_source=_check_flag("include_source", include_source),
            include_vectors=_check_flag("include_vectors", include_vectors),
        )
        return self._vector_query(part)

    def near_text(
        self,
        text: str,
        embedding_fn: EmbeddingFnRef | None = None,
        field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        metric: DistanceMetric | str | None = None,
        include_source: bool = True,
        include_vectors: bool = True,
    ) -> VectorQuery:
        """Nearest neighbours of ``text`` once embedded by ``embedding_fn`` (a name or a callable)."""
        part = VectorPart(
            VectorMode.NEAR_TEXT,
            _vector_field_name(field),
            check_k(k),
            text=_check_text(text),
            metric=None if metric is None else DistanceMetric.parse(metric),
            include_source=_check_flag("include_source", include_source),
            include_vectors=_check_flag("include_vectors", include_vectors),
            embedding_fn=embedding_fn,
        )
        return self._vector_query(part)

    def hybrid(
        self,
        text: str,
        vector: npt.ArrayLike | None = None,
        alpha: float = 0.5,
        field: str = DEFAULT_VECTOR_FIELD,
        k: int = 10,
        text_fields: Sequence[str] = (),
        embedding_fn: EmbeddingFnRef | None = None,
        metric: DistanceMetric | str | None = None,
        include_vectors: bool = True,
    ) -> VectorQuery:
        """Blend vector similarity (weight ``alpha``) with keyword match on ``text`` (``1 - alpha``)."""
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise QueryError(f"alpha must be a number from 0 to 1, got {alpha!r}")
        part = VectorPart(
            VectorMode.HYBRID,
            _vector_field_name(field),
            check_k(k),
            vector=None if vector is None else as_vector(vector, "query vector"),
            text=_check_text(text),
            metric=None if metric is None else DistanceMetric.parse(metric),
            include_vectors=_check_flag("include_vectors", include_vectors),
            alpha=float(alpha),
            text_fields=tuple(check_field_name(name) for name in text_fields),
            embedding_fn=embedding_fn,
        )
        return self._vector_query(part)

    def _vector_query(self, part: VectorPart) -> VectorQuery:
        if self.max_results is not None:  # it would be silently ignored: k is the vector query's limit
            raise QueryError("a vector query returns k results: set k in similar_to/near_text/hybrid, not limit")
        return VectorQuery(self.where, self.order, None, self.skip, part)

    # -- dict form ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.where is not None:
            data["filter"] = filter_to_dict(self.where)
        if self.order:
            data["sort"] = [{"field": s.path, "order": "desc" if s.descending else "asc"} for s in self.order]
        if self.max_results is not None:
            data["limit"] = self.max_results
        if self.skip:
            data["offset"] = self.skip
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Query | VectorQuery:
        """Build a query from its dict form (see ``to_dict``); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise QueryError(f"a query dict is expected, got {type(data).__name__}")
        known = {"filter", "sort", "limit", "offset", *(m.value for m in VectorMode), "score_threshold"}
        unknown = set(data) - known
        if unknown:
            raise QueryError(f"unknown query keys {sorted(unknown)}; known: {sorted(known)}")
        query: Query | VectorQuery = Query()
        if "filter" in data:
            query = query.filter(data["filter"])
        sort_items = data.get("sort", ())
        if isinstance(sort_items, (str, Mapping)):  # one key; iterating it would sort by each character
            sort_items = [sort_items]
        elif not isinstance(sort_items, (list, tuple)):
            raise QueryError(f"sort expects a list of sort keys, got {sort_items!r}")
        for item in sort_items:
            if isinstance(item, str):
                query = query.sort(item.lstrip("-"), "desc" if item.startswith("-") else "asc")
            elif isinstance(item, Mapping) and "field" in item:
                query = query.sort(item["field"], item.get("order", "asc"))
            else:
                raise QueryError(f"sort items are 'field', '-field' or {{'field': ..., 'order': ...}}, got {item!r}")
        if "limit" in data:
            query = query.limit(data["limit"])
        if "offset" in data:
            query = query.offset(data["offset"])
        modes = [m for m in VectorMode if m.value in data]
        if len(modes) > 1:
            raise QueryError("a query has at most one of similar_to, near_text and hybrid")
        if modes:
            spec = data[modes[0].value]
            if not isinstance(spec, Mapping):
                raise QueryError(f"{modes[0].value} expects a dict of its arguments")
            try:
                query = getattr(query, modes[0].value)(**spec)
            except TypeError as err:
                raise QueryError(f"{modes[0].value}: {err}") from None
        if "score_threshold" in data:
            if not isinstance(query, VectorQuery):
                raise QueryError("score_threshold needs a vector part (similar_to, near_text or hybrid)")
            query = query.score_threshold(data["score_threshold"])
        return query


@dataclass(frozen=True)
class VectorQuery(Query):
    """A query with a vector part; ``store.search`` returns ``VectorSearchResult``s for it."""

    vector: VectorPart = field(default_factory=lambda: VectorPart(VectorMode.SIMILAR))
    min_score: float | None = None

    def score_threshold(self, score: float) -> VectorQuery:
        """Drop results scoring below ``score`` (scores: higher = more similar, on every metric)."""
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise QueryError(f"score_threshold must be a finite number, got {score!r}")
        return replace(self, min_score=float(score))

    def limit(self, n: int) -> Self:
        raise QueryError("a vector query returns k results: set k in similar_to/near_text/hybrid, not limit")

    def with_vector(self, vector: FloatArray) -> VectorQuery:
        """The same query with its text embedded (used by stores for near_text and hybrid)."""
        return replace(self, vector=replace(self.vector, vector=as_vector(vector, "embedded query text")))

    def for_rows(self, matrix: npt.NDArray[np.float32]) -> list[VectorQuery]:
        """This query once per row of ``matrix``: a C-contiguous float32 matrix that ``as_matrix`` checked and
        that nothing else holds (it is made read-only; each query's vector is a view of its row). The rows are
        not checked again, which is what makes ``vector_search_batch`` cheaper than single searches."""
        matrix.flags.writeable = False
        part, fields = self.vector.__dict__, self.__dict__
        queries = []
        for row in matrix:  # frozen dataclasses, copied through their __dict__: no __init__ per row
            vector_part = object.__new__(VectorPart)
            vector_part.__dict__.update(part, vector=row)
            query = object.__new__(VectorQuery)
            query.__dict__.update(fields, vector=vector_part)
            queries.append(query)
        return queries

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        part = self.vector
        spec: dict[str, Any] = {"field": part.field, "k": part.k}
        if part.vector is not None:
            spec["vector"] = part.vector.tolist()
        if part.text is not None:
            spec["text"] = part.text
        if part.metric is not None:
            spec["metric"] = part.metric.value
        if part.mode is not VectorMode.HYBRID:
            spec["include_source"] = part.include_source
        if not part.include_vectors:
            spec["include_vectors"] = False
        if part.mode is VectorMode.HYBRID:
            spec["alpha"] = part.alpha
            if part.text_fields:
                spec["text_fields"] = list(part.text_fields)
        if part.embedding_fn is not None:
            if not isinstance(part.embedding_fn, str):
                raise QueryError("a query with a callable embedding_fn has no dict form; register it by name")
            spec["embedding_fn"] = part.embedding_fn
        if part.mode is VectorMode.SIMILAR:
            spec.pop("text", None)
        data[part.mode.value] = spec
        if self.min_score is not None:
            data["score_threshold"] = self.min_score
        return data


def _vector_field_name(name: str) -> str:
    try:
        return check_field_name(name)
    except InvalidNameError as err:
        raise QueryError(f"invalid vector field: {err}") from None


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise QueryError(f"{name} must be True or False, got {value!r}")
    return value


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise QueryError(f"query text must be a non-empty str, got {text!r}")
    return text

"""Property-based differential tests: random data and queries, the store under test against ``memory://``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vectorknobs as vk
from vectorknobs.testing._support import (
    ConfigLike,
    ConformanceBase,
    assert_ranked_like,
    fresh_config,
    ids_of,
    oracle_distance,
    ranked,
    scores_close,
    with_options,
)

T = TypeVar("T")
QueryDict = dict[str, Any]

ORACLE_CONFIG = "memory://"
DIMS = 3
STRINGS = ["", "a", "ab", "b", "ba", "a_b", "a%b", "B", "é", "a\\b", "Ab"]
SUBSTRINGS = ["a", "b", "", "_", "%", "ab", "\\"]
LIKE_PATTERNS = ["a%", "%b", "_", "a\\_b", "a\\%b", "%", "a_b", "%a%", "", "a\\\\b", "B%", "_b", "%\\_%"]
TAGS = ["x", "y", "z", "X"]
DATES = [
    datetime(2024, 1, 1),
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
    datetime(2023, 6, 1, 12, 30),
    datetime(2025, 1, 1, tzinfo=UTC),
]
NUMBERS = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.5, 2.0]))
IDS = st.text(alphabet="aAbBZé09-_. ", min_size=1, max_size=4)
SORT_PATHS = ["n", "s", "b", "d", "meta.r", "id", "tags", "nope", "embedding"]  # the last two are errors
VECTOR_SORT_PATHS = ["n", "s", "b", "d", "meta.r", "id"]
#: thresholds chosen away from the scores integer vectors produce, so float rounding cannot flip them
THRESHOLDS = [-2.71828, -0.61803, -0.1234, 0.0731, 0.3456, 0.57721, 0.70811, 0.91, 1.41421, 3.14159]

_ROW = st.fixed_dictionaries(
    {},
    optional={
        "n": st.one_of(st.none(), NUMBERS),
        "s": st.one_of(st.none(), st.sampled_from(STRINGS)),
        "b": st.one_of(st.none(), st.booleans()),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "meta": st.fixed_dictionaries(
            {}, optional={"r": st.one_of(st.none(), st.integers(-1, 3)), "t": st.sampled_from(TAGS)}
        ),
        "d": st.sampled_from(DATES),
    },
)
_VECTOR = st.lists(st.integers(-2, 2), min_size=DIMS, max_size=DIMS)


def datasets(vector_share: float) -> st.SearchStrategy[list[tuple[str, dict[str, Any]]]]:
    """Up to 12 ``(id, row)`` pairs; about ``vector_share`` of the rows have an ``embedding``."""
    has_vector = st.floats(0, 1).map(lambda x: x < vector_share)
    rows = st.tuples(_ROW, has_vector, _VECTOR).map(
        lambda item: {**item[0], "embedding": item[2]} if item[1] else item[0]
    )
    return st.lists(st.tuples(IDS, rows), min_size=1 if vector_share > 0.5 else 0, max_size=12,
                    unique_by=lambda item: item[0])


def build_records(data: list[tuple[str, dict[str, Any]]]) -> list[vk.Record]:
    records = []
    for record_id, row in data:
        fields = dict(row)
        if "embedding" in fields:
            fields["embedding"] = vk.VectorField([float(x) for x in fields["embedding"]], source_field="s")
        records.append(vk.Record(fields, id=record_id))
    return records


def _ordered_pair(values: st.SearchStrategy[T], key: Callable[[Any], Any] = lambda v: v) -> st.SearchStrategy[list[T]]:
    return st.tuples(values, values).map(lambda pair: sorted(pair, key=key))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def filter_trees(operators: frozenset[vk.Operator]) -> st.SearchStrategy[dict[str, Any]] | None:
    """Random filter trees in dict form, using only ``operators``; None if no leaf can be built."""
    leaves: list[st.SearchStrategy[dict[str, Any]]] = []

    def add(path: str, op: vk.Operator, operand: st.SearchStrategy[Any]) -> None:
        if op in operators:
            leaves.append(operand.map(lambda value: {path: {f"${op.value}": value}}))

    Op = vk.Operator
    scalars: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], Any]]] = [
        ("n", NUMBERS, lambda v: v),
        ("meta.r", st.integers(-1, 4), lambda v: v),
        ("s", st.sampled_from(STRINGS), lambda v: v),
        ("d", st.sampled_from(DATES), _utc),
        ("id", IDS, lambda v: v),
    ]
    for path, values, key in scalars:
        for op in (Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE):
            add(path, op, values)
        add(path, Op.IN, st.lists(values, max_size=3))
        add(path, Op.NOT_IN, st.lists(values, max_size=3))
        add(path, Op.BETWEEN, _ordered_pair(values, key))
    for op in (Op.EQ, Op.NE):
        add("b", op, st.booleans())
        add("n", op, st.none())
        add("s", op, st.none())
        add("n", op, st.sampled_from(["1", True, False]))  # other kinds never match numbers
        add("b", op, st.integers(0, 1))
    add("b", Op.IN, st.lists(st.booleans(), max_size=2))
    add("s", Op.GT, NUMBERS)
    for path in ("n", "s", "b", "tags", "meta", "meta.r", "d", "embedding", "nope"):
        add(path, Op.EXISTS, st.booleans())
    add("s", Op.CONTAINS, st.sampled_from(SUBSTRINGS))
    add("tags", Op.CONTAINS, st.sampled_from(TAGS))
    add("id", Op.CONTAINS, st.sampled_from(["a", "0", "-"]))
    add("s", Op.LIKE, st.sampled_from(LIKE_PATTERNS))
    add("id", Op.LIKE, st.sampled_from(LIKE_PATTERNS))
    if not leaves:
        return None
    return st.recursive(
        st.one_of(leaves),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
            children.map(lambda x: {"$not": x}),
        ),
        max_leaves=6,
    )


def _sorts(paths: list[str]) -> st.SearchStrategy[list[str]]:
    keys = st.lists(st.sampled_from(paths), max_size=2, unique=True)
    return keys.flatmap(lambda paths: st.tuples(*(st.sampled_from([p, f"-{p}"]) for p in paths)).map(list))


def filter_queries(operators: frozenset[vk.Operator]) -> st.SearchStrategy[QueryDict]:
    """Random record queries in dict form: filter, sort, limit, offset."""
    trees = filter_trees(operators)
    return st.fixed_dictionaries(
        {},
        optional={
            **({"filter": trees} if trees is not None else {}),
            "sort": _sorts(SORT_PATHS),
            "limit": st.integers(1, 5),
            "offset": st.integers(0, 4),
        },
    )


def vector_queries(operators: frozenset[vk.Operator], metric: vk.DistanceMetric) -> st.SearchStrategy[QueryDict]:
    """Random vector queries in dict form: similar_to (vector, k, metric, include_source, include_vectors) with
    filter, threshold, sort, offset."""
    trees = filter_trees(operators)
    similar = st.fixed_dictionaries(
        {"vector": st.lists(st.integers(-2, 2), min_size=DIMS, max_size=DIMS), "k": st.integers(1, 14),
         "metric": st.just(metric.value)},
        optional={"include_source": st.booleans(), "include_vectors": st.booleans()},
    )
    return st.fixed_dictionaries(
        {"similar_to": similar},
        optional={
            **({"filter": trees} if trees is not None else {}),
            "sort": _sorts(VECTOR_SORT_PATHS),
            "offset": st.integers(0, 3),
            "score_threshold": st.sampled_from(THRESHOLDS),
        },
    )


async def _attempt(call: Awaitable[T]) -> tuple[T | None, vk.VectorknobsError | None]:
    try:
        return await call, None
    except vk.VectorknobsError as err:
        return None, err


def _same_error(expected: vk.VectorknobsError, actual: vk.VectorknobsError | None, query: QueryDict) -> None:
    assert actual is not None, (
        f"the oracle raises {type(expected).__name__} ({expected}) for {query!r}; the store does not"
    )
    assert isinstance(actual, type(expected)), (
        f"for {query!r} the oracle raises {type(expected).__name__} ({expected}); the store raises "
        f"{type(actual).__name__} ({actual})"
    )


class DifferentialTests(ConformanceBase):
    """Random datasets and queries (hypothesis): the store under test answers exactly like a fresh ``memory://``
    store loaded with the same records.

    Set ``differential_max_examples`` on your class to run more (or fewer) examples; override
    ``fresh_config`` if your config cannot be made unique per example by a sub-directory.
    """

    differential_max_examples: ClassVar[int] = 25

    def fresh_config(self, config: ConfigLike, label: str) -> ConfigLike:
        """The config of a fresh, empty store for one example (default: a sub-directory of a path config,
        else ``config`` itself; the store is dropped after every example either way)."""
        return fresh_config(config, label)

    def _settings(self) -> settings:
        return settings(
            max_examples=self.differential_max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )

    async def test_filter_queries_match_the_memory_oracle(self, store_config: ConfigLike) -> None:
        """Random filter trees (every declared operator, nested and/or/not, missing fields and None, mixed
        kinds), sorts, limits and offsets give the same records, in the same order, as ``memory://``; so do
        count() and stream(); a query the oracle rejects raises the same error type.

        Troubleshooting: hypothesis prints the failing dataset and query; paste them into a plain test.
        """
        operators = self.declared(store_config).filter_operators
        labels = itertools.count()

        @self._settings()
        @given(data=datasets(0.5), queries=st.lists(filter_queries(operators), min_size=1, max_size=4))
        def check(data: list[tuple[str, dict[str, Any]]], queries: list[QueryDict]) -> None:
            config = self.fresh_config(store_config, f"example-{next(labels)}")
            asyncio.run(self._compare(config, None, build_records(data), queries, self._compare_records))

        await asyncio.to_thread(check)

    async def test_vector_queries_match_the_memory_oracle(self, store_config: ConfigLike) -> None:
        """Random vector queries (each declared metric, k, filter, score threshold, sort, offset) over random
        small vectors with many exact ties return the same ids in the same order (ties within tolerance may
        swap), the same scores and distances, and the same records and source texts as ``memory://``.

        Troubleshooting: ties are frequent here (integer vectors); break them by id, and convert distances to
        scores exactly as ``DistanceMetric.distance_to_score`` does.
        """
        caps = self.declared(store_config)
        metrics = sorted(caps.metrics)
        labels = itertools.count()
        examples = st.sampled_from(metrics).flatmap(
            lambda m: st.tuples(
                st.just(m), datasets(0.85), st.lists(vector_queries(caps.filter_operators, m), min_size=1, max_size=3)
            )
        )

        @self._settings()
        @given(example=examples)
        def check(example: tuple[vk.DistanceMetric, list[tuple[str, dict[str, Any]]], list[QueryDict]]) -> None:
            metric, data, queries = example
            config = self.fresh_config(store_config, f"example-{next(labels)}")
            asyncio.run(self._compare(config, metric, build_records(data), queries, self._compare_vector_results))

        await asyncio.to_thread(check)

    async def _compare(
        self,
        config: ConfigLike,
        metric: vk.DistanceMetric | None,
        records: list[vk.Record],
        queries: list[QueryDict],
        compare: Callable[[vk.VectorStore, vk.VectorStore, QueryDict], Awaitable[None]],
    ) -> None:
        if metric is not None:
            config = with_options(config, metric=metric)
        oracle_config = with_options(ORACLE_CONFIG, metric=metric or "cosine")
        async with vk.connect(config) as store, vk.connect(oracle_config) as oracle:
            try:
                assert await store.count() == 0, (
                    "the store for a differential example is not empty: override fresh_config() to give each "
                    "example its own store"
                )
                assert await store.bulk_create(records) == await oracle.bulk_create(records)
                for query in queries:
                    await compare(store, oracle, query)
            finally:
                await store.drop()

    @staticmethod
    async def _compare_records(store: vk.VectorStore, oracle: vk.VectorStore, query: QueryDict) -> None:
        expected, expected_error = await _attempt(oracle.search(query))
        actual, actual_error = await _attempt(store.search(query))
        if expected_error is not None:
            _same_error(expected_error, actual_error, query)
            return
        if actual_error is not None:
            raise actual_error
        assert ids_of(actual or []) == ids_of(expected or []), f"query {query!r}"
        assert actual == expected, f"query {query!r}: records differ"
        where_ = query.get("filter")
        assert await store.count(where_) == await oracle.count(where_), f"count({where_!r})"
        streamed = [r async for batch in store.stream(where_, batch_size=3) for r in batch]
        assert streamed == [r async for batch in oracle.stream(where_) for r in batch], f"stream({where_!r})"

    @staticmethod
    async def _compare_vector_results(store: vk.VectorStore, oracle: vk.VectorStore, query: QueryDict) -> None:
        expected, expected_error = await _attempt(oracle.search(query))
        actual, actual_error = await _attempt(store.search(query))
        if expected_error is not None:
            _same_error(expected_error, actual_error, query)
            return
        if actual_error is not None:
            raise actual_error
        assert expected is not None
        assert actual is not None
        part = query["similar_to"]
        metric = part["metric"]
        # every candidate's exact score, from the oracle, to judge ties
        every_candidate: QueryDict = {"similar_to": {**part, "k": max(1, await oracle.count()), "include_source": True}}
        if "filter" in query:
            every_candidate["filter"] = query["filter"]
        everything = await oracle.search(every_candidate)
        scores = {r.id: r.score for r in everything}
        by_id = {r.id: r for r in everything}
        threshold = query.get("score_threshold")
        if threshold is not None:
            assume(not any(scores_close(s, threshold) for s in scores.values()))
        candidates = [(i, s) for i, s in ranked(scores) if threshold is None or s >= threshold]
        k, offset = part["k"], query.get("offset", 0)
        what = f"query {query!r}"
        if not query.get("sort"):  # no sort keys (absent or empty): ranked by score
            assert_ranked_like(actual, scores, candidates[:k][offset:], what)
        else:
            assert len(actual) == len(expected), f"{what}: {len(actual)} results, expected {len(expected)}"
            tie_at_k = len(candidates) > k and scores_close(candidates[k - 1][1], candidates[k][1])
            if not tie_at_k:
                assert ids_of(actual) == ids_of(expected), what
            else:  # which of the tied records made the k differs; each must be eligible, in sort order
                floor = candidates[k - 1][1]
                assert all(i in scores and (scores[i] >= floor or scores_close(scores[i], floor))
                           for i in ids_of(actual)), what
                resorted = await oracle.search({"filter": {"id": {"$in": ids_of(actual)}}, "sort": query["sort"]})
                assert ids_of(actual) == ids_of(resorted), f"{what}: not in sort order"
        for result in actual:
            oracle_result = by_id[result.id]
            assert scores_close(result.score, oracle_result.score), f"{what}: score of {result.id!r}"
            assert scores_close(result.distance, oracle_distance(result.score, metric)), f"{what}: distance"
            assert result.record == oracle_result.record, f"{what}: record {result.id!r} differs"
            want_source = oracle_result.source_text if part.get("include_source", True) else None
            assert result.source_text == want_source, f"{what}: source_text of {result.id!r}"

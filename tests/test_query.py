"""Query and VectorQuery: the builder, the dict form, malformed queries; DistanceMetric and exact scores."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from vectorknobs import (
    DistanceMetric,
    FilterError,
    HashingEmbedder,
    Query,
    QueryError,
    VectorQuery,
    VectorValueError,
    and_,
    where,
)
from vectorknobs.errors import InvalidNameError
from vectorknobs.metrics import exact_scores
from vectorknobs.query import MAX_K, SortKey, VectorMode

V = [0.25, -0.5, 1.0]

# -- builder ------------------------------------------------------------------------------------


def test_queries_are_immutable_builders() -> None:
    base = Query()
    filtered = base.filter("cat", "tech")
    assert base == Query()
    assert filtered.where == where("cat", "eq", "tech")
    assert filtered.filter("price", ">", 3).where == and_(where("cat", "eq", "tech"), where("price", ">", 3))
    with pytest.raises(AttributeError):
        filtered.skip = 3  # type: ignore[misc]


def test_filter_accepts_every_form() -> None:
    by_pair = Query().filter("price", 3)
    by_triple = Query().filter("price", "==", 3)
    by_dict = Query().filter({"price": 3})
    by_tree = Query().filter(where("price", "eq", 3))
    assert by_pair == by_triple == by_dict == by_tree
    with pytest.raises(FilterError, match="takes"):
        Query().filter()
    with pytest.raises(FilterError, match="takes"):
        Query().filter("a", "eq", 1, 2)


def test_sort_limit_offset() -> None:
    q = Query().sort("created_at", "desc").sort("meta.rank").limit(5).offset(10)
    assert q.order == (SortKey("created_at", True), SortKey("meta.rank", False))
    assert (q.max_results, q.skip) == (5, 10)
    assert Query().offset(0).skip == 0


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Query().sort("x", "down"), "'asc' or 'desc'"),
        (lambda: Query().sort("bad name"), "cannot sort"),
        (lambda: Query().sort(""), "cannot sort"),
        (lambda: Query().limit(0), "positive int"),
        (lambda: Query().limit(-1), "positive int"),
        (lambda: Query().limit(True), "positive int"),
        (lambda: Query().limit(2.0), "positive int"),
        (lambda: Query().offset(-1), "int >= 0"),
        (lambda: Query().offset(False), "int >= 0"),
        (lambda: Query().offset("1"), "int >= 0"),
    ],
)
def test_bad_sort_and_paging(build: Any, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        build()


def test_similar_to_makes_a_vector_query() -> None:
    q = Query().filter("cat", "tech").sort("rank").offset(2).similar_to(V, "body_vec", k=5, metric="l2",
                                                                          include_source=False)
    assert isinstance(q, VectorQuery)
    part = q.vector
    assert part.mode is VectorMode.SIMILAR
    assert part.field == "body_vec"
    assert part.k == 5
    assert part.metric is DistanceMetric.EUCLIDEAN
    assert part.include_source is False
    assert part.vector is not None
    assert part.vector.dtype == np.float32
    assert q.where == where("cat", "eq", "tech")
    assert q.skip == 2
    assert q.order == (SortKey("rank", False),)


def test_near_text_and_hybrid_keep_their_text() -> None:
    nt = Query().near_text("hello", embedding_fn="hash", k=3)
    assert nt.vector.mode is VectorMode.NEAR_TEXT
    assert nt.vector.text == "hello"
    assert nt.vector.vector is None
    assert nt.vector.embedding_fn == "hash"
    hy = Query().hybrid("hello world", V, alpha=0.25, text_fields=["title", "body"])
    assert hy.vector.mode is VectorMode.HYBRID
    assert hy.vector.alpha == 0.25
    assert hy.vector.text_fields == ("title", "body")
    assert isinstance(hy.vector.alpha, float)
    assert Query().hybrid("x", alpha=1).vector.alpha == 1.0


def test_with_vector_fills_in_the_embedded_text() -> None:
    q = Query().near_text("hello", embedding_fn="hash")
    filled = q.with_vector(np.array([1.0, 2.0]))
    assert filled.vector.vector is not None
    assert filled.vector.vector.tolist() == [1.0, 2.0]
    assert q.vector.vector is None
    with pytest.raises(VectorValueError):
        q.with_vector(np.array([np.nan]))


def test_score_threshold() -> None:
    q = Query().similar_to(V).score_threshold(0.5)
    assert q.min_score == 0.5
    assert Query().similar_to(V).score_threshold(-2).min_score == -2.0
    for bad in (float("nan"), float("inf"), True, "0.5", None):
        with pytest.raises(QueryError, match="score_threshold"):
            Query().similar_to(V).score_threshold(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Query().similar_to(V, k=0), QueryError, "k must be an int from 1"),
        (lambda: Query().similar_to(V, k=MAX_K + 1), QueryError, "k must be"),
        (lambda: Query().similar_to(V, k=True), QueryError, "k must be"),
        (lambda: Query().similar_to(V, k=2.0), QueryError, "k must be"),
        (lambda: Query().near_text("x", k=-1), QueryError, "k must be"),
        (lambda: Query().similar_to(V, metric="manhattan"), QueryError, "unknown metric 'manhattan'"),
        (lambda: Query().similar_to(V, field="bad field"), QueryError, "invalid vector field"),
        (lambda: Query().similar_to(V, field="id"), QueryError, "invalid vector field"),
        (lambda: Query().similar_to([np.nan, 1.0]), VectorValueError, "NaN"),
        (lambda: Query().similar_to([]), VectorValueError, "empty"),
        (lambda: Query().similar_to([[1.0]]), VectorValueError, "1-D"),
        (lambda: Query().similar_to("abc"), VectorValueError, "sequence of numbers"),
        (lambda: Query().near_text(""), QueryError, "non-empty str"),
        (lambda: Query().near_text("   "), QueryError, "non-empty str"),
        (lambda: Query().near_text(5), QueryError, "non-empty str"),  # type: ignore[arg-type]
        (lambda: Query().hybrid("x", alpha=1.5), QueryError, "alpha must be a number from 0 to 1"),
        (lambda: Query().hybrid("x", alpha=-0.1), QueryError, "alpha"),
        (lambda: Query().hybrid("x", alpha=float("nan")), QueryError, "alpha"),
        (lambda: Query().hybrid("x", alpha=True), QueryError, "alpha"),
        (lambda: Query().hybrid("x", alpha="0.5"), QueryError, "alpha"),  # type: ignore[arg-type]
        (lambda: Query().hybrid("x", text_fields=["bad name"]), InvalidNameError, "bad name"),
        (lambda: Query().limit(5).similar_to(V), QueryError, "not limit"),
        (lambda: Query().limit(5).near_text("x"), QueryError, "not limit"),
        (lambda: Query().limit(5).hybrid("x"), QueryError, "not limit"),
        (lambda: Query().similar_to(V).limit(5), QueryError, "set k"),
    ],
)
def test_bad_vector_queries(build: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()


# -- dict form ---------------------------------------------------------------------------------------

ROUND_TRIPS = [
    Query(),
    Query().filter({"category": "tech", "price": {"$gte": 3, "$lt": 10}}),
    Query().filter({"$or": [{"a": 1}, {"$not": {"b": {"$in": ["x", "y"]}}}]}),
    Query().filter("at", "between", ["2024-01-01", "2024-12-31"]),
    Query().sort("created_at", "desc").sort("id"),
    Query().limit(10),
    Query().offset(20),
    Query().filter("a", 1).sort("b").limit(3).offset(6),
    Query().similar_to(V),
    Query().filter("cat", "tech").sort("rank", "desc").offset(1).similar_to(V, "vec", 7, "dot", False),
    Query().similar_to(np.float32([1e-30, 3.4e38, -0.1])),
    Query().near_text("what is vectorknobs?", embedding_fn="hash", k=4, metric="cosine"),
    Query().near_text("text", field="other", include_source=False),
    Query().hybrid("keywords here"),
    Query().hybrid("keywords", V, alpha=0.0, k=2, text_fields=["title"], embedding_fn="hash", metric="euclidean"),
    Query().similar_to(V).score_threshold(0.25),
    Query().filter("a", "exists", True).near_text("x", embedding_fn="hash").score_threshold(-1),
    Query().hybrid("x", V, alpha=1.0).score_threshold(0),
]


@pytest.mark.parametrize("query", ROUND_TRIPS, ids=lambda q: json.dumps(q.to_dict())[:60])
def test_dict_form_round_trips(query: Query) -> None:
    data = query.to_dict()
    assert Query.from_dict(data) == query
    # and it is plain JSON
    again = Query.from_dict(json.loads(json.dumps(data)))
    assert again == query
    assert type(again) is type(query)


def test_vectors_survive_the_dict_form_bit_exact() -> None:
    vector = np.random.default_rng(3).standard_normal(64).astype(np.float32)
    again = Query.from_dict(json.loads(json.dumps(Query().similar_to(vector).to_dict())))
    assert isinstance(again, VectorQuery)
    assert again.vector.vector is not None
    assert again.vector.vector.tobytes() == vector.tobytes()


def test_dict_form_shape() -> None:
    q = Query().filter("a", 1).sort("b", "desc").offset(2).similar_to([1.0], k=3).score_threshold(0.5)
    assert q.to_dict() == {
        "filter": {"a": {"$eq": 1}},
        "sort": [{"field": "b", "order": "desc"}],
        "offset": 2,
        "similar_to": {"field": "embedding", "k": 3, "vector": [1.0], "include_source": True},
        "score_threshold": 0.5,
    }


def test_dict_form_accepts_sort_shorthands() -> None:
    expected = Query().sort("price", "desc").sort("name")
    assert Query.from_dict({"sort": ["-price", "name"]}) == expected
    assert Query.from_dict({"sort": [{"field": "price", "order": "desc"}, {"field": "name"}]}) == expected
    # a single key, not a list of its characters
    assert Query.from_dict({"sort": "-price"}) == Query().sort("price", "desc")
    assert Query.from_dict({"sort": {"field": "price"}}) == Query().sort("price")


def test_a_callable_embedder_has_no_dict_form() -> None:
    q = Query().near_text("x", embedding_fn=HashingEmbedder(16))
    with pytest.raises(QueryError, match="register it by name"):
        q.to_dict()


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"filters": {"a": 1}}, QueryError, "unknown query keys \\['filters'\\]"),
        ({"k": 5}, QueryError, "unknown query keys"),
        ("filter", QueryError, "query dict is expected"),
        ({"filter": {}}, FilterError, "non-empty dict"),
        ({"filter": {"a": {"$foo": 1}}}, FilterError, "foo"),
        ({"sort": [5]}, QueryError, "sort items are"),
        ({"sort": [{"order": "desc"}]}, QueryError, "sort items are"),
        ({"sort": 5}, QueryError, "list of sort keys"),
        ({"sort": [{"field": "a", "order": "up"}]}, QueryError, "'asc' or 'desc'"),
        ({"limit": 0}, QueryError, "positive int"),
        ({"limit": "10"}, QueryError, "positive int"),
        ({"offset": -5}, QueryError, "int >= 0"),
        ({"limit": 5, "similar_to": {"vector": V}}, QueryError, "not limit"),
        ({"similar_to": {"vector": V}, "near_text": {"text": "x"}}, QueryError, "at most one"),
        ({"similar_to": [1.0, 2.0]}, QueryError, "expects a dict"),
        ({"similar_to": {"vector": V, "bogus": 1}}, QueryError, "similar_to: .*bogus"),
        ({"similar_to": {}}, QueryError, "similar_to: .*vector"),
        ({"similar_to": {"vector": V, "k": 0}}, QueryError, "k must be"),
        ({"near_text": {"text": "x", "k": 10_001}}, QueryError, "k must be"),
        ({"hybrid": {"text": "x", "alpha": 2}}, QueryError, "alpha"),
        ({"similar_to": {"vector": V, "metric": "hamming"}}, QueryError, "unknown metric"),
        ({"score_threshold": 0.5}, QueryError, "needs a vector part"),
        ({"similar_to": {"vector": V}, "score_threshold": "high"}, QueryError, "finite number"),
    ],
)
def test_malformed_query_dicts_name_the_problem(data: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Query.from_dict(data)


def test_query_equality() -> None:
    assert Query().similar_to([1.0, 2.0]) == Query().similar_to(np.array([1.0, 2.0]))
    assert Query().similar_to([1.0, 2.0]) != Query().similar_to([1.0, 2.5])
    assert Query().similar_to([1.0]) != Query().near_text("x")
    assert Query() != Query().similar_to([1.0])
    assert Query().similar_to([1.0]).score_threshold(0.1) != Query().similar_to([1.0])


# -- metrics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "metric"),
    [
        ("cosine", DistanceMetric.COSINE),
        ("cos", DistanceMetric.COSINE),
        ("COSINE", DistanceMetric.COSINE),
        (" cosine ", DistanceMetric.COSINE),
        ("euclidean", DistanceMetric.EUCLIDEAN),
        ("l2", DistanceMetric.EUCLIDEAN),
        ("L2", DistanceMetric.EUCLIDEAN),
        ("euclid", DistanceMetric.EUCLIDEAN),
        ("dot_product", DistanceMetric.DOT_PRODUCT),
        ("dot", DistanceMetric.DOT_PRODUCT),
        ("ip", DistanceMetric.DOT_PRODUCT),
        ("inner_product", DistanceMetric.DOT_PRODUCT),
        (DistanceMetric.DOT_PRODUCT, DistanceMetric.DOT_PRODUCT),
    ],
)
def test_metric_aliases(alias: Any, metric: DistanceMetric) -> None:
    assert DistanceMetric.parse(alias) is metric


@pytest.mark.parametrize("bad", ["manhattan", "", "cosine_similarity", 3, None])
def test_unknown_metric_lists_the_choices(bad: Any) -> None:
    with pytest.raises(QueryError, match="use one of cosine, euclidean, dot_product"):
        DistanceMetric.parse(bad)


MATRIX = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [-6.0, -8.0], [0.0, 2.0]], dtype=np.float32)
QUERY = np.array([1.0, 0.0], dtype=np.float32)


def test_exact_scores_cosine() -> None:
    scores = exact_scores(MATRIX, QUERY, DistanceMetric.COSINE)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, [0.6, 1.0, 0.0, -0.6, 0.0], atol=1e-12)


def test_exact_scores_dot_product() -> None:
    scores = exact_scores(MATRIX, np.array([2.0, -1.0], dtype=np.float32), DistanceMetric.DOT_PRODUCT)
    np.testing.assert_allclose(scores, [2.0, 2.0, 0.0, -4.0, -2.0], atol=1e-12)


def test_exact_scores_euclidean() -> None:
    scores = exact_scores(MATRIX, QUERY, DistanceMetric.EUCLIDEAN)
    distances = [math.sqrt(4 + 16), 0.0, 1.0, math.sqrt(49 + 64), math.sqrt(1 + 4)]
    np.testing.assert_allclose(scores, [1 / (1 + d) for d in distances], atol=1e-12)
    assert scores[1] == 1.0


def test_cosine_zero_vectors() -> None:
    # a zero stored vector is similar to nothing; a zero query has no cosine at all
    assert exact_scores(np.zeros((2, 3), dtype=np.float32), np.ones(3, dtype=np.float32), DistanceMetric.COSINE
                        ).tolist() == [0.0, 0.0]
    with pytest.raises(VectorValueError, match="zero query vector"):
        exact_scores(MATRIX, np.zeros(2, dtype=np.float32), DistanceMetric.COSINE)
    # the other metrics are defined for a zero query
    assert exact_scores(MATRIX, np.zeros(2, dtype=np.float32), DistanceMetric.DOT_PRODUCT).tolist() == [0.0] * 5


def test_cosine_is_clipped_to_its_range() -> None:
    v = np.full((1, 8), 0.1, dtype=np.float32)
    assert exact_scores(v, v[0], DistanceMetric.COSINE)[0] <= 1.0
    assert exact_scores(-v, v[0], DistanceMetric.COSINE)[0] >= -1.0


def test_exact_scores_in_float64_even_for_large_values() -> None:
    big = np.array([[1e20, 1e20]], dtype=np.float32)
    assert math.isfinite(exact_scores(big, big[0], DistanceMetric.COSINE)[0])
    assert exact_scores(big, big[0], DistanceMetric.DOT_PRODUCT)[0] == pytest.approx(2 * float(np.float32(1e20)) ** 2)


@pytest.mark.parametrize("metric", list(DistanceMetric))
def test_distance_and_score_are_inverse(metric: DistanceMetric) -> None:
    scores = exact_scores(MATRIX, np.array([0.5, 0.5], dtype=np.float32), metric)
    np.testing.assert_allclose(metric.distance_to_score(metric.score_to_distance(scores)), scores, atol=1e-12)


def test_reported_distances() -> None:
    one = np.array([0.25])
    assert DistanceMetric.COSINE.score_to_distance(one).tolist() == [0.75]
    assert DistanceMetric.DOT_PRODUCT.score_to_distance(one).tolist() == [-0.25]
    assert DistanceMetric.EUCLIDEAN.score_to_distance(one).tolist() == [3.0]

"""Filters: which parts Chroma answers, and that every filter — translated or checked in Python — matches the
memory store exactly, in searches, counts, streams and k-nearest searches (never fewer than k)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.filters import parse_filter
from vectorknobs.testing import oracle_scores, with_options
from vectorknobs_chroma import where as where_module
from vectorknobs_chroma.layout import KIND, SIGNATURE, TAGS
from vectorknobs_chroma.where import NOTHING, Signatures, translate

VECTOR_FIELDS = {"embedding"}

#: (filter, does Chroma answer it exactly?)
TRANSLATIONS: list[tuple[dict[str, Any], bool]] = [
    ({"category": "fruit"}, True),
    ({"price": {"$gte": 2.5}}, True),
    ({"price": {"$between": [1, 3]}}, True),
    ({"$not": {"price": {"$gt": 3}}}, True),
    ({"when": {"$lt": datetime(2024, 1, 1)}}, True),
    ({"tags": {"$contains": 3}}, True),
    ({"tags": {"$contains": True}}, True),
    ({"price": None}, True),
    ({"meta.rank": {"$exists": False}}, True),
    ({"name": {"$like": "abc"}}, True),
    ({"name": {"$like": "%%"}}, True),
    ({"category": {"$in": ["a", 1, True, datetime(2024, 1, 1)]}}, True),
    ({"$or": [{"category": "a"}, {"$not": {"price": {"$in": [1, 2]}}}]}, True),
    ({"id": {"$in": ["a", "b"]}, "price": 3}, True),
    ({"embedding": 5}, True),
    ({"name": {"$gt": "a"}}, False),
    ({"name": {"$like": "a%"}}, False),
    ({"name": {"$contains": "an"}}, False),
    ({"tags": {"$contains": "x"}}, False),
    ({"n": 2**60}, False),
    ({"n": {"$in": [1, 2**53]}}, False),
    ({"id": {"$ne": "a"}}, False),
    ({"$or": [{"id": "a"}, {"price": 1}]}, False),
    ({"embedding": {"$exists": True}}, False),
]


@pytest.mark.parametrize(("where", "exact"), TRANSLATIONS, ids=repr)
def test_what_chroma_answers_exactly(where: dict[str, Any], exact: bool) -> None:
    assert translate(parse_filter(where), VECTOR_FIELDS, Signatures()).exact is exact


def test_top_level_id_conditions_become_chroma_ids() -> None:
    where = parse_filter({"id": {"$in": ["a", "b", 3]}, "$and": [{"id": "b"}, {"price": 1}]})
    t = translate(where, VECTOR_FIELDS, Signatures())
    assert (t.ids, t.exact) == (frozenset({"b"}), True)


def test_kind_tests_ask_for_the_registered_signatures_that_have_the_field() -> None:
    signatures = Signatures(["a:s,b:n", "a:n", "c:x"])

    def where(f: dict[str, Any]) -> Any:
        t = translate(parse_filter(f), VECTOR_FIELDS, signatures)
        assert t.exact
        assert t.kinds_used is ("." not in next(iter(f)))
        return t.where

    assert where({"a": None}) == {SIGNATURE: {"$nin": ["a:n", "a:s,b:n"]}}
    assert where({"a": {"$exists": True}}) == {SIGNATURE: {"$in": ["a:n", "a:s,b:n"]}}
    assert where({"c": {"$exists": True}}) == {SIGNATURE: "c:x"}
    assert where({"z": {"$exists": True}}) == NOTHING  # no record has it
    assert where({"z": None}) is None  # every record lacks it
    assert where({"m.k": None}) == {f"{KIND}m.k": {"$nin": TAGS}}  # nested: tagged in the entry


@pytest.mark.asyncio
async def test_a_kind_test_over_too_many_signatures_is_checked_in_python(
        any_config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records with very varied fields make long signature lists; past ``MAX_SIGNATURES`` a kind test selects
    every record and the store checks them, with the same results."""
    monkeypatch.setattr(where_module, "MAX_SIGNATURES", 2)
    records = [vk.Record({"a": 1, f"f{i}": "x", "embedding": vk.VectorField([1.0, float(i)])}, id=f"r{i}")
               for i in range(4)] + [vk.Record({"b": "y", "embedding": vk.VectorField([0.0, 1.0])}, id="no-a")]
    assert not translate(parse_filter({"a": None}), VECTOR_FIELDS, Signatures(["a:n,f0:s", "a:n,f1:s", "a:n,f2:s"])
                         ).exact
    async with vk.connect(any_config) as store:
        await store.bulk_create(records)
        assert await store.count({"a": None}) == 1
        assert [r.id for r in await store.search({"filter": {"a": {"$exists": True}}})] == ["r0", "r1", "r2", "r3"]
        assert [h.id for h in await store.vector_search([0.0, 1.0], k=2, filter={"a": None})] == ["no-a"]


_PLUS2 = timezone(timedelta(hours=2))
ROWS: dict[str, dict[str, Any]] = {
    "int2": {"n": 2, "name": "banana", "tags": [1, 2.5, "x"], "when": datetime(2024, 1, 1, 12, tzinfo=UTC)},
    "flt2": {"n": 2.0, "name": "Banana", "tags": ["xy"], "when": datetime(2024, 1, 1, 14, tzinfo=_PLUS2)},
    "half": {"n": 2.5, "name": "an", "tags": [True], "when": datetime(2024, 1, 1, 12)},
    "neg": {"n": -1, "name": "a_b", "tags": [], "meta": {"rank": 1, "x-y": "k"}},
    "bool": {"n": True, "name": "100%", "meta": {"rank": None}},
    "text": {"n": "2", "name": None, "tags": [2**70, None]},
    "huge": {"n": 2**53 + 1, "name": "~k:name", "meta": {}},
    "big": {"n": 2**53, "name": "ÜnÜ", "tags": [{"n": 1}, [1]]},
    "none": {"n": None},
    "empty": {},
}
QUERIES: list[dict[str, Any]] = [
    {"n": 2},
    {"n": 2.5},
    {"n": -1.5},
    {"n": {"$gte": 2.5}},
    {"n": {"$gt": 2}},
    {"n": {"$lte": 2.9}},
    {"n": {"$lt": -0.5}},
    {"n": {"$in": [2.5, -1]}},
    {"n": {"$between": [-1.5, 2.2]}},
    {"n": True},
    {"n": 1},
    {"n": "2"},
    {"n": {"$ne": 2}},
    {"n": {"$not_in": [2, "2"]}},
    {"n": 2**53},
    {"n": 2**53 + 1},
    {"n": {"$gt": 2**53}},
    {"n": {"$in": [2**53 + 1, 2]}},
    {"n": None},
    {"n": {"$exists": True}},
    {"$not": {"n": {"$gt": 1}}},
    {"$not": {"n": {"$between": [0, 2]}}},
    {"name": {"$gt": "b"}},
    {"name": {"$lte": "an"}},
    {"name": {"$between": ["a", "b"]}},
    {"name": {"$like": "%an%"}},
    {"name": {"$like": "a\\_b"}},
    {"name": {"$like": "100\\%"}},
    {"name": {"$like": "_n"}},
    {"name": {"$like": "%"}},
    {"name": {"$contains": "an"}},
    {"name": {"$contains": "~k:"}},
    {"$not": {"name": {"$like": "%an%"}}},
    {"tags": {"$contains": 1}},
    {"tags": {"$contains": 2.5}},
    {"tags": {"$contains": "x"}},
    {"tags": {"$contains": True}},
    {"tags": {"$contains": 2**70}},
    {"$not": {"tags": {"$contains": "x"}}},
    {"tags": {"$exists": False}},
    {"when": datetime(2024, 1, 1, 12, tzinfo=UTC)},
    {"when": {"$gt": datetime(2024, 1, 1, 11, 59)}},
    {"$not": {"when": {"$lt": datetime(2024, 1, 1, 13)}}},
    {"meta.rank": 1},
    {"meta.rank": None},
    {"meta.x-y": "k"},
    {"meta": {"$exists": True}},
    {"id": {"$gt": "h"}},
    {"id": {"$like": "%2"}},
    {"id": {"$in": ["int2", "text", "nope"]}},
    {"$or": [{"id": "neg"}, {"name": {"$like": "B%"}}]},
    {"embedding": {"$exists": False}},
    {"$and": [{"n": {"$exists": True}}, {"$or": [{"name": {"$contains": "a"}}, {"tags": {"$contains": 2.5}}]}]},
]


def dataset() -> list[vk.Record]:
    rng = np.random.default_rng(4)
    records = []
    for n, (record_id, fields) in enumerate(ROWS.items()):
        data = dict(fields)
        if n % 4 != 3:  # some records have no vector
            data["embedding"] = vk.VectorField(rng.normal(size=6).astype(np.float32))
        records.append(vk.Record(data, id=record_id))
    return records


@pytest.mark.asyncio
@pytest.mark.parametrize("exact_limit", [1000, 0], ids=["exact", "hnsw"])
async def test_filters_match_the_memory_store(any_config: str, exact_limit: int) -> None:
    """Every query gives the memory store's records, count and stream; filtered k-nearest searches give
    its ids and scores, through the exact path and through HNSW (exact_limit=0; ef_search above the
    collection size makes HNSW exhaustive, so the two must agree exactly)."""
    records = dataset()
    query = np.random.default_rng(5).normal(size=6).astype(np.float32)
    config = with_options(any_config, exact_limit=exact_limit, ef_search=200)
    async with vk.connect(config) as store, vk.connect("memory://") as oracle:
        await store.bulk_create(records)
        await oracle.bulk_create(records)
        for where in QUERIES:
            expected = await oracle.search(vk.Query().filter(where))
            assert await store.search(vk.Query().filter(where)) == expected, where
            assert await store.count(where) == len(expected), where
            assert [r async for batch in store.stream(where, batch_size=2) for r in batch] == expected, where
            for k in (1, 3, 20):
                want = await oracle.vector_search(query, k=k, filter=where)
                got = await store.vector_search(query, k=k, filter=where)
                assert [(r.id, round(r.score, 5)) for r in got] == [(r.id, round(r.score, 5)) for r in want], where


@pytest.mark.asyncio
@pytest.mark.parametrize("exact_limit", [1000, 0], ids=["exact", "hnsw"])
async def test_a_filter_checked_in_python_still_returns_k(any_config: str, exact_limit: int) -> None:
    """A filter Chroma cannot evaluate (a substring) passing 1 record in 25, whose matches are all far from
    the query: k results, the exact best ones."""
    rng = np.random.default_rng(8)
    vectors = {f"r{i:03d}": rng.normal(size=8).astype(np.float32) for i in range(250)}
    query = vectors["r000"] + np.float32(0.01)
    records = [
        vk.Record({"name": f"{'needle' if i % 25 == 24 else 'hay'}-{i}", "embedding": vk.VectorField(v)}, id=record_id)
        for i, (record_id, v) in enumerate(vectors.items())
    ]
    where = {"name": {"$contains": "eed"}}
    async with vk.connect(with_options(any_config, exact_limit=exact_limit, ef_search=300)) as store:
        await store.bulk_create(records)
        oracle = {i: s for i, s in oracle_scores(vectors, query, store.metric).items() if int(i[1:]) % 25 == 24}
        best = sorted(oracle, key=lambda i: (-oracle[i], i))
        for k in (5, 10, 50):
            results = await store.vector_search(query, k=k, filter=where)
            assert [r.id for r in results] == best[:k]
            assert np.allclose([r.score for r in results], [oracle[i] for i in best[:k]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", ["y", 3, True, datetime(2024, 1, 1, tzinfo=UTC)])
def test_negated_contains_is_checked_in_python_not_sent_as_not_contains(value: Any) -> None:
    """A busy chromadb 1.5.9 server answered ``$not_contains`` without the records it had just written."""
    found = translate(parse_filter({"$not": {"tags": {"$contains": value}}}), ["embedding"], Signatures())
    assert (found.where, found.exact) == (None, False)
    both = translate(parse_filter({"$and": [{"n": 1}, {"$not": {"tags": {"$contains": value}}}]}), [], Signatures())
    assert "not_contains" not in str(both.where)
    assert not both.exact

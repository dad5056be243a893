"""Capability honesty: what a store declares works; what it does not declare raises CapabilityError."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import vectorknobs as vk
from vectorknobs.fields import MAX_DIMENSIONS
from vectorknobs.testing._support import (
    ConfigLike,
    ConformanceBase,
    assert_ranked_like,
    ids_of,
    oracle_scores,
    ranked,
    scores_close,
    with_options,
)

METRICS = list(vk.DistanceMetric)

_OPERATOR_ROWS = {
    "o1": {"n": 1, "s": "apple", "tags": ["x"]},
    "o2": {"n": 2, "s": "banana", "tags": ["y"]},
    "o3": {"n": 3, "tags": ["x", "y"]},
    "o4": {"n": 4, "s": "avocado"},
    "o5": {"n": 5, "s": "cherry", "tags": []},
}

#: one filter per operator, and the ids it selects from ``_OPERATOR_ROWS``
OPERATOR_CASES: dict[vk.Operator, tuple[dict[str, Any], list[str]]] = {
    vk.Operator.EQ: ({"n": {"$eq": 2}}, ["o2"]),
    vk.Operator.NE: ({"n": {"$ne": 2}}, ["o1", "o3", "o4", "o5"]),
    vk.Operator.GT: ({"n": {"$gt": 3}}, ["o4", "o5"]),
    vk.Operator.GTE: ({"n": {"$gte": 3}}, ["o3", "o4", "o5"]),
    vk.Operator.LT: ({"n": {"$lt": 3}}, ["o1", "o2"]),
    vk.Operator.LTE: ({"n": {"$lte": 3}}, ["o1", "o2", "o3"]),
    vk.Operator.IN: ({"n": {"$in": [1, 5]}}, ["o1", "o5"]),
    vk.Operator.NOT_IN: ({"n": {"$not_in": [1, 5]}}, ["o2", "o3", "o4"]),
    vk.Operator.CONTAINS: ({"tags": {"$contains": "x"}}, ["o1", "o3"]),
    vk.Operator.EXISTS: ({"s": {"$exists": True}}, ["o1", "o2", "o4", "o5"]),
    vk.Operator.BETWEEN: ({"n": {"$between": [2, 4]}}, ["o2", "o3", "o4"]),
    vk.Operator.LIKE: ({"s": {"$like": "a%"}}, ["o1", "o4"]),
}

HYBRID_TEXTS = {
    "h0": ("the quick brown fox", "alpha"),
    "h1": ("quick brown dogs", "fox alpha"),
    "h2": ("a lazy dog sleeps", "quick"),
    "h3": ("brown bread", "beta"),
    "h4": ("fox news tonight", "brown quick fox"),
    "h5": ("Quick! QUICK? quick.", "gamma"),
    "h6": ("nothing relevant here", "delta"),
    "h7": ("the brown fox is quick", "epsilon"),
    "h8": ("fox", "quick"),
}


def keyword_share(query: str, text: str) -> float:
    """Share of the query's distinct lower-cased words found in ``text``."""
    wanted = set(re.findall(r"\w+", query.lower()))
    return len(wanted & set(re.findall(r"\w+", text.lower()))) / len(wanted)


def unit_scores(scores: dict[str, float], metric: vk.DistanceMetric) -> dict[str, float]:
    """Vector scores mapped to [0, 1] for blending: cosine (s+1)/2, euclidean as is, dot min-max."""
    if metric is vk.DistanceMetric.COSINE:
        return {i: (s + 1) / 2 for i, s in scores.items()}
    if metric is vk.DistanceMetric.EUCLIDEAN:
        return dict(scores)
    low, high = min(scores.values()), max(scores.values())
    return {i: 1.0 if high == low else (s - low) / (high - low) for i, s in scores.items()}


class CapabilityTests(ConformanceBase):
    """Each declared capability is tested; each undeclared one must raise ``CapabilityError``."""

    async def test_capabilities_are_well_formed(self, store_config: ConfigLike) -> None:
        """store.capabilities is a Capabilities, equal to the class's declaration, with sensible values."""
        async with vk.connect(store_config) as store:
            caps = store.capabilities
            assert isinstance(caps, vk.Capabilities)
            assert caps == self.declared(store_config)
            assert caps.filter_operators <= set(vk.Operator)
            assert caps.metrics
            assert caps.metrics <= set(vk.DistanceMetric)
            assert store.metric in caps.metrics
            assert caps.max_k >= 1
            assert 1 <= caps.max_dimensions <= MAX_DIMENSIONS

    @pytest.mark.parametrize("op", list(vk.Operator), ids=[o.value for o in vk.Operator])
    async def test_filter_operator(self, store_config: ConfigLike, op: vk.Operator) -> None:
        """A declared filter operator gives exact results in search, count, stream and a filtered vector
        search; an undeclared one raises CapabilityError there, also nested inside $not and $or — it is never
        ignored (an ignored filter would leak records).

        Troubleshooting: list in ``filter_operators`` only what the store translates completely; for the rest
        the core's ``vectorknobs.evaluate.matches`` gives the reference semantics.
        """
        where_, expected = OPERATOR_CASES[op]
        records = [
            vk.Record({**fields, "embedding": vk.VectorField([1.0, float(n)])}, id=record_id)
            for n, (record_id, fields) in enumerate(_OPERATOR_ROWS.items())
        ]
        nested = [{"$not": where_}, {"$or": [{"$not": where_}, where_]}]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            if op in store.capabilities.filter_operators:
                assert ids_of(await store.search(vk.Query().filter(where_))) == expected
                assert await store.count(where_) == len(expected)
                streamed = [record async for batch in store.stream(where_) for record in batch]
                assert ids_of(streamed) == expected
                found = await store.vector_search([1.0, 0.0], k=10, filter=where_)
                assert sorted(ids_of(found)) == expected
            else:
                for form in (where_, *nested):
                    with pytest.raises(vk.CapabilityError):
                        await store.search(vk.Query().filter(form))
                    with pytest.raises(vk.CapabilityError):
                        await store.count(form)
                    with pytest.raises(vk.CapabilityError):
                        await store.vector_search([1.0, 0.0], k=10, filter=form)
                    with pytest.raises(vk.CapabilityError):
                        async for _ in store.stream(form):
                            pass

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_metric(self, store_config: ConfigLike, metric: vk.DistanceMetric) -> None:
        """A declared metric can be configured (``metric=...`` option); an undeclared one is a CapabilityError
        at connect."""
        config = with_options(store_config, metric=metric)
        if metric in self.declared(store_config).metrics:
            async with vk.connect(config) as store:
                assert store.metric is metric
        else:
            with pytest.raises(vk.CapabilityError):
                await vk.connect(config)

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_hybrid_search(self, store_config: ConfigLike, metric: vk.DistanceMetric) -> None:
        """Declared hybrid search blends alpha x vector score (mapped to [0, 1]: cosine (s+1)/2, euclidean as is,
        dot product min-max over the candidates) with (1 - alpha) x the share of the query's words in the text
        fields: alpha=1 ranks like vector search, alpha=0 by keyword share (ties by id). Undeclared: a
        CapabilityError.
        """
        rng = np.random.default_rng(21)
        vectors = {i: rng.normal(size=4).astype(np.float32) for i in HYBRID_TEXTS}
        records = [
            vk.Record({"text": body, "title": title, "kind": int(i[1:]) % 2,
                       "embedding": vk.VectorField(vectors[i], source_field="text")}, id=i)
            for i, (body, title) in HYBRID_TEXTS.items()
        ]
        query_text, query = "quick brown fox", rng.normal(size=4).astype(np.float32)
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            if not store.capabilities.hybrid_search:
                with pytest.raises(vk.CapabilityError):
                    await store.hybrid_search(query_text, query)
                with pytest.raises(vk.CapabilityError):
                    await store.search(vk.Query().hybrid(query_text, query))
                return
            vector = oracle_scores(vectors, query, metric)
            unit = unit_scores(vector, metric)
            share = {i: keyword_share(query_text, body) for i, (body, _) in HYBRID_TEXTS.items()}

            pure = await store.hybrid_search(query_text, query, alpha=1.0, k=9)
            assert ids_of(pure) == [i for i, _ in ranked(vector)]
            assert all(scores_close(r.score, unit[r.id]) for r in pure)

            keywords = await store.hybrid_search(query_text, query, alpha=0.0, k=5)
            assert ids_of(keywords) == [i for i, _ in ranked(share, 5)]
            assert [r.score for r in keywords] == pytest.approx([s for _, s in ranked(share, 5)])

            blend = {i: 0.3 * unit[i] + 0.7 * share[i] for i in vector}
            mixed = await store.hybrid_search(query_text, query, alpha=0.3, k=6)
            assert_ranked_like(mixed, blend, ranked(blend, 6), "alpha=0.3")
            assert all(scores_close(r.distance, 1.0 - r.score) for r in mixed)
            assert all(r.source_text == HYBRID_TEXTS[r.id][0] for r in mixed)

            odd = {i for i in vector if int(i[1:]) % 2 == 1}
            unit_odd = unit_scores({i: vector[i] for i in odd}, metric)
            blend_odd = {i: 0.5 * unit_odd[i] + 0.5 * share[i] for i in odd}
            filtered = await store.hybrid_search(query_text, query, alpha=0.5, k=3, filter={"kind": 1})
            assert_ranked_like(filtered, blend_odd, ranked(blend_odd, 3), "hybrid with filter")

            title_share = {i: keyword_share(query_text, title) for i, (_, title) in HYBRID_TEXTS.items()}
            by_title = await store.hybrid_search(query_text, query, alpha=0.0, k=4, text_fields=["title"])
            assert ids_of(by_title) == [i for i, _ in ranked(title_share, 4)]

            def embed(texts: list[str]) -> npt.NDArray[np.float32]:
                return np.tile(query, (len(texts), 1))

            embedded = await store.hybrid_search(query_text, alpha=0.3, k=6, embedding_fn=embed)
            assert [(r.id, r.score) for r in embedded] == [(r.id, r.score) for r in mixed]

    async def test_sparse_vectors(self, store_config: ConfigLike) -> None:
        """A store declaring sparse_vectors stores and returns SparseVectorFields exactly; one that does not
        raises CapabilityError and writes nothing of the batch."""
        sparse = vk.Record({"text": "s", "sparse": vk.SparseVectorField({3: 0.5, 17: 1.25, 0: -2.0}, 20)}, id="sp")
        plain = vk.Record({"text": "p"}, id="plain")
        async with vk.connect(store_config) as store:
            if store.capabilities.sparse_vectors:
                await store.bulk_create([plain, sparse])
                assert await store.read("sp") == sparse
                assert await self.contents(store) == {"plain": plain, "sp": sparse}
            else:
                with pytest.raises(vk.CapabilityError):
                    await store.bulk_create([plain, sparse])
                assert await store.count() == 0

    async def test_max_dimensions(self, store_config: ConfigLike) -> None:
        """A vector of exactly max_dimensions is stored and searched; one more dimension is rejected
        (DimensionMismatchError by the store, VectorValueError beyond the core's own limit)."""
        async with vk.connect(store_config) as store:
            limit = store.capabilities.max_dimensions
            biggest = np.linspace(-1.0, 1.0, limit, dtype=np.float32)
            await store.create(vk.Record({"embedding": vk.VectorField(biggest)}, id="big"))
            got = await store.read("big")
            assert got is not None
            assert np.array_equal(got["embedding"], biggest)
            assert ids_of(await store.vector_search(biggest, k=1)) == ["big"]
            if limit < MAX_DIMENSIONS:
                with pytest.raises(vk.DimensionMismatchError):
                    await store.create(vk.Record({"other": vk.VectorField(np.ones(limit + 1))}, id="too-big"))
            else:
                with pytest.raises(vk.VectorValueError):
                    vk.VectorField(np.ones(limit + 1))
            assert await store.count() == 1

    async def test_vector_support(self, store_config: ConfigLike) -> None:
        """has_vector_support() and enable_vector_support() are True once connected; detect_vector_fields()
        names a record's dense vector fields."""
        async with vk.connect(store_config) as store:
            assert await store.enable_vector_support() is True
            assert await store.has_vector_support() is True
            record = vk.Record({"text": "t", "embedding": vk.VectorField([1.0]), "title_vec": vk.VectorField([0, 1])})
            assert await store.detect_vector_fields(record) == ["embedding", "title_vec"]

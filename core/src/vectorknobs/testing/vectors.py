"""Vector search: every metric against an exact numpy oracle, filters, k, thresholds, near_text, sort/offset."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

import vectorknobs as vk
from vectorknobs.query import MAX_K
from vectorknobs.testing._support import (
    ConfigLike,
    ConformanceBase,
    assert_ranked_like,
    ids_of,
    oracle_distance,
    oracle_scores,
    ranked,
    scores_close,
)

DIMS = 8
METRICS = list(vk.DistanceMetric)


def vector_dataset(
    n: int = 200, seed: int = 11, without_every: int = 25
) -> tuple[list[vk.Record], dict[str, npt.NDArray[np.float32]]]:
    """``n`` records with random ``DIMS``-dimensional vectors (every ``without_every``-th has none), and
    the vectors by id. Fields: ``text``, ``group`` (i % 20), ``bucket`` (i % 3)."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, DIMS)).astype(np.float32)
    records: list[vk.Record] = []
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for i in range(n):
        record_id = f"v{i:03d}"
        data: dict[str, object] = {"text": f"document number {i}", "group": i % 20, "bucket": i % 3}
        if i % without_every != without_every - 1:
            data["embedding"] = vk.VectorField(matrix[i], source_field="text")
            vectors[record_id] = matrix[i]
        records.append(vk.Record(data, id=record_id))
    return records, vectors


def query_vectors(seed: int = 5) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=DIMS).astype(np.float32) for _ in range(3)]


def check_results(
    results: Sequence[vk.VectorSearchResult],
    records: Sequence[vk.Record],
    oracle: dict[str, float],
    expected: Sequence[tuple[str, float]],
    metric: vk.DistanceMetric,
    what: str,
) -> None:
    """Ranking, scores, distances and whole records of ``results`` against the exact oracle."""
    assert_ranked_like(results, oracle, expected, what)
    by_id = {r.key: r for r in records}
    for result in results:
        assert isinstance(result, vk.VectorSearchResult)
        assert result.record == by_id[result.id], f"{what}: {result.id!r} is not read back whole"
        assert scores_close(result.distance, oracle_distance(oracle[result.id], metric)), (
            f"{what}: {result.id!r} reports distance {result.distance!r}; with score {oracle[result.id]!r} it is "
            f"{oracle_distance(oracle[result.id], metric)!r}"
        )
        assert result.vector_field == "embedding"
        assert result.metadata.get("metric") == metric.value


class VectorSearchTests(ConformanceBase):
    """Exact k-nearest-neighbour search on every declared metric, with filters, thresholds and near_text."""

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_scores_match_exact_search(self, store_config: ConfigLike, metric: vk.DistanceMetric) -> None:
        """vector_search() returns the same ids, order, scores and distances as an exact numpy computation:
        cosine similarity, inner product, or 1/(1+L2); records without the vector field never appear.

        Troubleshooting: convert the engine's distance to the score with ``DistanceMetric.distance_to_score``;
        faiss/pgvector report squared L2 or negative inner products in places.
        """
        records, vectors = vector_dataset()
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            for n, query in enumerate(query_vectors()):
                oracle = oracle_scores(vectors, query, metric)
                results = await store.vector_search(query, k=10, metric=metric)
                check_results(results, records, oracle, ranked(oracle, 10), metric, f"{metric.value} query {n}")
                again = await store.search(vk.Query().similar_to(query, k=10, metric=metric))
                assert [(r.id, r.score) for r in again] == [(r.id, r.score) for r in results]

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_batch_search_answers_like_single_searches(
        self, store_config: ConfigLike, metric: vk.DistanceMetric
    ) -> None:
        """vector_search_batch(matrix) gives, row by row, what vector_search gives for that row (ids, order,
        scores, distances, records), with and without a filter; wrong dimensions, NaN and a 1-D vector are
        typed errors; no rows is an empty answer.

        Troubleshooting: a store's ``_vector_search_batch`` must return one hit list per query, in order.
        """
        records, vectors = vector_dataset(n=300)
        matrix = np.stack([*query_vectors(), vectors["v000"], vectors["v007"] + np.float32(0.01)])
        groups = {r.key: r["group"] for r in records}
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            for where_ in (None, {"group": 7}):
                batch = await store.vector_search_batch(matrix, k=6, metric=metric, filter=where_)
                assert len(batch) == len(matrix)
                for n, (row, results) in enumerate(zip(matrix, batch, strict=True)):
                    single = await store.vector_search(row, k=6, metric=metric, filter=where_)
                    assert [(r.id, r.score, r.distance) for r in results] == [
                        (r.id, r.score, r.distance) for r in single
                    ], f"row {n}, filter {where_!r}"
                    assert [r.record for r in results] == [r.record for r in single]
                    oracle = {i: s for i, s in oracle_scores(vectors, row, metric).items()
                              if where_ is None or groups[i] == 7}
                    check_results(results, records, oracle, ranked(oracle, 6), metric, f"batch row {n}")
            assert await store.vector_search_batch(np.zeros((0, DIMS), dtype=np.float32), k=3) == []
            assert await store.vector_search_batch([], k=3) == []
            with pytest.raises(vk.DimensionMismatchError):
                await store.vector_search_batch(np.ones((2, DIMS + 1), dtype=np.float32), k=3, metric=metric)
            with pytest.raises(vk.VectorValueError, match="NaN"):
                await store.vector_search_batch([[np.nan] * DIMS, [1.0] * DIMS], k=3, metric=metric)
            with pytest.raises(vk.VectorValueError, match="2-D"):
                await store.vector_search_batch(matrix[0], k=3, metric=metric)

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_query_equal_to_a_stored_vector_ranks_it_first(
        self, store_config: ConfigLike, metric: vk.DistanceMetric
    ) -> None:
        """Searching with a stored vector finds its record first (cosine 1, distance 0) — except for
        dot_product, where the longest aligned vector can win; that ranking is checked exactly instead."""
        records, vectors = vector_dataset(n=60)
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            target = "v010"
            results = await store.vector_search(vectors[target], k=5)
            oracle = oracle_scores(vectors, vectors[target], metric)
            check_results(results, records, oracle, ranked(oracle, 5), metric, metric.value)
            if metric is not vk.DistanceMetric.DOT_PRODUCT:
                assert results[0].id == target
                assert scores_close(results[0].score, 1.0)
                assert scores_close(results[0].distance, 0.0)

    async def test_per_query_metric(self, store_config: ConfigLike) -> None:
        """A store declaring per_query_metric searches with any declared metric on request; one that does not
        raises CapabilityError for a metric other than the one it was opened with."""
        records, vectors = vector_dataset(n=50)
        query = query_vectors()[0]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            configured = store.metric
            for metric in sorted(store.capabilities.metrics - {configured}):
                if store.capabilities.per_query_metric:
                    oracle = oracle_scores(vectors, query, metric)
                    results = await store.vector_search(query, k=7, metric=metric)
                    check_results(results, records, oracle, ranked(oracle, 7), metric, metric.value)
                else:
                    with pytest.raises(vk.CapabilityError):
                        await store.vector_search(query, k=7, metric=metric)
            oracle = oracle_scores(vectors, query, configured)
            check_results(
                await store.vector_search(query, k=7), records, oracle, ranked(oracle, 7), configured, "default"
            )

    async def test_source_text(self, store_config: ConfigLike) -> None:
        """source_text is read from the source_field of each hit's own vector field (several comma-separated
        fields are joined with a newline, skipping missing ones); None when the source field is missing,
        None, not text, not named, or include_source=False."""
        rows = {
            "a": {"title": "Alpha", "body": "first body", "n": 0},
            "b": {"title": "Beta", "body": None, "n": 1},
            "c": {"title": "Gamma", "n": 2},
        }
        records = [
            vk.Record(
                {
                    **fields,
                    "embedding": vk.VectorField([1.0, float(n)], source_field="body"),
                    "pair": vk.VectorField([1.0, float(n)], source_field="title, body"),
                    "orphan": vk.VectorField([1.0, float(n)], source_field="gone"),
                    "numeric": vk.VectorField([1.0, float(n)], source_field="n"),
                    "bare": vk.VectorField([1.0, float(n)]),
                    "mixed": vk.VectorField([1.0, float(n)], source_field=("title", "title, body", "body")[n]),
                },
                id=record_id,
            )
            for n, (record_id, fields) in enumerate(rows.items())
        ]
        expected = {
            "embedding": {"a": "first body", "b": None, "c": None},
            "pair": {"a": "Alpha\nfirst body", "b": "Beta", "c": "Gamma"},
            "orphan": {"a": None, "b": None, "c": None},
            "numeric": {"a": None, "b": None, "c": None},
            "bare": {"a": None, "b": None, "c": None},
            "mixed": {"a": "Alpha", "b": "Beta", "c": None},  # each record names its own source fields
        }
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            for field, texts in expected.items():
                results = await store.vector_search([1.0, 0.5], vector_field=field, k=3)
                assert {r.id: r.source_text for r in results} == texts, field
                assert {r.vector_field for r in results} == {field}
                bare = await store.vector_search([1.0, 0.5], vector_field=field, k=3, include_vectors=False)
                assert {r.id: r.source_text for r in bare} == texts, f"{field}, include_vectors=False"
            hidden = await store.vector_search([1.0, 0.5], k=3, include_source=False)
            assert [r.source_text for r in hidden] == [None, None, None]
            assert len({r.id for r in hidden}) == 3

    async def test_results_without_vectors(self, store_config: ConfigLike) -> None:
        """include_vectors=False (vector_search, vector_search_batch, a Query and its dict form) returns the
        same ids, order, scores, distances and source texts, with each record whole but for its vector fields.

        Troubleshooting: a store that leaves the vectors out of what it reads must still give the searched
        field's ``source_field`` in each ``Hit``.
        """
        records, _ = vector_dataset(n=120)
        for n, record in enumerate(records):
            record["meta"] = {"tags": ["x", str(n % 4)], "nested": {"n": n}}
            if n % 2:
                record["title_vec"] = vk.VectorField([1.0, float(n)], source_field="text", model_name="m")
        queries = np.stack(query_vectors())
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            for where_ in (None, {"bucket": 1}):
                with_vectors = await store.vector_search_batch(queries, k=9, filter=where_)
                without = await store.vector_search_batch(queries, k=9, filter=where_, include_vectors=False)
                for row, full, bare in zip(queries, with_vectors, without, strict=True):
                    single = await store.vector_search(row, k=9, filter=where_, include_vectors=False)
                    for found in (bare, single):
                        assert [(r.id, r.score, r.distance, r.source_text, r.vector_field) for r in found] == [
                            (r.id, r.score, r.distance, r.source_text, r.vector_field) for r in full
                        ], f"filter {where_!r}"
                        for result, whole in zip(found, full, strict=True):
                            assert "embedding" in whole.record
                            expected = {n: f for n, f in whole.record.fields.items()
                                        if f.type is not vk.FieldType.VECTOR}
                            assert result.record.fields == expected, f"record {result.id!r}"
                            assert result.record.id == whole.id
            query = vk.Query().filter("bucket", "ne", 0).similar_to(queries[0], k=6, include_vectors=False)
            assert query.to_dict()["similar_to"]["include_vectors"] is False
            for found in (await store.search(query), await store.search(query.to_dict())):
                assert len(found) == 6
                assert all(not r.record.vector_fields() for r in found)
                assert all(r.source_text == r.record["text"] for r in found)
            with pytest.raises(vk.QueryError, match="include_vectors"):
                await store.vector_search(queries[0], include_vectors="no")  # type: ignore[arg-type]

    async def test_each_search_gets_its_own_k(self, store_config: ConfigLike) -> None:
        """Searches one after another with different k (growing, shrinking, with and without vectors) each return
        their own k best.

        Troubleshooting: a store that reuses a prepared statement or cached plan must not reuse its limit.
        """
        records, vectors = vector_dataset(n=120)
        query = query_vectors()[0]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            oracle = oracle_scores(vectors, query, store.metric)
            for k in (2, 40, 7, 100, 1, 60):
                for include_vectors in (True, False):
                    found = await store.vector_search(query, k=k, include_vectors=include_vectors)
                    assert_ranked_like(found, oracle, ranked(oracle, k), f"k={k}")

    async def test_k_larger_than_the_number_of_records(self, store_config: ConfigLike) -> None:
        """k above the number of records with the vector field returns all of them, ranked; k = the store's
        max_k is accepted."""
        records, vectors = vector_dataset(n=40, without_every=4)
        query = query_vectors()[1]
        assert len(vectors) == 30
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            metric = store.metric
            oracle = oracle_scores(vectors, query, metric)
            for k in (len(records), 1000, min(store.capabilities.max_k, MAX_K)):
                results = await store.vector_search(query, k=k)
                check_results(results, records, oracle, ranked(oracle), metric, f"k={k}")

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_filtered_search_returns_k(self, store_config: ConfigLike, metric: vk.DistanceMetric) -> None:
        """With a filter that 1 in 20 records pass, k=5 returns exactly the 5 best passing records, never
        fewer, even when the nearest records overall all fail the filter; k above the number of passing
        records returns them all.

        Troubleshooting: do not search the top k and filter afterwards; filter inside the engine's kNN (a
        pre-filter), or widen the candidate set until k matches are found, or fall back to exact search.
        """
        records, vectors = vector_dataset(n=400)
        near_a_failing_record = vectors["v000"] + np.float32(0.01)
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            groups = {r.key: r["group"] for r in records}
            for where_ in ({"group": 7}, vk.Query().filter("group", "eq", 7), vk.where("group", "==", 7)):
                candidates = {i: s for i, s in oracle_scores(vectors, near_a_failing_record, metric).items()
                              if groups[i] == 7}
                assert len(candidates) == 20
                results = await store.vector_search(near_a_failing_record, k=5, metric=metric, filter=where_)
                check_results(results, records, candidates, ranked(candidates, 5), metric, f"filter {where_!r}")
                everything = await store.vector_search(near_a_failing_record, k=25, metric=metric, filter=where_)
                check_results(everything, records, candidates, ranked(candidates), metric, "k > matches")
            where_two = {"$and": [{"group": {"$in": [3, 11]}}, {"bucket": 1}]}
            two = {i: s for i, s in oracle_scores(vectors, near_a_failing_record, metric).items()
                   if groups[i] in (3, 11) and int(i[1:]) % 3 == 1}
            results = await store.vector_search(near_a_failing_record, k=4, metric=metric, filter=where_two)
            check_results(results, records, two, ranked(two, 4), metric, "two conditions")
            assert await store.vector_search(near_a_failing_record, k=5, metric=metric, filter={"group": 99}) == []

    @pytest.mark.parametrize("metric", METRICS, ids=[m.value for m in METRICS])
    async def test_score_threshold(self, store_config: ConfigLike, metric: vk.DistanceMetric) -> None:
        """score_threshold drops results scoring below it (higher = more similar on every metric); it applies
        after the filter, to the k best."""
        records, vectors = vector_dataset(n=100)
        query = query_vectors()[2]
        oracle = oracle_scores(vectors, query, metric)
        best = ranked(oracle)
        between_3rd_and_4th = (best[2][1] + best[3][1]) / 2
        async with self.connect_with_metric(store_config, metric) as store:
            await store.bulk_create(records)
            base = vk.Query().similar_to(query, k=10, metric=metric)
            results = await store.search(base.score_threshold(between_3rd_and_4th))
            check_results(results, records, oracle, best[:3], metric, "threshold")
            assert await store.search(base.score_threshold(best[0][1] + 1.0)) == []
            low = await store.search(base.score_threshold(best[-1][1] - 1.0))
            check_results(low, records, oracle, best[:10], metric, "threshold below all")
            in_group = {i: s for i, s in oracle.items() if int(i[1:]) % 20 < 10}
            top = ranked(in_group)
            cut = (top[1][1] + top[2][1]) / 2
            filtered = await store.search(base.filter({"group": {"$lt": 10}}).score_threshold(cut))
            check_results(filtered, records, in_group, top[:2], metric, "threshold with filter")

    async def test_near_text_with_a_registered_embedder(self, store_config: ConfigLike) -> None:
        """bulk_embed_and_store() with the registered 'hash' embedder stores vectors with their provenance
        (source_field, model_name, model_version, content_hash); near_text(text, 'hash') ranks like a search
        with the embedded text."""
        texts = [
            "the quick brown fox", "a lazy dog sleeps", "vector stores hold embeddings", "brown bread and butter",
            "foxes are quick", "semantic search over records", "retrieval augmented generation", "dogs and foxes",
        ]
        records = [vk.Record({"text": t, "n": i}, id=f"t{i}") for i, t in enumerate(texts)]
        embedder = vk.HashingEmbedder()
        vectors = dict(zip([r.key for r in records], embedder(texts), strict=True))
        async with self.connect_with_metric(store_config, vk.DistanceMetric.COSINE) as store:
            assert await store.bulk_embed_and_store(records, "text", embedding_fn="hash", batch_size=3) == [
                r.id for r in records
            ]
            for record in records:
                stored = await store.read(record.key)
                assert stored is not None
                field = stored.fields["embedding"]
                assert isinstance(field, vk.VectorField)
                assert np.array_equal(field.value, vectors[record.key])
                assert (field.source_field, field.model_name, field.model_version) == ("text", "hash", "1")
                assert field.content_hash == hashlib.sha256(record["text"].encode()).hexdigest()
            query_text = "quick brown foxes"
            oracle = oracle_scores(vectors, embedder([query_text])[0], "cosine")
            results = await store.search(vk.Query().near_text(query_text, "hash", k=4, metric="cosine"))
            assert_ranked_like(results, oracle, ranked(oracle, 4), "near_text")
            exact = await store.search(vk.Query().near_text(texts[5], "hash", k=1, metric="cosine"))
            assert exact[0].id == "t5"
            assert scores_close(exact[0].score, 1.0)
            assert exact[0].source_text == texts[5]

    async def test_near_text_with_a_callable(self, store_config: ConfigLike) -> None:
        """near_text() accepts a sync or async callable as embedding_fn and ranks like similar_to() with the
        vector it returns."""
        def embed(texts: list[str]) -> npt.NDArray[np.float32]:
            return np.array([[len(t), t.count("a") + 1.0, t.count("e") - 1.0] for t in texts], dtype=np.float32)

        async def embed_async(texts: list[str]) -> npt.NDArray[np.float32]:
            return embed(texts)

        words = ["banana", "apple", "cherry", "date", "elderberry", "fig", "grape", "avocado"]
        vectors = dict(zip(words, embed(words), strict=True))
        records = [vk.Record({"word": w, "embedding": vk.VectorField(vectors[w], source_field="word")}, id=w)
                   for w in words]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            expected = await store.vector_search(embed(["papaya"])[0], k=4)
            oracle = oracle_scores(vectors, embed(["papaya"])[0], store.metric)
            assert_ranked_like(expected, oracle, ranked(oracle, 4), "similar_to")
            for fn in (embed, embed_async):
                got = await store.search(vk.Query().near_text("papaya", fn, k=4))
                assert [(r.id, r.score) for r in got] == [(r.id, r.score) for r in expected]

    async def test_sort_and_offset_apply_to_the_k_results(self, store_config: ConfigLike) -> None:
        """A vector query takes its k best matches, then sorts those k by the sort keys (ties by id) and skips
        offset of them."""
        records, vectors = vector_dataset(n=120)
        query = query_vectors()[0]
        groups = {r.key: r["group"] for r in records}
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            oracle = oracle_scores(vectors, query, store.metric)
            top = [i for i, _ in ranked(oracle, 10)]
            by_group = sorted(top, key=lambda i: (groups[i], i))
            results = await store.search(vk.Query().similar_to(query, k=10).sort("group").offset(2))
            assert ids_of(results) == by_group[2:]
            assert all(scores_close(r.score, oracle[r.id]) for r in results)
            desc = sorted(sorted(top), key=lambda i: groups[i], reverse=True)
            results = await store.search(vk.Query().similar_to(query, k=10).sort("group", "desc"))
            assert ids_of(results) == desc
            assert await store.search(vk.Query().similar_to(query, k=10).offset(10)) == []

    async def test_unknown_vector_field(self, store_config: ConfigLike) -> None:
        """Searching a vector field no record has raises UnknownFieldError, on an empty store too; so does
        searching a scalar field as if it were a vector field."""
        async with vk.connect(store_config) as store:
            with pytest.raises(vk.UnknownFieldError):
                await store.vector_search([1.0, 0.0])
            await store.create(vk.Record({"text": "x", "embedding": vk.VectorField([1.0, 0.0])}, id="a"))
            with pytest.raises(vk.UnknownFieldError, match="other"):
                await store.vector_search([1.0, 0.0], vector_field="other")
            with pytest.raises(vk.UnknownFieldError):
                await store.vector_search([1.0, 0.0], vector_field="text")

    async def test_several_vector_fields(self, store_config: ConfigLike) -> None:
        """Each vector field is searched on its own vectors and dimension; records lacking that field are not
        candidates."""
        rng = np.random.default_rng(3)
        body = {f"m{i}": rng.normal(size=4).astype(np.float32) for i in range(12)}
        title = {f"m{i}": rng.normal(size=2).astype(np.float32) for i in range(0, 12, 2)}
        records = [vk.Record({"embedding": vk.VectorField(v)}, id=i) for i, v in body.items()]
        for record in records:
            if record.key in title:
                record["title_vec"] = vk.VectorField(title[record.key])
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            metric = store.metric
            q4, q2 = rng.normal(size=4), rng.normal(size=2)
            oracle = oracle_scores(body, q4, metric)
            assert_ranked_like(await store.vector_search(q4, k=5), oracle, ranked(oracle, 5), "embedding")
            oracle = oracle_scores(title, q2, metric)
            results = await store.vector_search(q2, vector_field="title_vec", k=10)
            assert_ranked_like(results, oracle, ranked(oracle), "title_vec")
            assert {r.vector_field for r in results} == {"title_vec"}

    async def test_search_follows_updates_and_deletes(self, store_config: ConfigLike) -> None:
        """After update, upsert and delete, vector search ranks the current vectors only.

        Troubleshooting: an index kept beside the records (faiss ids, HNSW graphs) must be updated on every
        write and delete.
        """
        records, vectors = vector_dataset(n=50)
        query = query_vectors()[1]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            metric = store.metric
            first, second = [i for i, _ in ranked(oracle_scores(vectors, query, metric), 2)]
            moved = -np.asarray(query, dtype=np.float32) * 3
            await store.update(vk.Record({"text": "moved", "embedding": vk.VectorField(moved)}, id=first))
            vectors[first] = moved
            assert await store.delete(second) is True
            del vectors[second]
            await store.upsert(vk.Record({"embedding": vk.VectorField(query * 2)}, id="new"))
            vectors["new"] = (query * 2).astype(np.float32)
            oracle = oracle_scores(vectors, query, metric)
            results = await store.vector_search(query, k=8)
            assert_ranked_like(results, oracle, ranked(oracle, 8), "after writes")
            assert second not in ids_of(await store.vector_search(query, k=100))

    async def test_zero_vector_has_cosine_similarity_zero(self, store_config: ConfigLike) -> None:
        """A stored zero vector has cosine similarity 0 with any query (never NaN, never dropped)."""
        vectors = {"zero": np.zeros(3, np.float32), "same": np.array([1, 2, 3], np.float32),
                   "opposite": np.array([-1, -2, -3], np.float32)}
        async with self.connect_with_metric(store_config, vk.DistanceMetric.COSINE) as store:
            await store.bulk_create([vk.Record({"embedding": vk.VectorField(v)}, id=i) for i, v in vectors.items()])
            results = await store.vector_search([1.0, 2.0, 3.0], k=3, metric="cosine")
            assert ids_of(results) == ["same", "zero", "opposite"]
            assert [round(r.score, 5) for r in results] == [1.0, 0.0, -1.0]

    async def test_vector_query_dict_form(self, store_config: ConfigLike) -> None:
        """The dict form of a vector query (similar_to, filter, score_threshold, sort, offset) gives the same
        results as the builder."""
        records, _ = vector_dataset(n=80)
        query = query_vectors()[2]
        builder = (vk.Query().filter("bucket", "ne", 0).similar_to(query, k=8, include_source=False)
                   .score_threshold(-1e9).sort("group", "desc").offset(1))
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            from_builder = await store.search(builder)
            from_dict = await store.search(builder.to_dict())
            assert len(from_builder) == 7
            assert [(r.id, r.score, r.source_text) for r in from_dict] == [
                (r.id, r.score, r.source_text) for r in from_builder
            ]

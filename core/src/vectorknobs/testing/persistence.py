"""Persistence: what a store holds survives close and reopen of the same config; drop() empties it."""

from __future__ import annotations

import pytest

import vectorknobs as vk
from vectorknobs.testing._support import ConfigLike, ConformanceBase, assert_ranked_like, oracle_scores, ranked
from vectorknobs.testing.crud import every_field_type_record, simple
from vectorknobs.testing.vectors import query_vectors, vector_dataset


class PersistenceTests(ConformanceBase):
    """Only for stores declaring ``capabilities.persistence``; the ``store_config`` fixture must reach the
    same data when connected again."""

    @pytest.fixture
    def persistent_config(self, store_config: ConfigLike) -> ConfigLike:
        if not self.declared(store_config).persistence:
            pytest.skip("the store does not declare persistence")
        return store_config

    async def test_records_survive_reopen(self, persistent_config: ConfigLike) -> None:
        """Records of every field type, written then read through a new connection, are equal; so are the
        vector dimensions the store knows.

        Troubleshooting: the ``store_config`` fixture must return the same location on every connect (a
        directory, a table, a collection), and close() must flush pending writes.
        """
        records = [
            every_field_type_record(),
            *(vk.Record({"n": i, "embedding": vk.VectorField([i, 1, 2, 3, -i])}, id=f"r{i}") for i in range(20)),
        ]
        async with vk.connect(persistent_config) as store:
            await store.bulk_create(records)
            dims = store.vector_dimensions()
        async with vk.connect(persistent_config) as store:
            assert await self.contents(store) == {r.key: r for r in records}
            assert store.vector_dimensions() == dims == {"embedding": 5, "title_vec": 3, "plain_vec": 7}

    async def test_final_state_survives_reopen(self, persistent_config: ConfigLike) -> None:
        """After creates, updates, upserts and deletes, a reopened store holds exactly the final state."""
        async with vk.connect(persistent_config) as store:
            await store.bulk_create([simple(f"r{i}", i) for i in range(10)])
            await store.update(simple("r1", 100, note="updated"))
            await store.bulk_upsert([simple("r2", 200), simple("r10", 10)])
            assert await store.bulk_delete(["r3", "r4"]) == 2
        expected = {r.key: r for r in [simple(f"r{i}", i) for i in (0, 5, 6, 7, 8, 9)]}
        expected |= {"r1": simple("r1", 100, note="updated"), "r2": simple("r2", 200), "r10": simple("r10", 10)}
        async with vk.connect(persistent_config) as store:
            assert await self.contents(store) == expected
            await store.create(simple("r11", 11))
        async with vk.connect(persistent_config) as store:
            assert await store.count() == len(expected) + 1

    async def test_search_results_survive_reopen(self, persistent_config: ConfigLike) -> None:
        """Vector search and filtered search return the same results before and after reopening, and still
        match the exact oracle (an index rebuilt or reloaded wrongly would not)."""
        records, vectors = vector_dataset(n=120)
        query = query_vectors()[0]
        searches = (
            vk.Query().similar_to(query, k=10),
            vk.Query().filter("group", "in", [1, 2, 3]).similar_to(query, k=5),
        )
        async with vk.connect(persistent_config) as store:
            await store.bulk_create(records)
            before = [[(r.id, r.score) for r in await store.search(q)] for q in searches]
            filtered_before = await store.search(vk.Query().filter("bucket", 2).sort("group", "desc").limit(7))
        async with vk.connect(persistent_config) as store:
            after = [[(r.id, r.score) for r in await store.search(q)] for q in searches]
            assert after == before
            assert await store.search(vk.Query().filter("bucket", 2).sort("group", "desc").limit(7)) == filtered_before
            oracle = oracle_scores(vectors, query, store.metric)
            assert_ranked_like(await store.search(searches[0]), oracle, ranked(oracle, 10), "after reopen")

    async def test_drop_survives_reopen(self, persistent_config: ConfigLike) -> None:
        """After drop() and reopen the store is empty, knows no vector field, and takes a new dimension."""
        async with vk.connect(persistent_config) as store:
            await store.bulk_create([simple(f"r{i}", i) for i in range(5)])
            await store.drop()
        async with vk.connect(persistent_config) as store:
            assert await store.count() == 0
            assert store.vector_dimensions() == {}
            await store.create(vk.Record({"embedding": vk.VectorField([1.0, 0.0, 0.0, 0.0, 1.0])}, id="x"))
        async with vk.connect(persistent_config) as store:
            assert store.vector_dimensions() == {"embedding": 5}
            assert [r.id for r in await store.search()] == ["x"]

    async def test_rejected_write_is_not_persisted(self, persistent_config: ConfigLike) -> None:
        """A batch rejected for a duplicate id leaves nothing of it on disk either."""
        async with vk.connect(persistent_config) as store:
            await store.create(simple("a", 1))
            with pytest.raises(vk.DuplicateIdError):
                await store.bulk_create([simple("b", 2), simple("a", 3)])
        async with vk.connect(persistent_config) as store:
            assert await self.contents(store) == {"a": simple("a", 1)}

"""Concurrency: many tasks writing, reading and searching one store at once, on one event loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable

import numpy as np

import vectorknobs as vk
from vectorknobs.testing._support import ConfigLike, ConformanceBase, assert_ranked_like, oracle_scores, ranked


def versioned(record_id: str, version: int, seed: int) -> vk.Record:
    """A record whose fields and 4-dimensional vector depend on (id, version), so torn writes show."""
    rng = np.random.default_rng(seed * 1000 + version)
    return vk.Record(
        {"version": version, "owner": record_id, "embedding": vk.VectorField(rng.normal(size=4))}, id=record_id
    )


class ConcurrencyTests(ConformanceBase):
    """Concurrent tasks (``asyncio.gather``) must neither fail nor lose, duplicate or tear writes."""

    async def test_concurrent_writes_reads_and_searches(self, store_config: ConfigLike) -> None:
        """Creates, bulk upserts, updates and deletes run alongside reads, counts and vector searches; no task
        fails, every read sees a whole version of a record, and the end state is exactly the expected one.

        Troubleshooting: share one connection pool safely across tasks; never hold a transaction or a cursor
        across an ``await`` that another task can interleave with.
        """
        initial = {f"s{i:02d}": versioned(f"s{i:02d}", 0, i) for i in range(40)}
        expected = dict(initial)
        legit: dict[str, list[vk.Record]] = {k: [v] for k, v in initial.items()}
        tasks: list[Awaitable[None]] = []

        async with vk.connect(store_config) as store:
            await store.bulk_create(list(initial.values()))

            async def creator(t: int) -> None:
                for j in range(4):
                    record = versioned(f"c{t:02d}-{j}", 0, 100 + t * 10 + j)
                    assert await store.create(record) == record.id

            async def bulk_upserter(ids: list[str]) -> None:
                await store.bulk_upsert([versioned(i, 1, int(i[1:])) for i in ids])

            async def updater(record_id: str) -> None:
                await store.update(versioned(record_id, 2, int(record_id[1:])))

            async def deleter(record_id: str) -> None:
                assert await store.delete(record_id) is True

            async def reader(n: int) -> None:
                query = np.random.default_rng(n).normal(size=4)
                for result in await store.vector_search(query, k=5):
                    versions = legit.get(result.id)
                    if versions is not None:
                        assert result.record in versions, f"torn or unknown version of {result.id!r}"
                record = await store.read(f"s{n % 40:02d}")
                if record is not None:
                    assert record in legit[record.key]
                count = await store.count()
                assert 30 <= count <= 100
                matches = await store.search(vk.Query().filter("version", "gte", 1))
                for record in matches:
                    assert record in legit[record.key]

            for t in range(15):
                tasks.append(creator(t))
                for j in range(4):
                    record = versioned(f"c{t:02d}-{j}", 0, 100 + t * 10 + j)
                    expected[record.key] = record
                    legit[record.key] = [record]
            for start in range(0, 20, 5):
                ids = [f"s{i:02d}" for i in range(start, start + 5)]
                tasks.append(bulk_upserter(ids))
                for i in ids:
                    expected[i] = versioned(i, 1, int(i[1:]))
                    legit[i].append(expected[i])
            for i in range(20, 30):
                record_id = f"s{i:02d}"
                tasks.append(updater(record_id))
                expected[record_id] = versioned(record_id, 2, i)
                legit[record_id].append(expected[record_id])
            for i in range(30, 40):
                tasks.append(deleter(f"s{i:02d}"))
                del expected[f"s{i:02d}"]
            tasks.extend(reader(n) for n in range(30))
            random.Random(7).shuffle(tasks)
            await asyncio.gather(*tasks)

            assert await self.contents(store) == expected
            query = np.array([0.5, -1.0, 0.25, 2.0], dtype=np.float32)
            oracle = oracle_scores({k: r.fields["embedding"].value for k, r in expected.items()}, query, store.metric)
            assert_ranked_like(await store.vector_search(query, k=10), oracle, ranked(oracle, 10), "after the storm")

    async def test_concurrent_creates_of_one_id(self, store_config: ConfigLike) -> None:
        """Of 20 concurrent create() calls with the same id, exactly one succeeds and the others raise
        DuplicateIdError; the stored record is the winner's."""
        async with vk.connect(store_config) as store:
            candidates = [versioned("same", v, 1) for v in range(20)]
            outcomes = await asyncio.gather(*(store.create(r) for r in candidates), return_exceptions=True)
            winners = [i for i, o in enumerate(outcomes) if o == "same"]
            assert len(winners) == 1, outcomes
            losers = [o for o in outcomes if o != "same"]
            assert all(isinstance(o, vk.DuplicateIdError) for o in losers), losers
            assert await self.contents(store) == {"same": candidates[winners[0]]}

    async def test_concurrent_deletes_of_one_id(self, store_config: ConfigLike) -> None:
        """Of 10 concurrent delete() calls of one record, exactly one returns True."""
        async with vk.connect(store_config) as store:
            await store.create(versioned("gone", 0, 1))
            outcomes = await asyncio.gather(*(store.delete("gone") for _ in range(10)))
            assert sorted(outcomes) == [False] * 9 + [True]
            assert await store.count() == 0

    async def test_concurrent_upserts_of_one_id(self, store_config: ConfigLike) -> None:
        """Concurrent upserts of one id leave exactly one of the written versions, whole."""
        async with vk.connect(store_config) as store:
            candidates = [versioned("hot", v, 2) for v in range(15)]
            await asyncio.gather(*(store.upsert(r) for r in candidates))
            stored = await self.contents(store)
            assert list(stored) == ["hot"]
            assert stored["hot"] in candidates

    async def test_concurrent_first_writes_agree_on_a_dimension(self, store_config: ConfigLike) -> None:
        """When concurrent writes introduce a new vector field with different dimensions, one dimension wins:
        writes of the other raise DimensionMismatchError, and every stored vector of the field has the winning
        dimension, so search keeps working.

        Troubleshooting: checking a field's dimension and writing the first vector of it must be one atomic
        step (a lock, or a schema created in a transaction).
        """
        async with vk.connect(store_config) as store:
            async def write(n: int) -> str:
                dims = 3 if n % 2 else 4
                return await store.create(vk.Record({"embedding": vk.VectorField(np.arange(1, dims + 1))}, id=f"w{n}"))

            outcomes = await asyncio.gather(*(write(n) for n in range(12)), return_exceptions=True)
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            assert all(isinstance(f, vk.DimensionMismatchError) for f in failures), failures
            stored = await self.contents(store)
            dims = {r.fields["embedding"].dimensions for r in stored.values()}
            assert len(dims) == 1, f"vectors of dimensions {sorted(dims)} were stored in one field"
            winner = dims.pop()
            assert store.vector_dimensions() == {"embedding": winner}
            assert sorted(stored) == sorted(f"w{n}" for n in range(12) if (3 if n % 2 else 4) == winner)
            results = await store.vector_search(np.ones(winner), k=20)
            assert sorted(r.id for r in results) == sorted(stored)

"""Embedded mode: the event loop keeps running while Chroma works, and readers never see half a batch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.testing import with_options

pytestmark = pytest.mark.asyncio


async def test_the_event_loop_keeps_running_while_chroma_works(tmp_path: Path) -> None:
    """A heartbeat task ticking every 5 ms keeps ticking through a 2000-record bulk write, a read of all of it
    and searches: Chroma's calls run in threads, and writes go in chunks of write_batch_size, so no single
    call (each holds the GIL in chromadb 1.5) stalls the loop for long."""
    rng = np.random.default_rng(1)
    records = [
        vk.Record({"text": f"t{i}", "embedding": vk.VectorField(rng.normal(size=64))}, id=f"r{i:04d}")
        for i in range(2000)
    ]
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with vk.connect(f"chroma://{tmp_path}/db?write_batch_size=32&exact_limit=0") as store:
        beat = asyncio.create_task(heartbeat())
        started = time.perf_counter()
        await store.bulk_create(records)
        assert len(await store.search()) == len(records)
        for _ in range(20):
            assert len(await store.vector_search(rng.normal(size=64), k=10)) == 10
        elapsed = time.perf_counter() - started
        done.set()
        await beat
    assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.3f} s"
    assert len(gaps) > elapsed / 0.05, f"only {len(gaps)} heartbeats in {elapsed:.1f} s"


async def test_readers_never_see_half_a_batch(tmp_path: Path) -> None:
    """Records with two vector fields live in two Chroma collections, written one after the other; reads,
    searches and streams running meanwhile see each record whole, in one version or the other."""

    def version(n: int, v: int) -> vk.Record:
        return vk.Record(
            {
                "v": v,
                "a_vec": vk.VectorField([float(v), 1.0]),
                "b_vec": vk.VectorField([1.0, float(v)]),
                "embedding": vk.VectorField([float(n), float(v), 1.0]),
            },
            id=f"r{n:02d}",
        )

    def whole(record: vk.Record) -> bool:
        v = record["v"]
        return bool(record["a_vec"][0] == v and record["b_vec"][1] == v and record["embedding"][1] == v)

    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.bulk_create([version(n, 0) for n in range(30)])
        seen = 0

        async def read() -> None:
            nonlocal seen
            for _ in range(15):
                for record in await store.bulk_read([f"r{n:02d}" for n in range(30)]):
                    assert record is not None
                    assert whole(record)
                    seen += 1
                for hit in await store.vector_search([1.0, 0.5], vector_field="b_vec", k=5):
                    assert whole(hit.record)

        async def write() -> None:
            for v in range(1, 8):
                await store.bulk_upsert([version(n, v) for n in range(30)])

        await asyncio.gather(write(), read(), read())
        assert seen == 2 * 15 * 30
        assert {r["v"] for r in await store.search()} == {7}


@pytest.mark.parametrize("exact_limit", [1000, 0], ids=["exact", "hnsw"])
@pytest.mark.parametrize("include_vectors", [True, False], ids=["vectors", "no-vectors"])
async def test_a_batch_search_answers_like_single_searches(any_config: str, exact_limit: int,
                                                           include_vectors: bool) -> None:
    """vector_search_batch over HNSW (one Chroma query, one fetch for every hit) and over the exact path
    gives each row what vector_search gives it: ids, scores, source texts and records (whole, or without their
    vectors, which then come from the query alone, also for records whose home entry is another collection's),
    with and without a filter, also for a filter so narrow that HNSW comes back short."""
    rng = np.random.default_rng(12)
    matrix = rng.normal(size=(300, 8)).astype(np.float32)
    records = [vk.Record({"text": f"t{i}", "group": i % 50, "meta": {"i": i},
                          "embedding": vk.VectorField(v, source_field="text")}, id=f"r{i:03d}")
               for i, v in enumerate(matrix)]
    for record in records[::3]:  # their home entry is in the "a_first" collection: guests in "embedding"'s
        record["a_first"] = vk.VectorField([1.0, float(record["group"])])
    queries = rng.normal(size=(12, 8)).astype(np.float32)
    async with vk.connect(with_options(any_config, exact_limit=exact_limit)) as store:
        await store.bulk_create(records)
        whole = {r.key: r for r in records}
        for where in (None, {"group": {"$in": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}, {"group": 7}):
            batch = await store.vector_search_batch(queries, k=8, filter=where, include_vectors=include_vectors)
            for row, results in zip(queries, batch, strict=True):
                single = await store.vector_search(row, k=8, filter=where, include_vectors=include_vectors)
                assert [(r.id, r.score, r.source_text) for r in results] == [
                    (r.id, r.score, r.source_text) for r in single], where
                assert [r.record for r in results] == [r.record for r in single]
                assert len(results) == (6 if where == {"group": 7} else 8)
                for result in results:
                    expected = whole[result.id]
                    if not include_vectors:
                        expected = vk.Record({n: f for n, f in expected.fields.items()
                                              if f.type is not vk.FieldType.VECTOR}, id=result.id)
                    assert result.record == expected
                    assert result.source_text == expected["text"]

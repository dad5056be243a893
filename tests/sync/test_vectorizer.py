"""IncrementalVectorizer: batching, a bounded queue with back-pressure, retries with backoff, failures reported,
and nothing lost on stop, cancel or restart."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.stores.memory import MemoryStore
from vectorknobs.sync import Failure, IncrementalVectorizer, VectorTextSynchronizer

pytestmark = pytest.mark.asyncio


async def test_the_original_designs_usage(store: vk.VectorStore, kit: Any) -> None:
    embedder = kit.Counting()
    vectorizer = IncrementalVectorizer(store, {"auto_vectorize": True, "batch_size": 50, "text_fields": ["body"],
                                               "embedding_fn": embedder, "max_wait": 1.0})
    await vectorizer.start()
    records = kit.docs(120)
    await store.bulk_create(records)
    for record in records:
        assert await vectorizer.on_create(record) is record
    report = await vectorizer.stop()
    assert (report.embedded, report.failed, report.pending) == (120, {}, [])
    assert max(len(call) for call in embedder.calls) == 50
    assert all("embedding" in r for r in (await kit.all_records(store)).values())


async def test_enqueue_waits_while_the_queue_is_full(kit: Any) -> None:
    """Back-pressure: with the embedder stuck, enqueue() blocks once max_pending ids wait."""
    release = threading.Event()

    def stuck(texts: list[str]) -> np.ndarray:
        release.wait(10)
        return vk.HashingEmbedder(8)(texts)

    async with vk.connect("memory://") as store:
        await store.bulk_create(kit.docs(40))
        vectorizer = IncrementalVectorizer(store, embedding_fn=stuck, text_fields="body", batch_size=5,
                                           max_pending=10, max_wait=0)
        async with vectorizer:
            feeding = asyncio.create_task(vectorizer.enqueue(f"d{i:05d}" for i in range(40)))
            await asyncio.sleep(0.2)
            assert not feeding.done()
            assert len(vectorizer._pending) == 10  # bounded: never more than max_pending waiting
            release.set()
            await asyncio.wait_for(feeding, 10)
        assert vectorizer.report.embedded == 40


async def test_duplicates_are_queued_once_and_deleted_records_are_counted(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create(kit.docs(5))
    embedder = kit.Counting()
    async with IncrementalVectorizer(store, embedding_fn=embedder, text_fields="body", max_wait=0.05) as vectorizer:
        await vectorizer.enqueue(["d00000", "d00000", "d00001", "ghost"])
    assert len(embedder.texts) == 2
    assert (vectorizer.report.embedded, vectorizer.report.gone) == (2, 1)


class FlakyStore(MemoryStore):
    """The memory store with an injected I/O fault: its next ``failures`` writes fail like a lost disk."""

    failures = 0
    attempts = 0

    async def _write(self, records: list[vk.Record], mode: vk.WriteMode) -> None:
        FlakyStore.attempts += 1
        if FlakyStore.failures > 0:
            FlakyStore.failures -= 1
            raise vk.StoreError("write failed: disk I/O error")
        await super()._write(records, mode)


async def flaky_store(kit: Any, n: int) -> FlakyStore:
    store = FlakyStore(parse_config("memory://"))
    await store.open()
    FlakyStore.failures = 0
    await store.bulk_create(kit.docs(n))
    FlakyStore.attempts = 0
    return store


async def test_transient_failures_are_retried_with_backoff(kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    store = await flaky_store(kit, 6)
    FlakyStore.failures = 2
    caplog.set_level(logging.WARNING, "vectorknobs.sync")
    vectorizer = IncrementalVectorizer(store, embedding_fn="hash", text_fields="body", batch_size=6, max_retries=3,
                                       backoff=0.01, max_wait=0)
    async with vectorizer:
        await vectorizer.enqueue(f"d{i:05d}" for i in range(6))
    assert (vectorizer.report.embedded, vectorizer.report.failed) == (6, {})
    assert FlakyStore.attempts == 3
    assert [r.message for r in caplog.records].count("vectorizing 6 records failed (attempt 1 of 3), retrying in "
                                                     "0.01s: write failed: disk I/O error") == 1


async def test_failures_that_outlast_the_retries_are_reported_never_swallowed(
        kit: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    store = await flaky_store(kit, 4)
    FlakyStore.failures = 100
    seen: list[Failure] = []
    queue = tmp_path / "queue.json"
    vectorizer = IncrementalVectorizer(store, embedding_fn="hash", text_fields="body", max_retries=2, backoff=0.01,
                                       max_wait=0, on_error=seen.append, queue_path=queue)
    with pytest.raises(vk.VectorizerError, match=r"4 record\(s\) could not be vectorized.*StoreError: write failed"):
        async with vectorizer:
            await vectorizer.enqueue(f"d{i:05d}" for i in range(4))
    assert sorted(vectorizer.report.failed) == [f"d{i:05d}" for i in range(4)]
    assert seen
    assert seen[0].kind == "StoreError"
    assert any("could not vectorize" in r.message for r in caplog.records if r.levelno == logging.ERROR)
    assert FlakyStore.attempts == 2  # bounded: max_retries attempts, no more
    # the failed ids are saved with the queue, and tried again at the next start, once the store works again
    assert sorted(json.loads(queue.read_text())["ids"]) == [f"d{i:05d}" for i in range(4)]
    FlakyStore.failures = 0
    async with IncrementalVectorizer(store, embedding_fn="hash", text_fields="body", queue_path=queue, max_wait=0) \
            as again:
        await again.flush()
    assert again.report.embedded == 4
    assert not queue.exists()


async def test_bad_records_fail_at_once_and_the_others_go_on(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create([*kit.docs(3), vk.Record({"body": 12}, id="bad")])
    vectorizer = IncrementalVectorizer(store, embedding_fn="hash", text_fields="body", max_wait=0)
    with pytest.raises(vk.VectorizerError, match="'bad': SourceTextError"):
        async with vectorizer:
            await vectorizer.enqueue(["d00000", "bad", "d00001", "d00002"])
    assert list(vectorizer.report.failed) == ["bad"]
    assert vectorizer.report.embedded == 3


async def test_stop_without_draining_saves_the_queue_and_start_resumes_it(kit: Any, tmp_path: Path) -> None:
    queue = tmp_path / "queue.json"
    release = threading.Event()

    def slow(texts: list[str]) -> np.ndarray:
        release.wait(10)
        return vk.HashingEmbedder(8)(texts)

    async with vk.connect("memory://") as store:
        await store.bulk_create(kit.docs(30))
        first = IncrementalVectorizer(store, embedding_fn=slow, text_fields="body", batch_size=10, max_wait=0,
                                      queue_path=queue)
        await first.start()
        await first.enqueue(f"d{i:05d}" for i in range(30))
        stopping = asyncio.create_task(first.stop(drain=False))
        await asyncio.sleep(0.05)
        release.set()
        report = await stopping
        assert report.embedded == 10  # the batch in hand was finished
        assert report.pending == [f"d{i:05d}" for i in range(10, 30)]
        assert report.saved_to == str(queue)
        second = IncrementalVectorizer(store, embedding_fn=vk.HashingEmbedder(8), text_fields="body",
                                       queue_path=queue, max_wait=0)
        async with second:
            await second.flush()
        assert second.report.embedded == 20
        assert not queue.exists()
        assert all("embedding" in r for r in (await kit.all_records(store)).values())


async def test_cancelling_the_worker_mid_batch_loses_nothing(kit: Any, tmp_path: Path) -> None:
    queue = tmp_path / "queue.json"
    started = threading.Event()

    def hangs(texts: list[str]) -> np.ndarray:
        started.set()
        threading.Event().wait(0.5)
        return vk.HashingEmbedder(8)(texts)

    async with vk.connect("memory://") as store:
        await store.bulk_create(kit.docs(12))
        vectorizer = IncrementalVectorizer(store, embedding_fn=hangs, text_fields="body", batch_size=5, max_wait=0,
                                           queue_path=queue)
        await vectorizer.start()
        await vectorizer.enqueue(f"d{i:05d}" for i in range(12))
        await asyncio.to_thread(started.wait, 10)
        assert vectorizer._task is not None
        vectorizer._task.cancel()  # as an application shutting down would
        with pytest.raises(asyncio.CancelledError):
            await vectorizer._task
        saved = json.loads(queue.read_text())["ids"]
        assert saved == [f"d{i:05d}" for i in range(12)]  # the batch in hand is back in the queue
        with pytest.raises(vk.VectorizerError, match="not running"):
            await vectorizer.enqueue(["d00000"])
        async with IncrementalVectorizer(store, embedding_fn=vk.HashingEmbedder(8), text_fields="body",
                                         queue_path=queue, max_wait=0) as resumed:
            await resumed.flush()
        assert resumed.report.embedded == 12


async def test_an_exception_in_the_body_stops_without_draining(kit: Any, tmp_path: Path) -> None:
    queue = tmp_path / "queue.json"
    async with vk.connect("memory://") as store:
        await store.bulk_create(kit.docs(3))
        vectorizer = IncrementalVectorizer(store, embedding_fn="hash", text_fields="body", max_wait=5,
                                           batch_size=50, queue_path=queue)

        async def application() -> None:
            async with vectorizer:
                await vectorizer.enqueue(["d00000", "d00001", "d00002"])
                raise RuntimeError("application failed")

        with pytest.raises(RuntimeError, match="application failed"):
            await application()
        assert sorted(json.loads(queue.read_text())["ids"]) == ["d00000", "d00001", "d00002"]


async def test_options_are_checked(store: vk.VectorStore) -> None:
    with pytest.raises(vk.ValidationError, match=r"unknown IncrementalVectorizer option\(s\) \['batchsize'\]"):
        IncrementalVectorizer(store, {"batchsize": 5, "embedding_fn": "hash"})
    with pytest.raises(vk.ValidationError, match="max_pending must be a positive int"):
        IncrementalVectorizer(store, embedding_fn="hash", max_pending=0)
    with pytest.raises(vk.ValidationError, match="max_wait must be a number of seconds"):
        IncrementalVectorizer(store, embedding_fn="hash", max_wait=-1)
    with pytest.raises(vk.ValidationError, match="give embedding_fn to the synchronizer"):
        IncrementalVectorizer(VectorTextSynchronizer(store, "hash"), embedding_fn="hash")
    with pytest.raises(vk.VectorizerError, match="not running"):
        await IncrementalVectorizer(store, embedding_fn="hash").enqueue(["a"])

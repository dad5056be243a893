"""VectorTextSynchronizer on the memory store and on faiss: embed on create, re-embed on change, skip unchanged
text, track the model, batch, stream a whole store, and refuse bad input with typed errors."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.embedders import content_hash
from vectorknobs.sync import VectorTextSynchronizer

pytestmark = pytest.mark.asyncio


async def test_create_embeds_and_records_provenance(store: vk.VectorStore, kit: Any) -> None:
    embedder = kit.Counting()
    sync = VectorTextSynchronizer(store, embedder, ["title", "body"])
    record_id = await sync.create(vk.Record({"title": "Vectors", "body": "Semantic search over text."}, id="a"))
    stored = await store.read(record_id)
    assert stored is not None
    vector = stored.fields["embedding"]
    assert isinstance(vector, vk.VectorField)
    assert (vector.source_field, vector.model_name, vector.model_version) == ("title,body", "hash", "1")
    assert vector.content_hash == content_hash("Vectors\nSemantic search over text.")
    np.testing.assert_array_equal(vector.value, embedder.inner(["Vectors\nSemantic search over text."])[0])
    assert sync.is_current(stored)
    hits = await store.search(vk.Query().near_text("semantic search", embedding_fn=embedder, k=1))
    assert hits[0].source_text == "Vectors\nSemantic search over text."


async def test_update_re_embeds_only_when_the_text_changed(store: vk.VectorStore, kit: Any) -> None:
    embedder = kit.Counting()
    sync = VectorTextSynchronizer(store, embedder, "body")
    await sync.bulk_create(kit.docs(3))
    assert len(embedder.texts) == 3
    record = await store.read("d00001")
    assert record is not None
    record["n"] = 100  # not a source field: no new embedding
    await sync.update(record)
    assert len(embedder.texts) == 3
    record["body"] = "completely new words"
    await sync.update(record)
    assert embedder.texts[-1] == "completely new words"
    stored = await store.read("d00001")
    assert stored is not None
    assert stored["n"] == 100
    assert sync.is_current(stored)
    assert stored.fields["embedding"].content_hash == content_hash("completely new words")


async def test_a_new_model_version_or_other_fields_make_vectors_outdated(store: vk.VectorStore, kit: Any) -> None:
    await VectorTextSynchronizer(store, kit.Counting(version="1"), "body").bulk_create(kit.docs(4))
    record = await store.read("d00000")
    assert record is not None
    assert VectorTextSynchronizer(store, kit.Counting(version="1"), "body").is_current(record)
    assert not VectorTextSynchronizer(store, kit.Counting(version="2"), "body").is_current(record)
    untracked = VectorTextSynchronizer(store, kit.Counting(version="2"), "body", track_model_version=False)
    assert untracked.is_current(record)
    assert not VectorTextSynchronizer(store, kit.Counting(name="other"), "body").is_current(record)
    assert not VectorTextSynchronizer(store, kit.Counting(), ["title", "body"]).is_current(record)
    upgraded = kit.Counting(version="2")
    result = await VectorTextSynchronizer(store, upgraded, "body").bulk_sync()
    assert (result.examined, result.embedded, result.current) == (4, 4, 0)
    assert {r.fields["embedding"].model_version for r in (await kit.all_records(store)).values()} == {"2"}


async def test_bulk_sync_streams_in_batches_and_skips_what_is_current(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create(kit.docs(2300))
    embedder = kit.Counting()
    sync = VectorTextSynchronizer(store, embedder, "body", batch_size=256)
    seen: list[tuple[int, int]] = []
    result = await sync.bulk_sync(progress_callback=lambda done, total: seen.append((done, total)))
    assert (result.examined, result.embedded, result.current, result.failures) == (2300, 2300, 0, [])
    assert max(len(call) for call in embedder.calls) == 256
    assert sorted(embedder.texts) == sorted(f"body text number {i}" for i in range(2300))  # each once
    assert seen[-1] == (2300, 2300)
    assert all(total == 2300 for _, total in seen)
    assert all(sync.is_current(r) for r in (await kit.all_records(store)).values())
    # half of them change: only those are embedded again
    changed = [r.with_id(r.key) for r in (await kit.all_records(store)).values() if r["n"] % 2 == 0]
    for r in changed:
        r["body"] = f"changed {r['n']}"
    await store.bulk_update(changed)
    embedder.calls.clear()
    result = await sync.bulk_sync()
    assert (result.embedded, result.current) == (1150, 1150)
    assert len(embedder.texts) == 1150
    assert (await sync.bulk_sync()).embedded == 0
    forced = await sync.bulk_sync(vk.where("n", "lt", 10), force=True)
    assert (forced.examined, forced.embedded) == (10, 10)


async def test_bulk_sync_reports_records_without_text_and_syncs_the_rest(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create([*kit.docs(5), vk.Record({"title": "no body"}, id="missing"),
                             vk.Record({"body": 42}, id="number"), vk.Record({"body": None}, id="none")])
    result = await VectorTextSynchronizer(store, kit.Counting(), "body").bulk_sync()
    assert result.embedded == 5
    assert sorted(result.failed_ids) == ["missing", "none", "number"]
    assert {f.kind for f in result.failures} == {"SourceTextError"}
    assert "must hold text, got int" in next(f.error for f in result.failures if f.ids == ("number",))
    for bad in ("missing", "number", "none"):
        stored = await store.read(bad)
        assert stored is not None
        assert "embedding" not in stored


async def test_sync_records_raises_a_typed_error_for_a_bad_source_field(store: vk.VectorStore, kit: Any) -> None:
    sync = VectorTextSynchronizer(store, kit.Counting(), ["title", "body"])
    with pytest.raises(vk.SourceTextError, match=r"no text in 'title', 'body'"):
        await sync.create(vk.Record({"other": "x"}, id="a"))
    with pytest.raises(vk.SourceTextError, match=r"source field 'body' must hold text, got list"):
        await sync.create(vk.Record({"title": "t", "body": ["not", "text"]}, id="b"))
    assert isinstance(vk.SourceTextError("x"), vk.InvalidRecordError)
    assert await store.count() == 0  # nothing was written
    # a missing field among several is left out of the text
    await sync.create(vk.Record({"title": "only a title"}, id="c"))
    stored = await store.read("c")
    assert stored is not None
    assert stored.fields["embedding"].content_hash == content_hash("only a title")


class Broken:
    """A real embedding function that misbehaves in one of the ways models and APIs do."""

    name, version = "broken", "1"

    def __init__(self, how: str, dimensions: int = 8) -> None:
        self.how, self.dimensions = how, dimensions

    def __call__(self, texts: list[str]) -> Any:
        out = vk.HashingEmbedder(8)(texts)
        if self.how == "nan":
            out[-1, 0] = np.nan
        elif self.how == "wrong-dimension":
            return out[:, :5]
        elif self.how == "short":
            return out[:-1]
        elif self.how == "raises":
            raise ConnectionError("the embedding API is down")
        return out


@pytest.mark.parametrize(("how", "error", "message"), [
    ("nan", vk.InvalidEmbeddingError, "returned NaN or inf"),
    ("wrong-dimension", vk.InvalidEmbeddingError, "declares 8 dimensions but returned 5"),
    ("short", vk.InvalidEmbeddingError, r"returned shape \(\d, 8\) for \d texts; expected"),
    ("raises", vk.EmbeddingError, "ConnectionError: the embedding API is down"),
])
async def test_a_misbehaving_embedder_is_a_typed_error_and_nothing_is_written(
        store: vk.VectorStore, kit: Any, how: str, error: type[Exception], message: str) -> None:
    await store.bulk_create(kit.docs(3))
    sync = VectorTextSynchronizer(store, Broken(how), "body")
    with pytest.raises(error, match=message):
        await sync.bulk_sync()
    with pytest.raises(error, match=message):
        await sync.create(vk.Record({"body": "x"}, id="new"))
    assert not await store.exists("new")
    assert all("embedding" not in r for r in (await kit.all_records(store)).values())


async def test_a_write_meanwhile_is_not_overwritten(store: vk.VectorStore, kit: Any) -> None:
    """A record whose text changes while its vector is being made keeps the new text (and is reported)."""
    await store.bulk_create(kit.docs(4))
    gate, release = threading.Event(), threading.Event()

    def slow(texts: list[str]) -> np.ndarray:
        gate.set()
        release.wait(10)
        return vk.HashingEmbedder(16)(texts)

    sync = VectorTextSynchronizer(store, slow, "body")
    task = asyncio.create_task(sync.bulk_sync())
    await asyncio.to_thread(gate.wait, 10)
    edited = await store.read("d00002")
    assert edited is not None
    edited["body"] = "edited meanwhile"
    await store.update(edited)
    release.set()
    result = await task
    assert result.changed_meanwhile == ["d00002"]
    assert result.embedded == 3
    stored = await store.read("d00002")
    assert stored is not None
    assert stored["body"] == "edited meanwhile"
    assert "embedding" not in stored
    assert (await sync.bulk_sync()).embedded == 1


async def test_async_embedders_and_the_event_loop_stays_free(store: vk.VectorStore, kit: Any) -> None:
    async def remote(texts: list[str]) -> np.ndarray:
        await asyncio.sleep(0)
        return vk.HashingEmbedder(16)(texts)

    await store.bulk_create(kit.docs(50))
    assert (await VectorTextSynchronizer(store, remote, "body", "remote_vec", batch_size=7).bulk_sync()).embedded == 50
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    def blocking(texts: list[str]) -> np.ndarray:  # a CPU-bound model: must run in a thread
        threading.Event().wait(0.2)
        return vk.HashingEmbedder(16)(texts)

    tick_task = asyncio.create_task(ticker())
    await VectorTextSynchronizer(store, blocking, "body", "cpu_vec", batch_size=50).bulk_sync()
    tick_task.cancel()
    assert ticks >= 10


async def test_registered_embedders_are_chosen_by_name(store: vk.VectorStore, kit: Any) -> None:
    sync = VectorTextSynchronizer(store, "hash", "body")
    await sync.bulk_create(kit.docs(2))
    stored = await store.read("d00000")
    assert stored is not None
    assert stored.fields["embedding"].model_name == "hash"
    with pytest.raises(vk.EmbeddingError, match="no embedder named 'nope'"):
        VectorTextSynchronizer(store, "nope", "body")
    with pytest.raises(vk.ValidationError, match="an embedding_fn is needed"):
        VectorTextSynchronizer(store, None, "body")
    with pytest.raises(vk.ValidationError, match="text_fields must name"):
        VectorTextSynchronizer(store, "hash", [])
    with pytest.raises(vk.ValidationError, match="batch_size must be a positive int"):
        VectorTextSynchronizer(store, "hash", "body", batch_size=0)

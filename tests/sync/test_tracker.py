"""ChangeTracker: hooked on writes through the plugin hook, so plain store writes keep vectors current, on the
memory store, on faiss, and on a third-party store that knows nothing about it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.embedders import content_hash
from vectorknobs.plugins import ENTRY_POINT_GROUP, get_registry
from vectorknobs.sync import ChangeTracker, IncrementalVectorizer, VectorTextSynchronizer

pytestmark = pytest.mark.asyncio


async def test_plain_writes_are_re_embedded_when_their_text_changes(store: vk.VectorStore, kit: Any) -> None:
    embedder = kit.Counting()
    sync = VectorTextSynchronizer(store, embedder, ["title", "body"])
    with ChangeTracker(sync) as tracker:
        await store.bulk_create(kit.docs(3))  # created without vectors: embedded by the tracker
        assert len(embedder.texts) == 3
        record = await store.read("d00001")
        assert record is not None
        assert sync.is_current(record)
        record["n"] = 7  # no source field changed: no embedding
        await store.update(record)
        assert len(embedder.texts) == 3
        record["body"] = "a new body"
        await store.upsert(record)
        assert embedder.texts[-1] == "title 1\na new body"
        stored = await store.read("d00001")
        assert stored is not None
        assert stored["n"] == 7
        assert stored.fields["embedding"].content_hash == content_hash("title 1\na new body")
        assert tracker.result.embedded == 4
        assert tracker.tracked_fields == {"embedding": ("title", "body")}
        assert await tracker.get_outdated_records() == []
    record["body"] = "written after the tracker stopped"
    await store.update(record)
    assert len(embedder.texts) == 4
    [outdated] = await ChangeTracker(sync).get_outdated_records()
    assert outdated.key == "d00001"


async def test_several_vector_fields_and_only_the_tracked_store(store: vk.VectorStore, kit: Any) -> None:
    by_title = VectorTextSynchronizer(store, kit.Counting(16), "title", "title_vec")
    by_body = VectorTextSynchronizer(store, kit.Counting(24), "body", "body_vec")
    async with vk.connect("memory://") as other, ChangeTracker(by_title, by_body):
        await store.create(vk.Record({"title": "t", "body": "b"}, id="x"))
        await other.create(vk.Record({"title": "t", "body": "b"}, id="x"))
        await store.create(vk.Record({"unrelated": True}, id="no-text"))  # no tracked text: left alone
        stored, untouched = await store.read("x"), await other.read("x")
    assert stored is not None
    assert untouched is not None
    assert stored.fields["title_vec"].dimensions == 16
    assert stored.fields["body_vec"].dimensions == 24
    assert "title_vec" not in untouched
    assert "body_vec" not in untouched


async def test_a_failed_re_sync_is_reported_and_the_record_stays_findable(store: vk.VectorStore, kit: Any) -> None:
    def nan(texts: list[str]) -> np.ndarray:
        out = vk.HashingEmbedder(8)(texts)
        out[:, 0] = np.nan
        return out

    tracker = ChangeTracker(VectorTextSynchronizer(store, nan, "body"))
    with tracker, pytest.raises(vk.WriteListenerError, match=r"was stored, but write listener.*returned NaN"):
        await store.create(vk.Record({"body": "text"}, id="a"))
    assert await store.exists("a")  # the write itself applied
    assert [r.key for r in await tracker.get_outdated_records()] == ["a"]
    with tracker, pytest.raises(vk.WriteListenerError, match="must hold text"):
        await store.create(vk.Record({"body": 3}, id="b"))


async def test_resync_and_limits(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create(kit.docs(30))
    tracker = ChangeTracker(VectorTextSynchronizer(store, kit.Counting(), "body"))
    assert len(await tracker.get_outdated_records(limit=5)) == 5
    assert len(await tracker.get_outdated_records(vk.where("n", "lt", 12))) == 12
    result = await tracker.resync(["d00000", "d00001", "gone"])
    assert result.embedded == 2
    assert len(await tracker.get_outdated_records()) == 28


async def test_with_a_vectorizer_writes_are_queued_not_waited_for(store: vk.VectorStore, kit: Any) -> None:
    vectorizer = IncrementalVectorizer(VectorTextSynchronizer(store, kit.Counting(), "body"), batch_size=10,
                                       max_wait=0.01)
    async with vectorizer, ChangeTracker(vectorizer=vectorizer) as tracker:
        await store.bulk_create(kit.docs(25))
        await vectorizer.flush()
        assert await tracker.get_outdated_records() == []
    assert vectorizer.report.embedded == 25
    with pytest.raises(vk.ValidationError, match="keeps the vectorizer's synchronizer only"):
        ChangeTracker(VectorTextSynchronizer(store, "hash", "title"), vectorizer=vectorizer)


THIRD_PARTY = """
    import vectorknobs
    from vectorknobs import Capabilities, Hit, Schema, VectorStore, WriteMode
    from vectorknobs.evaluate import matches

    class DictStore(VectorStore):
        '''A minimal third-party store: it implements the primitives and nothing about tracking.'''
        capabilities = Capabilities()

        async def _open(self):
            self.rows = {}

        async def _load_schema(self):
            return Schema()

        async def _write(self, records, mode):
            for r in records:
                self.rows[r.key] = r.copy()

        async def _read(self, ids):
            return [self.rows[i].copy() if i in self.rows else None for i in ids]

        async def _delete(self, ids):
            return sum(self.rows.pop(i, None) is not None for i in ids)

        async def _search(self, query):
            found = [r.copy() for i, r in sorted(self.rows.items()) if query.where is None or matches(r, query.where)]
            return found[query.skip:][:query.max_results]

        async def _count(self, where):
            return len(await self._search(vectorknobs.Query(where=where)))

        async def _vector_search(self, query, metric):
            return []

        async def _drop(self):
            self.rows = {}

    @vectorknobs.hookimpl
    def register_stores(register):
        register(DictStore, name="dictstore")
"""


async def test_a_third_party_store_is_tracked_without_doing_anything(tmp_path: Path, kit: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "vk_sync_dictstore.py").write_text(textwrap.dedent(THIRD_PARTY))
    info = site / "vk_sync_dictstore-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vk-sync-dictstore\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ndictstore = vk_sync_dictstore\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        async with vk.connect("dictstore://") as store:
            assert type(store).__module__ == "vk_sync_dictstore"
            with ChangeTracker(VectorTextSynchronizer(store, "hash", "body")):
                await store.create(vk.Record({"body": "tracked by the core, not the store"}, id="a"))
            stored = await store.read("a")
        assert stored is not None
        assert stored.fields["embedding"].model_name == "hash"
        assert not any(name.startswith("vectorknobs-change-tracker") for name, _ in get_registry().write_listeners())
    finally:
        sys.modules.pop("vk_sync_dictstore", None)

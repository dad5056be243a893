"""Several stores on one collection (clients of one server, or stores on one directory in a process): each
sees the fields, records and signatures the others write after it opened."""

from __future__ import annotations

from pathlib import Path

import pytest
import vectorknobs as vk

pytestmark = pytest.mark.asyncio


async def test_a_hit_whose_home_collection_another_store_added_is_read_whole(any_config: str) -> None:
    """(The conformance suite's ``SharedSchemaTests`` covers one vector field.) A record with two vector fields
    lives in the collection of the first by name: a search on the second, opened by this store after the
    record was written, follows it there."""
    async with vk.connect(any_config) as first:
        await first.create(vk.Record({"text": "t", "title": vk.VectorField([0.0, 1.0, 0.0])}, id="t"))
        async with vk.connect(any_config) as second:
            await second.create(vk.Record({"rank": 1, "title": vk.VectorField([0.0, 1.0, 0.0]),
                                           "a_first": vk.VectorField([1.0])}, id="b"))  # home: a_first's
            hits = await first.vector_search([0.0, 1.0, 0.0], vector_field="title", k=5)
            assert sorted(h.id for h in hits) == ["b", "t"]
            assert {h.id: sorted(h.record.fields) for h in hits}["b"] == ["a_first", "rank", "title"]
            assert first.vector_dimensions() == {"title": 3, "a_first": 1}  # learnt on the way


async def test_a_store_alone_on_its_directory_reads_no_registry_before_a_read(tmp_path: Path) -> None:
    """Nobody else can write the directory meanwhile, so reads go straight to the data."""
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.create(vk.Record({"text": "a", "embedding": vk.VectorField([1.0, 0.0])}, id="a"))
        assert store._chroma is not None
        assert not store._chroma.shared
        async with vk.connect(f"chroma://{tmp_path}/db?collection=other"):
            assert store._chroma.shared  # another store of this process on the same directory
        assert not store._chroma.shared

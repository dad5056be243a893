"""Several stores on one collection (clients of one server, or stores on one directory in a process): each
sees the fields, records and signatures the others write after it opened."""

from __future__ import annotations

from pathlib import Path

import pytest
import vectorknobs as vk

pytestmark = pytest.mark.asyncio


async def test_records_in_a_vector_field_another_store_added_are_seen(any_config: str) -> None:
    async with vk.connect(any_config) as first, vk.connect(any_config) as second:
        await second.bulk_create([
            vk.Record({"text": "a", "rank": 2, "embedding": vk.VectorField([1.0, 0.0])}, id="a"),
            vk.Record({"text": "b", "rank": 1, "title": vk.VectorField([0.0, 1.0, 0.0]),
                       "a_first": vk.VectorField([1.0])}, id="b"),  # its home is a_first's collection
        ])
        assert await first.count() == 2
        assert [r.id if r else None for r in await first.bulk_read(["a", "b"])] == ["a", "b"]
        assert [r.id for r in await first.search({"sort": ["rank"]})] == ["b", "a"]
        assert [h.id for h in await first.vector_search([1.0, 0.1], k=5)] == ["a"]
        hits = await first.vector_search([0.0, 1.0, 0.0], vector_field="title", k=5)
        assert [(h.id, h.record.fields.keys() >= {"a_first", "title", "rank"}) for h in hits] == [("b", True)]
        assert first.vector_dimensions() == {"embedding": 2, "title": 3, "a_first": 1}
        with pytest.raises(vk.DimensionMismatchError):  # the other store fixed the field's dimension first
            await first.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0, 3.0])}, id="c"))
        assert await first.count() == 2


async def test_a_store_alone_on_its_directory_reads_no_registry_before_a_read(tmp_path: Path) -> None:
    """Nobody else can write the directory meanwhile, so reads go straight to the data."""
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.create(vk.Record({"text": "a", "embedding": vk.VectorField([1.0, 0.0])}, id="a"))
        assert store._chroma is not None
        assert not store._chroma.shared
        async with vk.connect(f"chroma://{tmp_path}/db?collection=other"):
            assert store._chroma.shared  # another store of this process on the same directory
        assert not store._chroma.shared

"""Two stores on one table (two application instances on one database): each sees the vector columns and
indexes the other adds after it opened."""

from __future__ import annotations

import pytest
import vectorknobs as vk

pytestmark = pytest.mark.asyncio


async def test_a_vector_field_another_client_added_is_searched_and_its_dimension_kept(table_url: str) -> None:
    async with vk.connect(table_url) as first, vk.connect(table_url) as second:
        await first.create(vk.Record({"text": "plain", "rank": 0}, id="p"))
        await second.bulk_create([
            vk.Record({"text": "a", "rank": 2, "embedding": vk.VectorField([1.0, 0.0])}, id="a"),
            vk.Record({"text": "b", "rank": 1, "embedding": vk.VectorField([0.0, 1.0])}, id="b"),
        ])
        assert [h.id for h in await first.vector_search([1.0, 0.1], k=5)] == ["a", "b"]
        assert [r.id for r in await first.search({"sort": ["rank"], "filter": {"rank": {"$gt": 0}}})] == ["b", "a"]
        assert first.vector_dimensions() == {"embedding": 2}
        with pytest.raises(vk.DimensionMismatchError):  # the other client fixed the column's dimension first
            await first.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0, 3.0])}, id="c"))
        await second.create_index("embedding", "hnsw")
        await first.create(vk.Record({"other": vk.VectorField([1.0])}, id="o"))  # a new field: reads the table
        assert [i.kind.value for i in first.indexes()] == ["hnsw"]  # and so learns of the index
        assert await first.count() == 4

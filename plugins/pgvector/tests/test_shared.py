"""Two stores on one table (two application instances on one database). The conformance suite's
``SharedSchemaTests`` covers new fields; here, indexes."""

from __future__ import annotations

import pytest
import vectorknobs as vk

pytestmark = pytest.mark.asyncio


async def test_an_index_another_client_built_is_learnt_with_the_next_new_field(table_url: str) -> None:
    async with vk.connect(table_url) as first, vk.connect(table_url) as second:
        await second.bulk_create([vk.Record({"embedding": vk.VectorField([1.0, float(i)])}, id=f"r{i}")
                                  for i in range(3)])
        assert [h.id for h in await first.vector_search([1.0, 0.0], k=1)] == ["r0"]  # reads the table again
        assert first.indexes() == []
        await second.create_index("embedding", "hnsw")
        await first.create(vk.Record({"other": vk.VectorField([1.0])}, id="o"))  # a new field: reads the table
        assert [i.kind.value for i in first.indexes()] == ["hnsw"]

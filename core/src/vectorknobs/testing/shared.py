"""Several clients on one store's data: for stores that declare ``shared_schema`` (a server's data, which other
application instances write too). Not part of ``StoreConformance``: a store whose data one process owns cannot
be opened twice."""

from __future__ import annotations

import pytest

import vectorknobs as vk
from vectorknobs.testing._support import ConfigLike, ConformanceBase, store_class


class SharedSchemaTests(ConformanceBase):
    """Two stores opened on the same ``store_config`` (two clients).

    Troubleshooting: declare ``shared_schema = True``, make ``_load_schema`` read the schema from the engine
    (the core calls it again when a write or a query names an unknown field), and make reads see records in
    places (collections, indexes, columns) another client created after this store opened.
    """

    async def test_fields_another_client_adds_are_seen(self, store_config: ConfigLike) -> None:
        """The second client writes records with a new vector field and a new value field after the first
        opened: the first counts, reads, sorts by and searches them, and a vector of another dimension it
        writes into that field is a ``DimensionMismatchError``."""
        assert store_class(store_config).shared_schema, "a store that runs these tests declares shared_schema"
        async with vk.connect(store_config) as first, vk.connect(store_config) as second:
            await first.create(vk.Record({"text": "plain"}, id="p"))
            await second.bulk_create([
                vk.Record({"text": "a", "rank": 2, "embedding": vk.VectorField([1.0, 0.0])}, id="a"),
                vk.Record({"text": "b", "rank": 1, "embedding": vk.VectorField([0.0, 1.0])}, id="b"),
            ])
            assert await first.count() == 3
            assert [r.id if r else None for r in await first.bulk_read(["a", "b", "p"])] == ["a", "b", "p"]
            assert [r.id for r in await first.search({"filter": {"rank": {"$gte": 1}}, "sort": ["rank"]})] == [
                "b", "a"]
            assert [h.id for h in await first.vector_search([1.0, 0.1], k=5)] == ["a", "b"]
            assert first.vector_dimensions() == {"embedding": 2}
            with pytest.raises(vk.DimensionMismatchError):  # the other client fixed the field's dimension
                await first.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0, 3.0])}, id="c"))
            assert await second.count() == 3

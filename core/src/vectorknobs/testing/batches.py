"""Column writes: a ``RecordBatch`` stores exactly what the same rows as ``Record``s store."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

import vectorknobs as vk
from vectorknobs.testing._support import ConfigLike, ConformanceBase

ROWS = 40


def batch_columns(start: int = 0, rows: int = ROWS) -> tuple[list[str], dict[str, list[object]], np.ndarray]:
    """Ids, value columns of every kind (a mixed column too) and a ``rows x 3`` matrix, row ``i`` derived
    from ``start + i``."""
    numbers = range(start, start + rows)
    ids = [f"row-{n:04d}" for n in numbers]
    columns: dict[str, list[object]] = {
        "text": [f"row {n} \u2603 \"q\"\n" for n in numbers],
        "n": list(numbers),
        "price": [n / 4 for n in numbers],
        "flag": [n % 2 == 0 for n in numbers],
        "when": [datetime(2024, 1, 1 + n % 28, tzinfo=UTC if n % 3 else None) for n in numbers],
        "meta": [{"tags": ["a", str(n)], "$odd": n % 2, "deep": {"none": None}} for n in numbers],
        "mixed": [[None, 2**70, "x", 1.5, True, [], {}][n % 7] for n in numbers],
    }
    matrix = np.array([[n + 1.0, 1.0, -n / 2] for n in numbers], dtype=np.float32)
    return ids, columns, matrix


def as_records(
    ids: list[str], columns: dict[str, list[object]], vectors: dict[str, vk.VectorColumn],
) -> list[vk.Record]:
    """The same rows built one ``Record`` at a time: what the batch must store."""
    records = []
    for row, record_id in enumerate(ids):
        data: dict[str, object] = {name: values[row] for name, values in columns.items()}
        for name, column in vectors.items():
            data[name] = vk.VectorField(
                column.matrix[row], source_field=column.source_field, model_name=column.model_name,
                model_version=column.model_version,
                content_hash=None if column.content_hashes is None else column.content_hashes[row],
            )
        records.append(vk.Record(data, id=record_id))
    return records


class RecordBatchTests(ConformanceBase):
    """``bulk_create`` / ``bulk_upsert`` / ``bulk_update`` of a ``RecordBatch``.

    Troubleshooting: a store that overrides ``_write_batch`` must store each row exactly as ``_write`` stores
    ``batch.records()``; the default implementation does just that.
    """

    async def test_batch_stores_what_records_store(self, store_config: ConfigLike) -> None:
        """Every value kind and two vector fields (one with provenance and content hashes) written as columns
        read back equal to the same rows written as records; search, filters and count see them."""
        ids, columns, matrix = batch_columns()
        vectors = {
            "embedding": vk.VectorColumn(matrix, source_field="text", model_name="m", model_version="1",
                                         content_hashes=[f"{i:064x}" for i in range(ROWS)]),
            "other": vk.VectorColumn(np.ones((ROWS, 5), dtype=np.float32) + np.arange(ROWS)[:, None]),
        }
        batch = vk.RecordBatch({**columns, **vectors}, ids=ids)
        expected = as_records(ids, columns, vectors)
        async with vk.connect(store_config) as store:
            assert await store.bulk_create(batch) == ids
            assert await store.count() == ROWS
            assert await store.bulk_read(ids) == expected
            assert await store.count({"flag": True}) == ROWS // 2
            hits = await store.vector_search(matrix[7], "embedding", k=1)  # no two rows point the same way
            assert [(h.id, h.record) for h in hits] == [(ids[7], expected[7])]

    async def test_batch_upsert_and_update_replace_rows(self, store_config: ConfigLike) -> None:
        """bulk_upsert of a batch replaces stored rows and adds new ones; bulk_update replaces stored rows."""
        ids, columns, matrix = batch_columns()
        async with vk.connect(store_config) as store:
            await store.bulk_create(vk.RecordBatch({**columns, "embedding": matrix}, ids=ids))
            later_ids, later_columns, later_matrix = batch_columns(start=ROWS // 2)
            later_columns["text"] = [f"changed {i}" for i in later_ids]
            assert await store.bulk_upsert(vk.RecordBatch({**later_columns, "embedding": later_matrix},
                                                          ids=later_ids)) == later_ids
            assert await store.count() == ROWS + ROWS // 2
            assert (await store.read(ids[-1]))["text"] == f"changed {ids[-1]}"  # type: ignore[index]
            assert (await store.read(ids[0]))["text"] == columns["text"][0]  # type: ignore[index]
            await store.bulk_update(vk.RecordBatch({"text": ["only text"] * 2}, ids=ids[:2]))
            assert await store.bulk_read(ids[:2]) == [vk.Record({"text": "only text"}, id=i) for i in ids[:2]]

    async def test_batch_without_ids_gets_new_ones(self, store_config: ConfigLike) -> None:
        """A batch without ids is created (or upserted) under fresh unique ids, returned in row order; an
        update needs ids."""
        _, columns, matrix = batch_columns(rows=10)
        batch = vk.RecordBatch({"text": columns["text"], "embedding": matrix})
        async with vk.connect(store_config) as store:
            created = await store.bulk_create(batch)
            upserted = await store.bulk_upsert(batch)
            assert len(set(created + upserted)) == 20
            assert [r["text"] for r in await store.bulk_read(created)] == columns["text"]  # type: ignore[index]
            with pytest.raises(vk.InvalidRecordError, match="id"):
                await store.bulk_update(batch)
            assert await store.count() == 20

    async def test_bad_batches_write_nothing(self, store_config: ConfigLike) -> None:
        """Existing ids on create, missing ids on update, a vector column of other dimensions, values in a
        vector field: typed errors, and not one row of the batch is written."""
        ids, columns, matrix = batch_columns(rows=10)
        async with vk.connect(store_config) as store:
            await store.bulk_create(vk.RecordBatch({"text": columns["text"][:1], "embedding": matrix[:1]},
                                                   ids=ids[:1]))
            before = await self.contents(store)
            with pytest.raises(vk.DuplicateIdError, match=ids[0]):
                await store.bulk_create(vk.RecordBatch({"text": columns["text"], "embedding": matrix}, ids=ids))
            with pytest.raises(vk.RecordNotFoundError):
                await store.bulk_update(vk.RecordBatch({"text": columns["text"]}, ids=ids))
            with pytest.raises(vk.DimensionMismatchError, match="embedding"):
                await store.bulk_upsert(vk.RecordBatch({"embedding": np.ones((10, 4), np.float32)}, ids=ids))
            with pytest.raises(vk.InvalidRecordError, match="vector field"):
                await store.bulk_upsert(vk.RecordBatch({"embedding": columns["n"]}, ids=ids))
            with pytest.raises(vk.InvalidRecordError, match="non-vector"):
                await store.bulk_upsert(vk.RecordBatch({"text": matrix}, ids=ids))
            assert await self.contents(store) == before

    async def test_stream_batches_reads_what_stream_reads(self, store_config: ConfigLike) -> None:
        """stream_batches() gives the pages of stream(), in id order: a page whose rows share their fields as
        one RecordBatch, any other page as its records; a filter applies as in stream().

        Troubleshooting: a store's ``_stream_pages`` must return, for each page, exactly the records ``_stream``
        returns (``batch.records()`` of a batch), ``RecordBatch.restore`` only for rows ``from_records`` accepts.
        """
        ids, columns, matrix = batch_columns()
        vectors = {"embedding": vk.VectorColumn(matrix, source_field="text", model_name="m",
                                                content_hashes=[f"{i:064x}" for i in range(ROWS)])}
        odd = [vk.Record({"text": "no vector"}, id="zz-0"), vk.Record({"text": "typed", "n": vk.Field(
            "n", None, vk.FieldType.STRING)}, id="zz-1")]
        async with vk.connect(store_config) as store:
            await store.bulk_create(vk.RecordBatch({**columns, **vectors}, ids=ids))
            await store.bulk_create(odd)
            for query in (None, {"flag": True}):
                pages = [page async for page in store.stream_batches(query, batch_size=15)]
                plain = [page async for page in store.stream(query, batch_size=15)]
                assert [p.records() if isinstance(p, vk.RecordBatch) else p for p in pages] == plain
            pages = [page async for page in store.stream_batches(batch_size=ROWS)]
            assert isinstance(pages[0], vk.RecordBatch)
            assert pages[0].vectors["embedding"].content_hashes == vectors["embedding"].content_hashes
            assert pages[-1] == odd

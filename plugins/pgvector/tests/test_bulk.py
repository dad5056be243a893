"""Bulk writes through binary COPY (seen in the server's statement log), bulk update and delete, ``stream``
from a server-side cursor, ``count``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing.batches import batch_columns
from vectorknobs_pgvector.rows import encode_vector, row_of, rows_of_batch
from vectorknobs_pgvector.store import COPY_ROWS

pytestmark = pytest.mark.asyncio
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]
Records = Callable[..., list[vk.Record]]


def writes(entries: list[str]) -> list[str]:
    """The statements that wrote rows, shortened to their first line."""
    verbs = ("COPY", "INSERT", "UPDATE", "DELETE", "CREATE TEMP")
    return [e.split("\n")[0][:140] for e in entries if e.lstrip().startswith(verbs) and "vectorknobs_fields" not in e]


async def test_bulk_writes_go_through_binary_copy(statement_log: Any, records: Records) -> None:
    url = statement_log.url()
    params = parse_config(url).params
    table = f'"{params["schema"]}"."{params["table"]}"'
    async with vk.connect(url) as store:
        await store.bulk_create(records(COPY_ROWS + 36, 8))
        created = writes(statement_log.entries(url))
        assert len(created) == 1
        columns = '("id", "_body", "_doc", "embedding")'
        assert created[0].startswith(f"COPY {table}{columns} FROM STDIN (FORMAT binary)")

        await store.bulk_upsert(records(200, 8, seed=1))  # 100 replace stored records, 100 are new
        upserted = writes(statement_log.entries(url))[1:]
        assert [s.split("(")[0].strip() for s in upserted] == [
            "CREATE TEMP TABLE vk_stage", 'COPY "vk_stage"', f"INSERT INTO {table}"]
        assert "FROM STDIN (FORMAT binary)" in upserted[1]
        full = [e for e in statement_log.entries(url) if e.startswith(f"INSERT INTO {table}")][-1]
        assert "FROM vk_stage ON CONFLICT (id) DO UPDATE SET" in full

        changed = [vk.Record({"text": "changed", "embedding": vk.VectorField(np.ones(8))}, id=f"r{i}")
                   for i in range(150)]
        await store.bulk_update(changed)
        updated = writes(statement_log.entries(url))[4:]
        assert [s.split("(")[0].strip() for s in updated] == [
            "CREATE TEMP TABLE vk_stage", 'COPY "vk_stage"', f"INSERT INTO {table}"]

        await store.bulk_upsert(records(3, 8, start=500))  # a small batch: pipelined INSERTs, no COPY
        small = writes(statement_log.entries(url))[7:]
        assert len(small) == 3
        assert all(s.startswith(f"INSERT INTO {table}") and "VALUES" in s for s in small)

        assert await store.count() == 203
        assert await store.count({"text": "changed"}) == 150
        back = await store.read("r149")
        assert back is not None
        np.testing.assert_array_equal(back.fields["embedding"].value, np.ones(8, dtype=np.float32))


async def test_bulk_update_and_delete(table_url: str, records: Records) -> None:
    async with vk.connect(table_url) as store:
        data = records(500, 8)
        await store.bulk_create(data)
        changed = [vk.Record({"text": f"v2 {r.id}", "category": "v2", "embedding": r.fields["embedding"]}, id=r.id)
                   for r in data[:300]]
        await store.bulk_update(changed)
        assert await store.count({"category": "v2"}) == 300
        assert await store.read("r299") == changed[299]
        assert await store.read("r300") == data[300]

        with pytest.raises(vk.RecordNotFoundError, match="nope"):
            await store.bulk_update([*[vk.Record({"category": "v3"}, id=r.id) for r in data[:200]],
                                     vk.Record({"category": "v3"}, id="nope")])
        assert await store.count({"category": "v3"}) == 0  # nothing of the failed batch was written

        deleted = await store.bulk_delete([r.key for r in data[:250]] + ["nope", "r0"])
        assert deleted == 250
        assert await store.count() == 250
        assert await store.bulk_read(["r0", "r250", "r300"]) == [None, changed[250], data[300]]


async def test_stream_reads_batches_from_a_server_side_cursor(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    url = table_url + "&application_name=vk-stream"
    watcher = await raw_connect(table_url)
    async with vk.connect(url) as store:
        await store.bulk_create(records(1000, 4))
        stream = store.stream({"category": {"$in": ["c1", "c2", "c3"]}}, batch_size=64)
        first = await anext(stream)
        # between batches the query stays open on the server, in its transaction
        state = await watcher.fetch("SELECT state, query FROM pg_stat_activity WHERE application_name = 'vk-stream' "
                                    "AND query LIKE 'SELECT id, _body%ORDER BY id'")
        assert [row["state"] for row in state] == ["idle in transaction"]
        await store.bulk_create(records(10, 4, start=5000, categories=1))  # not in the stream's snapshot
        batches = [first] + [batch async for batch in stream]
    assert [len(b) for b in batches] == [64, 64, 64, 64, 44]
    ids = [r.id for b in batches for r in b]
    assert ids == sorted(r.key for r in records(1000, 4) if r["category"] in ("c1", "c2", "c3"))


async def test_count(table_url: str, records: Records) -> None:
    async with vk.connect(table_url) as store:
        assert await store.count() == 0
        await store.bulk_create(records(300, 4))
        assert await store.count() == 300
        assert await store.count({"category": "c3"}) == 30
        assert await store.count({"rank": {"$gte": 100, "$lt": 150}}) == 50
        assert await store.count(vk.Query().filter({"category": "c3"}).limit(5).offset(10)) == 30
        assert await store.count({"$or": [{"category": "c1"}, {"missing": {"$exists": True}}]}) == 30


async def test_batch_rows_are_the_rows_of_its_records() -> None:
    """A RecordBatch is encoded column by column, into exactly the bytes row_of makes of the same rows."""
    ids, columns, matrix = batch_columns(rows=30)
    columns["text"][1] = "nul \x00 and \x01 inside"
    columns["price"][2] = 2.0**60  # projected to an exact integer for filters
    columns["price"][3] = -0.0
    columns["n"][4] = 2**80
    hashes = [f"h{i}" for i in range(30)]
    batch = vk.RecordBatch({**columns, "a": vk.VectorColumn(matrix, source_field="text", model_name="m",
                                                            content_hashes=hashes),
                            "b": vk.VectorColumn(matrix[:, :2])}, ids=ids)
    for vector_columns in (["a", "b"], ["b", "other", "a"]):
        expected = [row_of(r, vector_columns) for r in batch.records()]
        got = rows_of_batch(batch, vector_columns)
        assert [row[:3] for row in got] == [row[:3] for row in expected]
        for row, want in zip(got, expected, strict=True):
            assert [None if v is None else v.tolist() for v in row[3:]] == [
                None if v is None else v.tolist() for v in want[3:]]
        binary = rows_of_batch(batch, vector_columns, float32={"a"})  # pre-encoded for vector(d) columns
        assert [row[:3] for row in binary] == [row[:3] for row in expected]
        position = 3 + vector_columns.index("a")
        assert [row[position] for row in binary] == [encode_vector(row[position]) for row in expected]


async def test_batches_go_through_binary_copy(statement_log: Any) -> None:
    url = statement_log.url()
    ids, columns, matrix = batch_columns(rows=COPY_ROWS)
    async with vk.connect(url) as store:
        await store.bulk_create(vk.RecordBatch({**columns, "embedding": matrix}, ids=ids))
        created = writes(statement_log.entries(url))
        assert len(created) == 1
        assert created[0].startswith("COPY ")
        assert await store.count() == COPY_ROWS


async def test_plain_values_are_stored_compactly_and_older_rows_still_read() -> None:
    """A plain value of its inferred type is stored bare in ``_body``; the ``[value]`` and ``{"type", "value"}``
    entries of rows written by earlier versions read back the same."""
    from vectorknobs_pgvector.rows import record_of

    record = vk.Record({"text": "hi", "n": 2, "price": vk.Field("price", 3, vk.FieldType.FLOAT), "none": None,
                        "typed": vk.Field("typed", None, vk.FieldType.STRING)}, id="r")
    body = row_of(record, [])[1]
    assert body == ('{"text":"hi","n":2,"price":3.0,"none":null,'
                    '"typed":{"type":"string","value":null}}')
    assert record_of("r", body, {}) == record
    listed = '{"text":["hi"],"n":[2],"price":[3.0],"none":[null],"typed":{"type":"string","value":null}}'
    assert record_of("r", listed, {}) == record
    older = ('{"text":{"type":"string","value":"hi"},"n":{"type":"integer","value":2},'
             '"price":{"type":"float","value":3.0},"none":{"type":"json","value":null},'
             '"typed":{"type":"string","value":null}}')
    assert record_of("r", older, {}) == record

"""The vector extension, vector columns (``vector(d)`` / ``halfvec(d)``), one row per record."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs_pgvector import EmbeddedServer

pytestmark = pytest.mark.asyncio
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]
Records = Callable[..., list[vk.Record]]


def url_of(server: EmbeddedServer, database: str, **options: str) -> str:
    query = "".join(f"&{key}={value}" for key, value in {"table": "docs", **options}.items())
    return server.url(database) + query


async def columns(conn: asyncpg.Connection, table: str = "public.docs") -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum", table)
    return {row[0]: row[1] for row in rows}


async def extension_installed(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"))


async def test_the_first_vector_write_creates_the_extension(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect, records: Records
) -> None:
    url = url_of(embedded_server, fresh_database)
    admin = await raw_connect(url)
    async with vk.connect(url) as store:
        assert await store.has_vector_support() is False
        await store.create(vk.Record({"text": "no vectors yet"}, id="plain"))
        assert await store.has_vector_support() is False  # scalar records never need it
        await store.bulk_create(records(3, 8))
        assert await store.has_vector_support() is True
        assert await extension_installed(admin)
        hits = await store.vector_search(np.ones(8, dtype=np.float32), k=5)
        assert sorted(h.id for h in hits) == ["r0", "r1", "r2"]


async def test_enable_vector_support_runs_create_extension(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect
) -> None:
    url = url_of(embedded_server, fresh_database)
    admin = await raw_connect(url)
    async with vk.connect(url) as store:
        assert not await extension_installed(admin)
        assert await store.enable_vector_support() is True
        assert await extension_installed(admin)
        assert await store.enable_vector_support() is True  # idempotent
        assert await store.has_vector_support() is True


async def test_create_extension_false_never_creates_it(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect, records: Records
) -> None:
    url = url_of(embedded_server, fresh_database, create_extension="false")
    admin = await raw_connect(url)
    async with vk.connect(url) as store:
        must_run = r"administrator must run:\s+CREATE EXTENSION IF NOT EXISTS vector"
        with pytest.raises(vk.CapabilityError, match=must_run):
            await store.enable_vector_support()
        with pytest.raises(vk.CapabilityError, match="create_extension=false"):
            await store.bulk_create(records(2, 4))
        assert await store.count() == 0
    assert not await extension_installed(admin)


async def test_a_role_that_may_not_create_the_extension_is_told_what_an_admin_must_run(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect, records: Records
) -> None:
    role = f"vkrole_{uuid.uuid4().hex[:8]}"
    admin = await raw_connect(url_of(embedded_server, fresh_database))
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    await admin.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')  # may create tables, not extensions
    try:
        url = url_of(embedded_server, fresh_database).replace("pgvector://postgres@", f"pgvector://{role}@")
        async with vk.connect(url) as store:
            assert await store.has_vector_support() is False
            with pytest.raises(vk.CapabilityError) as caught:
                await store.enable_vector_support()
            message = str(caught.value)
            assert role in message
            assert fresh_database in message
            assert "CREATE EXTENSION IF NOT EXISTS vector" in message
            assert "superuser" in message
            with pytest.raises(vk.CapabilityError, match="CREATE EXTENSION IF NOT EXISTS vector"):
                await store.bulk_create(records(3, 4))
            assert await store.count() == 0  # nothing of the batch was written
            # an administrator does as told; the same store then stores and searches vectors
            await admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
            assert await store.has_vector_support() is True
            await store.bulk_create(records(100, 4))
            hits = await store.vector_search(np.ones(4, dtype=np.float32), k=3)
            assert len(hits) == 3
            assert (await store.read("r7")) == records(100, 4)[7]
    finally:
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')


async def test_vector_columns_are_added_on_first_use_and_found_on_connect(
    table_url: str, raw_connect: RawConnect, records: Records
) -> None:
    raw = await raw_connect(table_url)
    params = parse_config(table_url).params
    table = f"{params['schema']}.{params['table']}"
    async with vk.connect(table_url) as store:
        await store.create(vk.Record({"text": "plain"}, id="plain"))
        assert list(await columns(raw, table)) == ["id", "_body", "_doc"]
        await store.bulk_create(records(10, 8))
        assert (await columns(raw, table))["embedding"] == "vector(8)"
        summary = vk.VectorField(np.arange(3, dtype=np.float32) + 1, source_field="text")
        await store.upsert(vk.Record({"text": "text 1", "summary": summary}, id="r1"))
        assert (await columns(raw, table))["summary"] == "vector(3)"
    async with vk.connect(table_url) as reopened:
        assert reopened.vector_dimensions() == {"embedding": 8, "summary": 3}
        hits = await reopened.vector_search([1.0, 2.0, 3.0], vector_field="summary", k=5)
        assert [h.id for h in hits] == ["r1"]
        assert hits[0].source_text == "text 1"
        with pytest.raises(vk.DimensionMismatchError):
            await reopened.upsert(vk.Record({"summary": vk.VectorField(np.ones(4, dtype=np.float32))}, id="x"))


async def test_a_field_created_meanwhile_by_another_client_keeps_its_dimension(
    table_url: str, records: Records
) -> None:
    async with vk.connect(table_url) as first, vk.connect(table_url) as second:
        await first.bulk_create(records(2, 8))
        # ``second`` has not seen the column: the server's table, not its memory, decides
        with pytest.raises(vk.DimensionMismatchError, match="8"):
            await second.bulk_create(records(2, 4, start=10))
        assert await second.count() == 2


async def test_halfvec_columns_take_half_the_space(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect, records: Records
) -> None:
    full_url = url_of(embedded_server, fresh_database, table="full")
    half_url = url_of(embedded_server, fresh_database, table="half", vector_type="halfvec")
    raw = await raw_connect(full_url)
    data = records(50, 64)
    async with vk.connect(full_url) as full, vk.connect(half_url) as half:
        await full.bulk_create(data)
        await half.bulk_create(data)
        assert (await columns(raw, "public.half"))["embedding"] == "halfvec(64)"
        assert (await columns(raw, "public.full"))["embedding"] == "vector(64)"
        sizes = {t: await raw.fetchval(f"SELECT avg(pg_column_size(embedding)) FROM public.{t}")
                 for t in ("full", "half")}
        assert sizes == {"full": 8 + 4 * 64, "half": 8 + 2 * 64}
        back = await half.read("r3")
        assert back is not None
        original = data[3].fields["embedding"].value
        np.testing.assert_array_equal(back.fields["embedding"].value, original.astype(np.float16).astype(np.float32))
        hits = await half.vector_search(original, k=1)
        assert hits[0].id == "r3"


async def test_one_row_per_record_so_text_and_vectors_change_together(
    embedded_server: EmbeddedServer, fresh_database: str, raw_connect: RawConnect, records: Records
) -> None:
    url = url_of(embedded_server, fresh_database, vector_type="halfvec")
    raw = await raw_connect(url)
    before = records(100, 16)
    async with vk.connect(url) as store:
        await store.bulk_create(before)
        assert await raw.fetchval("SELECT count(*) FROM public.docs") == 100
        assert list(await columns(raw)) == ["id", "_body", "_doc", "embedding"]
        changed = [vk.Record({"text": f"new text {i}", "category": "new",
                              "embedding": vk.VectorField(-r.fields["embedding"].value, source_field="text")},
                             id=r.id) for i, r in enumerate(before)]
        broken = [*changed[:-1], vk.Record({"text": "too big", "embedding": vk.VectorField(np.full(16, 1e6))},
                                           id=changed[-1].id)]
        with pytest.raises(vk.VectorValueError, match="half precision"):
            await store.bulk_update(broken)  # the last row cannot be stored: the whole batch is rolled back
        for stored, old in zip(await store.bulk_read([r.key for r in before]), before, strict=True):
            assert stored is not None
            assert stored["text"] == old["text"]
            np.testing.assert_allclose(stored.fields["embedding"].value, old.fields["embedding"].value, rtol=1e-3)
        await store.bulk_update(changed)
        for stored, new in zip(await store.bulk_read([r.key for r in changed]), changed, strict=True):
            assert stored is not None
            assert stored["text"] == new["text"]
            np.testing.assert_allclose(stored.fields["embedding"].value, new.fields["embedding"].value, rtol=1e-3)
        assert await raw.fetchval("SELECT count(*) FROM public.docs") == 100

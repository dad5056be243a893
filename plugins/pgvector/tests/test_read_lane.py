"""The read lane: a connection of the store's own for reads. One read after another uses that one connection;
reads at once spill over to the pool; a read that is cancelled, or whose connection the server ends, costs the
lane its connection and nothing else; a pool of one connection has no lane and still serves reads and writes
at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing import with_options

pytestmark = pytest.mark.asyncio
Records = Callable[..., list[vk.Record]]
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]


def named(url: str, **options: object) -> tuple[str, str]:
    """``url`` under an application_name of its own (to find its connections in pg_stat_activity)."""
    application = f"vk-lane-{uuid.uuid4().hex[:8]}"
    return str(with_options(url, application_name=application, **options)), application


async def backends(conn: asyncpg.Connection, application: str) -> list[int]:
    return [row[0] for row in await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", application)]


async def test_reads_one_after_another_use_one_connection_and_reads_at_once_use_more(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    url, application = named(table_url, min_pool_size=1, max_pool_size=6)
    admin = await raw_connect(table_url)
    data = records(300, 16)
    queries = np.random.default_rng(4).standard_normal((24, 16)).astype(np.float32)
    async with vk.connect(url) as store:
        await store.bulk_create(data)
        expected = [await store.vector_search(q, k=5) for q in queries]
        for q in queries:  # one after another: the lane, beside the pool's one connection (min_pool_size=1)
            await store.vector_search(q, k=5, include_vectors=False)
            assert await store.read("r3") == data[3]
        assert len(await backends(admin, application)) == 2
        together = await asyncio.gather(*(store.vector_search(q, k=5) for q in queries))
        assert [[(r.id, r.score) for r in found] for found in together] == [
            [(r.id, r.score) for r in found] for found in expected]
        assert 1 < len(await backends(admin, application)) <= 6


async def test_a_cancelled_read_costs_the_lane_its_connection_only(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    url, _ = named(table_url, min_pool_size=1, max_pool_size=3)
    data = records(50, 8)
    async with vk.connect(url) as store:
        await store.bulk_create(data)
        blocker = await raw_connect(table_url)
        table = parse_table(url)
        async with blocker.transaction():
            await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # every read waits
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(store.vector_search(data[0]["embedding"], k=3), timeout=0.5)
        found = await store.vector_search(data[0]["embedding"], k=3)  # the lock is gone: a new lane connection
        assert found[0].id == "r0"
        assert await store.count() == 50
        assert await store.read("r1") == data[1]


@pytest.mark.parametrize("pool_size", [1, 3], ids=["pool-only", "lane"])
async def test_a_read_whose_connection_the_server_ended_is_answered_on_another(
    table_url: str, records: Records, raw_connect: RawConnect, pool_size: int
) -> None:
    """The server ends an idle connection (pg_terminate_backend, a restart); asyncpg may read the error before
    the end of the stream and be left mid-error: the read is answered on a new connection all the same."""
    url, application = named(table_url, min_pool_size=1, max_pool_size=pool_size)
    admin = await raw_connect(table_url)
    data = records(40, 8)
    async with vk.connect(url) as store:
        await store.bulk_create(data)
        await store.vector_search(data[5]["embedding"], k=2)
        for pid in await backends(admin, application):
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(100):  # wait until the server has ended them
            if not await backends(admin, application):
                break
            await asyncio.sleep(0.02)
        found = await store.vector_search(data[5]["embedding"], k=2)
        assert found[0].id == "r5"
        assert await store.read("r6") == data[6]


async def test_a_pool_of_one_connection_has_no_lane_and_serves_reads_and_writes_at_once(
    table_url: str, records: Records
) -> None:
    data = records(200, 8)
    async with vk.connect(with_options(table_url, min_pool_size=1, max_pool_size=1)) as store:
        await store.bulk_create(data[:100])
        query = data[150]["embedding"]
        outcome = await asyncio.wait_for(asyncio.gather(
            store.bulk_create(data[100:]), *(store.vector_search(query, k=3) for _ in range(5)),
            store.count(), store.read("r1")), timeout=60)
        assert outcome[-1] == data[1]
        assert await store.count() == 200
        assert (await store.vector_search(query, k=1))[0].id == "r150"


def parse_table(url: str) -> str:
    params = parse_config(url).params
    return f'"{params.get("schema", "public")}"."{params["table"]}"'


async def test_closing_the_store_while_a_read_waits_on_the_lane(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    """close() does not wait for a read in flight on the lane: the read ends as it would have (here, with its
    result once the server lets it through), then the lane's connection closes."""
    url, application = named(table_url, min_pool_size=1, max_pool_size=3)
    admin = await raw_connect(table_url)
    data = records(30, 8)
    store = await vk.connect(url)
    await store.bulk_create(data)
    blocker = await raw_connect(table_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute(f"LOCK TABLE {parse_table(url)} IN ACCESS EXCLUSIVE MODE")
    reading = asyncio.ensure_future(store.vector_search(data[3]["embedding"], k=2))
    await asyncio.sleep(0.3)
    await asyncio.wait_for(store.close(), timeout=15)
    assert not reading.done()
    await transaction.rollback()
    found = await asyncio.wait_for(reading, timeout=15)
    assert found[0].id == "r3"
    for _ in range(100):
        if not await backends(admin, application):
            break
        await asyncio.sleep(0.05)
    assert await backends(admin, application) == []

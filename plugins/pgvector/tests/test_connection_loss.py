"""Losing the server in the middle of a bulk write: the batch fails as a whole with a typed error, nothing
of it is written, and the same store object works again once the server is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
import vectorknobs as vk
from vectorknobs_pgvector import ConnectionLostError, EmbeddedServer

pytestmark = pytest.mark.asyncio
Records = Callable[..., list[vk.Record]]


async def wait_for(conn: asyncpg.Connection, sql: str, *args: object) -> None:
    for _ in range(400):
        if await conn.fetchval(sql, *args):
            return
        await asyncio.sleep(0.025)
    pytest.fail(f"timed out waiting for: {sql}")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_batch_cut_off_by_a_server_stop_fails_whole_and_the_pool_recovers(
    private_server: EmbeddedServer, records: Records, mode: str
) -> None:
    await asyncio.to_thread(private_server.start)
    url = private_server.url() + "&table=docs&min_pool_size=2&max_pool_size=4&application_name=vk-loss"
    store = await vk.connect(url)
    try:
        await store.bulk_create(records(100, 32))
        batch = records(5000, 32, start=1000, seed=1) + [
            vk.Record({"text": "replaced"}, id=f"r{i}") for i in range(50)]  # new records and replacements
        blocker = await asyncpg.connect(**private_server.connect_kwargs(), database="postgres")  # type: ignore[arg-type]
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("LOCK TABLE public.docs IN SHARE MODE")  # reads go on; the upsert's INSERT waits
        writing = asyncio.ensure_future(store.bulk_upsert(batch))
        # the batch is copied into the staging table and its INSERT ... SELECT waits for the lock: mid-batch
        await wait_for(blocker, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                "WHERE a.application_name = 'vk-loss' AND NOT l.granted "
                                "AND l.relation = 'public.docs'::regclass AND l.mode = 'RowExclusiveLock'")
        await asyncio.to_thread(private_server.stop, mode)
        with pytest.raises(ConnectionLostError, match="nothing of this batch was written") as caught:
            await writing
        assert isinstance(caught.value, vk.StoreError)
        assert "5050 record(s)" in str(caught.value)
        with pytest.raises(ConnectionLostError, match="reconnects by itself once the server answers"):
            await store.count()  # while it is down, every call says so

        await asyncio.to_thread(private_server.start)
        assert await store.count() == 100  # the same store object: the pool reconnected
        assert (await store.read("r7")) == records(100, 32)[7]  # nothing of the batch, not even replacements
        await store.bulk_upsert(batch)
        assert await store.count() == 5100
        assert (await store.read("r7")) == batch[-43]
    finally:
        await store.close()

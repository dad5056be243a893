"""Configuration: the URL and the dict form, pool sizes, schema, statement timeout, bad values."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing import with_options
from vectorknobs_pgvector import PgvectorStore

pytestmark = pytest.mark.asyncio
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]
Records = Callable[..., list[vk.Record]]


def tag() -> str:
    return f"vk-{uuid.uuid4().hex[:10]}"


async def backends(conn: asyncpg.Connection, application_name: str) -> int:
    """Connections the server holds for ``application_name``."""
    count: int = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                     application_name)
    return count


def as_dict(url: str, **options: Any) -> dict[str, Any]:
    """The dict form of a ``pgvector://`` URL: location keys, then the options."""
    config = parse_config(url)
    params = dict(config.params)
    location = {"host": params.pop("host", None) or config.host, "port": config.port, "user": config.user,
                "password": config.password}
    return {"backend": "pgvector", **{k: v for k, v in location.items() if v is not None}, **params, **options}


async def test_the_url_sets_pool_sizes_and_application_name(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    name = tag()
    watcher = await raw_connect(table_url)
    async with vk.connect(with_options(table_url, min_pool_size=3, max_pool_size=4, application_name=name)) as store:
        assert await backends(watcher, name) == 3  # min_pool_size connections, opened at connect
        await store.bulk_create(records(4, 4))
        await asyncio.gather(*(store.read(f"r{i % 4}") for i in range(40)))
        assert await backends(watcher, name) == 4  # grown to max_pool_size under load, not beyond
    assert await backends(watcher, name) == 0  # close() released them all


async def test_max_pool_size_bounds_concurrent_connections(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    name = tag()
    watcher = await raw_connect(table_url)
    url = with_options(table_url, min_pool_size=0, max_pool_size=2, application_name=name)
    async with vk.connect(url) as store:
        await store.bulk_create(records(3, 4))
        seen: list[int] = []
        searching = True

        async def watch() -> None:
            while searching:
                seen.append(await backends(watcher, name))

        async def search() -> None:
            nonlocal searching
            await asyncio.gather(*(store.vector_search([1.0, 0.0, 0.0, 0.0], k=2) for _ in range(200)))
            searching = False

        await asyncio.gather(watch(), search())
        assert max(seen) == 2


async def test_the_dict_form_is_the_same_store(pg_url: str, records: Records, raw_connect: RawConnect) -> None:
    table = f"t_{uuid.uuid4().hex[:12]}"
    schema = f"vkdict_{uuid.uuid4().hex[:8]}"
    name = tag()
    watcher = await raw_connect(pg_url)
    config = as_dict(pg_url, table=table, schema=schema, min_pool_size=2, max_pool_size=3,
                     statement_timeout="5s", application_name=name)
    try:
        async with vk.connect(config) as store:
            assert isinstance(store, PgvectorStore)
            assert (store.settings["min_pool_size"], store.settings["max_pool_size"]) == (2, 3)
            await store.bulk_create(records(5, 4))
            assert await backends(watcher, name) == 2
        # the table is where the dict said, in a schema created for it
        assert await watcher.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                                      schema, table) == 1
        assert await watcher.fetchval(f'SELECT count(*) FROM "{schema}"."{table}"') == 5
    finally:
        await watcher.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_postgres_schemes_are_aliases(table_url: str) -> None:
    for scheme in ("postgres", "postgresql"):
        url = scheme + table_url.removeprefix("pgvector")
        async with vk.connect(url) as store:
            assert isinstance(store, PgvectorStore)
            assert await store.count() == 0


async def test_statement_timeout_cancels_a_blocked_statement(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    async with vk.connect(table_url) as setup:
        await setup.bulk_create(records(3, 4))
    params = parse_config(table_url).params
    locker = await raw_connect(table_url)
    async with vk.connect(with_options(table_url, statement_timeout="300ms")) as store:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute(f'LOCK TABLE "{params["schema"]}"."{params["table"]}" IN ACCESS EXCLUSIVE MODE')
        started = time.monotonic()
        with pytest.raises(vk.StoreError, match="statement_timeout"):
            await store.count()
        assert time.monotonic() - started < 5
        await transaction.rollback()
        assert await store.count() == 3  # the same store works once the lock is gone


async def test_without_statement_timeout_a_blocked_statement_waits(
    table_url: str, records: Records, raw_connect: RawConnect
) -> None:
    async with vk.connect(table_url) as store:
        assert store.settings["statement_timeout"] is None
        await store.bulk_create(records(3, 4))
        params = parse_config(table_url).params
        locker = await raw_connect(table_url)
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute(f'LOCK TABLE "{params["schema"]}"."{params["table"]}" IN ACCESS EXCLUSIVE MODE')
        counting = asyncio.ensure_future(store.count())
        await asyncio.sleep(0.6)  # twice the timeout above: no limit, so still waiting
        assert not counting.done()
        await transaction.rollback()
        assert await counting == 3


@pytest.mark.parametrize(("options", "message"), [
    ({"table": 'docs"; DROP TABLE x; --'}, "table"),
    ({"schema": "public.x"}, "schema"),
    ({"table": "9docs"}, "table"),
    ({"table": "vectorknobs_fields"}, "reserved"),
    ({"statement_timeout": "forever"}, "statement_timeout"),
    ({"statement_timeout": "1; DROP TABLE x"}, "statement_timeout"),
    ({"maintenance_work_mem": "1TB'"}, "maintenance_work_mem"),
    ({"min_pool_size": "-1"}, "min_pool_size"),
    ({"max_pool_size": "0"}, "max_pool_size"),
    ({"min_pool_size": "5", "max_pool_size": "2"}, "min_pool_size"),
    ({"vector_type": "float8"}, "vector_type"),
    ({"index": "btree"}, "index"),
    ({"connect_timeout": "0"}, "connect_timeout"),
    ({"tabel": "docs"}, "unknown option"),
])
async def test_bad_options_are_config_errors(pg_url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(vk.ConfigError, match=message):
        await vk.connect(with_options(pg_url, **options))


async def test_embedded_needs_a_data_directory() -> None:
    for url in ("pgvector+embedded://", "pgvector+embedded://somehost/data"):
        with pytest.raises(vk.ConfigError, match="absolute data directory"):
            await vk.connect(url)


async def test_an_unreachable_server_is_a_typed_error() -> None:
    url = "pgvector://nobody@/postgres?host=/tmp/vk-no-such-socket-dir&connect_timeout=2"
    with pytest.raises(vk.StoreError, match="connect failed"):
        await vk.connect(url)

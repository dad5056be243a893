"""Fixtures: a PostgreSQL + pgvector server for the whole session, and a fresh table per test.

The server is the embedded one (``pgvector+embedded``'s own machinery, in a temporary directory under
/tmp), or the one ``VECTORKNOBS_PG_URL`` names (``pgvector://user:pass@host:5432/db``). Tests that must
stop, restart or administer a server always use embedded ones. Nothing here skips: a server that cannot be
reached fails the tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import pytest_asyncio
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing import with_options
from vectorknobs_pgvector.embedded import EmbeddedServer, acquire_server, release_server

PG_URL_ENV = "VECTORKNOBS_PG_URL"


def scratch_dir(prefix: str) -> Path:
    """A new directory under /tmp that the server's system user may enter (mkdtemp makes it private)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedServer]:
    """An embedded server for the session (started lazily: only tests that need it pay for it)."""
    root = scratch_dir("vkpg-session-")
    server = acquire_server(root / "pg")
    yield server
    release_server(server)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> str:
    """``pgvector://`` URL of the server the suite runs against, with a schema of its own."""
    base = os.environ.get(PG_URL_ENV) or request.getfixturevalue("embedded_server").url()
    return str(with_options(base, schema=f"vktest_{uuid.uuid4().hex[:10]}"))


RecordFactory = Callable[..., list[vk.Record]]
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]


def connect_kwargs(url: str) -> dict[str, object]:
    """asyncpg's connect arguments for the server and database a ``pgvector://`` URL names."""
    config = parse_config(url)
    kwargs = {
        "host": config.params.get("host") or config.host, "port": config.port, "user": config.user,
        "password": config.password,
        "database": config.params.get("database") or (config.path or "").strip("/") or "postgres",
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def make_records(n: int, dims: int, *, seed: int = 0, start: int = 0, categories: int = 10,
                 field: str = "embedding") -> list[vk.Record]:
    """``n`` records ``r<i>`` with text, a category ``c<i % categories>``, a rank and a random vector."""
    vectors = np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)
    return [
        vk.Record({"text": f"text {i}", "category": f"c{i % categories}", "rank": i,
                   field: vk.VectorField(vectors[i - start], source_field="text")}, id=f"r{i}")
        for i in range(start, start + n)
    ]


@pytest.fixture(scope="session")
def records() -> RecordFactory:
    """``records(n, dims, seed=0, start=0, categories=10, field="embedding")``: test records."""
    return make_records


@pytest_asyncio.fixture
async def raw_connect() -> AsyncIterator[RawConnect]:
    """``await raw_connect(url)``: a plain asyncpg connection to the database of a store URL (closed after)."""
    opened: list[asyncpg.Connection] = []

    async def connect(url: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(**connect_kwargs(url))  # type: ignore[arg-type]
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        if not conn.is_closed():
            await conn.close()


def fresh_table(url: str) -> str:
    return str(with_options(url, table=f"t_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def table_url(pg_url: str) -> str:
    """A config for a new, empty table."""
    return fresh_table(pg_url)


@pytest_asyncio.fixture
async def superuser(embedded_server: EmbeddedServer) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the session's embedded server."""
    conn = await asyncpg.connect(**embedded_server.connect_kwargs(), database="postgres")  # type: ignore[arg-type]
    yield conn
    await conn.close()


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, to stop and restart at will."""
    root = scratch_dir("vkpg-private-")
    server = EmbeddedServer(root / "pg")
    yield server
    server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def fresh_database(superuser: asyncpg.Connection) -> AsyncIterator[str]:
    """A new database on the session's embedded server, without the vector extension (dropped after)."""
    name = f"vkdb_{uuid.uuid4().hex[:10]}"
    await superuser.execute(f'CREATE DATABASE "{name}"')
    yield name
    await superuser.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

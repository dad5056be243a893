"""Fixtures: a PostgreSQL + pgvector server for the whole session, and a fresh table per test.

The server is the embedded one (``pgvector+embedded``'s own machinery, in a temporary directory under
/tmp), or the one ``VECTORKNOBS_PG_URL`` names (``pgvector://user:pass@host:5432/db``). Tests that must
stop, restart or administer a server always use embedded ones. Nothing here skips: a server that cannot be
reached fails the tests.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
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
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``pgvector://`` URL of the server the suite runs against, with a schema of its own (dropped after)."""
    base = os.environ.get(PG_URL_ENV) or request.getfixturevalue("embedded_server").url()
    schema = f"vktest_{uuid.uuid4().hex[:10]}"
    yield str(with_options(base, schema=schema))
    asyncio.run(_drop_schema(base, schema))


async def _drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(**connect_kwargs(url))  # type: ignore[arg-type]
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


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


@pytest.fixture(scope="session")
def cluster_template() -> Iterator[Path]:
    """A stopped, freshly created cluster that ``server_root`` copies (cheaper than initdb per test)."""
    root = scratch_dir("vkpg-template-")
    server = EmbeddedServer(root / "pg")
    server.start()
    server.stop()
    yield server.data
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_root(cluster_template: Path) -> Iterator[Path]:
    """The directory of an embedded server of this test's own (``pgvector+embedded://<it>``), holding a copy
    of the template cluster; stopped and removed afterwards."""
    root = scratch_dir("vkpg-own-") / "pg"
    root.mkdir(mode=0o755)
    subprocess.run(["cp", "-a", str(cluster_template), str(root / "data")], check=True)
    yield root
    EmbeddedServer(root).stop("immediate")
    shutil.rmtree(root.parent, ignore_errors=True)


@pytest.fixture
def private_server(server_root: Path) -> EmbeddedServer:
    """An embedded server of this test's own, to stop and restart at will."""
    return EmbeddedServer(server_root)


@pytest_asyncio.fixture
async def fresh_database(superuser: asyncpg.Connection) -> AsyncIterator[str]:
    """A new database on the session's embedded server, without the vector extension (dropped after)."""
    name = f"vkdb_{uuid.uuid4().hex[:10]}"
    await superuser.execute(f'CREATE DATABASE "{name}"')
    yield name
    await superuser.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_LOG_PREFIX = "%m [%p] %a "  # with the application name, to tell apart the connections of one test
_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] (\S*) ([A-Z]+):  (.*)$")


class StatementLog:
    """What the session's embedded server logs for the connections of one ``application_name``.

    Connections of its role log every statement (``log_statement = all``) with bound parameters; each entry
    is the statement text, then `` | `` and its parameters when it has some.
    """

    def __init__(self, server: EmbeddedServer, role: str) -> None:
        self.server = server
        self.role = role

    def url(self, **options: str) -> str:
        """A config as this role, in a fresh table, under a new ``application_name`` (see ``entries``)."""
        base = self.server.url().replace("pgvector://postgres@", f"pgvector://{self.role}@")
        return str(with_options(fresh_table(base), schema=f"vklog_{uuid.uuid4().hex[:8]}",
                                application_name=f"vklog-{uuid.uuid4().hex[:8]}", **options))

    def entries(self, url: str) -> list[str]:
        application = parse_config(url).params["application_name"]
        found: list[str] = []
        current: str | None = None  # the application of the entry being continued
        for line in self.server.log.read_text(errors="replace").splitlines():
            match = _LOG_ENTRY.match(line)
            if match is None:
                if current == application and found:
                    found[-1] += "\n" + line  # a statement spanning lines
                continue
            current, level, text = match.groups()
            if current != application:
                continue
            if level == "LOG" and (text.startswith("statement: ") or text.startswith("execute ")):
                found.append(text.split(": ", 1)[1])
            elif level == "DETAIL" and text.startswith("Parameters: ") and found:
                found[-1] += " | " + text.removeprefix("Parameters: ")
        return found


@pytest_asyncio.fixture
async def statement_log(embedded_server: EmbeddedServer, superuser: asyncpg.Connection) -> StatementLog:
    """A superuser role whose statements the session's embedded server logs (see ``StatementLog``)."""
    role = f"vklog_{uuid.uuid4().hex[:8]}"
    if await superuser.fetchval("SELECT current_setting('log_line_prefix')") != _LOG_PREFIX:
        await superuser.execute(f"ALTER SYSTEM SET log_line_prefix = '{_LOG_PREFIX}'")
        await superuser.execute("SELECT pg_reload_conf()")
        for _ in range(100):  # the reload reaches this session at its next statement, or soon after
            if await superuser.fetchval("SELECT current_setting('log_line_prefix')") == _LOG_PREFIX:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the embedded server did not take the new log_line_prefix")
    await superuser.execute(f'CREATE ROLE "{role}" SUPERUSER LOGIN')
    await superuser.execute(f"ALTER ROLE \"{role}\" SET log_statement = 'all'")
    return StatementLog(embedded_server, role)

"""Fixtures for the sync tests: each test runs on the memory store and on faiss (a real engine, in process);
the migration crash tests also use a real PostgreSQL + pgvector server (the embedded one, or
``VECTORKNOBS_PG_URL``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import vectorknobs as vk
from vectorknobs.plugins import reset_registry
from vectorknobs.testing import with_options

PG_URL_ENV = "VECTORKNOBS_PG_URL"


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Every test sees the installed plugins, and no change tracker left over from another test."""
    reset_registry()
    yield
    reset_registry()


@pytest.fixture(params=["memory", "faiss"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A config for a new, empty store of each kind."""
    return "memory://" if request.param == "memory" else f"faiss://{tmp_path / 'faiss'}"


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[vk.VectorStore]:
    async with vk.connect(store_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """A ``pgvector://`` URL of a real server, with a schema of this session's own."""
    given = os.environ.get(PG_URL_ENV)
    if given:
        yield str(with_options(given, schema=f"vksync_{uuid.uuid4().hex[:10]}"))
        return
    from vectorknobs_pgvector.embedded import acquire_server, release_server

    root = Path(tempfile.mkdtemp(prefix="vksync-pg-", dir="/tmp"))
    root.chmod(0o755)  # the server's own system user must reach it
    server = acquire_server(root / "pg")
    try:
        yield str(with_options(server.url(), schema=f"vksync_{uuid.uuid4().hex[:10]}"))
    finally:
        release_server(server)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_base_url: str) -> str:
    """A config for a new, empty table."""
    return str(with_options(pg_base_url, table=f"t_{uuid.uuid4().hex[:12]}"))


class Counting:
    """The hashing embedder, counting its calls and the texts it embedded (a real embedder, instrumented)."""

    def __init__(self, dimensions: int = 32, name: str = "hash", version: str = "1") -> None:
        self.inner = vk.HashingEmbedder(dimensions)
        self.name, self.version, self.dimensions = name, version, dimensions
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner(texts)

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


def docs(n: int, start: int = 0) -> list[vk.Record]:
    return [vk.Record({"title": f"title {i}", "body": f"body text number {i}", "n": i}, id=f"d{i:05d}")
            for i in range(start, start + n)]


async def all_records(store: vk.VectorStore) -> dict[str, vk.Record]:
    return {r.key: r for batch in [b async for b in store.stream(None, 500)] for r in batch}


class Kit:
    """Helpers for the sync tests (a fixture: test modules do not import each other)."""

    Counting = Counting
    docs = staticmethod(docs)
    all_records = staticmethod(all_records)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit

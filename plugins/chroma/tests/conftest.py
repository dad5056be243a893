"""Fixtures: a ``chroma run`` server (the CLI of the installed chromadb) on loopback for the session.

``VECTORKNOBS_CHROMA_URL`` (``chroma+http://host:port``) names a running server to use instead. A server
that does not start fails the tests; nothing here skips. Puts this directory on sys.path so the test
modules can import ``chroma_helpers`` under any pytest import mode (the repository root uses importlib).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chroma_helpers import SERVER_URL_VAR, ChromaServer, collection_url


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``chroma+http://127.0.0.1:<port>`` of the session's server."""
    given = os.environ.get(SERVER_URL_VAR)
    if given:
        yield given.rstrip("/")
        return
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def http_config(chroma_url: str) -> str:
    return collection_url(chroma_url)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A server of this test's own, to stop and restart at will (not started yet)."""
    server = ChromaServer(tmp_path / "server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["embedded", "http"])
def any_config(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store in each mode: embedded in a new directory, or a new collection on the session's server."""
    if request.param == "embedded":
        return f"chroma://{tmp_path}/db"
    return collection_url(request.getfixturevalue("chroma_url"))

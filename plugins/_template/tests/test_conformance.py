"""The vectorknobs conformance suite against ``NAME://`` on ENGINE (see README: Engine used in tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from vectorknobs.testing import StoreConformance

#: a server to test against instead of starting one
SERVER_URL_VAR = "VECTORKNOBS_NAME_URL".upper()


@pytest.fixture(scope="session")
def engine() -> Iterator[str]:
    """Start ENGINE once for the session (or use the server SERVER_URL_VAR names); yield its address.

    A test that cannot reach its engine fails loudly; it never skips.
    """
    url = os.environ.get(SERVER_URL_VAR)
    if url:
        yield url
        return
    raise NotImplementedError("TODO: start ENGINE on loopback, yield 'host:port', stop it in a finally")


class TestCLASSNAMEStore(StoreConformance):
    @pytest.fixture
    def store_config(self, engine: str) -> str:
        # a fresh, empty collection per test; connecting again with this config reaches the same data
        return f"NAME://{engine}/?collection=t{uuid.uuid4().hex}"

"""The core conformance suite against Chroma, embedded (``chroma://``) and client/server (``chroma+http://``,
a ``chroma run`` server started for the session: see conftest.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from chroma_helpers import collection_url
from vectorknobs.testing import ConfigLike, SharedSchemaTests, StoreConformance, with_options


class TestChromaEmbedded(StoreConformance, SharedSchemaTests):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> ConfigLike:
        return f"chroma://{tmp_path}/chroma"

    def fresh_config(self, config: ConfigLike, label: str) -> ConfigLike:
        """A new collection in the same directory per differential example (one Chroma client, not 25)."""
        return with_options(config, collection=f"x{uuid.uuid4().hex[:12]}")


class TestChromaHttp(StoreConformance, SharedSchemaTests):
    @pytest.fixture
    def store_config(self, http_config: str) -> ConfigLike:
        return http_config

    def fresh_config(self, config: ConfigLike, label: str) -> ConfigLike:
        assert isinstance(config, str)
        return collection_url(config.rsplit("/", 1)[0])

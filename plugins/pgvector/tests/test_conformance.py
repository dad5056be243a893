"""The core conformance suite, run against PostgreSQL + pgvector (embedded, or ``VECTORKNOBS_PG_URL``)."""

from __future__ import annotations

import uuid

import pytest
from vectorknobs.testing import ConfigLike, SharedSchemaTests, StoreConformance, with_options


class TestPgvectorConformance(StoreConformance, SharedSchemaTests):
    @pytest.fixture
    def store_config(self, table_url: str) -> ConfigLike:
        return table_url

    def fresh_config(self, config: ConfigLike, label: str) -> ConfigLike:
        """A new table per differential example (the suite would otherwise drop and reuse one)."""
        return with_options(config, table=f"t_{uuid.uuid4().hex[:12]}")

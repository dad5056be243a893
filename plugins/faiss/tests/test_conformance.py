"""The core conformance suite, run against the faiss store."""

from __future__ import annotations

from pathlib import Path

import pytest
from vectorknobs.testing import ConfigLike, StoreConformance


class TestFaissConformance(StoreConformance):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> ConfigLike:
        return f"faiss:///{tmp_path}/store"

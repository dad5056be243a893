"""The whole vectorknobs conformance suite, run against ``jsondir://``: one fixture is all it takes."""

import pytest
from vectorknobs.testing import StoreConformance


class TestJsonDirStore(StoreConformance):
    @pytest.fixture
    def store_config(self, tmp_path):
        return f"jsondir://{tmp_path}/store"  # fresh empty store; connecting again reaches the same data

import uuid
import pytest
from vectorknobs.testing import ConfigLike, DifferentialTests, with_options

class TestBigDiff(DifferentialTests):
    differential_max_examples = 400
    @pytest.fixture
    def store_config(self, table_url: str) -> ConfigLike:
        return table_url

"""``StoreConformance``: every conformance mixin in one class, for a store plugin to subclass.

>>> class TestMyStore(StoreConformance):
...     @pytest.fixture
...     def store_config(self, tmp_path):
...         return f"mystore://{tmp_path}/store"
"""

from __future__ import annotations

from vectorknobs.testing.bad_input import BadInputTests
from vectorknobs.testing.batches import RecordBatchTests
from vectorknobs.testing.capability import CapabilityTests
from vectorknobs.testing.concurrency import ConcurrencyTests
from vectorknobs.testing.crud import CrudTests
from vectorknobs.testing.differential import DifferentialTests
from vectorknobs.testing.filtering import FilterTests
from vectorknobs.testing.persistence import PersistenceTests
from vectorknobs.testing.vectors import VectorSearchTests


class StoreConformance(
    CrudTests,
    RecordBatchTests,
    FilterTests,
    VectorSearchTests,
    PersistenceTests,
    ConcurrencyTests,
    BadInputTests,
    CapabilityTests,
    DifferentialTests,
):
    """The whole conformance suite. Subclass it and define one fixture, ``store_config``: the config (URL
    string or dict) of a fresh, empty store; connecting again to the same config must reach the same data.

    Use the mixins one by one to adopt the suite step by step; a capability the store does not declare is
    checked to raise ``CapabilityError`` instead of being skipped.
    """

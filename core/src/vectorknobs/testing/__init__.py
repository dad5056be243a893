"""The conformance suite every vectorknobs store passes: pytest test classes to subclass with one fixture.

.. code-block:: python

    import pytest
    from vectorknobs.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_config(self, tmp_path):
            return f"mystore://{tmp_path}/store"

The mixins (``CrudTests``, ``FilterTests``, ``VectorSearchTests``, ``PersistenceTests``, ``ConcurrencyTests``,
``BadInputTests``, ``CapabilityTests``, ``DifferentialTests``, ``RecordBatchTests``) can also be used one by
one. ``SharedSchemaTests`` (two clients on one store's data) is for stores that declare ``shared_schema``.
Needs the ``testing`` extra: ``pip install 'vectorknobs[testing]'`` (pytest, pytest-asyncio, hypothesis).
"""

import pytest

# Rewrite the asserts of the suite's modules so failures show the compared values.
pytest.register_assert_rewrite(
    *(f"vectorknobs.testing.{name}" for name in (
        "_support", "bad_input", "batches", "capability", "concurrency", "conformance", "crud", "differential",
        "filtering", "persistence", "readme", "shared", "vectors",
    ))
)

from vectorknobs.testing._support import (  # noqa: E402 - after the rewrite hook on purpose
    ConfigLike,
    ConformanceBase,
    assert_ranked_like,
    fresh_config,
    oracle_scores,
    with_options,
)
from vectorknobs.testing.bad_input import BadInputTests  # noqa: E402
from vectorknobs.testing.batches import RecordBatchTests  # noqa: E402
from vectorknobs.testing.capability import CapabilityTests  # noqa: E402
from vectorknobs.testing.concurrency import ConcurrencyTests  # noqa: E402
from vectorknobs.testing.conformance import StoreConformance  # noqa: E402
from vectorknobs.testing.crud import CrudTests  # noqa: E402
from vectorknobs.testing.differential import DifferentialTests  # noqa: E402
from vectorknobs.testing.filtering import FilterTests  # noqa: E402
from vectorknobs.testing.persistence import PersistenceTests  # noqa: E402
from vectorknobs.testing.readme import assert_readme_documents_options  # noqa: E402
from vectorknobs.testing.shared import SharedSchemaTests  # noqa: E402
from vectorknobs.testing.vectors import VectorSearchTests  # noqa: E402

__all__ = [
    "BadInputTests",
    "CapabilityTests",
    "ConcurrencyTests",
    "ConfigLike",
    "ConformanceBase",
    "CrudTests",
    "DifferentialTests",
    "FilterTests",
    "PersistenceTests",
    "RecordBatchTests",
    "SharedSchemaTests",
    "StoreConformance",
    "VectorSearchTests",
    "assert_ranked_like",
    "assert_readme_documents_options",
    "fresh_config",
    "oracle_scores",
    "with_options",
]

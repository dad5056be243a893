"""The conformance suite run against the built-in memory store (saved to a directory, so persistence counts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vectorknobs.testing import ConfigLike, CrudTests, PersistenceTests, StoreConformance, fresh_config, with_options


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> ConfigLike:
        return f"memory://{tmp_path / 'store'}"


class TestMemoryStoreDictConfig(CrudTests, PersistenceTests):
    """The same store given as a dict config, through two of the mixins used on their own."""

    @pytest.fixture
    def store_config(self, tmp_path: Path) -> ConfigLike:
        return {"backend": "memory", "path": str(tmp_path / "store")}


@pytest.mark.parametrize(
    ("config", "options", "expected"),
    [
        ("memory://", {"metric": "euclidean"}, "memory://?metric=euclidean"),
        ("memory:///tmp/s", {"metric": "dot_product"}, "memory:///tmp/s?metric=dot_product"),
        ("memory:///tmp/s?metric=cosine&autosave=true", {"metric": "euclidean", "autosave": False},
         "memory:///tmp/s?metric=euclidean&autosave=false"),
        ("memory:///tmp/a b", {"path_note": "x&y=z"}, "memory:///tmp/a b?path_note=x%26y%3Dz"),
        ({"backend": "memory"}, {"metric": "euclidean", "max_records": 5},
         {"backend": "memory", "metric": "euclidean", "max_records": "5"}),
        ("memory://", {}, "memory://"),
    ],
)
def test_with_options(config: ConfigLike, options: dict[str, object], expected: ConfigLike) -> None:
    """with_options() adds or replaces options in a URL's query string or a dict, leaving the rest alone."""
    assert with_options(config, **options) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("memory:///tmp/s", "memory:///tmp/s/ex1"),
        ("memory:///tmp/s/?metric=cosine", "memory:///tmp/s/ex1?metric=cosine"),
        ("memory://", "memory://"),
        ("pgvector://u:p@host:5432/db?table=docs", "pgvector://u:p@host:5432/db?table=docs"),
        ({"backend": "memory", "path": "/tmp/s"}, {"backend": "memory", "path": "/tmp/s/ex1"}),
        ({"backend": "memory"}, {"backend": "memory"}),
    ],
)
def test_fresh_config(config: ConfigLike, expected: ConfigLike) -> None:
    """fresh_config() puts a path-based store in a sub-directory and leaves other configs unchanged."""
    assert fresh_config(config, "ex1") == expected

"""Configuration: URL and dict forms, every option reaching Chroma, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import pytest
import vectorknobs as vk
from chroma_helpers import collection_url
from chromadb.config import Settings
from vectorknobs.config import parse_config
from vectorknobs.testing import assert_readme_documents_options, with_options
from vectorknobs_chroma import ChromaStore
from vectorknobs_chroma.options import OPTIONS

README = Path(__file__).resolve().parents[1] / "README.md"

HNSW = {"ef_construction": 64, "ef_search": 77, "max_neighbors": 12, "sync_threshold": 500, "resize_factor": 1.5}


def test_the_readme_documents_every_option_with_its_default() -> None:
    assert_readme_documents_options(README, OPTIONS)


def test_url_and_dict_are_the_same_configuration(tmp_path: Path) -> None:
    url = parse_config(
        f"chroma://{tmp_path}?collection=docs&ef_search=77&ssl=true&timeout=2.5&exact_limit=10&metric=l2"
    )
    mapping = parse_config(
        {
            "backend": "chroma",
            "path": str(tmp_path),
            "collection": "docs",
            "ef_search": 77,
            "ssl": True,
            "timeout": 2.5,
            "exact_limit": 10,
            "metric": "euclidean",
        }
    )
    assert ChromaStore(url).settings == ChromaStore(mapping).settings
    store = ChromaStore(url)
    assert (store.base, store.settings["ef_search"], store.metric) == ("docs", 77, vk.DistanceMetric.EUCLIDEAN)


def test_http_collection_comes_from_the_url_path() -> None:
    store = ChromaStore(parse_config("chroma+http://db.example:9000/notes?timeout=3"))
    assert (store.http, store.base, store.settings["timeout"]) == (True, "notes", 3.0)
    assert ChromaStore(parse_config("chroma+http://db.example")).base == "vectorknobs"
    same = ChromaStore(parse_config("chroma+http://db.example/notes?collection=notes"))
    assert same.base == "notes"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("config", "match"),
    [
        ("chroma://relative/dir", "absolute directory"),
        ("chroma://", "absolute directory"),
        ({"backend": "chroma"}, "absolute directory"),
        ("chroma+http:///docs", "needs a server"),
        ("chroma+http://h:8000/a/b", "URL path names the collection"),
        ("chroma+http://h:8000/docs?collection=other", "once"),
        ("chroma:///tmp/x?collection=a.b", "no dots"),
        ("chroma:///tmp/x?collection=ab", "3 to 63"),
        ("chroma:///tmp/x?collection=-abc", "starting and ending"),
        ("chroma:///tmp/x?ef_search=0", "ef_search"),
        ("chroma:///tmp/x?max_neighbors=1", "max_neighbors"),
        ("chroma:///tmp/x?resize_factor=1", "resize_factor"),
        ("chroma:///tmp/x?timeout=0", "timeout"),
        ("chroma:///tmp/x?timeout=inf", "timeout"),
        ("chroma:///tmp/x?write_batch_size=0", "write_batch_size"),
        ("chroma:///tmp/x?exact_limit=-1", "exact_limit"),
        ("chroma:///tmp/x?ssl=maybe", "ssl"),
    ],
)
async def test_bad_configurations_say_what_to_fix(config: Any, match: str) -> None:
    with pytest.raises(vk.ConfigError, match=match):
        await vk.connect(config)


@pytest.mark.asyncio
async def test_hnsw_options_reach_the_chroma_collection(any_config: str) -> None:
    config = with_options(any_config, metric="euclidean", **HNSW)
    async with vk.connect(config) as store:
        await store.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0])}, id="a"))
        info = store.index_info()["embedding"]  # type: ignore[attr-defined]
    assert {key: info[key] for key in HNSW} == HNSW
    assert info["space"] == "l2"


@pytest.mark.asyncio
async def test_a_given_ef_search_updates_existing_collections(tmp_path: Path) -> None:
    config = f"chroma://{tmp_path}/db"
    async with vk.connect(config) as store:
        await store.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0])}, id="a"))
    async with vk.connect(f"{config}?ef_search=321") as store:
        assert store.index_info()["embedding"]["ef_search"] == 321  # type: ignore[attr-defined]
    async with vk.connect(config) as store:  # not given: the collection's value stays
        assert store.index_info()["embedding"]["ef_search"] == 321  # type: ignore[attr-defined]
    client = chromadb.PersistentClient(path=f"{tmp_path}/db", settings=Settings(anonymized_telemetry=False))
    try:
        assert client.get_collection("vectorknobs.embedding.vectors").configuration["hnsw"]["ef_search"] == 321
    finally:
        client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("space", ["dot_product", "euclidean"])
async def test_reopening_with_another_metric_names_the_right_one(any_config: str, space: str) -> None:
    async with vk.connect(with_options(any_config, metric="cosine")) as store:
        await store.create(vk.Record({"embedding": vk.VectorField([1.0, 2.0])}, id="a"))
    with pytest.raises(vk.ConfigError, match=r"metric 'cosine'.*\?metric=cosine"):
        await vk.connect(with_options(any_config, metric=space))
    async with vk.connect(with_options(any_config, metric="cosine")) as store:
        assert await store.count() == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("option", ["tenant", "database"])
async def test_a_missing_tenant_or_database_is_a_config_error(any_config: str, option: str) -> None:
    with pytest.raises(vk.ConfigError, match=f"{option} / database|tenant / {option}"):
        await vk.connect(with_options(any_config, **{option: "no_such_thing"}))


@pytest.mark.asyncio
async def test_stores_with_other_collections_share_a_directory_and_a_server(any_config: str) -> None:
    other = (
        with_options(any_config, collection="other-store")
        if any_config.startswith("chroma:")
        else collection_url(any_config.rsplit("/", 1)[0])
    )
    async with vk.connect(any_config) as first, vk.connect(other) as second:
        await first.create(vk.Record({"n": 1, "embedding": vk.VectorField([1.0, 0.0])}, id="a"))
        await second.create(vk.Record({"n": 2, "embedding": vk.VectorField([0.0, 1.0])}, id="a"))
        await first.drop()
        assert await first.count() == 0
        assert [r["n"] for r in await second.search()] == [2]

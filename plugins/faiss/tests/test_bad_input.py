"""Bad input and damaged directories: typed errors that say what to fix, or a rebuild of the derived
index from the records (the durable truth) with nothing lost."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import vectorknobs as vk
from faiss_helpers import clustered, records

pytestmark = pytest.mark.asyncio

URL = "faiss://{}?index=hnsw"


async def filled(path: Path, n: int = 300) -> list[list[tuple[str, float]]]:
    """A store of ``n`` records at ``path``, closed; the results of a few searches."""
    vectors = clustered(n, 16, seed=20)
    async with vk.connect(URL.format(path)) as store:
        await store.bulk_create(records(vectors))
        return await searches(store)


async def searches(store: vk.VectorStore) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in await store.vector_search(q, k=10)] for q in clustered(5, 16, seed=21)]


async def test_dimension_mismatch_with_the_stored_index(store_dir: Path) -> None:
    await filled(store_dir)
    async with vk.connect(URL.format(store_dir)) as store:  # known from the records, after reopening
        with pytest.raises(vk.DimensionMismatchError, match="16-dimensional"):
            await store.create(vk.Record({"embedding": vk.VectorField(np.ones(17))}))
        with pytest.raises(vk.DimensionMismatchError, match="16"):
            await store.vector_search(np.ones(15))
        assert await store.count() == 300


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
async def test_nan_and_inf_are_rejected_before_anything_is_written(store_dir: Path, bad: float) -> None:
    await filled(store_dir, 10)
    vector = np.ones(16)
    vector[3] = bad
    async with vk.connect(URL.format(store_dir)) as store:
        with pytest.raises(vk.VectorValueError, match="NaN or inf"):
            await store.bulk_create([vk.Record({"embedding": vk.VectorField(np.ones(16))}, id="good"),
                                     vk.Record({"embedding": vk.VectorField(vector)}, id="bad")])
        with pytest.raises(vk.VectorValueError, match="NaN or inf"):
            await store.vector_search(vector)
        assert await store.count() == 10
        assert store.index_info()["embedding"]["size"] == 10


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def make_dir(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)


async def test_a_directory_of_something_else_is_refused(store_dir: Path) -> None:
    make_dir(store_dir, {"notes.txt": b"my files"})
    with pytest.raises(vk.CorruptStoreError, match=r"not a faiss store.*notes\.txt"):
        await vk.connect(URL.format(store_dir))
    files = listing(store_dir)
    assert sorted(files) == [".lock", "notes.txt"]  # only the lock it took was added
    assert files["notes.txt"] == b"my files"


async def test_another_sqlite_database_is_refused(store_dir: Path) -> None:
    make_dir(store_dir, {})
    with sqlite3.connect(store_dir / "records.sqlite") as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    with pytest.raises(vk.CorruptStoreError, match="SQLite database of something else"):
        await vk.connect(URL.format(store_dir))
    with sqlite3.connect(store_dir / "records.sqlite") as conn:  # untouched
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("version", "2", "format version 2; this vectorknobs-faiss reads version 1"),
    ("format", "vectorknobs-chroma", "not a vectorknobs faiss store"),
])
async def test_another_format_or_version_is_refused(store_dir: Path, key: str, value: str, message: str) -> None:
    await filled(store_dir, 10)
    with sqlite3.connect(store_dir / "records.sqlite") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    with pytest.raises(vk.CorruptStoreError, match=message):
        await vk.connect(URL.format(store_dir))


def damage_truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def damage_flip(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 3] ^= 0xFF
    file.write_bytes(bytes(data))


def damage_garbage(file: Path) -> None:
    file.write_bytes(b"\x00" * 100)


def damage_empty(file: Path) -> None:
    file.write_bytes(b"")


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_garbage, damage_empty])
async def test_a_damaged_index_file_is_rebuilt_from_the_records(
    store_dir: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The index file is derived data: one that fails its checksum or trailer is rebuilt, with a
    warning, and searches give what they gave before."""
    before = await filled(store_dir)
    index_file = store_dir / "index" / "field-1.faiss"
    damage(index_file)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="vectorknobs_faiss"):
        async with vk.connect(URL.format(store_dir)) as store:
            assert await store.count() == 300
            assert store.index_info()["embedding"]["size"] == 300
            assert await searches(store) == before
    assert "rebuilding it from the records" in caplog.text
    async with vk.connect(URL.format(store_dir)) as store:  # the rebuilt index was saved whole
        assert await searches(store) == before


async def test_an_index_file_of_another_store_is_not_trusted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Copying an index file between stores (same field, same dimension) does not mix their vectors."""
    ours = await filled(tmp_path / "a", 300)
    async with vk.connect(URL.format(tmp_path / "b")) as other:
        await other.bulk_create(records(clustered(300, 16, seed=99)))
    (tmp_path / "a" / "index" / "field-1.faiss").write_bytes((tmp_path / "b" / "index" / "field-1.faiss").read_bytes())
    with caplog.at_level(logging.WARNING, logger="vectorknobs_faiss"):
        async with vk.connect(URL.format(tmp_path / "a")) as store:
            assert await searches(store) == ours
    assert "written for another store" in caplog.text


async def test_a_missing_index_file_is_rebuilt(store_dir: Path) -> None:
    before = await filled(store_dir)
    (store_dir / "index" / "field-1.faiss").unlink()
    async with vk.connect(URL.format(store_dir)) as store:
        assert await searches(store) == before


@pytest.mark.parametrize("where", ["header", "middle", "truncated"])
async def test_a_corrupt_database_file_is_a_typed_error(store_dir: Path, where: str) -> None:
    """records.sqlite is the durable truth: damage to it cannot be repaired from the index, so it is a
    CorruptStoreError (at open, or at the first read that meets the damage), never wrong results."""
    await filled(store_dir, 2000)
    database = store_dir / "records.sqlite"
    data = bytearray(database.read_bytes())
    page = 4096
    if where == "header":
        data[:16] = b"definitely not!!"
    elif where == "middle":  # a b-tree page of the records table: garbage where cells should be
        start = (len(data) // page // 2) * page
        data[start:start + page] = bytes(range(256)) * (page // 256)
    else:
        del data[len(data) // 2:]
    database.write_bytes(bytes(data))
    with pytest.raises(vk.CorruptStoreError, match=r"records\.sqlite"):
        await read_everything(store_dir)


async def read_everything(path: Path) -> None:
    async with vk.connect(URL.format(path)) as store:
        await store.search(vk.Query())
        await store.count({"group": 3})

"""What is particular to ``jsondir://``: its files, its journal, its lock and its configuration."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import vectorknobs as vk
from vectorknobs.plugins import get_registry

pytestmark = pytest.mark.asyncio


def record(i: int) -> vk.Record:
    return vk.Record({"text": f"note {i}", "n": i, "embedding": vk.VectorField([1.0, float(i)], source_field="text")},
                     id=f"notes/{i}")


def file_of(directory: Path, record_id: str) -> Path:
    return directory / (hashlib.sha256(record_id.encode()).hexdigest() + ".json")


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_found_through_its_entry_point() -> None:
    info = get_registry().store_for_scheme("jsondir")
    assert info.distribution == "vectorknobs-example-plugin"
    assert info.store_class.__module__ == "vectorknobs_example.store"


async def test_one_json_file_per_record(tmp_path: Path) -> None:
    async with vk.connect(f"jsondir://{tmp_path}") as store:
        await store.bulk_create([record(1), record(2)])
        await store.delete("notes/2")
    assert vk.Record.from_json(file_of(tmp_path, "notes/1").read_text()) == record(1)
    assert not file_of(tmp_path, "notes/2").exists()
    assert names_in(tmp_path) == sorted([".lock", file_of(tmp_path, "notes/1").name])


async def test_a_journal_left_by_a_crash_is_replayed(tmp_path: Path) -> None:
    async with vk.connect(f"jsondir://{tmp_path}") as store:
        await store.create(record(1))
    # as if the process died after saving the journal, before applying it
    journal = {"write": [record(2).to_dict(), record(3).to_dict()], "delete": ["notes/1"]}
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    (tmp_path / ".half-written.json.tmp").write_text("{")
    async with vk.connect(f"jsondir://{tmp_path}") as store:
        assert [r.id for r in await store.search()] == ["notes/2", "notes/3"]
    assert not (tmp_path / "journal.json").exists()
    assert not (tmp_path / ".half-written.json.tmp").exists()


async def test_a_second_connection_is_refused_while_one_is_open(tmp_path: Path) -> None:
    async with vk.connect(f"jsondir://{tmp_path}"):
        with pytest.raises(vk.StoreLockedError):
            await vk.connect(f"jsondir://{tmp_path}")
    async with vk.connect(f"jsondir://{tmp_path}"):
        pass  # the lock went with the first connection


async def test_a_corrupt_file_is_reported(tmp_path: Path) -> None:
    file_of(tmp_path, "x").write_text("not json")
    with pytest.raises(vk.CorruptStoreError, match="not a vectorknobs record"):
        await vk.connect(f"jsondir://{tmp_path}")


@pytest.mark.parametrize("config", ["jsondir://", "jsondir://relative/dir", {"backend": "jsondir"}])
async def test_needs_an_absolute_directory(config: object) -> None:
    with pytest.raises(vk.ConfigError, match="absolute directory"):
        await vk.connect(config)  # type: ignore[arg-type]


async def test_options(tmp_path: Path) -> None:
    async with vk.connect({"backend": "jsondir", "path": str(tmp_path), "fsync": "false"}) as store:
        assert store.settings["fsync"] is False
        await store.create(record(1))
    with pytest.raises(vk.ConfigError, match="unknown option"):
        await vk.connect(f"jsondir://{tmp_path}?compress=yes")


async def test_declines_what_it_does_not_do(tmp_path: Path) -> None:
    async with vk.connect(f"jsondir://{tmp_path}") as store:
        await store.create(record(1))
        with pytest.raises(vk.CapabilityError):
            await store.hybrid_search("note", [1.0, 0.0])
        with pytest.raises(vk.CapabilityError):
            await store.create(vk.Record({"sparse": vk.SparseVectorField({3: 0.5})}))

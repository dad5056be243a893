"""VectorMigration: vectors for existing records, copies between stores (memory, faiss, PostgreSQL + pgvector),
checkpoints that survive Ctrl-C and kill -9, records a target refuses, and a target that fails mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.stores.memory import MemoryStore
from vectorknobs.sync import MigrationResult, VectorMigration, VectorTextSynchronizer, migrate_between_stores

pytestmark = pytest.mark.asyncio


def vector_records(n: int, dims: int = 8, start: int = 0) -> list[vk.Record]:
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(n, dims)).astype(np.float32)
    return [vk.Record({"text": f"document {i}", "n": i, "tags": ["a", str(i % 3)], "meta": {"even": i % 2 == 0},
                       "embedding": vk.VectorField(vectors[i - start], source_field="text", model_name="m",
                                                   model_version="1")}, id=f"r{i:06d}")
            for i in range(start, start + n)]


async def test_add_vectors_to_existing_in_place(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create([*kit.docs(250), vk.Record({"n": -1}, id="no-text")])
    calls: list[tuple[int, int]] = []
    embedder = kit.Counting()
    result = await VectorMigration(store).add_vectors_to_existing(
        text_fields=["title", "body"], vector_field="embedding", embedding_fn=embedder, batch_size=100,
        progress_callback=lambda done, total: calls.append((done, total)))
    assert isinstance(result, MigrationResult)
    assert (result.total_records, result.processed_records, result.written_records) == (251, 251, 250)
    assert result.done
    assert not result.ok
    assert result.failed_ids == ["no-text"]
    assert calls[-1] == (251, 251)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    sync = VectorTextSynchronizer(store, embedder, ["title", "body"])
    assert all(sync.is_current(r) for r in (await kit.all_records(store)).values() if r.key != "no-text")
    again = await VectorMigration(store).add_vectors_to_existing(["title", "body"], embedding_fn=embedder)
    assert (again.written_records, again.skipped_records) == (0, 250)
    assert len(embedder.texts) == 250


async def test_records_without_text_are_reported(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create([*kit.docs(3), vk.Record({"body": 5}, id="number")])
    result = await VectorMigration(store).add_vectors_to_existing(["body"], embedding_fn="hash")
    assert result.done
    assert not result.ok
    assert result.failed_ids == ["number"]
    assert result.errors[0].kind == "SourceTextError"
    assert result.written_records == 3


async def test_add_vectors_while_copying_to_another_store(store: vk.VectorStore, kit: Any) -> None:
    await store.bulk_create(kit.docs(120))
    async with vk.connect("memory://") as target:
        result = await VectorMigration(store, target).add_vectors_to_existing(["body"], embedding_fn="hash",
                                                                              batch_size=50)
        assert result.written_records == 120
        copied = await kit.all_records(target)
    assert all(r.fields["embedding"].model_name == "hash" for r in copied.values())
    assert all("embedding" not in r for r in (await kit.all_records(store)).values())  # the source is untouched


@pytest.mark.parametrize("direction", ["memory-to-faiss", "faiss-to-memory"])
async def test_migrate_between_stores_copies_everything_exactly(tmp_path: Path, kit: Any, direction: str) -> None:
    faiss_url = f"faiss://{tmp_path / 'faiss'}"
    source_url, target_url = ("memory://", faiss_url) if direction == "memory-to-faiss" else (faiss_url, "memory://")
    async with vk.connect(source_url) as source, vk.connect(target_url) as target:
        await source.bulk_create(vector_records(2345))
        seen: list[int] = []
        result = await migrate_between_stores(source, target, batch_size=500,
                                              progress_callback=lambda done, total: seen.append(done))
        assert result.ok
        assert (result.total_records, result.written_records) == (2345, 2345)
        assert seen == [500, 1000, 1500, 2000, 2345]
        assert await kit.all_records(target) == await kit.all_records(source)
        hits = await target.vector_search(vector_records(1)[0]["embedding"], k=1)
        assert hits[0].id == "r000000"
        assert hits[0].source_text == "document 0"
        # again, into a target that holds them already: replaced by id, never duplicated
        assert (await migrate_between_stores(source, target, query=vk.where("n", "lt", 10))).written_records == 10
        assert await target.count() == 2345


async def test_a_record_the_target_refuses_is_isolated_and_reported(tmp_path: Path, kit: Any) -> None:
    async with vk.connect("memory://") as source, vk.connect(f"faiss://{tmp_path / 'f'}") as target:
        records = vector_records(300)
        records[137]["sparse"] = vk.SparseVectorField({1: 0.5})  # faiss cannot store sparse vectors
        await source.bulk_create(records)
        result = await migrate_between_stores(source, target, batch_size=100)
        assert result.done
        assert not result.ok
        assert result.failed_ids == ["r000137"]
        assert result.errors[0].kind == "CapabilityError"
        assert await target.count() == 299


async def test_a_checkpoint_belongs_to_one_migration(tmp_path: Path) -> None:
    checkpoint = tmp_path / "cp.json"
    async with vk.connect("memory://") as a, vk.connect(f"memory://{tmp_path / 'b'}") as b:
        await a.bulk_create(vector_records(10))
        checkpoint.write_text(json.dumps({"format": "vectorknobs-migration-checkpoint", "version": 1, "job": {
            "kind": "copy", "source": "faiss:///elsewhere", "target": b.config.redacted(), "query": None},
            "state": {"after": "r000003", "processed_records": 4, "written_records": 4, "skipped_records": 0,
                      "errors": []}}))
        with pytest.raises(vk.CheckpointError, match=r"belongs to another migration.*source"):
            await migrate_between_stores(a, b, checkpoint=checkpoint)
        checkpoint.write_text("{not json")
        with pytest.raises(vk.CheckpointError, match=r"cannot read migration checkpoint.*delete it to start over"):
            await migrate_between_stores(a, b, checkpoint=checkpoint)


class FailingTarget(MemoryStore):
    """The memory store with an injected fault: writes fail like a dropped connection after ``ok_writes``."""

    ok_writes = 0

    async def _write(self, records: list[vk.Record], mode: vk.WriteMode) -> None:
        if FailingTarget.ok_writes <= 0:
            raise vk.StoreError("connection to the server was lost")
        FailingTarget.ok_writes -= 1
        await super()._write(records, mode)


async def test_a_target_failing_mid_run_stops_resumably_and_loses_nothing(tmp_path: Path, kit: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import vectorknobs.sync.migration as migration

    monkeypatch.setattr(migration, "BACKOFF", 0.01)
    checkpoint = tmp_path / "cp.json"
    async with vk.connect(f"faiss://{tmp_path / 'src'}") as source:
        await source.bulk_create(vector_records(1000))
        target = FailingTarget(parse_config("memory://"))
        await target.open()
        FailingTarget.ok_writes = 4
        with pytest.raises(vk.MigrationError, match=r"stopped after \d+ of 1000 records: StoreError: connection.*"
                                                     r"resume after 'r000\d+'") as info:
            await VectorMigration(source, target).migrate_between_stores(batch_size=100, checkpoint=checkpoint)
        partial = info.value.result
        assert isinstance(partial, MigrationResult)
        assert not partial.done
        assert partial.written_records == 400 == await target.count()
        saved = json.loads(checkpoint.read_text())["state"]
        assert saved["after"] == "r000399"
        FailingTarget.ok_writes = 1000  # the server is back
        result = await VectorMigration(source, target).migrate_between_stores(batch_size=100, checkpoint=checkpoint)
        assert result.ok
        assert result.resumed_after == "r000399"
        assert (result.processed_records, result.written_records) == (1000, 1000)
        assert not checkpoint.exists()
        assert await kit.all_records(target) == await kit.all_records(source)


# -- a real process, really interrupted: faiss -> PostgreSQL + pgvector --------------------------------------


MIGRATED = 30_000


# ``python -m vectorknobs``, with SIGINT handled as a terminal's Ctrl-C needs even when this test run was started
# in the background by a shell without job control (its children inherit SIGINT ignored, and Python then
# installs no KeyboardInterrupt for it)
_CLI = ("import runpy, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "sys.argv[0] = 'vectorknobs'\n"
        "runpy.run_module('vectorknobs', run_name='__main__', alter_sys=True)\n")


def start_migration(source: str, target: str, checkpoint: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "VECTORKNOBS_PLUGINS": "faiss,pgvector"}
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, "migrate", "--from", source, "--to", target, "--batch-size", "50",
         "--checkpoint", str(checkpoint)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_first_checkpoint(process: subprocess.Popen[str], checkpoint: Path) -> None:
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
async def test_an_interrupted_migration_process_resumes_with_nothing_lost_or_duplicated(
        tmp_path: Path, pg_url: str, kit: Any, how: signal.Signals) -> None:
    source_url = f"faiss://{tmp_path / 'laptop'}"
    checkpoint = tmp_path / "migration.json"
    # the first checkpoint is saved once the first page (of 50) is stored, and the signal follows it: here it
    # came after 50-150 of the 30,000 records
    async with vk.connect(source_url) as source:
        for start in range(0, MIGRATED, 5000):
            await source.bulk_create(vector_records(5000, start=start))
    process = start_migration(source_url, pg_url, checkpoint)
    await asyncio.to_thread(wait_for_first_checkpoint, process, checkpoint)
    assert process.poll() is None, f"the migration ended before it could be interrupted: {process.communicate()}"
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    if how == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert f"progress saved in {checkpoint}; run the same command again to resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    state = json.loads(checkpoint.read_text())["state"]
    assert 0 < state["processed_records"] < MIGRATED
    async with vk.connect(pg_url) as target:
        assert 0 < await target.count() < MIGRATED
    resumed = start_migration(source_url, pg_url, checkpoint)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "copied" in stdout
    assert "(resumed after 'r00" in stdout
    assert not checkpoint.exists()
    async with vk.connect(source_url) as source, vk.connect(pg_url) as target:
        assert await target.count() == MIGRATED
        assert await kit.all_records(target) == await kit.all_records(source)

"""Memory-store specifics: the persistence file, atomic saves, the directory lock, damaged files, options.

Generic store behaviour (CRUD, filters, vector search...) is the conformance suite's job.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs import _fs
from vectorknobs.plugins import ALLOW_ENV, reset_registry
from vectorknobs.stores.memory import FILE_NAME, FORMAT, VERSION, MemoryStore

pytestmark = pytest.mark.usefixtures("hermetic")


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the built-in plugin: these tests are about the memory store, not about what else is installed."""
    monkeypatch.setenv(ALLOW_ENV, "")
    reset_registry()
    yield
    reset_registry()


def url(path: Path, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"memory://{path}" + (f"?{query}" if query else "")


def rich(i: int) -> vk.Record:
    rng = np.random.default_rng(i)
    return vk.Record(
        {
            "title": f"doc {i} ☃",
            "n": i,
            "x": float(i) / 3,
            "at": datetime(2024, 1, 1, 12, tzinfo=UTC),
            "naive": datetime(2024, 1, 1, 12),
            "meta": {"$odd": i % 2 == 1, "tags": ["a", {"when": datetime(2020, 5, 5)}]},
            "embedding": vk.VectorField(rng.standard_normal(16).astype(np.float32), source_field="title",
                                        model_name="m", metadata={"k": [1, 1.0]}),
            "sparse": vk.SparseVectorField({3: 0.5, 1: float(np.float32(0.1))}),
        },
        id=f"id-{i:03d}",
    )


def data_lines(directory: Path) -> list[str]:
    return (directory / FILE_NAME).read_text().splitlines()


def temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f".{FILE_NAME}.*.tmp"))


# -- the persistence file ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_records_survive_a_reopen_exactly(tmp_path: Path) -> None:
    directory = tmp_path / "store" / "nested"  # created on open, parents too
    records = [rich(i) for i in range(5)]
    async with vk.connect(url(directory)) as store:
        await store.bulk_create(records)
    async with vk.connect(url(directory)) as store:
        again = await store.bulk_read([r.key for r in records])
        assert again == records
        for before, after in zip(records, again, strict=True):
            assert after is not None
            assert after["embedding"].tobytes() == before["embedding"].tobytes()
            assert type(after["x"]) is float
            assert type(after["n"]) is int
            assert after["at"].tzinfo is not None
            assert after["naive"].tzinfo is None
        assert store.vector_dimensions() == {"embedding": 16}
        assert await store.count() == 5


@pytest.mark.asyncio
async def test_file_format(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)) as store:
        await store.bulk_create([rich(2), rich(1)])
        lines = data_lines(tmp_path)
        assert json.loads(lines[0]) == {"format": FORMAT, "version": VERSION, "records": 2}
        assert [json.loads(line)["id"] for line in lines[1:]] == ["id-001", "id-002"]  # sorted: stable diffs
        assert vk.Record.from_json(lines[1]) == rich(1)


@pytest.mark.asyncio
async def test_every_write_is_saved_at_once_by_default(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)) as store:
        await store.create(rich(1))
        assert len(data_lines(tmp_path)) == 2
        await store.upsert(rich(2))
        assert len(data_lines(tmp_path)) == 3
        changed = rich(1)
        changed["n"] = 100
        await store.update(changed)
        assert vk.Record.from_json(data_lines(tmp_path)[1])["n"] == 100
        await store.delete("id-002")
        assert len(data_lines(tmp_path)) == 2
        assert temp_files(tmp_path) == []


@pytest.mark.asyncio
async def test_drop_is_persisted(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)) as store:
        await store.bulk_create([rich(1), rich(2)])
        await store.drop()
    async with vk.connect(url(tmp_path)) as store:
        assert await store.count() == 0
        assert store.vector_dimensions() == {}


@pytest.mark.asyncio
async def test_in_memory_store_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with vk.connect("memory://") as store:
        await store.create(rich(1))
    assert os.listdir(tmp_path) == []


@pytest.mark.asyncio
async def test_path_as_an_option(tmp_path: Path) -> None:
    async with vk.connect({"backend": "memory", "path": str(tmp_path)}) as store:
        await store.create(rich(1))
    assert (tmp_path / FILE_NAME).exists()
    async with vk.connect(f"mem://{tmp_path}") as store:  # the alias scheme opens the same store
        assert await store.exists("id-001")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ("memory://relative/dir", "memory store paths are absolute: write memory:///relative/dir"),
        ({"backend": "memory", "path": "/a", "host": "x"}, "absolute"),
        ("memory:///a?path=/b", "give the memory store's directory once"),
        ("memory:///a?autosave=sometimes", "autosave"),
        ("memory:///a?max_records=many", "max_records"),
        ("memory:///a?bogus=1", "unknown option.*bogus.*known: autosave, max_records, metric, path"),
    ],
)
@pytest.mark.asyncio
async def test_bad_memory_configs(config: Any, match: str) -> None:
    with pytest.raises(vk.ConfigError, match=match):
        await vk.connect(config)


@pytest.mark.asyncio
async def test_max_records(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path, max_records=2)) as store:
        await store.bulk_create([rich(1), rich(2)])
        with pytest.raises(vk.InvalidRecordError, match="limited to 2 records"):
            await store.create(rich(3))
        await store.upsert(rich(2))  # replacing does not grow the store
        assert await store.count() == 2
    assert len(data_lines(tmp_path)) == 3


# -- atomic saves ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failed_save_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with vk.connect(url(tmp_path)) as store:
        await store.bulk_create([rich(1), rich(2)])
        before = (tmp_path / FILE_NAME).read_bytes()

        def disk_full(src: object, dst: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(_fs.os, "replace", disk_full)
        with pytest.raises(vk.StoreError, match=r"No space left on device.*previous copy is intact"):
            await store.create(rich(3))
        with pytest.raises(vk.StoreError):
            await store.delete("id-001")
        with pytest.raises(vk.StoreError):
            await store.drop()
        # neither the file nor what the open store answers changed
        assert (tmp_path / FILE_NAME).read_bytes() == before
        assert temp_files(tmp_path) == []
        assert await store.count() == 2
        assert await store.read("id-003") is None
        assert await store.exists("id-001")
        monkeypatch.undo()
        await store.create(rich(3))
    async with vk.connect(url(tmp_path)) as store:
        assert await store.count() == 3


def test_atomic_write_cleans_up_after_a_failing_writer(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new part"
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(vk.StoreError, match="I/O error"):
        _fs.atomic_write(target, chunks())
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
    _fs.atomic_write(target, [b"new ", b"data"])
    assert target.read_bytes() == b"new data"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.asyncio
async def test_leftovers_of_a_killed_save_are_removed_on_open(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)) as store:
        await store.create(rich(1))
    leftover = tmp_path / f".{FILE_NAME}.abc123.tmp"
    leftover.write_bytes(b"half a file")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("keep me")
    async with vk.connect(url(tmp_path)) as store:
        assert await store.count() == 1
    assert not leftover.exists()
    assert unrelated.exists()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    import vectorknobs as vk

    async def main(directory, n):
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((n, 64)).astype(np.float32)
        async with vk.connect("memory://" + directory) as store:
            print("ready", flush=True)
            generation = 0
            while True:
                generation += 1
                batch = [vk.Record({"gen": generation, "text": "x" * 200, "embedding": vk.VectorField(vectors[i])},
                                   id=f"r{i:05d}") for i in range(n)]
                await store.bulk_upsert(batch)
                print(generation, flush=True)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def _generations(directory: Path, count: int) -> set[int]:
    async def read() -> set[int]:
        async with vk.connect(url(directory)) as store:
            assert await store.count() == count
            return {r["gen"] async for batch in store.stream(batch_size=500) for r in batch}

    return asyncio.run(read())


@pytest.mark.slow
def test_killed_mid_save_leaves_the_old_or_the_new_state(tmp_path: Path) -> None:
    directory, count = tmp_path / "store", 1500

    async def seed() -> None:
        async with vk.connect(url(directory)) as store:
            await store.bulk_create([vk.Record({"gen": 0, "embedding": vk.VectorField(np.ones(64))}, id=f"r{i:05d}")
                                     for i in range(count)])

    asyncio.run(seed())
    rng = random.Random(1234)
    env = {**os.environ, ALLOW_ENV: ""}
    mid_save = 0  # kills that hit a save in progress (a partial temporary file was left behind)
    iteration = 0
    while iteration < 5 or (mid_save < 2 and iteration < 20):
        iteration += 1
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read() if writer.stderr else ""
            # kill it at a random point: before, during or between saves
            time.sleep(rng.uniform(0.0, 1.0))
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
            acknowledged = [int(line) for line in writer.stdout.read().split() if line.isdigit()]
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
            for stream in (writer.stdout, writer.stderr):
                if stream is not None:
                    stream.close()
        assert writer.returncode == -signal.SIGKILL
        mid_save += bool(temp_files(directory))
        generations = _generations(directory, count)  # opens: no lock left behind, the file is whole
        assert len(generations) == 1, f"a half-applied batch: {sorted(generations)[:5]}"
        # the state on disk is the last acknowledged batch, or the one being saved when it died
        last = acknowledged[-1] if acknowledged else None
        [found] = generations
        if last is not None:
            assert found in (last, last + 1), (found, last)
        assert temp_files(directory) == []
    assert mid_save >= 1, "no kill landed inside a save; the test proved nothing"


# -- the directory lock -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_second_opening_in_the_same_process_is_refused(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)):
        with pytest.raises(vk.StoreLockedError, match=f"open for writing by process {os.getpid()}"):
            await vk.connect(url(tmp_path))
        with pytest.raises(vk.StoreError):  # by kind, too
            await vk.connect({"backend": "memory", "path": str(tmp_path)})
    async with vk.connect(url(tmp_path)) as store:  # released by close
        assert await store.count() == 0


@pytest.mark.asyncio
async def test_two_directories_are_independent(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path / "a")) as a, vk.connect(url(tmp_path / "b")) as b:
        await a.create(rich(1))
        assert await b.count() == 0


OPENER = textwrap.dedent(
    """
    import asyncio, sys
    import vectorknobs as vk

    async def main():
        try:
            store = await vk.connect("memory://" + sys.argv[1])
        except vk.VectorknobsError as err:
            print(type(err).__name__, err)
            return
        if sys.argv[2] == "hold":
            print("holding", flush=True)
            sys.stdin.readline()
        await store.close()
        print("opened")

    asyncio.run(main())
    """
)


def _opener(directory: Path, mode: str = "once") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", OPENER, str(directory), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, ALLOW_ENV: ""},
    )


@pytest.mark.asyncio
async def test_another_process_cannot_open_a_store_that_is_open(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)):
        out, err = _opener(tmp_path).communicate(timeout=60)
        assert out.startswith("StoreLockedError"), err
        assert f"by process {os.getpid()}" in out
    out, err = _opener(tmp_path).communicate(timeout=60)
    assert out.strip() == "opened", err


@pytest.mark.asyncio
async def test_this_process_cannot_open_a_store_another_process_holds(tmp_path: Path) -> None:
    holder = _opener(tmp_path, "hold")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(vk.StoreLockedError, match=f"by process {holder.pid}"):
            await vk.connect(url(tmp_path))
        holder.kill()  # a crashed holder: the kernel drops the lock
        holder.wait(timeout=30)
        async with vk.connect(url(tmp_path)) as store:
            assert await store.count() == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=30)


@pytest.mark.asyncio
async def test_closing_twice_and_using_after_close(tmp_path: Path) -> None:
    store = await vk.connect(url(tmp_path))
    await store.close()
    await store.close()
    with pytest.raises(vk.StoreClosedError):
        await store.count()
    async with vk.connect(url(tmp_path)):
        pass


# -- damaged files ----------------------------------------------------------------------------------------

GOOD_HEADER = json.dumps({"format": FORMAT, "version": VERSION, "records": 1})
GOOD_LINE = vk.Record({"a": 1}, id="x").to_json()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is not a vectorknobs memory store file"),
        (b"\n", "is not a vectorknobs memory store file"),
        (b"garbage\n", "is not a vectorknobs memory store file"),
        (b"\xff\xfe\x00binary", "is not a vectorknobs memory store file"),
        (b"[1, 2]\n", "is not a vectorknobs memory store file"),
        (json.dumps({"format": "other", "version": 1}).encode() + b"\n", "is not a vectorknobs memory store file"),
        (json.dumps({"format": FORMAT, "version": 2, "records": 0}).encode() + b"\n",
         "has format version 2; this vectorknobs reads version 1"),
        (json.dumps({"format": FORMAT, "records": 0}).encode() + b"\n", "has format version None"),
        (f"{GOOD_HEADER}\n".encode(), "is truncated: 0 of 1 records"),
        (f"{GOOD_HEADER}\n{GOOD_LINE[:-5]}".encode(), "line 2"),
        (f"{GOOD_HEADER}\n{GOOD_LINE}\n{GOOD_LINE}\n".replace('"records": 1', '"records": 2').encode(),
         "line 3: missing or repeated record id 'x'"),
        (f"{GOOD_HEADER}\n{json.dumps({'id': None, 'fields': {}})}\n".encode(), "line 2: missing or repeated"),
        (f"{GOOD_HEADER}\nnull\n".encode(), "line 2"),
        (f"{GOOD_HEADER}\n\n".encode(), "line 2"),
        (f"{GOOD_HEADER}\n".encode() + b"\xff\xfe\n", "line 2"),
        (f"{GOOD_HEADER}\n{json.dumps({'id': 'x', 'fields': {'f': {'type': 'vector', 'value': [1, None]}}})}\n"
         .encode(), "line 2"),
        (f"{GOOD_HEADER}\n{json.dumps({'id': 'x', 'fields': {'f': {'type': 'vector'}}})}\n".encode(), "line 2"),
        (f"{GOOD_HEADER}\n{json.dumps({'id': 'x', 'fields': {'bad name': {'type': 'string', 'value': ''}}})}\n"
         .encode(), "line 2"),
        (f"{GOOD_HEADER}\n{json.dumps({'id': 'x', 'fields': {'s': {'type': 'sparse_vector', 'indices': [1]}}})}\n"
         .encode(), "line 2"),
    ],
)
@pytest.mark.asyncio
async def test_a_damaged_file_is_reported_and_left_alone(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    with pytest.raises(vk.CorruptStoreError, match=match) as info:
        await vk.connect(url(tmp_path))
    assert str(tmp_path / FILE_NAME) in str(info.value)
    assert (tmp_path / FILE_NAME).read_bytes() == content  # never "repaired" by overwriting
    # the failed open released the lock: once the file is fixed (here: removed), the store opens
    (tmp_path / FILE_NAME).unlink()
    async with vk.connect(url(tmp_path)) as store:
        assert await store.count() == 0


@pytest.mark.asyncio
async def test_corrupt_store_error_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("nope\n")
    with pytest.raises(vk.StoreError):
        await vk.connect(url(tmp_path))


# -- autosave ------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_autosave_off_saves_only_on_close(tmp_path: Path) -> None:
    store = await vk.connect(url(tmp_path, autosave="false"))
    assert store.settings["autosave"] is False
    await store.bulk_create([rich(1), rich(2)])
    await store.delete("id-001")
    assert not (tmp_path / FILE_NAME).exists()
    assert await store.count() == 1
    await store.close()
    assert len(data_lines(tmp_path)) == 2
    async with vk.connect(url(tmp_path, autosave="0")) as again:
        assert [r.id for r in await again.search()] == ["id-002"]
        await again.create(rich(3))
        assert len(data_lines(tmp_path)) == 2  # the old file, until close
    assert len(data_lines(tmp_path)) == 3


@pytest.mark.asyncio
async def test_autosave_off_failed_final_save_releases_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    store = await vk.connect(url(tmp_path, autosave="no"))
    await store.create(rich(1))

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_fs.os, "replace", disk_full)
    with pytest.raises(vk.StoreError, match="No space left"):
        await store.close()
    monkeypatch.undo()
    async with vk.connect(url(tmp_path)) as again:  # not locked by the store that failed to close
        assert await again.count() == 0


@pytest.mark.asyncio
async def test_autosave_is_true_by_default(tmp_path: Path) -> None:
    async with vk.connect(url(tmp_path)) as store:
        assert isinstance(store, MemoryStore)
        assert store.settings["autosave"] is True
        assert store.capabilities.persistence is True


@pytest.mark.asyncio
async def test_big_batches_are_checked_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking and copying a batch runs on a worker thread from 256 records; small ones stay inline."""
    threads: list[str] = []
    prepare = vk.VectorStore._prepare

    def spy(self: vk.VectorStore, *args: Any) -> list[vk.Record]:
        threads.append(threading.current_thread().name)
        return prepare(self, *args)

    monkeypatch.setattr(vk.VectorStore, "_prepare", spy)
    async with vk.connect("memory://") as store:
        await store.bulk_create([vk.Record({"n": i}, id=f"s{i}") for i in range(10)])
        await store.bulk_create([vk.Record({"n": i, "v": vk.VectorField([i, 1.0])}, id=f"b{i}") for i in range(1000)])
        assert await store.count() == 1010
    main = threading.main_thread().name
    # each batch adds a field, so each is checked twice (again under the schema lock)
    assert threads[:2] == [main, main]
    assert len(threads) == 4
    assert main not in threads[2:]


@pytest.mark.asyncio
async def test_a_store_that_fails_to_load_its_schema_releases_what_it_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``open`` closes the store again when ``_load_schema`` fails after ``_open`` (here: the directory lock
    is released, so the next connect works)."""
    async def failing(self: MemoryStore) -> vk.Schema:
        raise vk.StoreError("the schema could not be read")

    with monkeypatch.context() as patch:
        patch.setattr(MemoryStore, "_load_schema", failing)
        with pytest.raises(vk.StoreError, match="schema could not be read"):
            await vk.connect(f"memory://{tmp_path}/store")
    async with vk.connect(f"memory://{tmp_path}/store") as store:
        assert await store.count() == 0

"""Durability: processes killed by SIGKILL mid-write, a second writer, a full disk. Every case ends with
the store reopened and checked against what was committed: same records, an index that agrees with
them, no leftovers."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import store_child
import vectorknobs as vk
from store_child import BATCH, URL, record

pytestmark = pytest.mark.asyncio

CHILD = Path(store_child.__file__)


def child(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CHILD), *args], text=True, **kwargs)  # type: ignore[call-overload]


async def check_consistent(path: Path, expected: dict[str, vk.Record] | None = None) -> dict[str, vk.Record]:
    """Reopen ``path``; its records are ``expected`` (when given), each vector field's index holds
    exactly the stored vectors, searches through the index agree with exact scoring, and no temporary
    file is left. Returns the records."""
    async with vk.connect(URL.format(path)) as store:
        found = {r.key: r for r in await store.search(vk.Query())}
        if expected is not None:
            assert found == expected
        assert store.index_info()["embedding"]["size"] == len(found)
        rng = np.random.default_rng(len(found))
        for query in rng.normal(size=(5, store_child.DIMS)).astype(np.float32):
            with store.search_params(ef_search=2000):
                indexed = await store.vector_search(query, k=10)
            with store.search_params(exact=True):
                exact = await store.vector_search(query, k=10)
            assert [h.id for h in indexed] == [h.id for h in exact]
            # HNSW scores are faiss' float32 arithmetic on the stored vectors (exact search: float64)
            assert [h.score for h in indexed] == pytest.approx([h.score for h in exact], rel=1e-6, abs=1e-6)
        for own in (r for r in found.values() if r["n"] % 37 == 0):  # each record finds itself
            hits = await store.vector_search(own["embedding"], k=1)
            assert hits[0].id == own.key
    assert leftovers(path) == []
    return found


def leftovers(path: Path) -> list[Path]:
    """Temporary files of interrupted saves."""
    return list(path.rglob("*.tmp"))


def initial(count: int) -> dict[str, vk.Record]:
    return {f"r{i}": record(i) for i in range(count)}


async def create_initial(path: Path, count: int) -> None:
    async with vk.connect(URL.format(path)) as store:
        await store.bulk_create(list(initial(count).values()))


COMMITTED = {**initial(200), **{f"r{i}": record(i, version=1) for i in range(20)},
             **{f"r{i}": record(i) for i in range(200, 250)}}
ALL_DONE = {key: r for key, r in COMMITTED.items() if not 20 <= r["n"] < 40}
EXPECTED_AFTER = {
    "before-commit": initial(200),
    "after-commit": COMMITTED,
    "mid-index-write": ALL_DONE,
    "before-rename": ALL_DONE,
    "after-rename": ALL_DONE,
}


@pytest.mark.parametrize("point", list(store_child.KILL_POINTS))
async def test_sigkill_at_each_point_of_a_write_and_save(store_dir: Path, point: str) -> None:
    """A process killed at any step of a write or an index save leaves a store that opens, holds every
    committed batch entirely and nothing else, and whose index (stale, half-written or new on disk) is
    caught up with the records."""
    await create_initial(store_dir, 200)
    proc = child(str(store_dir), "kill", point, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    await check_consistent(store_dir, EXPECTED_AFTER[point])


async def test_sigkill_at_random_moments_of_a_write_loop(store_dir: Path) -> None:
    """Kill a writer (batches, commits, index saves) at several moments; each time every acknowledged
    batch is there, whole, and the next writer continues from there."""
    acknowledged = 0
    for delay in (0.05, 0.2, 0.45, 0.8):
        proc = child(str(store_dir), "loop", str(acknowledged), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first commit: the child is past its imports and open
        assert first.startswith("committed"), proc.stderr.read() if proc.stderr else ""
        await asyncio.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        acknowledged = max(int(line.split()[1]) for line in [first, *out.splitlines()])
        found = await check_consistent(store_dir)
        assert len(found) % BATCH == 0  # batches are all or nothing
        assert len(found) >= acknowledged  # and what was acknowledged survives
        assert found == initial(len(found))
        acknowledged = len(found)
    assert acknowledged > 4 * BATCH


async def test_a_second_writer_gets_a_typed_error(store_dir: Path) -> None:
    """Another process holding the directory makes connect raise StoreLockedError naming it; once that
    process is killed, the kernel releases the lock and the store opens."""
    await create_initial(store_dir, 10)
    holder = child(str(store_dir), "hold", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(vk.StoreLockedError, match=rf"process {holder.pid}"):
            await vk.connect(URL.format(store_dir))
    finally:
        holder.kill()
        holder.wait()
    await check_consistent(store_dir, initial(10))


async def test_a_second_connection_in_the_same_process_is_refused(store_dir: Path) -> None:
    async with vk.connect(URL.format(store_dir)) as store:
        await store.bulk_create([record(1)])
        with pytest.raises(vk.StoreLockedError):
            await vk.connect(URL.format(store_dir))
        assert await store.count() == 1


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: writes on it fail with ENOSPC, a real full disk (mounting needs root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.fail(f"the full-disk test mounts a tmpfs and needs root: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


async def test_full_disk_during_writes_and_saves(tiny_disk: Path) -> None:
    """On a full disk writes raise StoreError and change nothing, saving an index raises StoreError and
    keeps the previous file, reads and searches go on, and close succeeds (the index it could not save
    is caught up from the records at the next open); with space freed, writes work again."""
    path = tiny_disk / "store"
    await create_initial(path, 100)
    index_file = path / "index" / "field-1.faiss"
    saved = index_file.read_bytes()
    async with vk.connect(URL.format(path)) as store:
        await store.bulk_create([record(i) for i in range(100, 200)])  # committed; the index is not saved
        filler = fill(tiny_disk)
        with pytest.raises(vk.StoreError, match="disk is full"):
            await store.bulk_create([record(i) for i in range(200, 3200)])
        with pytest.raises(vk.StoreError, match="disk is full"):
            await store.bulk_delete([f"r{i}" for i in range(90, 100)])
        with pytest.raises(vk.StoreError, match="previous copy is intact"):
            await store.save_indexes()
        assert index_file.read_bytes() == saved
        assert leftovers(path) == []
        assert await store.count() == 200
        assert (await store.read("r150")) == record(150)
        assert (await store.vector_search(record(150)["embedding"], k=1))[0].id == "r150"
    filler.unlink()
    await check_consistent(path, initial(200))
    async with vk.connect(URL.format(path)) as store:
        await store.bulk_delete([f"r{i}" for i in range(90, 100)])
        await store.bulk_create([record(i) for i in range(200, 400)])
    await check_consistent(path, {key: r for key, r in initial(400).items() if not 90 <= r["n"] < 100})

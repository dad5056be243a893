"""A child process for the durability tests: it writes to a faiss store and dies by SIGKILL on cue.

    python store_child.py DIR kill POINT    one write (upserts, new records, deletes) then save_indexes(),
                                            killed at POINT (see KILL_POINTS)
    python store_child.py DIR loop START    bulk_create batches of BATCH from record START on, printing
                                            "committed <n>" after each, save_indexes() every third batch,
                                            until the parent kills it
    python store_child.py DIR hold          open the store, print "open", wait for stdin to close

The kill points wrap the real functions a save goes through, so the process dies exactly there, with
whatever the kernel has of the files at that moment: nothing is mocked, the process just stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np
import vectorknobs as vk
import vectorknobs._fs as fs
from vectorknobs_faiss import database, store

DIMS = 8
BATCH = 50
URL = "faiss://{}?index=hnsw&m=8"


def vector(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=DIMS).astype(np.float32)


def record(i: int, version: int = 0) -> vk.Record:
    return vk.Record({"n": i, "version": version, "embedding": vk.VectorField(vector(i * 7 + version))}, id=f"r{i}")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def before(call: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        die()

    return killed


def after(call: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        call(*args, **kwargs)
        die()

    return killed


def mid_index_write() -> None:
    """Die after faiss has written the first chunk of the index into the temporary file."""
    original = faiss.PyCallbackIOWriter

    def writer(callback: Callable[[bytes], None], *args: Any) -> Any:
        def write(chunk: bytes) -> None:
            callback(chunk)
            die()

        return original(write, *args)

    faiss.PyCallbackIOWriter = writer


KILL_POINTS: dict[str, Callable[[], None]] = {
    # the write's SQLite transaction is staged but not committed
    "before-commit": lambda: setattr(database.Database, "commit", before(database.Database.commit)),
    # committed, but the in-memory index never saw it and no index file was written
    "after-commit": lambda: setattr(database.Database, "commit", after(database.Database.commit)),
    "mid-index-write": mid_index_write,
    # the new index file is complete and fsynced under its temporary name
    "before-rename": lambda: setattr(fs.os, "replace", before(os.replace)),
    # renamed over the old file, the directory not yet fsynced
    "after-rename": lambda: setattr(fs, "fsync_dir", before(fs.fsync_dir)),
}


async def kill_during_write(path: str, point: str) -> None:
    async with vk.connect(URL.format(path)) as s:
        KILL_POINTS[point]()
        await s.bulk_upsert([record(i, version=1) for i in range(0, 20)] + [record(i) for i in range(200, 250)])
        await s.bulk_delete([f"r{i}" for i in range(20, 40)])
        await s.save_indexes()
    raise SystemExit("not killed")  # every kill point is on this path


async def write_until_killed(path: str, start: int) -> None:
    async with vk.connect(URL.format(path)) as s:
        for number, first in enumerate(range(start, 10**9, BATCH)):
            await s.bulk_create([record(i) for i in range(first, first + BATCH)])
            print(f"committed {first + BATCH}", flush=True)
            if number % 3 == 2:
                await s.save_indexes()


async def hold(path: str) -> None:
    async with vk.connect(URL.format(path)):
        print("open", flush=True)
        await asyncio.to_thread(sys.stdin.read)


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    assert store.FaissStore  # the plugin is installed and importable
    if mode == "kill":
        asyncio.run(kill_during_write(path, sys.argv[3]))
    elif mode == "loop":
        asyncio.run(write_until_killed(path, int(sys.argv[3])))
    else:
        asyncio.run(hold(path))


if __name__ == "__main__":
    main()

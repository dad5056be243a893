"""One side of a run, in its own process: ``python -m benchmarks.worker`` reads JSON commands on stdin.

The runner starts one worker for the store and one for the raw baseline, so each side's memory is its
own, and drives them alternately (interleaved rounds). Each command gets one JSON line back on the
original stdout; anything a library prints goes to stderr instead. Commands:

``open``     build the side (``side``: "store" or the raw baseline's name) over a prepared data set
``insert``   insert every record in batches; report times and memory
``search``   one timed pass of a search phase (``single``, ``batch``, ``filtered`` or ``concurrent``)
``close``    close the side and exit
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import memory
from benchmarks.datasets import Dataset
from benchmarks.sides import Batch, Side, SideContext, StoreSide


class Worker:
    def __init__(self) -> None:
        self.side: Side | None = None
        self.dataset: Dataset | None = None
        self.queries = np.zeros((0, 0), dtype=np.float32)
        self.filter_values: list[str] = []
        self.baseline_anon = 0
        self.insert_batch = 1000
        self.columns: dict[str, np.ndarray] = {}

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        cmd = msg["cmd"]
        if cmd == "open":
            return await self.open(msg)
        if cmd == "insert":
            return await self.insert()
        if cmd == "search":
            return await self.search(msg)
        if cmd == "close":
            if self.side is not None:
                await self.side.close()
            return {"closed": True}
        raise ValueError(f"unknown command {cmd!r}")

    async def open(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.dataset = ds = Dataset(Path(msg["dataset"]), json.loads((Path(msg["dataset"]) / "meta.json").read_text()))
        ctx = SideContext(**{**msg["ctx"], "workdir": Path(msg["ctx"]["workdir"])})
        self.insert_batch = int(msg["insert_batch"])
        if msg["side"] == "store":
            self.side = StoreSide(ctx)
        else:
            from benchmarks import baselines

            self.side = baselines.create(msg["side"], ctx)
        count = int(msg["queries"])
        self.queries = np.array(ds.queries[:count], dtype=np.float32)
        names = ds.categories
        self.filter_values = [names[c] for c in ds.array("filter_category")[:count].tolist()]
        self.columns = {name: ds.array(name) for name in ("text", "category", "price")}
        await self.side.open()
        self.baseline_anon = memory.settle()
        return {"baseline_anon_bytes": self.baseline_anon, "pid": os.getpid()}

    def _batch(self, start: int, stop: int) -> Batch:
        ds = self.dataset
        assert ds is not None
        names, cols = ds.categories, self.columns
        return Batch(
            ids=[ds.record_id(i) for i in range(start, stop)],
            vectors=np.array(ds.base[start:stop], dtype=np.float32, order="C"),
            columns={
                "text": cols["text"][start:stop].tolist(),
                "category": [names[c] for c in cols["category"][start:stop].tolist()],
                "price": cols["price"][start:stop].tolist(),
            },
        )

    async def insert(self) -> dict[str, Any]:
        ds, side = self.dataset, self.side
        assert ds is not None
        assert side is not None
        batch_times: list[float] = []
        with memory.PeakSampler() as peak:
            for start in range(0, ds.n, self.insert_batch):
                batch = self._batch(start, min(ds.n, start + self.insert_batch))
                t0 = time.perf_counter()
                await side.insert(batch)
                batch_times.append(time.perf_counter() - t0)
                del batch
            t0 = time.perf_counter()
            await side.finish_insert()
            finish = time.perf_counter() - t0
        resident = memory.settle()
        total = sum(batch_times) + finish
        return {
            "seconds": total,
            "batch_seconds_total": sum(batch_times),
            "finish_seconds": finish,
            "batches": len(batch_times),
            "records": ds.n,
            "records_per_second": ds.n / total if total > 0 else None,
            "memory": {
                "baseline_anon_bytes": self.baseline_anon,
                "peak_anon_bytes": peak.peak - self.baseline_anon,
                "resident_anon_bytes": resident - self.baseline_anon,
                "max_rss_bytes": memory.max_rss_bytes(),
            },
            "describe": side.describe(),
        }

    async def search(self, msg: dict[str, Any]) -> dict[str, Any]:
        side = self.side
        assert side is not None
        phase, k = msg["phase"], int(msg["k"])
        count = min(int(msg.get("count", len(self.queries))), len(self.queries))
        queries = self.queries[:count]
        found: list[list[str]] = []
        times: list[float] = []
        clock = time.perf_counter
        wall = clock()
        if phase == "single":
            for q in queries:
                t0 = clock()
                found.append(await side.search(q, k))
                times.append(clock() - t0)
        elif phase == "filtered":
            values = self.filter_values
            for i, q in enumerate(queries):
                where = {"category": values[i]}
                t0 = clock()
                found.append(await side.search_filtered(q, k, where))
                times.append(clock() - t0)
        elif phase == "batch":
            size = int(msg["batch_size"])
            for start in range(0, count, size):
                t0 = clock()
                found.extend(await side.search_batch(queries[start:start + size], k))
                times.append(clock() - t0)
        elif phase == "concurrent":
            found, times = await concurrent_searches(side, queries, k, int(msg["concurrency"]))
        else:
            raise ValueError(f"unknown search phase {phase!r}")
        wall = clock() - wall
        # throughput: single searches one after another take the sum of their times; concurrent ones the wall
        busy = wall if phase == "concurrent" else sum(times)
        out: dict[str, Any] = {"phase": phase, "queries": count, "seconds": busy, "wall_seconds": wall,
                               "times": times}
        if msg.get("return_ids"):
            out["ids"] = found
        return out


async def concurrent_searches(side: Side, queries: np.ndarray, k: int, tasks: int
                              ) -> tuple[list[list[str]], list[float]]:
    """Single searches from ``tasks`` tasks at once, each taking the next query when its last one is answered
    (an async server's many requests); the side's ``search_concurrent`` when it has one, else ``search``."""
    search = getattr(side, "search_concurrent", side.search)
    found: list[list[str]] = [[] for _ in queries]
    times = [0.0] * len(queries)
    upcoming = iter(range(len(queries)))

    async def client() -> None:
        for i in upcoming:
            t0 = time.perf_counter()
            found[i] = await search(queries[i], k)
            times[i] = time.perf_counter() - t0

    await asyncio.gather(*(client() for _ in range(tasks)))
    return found, times


async def main() -> None:
    # Keep the protocol channel to ourselves: library prints go to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker = Worker()
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        msg = json.loads(line)
        try:
            reply = {"ok": True, **await worker.handle(msg)}
        except Exception as err:  # noqa: BLE001 - every failure goes back to the runner, with its traceback
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        channel.write(json.dumps(reply) + "\n")
        if msg.get("cmd") == "close":
            return


if __name__ == "__main__":
    asyncio.run(main())

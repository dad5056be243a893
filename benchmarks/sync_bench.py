"""Benchmarks of ``vectorknobs.sync``: migration throughput and memory, and the synchronizer's overhead.

    python -m benchmarks.sync_bench migrate -n 10000 -n 1000000 -d 8     # faiss -> pgvector+embedded
    python -m benchmarks.sync_bench sync --embedder hash -n 20000         # bulk_sync vs the embedder alone
    python -m benchmarks.sync_bench sync --embedder minilm -n 5000

``migrate`` runs each size in a fresh process: it fills the source, then ``--repeats`` times alternately times
the target's own ``bulk_create`` of the same records into a fresh table (as ``Record``s, and as
``RecordBatch``es: the faster way to write them) and ``migrate_between_stores`` into another (all opened before
timing), sampling the process's anonymous memory (``benchmarks.memory``).
Targets: migration rate at least 0.8x the slower store's own bulk-insert rate (medians of the rounds), and
memory that does not grow with the store.

``sync`` times the embedder alone on the texts, in the same batches, then ``bulk_sync`` of a fresh store holding
them without vectors, alternately ``--repeats`` times. Target: ``bulk_sync`` at most 10% slower than the
embedder alone (the median of the paired rounds).

Results go to ``docs/benchmarks/sync-*.json`` (``--out`` to change) and are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import vectorknobs as vk
from vectorknobs.embedders import embed, resolve_embedder
from vectorknobs.sync import VectorTextSynchronizer, migrate_between_stores

from benchmarks.memory import PeakSampler, settle

OUT_DIR = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
SCHEMA = "vectorknobs-sync-benchmark/1"  # not the harness's "vectorknobs-benchmark/": its plots and tables skip these
MIB = 1024 * 1024


def make_records(start: int, count: int, dim: int, with_vectors: bool = True) -> list[vk.Record]:
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(count, dim)).astype(np.float32) if with_vectors else None
    records = []
    for offset in range(count):
        i = start + offset
        data: dict[str, Any] = {"text": f"document {i} about topic {i % 97} and subject {i % 13}",
                                "category": f"c{i % 20}", "price": float(i % 1000) / 10}
        if vectors is not None:
            data["embedding"] = vk.VectorField(vectors[offset], source_field="text", model_name="bench")
        records.append(vk.Record(data, id=f"r{i:08d}"))
    return records


def expand(url: str, tmp: Path, name: str) -> str:
    return url.replace("{tmp}", str(tmp / name))


# -- migrate ----------------------------------------------------------------------------------------------


async def migrate_one(n: int, dim: int, batch: int, source_url: str, target_url: str,
                      repeats: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="vk-sync-bench-", dir="/tmp"))
    os.chmod(tmp, 0o755)  # an embedded PostgreSQL runs as its own user and must reach its directory
    try:
        source_url, target_url = expand(source_url, tmp, "source"), expand(target_url, tmp, "target")
        async with vk.connect(source_url) as source:
            source_seconds = 0.0
            for start in range(0, n, batch):
                records = make_records(start, min(batch, n - start), dim)
                began = time.perf_counter()
                await source.bulk_create(records)
                source_seconds += time.perf_counter() - began
            own_seconds, own_batch_seconds, migrate_seconds, growth = [], [], [], []
            for round_ in range(repeats):  # alternate the target's own inserts and the migration: same conditions
                for kind, spent_list in (("records", own_seconds), ("batch", own_batch_seconds)):
                    async with vk.connect(f"{target_url}?table=own_{kind}_{round_}") as own:
                        spent = 0.0
                        for start in range(0, n, batch):
                            records = make_records(start, min(batch, n - start), dim)
                            rows = records if kind == "records" else vk.RecordBatch.from_records(records)
                            began = time.perf_counter()
                            await own.bulk_create(rows)
                            spent += time.perf_counter() - began
                        spent_list.append(spent)
                        await own.drop()
                async with vk.connect(f"{target_url}?table=migrated_{round_}") as copied:  # opened untimed, like own
                    before = settle()
                    with PeakSampler(interval=0.05) as peak:
                        began = time.perf_counter()
                        result = await migrate_between_stores(source, copied, batch_size=batch,
                                                              checkpoint=tmp / "checkpoint.json")
                        migrate_seconds.append(time.perf_counter() - began)
                    growth.append((peak.peak - before) / MIB)
                    assert await copied.count() == n == result.written_records, "the migration lost records"
                    probe = [f"r{i:08d}" for i in (0, n // 2, n - 1)]
                    assert await copied.bulk_read(probe) == await source.bulk_read(probe), "records changed"
                    await copied.drop()
        # medians over the rounds; each round's migration is compared with the insert run just before it
        rates = {"source_insert": n / source_seconds, "target_insert": n / statistics.median(own_seconds),
                 "target_insert_batch": n / statistics.median(own_batch_seconds),
                 "migrate": n / statistics.median(migrate_seconds)}
        paired = statistics.median(own / moved for own, moved in zip(own_seconds, migrate_seconds, strict=True))
        source_is_slower = rates["source_insert"] < rates["target_insert"]
        vs_slower = rates["migrate"] / rates["source_insert"] if source_is_slower else paired
        return {"n": n, "dim": dim, "batch": batch, "repeats": repeats, "source": source_url.split("://")[0],
                "target": target_url.split("://")[0], "records_per_s": rates,
                "target_insert_s": own_seconds, "target_insert_batch_s": own_batch_seconds,
                "migrate_s": migrate_seconds,
                "ratio_vs_target_insert": paired, "ratio_vs_slower_store": vs_slower, "target_ratio": 0.8,
                "ratio_vs_target_batch_insert": statistics.median(
                    own / moved for own, moved in zip(own_batch_seconds, migrate_seconds, strict=True)),
                "memory_growth_mib": max(growth)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    rows = []
    for n in args.n or [10_000]:
        one = subprocess.run(
            [sys.executable, "-m", "benchmarks.sync_bench", "_migrate_one", "-n", str(n), "-d", str(args.dim),
             "--batch", str(args.batch), "--source", args.source, "--target", args.target,
             "--repeats", str(args.repeats)],
            capture_output=True, text=True, check=False, env={**os.environ, "VECTORKNOBS_PLUGINS": "faiss,pgvector"})
        if one.returncode != 0:
            print(one.stderr, file=sys.stderr)
            return one.returncode
        rows.append(json.loads(one.stdout.strip().splitlines()[-1]))
        print(f"n={n}: {json.dumps(rows[-1])}", file=sys.stderr)
    report = {"schema": SCHEMA, "benchmark": "migrate", "machine": machine(), "runs": rows}
    write(report, args.out or OUT_DIR / f"sync-migrate-{rows[0]['source']}-to-{rows[0]['target']}.json")
    print("| records | dim | source insert/s | target insert/s (Records) | target insert/s (RecordBatch) | migrate/s | "
          "vs slower store (target >= 0.8) | vs target's RecordBatch insert | memory growth |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        rate = r["records_per_s"]
        print(f"| {r['n']:,} | {r['dim']} | {rate['source_insert']:,.0f} | {rate['target_insert']:,.0f} | "
              f"{rate['target_insert_batch']:,.0f} | {rate['migrate']:,.0f} | {r['ratio_vs_slower_store']:.2f} | "
              f"{r['ratio_vs_target_batch_insert']:.2f} | {r['memory_growth_mib']:.1f} MiB |")
    return 0


# -- sync -------------------------------------------------------------------------------------------------


async def sync_run(n: int, store_url: str, embedder_name: str, batch: int, repeats: int) -> dict[str, Any]:
    fn = resolve_embedder(embedder_name)
    texts = [f"document {i} about topic {i % 97} and subject {i % 13}" for i in range(n)]
    await embed(fn, texts[:batch])  # warm up (a model loads on first use)
    alone, synced, inside = [], [], []
    for _ in range(repeats):  # alternate: both see the same machine load
        began = time.perf_counter()
        for start in range(0, n, batch):
            await embed(fn, texts[start:start + batch])
        alone.append(time.perf_counter() - began)
        tmp = Path(tempfile.mkdtemp(prefix="vk-sync-bench-"))
        try:
            url = expand(store_url, tmp, "store")
            async with vk.connect(url) as store:
                for start in range(0, n, 5000):
                    await store.bulk_create(make_records(start, min(5000, n - start), 0, with_vectors=False))
                sync = VectorTextSynchronizer(store, fn, "text", batch_size=batch)
                began = time.perf_counter()
                result = await sync.bulk_sync()
                synced.append(time.perf_counter() - began)
                inside.append(result.embed_seconds)
                assert result.embedded == n, result
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    paired = statistics.median(s / a - 1 for a, s in zip(alone, synced, strict=True))
    return {"n": n, "store": url.split("://")[0], "embedder": embedder_name, "batch": batch, "repeats": repeats,
            "embedder_alone_s": alone, "bulk_sync_s": synced, "embed_seconds_inside_sync": inside,
            "overhead": paired, "target_overhead": 0.10}


def cmd_sync(args: argparse.Namespace) -> int:
    rows = [asyncio.run(sync_run(n, args.store, args.embedder, args.batch, args.repeats)) for n in args.n or [10_000]]
    report = {"schema": SCHEMA, "benchmark": "sync", "machine": machine(), "runs": rows}
    write(report, args.out or OUT_DIR / f"sync-bulk-sync-{rows[0]['store']}-{args.embedder}.json")
    print("| records | store | embedder | embedder alone | bulk_sync | overhead (target <= 10%) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['n']:,} | {r['store']} | {r['embedder']} | {statistics.median(r['embedder_alone_s']):.2f} s | "
              f"{statistics.median(r['bulk_sync_s']):.2f} s | {r['overhead']:+.1%} |")
    return 0


# -- plumbing ---------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
            "note": "shared 2-core machine: other work may run at the same time"}


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("migrate", "_migrate_one"):
        migrate = sub.add_parser(name, help="migration rate and memory, per store size" if name == "migrate" else None)
        migrate.add_argument("-n", type=int, action="append", help="records (repeatable; default 10000)")
        migrate.add_argument("-d", "--dim", type=int, default=8)
        migrate.add_argument("--batch", type=int, default=1000)
        migrate.add_argument("--source", default="faiss://{tmp}")
        migrate.add_argument("--target", default="pgvector+embedded://{tmp}")
        migrate.add_argument("--repeats", type=int, default=3, help="rounds of target insert, then migration (medians)")
        migrate.add_argument("--out", type=Path)
    sync = sub.add_parser("sync", help="bulk_sync against the embedder alone")
    sync.add_argument("-n", type=int, action="append", help="records (repeatable; default 10000)")
    sync.add_argument("--store", default="faiss://{tmp}")
    sync.add_argument("--embedder", default="hash")
    sync.add_argument("--batch", type=int, default=256)
    sync.add_argument("--repeats", type=int, default=3, help="rounds of embedder alone, then bulk_sync (medians)")
    sync.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "_migrate_one":
        print(json.dumps(asyncio.run(migrate_one(args.n[0], args.dim, args.batch, args.source, args.target,
                                                 args.repeats))))
        return 0
    return cmd_migrate(args) if args.command == "migrate" else cmd_sync(args)


if __name__ == "__main__":
    sys.exit(main())

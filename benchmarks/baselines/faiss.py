"""Raw faiss: the index the store URL asks for, built and searched with faiss directly.

Insert: ``index.add`` per batch (vectors L2-normalised first for cosine, as any faiss user must) plus the
record fields written plainly — JSON lines to a file and kept in Python lists for results (default), or
rows in SQLite that searches read the hits back from (``--raw-option fields=sqlite``, the classic
faiss + SQLite pairing) — fsync'd once at the end. Search: ``index.search`` on one vector, or on the whole
batch matrix; filtered search evaluates the filter with numpy and passes an ``IDSelectorBatch`` to the
search (faiss's pre-filter). Each search maps labels to record ids and fetches the hits' text, as an
application would.

Index and parameters mirror the store URL (``index=flat|ivf|hnsw|auto``, ``m``, ``ef_construction``,
``ef_search``, ``nlist``, ``nprobe``) with the store's own defaults; a store that is not faiss (e.g. the
exact ``memory://``) is mirrored by a flat index. ``--raw-option key=value`` overrides any of them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks.sides import Batch, SideContext

NAME = "faiss"
REQUIRES = ("faiss",)
SCHEMES = ("faiss",)  # store schemes this is the raw client of (the targets apply to those runs)

# Used only when the store does not declare the option itself (e.g. a non-faiss store URL); the rules
# below follow the faiss store's documented option semantics (nlist=0, nprobe=0, index=auto).
FALLBACK: dict[str, Any] = {
    "index": "flat", "m": 16, "ef_construction": 200, "ef_search": 64, "nlist": 0, "nprobe": 0,
    "quantizer": "none", "pq_m": 0, "flat_limit": 10_000, "ivf_limit": 1_000_000,
}
INT_OPTIONS = ("m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "flat_limit", "ivf_limit")
TRAIN_PER_CENTROID = 39
MIN_TRAIN = 1_000


def auto_nlist(n: int) -> int:
    """IVF lists when nlist=0: 4 * sqrt(n), at most n / 39, at least 1."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // TRAIN_PER_CENTROID))


def auto_nprobe(nlist: int) -> int:
    """IVF lists probed when nprobe=0: max(8, nlist / 16), at most nlist."""
    return min(nlist, max(8, nlist // 16))


def auto_pq_m(dims: int) -> int:
    return max(m for m in range(1, max(1, dims // 4) + 1) if dims % m == 0)


def resolve(ctx: SideContext) -> dict[str, Any]:
    """The index kind and parameters this baseline builds, from the store's settings and overrides."""
    spec: dict[str, Any] = dict(FALLBACK)
    settings = ctx.store_settings if ctx.store_scheme.startswith("faiss") else {}
    spec.update({k: v for k, v in settings.items() if k in FALLBACK and v is not None})
    spec.update(fields="jsonl", fsync="true")
    for key, value in ctx.options.items():
        if key in INT_OPTIONS:
            spec[key] = int(value)
        elif key in ("index", "quantizer", "fields", "fsync"):
            spec[key] = value.lower()
        else:
            raise ValueError(f"unknown faiss baseline option {key!r}")
    kind = spec["index"] = str(spec["index"]).lower()
    if kind == "auto":
        n = ctx.n
        kind = spec["index"] = "flat" if n < spec["flat_limit"] else "ivf" if n <= spec["ivf_limit"] else "hnsw"
        spec["auto"] = True
    if kind == "flat":
        spec["quantizer"] = "none"
    if kind == "ivf":
        spec["nlist"] = int(spec["nlist"]) or auto_nlist(ctx.n)
        spec["nprobe"] = int(spec["nprobe"]) or auto_nprobe(spec["nlist"])
    if spec["quantizer"] == "pq":
        spec["pq_m"] = int(spec["pq_m"]) or auto_pq_m(ctx.dim)
    codec = {"none": "Flat", "sq8": "SQ8", "pq": f"PQ{spec['pq_m']}"}[spec["quantizer"]]
    if kind == "ivf":
        spec["factory"] = f"IVF{spec['nlist']},{codec}"
    elif kind == "hnsw":
        spec["factory"] = f"HNSW{spec['m']}" + ("" if spec["quantizer"] == "none" else f"_{codec}")
    elif kind == "flat":
        spec["factory"] = "Flat"
    else:
        raise ValueError(f"faiss baseline: unknown index kind {kind!r}")
    needs = [0]
    if kind == "ivf":
        needs.append(max(MIN_TRAIN, TRAIN_PER_CENTROID * spec["nlist"]))
    if spec["quantizer"] == "sq8":
        needs.append(MIN_TRAIN)
    if spec["quantizer"] == "pq":
        needs.append(TRAIN_PER_CENTROID * 256)
    spec["train_size"] = min(ctx.n, max(needs))
    spec["fsync"] = spec["fsync"] in ("1", "true", "yes")
    for key in ("flat_limit", "ivf_limit"):
        spec.pop(key, None)
    if kind != "hnsw":
        for key in ("m", "ef_construction", "ef_search"):
            spec.pop(key, None)
    if kind != "ivf":
        spec.pop("nlist", None)
        spec.pop("nprobe", None)
    return spec


class FaissBaseline:
    def __init__(self, ctx: SideContext) -> None:
        import faiss

        self.faiss = faiss
        self.ctx = ctx
        self.spec = resolve(ctx)
        self.cosine = ctx.metric == "cosine"
        self.faiss_metric = faiss.METRIC_L2 if ctx.metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index: Any = None
        self.ids: list[str] = []
        self.text: list[str] = []
        self.category: list[np.ndarray] = []  # per-batch code arrays until finish_insert
        self.codes: np.ndarray = np.zeros(0, dtype=np.int32)
        self.code_of: dict[Any, int] = {}
        self.pending: list[np.ndarray] = []  # IVF: vectors held back until there are enough to train
        self.pending_rows = 0
        self.rows = 0
        self.file: Any = None
        self.db: sqlite3.Connection | None = None
        self.local = threading.local()  # concurrent searches: a SQLite connection per search thread
        self.pool: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        faiss, d, spec = self.faiss, self.ctx.dim, self.spec
        self.index = faiss.index_factory(d, spec["factory"], self.faiss_metric)
        if spec["index"] == "hnsw":
            self.index.hnsw.efConstruction = int(spec["ef_construction"])
            self.index.hnsw.efSearch = int(spec["ef_search"])
        if spec["index"] == "ivf":
            self.index.nprobe = int(spec["nprobe"])
        workdir = self.ctx.workdir
        if spec["fields"] == "jsonl":
            self.file = (workdir / "records.jsonl").open("w", encoding="utf-8")
        elif spec["fields"] == "sqlite":
            self.db = sqlite3.connect(workdir / "records.sqlite")
            self.db.execute("CREATE TABLE records (row INTEGER PRIMARY KEY, id TEXT UNIQUE, text TEXT, "
                            "category TEXT, price REAL)")
        elif spec["fields"] != "none":
            raise ValueError("faiss baseline: fields must be jsonl, sqlite or none")

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        if self.file is not None:
            self.file.close()
        if self.db is not None:
            self.db.close()

    # -- insert ---------------------------------------------------------------------------------
    async def insert(self, batch: Batch) -> None:
        vectors = batch.vectors  # the batch owns it: normalising in place is what a faiss user does
        if self.cosine:
            self.faiss.normalize_L2(vectors)
        if not self.index.is_trained:  # IVF / quantizers: train once on the first train_size vectors
            self.pending.append(vectors)
            self.pending_rows += len(vectors)
            if self.pending_rows >= self.spec["train_size"]:
                self._train_and_flush()
        else:
            self.index.add(vectors)
        start = self.rows
        self.rows += len(batch)
        text, category, price = batch.columns["text"], batch.columns["category"], batch.columns["price"]
        if self.db is None:  # fields=sqlite keeps them only in the database
            self.ids.extend(batch.ids)
            self.text.extend(text)
        code_of = self.code_of
        self.category.append(np.fromiter((code_of.setdefault(c, len(code_of)) for c in category),
                                         dtype=np.int32, count=len(category)))
        if self.file is not None:
            self.file.write("".join(
                json.dumps({"id": i, "text": t, "category": c, "price": p}, ensure_ascii=False) + "\n"
                for i, t, c, p in zip(batch.ids, text, category, price, strict=True)
            ))
        elif self.db is not None:
            with self.db:
                self.db.executemany(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                    zip(range(start, start + len(batch)), batch.ids, text, category, price, strict=True),
                )

    def _train_and_flush(self) -> None:
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.index.train(data)
        self.index.add(data)
        self.pending, self.pending_rows = [], 0

    async def finish_insert(self) -> None:
        if self.pending:
            self._train_and_flush()
        self.codes = np.concatenate(self.category) if self.category else np.zeros(0, dtype=np.int32)
        self.category = [self.codes]
        if self.file is not None:
            self.file.flush()
            if self.spec["fsync"]:
                os.fsync(self.file.fileno())
        if self.db is not None and self.spec["fsync"]:
            self.db.commit()

    # -- search ---------------------------------------------------------------------------------
    def _prepare(self, vectors: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.ctx.dim)
        if self.cosine:
            q = q.copy()
            self.faiss.normalize_L2(q)
        return q

    def _hits(self, labels: np.ndarray, db: sqlite3.Connection | None = None) -> list[str]:
        """Record ids of the hits, with their fields fetched as an application would use them."""
        rows = [j for j in labels.tolist() if j >= 0]
        db = db or self.db
        if db is not None:  # fields live in SQLite: fetch the hit rows from there
            marks = ",".join("?" * len(rows))
            found = {r[0]: r for r in db.execute(
                f"SELECT row, id, text, category, price FROM records WHERE row IN ({marks})", rows)}
            return [found[j][1] for j in rows]
        ids, text = self.ids, self.text
        hits = [(ids[j], text[j]) for j in rows]  # id and source text, like a search result
        return [h[0] for h in hits]

    async def search(self, vector: np.ndarray, k: int) -> list[str]:
        _, labels = self.index.search(self._prepare(vector), k)
        return self._hits(labels[0])

    async def search_concurrent(self, vector: np.ndarray, k: int) -> list[str]:
        """``search`` as an async application serving many requests runs faiss: on a thread pool, one per
        core, each thread on one OpenMP thread (faiss releases the GIL)."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                           initializer=lambda: self.faiss.omp_set_num_threads(1))
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._search_in_thread, vector, k)

    def _search_in_thread(self, vector: np.ndarray, k: int) -> list[str]:
        db = None
        if self.db is not None:
            db = getattr(self.local, "db", None)
            if db is None:
                db = self.local.db = sqlite3.connect(self.ctx.workdir / "records.sqlite")
        _, labels = self.index.search(self._prepare(vector), k)
        return self._hits(labels[0], db)

    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        _, labels = self.index.search(self._prepare(vectors), k)
        return [self._hits(row) for row in labels]

    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        faiss = self.faiss
        mask = np.ones(len(self.codes), dtype=bool)
        for name, value in where.items():
            if name != "category":
                raise ValueError(f"faiss baseline filters on category only, not {name!r}")
            code = self.code_of.get(value, -1)
            mask &= self.codes == code
        selector = faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64))
        kind = self.spec["index"]
        if kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(sel=selector, efSearch=int(self.spec["ef_search"]))
        elif kind == "ivf":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=int(self.spec["nprobe"]))
        else:
            params = faiss.SearchParameters(sel=selector)
        _, labels = self.index.search(self._prepare(vector), k, params=params)
        return self._hits(labels[0])

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": "raw", "name": NAME, "faiss_version": self.faiss.__version__}
        info.update({k: v for k, v in self.spec.items()})
        info["metric"] = self.ctx.metric + (" (normalised vectors, inner product)" if self.cosine else "")
        if self.index is not None:
            info["ntotal"] = int(self.index.ntotal)
            info["omp_threads"] = int(self.faiss.omp_get_max_threads())
        return info


def create(ctx: SideContext) -> FaissBaseline:
    return FaissBaseline(ctx)



"""Raw chromadb: the collection, inserts and queries a Chroma user writes by hand.

Insert: ``collection.add`` per batch with the ids, the float32 embeddings, the text as the document and
``{"category": ..., "price": ...}`` as metadata (Chroma's own way of keeping text beside vectors). Search:
``collection.query(query_embeddings=[v], n_results=k)`` with Chroma's default ``include`` (documents,
metadatas, distances: the hits' text, as an application reads it); a batch is one ``query`` with every
query vector (Chroma's batch API); filtered search passes ``where={"category": value}``.

Client and collection mirror the store URL: ``chroma://{tmp}`` gets a ``PersistentClient`` in the side's work
directory (its calls made directly: a raw user of the synchronous client does not add threads);
``chroma+http://host:port/...`` an ``AsyncHttpClient`` on the same server, in a collection named after the
store's with ``-raw`` appended. The HNSW space follows the metric (cosine, l2, ip) and the parameters are
the store's (``ef_construction``, ``ef_search``, ``max_neighbors``, ``sync_threshold``, ``resize_factor``).
``--raw-option key=value`` overrides any of those.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from benchmarks.sides import Batch, SideContext

NAME = "chroma"
REQUIRES = ("chromadb",)
SCHEMES = ("chroma", "chroma+http")
TARGETS = (  # (id, what, ratio key, op, threshold): the targets for the Chroma store
    ("insert", "bulk insert store / raw collection.add", "insert_records_per_second", ">=", 0.9),
    ("single_qps", "k=10 search throughput store / raw collection.query", "single_qps", ">=", 0.9),
)
SPACES = {"cosine": "cosine", "euclidean": "l2", "dot_product": "ip"}
HNSW: dict[str, Any] = {"ef_construction": 100, "ef_search": 100, "max_neighbors": 16, "sync_threshold": 1000,
                        "resize_factor": 1.2}


def resolve(ctx: SideContext) -> dict[str, Any]:
    """The HNSW parameters and collection this baseline uses, from the store's settings and overrides."""
    spec: dict[str, Any] = dict(HNSW)
    if ctx.store_scheme in SCHEMES:
        spec.update({k: v for k, v in ctx.store_settings.items() if k in HNSW and v is not None})
    spec["collection"] = f"{ctx.store_settings.get('collection') or 'vectorknobs'}-raw"
    for key, value in ctx.options.items():
        if key not in (*HNSW, "collection"):
            raise ValueError(f"unknown chroma baseline option {key!r}")
        spec[key] = value if key == "collection" else type(HNSW[key])(value)
    return spec


class ChromaBaseline:
    def __init__(self, ctx: SideContext) -> None:
        import chromadb

        self.chromadb = chromadb
        self.ctx = ctx
        self.spec = resolve(ctx)
        parts = urlsplit(ctx.store_url)
        self.http = ctx.store_scheme == "chroma+http"
        if self.http:
            path = (parts.path or "").strip("/")
            self.spec["collection"] = f"{path}-raw" if path else self.spec["collection"]
        self.host, self.port = parts.hostname or "localhost", parts.port or 8000
        self.client: Any = None
        self.collection: Any = None

    async def open(self) -> None:
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.http:
            self.client = await self.chromadb.AsyncHttpClient(host=self.host, port=self.port, settings=settings)
        else:
            self.client = self.chromadb.PersistentClient(path=str(self.ctx.workdir / "chroma"), settings=settings)
        hnsw = {"space": SPACES[self.ctx.metric], **{k: self.spec[k] for k in HNSW}}
        create = self.client.create_collection(self.spec["collection"], configuration={"hnsw": hnsw},
                                               embedding_function=None)
        self.collection = await create if self.http else create

    async def close(self) -> None:
        if self.http:
            await self.client.delete_collection(self.spec["collection"])
        elif self.client is not None:
            self.client.close()

    async def _call(self, method: str, **kwargs: Any) -> Any:
        result = getattr(self.collection, method)(**kwargs)
        return await result if self.http else result

    async def insert(self, batch: Batch) -> None:
        text, category, price = batch.columns["text"], batch.columns["category"], batch.columns["price"]
        await self._call(
            "add", ids=batch.ids, embeddings=batch.vectors, documents=text,
            metadatas=[{"category": c, "price": p} for c, p in zip(category, price, strict=True)],
        )

    async def finish_insert(self) -> None:
        """Chroma applies each add before it returns; nothing is pending."""

    @staticmethod
    def _hits(result: Any, row: int) -> list[str]:
        documents = result["documents"][row]
        return [i for i, _ in zip(result["ids"][row], documents, strict=True)]  # id and text, like a result

    async def search(self, vector: np.ndarray, k: int) -> list[str]:
        return self._hits(await self._call("query", query_embeddings=vector[None, :], n_results=k), 0)

    async def search_concurrent(self, vector: np.ndarray, k: int) -> list[str]:
        """Searches from many tasks at once: the HTTP client's calls as they are, the embedded (synchronous)
        client's on threads, as an async application must run them."""
        if self.http:
            return await self.search(vector, k)
        result = await asyncio.to_thread(self.collection.query, query_embeddings=vector[None, :], n_results=k)
        return self._hits(result, 0)

    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        result = await self._call("query", query_embeddings=vectors, n_results=k)
        return [self._hits(result, row) for row in range(len(vectors))]

    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        result = await self._call("query", query_embeddings=vector[None, :], n_results=k, where=where)
        return self._hits(result, 0)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": "raw", "name": NAME, "chromadb_version": self.chromadb.__version__,
                                "mode": "http" if self.http else "embedded", "index": "hnsw",
                                "space": SPACES[self.ctx.metric], **self.spec, "m": self.spec["max_neighbors"]}
        return info


def create(ctx: SideContext) -> ChromaBaseline:
    return ChromaBaseline(ctx)

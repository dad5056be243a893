"""langchain-postgres's ``PGVector`` (psycopg 3, SQLAlchemy) on the same PostgreSQL + pgvector server.

What a LangChain user would write for the same rows: ``add_embeddings(texts, embeddings, metadatas, ids)``
per batch with precomputed embeddings (a list of lists, as LangChain's API takes them; the ``Embeddings``
object is never called), ``similarity_search_by_vector`` for searches (a batch is the queries one after
another: the API is synchronous) and ``filter={"category": value}``. Its own tables
(``langchain_pg_collection``, ``langchain_pg_embedding`` with a GIN index on the metadata) and no vector
index, as ``PGVector`` creates them: compare it with a store URL that has ``index=none``.

Install it in a benchmark environment only: ``pip install -r benchmarks/requirements-langchain.txt``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import numpy as np

from benchmarks.baselines.pgvector import server_for
from benchmarks.sides import Batch, SideContext

NAME = "langchain_postgres"
REQUIRES = ("langchain_postgres", "psycopg")
SCHEMES = ("pgvector", "pgvector+embedded", "postgres", "postgresql")
TARGETS = (("insert_vs_langchain", "bulk insert store / langchain-postgres PGVector", "insert_records_per_second",
            ">=", 10.0),)
STRATEGY = {"cosine": "cosine", "euclidean": "euclidean", "dot_product": "inner"}


def sqlalchemy_url(kwargs: dict[str, Any]) -> str:
    """A ``postgresql+psycopg://`` URL for asyncpg-style connect arguments (a socket directory as ?host=)."""
    user = quote(str(kwargs.get("user", "")))
    password = f":{quote(str(kwargs['password']))}" if kwargs.get("password") else ""
    host = str(kwargs.get("host", ""))
    port = kwargs.get("port", 5432)
    database = quote(str(kwargs.get("database", "postgres")))
    if host.startswith("/"):
        return f"postgresql+psycopg://{user}{password}@/{database}?host={quote(host)}&port={port}"
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{database}"


class LangchainBaseline:
    def __init__(self, ctx: SideContext) -> None:
        self.ctx = ctx
        self.server: Any = None
        self.store: Any = None
        self.collection = f"vk_bench_{ctx.store_settings.get('table', 'documents')}"

    async def open(self) -> None:
        from langchain_core.embeddings import Embeddings
        from langchain_postgres import PGVector
        from langchain_postgres.vectorstores import DistanceStrategy

        class Precomputed(Embeddings):  # type: ignore[misc]  # langchain-core is not type-checked here
            """Embeddings are given with every call; nothing is ever embedded here."""

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                raise RuntimeError("the benchmark passes precomputed embeddings")

            def embed_query(self, text: str) -> list[float]:
                raise RuntimeError("the benchmark passes precomputed embeddings")

        self.server, kwargs = server_for(self.ctx)
        self.store = PGVector(
            Precomputed(), connection=sqlalchemy_url(kwargs), embedding_length=self.ctx.dim,
            collection_name=self.collection, distance_strategy=DistanceStrategy(STRATEGY[self.ctx.metric]),
            pre_delete_collection=True, use_jsonb=True,
        )

    async def insert(self, batch: Batch) -> None:
        metadatas = [{"category": c, "price": p} for c, p in zip(batch.columns["category"], batch.columns["price"],
                                                                strict=True)]
        self.store.add_embeddings(batch.columns["text"], batch.vectors.tolist(), metadatas, batch.ids)

    async def finish_insert(self) -> None:
        """``add_embeddings`` commits each batch."""

    def _ids(self, documents: list[Any]) -> list[str]:
        return [str(d.id) for d in documents if d.page_content is not None]

    async def search(self, vector: np.ndarray, k: int) -> list[str]:
        return self._ids(self.store.similarity_search_by_vector(vector.tolist(), k=k))

    async def search_batch(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        return [await self.search(v, k) for v in vectors]

    async def search_filtered(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[str]:
        return self._ids(self.store.similarity_search_by_vector(vector.tolist(), k=k, filter=dict(where)))

    def describe(self) -> dict[str, Any]:
        import langchain_postgres

        return {"kind": "raw", "name": NAME, "langchain_postgres_version": langchain_postgres.__version__,
                "collection": self.collection, "index": "none", "metric": self.ctx.metric}

    async def close(self) -> None:
        if self.store is not None:
            self.store.delete_collection()
            self.store._engine.dispose()  # PGVector offers no close()
        if self.server is not None:
            from vectorknobs_pgvector.embedded import release_server

            release_server(self.server)


def create(ctx: SideContext) -> LangchainBaseline:
    return LangchainBaseline(ctx)

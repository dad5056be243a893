"""PostgreSQL + pgvector store for vectorknobs: ``pgvector://`` and the zero-config ``pgvector+embedded://``.

>>> import vectorknobs as vk
>>> store = await vk.connect("pgvector+embedded:///var/lib/myapp/pg?table=docs")
"""

from __future__ import annotations

import vectorknobs
from vectorknobs.plugins import StoreRegistrar

from vectorknobs_pgvector.embedded import EmbeddedServer, acquire_server, release_server
from vectorknobs_pgvector.failures import ConnectionLostError
from vectorknobs_pgvector.indexes import IndexKind, VectorIndex
from vectorknobs_pgvector.store import PgvectorStore, SearchOptions

__all__ = [
    "ConnectionLostError",
    "EmbeddedServer",
    "IndexKind",
    "PgvectorStore",
    "SearchOptions",
    "VectorIndex",
    "acquire_server",
    "register_stores",
    "release_server",
]


@vectorknobs.hookimpl
def register_stores(register: StoreRegistrar) -> None:
    register(PgvectorStore, name="pgvector", schemes=("pgvector+embedded", "postgres", "postgresql"))

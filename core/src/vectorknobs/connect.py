"""``connect``: from a config string or dict to an open store."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping
from typing import Any

from vectorknobs.config import parse_config
from vectorknobs.plugins import get_registry
from vectorknobs.store import VectorStore


class Connection:
    """Awaitable and async context manager: ``store = await connect(url)`` or ``async with connect(url) as store``."""

    def __init__(self, config: str | Mapping[str, Any]) -> None:
        self._config = config
        self._store: VectorStore | None = None

    async def _open(self) -> VectorStore:
        parsed = parse_config(self._config)
        registry = get_registry()
        if not registry.is_loaded:  # importing the plugins (and their engines' clients) can take seconds
            await asyncio.to_thread(registry.load)
        info = registry.store_for_scheme(parsed.scheme)
        store = info.store_class(parsed)
        await store.open()
        self._store = store
        return store

    def __await__(self) -> Generator[Any, None, VectorStore]:
        return self._open().__await__()

    async def __aenter__(self) -> VectorStore:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self._store is not None:
            await self._store.close()


def connect(config: str | Mapping[str, Any]) -> Connection:
    """Open the store a config names: ``await connect("memory://")``, ``connect({"backend": "faiss", ...})``."""
    return Connection(config)

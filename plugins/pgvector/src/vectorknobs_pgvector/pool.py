"""The asyncpg pool of one store: binary codecs for pgvector's types, and session settings kept per connection.

Connections keep their session (``SET``) state between uses: the pool's reset only rolls back, so a search
sends ``hnsw.ef_search`` or ``ivfflat.probes`` only when the connection has another value, and a default
search is a single round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from vectorknobs_pgvector.failures import is_connection_failure
from vectorknobs_pgvector.rows import decode_halfvec, decode_vector, encode_halfvec, encode_vector

EXTENSION_SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
)


@dataclass
class SessionState:
    settings: dict[str, str] = field(default_factory=dict)
    codecs: bool = False


class Connection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection that remembers its session settings and whether it knows pgvector's types."""

    __slots__ = ("vk_state",)


def state_of(conn: Any) -> SessionState:
    state: SessionState = conn.vk_state
    return state


async def register_codecs(conn: Any) -> bool:
    """Teach ``conn`` pgvector's binary formats; False when the extension is not installed."""
    schema = await conn.fetchval(EXTENSION_SCHEMA)
    if schema is None:
        return False
    await conn.set_type_codec("vector", schema=schema, encoder=encode_vector, decoder=decode_vector, format="binary")
    await conn.set_type_codec("halfvec", schema=schema, encoder=encode_halfvec, decoder=decode_halfvec,
                              format="binary")
    state_of(conn).codecs = True
    return True


def initializer(settings: Mapping[str, str]) -> Any:
    async def init(conn: Any) -> None:
        conn.vk_state = SessionState(dict(settings))
        await register_codecs(conn)

    return init


async def keep_session(conn: Any) -> None:
    """The pool's reset: asyncpg has already rolled back an open transaction; keep the session settings."""


async def apply_settings(conn: Any, wanted: Mapping[str, str]) -> None:
    """``SET`` what differs from the connection's current session settings (one round trip, or none)."""
    state = state_of(conn)
    changes = {name: value for name, value in wanted.items() if state.settings.get(name) != value}
    if not changes:
        return
    args: list[str] = []
    calls = []
    for name, value in changes.items():
        args += [name, value]
        calls.append(f"set_config(${len(args) - 1}, ${len(args)}, false)")
    await conn.execute(f"SELECT {', '.join(calls)}", *args)
    state.settings.update(changes)


class ReadLane:
    """A connection of the store's own, beside the pool, for reads, used by one read at a time.

    Taking a connection from asyncpg's pool and giving it back costs more client time than a k=10 index search
    takes on the server (each release runs in a shielded task of its own, and every call on a pooled
    connection goes through a proxy). A read that finds the lane free uses its connection directly; one that
    finds it busy takes a pooled connection as usual. A lane connection whose read is cancelled or loses the
    server is closed, and the next read opens another.
    """

    def __init__(self, pool: Any, connect: Callable[[], Awaitable[Any]]) -> None:
        self._pool = pool
        self._connect = connect
        self._conn: Any = None
        self._busy = False
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self._busy or self._closed:
            async with self._pool.acquire() as pooled:
                yield pooled
            return
        self._busy = True
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._connect()
            conn = self._conn
            try:
                yield conn
            except BaseException as err:
                if not isinstance(err, asyncpg.PostgresError) or is_connection_failure(err):
                    self._conn = None  # mid-query (cancelled), or broken: never used again
                    conn.terminate()
                raise
        finally:
            self._busy = False
            if self._closed:
                await self.close()

    async def close(self) -> None:
        """Close the connection (a read still using it closes it when it is done)."""
        self._closed = True
        if self._conn is not None and not self._busy:
            conn, self._conn = self._conn, None
            try:
                await asyncio.wait_for(conn.close(), timeout=10)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()


def is_open(conn: Any) -> bool:
    """Is this pooled connection still checked out and open? (asyncpg releases a pooled connection by itself
    when it closes, after which every call on it raises.)"""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # released back to the pool
        return False

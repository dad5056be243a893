"""One async interface over Chroma's two clients, with Chroma's errors as vectorknobs errors.

* embedded: ``chromadb.PersistentClient`` on a directory. It is synchronous, so every call runs in a
  worker thread. Its Rust core holds the GIL for the whole of a call (chromadb 1.5), so a long call stalls
  the event loop all the same: bulk writes go in chunks of ``write_batch_size`` records, which bounds each
  stall.
* http: ``chromadb.AsyncHttpClient`` of a ``chroma run`` server, each request bounded by ``timeout``. One
  client per server and tenant is shared by the stores of a process (chromadb keeps every client it
  creates for the life of the process).

Requests with many ids, and bulk writes, are split at Chroma's maximum batch size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import chromadb
import httpx
import numpy as np
import numpy.typing as npt
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError
from vectorknobs import ConfigError, DimensionMismatchError, InvalidRecordError, StoreError, VectorknobsError
from vectorknobs._fs import DirectoryLock

T = TypeVar("T")
Metadata = dict[str, Any] | None


def _settings() -> Settings:
    return Settings(anonymized_telemetry=False)  # a store should not phone home on the user's behalf


@dataclass(frozen=True)
class Entries:
    """What ``get`` and ``query`` return: ids, and metadatas / embeddings / (query) distances when asked for
    (else empty)."""

    ids: list[str]
    metadatas: list[Metadata]
    embeddings: npt.NDArray[np.float64] | list[Any]
    distances: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@contextlib.contextmanager
def translated(action: str, where: str, *, writing: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Raise what fails inside as a vectorknobs error about ``action`` on ``where``."""
    try:
        yield
    except VectorknobsError:
        raise
    except NotFoundError as err:
        raise StoreError(
            f"{action} on {where}: {err}; another client deleted this store's collection, connect again"
        ) from err
    except ChromaError as err:
        if "dimension" in str(err).lower():
            raise DimensionMismatchError(f"{action} on {where}: {err}") from err
        raise StoreError(f"{action} on {where} failed: {type(err).__name__}: {err}") from err
    except (TimeoutError, httpx.TimeoutException) as err:
        raise StoreError(
            f"{action} on {where}: no answer from the Chroma server within {timeout} s (option timeout)"
        ) from err
    except (httpx.TransportError, OSError) as err:
        raise StoreError(
            f"{action}: cannot reach the Chroma server at {where} ({type(err).__name__}: {err}); start it "
            "(chroma run --path DIR --host HOST --port PORT) or check the URL"
        ) from err
    except (ValueError, TypeError) as err:
        if writing:
            raise InvalidRecordError(f"{action} on {where}: Chroma refused a value: {err}") from err
        raise StoreError(f"{action} on {where} failed: {err}") from err


@contextlib.contextmanager
def _tenant_check(where: str) -> Iterator[None]:
    try:
        yield
    except NotFoundError as err:  # the only thing a new client looks up
        raise ConfigError(f"{where}: {err}; create it first, or fix the options tenant / database") from err


class Chroma:
    """A connection: ``await Chroma.embedded(path, ...)`` or ``await Chroma.http(host, port, ...)``."""

    def __init__(
        self,
        client: Any,
        where: str,
        *,
        in_process: bool,
        timeout: float | None,
        max_batch: int,
        write_batch: int,
        release: Callable[[], None] = lambda: None,
        lock: _SharedLock | None = None,
    ) -> None:
        self.client = client
        self.where = where
        self.in_process = in_process
        self.timeout = timeout
        self.max_batch = max_batch
        self.write_batch = min(write_batch, max_batch)
        self._release = release
        self._lock = lock

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    async def embedded(cls, path: Path, tenant: str, database: str, write_batch: int) -> Chroma:
        where = f"chroma://{path}"
        with translated("open", where):
            lock = await asyncio.to_thread(_process_lock, path)
        try:
            with translated("open", where), _tenant_check(where):
                client: Any = await asyncio.to_thread(
                    chromadb.PersistentClient,
                    path=str(path),
                    settings=_settings(),
                    tenant=tenant,
                    database=database,
                )
                max_batch = await asyncio.to_thread(client.get_max_batch_size)
        except BaseException:
            lock.release()
            raise

        def release() -> None:
            client.close()
            lock.release()

        return cls(client, where, in_process=True, timeout=None, max_batch=max_batch, write_batch=write_batch,
                   release=release, lock=lock)

    @classmethod
    async def http(
        cls, host: str, port: int, *, ssl: bool, tenant: str, database: str, seconds: float, write_batch: int
    ) -> Chroma:
        where = f"{'https' if ssl else 'http'}://{host}:{port}"
        key = (host, port, ssl, tenant, database)
        with translated("connect", where, timeout=seconds):
            client: Any = _HTTP_CLIENTS.get(key)
            if client is None:
                with _tenant_check(where):
                    client = await asyncio.wait_for(
                        chromadb.AsyncHttpClient(
                            host=host,
                            port=port,
                            ssl=ssl,
                            tenant=tenant,
                            database=database,
                            settings=_settings(),
                        ),
                        seconds,
                    )
                client = _HTTP_CLIENTS.setdefault(key, client)
            max_batch = await asyncio.wait_for(client.get_max_batch_size(), seconds)
        return cls(client, where, in_process=False, timeout=seconds, max_batch=max_batch, write_batch=write_batch)

    @property
    def shared(self) -> bool:
        """May others write this data meanwhile? Other clients of a server may; of a directory, only other
        stores of this process (``_process_lock`` keeps other processes out)."""
        return self._lock is None or self._lock.shared()

    async def close(self) -> None:
        if self.in_process:
            await asyncio.to_thread(self._release)

    # -- calls --------------------------------------------------------------------------------------
    async def call(self, action: str, method: Callable[..., Any], /, *, writing: bool = False, **kwargs: Any) -> Any:
        """``method(**kwargs)`` of the client or a collection: in a thread (embedded) or awaited (http)."""
        with translated(action, self.where, writing=writing, timeout=self.timeout):
            if self.in_process:
                return await asyncio.to_thread(method, **kwargs)
            result: Awaitable[Any] = method(**kwargs)
            return await asyncio.wait_for(result, self.timeout)

    async def collection(
        self, name: str, configuration: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> Collection:
        """The collection ``name``, created (with ``configuration`` and ``metadata``) if missing."""
        raw = await self.call(
            f"open collection {name}",
            self.client.get_or_create_collection,
            name=name,
            configuration=configuration,
            metadata=metadata,
            embedding_function=None,
        )
        return Collection(self, name, raw)

    async def existing(self, name: str) -> Collection | None:
        try:
            raw = await self.call(
                f"open collection {name}", self.client.get_collection, name=name, embedding_function=None
            )
        except StoreError as err:
            if isinstance(err.__cause__, NotFoundError):
                return None
            raise
        return Collection(self, name, raw)

    async def names(self) -> list[str]:
        collections = await self.call("list collections", self.client.list_collections)
        return [c.name for c in collections]

    async def delete(self, name: str) -> None:
        with contextlib.suppress(StoreError):  # already gone
            await self.call(f"delete collection {name}", self.client.delete_collection, name=name)


class Collection:
    """One Chroma collection: reads, k-nearest queries and writes, split at Chroma's batch limits."""

    def __init__(self, chroma: Chroma, name: str, raw: Any) -> None:
        self.chroma = chroma
        self.name = name
        self.raw = raw
        self._pending: dict[tuple[int, str, tuple[str, ...]], tuple[list[Any], list[asyncio.Future[Entries]]]] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def configuration(self) -> dict[str, Any]:
        return dict(self.raw.configuration or {})

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.raw.metadata or {})

    async def count(self) -> int:
        return int(await self.chroma.call(f"count {self.name}", self.raw.count))

    async def get(
        self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None, include: Sequence[str] = ()
    ) -> Entries:
        """Entries by id and/or ``where`` (all of them with neither), in Chroma's order."""
        if ids is not None and not ids:
            return Entries([], [], [])
        chunks = [None] if ids is None else list(_chunks(list(ids), self.chroma.max_batch))
        parts = [
            await self.chroma.call(f"read {self.name}", self.raw.get, ids=chunk, where=where, include=list(include))
            for chunk in chunks
        ]
        return _merge([_entries(p, include) for p in parts], include)

    async def query(
        self,
        vector: npt.NDArray[np.float32],
        n: int,
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        include: Sequence[str] = (),
    ) -> Entries:
        """The ``n`` entries nearest ``vector`` (Chroma's HNSW), among ``ids`` and ``where`` if given.

        Concurrent queries with the same ``n``, ``where`` and ``include`` (``asyncio.gather`` of many
        searches, a busy server) go to Chroma as one batch query.
        """
        if ids is not None:
            return (await self._query([vector], n, where, list(ids), include))[0]
        key = (n, json.dumps(where, sort_keys=True), tuple(include))
        batch = self._pending.get(key)
        if batch is None:
            batch = self._pending[key] = ([], [])
            asyncio.get_running_loop().call_soon(self._flush, key, where)
        future: asyncio.Future[Entries] = asyncio.get_running_loop().create_future()
        batch[0].append(vector)
        batch[1].append(future)
        return await future

    async def query_many(self, vectors: Sequence[npt.NDArray[np.float32]], n: int, where: dict[str, Any] | None = None,
                         include: Sequence[str] = ()) -> list[Entries]:
        """The ``n`` entries nearest each of ``vectors``, in one Chroma query."""
        return await self._query(list(vectors), n, where, None, include)

    def _flush(self, key: tuple[int, str, tuple[str, ...]], where: dict[str, Any] | None) -> None:
        vectors, futures = self._pending.pop(key)

        async def run() -> None:
            try:
                found = await self._query(vectors, key[0], where, None, key[2])
            except BaseException as err:
                for future in futures:
                    if not future.done():
                        future.set_exception(err)
                if not isinstance(err, Exception):
                    raise
                return
            for future, entries in zip(futures, found, strict=True):
                if not future.done():
                    future.set_result(entries)

        task = asyncio.ensure_future(run())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _query(
        self,
        vectors: list[npt.NDArray[np.float32]],
        n: int,
        where: dict[str, Any] | None,
        ids: list[str] | None,
        include: Sequence[str],
    ) -> list[Entries]:
        result = await self.chroma.call(
            f"search {self.name}",
            self.raw.query,
            query_embeddings=np.asarray(vectors, dtype=np.float32),
            n_results=n,
            where=where,
            ids=ids,
            include=list(include),
        )
        return [
            Entries(
                list(result["ids"][row]),
                list(result["metadatas"][row]) if "metadatas" in include else [],
                result["embeddings"][row] if "embeddings" in include else [],
                list(result["distances"][row]) if "distances" in include else [],
            )
            for row in range(len(vectors))
        ]

    async def write(
        self,
        ids: Sequence[str],
        embeddings: Sequence[npt.NDArray[np.float32]],
        metadatas: Sequence[Metadata],
        *,
        replace: bool,
    ) -> None:
        """``add`` new entries, or ``upsert`` over existing ones (``replace``), ``write_batch`` at a time."""
        method = self.raw.upsert if replace else self.raw.add
        size = self.chroma.write_batch
        for start in range(0, len(ids), size):
            end = start + size
            await self.chroma.call(
                f"write {self.name}",
                method,
                writing=True,
                ids=list(ids[start:end]),
                embeddings=np.asarray(embeddings[start:end], dtype=np.float32),
                metadatas=list(metadatas[start:end]),
            )

    async def delete(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids), self.chroma.max_batch):
            await self.chroma.call(f"delete from {self.name}", self.raw.delete, ids=chunk)


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _entries(result: Any, include: Sequence[str]) -> Entries:
    return Entries(
        list(result["ids"]),
        list(result["metadatas"]) if "metadatas" in include else [],
        result["embeddings"] if "embeddings" in include else [],
    )


def _merge(parts: list[Entries], include: Sequence[str]) -> Entries:
    if len(parts) == 1:
        return parts[0]
    embeddings: Any = []
    if "embeddings" in include:
        arrays = [p.embeddings for p in parts if len(p)]
        embeddings = np.concatenate(arrays) if arrays else []
    return Entries(
        [i for p in parts for i in p.ids],
        [m for p in parts for m in p.metadatas],
        embeddings,
    )


# -- sharing ---------------------------------------------------------------------------------------------
_HTTP_CLIENTS: dict[tuple[str, int, bool, str, str], Any] = {}  # one client per server and tenant
_LOCKS: dict[Path, tuple[DirectoryLock, int]] = {}
_LOCKS_GUARD = threading.Lock()


class _SharedLock:
    """A process's hold on a Chroma directory: taken by the first store on it, released by the last.

    Chroma's persistent client is safe to share within a process, not between processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = True

    def shared(self) -> bool:
        """Do other stores of this process hold the directory too?"""
        with _LOCKS_GUARD:
            return _LOCKS.get(self.path, (None, 0))[1] > 1

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        with _LOCKS_GUARD:
            lock, users = _LOCKS[self.path]
            if users > 1:
                _LOCKS[self.path] = (lock, users - 1)
            else:
                del _LOCKS[self.path]
                lock.release()


def _process_lock(path: Path) -> _SharedLock:
    with _LOCKS_GUARD:
        lock, users = _LOCKS.get(path, (None, 0))
        if lock is None:
            path.mkdir(parents=True, exist_ok=True)
            lock = DirectoryLock(path)
            lock.acquire()  # StoreLockedError if another process has it open
        _LOCKS[path] = (lock, users + 1)
    return _SharedLock(path)

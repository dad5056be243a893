"""A readers-writer lock for the tasks of one event loop: many readers, or one writer (who goes first)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class RWLock:
    """``async with lock.read():`` / ``async with lock.write():``. Releasing never awaits, so a task
    cancelled inside the block still releases the lock."""

    def __init__(self) -> None:
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._changed = asyncio.Event()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        await self._until(lambda: not self._writing and not self._writers_waiting)
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            self._notify()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        self._writers_waiting += 1
        try:
            await self._until(lambda: not self._writing and not self._readers)
        except BaseException:  # cancelled while waiting: readers held back for this writer may go
            self._writers_waiting -= 1
            self._notify()
            raise
        self._writers_waiting -= 1
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
            self._notify()

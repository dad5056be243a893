"""Crash-safe files for stores that persist to a directory (shared by the core and plugins)."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from vectorknobs.errors import StoreError, StoreLockedError


def atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``path`` so that a crash at any point leaves either the old or the new file, whole."""
    with atomic_file(path) as out:
        for chunk in chunks:
            out.write(chunk)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write the new content of ``path`` into; it replaces ``path`` only when the block ends.

    The data goes to a temporary file in the same directory, is fsynced, renamed over ``path``, and the
    directory is fsynced so the rename itself survives a power loss. A failure (a full disk, an error in
    the block) removes the temporary file and leaves the old file untouched; ``OSError`` becomes
    ``StoreError``.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise StoreError(f"could not write {path}: {err}; the previous copy is intact") from err
        raise


def remove_temp_files(path: Path) -> None:
    """Delete what an ``atomic_write`` of ``path`` killed mid-write left behind (a partial copy).

    Call it only while holding the directory's ``DirectoryLock``: no other writer can be mid-write then.
    """
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryLock:
    """An exclusive, process-level lock on a store directory (``flock`` on ``<dir>/.lock``).

    The kernel drops it when the process dies, so a crash never leaves a stale lock behind.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLockedError(
                f"{self.path.parent} is open for writing by process {holder}; close it there first "
                "(two writers would corrupt it)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

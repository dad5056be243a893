"""``pgvector+embedded:///path``: a private server that starts on connect, is shared and reused, stops on the
last close, and survives (or cleans up after) processes killed while they held it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs_pgvector import EmbeddedServer

pytestmark = pytest.mark.asyncio
Records = Callable[..., list[vk.Record]]

CHILD = textwrap.dedent("""
    import asyncio, sys
    import numpy as np
    import vectorknobs as vk

    async def main() -> None:
        store = await vk.connect(sys.argv[1])
        await store.upsert(vk.Record({"text": sys.argv[2], "embedding": vk.VectorField(np.ones(4))}, id=sys.argv[2]))
        print("ready", flush=True)
        if sys.argv[3] == "hold":
            await asyncio.sleep(600)  # until killed
        await store.close()

    asyncio.run(main())
""")


@pytest.fixture
def root(server_root: Path) -> Path:
    return server_root


def postmaster(root: Path) -> int | None:
    """The pid of the server running under ``root``, or None."""
    server = EmbeddedServer(root)
    if not server.is_running():
        return None
    return int((server.data / "postmaster.pid").read_text().split("\n", 1)[0])


def child(url: str, name: str, mode: str) -> subprocess.Popen[str]:
    """Another process that opens ``url``, writes a record called ``name`` and closes it (or holds it)."""
    process = subprocess.Popen([sys.executable, "-c", CHILD, url, name, mode], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


async def test_it_starts_on_connect_is_shared_and_stops_on_the_last_close(root: Path, records: Records) -> None:
    url = f"pgvector+embedded://{root}?table=docs"
    assert postmaster(root) is None
    first = await vk.connect(url)
    pid = postmaster(root)
    assert pid is not None
    assert (root / "data" / ".s.PGSQL.5432").is_socket()  # a unix socket in the data directory, and no TCP
    assert '"listen_addresses="' in (root / "data" / "postmaster.opts").read_text()
    second = await vk.connect(url)
    assert postmaster(root) == pid  # one server for both stores
    await first.bulk_create(records(20, 4))
    assert await second.count() == 20
    await first.close()
    assert postmaster(root) == pid  # the second store still uses it
    await second.close()
    assert postmaster(root) is None
    async with vk.connect(url) as again:  # started again, on the same data
        assert await again.count() == 20
        assert (await again.vector_search(np.ones(4), k=3))[0].record.fields["embedding"].dimensions == 4
    assert postmaster(root) is None


async def test_it_is_reused_across_processes(root: Path) -> None:
    url = f"pgvector+embedded://{root}?table=docs"
    child(url, "one", "close").wait(timeout=60)
    assert postmaster(root) is None  # the only user closed it: stopped
    kept = f"{url}&keep_running=true"
    child(kept, "two", "close").wait(timeout=60)
    pid = postmaster(root)
    assert pid is not None  # keep_running: still up for the next run
    child(kept, "three", "close").wait(timeout=60)
    assert postmaster(root) == pid  # joined, not restarted
    async with vk.connect(url) as store:
        assert sorted(r.key for r in await store.search()) == ["one", "three", "two"]
    assert postmaster(root) is None  # this run did not ask to keep it


async def test_a_server_left_by_a_killed_process_is_reused_then_stopped(root: Path) -> None:
    url = f"pgvector+embedded://{root}?table=docs"
    holder = child(url, "held", "hold")
    pid = postmaster(root)
    assert pid is not None
    holder.send_signal(signal.SIGKILL)  # no close(), no cleanup
    holder.wait(timeout=30)
    assert postmaster(root) == pid  # left behind, still running
    async with vk.connect(url) as store:
        assert postmaster(root) == pid  # detected and reused
        assert [r.key for r in await store.search()] == ["held"]
    assert postmaster(root) is None  # the dead holder no longer keeps it alive


async def test_a_crashed_server_is_restarted(root: Path) -> None:
    url = f"pgvector+embedded://{root}?table=docs"
    child(url, "before", "close").wait(timeout=60)
    holder = child(f"{url}&keep_running=true", "during", "close")
    holder.wait(timeout=60)
    pid = postmaster(root)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the server itself dies (say, the OOM killer), leaving postmaster.pid
    for _ in range(100):
        if postmaster(root) is None:  # dead (a zombie nobody reaps counts as dead)
            break
        await asyncio.sleep(0.05)
    async with vk.connect(url) as store:
        assert postmaster(root) not in (None, pid)
        assert sorted(r.key for r in await store.search()) == ["before", "during"]


async def test_a_data_directory_the_server_user_cannot_reach_is_refused() -> None:
    """Run as root, the server runs as the system user ``pgserver``, which cannot enter /root or any other
    private directory: the store says so and creates nothing there (and never loosens a parent's mode).
    Run as anyone else, /root is simply not writable."""
    private = Path("/tmp") / f"vkpg-private-{uuid.uuid4().hex[:8]}"
    private.mkdir(mode=0o700)
    as_root = os.geteuid() == 0
    targets = [Path("/root") / f"vkpg-{uuid.uuid4().hex[:8]}", *([private / "pg"] if as_root else [])]
    try:
        for target in targets:
            expected = f"cannot enter {target.parent}.*outside private directories" if as_root else "cannot create"
            with pytest.raises(vk.StoreError, match=expected):
                await vk.connect(f"pgvector+embedded://{target}?table=docs")
            assert not target.exists()  # nothing was created there
        assert private.stat().st_mode & 0o777 == 0o700  # and nothing was opened up
    finally:
        private.rmdir()


@pytest.fixture
def private_root(root: Path) -> Path:
    root.chmod(0o700)  # as tempfile.mkdtemp makes it
    return root


async def test_an_existing_private_directory_of_ours_is_handed_to_the_server(private_root: Path) -> None:
    async with vk.connect(f"pgvector+embedded://{private_root}?table=docs") as store:
        assert await store.count() == 0

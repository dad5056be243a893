"""Process memory as a side sees it: anonymous resident memory (heap, arenas, index buffers).

File-backed pages (the memory-mapped data set, shared libraries) are left out, so the figure is what
the side itself allocated. A background thread samples ``/proc/self/status`` to catch the peak, since
``ru_maxrss`` cannot be reset and counts file pages too (it is reported alongside for reference).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import resource
import threading
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def anon_bytes() -> int:
    """Current anonymous resident bytes (``RssAnon``), or total RSS where that line is missing."""
    fallback = 0
    for line in STATUS.read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
        if line.startswith("VmRSS:"):
            fallback = int(line.split()[1]) * 1024
    return fallback


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle() -> int:
    """Collect garbage and hand freed heap back to the OS (glibc), then read anonymous memory."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)
    time.sleep(0.05)
    return anon_bytes()


class PeakSampler:
    """``with PeakSampler() as peak: ...`` then ``peak.peak`` is the highest anonymous RSS seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, anon_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = anon_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())

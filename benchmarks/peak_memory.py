"""Peak memory of the running benchmark, sampled in a background thread.

Shared by the benchmark scripts (run as ``python benchmarks/bench_<x>.py``, so this
module is importable as ``peak_memory``).
"""

from __future__ import annotations

import threading
import time


def status_bytes(field: str) -> int:
    """A field of ``/proc/self/status`` (``VmRSS``, ``RssAnon``, ...) in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Peak resident memory (``rss``) and anonymous memory (``anon``: without mapped files).

    ``with PeakMemory() as peak: ...`` then read ``peak.rss`` / ``peak.anon`` in bytes.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self._interval = interval_s
        self.rss = 0
        self.anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sample()

    def sample(self) -> None:
        self.rss = max(self.rss, status_bytes("VmRSS"))
        self.anon = max(self.anon, status_bytes("RssAnon"))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

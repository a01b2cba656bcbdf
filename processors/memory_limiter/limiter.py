"""The ``memory_limiter`` processor: refuse new requests (retryably) while the process is above its memory limit.

Like the OpenTelemetry Collector's memory limiter it must come first in a pipeline. It acts before a request is
parsed: receivers ask it to admit each request's raw size, and it refuses when the resident set size plus that size
would pass ``limit_mib``, so clients back off instead of the process growing until it is killed.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable

from spanguard.collector.component import Backpressure, Batch, Consumer
from spanguard.processors.memory_limiter.config import MemoryLimiterConfig

_RELEASE_INTERVAL = 1.0  # seconds between garbage collections forced by the limit (each costs tens of ms)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _statm_bytes(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Collect garbage and give freed heap pages back to the OS, so resident memory shows what is really in use.

    Python's allocators keep freed memory: without this, a collector that once went over its limit would refuse
    every request from then on, however little it held.
    """
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def resident_bytes() -> int:
    """Resident memory of this process and its child processes (pipeline workers), from ``/proc`` (0 without it)."""
    total = _statm_bytes("self")
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", "rb") as children:
                total += sum(_statm_bytes(child.decode()) for child in children.read().split())
    except (OSError, ValueError):
        pass
    return total


class MemoryLimiter:
    """Admits requests while resident memory plus the request's size stays under the limit; passes batches on.

    An :class:`~spanguard.collector.component.Admission`: the service has the pipeline's receivers call :meth:`admit`.
    """

    def __init__(self, config: MemoryLimiterConfig, next_consumer: Consumer) -> None:
        self._limit = config.soft_limit_bytes
        self._hard_limit_mib = config.limit_mib
        self._interval = config.check_interval
        self._retry_after = config.retry_after
        self._next = next_consumer
        self._rss = resident_bytes()
        self._checked = time.monotonic()
        self._released = 0.0
        self._lock = threading.Lock()
        self.refused = 0

    def admit(self, request_bytes: int) -> None:
        """Raise :class:`Backpressure` when taking ``request_bytes`` more would pass the limit."""
        now = time.monotonic()
        if now - self._checked >= self._interval:
            with self._lock:
                if now - self._checked >= self._interval:
                    self._rss = resident_bytes()
                    self._checked = now
                    if self._rss + request_bytes > self._limit and now - self._released >= _RELEASE_INTERVAL:
                        release_freed_memory()
                        self._released = now
                        self._rss = resident_bytes()
        if self._rss + request_bytes > self._limit:
            self.refused += 1
            raise Backpressure(
                f"memory limit: {self._rss // 2**20} MiB in use, refusing above {self._limit // 2**20} MiB"
                f" (limit_mib {self._hard_limit_mib})",
                self._retry_after,
            )

    def consume(self, batch: Batch) -> None:
        """Pass the batch on (admission happened before parsing)."""
        self._next.consume(batch)

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Nothing to release."""

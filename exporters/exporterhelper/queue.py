"""Bounded sending queues for exporters: in memory, or persistent on local disk (SQLite, fsync'd per item).

An item leaves a queue only when it is acknowledged (:meth:`SendingQueue.ack`: sent, or failed for good); workers
take items with :meth:`SendingQueue.get` and hand back one they could not finish with :meth:`SendingQueue.release`.
The size counts every item not yet acknowledged, waiting and in flight. What the persistent queue promises (restart,
``kill -9``, corrupt stores, the lock file): docs/collector-config.md, "Exporters".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:  # POSIX advisory locks; without them (Windows) the store is not guarded against a second process
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("spanguard.collector.queue")

__all__ = [
    "MemoryQueue",
    "PersistentQueue",
    "QueueClosed",
    "QueueFull",
    "QueueItem",
    "QueueStorageError",
    "SendingQueue",
    "store_path",
]

_SCHEMA_VERSION = 1


class QueueFull(Exception):
    """The queue holds ``capacity`` unacknowledged items."""


class QueueClosed(Exception):
    """The queue is not taking items (not opened yet, draining, or closed)."""


class QueueStorageError(Exception):
    """The persistent store could not be opened or written (disk full, permissions, held by another process)."""


@dataclass(eq=False)
class QueueItem:
    """One queued item: its key in the queue, the payload, and how many spans it holds."""

    key: int
    payload: Any
    spans: int


class SendingQueue:
    """A bounded queue of unacknowledged items; thread-safe. Subclasses keep the items (memory or disk)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be >= 1")
        self.capacity = capacity
        self._cond = threading.Condition()
        self._pending: deque[int] = deque()
        self._in_flight: dict[int, int] = {}  # key -> spans
        self._accepting = False
        self._opened = False
        self._closed = False
        self.corrupt_items = 0

    # -- the storage a subclass provides (called with the lock held) ----------------------------------------------

    def _store(self, payload: Any, spans: int) -> int:
        raise NotImplementedError

    def _load(self, key: int) -> QueueItem | None:
        """The item under ``key``; ``None`` when it is gone or corrupt (then already removed and counted)."""
        raise NotImplementedError

    def _delete(self, key: int) -> None:
        raise NotImplementedError

    def _open_storage(self) -> list[int]:
        """Open the storage; answer the keys of the items it already holds, oldest first."""
        return []

    def _close_storage(self) -> None:
        pass

    # -- the queue ---------------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the storage (loading what it holds) and start taking items. Idempotent."""
        with self._cond:
            if self._opened:
                return
            if self._closed:
                raise QueueClosed("the queue was closed")
            self._pending.extend(self._open_storage())
            self._opened = True
            self._accepting = True

    @property
    def size(self) -> int:
        """Items not yet acknowledged (waiting and in flight)."""
        with self._cond:
            return len(self._pending) + len(self._in_flight)

    @property
    def pending(self) -> int:
        """Items waiting for a worker."""
        with self._cond:
            return len(self._pending)

    @property
    def drained(self) -> bool:
        """True once the queue takes no more items and none is waiting (workers may stop)."""
        with self._cond:
            return not self._accepting and not self._pending

    def put(self, payload: Any, spans: int) -> None:
        """Add an item; for a persistent queue, returns once it is durably stored.

        Raises :class:`QueueFull`, :class:`QueueClosed` or :class:`QueueStorageError`; nothing is added then.
        """
        with self._cond:
            if not self._accepting:
                raise QueueClosed("the queue is not taking items")
            if len(self._pending) + len(self._in_flight) >= self.capacity:
                raise QueueFull(f"sending queue is full ({self.capacity} batches)")
            key = self._store(payload, spans)
            self._pending.append(key)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> QueueItem | None:
        """Take the oldest waiting item, waiting up to ``timeout`` seconds; ``None`` if there is none (or drained)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                while self._pending and not self._closed:
                    key = self._pending.popleft()
                    item = self._load(key)
                    if item is not None:
                        self._in_flight[key] = item.spans
                        return item
                    self._cond.notify_all()
                if self._closed or not self._accepting:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def ack(self, item: QueueItem) -> None:
        """The item is done (sent, or failed for good): remove it."""
        with self._cond:
            if self._in_flight.pop(item.key, None) is None:
                return
            if not self._closed:
                self._delete(item.key)
            self._cond.notify_all()

    def release(self, item: QueueItem) -> None:
        """Hand an unfinished item back: first in line again (and, if persistent, still on disk)."""
        with self._cond:
            if self._in_flight.pop(item.key, None) is None:
                return
            if not self._closed:
                self._pending.appendleft(item.key)
            self._cond.notify_all()

    def stop_accepting(self) -> None:
        """Refuse further :meth:`put` calls; workers drain what is waiting."""
        with self._cond:
            self._accepting = False
            self._cond.notify_all()

    def close(self) -> tuple[int, int]:
        """Stop everything; answer ``(items, spans)`` not yet acknowledged (lost for memory, kept on disk)."""
        with self._cond:
            if self._closed:
                return 0, 0
            self._accepting = False
            self._closed = True
            left_items = len(self._pending) + len(self._in_flight)
            left_spans = self._left_spans()
            self._close_storage()
            self._cond.notify_all()
            return left_items, left_spans

    def _left_spans(self) -> int:
        return sum(self._in_flight.values())


class MemoryQueue(SendingQueue):
    """Items in memory: lost if the process ends before they are sent."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._items: dict[int, QueueItem] = {}
        self._next_key = 0

    def _store(self, payload: Any, spans: int) -> int:
        self._next_key += 1
        self._items[self._next_key] = QueueItem(self._next_key, payload, spans)
        return self._next_key

    def _load(self, key: int) -> QueueItem | None:
        return self._items.get(key)

    def _delete(self, key: int) -> None:
        self._items.pop(key, None)

    def _left_spans(self) -> int:
        return sum(item.spans for item in self._items.values())

    def _close_storage(self) -> None:
        self._items.clear()  # lost: the caller logs and counts them
        self._pending.clear()
        self._in_flight.clear()


def store_path(directory: str | os.PathLike[str], name: str) -> Path:
    """The persistent store of the exporter called ``name`` (``otlp/phoenix`` -> ``otlp%2Fphoenix.db``)."""
    return Path(directory) / f"{quote(name, safe='')}.db"


class PersistentQueue(SendingQueue):
    """Items in a SQLite store on local disk; see the module's docstring for the guarantees.

    ``put`` takes ``bytes``; ``get`` answers ``decode(bytes)`` (the bytes themselves without ``decode``). An item
    whose ``decode`` raises is treated as corrupt.
    """

    def __init__(
        self,
        capacity: int,
        directory: str | os.PathLike[str],
        name: str,
        *,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        super().__init__(capacity)
        self.path = store_path(directory, name)
        self._name = name
        self._decode = decode
        self._db: sqlite3.Connection | None = None
        self._lock_file: Any = None
        self.corrupt_stores = 0

    # -- opening -------------------------------------------------------------------------------------------------------

    def _open_storage(self) -> list[int]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise QueueStorageError(f"cannot create queue directory {self.path.parent}: {error}") from None
        self._lock()
        try:
            self._db = self._connect_checked()
            return [row[0] for row in self._db.execute("SELECT id FROM items ORDER BY id")]
        except BaseException:
            self._unlock()
            raise

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = open(lock_path, "a+b")
        except OSError as error:
            raise QueueStorageError(f"cannot open lock file {lock_path}: {error}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise QueueStorageError(
                f"persistent queue {self.path} is in use by another process (lock {lock_path} is held)"
            ) from None
        self._lock_file = handle

    def _unlock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"cannot use WAL journal (got {mode})")
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise QueueStorageError(
                    f"persistent queue {self.path} was written by a newer spanguard (schema {version})"
                )
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise sqlite3.DatabaseError("; ".join(str(row[0]) for row in check[:3]))
            db.execute(
                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " spans INTEGER NOT NULL, crc INTEGER NOT NULL, data BLOB NOT NULL)"
            )
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            db.execute("SELECT id, spans, crc FROM items LIMIT 1").fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _connect_checked(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except QueueStorageError:
            raise
        except sqlite3.Error as error:
            if not self.path.exists():
                raise QueueStorageError(f"cannot create persistent queue {self.path}: {error}") from None
            problem = str(error)
        rows = self._salvage()
        aside = self._set_aside()
        self.corrupt_stores += 1
        logger.error(
            "persistent queue %s is corrupt (%s): set aside as %s; %d item(s) salvaged",
            self.path,
            problem,
            aside,
            len(rows),
        )
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO items (spans, crc, data) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        except sqlite3.Error as error:
            raise QueueStorageError(f"cannot create persistent queue {self.path}: {error}") from None
        return db

    def _salvage(self) -> list[tuple[int, int, bytes]]:
        """Whatever rows a damaged store still yields, one by one."""
        rows: list[tuple[int, int, bytes]] = []
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
        except sqlite3.Error:
            return rows
        try:
            try:
                keys = [row[0] for row in db.execute("SELECT id FROM items ORDER BY id")]
            except sqlite3.Error:
                return rows
            for key in keys:
                try:
                    row = db.execute("SELECT spans, crc, data FROM items WHERE id = ?", (key,)).fetchone()
                except sqlite3.Error:
                    continue
                if row is not None and isinstance(row[2], bytes) and zlib.crc32(row[2]) == row[1]:
                    rows.append((int(row[0]), int(row[1]), row[2]))
        finally:
            db.close()
        return rows

    def _set_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                try:
                    os.replace(source, Path(str(aside) + suffix))
                except OSError as error:
                    raise QueueStorageError(f"cannot set aside corrupt queue {source}: {error}") from None
        return aside

    # -- storage -------------------------------------------------------------------------------------------------------

    def _store(self, payload: Any, spans: int) -> int:
        if self._db is None:
            raise QueueClosed("the queue is closed")
        data = bytes(payload)
        try:
            cursor = self._db.execute(
                "INSERT INTO items (spans, crc, data) VALUES (?, ?, ?)", (spans, zlib.crc32(data), data)
            )
        except sqlite3.Error as error:
            logger.error("persistent queue %s: write failed: %s", self.path, error)
            raise QueueStorageError(f"persistent queue write failed: {error}") from None
        return int(cursor.lastrowid or 0)

    def _load(self, key: int) -> QueueItem | None:
        assert self._db is not None
        try:
            row = self._db.execute("SELECT spans, crc, data FROM items WHERE id = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            self._corrupt(key, f"unreadable ({error})")
            return None
        if row is None:
            return None
        spans, crc, data = row
        if not isinstance(data, bytes) or zlib.crc32(data) != crc:
            self._corrupt(key, "checksum mismatch")
            return None
        payload: Any = data
        if self._decode is not None:
            try:
                payload = self._decode(data)
            except Exception as error:
                self._corrupt(key, f"cannot decode ({type(error).__name__})")
                return None
        return QueueItem(key, payload, int(spans))

    def _corrupt(self, key: int, why: str) -> None:
        self.corrupt_items += 1
        logger.error("persistent queue %s: item %d is corrupt (%s); skipped", self.path, key, why)
        self._delete(key)

    def _delete(self, key: int) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("DELETE FROM items WHERE id = ?", (key,))
        except sqlite3.Error as error:  # it is sent again after a restart: at-least-once
            logger.error("persistent queue %s: cannot remove item %d: %s", self.path, key, error)

    def _close_storage(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._unlock()

    def _left_spans(self) -> int:
        if self._db is None:
            return 0
        try:
            return int(self._db.execute("SELECT COALESCE(SUM(spans), 0) FROM items").fetchone()[0])
        except sqlite3.Error:
            return 0

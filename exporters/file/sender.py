"""How the ``file`` exporter writes one request: an OTLP/JSON line, flushed, with size-based rotation
(docs/collector-config.md)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from spanguard.exporters.exporterhelper.retry import SendError
from spanguard.exporters.exporterhelper.sending import Payload, SendResult, encode_json
from spanguard.exporters.file.config import FileExporterConfig

__all__ = ["FileSender"]


class _File:
    """One output file, shared by the file exporters of every signal that write to it (the OTel Collector's file
    exporter writes traces, logs and metrics to one file too): one handle, one lock, one rotation."""

    def __init__(self, path: Path, rotation: Any) -> None:
        self.path = path
        self._rotation = rotation
        self._lock = threading.Lock()
        self._file: Any = None
        self._size = 0
        self.users = 0

    def open(self) -> None:
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._open()

    def _open(self) -> None:
        self._file = open(self.path, "ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        assert self._rotation is not None
        self._file.close()
        self._file = None
        backups = self._rotation.max_backups
        if backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            Path(f"{self.path}.{backups}").unlink(missing_ok=True)
            for index in range(backups - 1, 0, -1):
                older = Path(f"{self.path}.{index}")
                if older.exists():
                    os.replace(older, f"{self.path}.{index + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._open()

    def write(self, line: bytes) -> None:
        with self._lock:
            if self._file is None:
                raise SendError("file exporter is closed", retryable=True)
            try:
                limit = self._rotation.max_megabytes * 1024 * 1024 if self._rotation else 0
                if limit and self._size and self._size + len(line) > limit:
                    self._rotate()
                self._file.write(line)
                self._file.flush()
                self._size += len(line)
            except OSError as error:
                raise SendError(f"cannot write {self.path}: {error.strerror or error}", retryable=True) from None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None


_files: dict[Path, _File] = {}
_files_lock = threading.Lock()


class FileSender:
    """Appends one OTLP/JSON line per request, flushed per batch; optional size-based rotation.

    Rotation renames ``path`` to ``path.1`` (older backups shift to ``.2`` ... ``.<max_backups>``; the oldest goes).
    Senders of several signals with one ``path`` share the file.
    """

    def __init__(self, config: FileExporterConfig) -> None:
        self.path = Path(config.path)
        self._rotation = config.rotation
        self._file: _File | None = None

    def start(self) -> None:
        key = self.path.absolute()
        with _files_lock:
            shared = _files.get(key)
            if shared is None:
                shared = _files[key] = _File(self.path, self._rotation)
            shared.users += 1
        self._file = shared
        try:
            shared.open()
        except BaseException:
            self.close()
            raise

    def send(self, payload: Payload) -> SendResult:
        shared = self._file
        if shared is None:
            raise SendError("file exporter is closed", retryable=True)
        shared.write(encode_json(payload.request) + b"\n")
        return SendResult()

    def close(self) -> None:
        shared, self._file = self._file, None
        if shared is None:
            return
        with _files_lock:
            shared.users -= 1
            last = shared.users == 0
            if last:
                _files.pop(self.path.absolute(), None)
        if last:
            shared.close()

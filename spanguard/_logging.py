"""What spanguard's services share in their logs: one setup (JSON lines or console lines on stderr), libraries kept
quiet, and URLs fit for a log line. Behaviour: docs/collector-config.md ("Logs") and docs/review.md."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

__all__ = [
    "LIBRARY_LOGGERS",
    "LOG_ENCODINGS",
    "LOG_LEVELS",
    "ConsoleFormatter",
    "JsonFormatter",
    "configure_logging",
    "quiet_library_loggers",
    "safe_url",
]

LIBRARY_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "hpack",
    "urllib3",
    "grpc",
    "presidio-analyzer",  # a "Loaded recognizer" line per recognizer at INFO, on every start
    "presidio-anonymizer",
    "alembic",
    "uvicorn",
    "uvicorn.error",
    "asyncio",
)
"""Libraries whose INFO lines are not the services' news: the HTTP and gRPC clients (a line per export request, with
its URL), Presidio, the migrations, the HTTP server."""
LOG_LEVELS: Final = ("debug", "info", "warn", "error")
"""The levels ``--log-level`` and the collector's ``service.telemetry.logs.level`` take."""
LOG_ENCODINGS: Final = ("json", "console")
"""JSON lines (the default) or tab-separated lines for a terminal."""


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; messages are spanguard's own, never span content."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``<time> <level> <logger> <message>`` per line, for a terminal; like :class:`JsonFormatter`, no span content."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one line of text."""
        line = f"{_timestamp(record)}\t{record.levelname.lower()}\t{record.name}\t{record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            line += f"\terror={record.exc_info[0].__name__}"
        return line


def configure_logging(level: str = "info", encoding: str = "json") -> None:
    """Logs on stderr, one JSON object (``encoding`` ``json``) or one line of text (``console``) per record; the
    :data:`LIBRARY_LOGGERS` only from WARNING up, whatever ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter() if encoding == "console" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("WARNING" if level.lower() == "warn" else level.upper())
    quiet_library_loggers()


def quiet_library_loggers() -> None:
    """Keep :data:`LIBRARY_LOGGERS` at WARNING whatever the services' own level: at INFO httpx logs every request
    with its full URL (credentials and query string included), which for a collector is one line per export."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def safe_url(url: str) -> str:
    """``url`` without what may hold secrets: user info (``user:password@``), query string and fragment.

    Also takes ``host:port`` (gRPC targets) and database URLs (``sqlite:///path``). Components are split as RFC 3986
    and the HTTP clients split them: reserved characters in a password must be percent-encoded to be one.
    """
    for mark in "?#":
        url = url.split(mark, 1)[0]
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"

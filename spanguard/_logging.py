"""What spanguard's services share in their logs: client libraries kept quiet, and URLs fit for a log line."""

from __future__ import annotations

import logging

__all__ = ["LIBRARY_LOGGERS", "quiet_library_loggers", "safe_url"]

# The HTTP and gRPC client libraries under the exporters and the verdict emitter.
LIBRARY_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3", "grpc")


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

"""The HTTP client of the exporters that POST (``otlphttp``, ``review``): ``httpx`` with the exporter's TLS and
timeout, transport failures turned into retryable :class:`~spanguard.exporters.exporterhelper.retry.SendError` s.
Behaviour: docs/collector-config.md, "Exporters"."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from spanguard._logging import safe_url
from spanguard.collector.confignet import TlsClientConfig, client_ssl_context
from spanguard.exporters.exporterhelper.retry import SendError

__all__ = ["HttpClient"]


class HttpClient:
    """POSTs to one URL; opened by :meth:`start`, closed by :meth:`close` (sends in flight then fail, retryably)."""

    def __init__(self, name: str, url: str, tls: TlsClientConfig, timeout: float, logger: logging.Logger) -> None:
        self.name = name
        self.url = url
        self._tls = tls
        self._timeout = timeout
        self._logger = logger
        self._client: Any = None

    def start(self) -> None:
        """Open the client; ``OSError`` naming the exporter when a TLS file cannot be loaded."""
        import httpx

        self._httpx = httpx
        try:
            verify = client_ssl_context(self.url, self._tls)
        except OSError as error:  # ssl.SSLError is an OSError
            raise OSError(f"{self.name}: cannot load TLS files: {error}") from None
        self._client = httpx.Client(timeout=self._timeout, verify=verify, follow_redirects=False)
        self._logger.info("%s: exporting to %s", self.name, safe_url(self.url))

    def ensure_open(self) -> Any:
        """The open ``httpx.Client``; a retryable :class:`SendError` once closed."""
        client = self._client
        if client is None:
            raise SendError("HTTP client is closed", retryable=True)
        return client

    def post(self, body: bytes, headers: Mapping[str, str]) -> Any:
        """The ``httpx.Response`` to POSTing ``body``; connection errors, timeouts and a client closed under the
        call (shutdown) raise a retryable :class:`SendError`."""
        client = self.ensure_open()
        try:
            return client.post(self.url, content=body, headers=headers)
        except self._httpx.TransportError as error:
            raise SendError(f"HTTP {type(error).__name__}: {error}", retryable=True) from None
        except RuntimeError as error:  # the client was closed under us (shutdown)
            raise SendError(f"HTTP client: {error}", retryable=True) from None

    def close(self) -> None:
        """Close the client (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

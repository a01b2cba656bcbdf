"""The ``otlphttp`` exporter's settings (docs/collector-config.md, "otlphttp")."""

from __future__ import annotations

from typing import Literal

import pydantic

from spanguard.collector.confignet import HttpUrl, TlsClientConfig
from spanguard.exporters.exporterhelper.retry import RetryConfig
from spanguard.exporters.exporterhelper.sending import Headers, SendingQueueConfig, SettingsModel, Timeout

__all__ = ["OtlpHttpExporterConfig"]


class OtlpHttpExporterConfig(SettingsModel):
    """``exporters.otlphttp``: OTLP over HTTP. ``endpoint`` is the base URL (``/v1/traces`` is appended), or give
    the full ``traces_endpoint``; ``https://`` URLs use TLS (``tls.ca_file``, ``tls.cert_file``/``key_file``)."""

    endpoint: HttpUrl | None = None
    """Base URL of the OTLP/HTTP backend; traces go to ``{endpoint}/v1/traces``."""
    traces_endpoint: HttpUrl | None = None
    """The full URL to POST traces to, instead of ``endpoint``."""
    tls: TlsClientConfig = TlsClientConfig()
    """TLS for ``https://`` URLs."""
    headers: Headers = {}
    """Extra request headers, e.g. an API key."""
    compression: Literal["gzip", "none"] = "gzip"
    """``gzip`` or ``none``."""
    timeout: Timeout = 10.0
    """Timeout of one request."""
    encoding: Literal["proto", "json"] = "proto"
    """Request body: ``proto`` (protobuf) or ``json`` (OTLP/JSON)."""
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    """The sending queue in front of the backend."""
    retry_on_failure: RetryConfig = RetryConfig()
    """Retries with exponential backoff; ``Retry-After`` is honoured."""

    @pydantic.model_validator(mode="after")
    def _url(self) -> OtlpHttpExporterConfig:
        if not self.endpoint and not self.traces_endpoint:
            raise ValueError("give endpoint (base URL) or traces_endpoint")
        return self

    @property
    def url(self) -> str:
        """Where traces are POSTed."""
        if self.traces_endpoint:
            return self.traces_endpoint
        assert self.endpoint is not None
        return self.endpoint.rstrip("/") + "/v1/traces"

"""The ``otlphttp`` exporter's settings (docs/collector-config.md, "otlphttp")."""

from __future__ import annotations

from typing import Literal

import pydantic

from spanguard.collector.confignet import HttpUrl, TlsClientConfig
from spanguard.exporters.exporterhelper.retry import RetryConfig
from spanguard.exporters.exporterhelper.sending import Headers, SendingQueueConfig, SettingsModel, Timeout

__all__ = ["OtlpHttpExporterConfig"]


class OtlpHttpExporterConfig(SettingsModel):
    """``exporters.otlphttp``: OTLP over HTTP. ``endpoint`` is the base URL (``/v1/traces``, ``/v1/logs``,
    ``/v1/metrics`` are appended), or give a signal's full URL; ``https://`` URLs use TLS (``tls.ca_file``,
    ``tls.cert_file``/``key_file``)."""

    endpoint: HttpUrl | None = None
    """Base URL of the OTLP/HTTP backend; traces go to ``{endpoint}/v1/traces``, logs and metrics beside them."""
    traces_endpoint: HttpUrl | None = None
    """The full URL to POST traces to, instead of ``endpoint``."""
    logs_endpoint: HttpUrl | None = None
    """The full URL to POST logs to, instead of ``endpoint``."""
    metrics_endpoint: HttpUrl | None = None
    """The full URL to POST metrics to, instead of ``endpoint``."""
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
        if not (self.endpoint or self.traces_endpoint or self.logs_endpoint or self.metrics_endpoint):
            raise ValueError("give endpoint (base URL), or traces_endpoint, logs_endpoint or metrics_endpoint")
        return self

    @property
    def url(self) -> str:
        """Where traces are POSTed."""
        url = self.url_for("traces")
        if url is None:
            raise ValueError("give endpoint (base URL) or traces_endpoint")
        return url

    def url_for(self, signal: str) -> str | None:
        """Where ``signal`` (traces, logs, metrics) is POSTed: its own URL, else ``endpoint`` with its path; None
        when neither is given."""
        own: str | None = getattr(self, f"{signal}_endpoint")
        if own:
            return own
        return self.endpoint.rstrip("/") + f"/v1/{signal}" if self.endpoint else None

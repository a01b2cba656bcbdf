"""The ``otlp`` exporter's settings (docs/collector-config.md, "otlp")."""

from __future__ import annotations

from typing import Literal

import pydantic

from spanguard.collector.confignet import TlsClientConfig
from spanguard.exporters.exporterhelper.retry import RetryConfig
from spanguard.exporters.exporterhelper.sending import Headers, SendingQueueConfig, SettingsModel, Timeout

__all__ = ["OtlpExporterConfig"]


class OtlpExporterConfig(SettingsModel):
    """``exporters.otlp``: OTLP over gRPC. ``endpoint`` is ``host:port`` (``http://``/``https://`` also accepted:
    the scheme then decides plaintext or TLS); TLS unless ``tls.insecure``."""

    endpoint: str = pydantic.Field(min_length=1)
    """``host:port`` of the OTLP/gRPC backend; ``http://`` or ``https://`` in front chooses plaintext or TLS."""
    tls: TlsClientConfig = TlsClientConfig()
    """TLS towards the backend (on unless ``tls.insecure``)."""
    headers: Headers = {}
    """Metadata (headers) sent with every export call, names lowercased, e.g. an API key."""
    compression: Literal["gzip", "none"] = "gzip"
    """``gzip`` or ``none``."""
    timeout: Timeout = 10.0
    """Deadline of one export call."""
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    """The sending queue in front of the backend."""
    retry_on_failure: RetryConfig = RetryConfig()
    """Retries with exponential backoff."""

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
    tls: TlsClientConfig = TlsClientConfig()
    headers: Headers = {}
    compression: Literal["gzip", "none"] = "gzip"
    timeout: Timeout = 10.0
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    retry_on_failure: RetryConfig = RetryConfig()

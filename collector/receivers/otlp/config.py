"""The ``otlp`` receiver's config model (``receivers.otlp``), shaped like the Collector's otlpreceiver's.

Behaviour: docs/collector-config.md.
"""

from __future__ import annotations

from typing import Any

import pydantic

from spanguard.collector.confignet import Endpoint, TlsServerConfig

__all__ = ["GrpcSettings", "HttpSettings", "OtlpReceiverConfig", "Protocols"]


class _ServerSettings(pydantic.BaseModel, frozen=True, extra="forbid"):
    endpoint: Endpoint
    """Where to listen, ``host:port`` (an empty host: every interface; port 0: any free port)."""
    tls: TlsServerConfig | None = None
    """Serve TLS with this certificate and key; not set: plaintext."""


class GrpcSettings(_ServerSettings, frozen=True, extra="forbid"):
    """OTLP/gRPC (``TraceService/Export``)."""

    endpoint: Endpoint = "127.0.0.1:4317"
    """Where to listen, ``host:port`` (an empty host: every interface; port 0: any free port)."""
    max_recv_msg_size_mib: int = pydantic.Field(default=64, ge=1)
    """The largest request accepted, in MiB; a larger one is refused with ``RESOURCE_EXHAUSTED``."""


class HttpSettings(_ServerSettings, frozen=True, extra="forbid"):
    """OTLP/HTTP (``POST /v1/traces``, protobuf or JSON, optionally gzip)."""

    endpoint: Endpoint = "127.0.0.1:4318"
    """Where to listen, ``host:port`` (an empty host: every interface; port 0: any free port)."""
    max_request_body_size_mib: int = pydantic.Field(default=64, ge=1)
    """The largest request body accepted, in MiB, also after decompression; a larger one is refused with 413."""


class Protocols(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Which transports to serve; a key given without a value (``grpc:`` in YAML) enables it with defaults."""

    grpc: GrpcSettings | None = None
    """Serve OTLP/gRPC (``TraceService/Export``); ``grpc:`` without a value: with the defaults below."""
    http: HttpSettings | None = None
    """Serve OTLP/HTTP (``POST /v1/traces``); ``http:`` without a value: with the defaults below."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _present_means_enabled(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {key: ({} if key in ("grpc", "http") and value is None else value) for key, value in data.items()}
        return data

    @pydantic.model_validator(mode="after")
    def _at_least_one(self) -> Protocols:
        if self.grpc is None and self.http is None:
            raise ValueError("at least one protocol (grpc or http) must be enabled")
        return self


class OtlpReceiverConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """The ``otlp`` receiver's config, shaped like the Collector's."""

    protocols: Protocols
    """Which transports to serve, at least one of ``grpc`` and ``http``."""

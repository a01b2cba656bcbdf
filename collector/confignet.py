"""Network settings shared by the collector's components, after the Collector's ``confignet`` and ``configtls``.

One parser for ``host:port`` endpoints and ``http(s)://`` URLs, the TLS settings of clients (exporters) and of
servers (receivers), and the grpc/ssl credentials built from them. Behaviour: docs/collector-config.md.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import pydantic

from spanguard.yamlconfig import relative_to_config

__all__ = [
    "Endpoint",
    "HttpUrl",
    "TlsClientConfig",
    "TlsServerConfig",
    "check_url",
    "client_ssl_context",
    "grpc_channel_credentials",
    "grpc_server_credentials",
    "grpc_target",
    "parse_endpoint",
    "split_endpoint",
]


# ---------------------------------------------------------------------------------------------------------------------
# Endpoints and URLs

_PORT = re.compile(r"[0-9]{1,5}")


def parse_endpoint(value: str) -> str:
    """``value`` when it is ``host:port`` (host may be empty, meaning every interface, or ``[v6]``); else ValueError."""
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    valid = (
        bool(sep)
        and _PORT.fullmatch(port) is not None
        and int(port) <= 65535
        and (bracketed or (":" not in host and "[" not in host and "]" not in host))
        and not any(ch.isspace() for ch in host)
    )
    if not valid:
        raise ValueError(f"invalid endpoint {value!r}: expected host:port, e.g. 127.0.0.1:4317 or [::1]:4317")
    return value


def split_endpoint(value: str, *, empty_host: str = "0.0.0.0") -> tuple[str, int]:
    """``(host, port)`` of a ``host:port`` endpoint (``[v6]`` unbracketed; an empty host becomes ``empty_host``)."""
    host, _, port = parse_endpoint(value).rpartition(":")
    if host.startswith("["):
        host = host[1:-1]
    return host or empty_host, int(port)


Endpoint = Annotated[str, pydantic.AfterValidator(parse_endpoint)]
"""A ``host:port`` string for component config models (the port must be 0..65535)."""


def check_url(value: str) -> str:
    """``value`` when it is an ``http://`` or ``https://`` URL with a host (and a valid port); else ValueError."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in value)
        or parts.fragment
    ):
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080")
    return value


HttpUrl = Annotated[str, pydantic.AfterValidator(check_url)]
"""An ``http://`` or ``https://`` URL with a host, for component config models."""


def grpc_target(endpoint: str, *, insecure: bool) -> tuple[str, bool]:
    """``(target, secure)`` for a gRPC client: ``host:port`` as given (TLS unless ``insecure``), or a URL whose
    scheme decides (``http://`` plaintext, ``https://`` TLS; a path is dropped)."""
    endpoint = endpoint.strip()
    secure = not insecure
    for scheme, is_secure in (("http://", False), ("https://", True)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint[len(scheme) :].split("/", 1)[0], is_secure
    return endpoint, secure


# ---------------------------------------------------------------------------------------------------------------------
# TLS


class TlsClientConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``tls`` of an exporter: ``insecure`` (gRPC only: plaintext), CA to trust, client certificate for mutual TLS.

    ``insecure_skip_verify`` keeps TLS but does not verify the server's certificate (testing only).
    """

    insecure: bool = False
    """Plaintext instead of TLS, for ``otlp`` (gRPC) only: for ``otlphttp`` and ``review`` the URL's scheme decides."""
    insecure_skip_verify: bool = False
    """Keep TLS but do not verify the server's certificate (testing only; not supported for gRPC)."""
    ca_file: str | None = None
    """PEM file of the CA(s) to trust instead of the system's (a relative name is found next to the config file)."""
    cert_file: str | None = None
    """PEM client certificate for mutual TLS (with ``key_file``)."""
    key_file: str | None = None
    """PEM private key of ``cert_file``."""

    @pydantic.field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _next_to_the_config(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        return None if value is None else str(relative_to_config(value, info.context))

    @pydantic.model_validator(mode="after")
    def _pair(self) -> TlsClientConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate for mutual TLS)")
        return self


class TlsServerConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``tls`` of a receiver: PEM certificate (chain) and private key files, which must exist when loaded."""

    cert_file: str
    """PEM certificate (chain) the server presents; the file must exist when the config is loaded (a relative name is
    found next to the config file)."""
    key_file: str
    """PEM private key of ``cert_file``; the file must exist when the config is loaded."""

    @pydantic.field_validator("cert_file", "key_file")
    @classmethod
    def _exists(cls, value: str, info: pydantic.ValidationInfo) -> str:
        path = relative_to_config(value, info.context)
        if not path.is_file():
            raise ValueError(f"file not found: {value!r}")
        return str(path)


def client_ssl_context(url: str, tls: TlsClientConfig) -> ssl.SSLContext | bool:
    """What ``httpx`` should verify with for ``url``: ``True`` (defaults) for ``http://``, else a context trusting
    ``tls.ca_file`` (or the system's CAs), with the client certificate if given; ``tls.insecure_skip_verify`` turns
    verification off. Raises ``OSError``/``ssl.SSLError`` when a file cannot be loaded."""
    if not url.startswith("https://"):
        return True
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise OSError(f"cannot read tls.{what} {path!r}: {error.strerror or error}") from None


def grpc_channel_credentials(tls: TlsClientConfig) -> Any:
    """``grpc.ChannelCredentials`` trusting ``tls.ca_file`` (or the system's CAs), with the client certificate if
    given. Raises ``OSError`` naming the file that cannot be read."""
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "ca_file"),
        private_key=_read(tls.key_file, "key_file"),
        certificate_chain=_read(tls.cert_file, "cert_file"),
    )


def grpc_server_credentials(tls: TlsServerConfig) -> Any:
    """``grpc.ServerCredentials`` for the certificate and key of ``tls``."""
    import grpc

    return grpc.ssl_server_credentials([(Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())])

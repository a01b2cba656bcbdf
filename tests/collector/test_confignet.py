"""The collector's one module for network settings: endpoints, URLs, TLS (collector/confignet.py)."""

from __future__ import annotations

import pydantic
import pytest

from spanguard.collector.confignet import (
    TlsClientConfig,
    TlsServerConfig,
    check_url,
    client_ssl_context,
    grpc_target,
    split_endpoint,
)


@pytest.mark.parametrize(
    ("value", "empty_host", "expected"),
    [
        ("127.0.0.1:4317", "0.0.0.0", ("127.0.0.1", 4317)),
        (":4318", "0.0.0.0", ("0.0.0.0", 4318)),
        (":8888", "127.0.0.1", ("127.0.0.1", 8888)),
        ("[::1]:0", "0.0.0.0", ("::1", 0)),
    ],
)
def test_split_endpoint(value: str, empty_host: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(value, empty_host=empty_host) == expected


@pytest.mark.parametrize("value", ["localhost", "h:65536", "::1:4317", "a b:1"])
def test_split_endpoint_refuses_what_parse_endpoint_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        split_endpoint(value)


@pytest.mark.parametrize(
    ("endpoint", "insecure", "expected"),
    [
        ("collector:4317", False, ("collector:4317", True)),
        ("collector:4317", True, ("collector:4317", False)),
        (" http://collector:4317/ignored ", False, ("collector:4317", False)),
        ("https://collector:4317", True, ("collector:4317", True)),
    ],
)
def test_grpc_target_scheme_decides(endpoint: str, insecure: bool, expected: tuple[str, bool]) -> None:
    assert grpc_target(endpoint, insecure=insecure) == expected


@pytest.mark.parametrize("value", ["ftp://h:1", "127.0.0.1:8080", "http://h:99999", "http://", "http://h/#x"])
def test_check_url_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        check_url(value)


def test_tls_models() -> None:
    with pytest.raises(pydantic.ValidationError, match="go together"):
        TlsClientConfig(cert_file="c.pem")
    with pytest.raises(pydantic.ValidationError, match="file not found"):
        TlsServerConfig(cert_file="/nonexistent/c.pem", key_file=__file__)
    assert client_ssl_context("http://h:1", TlsClientConfig()) is True
    context = client_ssl_context("https://h:1", TlsClientConfig(insecure_skip_verify=True))
    assert not isinstance(context, bool) and not context.check_hostname

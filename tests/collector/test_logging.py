"""The collector's logs over real exports: no client library's INFO lines, no URL's credentials or query string."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from exporter_build import make_exporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from sink import OtlpSink

from spanguard._logging import LIBRARY_LOGGERS, configure_logging, safe_url
from spanguard.collector.component import PermanentError, TraceBatch
from spanguard.semconv import SPANGUARD_REVIEW_TIER

USER, PASSWORD, KEY = "collector-user", "pa55word-in-url", "key-in-query"
INLINE = {"sending_queue": {"enabled": False}, "retry_on_failure": {"enabled": False}}


def _batch() -> TraceBatch:
    """One span, marked for review so that the review exporter posts it too."""
    span = Span(
        trace_id=os.urandom(16),
        span_id=os.urandom(8),
        name="chat",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=[KeyValue(key=SPANGUARD_REVIEW_TIER, value=AnyValue(string_value="spot_check"))],
    )
    return TraceBatch([ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


@pytest.fixture(params=["info", "debug"])
def collector_logs(request, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The collector CLI's logging setup at each level, captured (the setup replaces the root's handlers)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    configure_logging(request.param)
    root.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        root.handlers[:], level, libraries = saved
        root.setLevel(level)
        for name, library_level in libraries.items():
            logging.getLogger(name).setLevel(library_level)


def test_exports_log_no_library_info_and_no_credentials_or_query_strings(collector_logs):
    with OtlpSink() as sink:
        base = f"http://{USER}:{PASSWORD}@127.0.0.1:{sink.http_port}"
        exporters = [
            make_exporter("otlphttp", "otlphttp/ok", {"traces_endpoint": f"{base}/v1/traces", **INLINE}),
            make_exporter("otlphttp", "otlphttp/query", {"traces_endpoint": f"{base}/v1/traces?key={KEY}", **INLINE}),
            make_exporter(
                "review", "review/hook", {"endpoint": f"{base}/hook?token={KEY}", "mode": "webhook", **INLINE}
            ),
            make_exporter(
                "otlp", "otlp/grpc", {"endpoint": f"http://{USER}:{PASSWORD}@{sink.grpc_endpoint}", **INLINE}
            ),
        ]
        try:
            for exporter in exporters:
                exporter.start()
            exporters[0].consume(_batch())
            for refused in exporters[1:3]:  # the sink answers 404 for any other path: a real request, refused
                with pytest.raises(PermanentError, match="HTTP 404"):
                    refused.consume(_batch())
        finally:
            for exporter in exporters:
                exporter.shutdown(timeout=2)
        assert len(sink.received) == 1  # and the server itself answered the other two 404
    records = collector_logs.records
    assert [r for r in records if r.name.split(".")[0] in LIBRARY_LOGGERS and r.levelno < logging.WARNING] == []
    leaked = [r.getMessage() for r in records if any(s in r.getMessage() for s in (USER, PASSWORD, KEY, "?"))]
    assert leaked == []
    # spanguard's own lines still say where exports go, through safe_url
    started = {r.getMessage() for r in records if "exporting to" in r.getMessage()}
    endpoint = f"http://127.0.0.1:{sink.http_port}"
    assert started == {
        f"otlphttp: exporting to {endpoint}/v1/traces",
        f"review: exporting to {endpoint}/hook",
        f"otlp: exporting to {sink.grpc_endpoint} (plaintext)",
    }


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("http://user:secret@host:4318/v1/traces?api_key=k#part", "http://host:4318/v1/traces"),
        ("https://token@host/hook", "https://host/hook"),
        ("user:secret@127.0.0.1:4317", "127.0.0.1:4317"),
        ("127.0.0.1:4317", "127.0.0.1:4317"),
        ("http://[::1]:4318/v1/logs", "http://[::1]:4318/v1/logs"),
        ("postgresql+psycopg://review:secret@db:5432/review?sslpassword=s", "postgresql+psycopg://db:5432/review"),
        ("sqlite:///.spanguard/review.db", "sqlite:///.spanguard/review.db"),
        ("http://host?user:secret@other", "http://host"),
    ],
)
def test_safe_url_drops_user_info_query_and_fragment(url, safe):
    assert safe_url(url) == safe

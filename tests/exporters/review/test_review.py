"""The ``review`` exporter: OTLP to review items, its config, and its sender against a real HTTP server on loopback."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from exporter_build import SECRET, make_exporter, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from spanguard.collector.component import TraceBatch
from spanguard.collector.config import load_config_text
from spanguard.exporters.exporterhelper.exporter import Exporter
from spanguard.exporters.exporterhelper.retry import RetryConfig, SendError
from spanguard.exporters.exporterhelper.sending import Payload, SendingQueueConfig
from spanguard.exporters.review.config import ReviewExporterConfig
from spanguard.exporters.review.factory import new_factory
from spanguard.exporters.review.items import review_items
from spanguard.exporters.review.sender import ReviewSender
from spanguard.yamlconfig import ConfigError

TOKEN = "tok-3f9a-ingest"
FAST_RETRY = {"initial_interval": 0.01, "max_interval": 0.05, "max_elapsed_time": 60, "randomization_factor": 0.2}


# ---------------------------------------------------------------------------------------------------------------------
# Building OTLP


def kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: Any) -> AnyValue:
    if isinstance(value, AnyValue):
        return value
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in value.items()]))
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def span(trace: bytes, name: str = "chat", *, parent: bytes = b"", **attributes: Any) -> Span:
    return Span(
        trace_id=trace,
        span_id=os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=Span.SpanKind.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_500_000_000,
        attributes=[kv(key.replace("__", "."), value) for key, value in attributes.items()],
    )


def reviewed(trace: bytes, name: str = "chat", tier: str = "dual_approval", **attributes: Any) -> Span:
    """A span as tail sampling leaves it when its trace goes to review."""
    attributes.setdefault("spanguard__risk__tier", "red")
    attributes.setdefault("spanguard__risk__reasons", ["approval_gate"])
    attributes.setdefault("app__secret", SECRET)
    return span(trace, name, spanguard__review__tier=tier, **attributes)


def resource_spans(
    *spans: Span, service: str = "agent", scope: str = "spanguard", version: str = "0.1"
) -> ResourceSpans:
    resource = Resource(attributes=[kv("service.name", service)])
    return ResourceSpans(
        resource=resource,
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope, version=version), spans=list(spans))],
    )


def request(*groups: ResourceSpans) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=list(groups))


def batch(*spans: Span) -> TraceBatch:
    return TraceBatch([resource_spans(*spans)])


def review_batch(traces: int = 1, spans: int = 2) -> tuple[TraceBatch, list[str]]:
    ids = [os.urandom(16) for _ in range(traces)]
    return batch(*(reviewed(trace, f"span {i}") for trace in ids for i in range(spans))), [t.hex() for t in ids]


# ---------------------------------------------------------------------------------------------------------------------
# A recording HTTP server on loopback


class ReviewServer:
    """Records every POST (path, headers, JSON body); answers with scripted statuses, then 200.

    Created bound but not listening ("down": connections are refused) when ``up=False``; :meth:`up` starts it on the
    same port.
    """

    def __init__(self, *, up: bool = True) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[int] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with server._lock:
                    status = server.script.popleft() if server.script else 200
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {key.lower(): value for key, value in self.headers.items()},
                            "body": json.loads(body),
                            "status": status,
                        }
                    )
                answer = b'{"ok":true}' if status < 300 else b'{"detail":"scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = sock
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        if up:
            self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self._server.server_activate()  # listen()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies' items of the requests answered 2xx."""
        with self._lock:
            return [item for r in self.requests if r["status"] < 300 for item in r["body"]["items"]]

    def __enter__(self) -> ReviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def server() -> Iterator[ReviewServer]:
    with ReviewServer() as running:
        yield running


@pytest.fixture
def made() -> Iterator[list[Exporter]]:
    exporters: list[Exporter] = []
    yield exporters
    for exporter in exporters:
        exporter.shutdown(timeout=2)


def review_exporter(made: list[Exporter], url: str, name: str = "review", **overrides: Any) -> Exporter:
    config: dict[str, Any] = {"endpoint": url, "token": TOKEN, "retry_on_failure": FAST_RETRY}
    config.update(overrides)
    exporter = make_exporter("review", name, config)
    made.append(exporter)
    exporter.start()
    return exporter


@contextlib.contextmanager
def started(sender: ReviewSender) -> Iterator[ReviewSender]:
    sender.start()
    try:
        yield sender
    finally:
        sender.close()


# ---------------------------------------------------------------------------------------------------------------------
# Conversion


def test_an_item_per_reviewed_trace_with_tier_risk_tier_and_reasons_union() -> None:
    trace = os.urandom(16)
    root = reviewed(trace, "invoke_agent", tier="spot_check", spanguard__risk__tier="yellow")
    root.ClearField("parent_span_id")
    child = reviewed(
        trace,
        "chat",
        parent=root.span_id,
        tier="dual_approval",
        spanguard__risk__tier="red",
        spanguard__risk__reasons=["unpinned_model", "sensitive_topic:medical"],
    )
    third = reviewed(
        trace, "tool", parent=root.span_id, spanguard__risk__reasons=["sensitive_topic:medical", "", "pii"]
    )
    items = review_items(request(resource_spans(root, child, third)))
    assert len(items) == 1
    item = items[0]
    assert item["trace_id"] == trace.hex()
    assert item["tier"] == "dual_approval"  # the most demanding tier among the spans
    assert item["risk_tier"] == "red"  # the riskiest
    assert item["reasons"] == ["approval_gate", "unpinned_model", "sensitive_topic:medical", "pii"]
    assert [s["name"] for s in item["spans"]] == ["invoke_agent", "chat", "tool"]
    assert set(item) == {"trace_id", "tier", "risk_tier", "reasons", "spans"}


def test_risk_tier_defaults_to_green_and_reasons_to_empty() -> None:
    trace = os.urandom(16)
    only_tier = span(trace, spanguard__review__tier="spot_check")
    [item] = review_items(request(resource_spans(only_tier)))
    assert (item["tier"], item["risk_tier"], item["reasons"]) == ("spot_check", "green", [])


def test_review_span_has_the_documented_shape() -> None:
    trace = os.urandom(16)
    parent = os.urandom(8)
    proto = reviewed(trace, "chat gpt-4o-2024-08-06", parent=parent, gen_ai__operation__name="chat")
    proto.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    proto.events.add(name="gen_ai.choice", time_unix_nano=1_700_000_000_100_000_000).attributes.extend(
        [kv("index", 0), kv("finish_reason", "stop")]
    )
    root = span(trace, "root")
    root.kind = Span.SpanKind.SPAN_KIND_SERVER
    group = resource_spans(proto, root, service="shop", scope="spanguard.instrumentation.openai", version="0.1.0")
    group.resource.attributes.append(kv("deployment.environment", "prod"))
    [item] = review_items(request(group))
    first, second = item["spans"]
    assert first == {
        "trace_id": trace.hex(),
        "span_id": proto.span_id.hex(),
        "parent_span_id": parent.hex(),
        "name": "chat gpt-4o-2024-08-06",
        "kind": "client",
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_500_000_000,
        "status": {"code": "error", "message": "boom"},
        "attributes": {
            "gen_ai.operation.name": "chat",
            "spanguard.review.tier": "dual_approval",
            "spanguard.risk.tier": "red",
            "spanguard.risk.reasons": ["approval_gate"],
            "app.secret": SECRET,
        },
        "events": [
            {
                "name": "gen_ai.choice",
                "time_unix_nano": 1_700_000_000_100_000_000,
                "attributes": {"index": 0, "finish_reason": "stop"},
            }
        ],
        "resource": {"service.name": "shop", "deployment.environment": "prod"},
        "scope": {"name": "spanguard.instrumentation.openai", "version": "0.1.0"},
    }
    assert second["parent_span_id"] is None
    assert second["kind"] == "server"
    assert second["status"] == {"code": "unset", "message": ""}
    assert second["events"] == []
    assert len(first["trace_id"]) == 32 and len(first["span_id"]) == 16


def test_attribute_values_of_every_anyvalue_kind_become_plain_json() -> None:
    trace = os.urandom(16)
    proto = reviewed(
        trace,
        text="hé",
        flag=True,
        count=-(2**40),
        ratio=0.25,
        blob=b"\x00\xffbin",
        strings=["a", "b"],
        mixed=[1, "two", 3.5, False, b"\x01", {"k": "v"}],
        nested={"a": 1, "b": {"c": [True, "x"]}, "d": b"\x02"},
        empty=AnyValue(),
        nan=float("nan"),
        inf=float("inf"),
        ninf=float("-inf"),
    )
    [item] = review_items(request(resource_spans(proto)))
    attributes = item["spans"][0]["attributes"]
    assert attributes["text"] == "hé"
    assert attributes["flag"] is True
    assert attributes["count"] == -(2**40)
    assert attributes["ratio"] == 0.25
    assert attributes["blob"] == base64.b64encode(b"\x00\xffbin").decode()
    assert attributes["strings"] == ["a", "b"]
    assert attributes["mixed"] == [1, "two", 3.5, False, "AQ==", {"k": "v"}]
    assert attributes["nested"] == {"a": 1, "b": {"c": [True, "x"]}, "d": "Ag=="}
    assert attributes["empty"] is None
    assert (attributes["nan"], attributes["inf"], attributes["ninf"]) == ("NaN", "Infinity", "-Infinity")
    # strict JSON round trip (no NaN literals, no tuples, no bytes)
    assert json.loads(json.dumps(item, allow_nan=False)) == item


def test_traces_without_a_review_tier_are_skipped_and_several_traces_keep_their_order() -> None:
    first, dropped, second, unknown = (os.urandom(16) for _ in range(4))
    # spans of `first` under two resources: still one item; `dropped` has no tier: not for review
    group_a = resource_spans(reviewed(first, "a1"), span(dropped, "d1", spanguard__risk__tier="green"), service="a")
    group_b = resource_spans(
        span(second, "s1"),  # a span of a reviewed trace without the tier itself is still part of the item
        reviewed(second, "s2", tier="factual_verification", spanguard__risk__tier="yellow"),
        reviewed(first, "a2"),
        span(unknown, "u1", spanguard__review__tier="someday_maybe"),  # only an unknown tier: not sent
        service="b",
    )
    items = review_items(request(group_a, group_b))
    assert [item["trace_id"] for item in items] == [first.hex(), second.hex()]
    assert [s["name"] for s in items[0]["spans"]] == ["a1", "a2"]
    assert [s["resource"]["service.name"] for s in items[0]["spans"]] == ["a", "b"]
    assert [s["name"] for s in items[1]["spans"]] == ["s1", "s2"]
    assert items[1]["tier"] == "factual_verification" and items[1]["risk_tier"] == "yellow"
    assert review_items(request(resource_spans(span(dropped)))) == []
    assert review_items(request()) == []


# ---------------------------------------------------------------------------------------------------------------------
# Config


def test_config_defaults_match_the_otlp_exporters() -> None:
    config = ReviewExporterConfig(endpoint="http://127.0.0.1:8080", token=TOKEN)
    assert config.mode == "review"
    assert config.url == "http://127.0.0.1:8080/v1/review-items"
    assert config.max_items_per_request == 100
    assert config.timeout == 10.0
    assert config.sending_queue == SendingQueueConfig()
    assert config.retry_on_failure == RetryConfig()
    assert TOKEN not in repr(config)
    assert ReviewExporterConfig(endpoint="https://review.internal/base/", token=TOKEN).url == (
        "https://review.internal/base/v1/review-items"
    )
    webhook = ReviewExporterConfig(mode="webhook", endpoint="https://hooks.example/x?key=1")
    assert (webhook.url, webhook.token) == ("https://hooks.example/x?key=1", None)
    assert new_factory().config_class is ReviewExporterConfig


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"endpoint": "ftp://127.0.0.1:8080", "token": TOKEN}, "endpoint", "http:// or https:// URL"),
        ({"endpoint": "127.0.0.1:8080", "token": TOKEN}, "endpoint", "http:// or https:// URL"),
        ({"endpoint": "http://", "token": TOKEN}, "endpoint", "with a host"),
        ({"endpoint": "http://127.0.0.1:99999", "token": TOKEN}, "endpoint", "http:// or https:// URL"),
        ({"endpoint": "http://127.0.0.1:8080"}, None, "token is required in review mode"),
        ({"endpoint": "http://127.0.0.1:8080", "token": ""}, None, "token is required in review mode"),
        ({"endpoint": "http://127.0.0.1:8080", "token": "a b"}, None, "token must not contain"),
        (
            {"endpoint": "http://x", "token": TOKEN, "headers": {"Authorization": "Basic x"}},
            None,
            "either token or an Authorization header",
        ),
        ({"endpoint": "http://x", "token": TOKEN, "tokn": "x"}, "tokn", "Extra inputs are not permitted"),
        ({"endpoint": "http://x", "mode": "email"}, "mode", "'review' or 'webhook'"),
        ({"endpoint": "http://x", "token": TOKEN, "max_items_per_request": 0}, "max_items_per_request", "greater"),
    ],
)
def test_config_errors_name_the_field(settings: dict[str, Any], field: str | None, words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ReviewExporterConfig.model_validate(settings)
    [error] = caught.value.errors()
    assert error["loc"] == ((field,) if field else ())
    assert words in error["msg"]
    if field is None:  # model-level errors name the field in the message, never the token's value
        assert "token" in error["msg"] and TOKEN not in error["msg"]


def test_webhook_mode_needs_no_token() -> None:
    config = ReviewExporterConfig(mode="webhook", endpoint="https://hooks.example/x", headers={"X-Key": "k"})
    assert config.token is None and config.headers == {"X-Key": "k"}


COLLECTOR_YAML = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
exporters:
  review:
    endpoint: http://127.0.0.1:8080
    token: ${env:SPANGUARD_REVIEW_TOKEN}
  review/webhook: {mode: webhook, endpoint: https://hooks.example/x, headers: {X-Hook-Secret: abc}}
service:
  pipelines: {traces: {receivers: [otlp], exporters: [review, review/webhook]}}
"""


def test_collector_yaml_with_env_token_and_a_named_webhook() -> None:
    config = load_config_text(COLLECTOR_YAML, environ={"SPANGUARD_REVIEW_TOKEN": TOKEN})
    review, webhook = config.exporters["review"], config.exporters["review/webhook"]
    assert (review.type, review.name, webhook.type, webhook.name) == ("review", "", "review", "webhook")
    assert isinstance(review.config, ReviewExporterConfig) and review.config.token == TOKEN
    assert webhook.config.mode == "webhook" and webhook.config.url == "https://hooks.example/x"

    with pytest.raises(ConfigError) as caught:
        load_config_text(COLLECTOR_YAML, environ={})
    assert "environment variable SPANGUARD_REVIEW_TOKEN is not set" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config_text(COLLECTOR_YAML.replace("    token: ${env:SPANGUARD_REVIEW_TOKEN}\n", ""), environ={})
    assert ("exporters.review", caught.value.errors[0][1]) == caught.value.errors[0]
    assert "token is required in review mode" in str(caught.value)


def test_factory_builds_a_queued_exporter(tmp_path: Path) -> None:
    queue = {"storage": "file", "directory": str(tmp_path)}
    settings = {"endpoint": "http://127.0.0.1:1", "token": TOKEN, "sending_queue": queue}
    exporter = make_exporter("review", "review/x", settings)
    assert isinstance(exporter, Exporter) and exporter.name == "review/x"
    exporter.start()
    exporter.shutdown(timeout=1)
    assert exporter.stats["queue_capacity"] == 1000


# ---------------------------------------------------------------------------------------------------------------------
# The sender against a real HTTP server


def test_sender_posts_items_with_the_bearer_token(server: ReviewServer) -> None:
    data, trace_ids = review_batch(traces=1, spans=3)
    sender = ReviewSender(ReviewExporterConfig(endpoint=server.url, token=TOKEN))
    with started(sender):
        sender.send(Payload.of(data))
    [posted] = server.requests
    assert posted["path"] == "/v1/review-items"
    assert posted["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert posted["headers"]["content-type"] == "application/json"
    [item] = posted["body"]["items"]
    assert item == review_items(Payload.of(data).request)[0]
    assert item["trace_id"] == trace_ids[0] and len(item["spans"]) == 3


def test_sender_chunks_items_per_request(server: ReviewServer) -> None:
    data, trace_ids = review_batch(traces=5, spans=2)
    sender = ReviewSender(ReviewExporterConfig(endpoint=server.url, token=TOKEN, max_items_per_request=2))
    with started(sender):
        sender.send(Payload.of(data))
    assert [len(r["body"]["items"]) for r in server.requests] == [2, 2, 1]
    assert [item["trace_id"] for item in server.delivered()] == trace_ids
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in server.requests)


def test_a_batch_without_reviewable_traces_sends_nothing(server: ReviewServer, made: list[Exporter]) -> None:
    exporter = review_exporter(made, server.url, sending_queue={"enabled": False})
    exporter.consume(batch(span(os.urandom(16)), span(os.urandom(16), spanguard__risk__tier="green")))
    assert server.requests == []
    assert exporter.stats["failed_spans"] == 0 and exporter.stats["sent_batches"] == 1


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(status, False) for status in (400, 401, 403, 404, 409, 413, 422)],
        *[(status, True) for status in (429, 500, 502, 503, 504)],
    ],
)
def test_sender_classifies_http_statuses(server: ReviewServer, status: int, retryable: bool) -> None:
    server.script.append(status)
    sender = ReviewSender(ReviewExporterConfig(endpoint=server.url, token=TOKEN))
    with started(sender), pytest.raises(SendError) as caught:
        sender.send(Payload.of(review_batch()[0]))
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in str(caught.value)
    assert "scripted" not in str(caught.value)  # the response body is not repeated (it may quote span content)


def test_sender_connection_refused_is_retryable() -> None:
    down = ReviewServer(up=False)
    try:
        sender = ReviewSender(ReviewExporterConfig(endpoint=down.url, token=TOKEN))
        with started(sender), pytest.raises(SendError) as caught:
            sender.send(Payload.of(review_batch()[0]))
        assert caught.value.retryable
    finally:
        down.close()


def test_503_then_200_is_retried_and_delivered_once(server: ReviewServer, made: list[Exporter]) -> None:
    server.script.extend([503, 200])
    exporter = review_exporter(made, server.url)
    data, trace_ids = review_batch(traces=2, spans=2)
    exporter.consume(data)
    assert wait_until(lambda: exporter.stats["sent_batches"] == 1)
    assert [r["status"] for r in server.requests] == [503, 200]
    assert [item["trace_id"] for item in server.delivered()] == trace_ids
    assert server.requests[0]["body"] == server.requests[1]["body"]
    stats = exporter.stats
    assert (stats["sent_spans"], stats["retries"], stats["failed_spans"], stats["dropped"]) == (4, 1, 0, 0)


def test_400_is_permanent_dropped_and_counted(
    server: ReviewServer, made: list[Exporter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script.append(400)
    exporter = review_exporter(made, server.url)
    exporter.consume(review_batch(traces=1, spans=3)[0])
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3)
    assert wait_until(lambda: exporter.stats["queue_size"] == 0)
    stats = exporter.stats
    assert (stats["dropped"], stats["retries"], stats["sent_spans"]) == (3, 0, 0)
    assert len(server.requests) == 1
    assert "HTTP 400" in caplog.text
    assert SECRET not in caplog.text and TOKEN not in caplog.text


def test_422_from_the_service_is_dropped_with_a_logged_count_not_retried_and_the_queue_moves_on(
    server: ReviewServer, made: list[Exporter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script.append(422)
    exporter = review_exporter(made, server.url, sending_queue={"num_consumers": 1})
    refused, _ = review_batch(traces=2, spans=2)
    exporter.consume(refused)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 4)
    later, later_ids = review_batch(traces=1, spans=1)
    exporter.consume(later)
    assert wait_until(lambda: exporter.stats["sent_batches"] == 1)
    time.sleep(0.2)  # a retry of the refused batch (FAST_RETRY: 10 to 50 ms apart) would have been posted by now
    stats = exporter.stats
    assert (stats["dropped"], stats["retries"], stats["sent_spans"], stats["queue_size"]) == (4, 0, 1, 0)
    assert [r["status"] for r in server.requests] == [422, 200]
    assert [item["trace_id"] for item in server.delivered()] == later_ids
    assert "export of 4 spans failed permanently: HTTP 422" in caplog.text
    assert "scripted" not in caplog.text and SECRET not in caplog.text and TOKEN not in caplog.text


def test_service_down_then_up_delivers_from_the_persistent_queue_across_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    queue = {"storage": "file", "directory": str(tmp_path / "queue"), "num_consumers": 1}
    settings = {"endpoint": "", "token": TOKEN, "sending_queue": queue, "retry_on_failure": FAST_RETRY}
    with ReviewServer(up=False) as service:
        settings["endpoint"] = service.url
        first = make_exporter("review", "review", settings)
        first.start()
        early, early_ids = review_batch(traces=1)
        first.consume(early)  # fsync'd to disk, then retried against a closed port
        assert wait_until(lambda: first.stats["retries"] >= 1)
        first.shutdown(timeout=0.5)
        assert first.stats["sent_batches"] == 0 and first.stats["dropped"] == 0

        second = make_exporter("review", "review", settings)  # a restarted collector
        second.start()
        try:
            late, late_ids = review_batch(traces=1)
            second.consume(late)
            service.up()
            assert wait_until(lambda: second.stats["sent_batches"] == 2)
            assert sorted(item["trace_id"] for item in service.delivered()) == sorted(early_ids + late_ids)
            assert second.stats["dropped"] == 0
        finally:
            second.shutdown(timeout=2)
    assert SECRET not in caplog.text and TOKEN not in caplog.text


def test_webhook_posts_to_the_exact_url_with_custom_headers(server: ReviewServer, made: list[Exporter]) -> None:
    exporter = review_exporter(
        made,
        f"{server.url}/hooks/T00/abc?source=spanguard",
        name="review/webhook",
        mode="webhook",
        token=None,
        headers={"X-Hook-Secret": "hook-secret"},
    )
    data, trace_ids = review_batch(traces=2)
    exporter.consume(data)
    assert wait_until(lambda: exporter.stats["sent_batches"] == 1)
    [posted] = server.requests
    assert posted["path"] == "/hooks/T00/abc?source=spanguard"
    assert posted["headers"]["x-hook-secret"] == "hook-secret"
    assert "authorization" not in posted["headers"]
    assert [item["trace_id"] for item in posted["body"]["items"]] == trace_ids
    assert posted["body"]["items"] == review_items(Payload.of(data).request)


def test_webhook_with_a_token_sends_it(server: ReviewServer) -> None:
    config = ReviewExporterConfig(mode="webhook", endpoint=f"{server.url}/hook", token=TOKEN)
    with started(ReviewSender(config)) as sender:
        sender.send(Payload.of(review_batch()[0]))
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_shutdown_without_start_and_twice() -> None:
    config = {"endpoint": "http://127.0.0.1:1", "token": TOKEN}
    exporter = make_exporter("review", "review", config)
    exporter.shutdown(timeout=1)
    exporter.shutdown(timeout=1)
    started_exporter = make_exporter("review", "review/b", config)
    started_exporter.start()
    started_exporter.shutdown(timeout=1)
    started_exporter.shutdown(timeout=1)
    sender = ReviewSender(ReviewExporterConfig(**config))
    sender.close()  # before start
    sender.start()
    sender.close()
    sender.close()
    with pytest.raises(SendError) as caught:
        sender.send(Payload.of(review_batch()[0]))
    assert caught.value.retryable


# The collector end to end (tail sampling -> this exporter -> the review service): tests/review/test_end_to_end.py


# ---------------------------------------------------------------------------------------------------------------------
# Against the real review service (SQLite in tmp_path)


def test_the_review_service_takes_the_items_idempotently(tmp_path: Path, made: list[Exporter]) -> None:
    cli = pytest.importorskip("spanguard.review.cli")
    review_config = pytest.importorskip("spanguard.review.config")
    review_store = pytest.importorskip("spanguard.review.store")
    db = f"sqlite:///{tmp_path / 'review.db'}"
    config = review_config.ServiceConfig(db=db)
    store = review_store.ReviewStore(db, config.policy)
    store.migrate()
    ingest_token = store.create_token("collector", "ingest")
    reviewer_token = store.create_token("alice", "reviewer")
    service = cli.ReviewServer(config, store, port=0)
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        exporter = review_exporter(made, url, token=ingest_token, max_items_per_request=2)
        trace = os.urandom(16)
        root = reviewed(trace, "invoke_agent", blob=b"\x00\x01", nested={"a": [1, 2.5, "x"]}, nan=float("nan"))
        root.ClearField("parent_span_id")
        root.events.add(name="gen_ai.choice", time_unix_nano=1).attributes.append(kv("index", 0))
        others, other_ids = review_batch(traces=3)
        exporter.consume(batch(root))
        exporter.consume(others)
        exporter.consume(batch(reviewed(trace, "late chat", parent=root.span_id)))  # merges into the first item
        exporter.consume(batch(root))  # the same span again: no new item, no new span
        assert wait_until(lambda: exporter.stats["sent_batches"] == 4)
        assert exporter.stats["failed_spans"] == 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reviewer_token}"}, timeout=30) as client:
            listed = client.get("/v1/review-items", params={"limit": 100}).json()["items"]
            assert sorted(item["trace_id"] for item in listed) == sorted([trace.hex(), *other_ids])
            [first] = [item for item in listed if item["trace_id"] == trace.hex()]
            detail = client.get(f"/v1/review-items/{first['id']}").json()
        assert (detail["tier"], detail["risk_tier"], detail["reasons"]) == ("dual_approval", "red", ["approval_gate"])
        assert first["spans"] == 2  # the late span merged in, the repeated one did not add a span
        assert all(item["spans"] == 2 for item in listed if item["trace_id"] != trace.hex())
    finally:
        service.shutdown()
        store.shutdown()


def test_values_over_the_services_limits_are_cut_so_one_trace_never_gets_a_whole_batch_refused() -> None:
    from spanguard.review.schemas import ItemsIn

    trace = os.urandom(16)
    huge = reviewed(trace, "n" * 5000, spanguard__risk__reasons=[f"reason {i} " + "x" * 300 for i in range(300)])
    huge.status.CopyFrom(Status(code=Status.StatusCode.STATUS_CODE_ERROR, message="m" * 10_000))
    no_id = reviewed(trace, "no id")
    no_id.span_id = b""
    items = review_items(request(resource_spans(huge, no_id, version="v" * 1000)))
    body = ItemsIn.model_validate(json.loads(json.dumps({"items": items})))  # what the service accepts
    [item] = body.items
    assert len(item.spans) == 1 and len(item.spans[0].name) == 1024 and len(item.reasons) == 200
    assert len(item.spans[0].status.message) == 4096


def test_a_trace_with_more_spans_than_one_item_holds_is_split_into_items_of_the_same_trace() -> None:
    trace = os.urandom(16)
    items = review_items(request(resource_spans(*(reviewed(trace, f"s{i}") for i in range(5_001)))))
    assert [len(item["spans"]) for item in items] == [5_000, 1]
    assert {item["trace_id"] for item in items} == {trace.hex()}

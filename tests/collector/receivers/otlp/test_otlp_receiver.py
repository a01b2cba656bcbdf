"""The OTLP receiver over real sockets: official OTLP clients in, a recording consumer out, bad input refused."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pydantic
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanguard.collector.component import Backpressure, Component, PermanentError, TraceBatch
from spanguard.collector.receivers.otlp import otlp_json
from spanguard.collector.receivers.otlp.receiver import (
    EXPORT_METHOD,
    OtlpReceiver,
    OtlpReceiverConfig,
)

pytestmark = pytest.mark.timeout(60)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
LIMIT = 1024 * 1024  # the receivers under test accept 1 MiB


# ------------------------------------------------------------------------------------------------------------ helpers


class RecordingConsumer:
    """Records batches; can refuse the first N calls with Backpressure, raise, or block."""

    def __init__(self) -> None:
        self.reset()

    def reset(
        self,
        *,
        refuse_first: int = 0,
        retry_after: float = 0.05,
        error: Exception | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.batches: list[TraceBatch] = []
        self.calls = 0
        self.refuse_first, self.retry_after, self.error, self.gate = refuse_first, retry_after, error, gate
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def consume(self, batch: TraceBatch) -> None:
        with self._lock:
            self.calls += 1
            refuse = self.calls <= self.refuse_first
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if refuse:
            raise Backpressure("sending queue is full", self.retry_after)
        if self.error is not None:
            raise self.error
        with self._lock:
            self.batches.append(batch)

    @property
    def spans(self) -> list[Any]:
        return [s for b in self.batches for r in b.resource_spans for sc in r.scope_spans for s in sc.spans]


class RecordingTelemetry:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def accepted(self, receiver: str, transport: str, spans: int) -> None:
        self.events.append(("accepted", receiver, transport, spans))

    def refused(self, receiver: str, transport: str, spans: int, reason: str) -> None:
        self.events.append(("refused", receiver, transport, spans, reason))


def config(grpc_endpoint: str | None = "127.0.0.1:0", http_endpoint: str | None = "127.0.0.1:0", **tls: Any):
    protocols: dict[str, Any] = {}
    if grpc_endpoint is not None:
        protocols["grpc"] = {"endpoint": grpc_endpoint, "max_recv_msg_size_mib": 1, **tls}
    if http_endpoint is not None:
        protocols["http"] = {"endpoint": http_endpoint, "max_request_body_size_mib": 1, **tls}
    return OtlpReceiverConfig.model_validate({"protocols": protocols})


def sdk_spans(count: int = 3) -> list[ReadableSpan]:
    """Spans from the real SDK: one trace, a root and ``count - 1`` children."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root"):
        for index in range(count - 1):
            with tracer.start_as_current_span(f"child-{index}", attributes={"index": index}):
                pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def request_of(count: int = 3) -> ExportTraceServiceRequest:
    return encode_spans(sdk_spans(count))


def with_bad_ids() -> ExportTraceServiceRequest:
    """Five spans: two valid, then a 3-byte trace id, an all-zero span id, and a 4-byte parent id."""
    request = request_of(5)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[2].trace_id = b"\x01\x02\x03"
    spans[3].span_id = bytes(8)
    spans[4].parent_span_id = b"\x01\x02\x03\x04"
    return request


def length_delimited(field: int, payload: bytes) -> bytes:
    size, out = len(payload), bytearray([(field << 3) | 2])
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out) + payload


def deeply_nested(depth: int) -> bytes:
    """A valid span whose one attribute is ``depth`` kvlists deep, as raw protobuf (no encoder limit in the way)."""
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(depth):  # AnyValue.kvlist_value(6) -> KeyValueList.values(1) -> KeyValue{key(1), value(2)}
        value = length_delimited(6, length_delimited(1, length_delimited(1, b"k") + length_delimited(2, value)))
    span = request_of(1).resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    span += length_delimited(9, length_delimited(1, b"deep") + length_delimited(2, value))  # Span.attributes(9)
    return length_delimited(1, length_delimited(2, length_delimited(2, span)))  # resource_spans/scope_spans/spans


class Client:
    """Raw OTLP over both transports to one receiver."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self.url = f"http://127.0.0.1:{receiver.http_port}/v1/traces"
        self.http = httpx.Client(timeout=10)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}")
        self.export = self.channel.unary_unary(
            EXPORT_METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )

    def post(self, body: Any, content_type: str = PROTOBUF, **headers: str) -> httpx.Response:
        headers = {"content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.http.post(self.url, content=body, headers=headers)

    def grpc(self, body: bytes, **kwargs: Any) -> tuple[grpc.StatusCode, Any]:
        """(code, response) or (code, the RpcError)."""
        try:
            return grpc.StatusCode.OK, self.export(body, timeout=10, **kwargs)
        except grpc.RpcError as error:
            return error.code(), error

    def close(self) -> None:
        self.http.close()
        self.channel.close()

    def assert_still_serving(self, consumer: RecordingConsumer) -> None:
        before = len(consumer.spans)
        assert self.post(request_of(2).SerializeToString()).status_code == 200
        assert self.grpc(request_of(2).SerializeToString())[0] == grpc.StatusCode.OK
        assert len(consumer.spans) == before + 4


def http_status(response: httpx.Response) -> status_pb2.Status:
    """The ``google.rpc.Status`` body, in the response's encoding."""
    if response.headers["content-type"].startswith(JSON):
        data = json.loads(response.content)
        return status_pb2.Status(code=data.get("code", 0), message=data.get("message", ""))
    return status_pb2.Status.FromString(response.content)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[OtlpReceiver, RecordingConsumer, Client]]:
    consumer = RecordingConsumer()
    receiver = OtlpReceiver("otlp", config(), consumer)
    receiver.start()
    client = Client(receiver)
    yield receiver, consumer, client
    client.close()
    receiver.shutdown()


@pytest.fixture
def consumer(shared: tuple[OtlpReceiver, RecordingConsumer, Client]) -> RecordingConsumer:
    shared[1].reset()
    return shared[1]


@pytest.fixture
def client(shared: tuple[OtlpReceiver, RecordingConsumer, Client], consumer: RecordingConsumer) -> Client:
    return shared[2]


# -------------------------------------------------------------------------------------------- official OTLP clients


def test_official_grpc_exporter_with_gzip(client: Client, consumer: RecordingConsumer) -> None:
    spans = sdk_spans(3)
    exporter = GrpcSpanExporter(
        endpoint=f"127.0.0.1:{client.receiver.grpc_port}", insecure=True, compression=grpc.Compression.Gzip
    )
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert sorted(s.name for s in consumer.spans) == ["child-0", "child-1", "root"]
    assert {s.trace_id for s in consumer.spans} == {spans[0].context.trace_id.to_bytes(16, "big")}
    resource = consumer.batches[0].resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "receiver-test"


@pytest.mark.parametrize("compression", [HttpCompression.Gzip, HttpCompression.Deflate, HttpCompression.NoCompression])
def test_official_http_exporter(client: Client, consumer: RecordingConsumer, compression: HttpCompression) -> None:
    exporter = HttpSpanExporter(endpoint=client.url, compression=compression)
    try:
        assert exporter.export(sdk_spans(3)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert sorted(s.name for s in consumer.spans) == ["child-0", "child-1", "root"]


def test_http_json(client: Client, consumer: RecordingConsumer) -> None:
    request = request_of(3)
    response = client.post(otlp_json.encode_request(request), JSON)
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    assert response.json() == {}
    assert consumer.batches[0].resource_spans == list(request.resource_spans)
    # gzip-compressed JSON too
    response = client.post(
        gzip.compress(otlp_json.encode_request(request)), f"{JSON}; charset=utf-8", content_encoding="gzip"
    )
    assert response.status_code == 200 and len(consumer.spans) == 6


# ---------------------------------------------------------------------------------------------------- backpressure


def test_grpc_backpressure_is_unavailable_with_retry_info(client: Client, consumer: RecordingConsumer) -> None:
    consumer.reset(refuse_first=1, retry_after=2.5)
    code, error = client.grpc(request_of(2).SerializeToString())
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "sending queue is full" in error.details()
    status = rpc_status.from_call(error)
    assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and info.retry_delay.ToTimedelta() == datetime.timedelta(seconds=2.5)
    trailer = dict(error.trailing_metadata())["google.rpc.retryinfo-bin"]  # the form the Python exporter reads
    assert error_details_pb2.RetryInfo.FromString(trailer) == info
    assert consumer.spans == []


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_http_backpressure_is_503_with_retry_after(
    client: Client, consumer: RecordingConsumer, content_type: str
) -> None:
    consumer.reset(refuse_first=1, retry_after=2.5)
    body = request_of(2)
    response = client.post(
        otlp_json.encode_request(body) if content_type == JSON else body.SerializeToString(), content_type
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"  # whole seconds, rounded up
    status = http_status(response)
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0] and "sending queue is full" in status.message
    assert consumer.spans == []


def test_official_grpc_exporter_retries_backpressure(client: Client, consumer: RecordingConsumer) -> None:
    consumer.reset(refuse_first=2, retry_after=0.05)
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{client.receiver.grpc_port}", insecure=True, timeout=10)
    started = time.monotonic()
    try:
        assert exporter.export(sdk_spans(2)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert consumer.calls == 3 and len(consumer.spans) == 2  # refused twice, then taken once
    assert time.monotonic() - started < 3  # it waited as RetryInfo said (0.05 s), not its own 1 s, 2 s backoff


def test_official_http_exporter_retries_backpressure(client: Client, consumer: RecordingConsumer) -> None:
    consumer.reset(refuse_first=2, retry_after=0.05)
    exporter = HttpSpanExporter(endpoint=client.url, compression=HttpCompression.Gzip, timeout=10)
    try:
        assert exporter.export(sdk_spans(2)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert consumer.calls == 3 and len(consumer.spans) == 2


def test_admission_is_checked_before_parsing() -> None:
    sizes: list[int] = []

    def admission(size: int) -> None:
        sizes.append(size)
        raise Backpressure("memory limit reached", 1.0)

    consumer = RecordingConsumer()
    receiver = OtlpReceiver("otlp", config(), consumer, admission=admission)
    receiver.start()
    client = Client(receiver)
    try:
        garbage = b"\xff" * 100  # not even protobuf: refused for load, not parsed
        response = client.post(garbage)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "memory limit reached" in http_status(response).message
        code, error = client.grpc(garbage)
        assert code == grpc.StatusCode.UNAVAILABLE and "memory limit reached" in error.details()
        assert sizes == [100, 100] and consumer.calls == 0
    finally:
        client.close()
        receiver.shutdown()


# ------------------------------------------------------------------------------------------------------ bad input


def test_grpc_malformed_protobuf(client: Client, consumer: RecordingConsumer) -> None:
    code, error = client.grpc(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP ExportTraceServiceRequest protobuf" in error.details()
    client.assert_still_serving(consumer)


def test_grpc_deeply_nested_any_value(client: Client, consumer: RecordingConsumer) -> None:
    code, error = client.grpc(deeply_nested(200))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "nested deeper" in error.details()
    code, _ = client.grpc(deeply_nested(10))  # a reasonable depth is fine
    assert code == grpc.StatusCode.OK and len(consumer.spans) == 1
    client.assert_still_serving(consumer)


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_grpc_oversized_message(client: Client, consumer: RecordingConsumer, compression: Any) -> None:
    request = request_of(1)
    request.resource_spans[0].scope_spans[0].spans[0].name = "x" * (LIMIT + 10)  # gzips to a few KiB
    code, error = client.grpc(request.SerializeToString(), compression=compression)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in error.details()
    client.assert_still_serving(consumer)


def test_grpc_partial_success_for_bad_ids(client: Client, consumer: RecordingConsumer) -> None:
    code, response = client.grpc(with_bad_ids().SerializeToString())
    assert code == grpc.StatusCode.OK
    assert response.partial_success.rejected_spans == 3
    assert "trace_id is 3 bytes, must be 16" in response.partial_success.error_message
    assert len(consumer.spans) == 2


def test_grpc_empty_request(client: Client, consumer: RecordingConsumer) -> None:
    code, response = client.grpc(b"")
    assert code == grpc.StatusCode.OK and response == ExportTraceServiceResponse()
    assert consumer.calls == 0


def bomb() -> bytes:
    return gzip.compress(bytes(64 * LIMIT), compresslevel=9)  # 64 MiB of zeros in ~64 KiB


def chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 65536):
        yield b"\x00" * 65536


HTTP_BAD_INPUT = [
    # (id, body, content type, headers, status, words in the google.rpc.Status message)
    (
        "malformed protobuf",
        b"\x0a\xff\xff\xff\xff\x0f",
        PROTOBUF,
        {},
        400,
        "not a valid OTLP ExportTraceServiceRequest",
    ),
    ("invalid UTF-8 JSON", b'{"resourceSpans": "\xc3\x28"}', JSON, {}, 400, "not valid UTF-8"),
    ("bad JSON", b'{"resourceSpans": [', JSON, {}, 400, "not valid JSON"),
    (
        "base64 ids in JSON",
        otlp_json.encode_request(request_of(1)).replace(b'"traceId":"', b'"traceId":"+/'),
        JSON,
        {},
        400,
        "must be a hex string",
    ),
    ("wrong content type", b"{}", "text/plain", {}, 415, "unsupported Content-Type 'text/plain'"),
    ("no content type", b"{}", "", {}, 415, "unsupported Content-Type"),
    ("unsupported encoding", b"{}", JSON, {"content_encoding": "br"}, 415, "unsupported Content-Encoding 'br'"),
    ("oversized Content-Length", bytes(LIMIT + 1), PROTOBUF, {}, 413, "exceeds the 1 MiB limit"),
    ("oversized chunked", None, PROTOBUF, {}, 413, "exceeds the 1 MiB limit"),
    ("gzip bomb", None, PROTOBUF, {"content_encoding": "gzip"}, 413, "decompresses to more than 1 MiB"),
    ("invalid gzip", b"\x1f\x8b not gzip", PROTOBUF, {"content_encoding": "gzip"}, 400, "not valid gzip"),
    ("truncated gzip", gzip.compress(b"x" * 1000)[:20], PROTOBUF, {"content_encoding": "gzip"}, 400, "truncated gzip"),
    ("invalid deflate", b"nope", PROTOBUF, {"content_encoding": "deflate"}, 400, "not valid deflate"),
    ("deeply nested protobuf", deeply_nested(200), PROTOBUF, {}, 400, "nested deeper than protobuf's limit"),
    ("deeply nested JSON", b'{"resourceSpans":' + b"[" * 50_000 + b"]" * 50_000 + b"}", JSON, {}, 400, "nests deeper"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "words"),
    [c[1:] for c in HTTP_BAD_INPUT],
    ids=[c[0] for c in HTTP_BAD_INPUT],
)
def test_http_bad_input(
    client: Client,
    consumer: RecordingConsumer,
    body: Any,
    content_type: str,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    if body is None:
        body = bomb() if headers else chunks(4 * LIMIT)
    response = client.post(body, content_type, **headers)
    assert response.status_code == status, response.content
    message = http_status(response)
    assert words in message.message
    expected_type = PROTOBUF if content_type == PROTOBUF else JSON  # the Status comes in the request's encoding
    assert response.headers["content-type"] == expected_type
    assert consumer.calls == 0
    client.assert_still_serving(consumer)


def test_http_huge_body_is_refused_without_buffering(client: Client, consumer: RecordingConsumer) -> None:
    started = time.monotonic()
    response = client.post(chunks(256 * LIMIT))  # 256 MiB offered; refused after the first MiB, the rest discarded
    assert response.status_code == 413
    assert time.monotonic() - started < 5
    client.assert_still_serving(consumer)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_http_partial_success_for_bad_ids(client: Client, consumer: RecordingConsumer, content_type: str) -> None:
    request = with_bad_ids()
    body = otlp_json.encode_request(request) if content_type == JSON else request.SerializeToString()
    response = client.post(body, content_type)
    assert response.status_code == 200
    if content_type == JSON:
        answer = otlp_json.decode_response(response.content)
    else:
        answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert "resource_spans[0].scope_spans[0].spans[2]: trace_id is 3 bytes" in answer.partial_success.error_message
    assert [s.name for s in consumer.spans] == [s.name for s in request.resource_spans[0].scope_spans[0].spans[:2]]


def test_all_spans_invalid_consumes_nothing(client: Client, consumer: RecordingConsumer) -> None:
    request = request_of(2)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = bytes(16)
    response = client.post(request.SerializeToString())
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200 and answer.partial_success.rejected_spans == 2
    assert "trace_id is all zeros" in answer.partial_success.error_message
    assert consumer.calls == 0


@pytest.mark.parametrize(("body", "content_type"), [(b"", PROTOBUF), (b"{}", JSON), (b'{"resourceSpans": []}', JSON)])
def test_http_empty_request(client: Client, consumer: RecordingConsumer, body: bytes, content_type: str) -> None:
    response = client.post(body, content_type)
    assert response.status_code == 200
    assert response.content == (b"{}" if content_type == JSON else b"")
    assert consumer.calls == 0


def test_http_other_paths_and_methods(client: Client) -> None:
    assert client.http.post(client.url.replace("/v1/traces", "/v1/logs"), content=b"").status_code == 404
    response = client.http.get(client.url)
    assert response.status_code == 405 and response.headers["allow"] == "POST"


# --------------------------------------------------------------------------------------------- consumer failures


def test_permanent_error_is_invalid_argument(client: Client, consumer: RecordingConsumer) -> None:
    consumer.reset(error=PermanentError("spans from a banned service"))
    response = client.post(request_of(1).SerializeToString())
    assert response.status_code == 400 and "banned service" in http_status(response).message
    code, error = client.grpc(request_of(1).SerializeToString())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "banned service" in error.details()


def test_unexpected_error_is_internal_logged_once_without_content(
    client: Client, consumer: RecordingConsumer, caplog: pytest.LogCaptureFixture
) -> None:
    consumer.reset(error=RuntimeError("boom: user said jane.doe@example.com"))
    with caplog.at_level(logging.ERROR, logger="spanguard.collector.receivers"):
        response = client.post(request_of(1).SerializeToString())
        assert response.status_code == 500
        assert "jane.doe" not in response.text and "internal error" in http_status(response).message
        code, error = client.grpc(request_of(1).SerializeToString())
        assert code == grpc.StatusCode.INTERNAL and "jane.doe" not in error.details()
    records = [r for r in caplog.records if r.name == "spanguard.collector.receivers"]
    assert len(records) == 2  # once per failed request
    assert all("RuntimeError" in r.getMessage() and "jane.doe" not in r.getMessage() for r in records)
    consumer.reset()
    client.assert_still_serving(consumer)


def test_telemetry_counts_accepted_and_refused() -> None:
    telemetry = RecordingTelemetry()
    consumer = RecordingConsumer()
    receiver = OtlpReceiver("otlp/in", config(), consumer, telemetry=telemetry)
    receiver.start()
    client = Client(receiver)
    try:
        client.post(request_of(3).SerializeToString())
        client.grpc(with_bad_ids().SerializeToString())
        client.post(b"\xff", JSON)
        consumer.reset(refuse_first=1)
        client.grpc(request_of(2).SerializeToString())
    finally:
        client.close()
        receiver.shutdown()
    assert telemetry.events == [
        ("accepted", "otlp/in", "http", 3),
        ("refused", "otlp/in", "grpc", 3, "invalid"),
        ("accepted", "otlp/in", "grpc", 2),
        ("refused", "otlp/in", "http", 0, "malformed"),
        ("refused", "otlp/in", "grpc", 2, "backpressure"),
    ]


# ----------------------------------------------------------------------------------------------------- fuzzing


def mutated(data: st.DataObject) -> bytes:
    body = bytearray(request_of(2).SerializeToString())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    return bytes(body)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.data())
def test_random_bytes_never_cause_an_internal_error(client: Client, data: st.DataObject) -> None:
    body = data.draw(st.binary(max_size=1024)) if data.draw(st.booleans()) else mutated(data)
    compressed = data.draw(st.booleans())
    payload = gzip.compress(body) if compressed else body
    headers = {"content_encoding": "gzip"} if compressed else {}
    for content_type in (PROTOBUF, JSON):
        response = client.post(payload, content_type, **headers)
        assert response.status_code in (200, 400), (response.status_code, response.content)
    code, _ = client.grpc(body)
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), code


# ---------------------------------------------------------------------------------------------------- lifecycle


def test_is_a_component() -> None:
    assert isinstance(OtlpReceiver("otlp", config(), RecordingConsumer()), Component)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_port_in_use_is_a_clear_error(transport: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = f"127.0.0.1:{port}"
        cfg = (
            config(grpc_endpoint=endpoint, http_endpoint=None)
            if transport == "grpc"
            else config(http_endpoint=endpoint)
        )
        receiver = OtlpReceiver("otlp", cfg, RecordingConsumer())
        with pytest.raises(
            OSError, match=f"(?i)cannot listen for {transport} on {endpoint}: address already in use"
        ) as info:
            receiver.start()
        assert f"port {port}" in str(info.value)
        receiver.shutdown()  # safe after a failed start


def test_shutdown_unstarted_and_twice() -> None:
    receiver = OtlpReceiver("otlp", config(), RecordingConsumer())
    receiver.shutdown()
    receiver.shutdown()
    started = OtlpReceiver("otlp", config(), RecordingConsumer())
    started.start()
    started.shutdown(timeout=2)
    started.shutdown(timeout=2)
    with pytest.raises(RuntimeError, match="already started"):
        started.start()


def _in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception as error:
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_shutdown_stops_accepting_then_waits_for_in_flight(transport: str) -> None:
    consumer = RecordingConsumer()
    gate = threading.Event()
    consumer.reset(gate=gate)
    receiver = OtlpReceiver("otlp", config(), consumer)
    receiver.start()
    client = Client(receiver)
    body = request_of(2).SerializeToString()
    send = (lambda: client.post(body).status_code) if transport == "http" else (lambda: client.grpc(body)[0])
    request, outcome = _in_thread(send)
    assert consumer.entered.wait(5)
    stopper, _ = _in_thread(lambda: receiver.shutdown(timeout=10))
    time.sleep(0.3)
    assert stopper.is_alive()  # waiting for the request in flight
    port = receiver.http_port if transport == "http" else receiver.grpc_port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # no longer accepting
    gate.set()
    request.join(5)
    stopper.join(5)
    assert not stopper.is_alive()
    assert outcome == [200 if transport == "http" else grpc.StatusCode.OK] and len(consumer.spans) == 2
    client.close()


def test_shutdown_is_bounded_when_a_request_hangs() -> None:
    consumer = RecordingConsumer()
    gate = threading.Event()
    consumer.reset(gate=gate)
    receiver = OtlpReceiver("otlp", config(), consumer)
    receiver.start()
    client = Client(receiver)
    body = request_of(1).SerializeToString()
    http_request, _ = _in_thread(lambda: client.post(body))
    grpc_request, _ = _in_thread(lambda: client.grpc(body))
    deadline = time.monotonic() + 5
    while consumer.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    receiver.shutdown(timeout=0.5)
    assert time.monotonic() - started < 1.5
    gate.set()
    http_request.join(5)
    grpc_request.join(5)
    client.close()


# ------------------------------------------------------------------------------------------------------ config


def test_config_defaults_and_present_means_enabled() -> None:
    cfg = OtlpReceiverConfig.model_validate({"protocols": {"grpc": None, "http": None}})
    assert cfg.protocols.grpc is not None and cfg.protocols.grpc.endpoint == "127.0.0.1:4317"
    assert cfg.protocols.grpc.max_recv_msg_size_mib == 64
    assert cfg.protocols.http is not None and cfg.protocols.http.endpoint == "127.0.0.1:4318"
    assert cfg.protocols.http.max_request_body_size_mib == 64
    only_grpc = OtlpReceiverConfig.model_validate({"protocols": {"grpc": {}}})
    assert only_grpc.protocols.http is None


@pytest.mark.parametrize(
    ("raw", "location", "words"),
    [
        ({"protocols": {}}, (), "at least one protocol"),
        ({"protocols": {"grpc": {"endpoint": "nope"}}}, ("grpc", "endpoint"), "host:port"),
        ({"protocols": {"http": {"endpoint": "127.0.0.1:99999"}}}, ("http", "endpoint"), "host:port"),
        ({"protocols": {"grpc": {"max_recv_msg_size_mib": 0}}}, ("grpc", "max_recv_msg_size_mib"), "greater than"),
        ({"protocols": {"grpc": {"bogus": 1}}}, ("grpc", "bogus"), "Extra inputs"),
        ({"protocols": {"grpc": {}}, "extra": 1}, ("extra",), "Extra inputs"),
        (
            {"protocols": {"http": {"tls": {"cert_file": "/nonexistent/cert.pem", "key_file": __file__}}}},
            ("http", "tls", "cert_file"),
            "file not found: '/nonexistent/cert.pem'",
        ),
        (
            {"protocols": {"grpc": {"tls": {"cert_file": __file__, "key_file": "/nonexistent/key.pem"}}}},
            ("grpc", "tls", "key_file"),
            "file not found",
        ),
    ],
)
def test_config_refusals_name_the_field(raw: dict[str, Any], location: tuple[str, ...], words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        OtlpReceiverConfig.model_validate(raw)
    error = info.value.errors()[0]
    if location:
        assert tuple(str(part) for part in error["loc"])[-len(location) :] == location
    assert words in error["msg"]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_tls_on_both_transports(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    consumer = RecordingConsumer()
    receiver = OtlpReceiver("otlp", config(tls={"cert_file": str(cert_file), "key_file": str(key_file)}), consumer)
    receiver.start()
    try:
        body = request_of(2).SerializeToString()
        context = ssl.create_default_context(cafile=str(cert_file))
        with httpx.Client(verify=context) as https:
            url = f"https://127.0.0.1:{receiver.http_port}/v1/traces"
            assert https.post(url, content=body, headers={"content-type": PROTOBUF}).status_code == 200
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_file.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{receiver.grpc_port}", credentials) as channel:
            channel.unary_unary(EXPORT_METHOD)(body, timeout=10)
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body, timeout=5)
        assert len(consumer.spans) == 4
    finally:
        receiver.shutdown()


def test_deflate_body_zlib_wrapped_or_raw(client: Client, consumer: RecordingConsumer) -> None:
    body = request_of(2).SerializeToString()
    assert client.post(zlib.compress(body), content_encoding="deflate").status_code == 200
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert client.post(raw.compress(body) + raw.flush(), content_encoding="deflate").status_code == 200
    assert len(consumer.spans) == 4


def test_multi_member_gzip(client: Client, consumer: RecordingConsumer) -> None:
    request = request_of(2).SerializeToString()
    half = len(request) // 2
    response = client.post(gzip.compress(request[:half]) + gzip.compress(request[half:]), content_encoding="gzip")
    assert response.status_code == 200 and len(consumer.spans) == 2


def test_http_answers_without_nagle_delay(client: Client, consumer: RecordingConsumer) -> None:
    body = request_of(1).SerializeToString()
    started = time.monotonic()
    for _ in range(20):
        assert client.post(body).status_code == 200
    assert time.monotonic() - started < 0.5  # ~40 ms each if the response body waited for a delayed ACK

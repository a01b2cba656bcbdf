"""OTLP/JSON as the specification defines it: hex ids, lowerCamelCase, integer enums, int64 as strings or numbers."""

from __future__ import annotations

import base64
import json
import re

import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from spanguard.collector.receivers.otlp import otlp_json

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
PARENT_HEX = "eee19b7ec3c1b173"

# The example of the OTLP specification (examples/trace.json), with int64 both as a string and as a number,
# an enum both as an integer and by name, upper-case hex, an unknown field and a snake_case key.
SPEC_EXAMPLE = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": TRACE_HEX,
                            "spanId": SPAN_HEX,
                            "parentSpanId": PARENT_HEX.upper(),
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": 1544712661000000000,
                            "kind": 2,
                            "attributes": [
                                {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                                {"key": "count", "value": {"intValue": "42"}},
                                {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
                            ],
                            "links": [{"traceId": TRACE_HEX, "spanId": PARENT_HEX}],
                            "status": {"code": "STATUS_CODE_OK"},
                            "someFutureField": {"ignored": True},
                        },
                        {"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "name": "snake"},
                    ],
                }
            ],
        }
    ]
}


def sdk_request() -> ExportTraceServiceRequest:
    """A request as the SDK's own OTLP encoder builds it: two spans, a parent, a link, events, typed attributes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test", "1.2")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            links=[Link(root.get_span_context(), {"why": "because"})],
            attributes={"gen_ai.request.model": "gpt-4o", "n": 3, "f": 0.5, "ok": True, "tags": ("a", "b")},
        ) as span:
            span.add_event("e", {"k": "v"})
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def test_round_trip_of_sdk_spans() -> None:
    request = sdk_request()
    assert otlp_json.decode_request(otlp_json.encode_request(request)) == request


def test_encoding_follows_the_specification() -> None:
    request = sdk_request()
    text = otlp_json.encode_request(request).decode("utf-8")
    assert "\n" not in text  # one line: fit for JSON lines
    data = json.loads(text)
    spans = data["resourceSpans"][0]["scopeSpans"][0]["spans"]
    index = next(i for i, span in enumerate(spans) if span["name"] == "chat gpt-4o")
    span, original = spans[index], request.resource_spans[0].scope_spans[0].spans[index]
    assert span["traceId"] == original.trace_id.hex() and re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
    assert span["spanId"] == original.span_id.hex()
    assert span["parentSpanId"] == original.parent_span_id.hex()
    assert span["links"][0]["traceId"] == original.links[0].trace_id.hex()
    assert span["links"][0]["spanId"] == original.links[0].span_id.hex()
    assert span["kind"] == 3  # enums as integers
    assert isinstance(span["startTimeUnixNano"], str)  # 64-bit integers as strings
    assert "scopeSpans" in data["resourceSpans"][0] and "scope_spans" not in text  # lowerCamelCase keys


def test_decodes_the_specification_example() -> None:
    request = otlp_json.decode_request(json.dumps(SPEC_EXAMPLE).encode())
    span, snake = request.resource_spans[0].scope_spans[0].spans
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    assert span.span_id == bytes.fromhex(SPAN_HEX)
    assert span.parent_span_id == bytes.fromhex(PARENT_HEX)
    assert span.links[0].trace_id == bytes.fromhex(TRACE_HEX) and span.links[0].span_id == bytes.fromhex(PARENT_HEX)
    assert span.start_time_unix_nano == 1544712660000000000 and span.end_time_unix_nano == 1544712661000000000
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.status.code == 1
    assert span.attributes[1].value.int_value == 42
    assert span.attributes[2].value.bytes_value == b"\x00\x01"  # other bytes fields stay base64
    assert snake.trace_id == bytes.fromhex(TRACE_HEX) and snake.name == "snake"


def test_empty_request_is_an_empty_object() -> None:
    assert otlp_json.decode_request(b"{}") == ExportTraceServiceRequest()
    assert otlp_json.encode_request(ExportTraceServiceRequest()) == b"{}"


def test_responses_and_statuses() -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 2
    response.partial_success.error_message = "bad ids"
    body = otlp_json.encode_response(response)
    assert json.loads(body) == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "bad ids"}}
    assert otlp_json.decode_response(body) == response
    assert otlp_json.encode_response(ExportTraceServiceResponse()) == b"{}"
    assert json.loads(otlp_json.encode_message(status_pb2.Status(code=3, message="no"))) == {"code": 3, "message": "no"}


def _with_span(**fields: object) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}).encode()


def _nested_json(depth: int) -> bytes:
    value: dict = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return _with_span(traceId=TRACE_HEX, spanId=SPAN_HEX, attributes=[{"key": "deep", "value": value}])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"resourceSpans": "\xff"}', "not valid UTF-8: byte 0xff at offset 19"),
        (b'{"resourceSpans": [}', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (_with_span(traceId=base64.b64encode(bytes(range(16))).decode()), "spans[0].traceId must be a hex string"),
        (_with_span(spanId="abc"), "resourceSpans[0].scopeSpans[0].spans[0].spanId must be a hex string"),
        (_with_span(parentSpanId="zz" * 8), "parentSpanId must be a hex string"),
        (_with_span(links=[{"traceId": "not hex"}]), "spans[0].links[0].traceId must be a hex string"),
        (_with_span(name=5), "resourceSpans.scopeSpans.spans.name"),
        (_with_span(startTimeUnixNano=-1), "startTimeUnixNano: Value out of range"),
        (b'{"resourceSpans": {"a": 1}}', "resourceSpans"),
        (_nested_json(60), "nests deeper than 100 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than"),
    ],
)
def test_bad_input_is_a_clear_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message) if " " in message else message):
        otlp_json.decode_request(body)


def test_moderate_nesting_is_fine() -> None:
    request = otlp_json.decode_request(_nested_json(20))
    assert request.resource_spans[0].scope_spans[0].spans[0].attributes[0].key == "deep"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "links", "name", "attributes"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512) | st.builds(lambda v: json.dumps(v).encode(), JSON_VALUES))
def test_random_input_decodes_or_raises_value_error(body: bytes) -> None:
    try:
        otlp_json.decode_request(body)
    except ValueError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.text(max_size=8) | st.integers() | st.lists(st.text(max_size=8), max_size=2),
        lambda children: st.dictionaries(KEYS, children, max_size=3) | st.lists(children, max_size=3),
        max_leaves=12,
    )
)
def test_otlp_shaped_random_json_decodes_or_raises_value_error(value: object) -> None:
    try:
        otlp_json.decode_request(json.dumps({"resourceSpans": value}).encode())
    except ValueError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8), st.binary(max_size=8), st.text())
def test_round_trip_of_any_ids_and_names(trace_id: bytes, span_id: bytes, parent: bytes, name: str) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.parent_span_id, span.name = trace_id, span_id, parent, name
    link = span.links.add()
    link.trace_id, link.span_id = trace_id, span_id
    assert otlp_json.decode_request(otlp_json.encode_request(request)) == request

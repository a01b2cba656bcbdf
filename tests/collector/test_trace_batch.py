"""TraceBatch made from bytes: decoded only when read, forwarded as the same bytes otherwise, never stale."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanguard.collector.component import TraceBatch
from spanguard.collector.fanout import FanOut
from spanguard.exporters.exporterhelper.sending import Payload


def _data(*names: str) -> bytes:
    spans = [Span(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name=n) for i, n in enumerate(names)]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    ).SerializeToString()


def test_bytes_are_forwarded_as_they_are_until_the_protobufs_are_read():
    data = _data("a", "b")
    batch = TraceBatch.from_bytes(data, 2)
    assert batch.encoded is data and batch.span_count == 2
    assert Payload.of(batch).data is data  # the exporter sends the bytes without a decode and re-encode
    batch.resource_spans[0].scope_spans[0].spans[0].name = "changed"  # whoever reads them may change them
    assert batch.encoded is None
    assert (
        ExportTraceServiceRequest.FromString(Payload.of(batch).data).resource_spans[0].scope_spans[0].spans[0].name
        == "changed"
    )


def test_span_count_without_a_given_count_and_assigning_spans():
    batch = TraceBatch.from_bytes(_data("a", "b", "c"))
    assert batch.span_count == 3
    batch.resource_spans = []
    assert batch.span_count == 0 and batch.encoded is None


def test_joined_concatenates_requests_and_mixes_with_protobufs():
    joined = TraceBatch.joined([TraceBatch.from_bytes(_data("a"), 1), TraceBatch.from_bytes(_data("b", "c"), 2)])
    assert joined.encoded is not None and joined.span_count == 3
    names = [s.name for r in joined.resource_spans for sc in r.scope_spans for s in sc.spans]
    assert names == ["a", "b", "c"]
    mixed = TraceBatch.joined(
        [TraceBatch.from_bytes(_data("a")), TraceBatch.of(TraceBatch.from_bytes(_data("b")).resource_spans)]
    )
    assert mixed.encoded is None and [
        s.name for r in mixed.resource_spans for sc in r.scope_spans for s in sc.spans
    ] == ["a", "b"]


def test_fan_out_shares_bytes_between_consumers():
    got: list[TraceBatch] = []

    class Keep:
        def consume(self, batch: TraceBatch) -> None:
            got.append(batch)

    data = _data("a")
    FanOut([Keep(), Keep()]).consume(TraceBatch.from_bytes(data, 1))
    assert [b.encoded for b in got] == [data, data] and got[0] is not got[1]

"""Content log records folded into their spans: the fold itself, which records it keeps, the collector joining a
logs pipeline to a traces pipeline (records before and after their span), and the config rules that keep the join
private and possible."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from spanguard.processors import otlp
from spanguard.processors.genai_normalize.fold import ContentFold, content_event
from spanguard.processors.view import EventView, SpanView

TRACE = "ab" * 16
SPAN = "cd" * 8
DETAILS = "gen_ai.client.inference.operation.details"
MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "refund order 7 to lee@example.com"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "tool_call", "name": "refund", "id": "c1", "arguments": {"n": 7}}]}]


def view(attributes: dict | None = None) -> SpanView:
    return SpanView(TRACE, SPAN, "chat gpt-4o", attributes=attributes or {"gen_ai.operation.name": "chat"})


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def record(event_name: str = DETAILS, *, trace_id: bytes = bytes.fromhex(TRACE), span_id: bytes = bytes.fromhex(SPAN)):
    out = LogRecord(event_name=event_name, trace_id=trace_id, span_id=span_id, time_unix_nano=5)
    out.attributes.extend(
        [
            kv("gen_ai.input.messages", otlp.to_any(MESSAGES)),
            kv("gen_ai.output.messages", otlp.to_any(OUTPUT)),
            kv("gen_ai.request.model", AnyValue(string_value="gpt-4o")),
        ]
    )
    return out


def test_a_details_event_folds_in_as_the_conventions_json_attributes_without_overwriting() -> None:
    fold = ContentFold()
    found = content_event(record())
    assert found is not None and found[:2] == (TRACE, SPAN)
    fold.add(*found)
    out = fold.attach(view({"gen_ai.operation.name": "chat", "gen_ai.output.messages": "[]"}))
    assert json.loads(out.attributes["gen_ai.input.messages"]) == MESSAGES
    assert out.attributes["gen_ai.output.messages"] == "[]"  # the span's own value wins
    assert "gen_ai.request.model" not in out.attributes  # only content is folded
    assert fold.attach(view()).attributes == view().attributes  # taken once
    assert fold.stats["folded"] == 1 and len(fold) == 0


def test_the_older_per_message_events_fold_in_from_their_bodies() -> None:
    fold = ContentFold()
    user = LogRecord(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), time_unix_nano=1)
    user.attributes.append(kv("event.name", AnyValue(string_value="gen_ai.user.message")))  # before event_name
    user.body.kvlist_value.values.append(kv("content", AnyValue(string_value="where is my parcel?")))
    choice = LogRecord(event_name="gen_ai.choice", trace_id=user.trace_id, span_id=user.span_id, time_unix_nano=2)
    choice.body.CopyFrom(otlp.to_any({"index": 0, "finish_reason": "stop", "message": {"content": "On its way."}}))
    for item in (choice, user):  # out of order: the fold orders by time
        fold.add(*content_event(item))
    out = fold.attach(view())
    assert json.loads(out.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "where is my parcel?"}]}
    ]
    [answer] = json.loads(out.attributes["gen_ai.output.messages"])
    assert answer["parts"] == [{"type": "text", "content": "On its way."}] and answer["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "made",
    [
        record(trace_id=b""),
        record(span_id=b"\x00" * 8),
        record(span_id=b"\x01" * 7),
        record("app.checkout.completed"),
        LogRecord(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, body=AnyValue(string_value="gen_ai.user.message")),
    ],
    ids=["no-trace-id", "zero-span-id", "short-span-id", "other-event", "plain-log-line"],
)
def test_records_that_are_not_content_of_a_span_are_not_kept(made: LogRecord) -> None:
    assert content_event(made) is None


def test_a_malformed_body_or_message_list_folds_nothing_and_raises_nothing() -> None:
    fold = ContentFold()
    odd = record()
    odd.attributes[0].value.CopyFrom(AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=3)])))
    odd.attributes[1].value.CopyFrom(AnyValue(kvlist_value=KeyValueList(values=[kv("x", AnyValue())])))
    fold.add(*content_event(odd))
    out = fold.attach(view())
    assert json.loads(out.attributes["gen_ai.input.messages"]) == [3]  # carried as it came: the reader copes
    legacy = LogRecord(event_name="gen_ai.choice", trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN))
    legacy.body.CopyFrom(otlp.to_any({"message": [1, 2]}))
    fold.add(*content_event(legacy))
    fold.attach(view())


def test_the_fold_is_bounded_in_spans_and_in_age() -> None:
    now = [0.0]
    fold = ContentFold(max_spans=2, ttl=10.0, clock=lambda: now[0])
    for span_id in ("01" * 8, "02" * 8, "03" * 8):
        fold.add(TRACE, span_id, EventView(DETAILS, 1, {"gen_ai.input.messages": "[]"}))
    assert len(fold) == 2 and fold.stats["evicted"] == 1  # the oldest went
    now[0] = 11.0
    fold.add(TRACE, "04" * 8, EventView(DETAILS, 1, {"gen_ai.input.messages": "[]"}))
    assert len(fold) == 1 and fold.stats["expired"] == 2
    small = ContentFold(max_bytes=1000)
    for n in range(3):
        small.add(TRACE, f"{n + 1:016x}", EventView(DETAILS, 1, {"gen_ai.input.messages": "[]"}), size=400)
    assert len(small) == 2 and small.stats["evicted"] == 1  # 1,200 bytes > 1,000: the oldest went
    small.attach(SpanView(TRACE, f"{2:016x}", "chat"))
    small.add(TRACE, f"{9:016x}", EventView(DETAILS, 1, {}), size=400)  # room again once one was folded
    assert len(small) == 2 and small.stats["evicted"] == 1

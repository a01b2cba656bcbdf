"""The SDK adapter and the OTLP adapter give identical results on the same spans."""

from __future__ import annotations

import json

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from spanguard.processors import otlp, sdk
from spanguard.processors.redaction import Redactor
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.tail_sampling import SamplingConfig, TailSampler

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Abc123Def456Ghi789Jkl012Mno345"


def make_spans() -> list:
    """Two traces: a chat with PII in content and events, and a red trace with a refund tool call."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "owner.email": EMAIL}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    messages = [{"role": "user", "parts": [{"type": "text", "content": f"I am {EMAIL}, card {CARD}, key {API_KEY}"}]}]
    with tracer.start_as_current_span("invoke_agent support", attributes={"gen_ai.conversation.id": "c-1"}):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "spanguard.model.pinned": False,
                "gen_ai.input.messages": json.dumps(messages),
                "app.tags": ("vip", f"contact:{EMAIL}"),
                "http.request.header.authorization": "Bearer abc.def.ghi",
            },
        ) as span:
            span.add_event("note", {"text": f"mail {EMAIL}"})
    with tracer.start_as_current_span("invoke_agent refunds"):
        with tracer.start_as_current_span(
            "execute_tool refund", attributes={"gen_ai.tool.name": "refund", "gen_ai.operation.name": "execute_tool"}
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "declined"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_views_round_trip_unchanged():
    spans = make_spans()
    assert encode_spans([sdk.from_view(sdk.to_view(s)) for s in spans]) == encode_spans(spans)
    request = encode_spans(spans)
    regrouped = otlp.regroup(otlp.views_of(request.resource_spans))
    assert [s for r in regrouped for sc in r.scope_spans for s in sc.spans] == [
        s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans
    ]


def test_sdk_and_otlp_adapters_redact_identically():
    spans = make_spans()
    redactor = Redactor()
    via_sdk = encode_spans([sdk.from_view(redactor.redact_span(sdk.to_view(s))) for s in spans])
    via_otlp = encode_spans(spans)
    changed = otlp.redact_resource_spans(via_otlp.resource_spans, redactor)
    assert changed >= 1
    assert via_sdk == via_otlp
    chat = next(s for r in via_otlp.resource_spans for sc in r.scope_spans for s in sc.spans if s.name == "chat gpt-4o")
    for secret in (EMAIL, CARD, API_KEY, "abc.def.ghi"):
        assert secret not in str(chat)


def run_sampler(views):
    sampler = TailSampler(SamplingConfig(green_rate=0.0, yellow_rate=0.0), RiskClassifier())
    decisions = sampler.add(views)
    decisions += sampler.flush()
    return decisions


def test_sdk_and_otlp_adapters_sample_identically():
    spans = make_spans()
    sdk_decisions = run_sampler([sdk.to_view(s) for s in spans])
    request = encode_spans(spans)
    otlp_decisions = run_sampler(otlp.views_of(request.resource_spans))
    summary = sorted((d.trace_id, d.keep, d.tier, d.reasons) for d in sdk_decisions)
    assert summary == sorted((d.trace_id, d.keep, d.tier, d.reasons) for d in otlp_decisions)
    assert any(keep for _, keep, _, _ in summary) and not all(keep for _, keep, _, _ in summary)
    kept_sdk = encode_spans([sdk.from_view(v) for d in sdk_decisions for v in d.spans])
    kept_otlp = otlp.regroup([v for d in otlp_decisions for v in d.spans])
    by_id = {s.span_id: s for r in kept_sdk.resource_spans for sc in r.scope_spans for s in sc.spans}
    for resource in kept_otlp:
        for scope in resource.scope_spans:
            for span in scope.spans:
                assert by_id.pop(span.span_id) == span
                tier = {kv.key: kv.value.string_value for kv in span.attributes}["spanguard.risk.tier"]
                assert tier in ("red", "yellow")
    assert by_id == {}


def test_regroup_writes_changed_removed_and_added_attributes():
    import dataclasses

    request = encode_spans(make_spans())
    views = otlp.views_of(request.resource_spans)
    first, second, third = views[0], views[1], views[2]
    changed = dataclasses.replace(first, attributes={**first.attributes, "gen_ai.conversation.id": "other", "x": 1})
    removed = dataclasses.replace(second, attributes={k: v for k, v in list(second.attributes.items())[1:]})
    added = dataclasses.replace(third, attributes={**third.attributes, "spanguard.risk.tier": "red"})
    spans = [s for r in otlp.regroup([changed, removed, added]) for sc in r.scope_spans for s in sc.spans]
    for view, span in zip([changed, removed, added], spans, strict=True):
        assert otlp.attributes_of(span.attributes) == view.attributes


def test_chunked_splits_protobufs_in_order_under_their_resource_and_scope():
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

    from spanguard.processors.otlp import chunked

    resources = []
    for r in range(2):
        resource = ResourceSpans(schema_url=f"r{r}")
        resource.resource.attributes.add(key="service.name").value.string_value = f"svc{r}"
        for sc in range(2):
            scope = resource.scope_spans.add(schema_url=f"s{sc}")
            scope.scope.name = f"scope{r}{sc}"
            for i in range(3):
                scope.spans.add(name=f"{r}.{sc}.{i}", trace_id=b"\x01" * 16, span_id=bytes([r, sc, i]) * 2 + b"xx")
        resources.append(resource)
    pieces = chunked(resources, 5)
    assert [sum(len(s.spans) for r in piece for s in r.scope_spans) for piece in pieces] == [5, 5, 2]
    names = [
        (r.resource.attributes[0].value.string_value, s.scope.name, span.name)
        for p in pieces
        for r in p
        for s in r.scope_spans
        for span in s.spans
    ]
    assert [n[2] for n in names] == [f"{r}.{sc}.{i}" for r in range(2) for sc in range(2) for i in range(3)]
    assert all(n[0] == f"svc{n[2][0]}" and n[1] == f"scope{n[2][0]}{n[2][2]}" for n in names)
    assert chunked([], 5) == []


def _request(resource_spans):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest(resource_spans=resource_spans)


def test_encode_views_is_the_regrouped_request_serialized():
    """Redacted (spans and resource), annotated by the sampler, and untouched views: the same request either way."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = encode_spans(make_spans())
    views: list = []
    assert otlp.redact_resource_spans(request.resource_spans, Redactor(), views) >= 1
    sampler = TailSampler(SamplingConfig(green_rate=1.0, yellow_rate=1.0), RiskClassifier())
    kept = [v for d in sampler.add(views) + sampler.flush() if d.keep for v in d.spans]
    assert len(kept) == len(views)
    encoded = ExportTraceServiceRequest.FromString(otlp.encode_views(kept))
    assert encoded == _request(otlp.regroup(kept))
    assert EMAIL not in str(encoded)
    untouched = otlp.views_of(encode_spans(make_spans()).resource_spans)
    assert ExportTraceServiceRequest.FromString(otlp.encode_views(untouched)) == _request(otlp.regroup(untouched))


def test_encode_views_writes_changed_removed_and_added_attributes_renames_and_events():
    import dataclasses

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from spanguard.processors.view import EventView

    request = encode_spans(make_spans())
    bare = ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x")])])
    request.resource_spans.append(bare)  # no resource, no scope, no status: still the same as regroup's
    views = otlp.views_of(request.resource_spans)
    first, second, third, fourth = views[0], views[1], views[2], views[-1]
    changed = dataclasses.replace(first, attributes={**first.attributes, "gen_ai.conversation.id": "other", "x": 1})
    removed = dataclasses.replace(second, attributes={k: v for k, v in list(second.attributes.items())[1:]})
    renamed = dataclasses.replace(third, name="renamed", events=[EventView("e", 5, {"k": "v"})])
    added = dataclasses.replace(fourth, attributes={**fourth.attributes, "spanguard.risk.tier": "red", "n": (1, 2)})
    edited = [changed, removed, renamed, added]
    assert ExportTraceServiceRequest.FromString(otlp.encode_views(edited)) == _request(otlp.regroup(edited))
    assert otlp.encode_views([]) == b""


def test_encode_parts_is_each_regrouped_part_serialized():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = encode_spans(make_spans())
    spans = [s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans]
    for parts in (1, 2, 3):
        regroupings = [otlp.Regrouping() for _ in range(parts)]
        for resource, scope, span in otlp.iter_spans(request.resource_spans):
            regroupings[spans.index(span) % parts].add(resource, scope, span)
        encoded = otlp.encode_parts(request.resource_spans, lambda span, n=parts: spans.index(span) % n, parts)
        assert [ExportTraceServiceRequest.FromString(data) for data in encoded] == [
            _request(regrouping.result()) for regrouping in regroupings
        ]
    assert otlp.encode_parts(request.resource_spans, lambda span: 0, 2)[1] == b""


def _pair(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def test_a_repeated_attribute_key_cannot_carry_an_unredacted_value_past_redaction():
    # OTLP says keys are unique; a client that repeats one must not get its first value past the redactor, which
    # reads the last: the protobuf is made to hold what the processors saw, at every level.
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([_pair("host.owner", EMAIL), _pair("host.owner", "ops")])
    span = resource_spans.scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat")
    span.attributes.extend([_pair("app.note", f"write to {EMAIL}"), _pair("app.note", "fine")])
    nested = AnyValue(kvlist_value=KeyValueList(values=[_pair("to", EMAIL), _pair("to", "nobody")]))
    span.attributes.append(KeyValue(key="app.mail", value=AnyValue(array_value=ArrayValue(values=[nested]))))
    event = span.events.add(name="note")
    event.attributes.extend([_pair("text", f"card {CARD}"), _pair("text", "none")])

    views: list = []
    otlp.redact_resource_spans(list(request.resource_spans), Redactor(), views)

    data = request.SerializeToString()
    assert EMAIL.encode() not in data and CARD.encode() not in data
    assert otlp.views_of(list(request.resource_spans))[0].attributes == views[0].attributes
    assert [kv.key for kv in span.attributes] == ["app.note", "app.mail"]


def test_scope_attributes_links_and_trace_states_are_redacted_on_both_paths():
    # A view holds neither the scope nor the links nor the trace state, yet a client may put an id in any of them.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(sdk.RedactingSpanProcessor(SimpleSpanProcessor(exporter), Redactor()))
    tracer = provider.get_tracer("shop", attributes={"owner": f"team lead {EMAIL}"})
    state = TraceState([("vendor", f"user:{EMAIL}"), ("other", "t61rcWkgMzE")])
    linked = SpanContext(0x1, 0x2, is_remote=True, trace_state=state)
    parent = set_span_in_context(NonRecordingSpan(SpanContext(0x3, 0x4, True, TraceFlags(TraceFlags.SAMPLED), state)))
    with tracer.start_as_current_span("chat", context=parent, links=[Link(linked, {"note": f"from {EMAIL}"})]):
        pass
    provider.shutdown()
    sdk_bytes = encode_spans(exporter.get_finished_spans()).SerializeToString()
    (exported,) = exporter.get_finished_spans()
    assert exported.context.trace_state.get("other") == "t61rcWkgMzE"  # what holds nothing stays as it was

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop", attributes={"owner": f"team lead {EMAIL}"})
    with tracer.start_as_current_span("chat", context=parent, links=[Link(linked, {"note": f"from {EMAIL}"})]):
        pass
    provider.shutdown()
    request = encode_spans(exporter.get_finished_spans())
    assert request.resource_spans[0].scope_spans[0].spans[0].trace_state  # the SDK exports it: something to redact
    otlp.redact_resource_spans(list(request.resource_spans), Redactor())

    for data in (sdk_bytes, request.SerializeToString()):
        assert EMAIL.encode() not in data and b"team lead" in data and b"from " in data

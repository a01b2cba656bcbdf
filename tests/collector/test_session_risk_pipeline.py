"""The cross-turn risk detectors in the collector: a session's traces through a real OTLP gRPC receiver."""

from __future__ import annotations

import json
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sink import OtlpSink

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector


def config_text(sink: OtlpSink) -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  risk:
    detectors:
      repeated_tool_call_across_turns: {{tier: red, min_traces: 3}}
  tail_sampling: {{decision_wait: 0.3s, root_grace: 0.05s, green_rate: 0.0, yellow_rate: 0.0, poll_interval: 0.05}}
exporters:
  otlp/sink:
    endpoint: "{sink.grpc_endpoint}"
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 0.05s}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [risk, tail_sampling], exporters: [otlp/sink]}}
"""


def user_turn(tracer, *, tool_call: bool) -> None:
    session = {"gen_ai.conversation.id": "conv-42"}
    with tracer.start_as_current_span("invoke_agent support", attributes=session):
        if tool_call:
            arguments = json.dumps({"order_id": "A-1001"})
            attributes = {
                **session,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.arguments": arguments,
            }
            with tracer.start_as_current_span("execute_tool lookup_order", attributes=attributes):
                pass


def attributes_of(span) -> dict:
    return {kv.key: kv.value for kv in span.attributes}


def test_the_third_trace_repeating_a_tool_call_of_its_session_turns_red_and_the_whole_session_is_kept():
    with OtlpSink() as sink:
        collector = Collector(load_config_text(config_text(sink)))
        collector.start()
        try:
            port = collector.receivers[0].grpc_port
            provider = TracerProvider(resource=Resource.create({"service.name": "support"}))
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            tracer = provider.get_tracer("test")
            for _ in range(3):
                user_turn(tracer, tool_call=True)
            user_turn(tracer, tool_call=False)  # a later turn of the red session, with nothing risky in it
            provider.shutdown()

            sink.wait_for_spans(7, timeout=10)  # all four turns: 2 + 2 + 2 + 1 spans
            deadline = time.monotonic() + 1  # room for anything that should not arrive
            while time.monotonic() < deadline and len(sink.spans()) <= 7:
                time.sleep(0.05)
        finally:
            collector.shutdown(timeout=5)

    by_trace: dict[bytes, list] = {}
    for span in sink.spans():
        by_trace.setdefault(span.trace_id, []).append(span)
    roots = sorted(
        (next(s for s in spans if s.name == "invoke_agent support") for spans in by_trace.values()),
        key=lambda span: span.start_time_unix_nano,
    )
    assert [len(by_trace[root.trace_id]) for root in roots] == [2, 2, 2, 1]  # every turn kept whole, once
    turns = []
    for root in roots:
        attributes = attributes_of(root)
        reasons = [value.string_value for value in attributes["spanguard.risk.reasons"].array_value.values]
        turns.append((attributes["spanguard.risk.tier"].string_value, reasons, attributes["spanguard.sampling.rate"]))
    # turns 1 and 2 were green and dropped (green_rate 0), held, and recalled when turn 3 turned the session red
    assert turns[0][:2] == turns[1][:2] == ("green", ["session_red"])
    assert turns[2][:2] == ("red", ["repeated_tool_call_across_turns"])  # the third repeated call, with its tool span
    assert turns[3][:2] == ("green", ["session_red"])  # the fourth turn: kept because its session turned red
    assert all(rate.double_value == 1.0 for _, _, rate in turns)

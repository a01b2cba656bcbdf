"""The collector end to end: real OTLP clients in, redaction + risk + tail sampling, a real OTLP sink out."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sink import OtlpSink

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector

EMAIL = "jane.doe@example.com"


def config_text(sink: OtlpSink, tmp_path) -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{}}
  risk: {{}}
  tail_sampling: {{decision_wait: 0.3s, root_grace: 0.05s, green_rate: 0.0, yellow_rate: 0.0, poll_interval: 0.05}}
  batch: {{}}
exporters:
  otlp/sink:
    endpoint: "{sink.grpc_endpoint}"
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 0.05s}}
  file: {{path: "{tmp_path / "out.jsonl"}"}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction, risk, tail_sampling, batch], exporters: [otlp/sink, file]}}
"""


@contextlib.contextmanager
def running_collector(make_config, timeout: float = 5.0):
    """A started collector (from ``make_config(sink)``) and the OTLP sink it exports to; shut down afterwards."""
    with OtlpSink() as sink:
        collector = Collector(load_config_text(make_config(sink)))
        collector.start()
        try:
            yield collector, sink
        finally:
            collector.shutdown(timeout=timeout)


@pytest.fixture
def running(tmp_path):
    with running_collector(lambda sink: config_text(sink, tmp_path)) as started:
        yield started


def send(collector: Collector, build) -> None:
    port = collector.receivers[0].grpc_port
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    build(provider.get_tracer("test"))
    provider.shutdown()


def red_and_green(tracer) -> None:
    content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"refund to {EMAIL}"}]}])
    with tracer.start_as_current_span("invoke_agent refunds"):
        with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.input.messages": content}):
            pass
        with tracer.start_as_current_span("execute_tool refund", attributes={"gen_ai.tool.name": "refund"}):
            pass
    with tracer.start_as_current_span("invoke_agent small-talk"):
        with tracer.start_as_current_span("chat gpt-4o-2024-08-06", attributes={"spanguard.model.pinned": True}):
            pass


def test_red_trace_arrives_whole_and_redacted_green_trace_is_dropped(running, tmp_path):
    collector, sink = running
    send(collector, red_and_green)
    spans = sink.wait_for_spans(3, timeout=10)
    time.sleep(0.5)
    names = sorted(s.name for s in sink.spans())
    assert names == ["chat gpt-4o", "execute_tool refund", "invoke_agent refunds"]
    for span in sink.spans():
        attributes = {kv.key: kv.value for kv in span.attributes}
        assert attributes["spanguard.risk.tier"].string_value == "red"
        assert attributes["spanguard.review.tier"].string_value == "dual_approval"
    assert EMAIL not in str(spans)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert lines and EMAIL not in "".join(lines) and "<EMAIL_ADDRESS>" in "".join(lines)


def test_metrics_and_health_endpoints(running):
    collector, _ = running
    send(collector, red_and_green)
    time.sleep(1.0)
    port = collector.telemetry_servers[0].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in (
        "spanguard_receiver_accepted_spans_total",
        "spanguard_exporter_sent_spans_total",
        "spanguard_exporter_queue_capacity",
        "spanguard_redaction_redacted_total",
        "spanguard_sampling_decisions_total",
    ):
        assert name in text, name
    assert 'entity="EMAIL_ADDRESS"' in text


def test_health_is_unavailable_after_shutdown(tmp_path):
    with OtlpSink() as sink:
        collector = Collector(load_config_text(config_text(sink, tmp_path)))
        collector.start()
        assert collector.healthy()
        collector.shutdown(timeout=5)
        collector.shutdown(timeout=5)
        assert not collector.healthy()


def test_shutdown_without_start(tmp_path):
    with OtlpSink() as sink:
        collector = Collector(load_config_text(config_text(sink, tmp_path)))
        collector.shutdown(timeout=2)
        collector.shutdown(timeout=2)


def test_memory_limiter_pushes_back_before_parsing(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with OtlpSink() as sink:
        text = (
            config_text(sink, tmp_path)
            .replace("processors:\n", "processors:\n  memory_limiter: {limit_mib: 1}\n", 1)
            .replace("processors: [redaction,", "processors: [memory_limiter, redaction,")
        )
        collector = Collector(load_config_text(text))
        collector.start()
        try:
            port = collector.receivers[0].http_port
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/traces",
                data=ExportTraceServiceRequest().SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
                method="POST",
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 503
            assert int(refused.value.headers["Retry-After"]) >= 1
        finally:
            collector.shutdown(timeout=5)

"""The collector joining a logs pipeline to a traces pipeline: GenAI content log records that come after their span are
folded in when tail sampling decides, redacted; and the config rules that keep the join private and possible."""

from __future__ import annotations

import time

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sink import OtlpSink

from spanguard.collector.config import ConfigError, load_config_text
from spanguard.collector.service import Collector
from spanguard.processors import otlp

MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "refund order 7 to lee@example.com"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "tool_call", "name": "refund", "id": "c1", "arguments": {"n": 7}}]}]


def content_record(trace_id: bytes, span_id: bytes) -> LogRecord:
    out = LogRecord(event_name="gen_ai.client.inference.operation.details", trace_id=trace_id, span_id=span_id)
    out.attributes.add(key="gen_ai.input.messages").value.CopyFrom(otlp.to_any(MESSAGES))
    out.attributes.add(key="gen_ai.output.messages").value.CopyFrom(otlp.to_any(OUTPUT))
    return out


def pipeline_yaml(sink: OtlpSink, logs_processors: str = "[redaction, genai_normalize]", workers: str = "") -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  genai_normalize: {{}}
  redaction: {{}}
  risk: {{}}
  tail_sampling: {{decision_wait: 1.5s, root_grace: 1s, green_rate: 0.0, yellow_rate: 0.0, poll_interval: 0.05}}
exporters:
  otlp/sink: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: {logs_processors}, exporters: [otlp/sink]}}
    traces: {{receivers: [otlp], processors: [genai_normalize, redaction, risk, tail_sampling], exporters: [otlp/sink]
              {workers}}}
"""


def test_records_that_come_after_their_span_are_folded_in_when_tail_sampling_decides() -> None:
    with OtlpSink() as sink:
        collector = Collector(load_config_text(pipeline_yaml(sink)))
        collector.start()
        try:
            endpoint = f"127.0.0.1:{collector.receivers[0].grpc_port}"
            provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
            chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
            with provider.get_tracer("t").start_as_current_span("chat gpt-4o", attributes=chat) as span:
                context = span.get_span_context()
            provider.shutdown()
            time.sleep(0.3)  # the span is buffered, undecided; its content comes now
            late = content_record(context.trace_id.to_bytes(16, "big"), context.span_id.to_bytes(8, "big"))
            request = logs_service_pb2.ExportLogsServiceRequest()
            request.resource_logs.add().scope_logs.add().log_records.append(late)
            with grpc.insecure_channel(endpoint) as channel:
                logs_service_pb2_grpc.LogsServiceStub(channel).Export(request, timeout=10)
            [exported] = sink.wait_for_spans(1, timeout=15)
        finally:
            collector.shutdown(timeout=5)
    attributes = otlp.attributes_of(exported.attributes)
    assert attributes["spanguard.risk.tier"] == "red"  # the refund the model asked for, seen only in the record
    assert "lee@example.com" not in attributes["gen_ai.input.messages"]  # redacted in the logs pipeline
    assert "<EMAIL_ADDRESS>" in attributes["gen_ai.input.messages"]
    [logs] = sink.wait_for_items("logs", 1)
    assert b"lee@example.com" not in logs.SerializeToString()


def test_content_kept_before_redaction_for_spans_that_are_redacted_is_refused_at_load() -> None:
    with OtlpSink() as sink, pytest.raises(ConfigError) as error:
        load_config_text(pipeline_yaml(sink, "[genai_normalize, redaction]"))
    assert "service.pipelines.logs.processors[0]" in str(error.value)
    assert "put a redaction processor before genai_normalize" in str(error.value)


def test_content_cannot_be_folded_into_spans_processed_in_worker_processes() -> None:
    with OtlpSink() as sink, pytest.raises(ConfigError) as error:
        load_config_text(pipeline_yaml(sink, workers=", workers: 2"))
    assert "service.pipelines.traces.workers" in str(error.value) and "set workers to 1" in str(error.value)


def test_content_kept_for_no_traces_pipeline_is_refused_at_load() -> None:
    text = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
processors: {genai_normalize: {}, redaction: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs: {receivers: [otlp], processors: [redaction, genai_normalize], exporters: [debug]}
    traces: {receivers: [otlp], processors: [redaction], exporters: [debug]}
"""
    with pytest.raises(ConfigError) as error:
        load_config_text(text)
    assert "service.pipelines.logs.processors[1]" in str(error.value) and "and none does" in str(error.value)

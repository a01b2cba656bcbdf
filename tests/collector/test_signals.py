"""Logs and metrics through the collector: the official SDK exporters in, redaction on log records, every exporter
out, the persistent queue across SIGKILL, and a signal without a pipeline refused as OTLP clients expect."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogRecordPb
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import generate_latest
from sink import OtlpSink
from test_faults import CollectorProcess, Ports, processes  # noqa: F401  (the fixture)

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector
from spanguard.processors.otlp import from_any

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
OWNER = "ops.lead@example.org"


def config_text(sink: OtlpSink, out: Path, *, queue: str = "{}", ports: Ports | None = None) -> str:
    ports = ports or Ports.any()
    exporters = f"""
  otlp/sink: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}, sending_queue: {queue},
               retry_on_failure: {{initial_interval: 0.05s, max_interval: 0.2s}}}}
  otlphttp/sink: {{endpoint: "{sink.http_endpoint}", compression: none}}
  file: {{path: "{out}"}}"""
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports.grpc}"}}, http: {{endpoint: "127.0.0.1:{ports.http}"}}}}}}
processors:
  memory_limiter: {{limit_mib: 4000}}
  redaction: {{}}
  batch: {{}}
exporters:{exporters}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{ports.metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction], exporters: [otlp/sink]}}
    logs:
      receivers: [otlp]
      processors: [memory_limiter, redaction, batch]
      exporters: [otlp/sink, otlphttp/sink, file]
    metrics: {{receivers: [otlp], processors: [memory_limiter, redaction, batch], exporters: [otlp/sink, file]}}
"""


@contextlib.contextmanager
def running(tmp_path: Path) -> Iterator[tuple[Collector, OtlpSink, Path]]:
    out = tmp_path / "out.jsonl"
    with OtlpSink() as sink:
        collector = Collector(load_config_text(config_text(sink, out)))
        collector.start()
        try:
            yield collector, sink, out
        finally:
            collector.shutdown(timeout=5)


def emit_logs(exporter) -> None:
    """GenAI content as the official instrumentations' EVENT_ONLY mode and an app's own logs carry it."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop", "owner.email": OWNER}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("opentelemetry.instrumentation.openai_v2")
    logger.emit(
        LogRecord(
            event_name="gen_ai.user.message",
            severity_number=SeverityNumber.INFO,
            body={"content": f"I am {EMAIL}, card {CARD}", "role": "user"},
            attributes={"gen_ai.provider.name": "openai"},
        )
    )
    logger.emit(
        LogRecord(
            event_name="gen_ai.client.inference.operation.details",
            attributes={
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": f"mail me at {EMAIL}"}]}]
                ),
                "gen_ai.operation.name": "chat",
            },
        )
    )
    logger.emit(LogRecord(body=f"refund requested by {EMAIL}", severity_text="WARN", attributes={"user.id": "u-1"}))
    provider.shutdown()


def emit_metrics(exporter) -> None:
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop", "owner.email": OWNER}),
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)],
    )
    meter = provider.get_meter("shop")
    meter.create_counter("shop.orders").add(3, {"customer": EMAIL, "region": "eu"})
    meter.create_histogram("gen_ai.client.operation.duration", unit="s").record(0.4, {"gen_ai.operation.name": "chat"})
    provider.shutdown()  # collects and exports once


def records(requests) -> list[LogRecordPb]:
    return [r for request in requests for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_logs_are_redacted_and_reach_every_exporter(tmp_path: Path, transport: str) -> None:
    with running(tmp_path) as (collector, sink, out):
        receiver = collector.receivers[0]
        if transport == "grpc":
            exporter = GrpcLogExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True)
        else:
            exporter = HttpLogExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs")
        emit_logs(exporter)
        got = sink.wait_for_items("logs", 6)  # three records, through the otlp and the otlphttp exporter
        scraped = generate_latest(collector.metrics.registry).decode()
    assert f'spanguard_receiver_accepted_log_records_total{{receiver="otlp",transport="{transport}"}} 3.0' in scraped
    assert len(records(got)) == 6
    wire = b"".join(request.SerializeToString() for request in got) + out.read_bytes()
    for secret in (EMAIL, CARD, OWNER):
        assert secret.encode() not in wire
    by_event = {r.event_name: r for r in records(got)}
    user, details, plain = (
        by_event["gen_ai.user.message"],
        by_event["gen_ai.client.inference.operation.details"],
        by_event[""],
    )
    body = from_any(user.body)
    assert body["role"] == "user" and "<EMAIL_ADDRESS>" in body["content"]
    attributes = {kv.key: from_any(kv.value) for kv in details.attributes}
    assert "<EMAIL_ADDRESS>" in json.loads(attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
    assert from_any(plain.body).startswith("refund requested by <EMAIL_ADDRESS>")
    assert plain.severity_text == "WARN"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert any("resourceLogs" in line for line in lines)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_metrics_arrive_with_their_resource_and_point_attributes_redacted(tmp_path: Path, transport: str) -> None:
    with running(tmp_path) as (collector, sink, out):
        receiver = collector.receivers[0]
        if transport == "grpc":
            exporter = GrpcMetricExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True)
        else:
            exporter = HttpMetricExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/metrics")
        emit_metrics(exporter)
        got = sink.wait_for_items("metrics", 2)
        scraped = generate_latest(collector.metrics.registry).decode()
    assert f'spanguard_receiver_accepted_data_points_total{{receiver="otlp",transport="{transport}"}} 2.0' in scraped
    names = {
        m.name for request in got for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert names == {"shop.orders", "gen_ai.client.operation.duration"}
    wire = b"".join(request.SerializeToString() for request in got) + out.read_bytes()
    assert EMAIL.encode() not in wire and OWNER.encode() not in wire
    assert b"eu" in wire  # what holds nothing stays
    assert any("resourceMetrics" in json.loads(line) for line in out.read_text().splitlines())


def test_a_repeated_key_in_a_log_body_cannot_carry_a_value_past_redaction(tmp_path: Path) -> None:
    body = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="content", value=AnyValue(string_value=f"write to {EMAIL}")),
                KeyValue(key="content", value=AnyValue(string_value="fine")),
            ]
        )
    )
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecordPb(body=body, event_name="x")])])]
    )
    with running(tmp_path) as (collector, sink, _):
        with grpc.insecure_channel(f"127.0.0.1:{collector.receivers[0].grpc_port}") as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
            export(request.SerializeToString(), timeout=10)
        got = sink.wait_for_items("logs", 2)
    assert all(EMAIL.encode() not in r.SerializeToString() for r in got)


def test_a_signal_without_a_pipeline_is_unimplemented_over_grpc_and_404_over_http(tmp_path: Path) -> None:
    with OtlpSink() as sink:
        text = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
exporters:
  otlp/sink: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp/sink]}}
"""
        collector = Collector(load_config_text(text))
        collector.start()
        try:
            receiver = collector.receivers[0]
            with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
                export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
                with pytest.raises(grpc.RpcError) as caught:
                    export(ExportLogsServiceRequest().SerializeToString(), timeout=10)
            assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
            post = urllib.request.Request(
                f"http://127.0.0.1:{receiver.http_port}/v1/metrics",
                data=b"",
                headers={"Content-Type": "application/x-protobuf"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(post, timeout=10)
            assert refused.value.code == 404
        finally:
            collector.shutdown(timeout=5)


def test_logs_and_metrics_in_the_persistent_queue_survive_sigkill(
    tmp_path: Path,
    processes: list[CollectorProcess],  # noqa: F811 (the fixture from test_faults)
) -> None:
    """With the backend down, acknowledged log records and data points wait on disk; after SIGKILL a new process on
    the same queue delivers them."""
    with OtlpSink() as sink:
        ports = Ports.free()
        queue = f'{{storage: file, directory: "{tmp_path / "queue"}"}}'
        config = tmp_path / "collector.yaml"
        config.write_text(config_text(sink, tmp_path / "out.jsonl", queue=queue, ports=ports))
        sink.down()
        first = CollectorProcess(config, ports, tmp_path)
        processes.append(first)
        first.start()
        emit_logs(GrpcLogExporter(endpoint=f"127.0.0.1:{ports.grpc}", insecure=True))
        emit_metrics(GrpcMetricExporter(endpoint=f"127.0.0.1:{ports.grpc}", insecure=True))
        stores = {path.name for path in (tmp_path / "queue").iterdir()}
        assert {"otlp%2Fsink.logs.db", "otlp%2Fsink.metrics.db"} <= stores, stores
        first.signal(signal.SIGKILL)
        assert first.wait(5) == -signal.SIGKILL

        sink.up()
        second = CollectorProcess(config, ports, tmp_path)
        processes.append(second)
        second.start()
        logs = sink.wait_for_items("logs", 3, timeout=15)
        metrics = sink.wait_for_items("metrics", 2, timeout=15)
    assert {r.event_name for r in records(logs)} >= {"gen_ai.user.message", "gen_ai.client.inference.operation.details"}
    assert all(EMAIL.encode() not in r.SerializeToString() for r in logs + metrics)
    assert "resuming" in second.stderr(tail=None)


APP = """
from opentelemetry import metrics, trace
from opentelemetry._logs import LogRecord, get_logger

with trace.get_tracer("app").start_as_current_span("checkout"):
    metrics.get_meter("app").create_counter("app.orders").add(1)
    get_logger("app").emit(LogRecord(body="order placed", attributes={"order": "o-1"}))
"""


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_opentelemetry_instrument_with_default_settings_exports_all_three_signals_without_an_error(
    tmp_path: Path,
) -> None:
    if not (_port_free(4317) and _port_free(4318)):
        pytest.skip("ports 4317/4318 are taken on this machine: the SDK's defaults cannot be tried")
    out = tmp_path / "out.jsonl"
    text = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:4317"}}, http: {{endpoint: "127.0.0.1:4318"}}}}}}
processors: {{redaction: {{}}}}
exporters: {{file: {{path: "{out}"}}}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction], exporters: [file]}}
    logs: {{receivers: [otlp], processors: [redaction], exporters: [file]}}
    metrics: {{receivers: [otlp], processors: [redaction], exporters: [file]}}
"""
    collector = Collector(load_config_text(text))
    collector.start()
    try:
        app = tmp_path / "app.py"
        app.write_text(APP)
        env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        instrument = Path(sys.executable).with_name("opentelemetry-instrument")
        done = subprocess.run(
            [str(instrument), sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        collector.shutdown(timeout=5)
    assert done.returncode == 0, done.stderr
    assert "Failed to export" not in done.stderr and "UNIMPLEMENTED" not in done.stderr, done.stderr
    kinds = {key for line in out.read_text().splitlines() for key in json.loads(line)}
    assert kinds == {"resourceSpans", "resourceLogs", "resourceMetrics"}


def test_a_malformed_logs_request_is_refused_naming_the_message_and_the_receiver_keeps_serving(tmp_path: Path) -> None:
    with running(tmp_path) as (collector, sink, _):
        port = collector.receivers[0].http_port
        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/logs", data=b"\xff\xff\xff", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 400 and b"not valid UTF-8" in refused.value.read()
        garbage = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/logs", data=b"\x0a\xff", headers={"Content-Type": "application/x-protobuf"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(garbage, timeout=10)
        assert refused.value.code == 400 and b"ExportLogsServiceRequest" in refused.value.read()
        emit_logs(HttpLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs"))
        assert len(records(sink.wait_for_items("logs", 3))) >= 3

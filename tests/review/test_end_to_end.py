"""Collector -> review exporter -> review service, end to end over real OTLP and HTTP, with the service down a while."""

from __future__ import annotations

import json
import os
import socket
import time

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanguard.collector.component import Settings, TraceBatch
from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector
from spanguard.exporters.review.config import ReviewExporterConfig
from spanguard.exporters.review.factory import create as create_review_exporter
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

EMAIL = "jane.doe@example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_items_sent_while_the_service_is_down_arrive_once_it_is_up(tmp_path, db_url):
    port = free_port()
    config = ServiceConfig(db=db_url)
    store = ReviewStore(db_url, config.policy)
    store.migrate()
    ingest_token = store.create_token("collector", "ingest")
    reviewer_token = store.create_token("alice", "reviewer")
    collector_yaml = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{}}
  risk: {{}}
  tail_sampling: {{decision_wait: 0.3s, root_grace: 0.05s, green_rate: 0.0, yellow_rate: 0.0, poll_interval: 0.05}}
exporters:
  review:
    endpoint: "http://127.0.0.1:{port}"
    token: ${{env:SPANGUARD_REVIEW_TOKEN}}
    sending_queue: {{storage: file, directory: "{tmp_path / "queue"}"}}
    retry_on_failure: {{initial_interval: 0.05s, max_interval: 0.2s, max_elapsed_time: 0s}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction, risk, tail_sampling], exporters: [review]}}
"""
    collector = Collector(load_config_text(collector_yaml, environ={"SPANGUARD_REVIEW_TOKEN": ingest_token}))
    collector.start()
    service = ReviewServer(config, store, port=port)
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "refunds-agent"}))
        grpc_port = collector.receivers[0].grpc_port
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("agent")
        content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"refund to {EMAIL}"}]}])
        with tracer.start_as_current_span("invoke_agent refunds") as root:
            chat = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": content, "gen_ai.request.model": "gpt-4o"}
            with tracer.start_as_current_span("chat gpt-4o", attributes=chat):
                pass
            tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"}
            with tracer.start_as_current_span("execute_tool refund", attributes=tool):
                pass
        with tracer.start_as_current_span("invoke_agent small-talk"):  # green: sampling drops it (rate 0)
            with tracer.start_as_current_span("chat gpt-4o-2024-08-06", attributes={"spanguard.model.pinned": True}):
                pass
        provider.shutdown()
        trace_id = f"{root.get_span_context().trace_id:032x}"
        review = collector.exporters["review"]
        # The service is down: the exporter keeps the items in its queue and retries.
        assert wait_until(lambda: review.stats["retries"] >= 3)
        assert store.list() == []
        service.start()
        assert wait_until(lambda: len(store.list()) == 1 and store.list()[0].spans and len(store.list()[0].spans) == 3)
        time.sleep(0.5)  # any duplicate delivery would have landed by now
    finally:
        collector.shutdown(timeout=5)
    try:
        [item] = store.list()  # the green trace never reached review
        assert (item.trace_id, item.tier, item.risk_tier) == (trace_id, "dual_approval", "red")
        assert len({span["span_id"] for span in item.spans}) == 3
        trail = store.audit(item.id)
        assert [(entry.actor, entry.action) for entry in trail] == [("collector", "ingest")]  # once, by the token
        assert EMAIL not in json.dumps(item.spans)
        headers = {"Authorization": f"Bearer {reviewer_token}"}
        detail = httpx.get(f"http://127.0.0.1:{port}/v1/review-items/{item.id}", headers=headers, timeout=30).json()
        assert detail["conversation"]["turns"][0]["role"] == "user"
        assert EMAIL not in detail["conversation"]["turns"][0]["content"]
    finally:
        service.shutdown()
        store.shutdown()


def test_a_nul_byte_in_a_spans_content_is_delivered_once_not_retried_forever(db_url):
    # PostgreSQL text cannot hold a NUL: the service stores U+FFFD instead of answering 503, which the exporter
    # would retry without end, holding its queue.
    config = ServiceConfig(db=db_url)
    store = ReviewStore(db_url, config.policy)
    store.migrate()
    service = ReviewServer(config, store, port=0)
    service.start()
    retry = {"initial_interval": "0.05s", "max_interval": "0.2s", "max_elapsed_time": "0s"}
    settings = {"endpoint": f"http://127.0.0.1:{service.port}", "token": store.create_token("collector", "ingest")}
    config = ReviewExporterConfig.model_validate({**settings, "retry_on_failure": retry})
    exporter = create_review_exporter(Settings("review", "exporter", "review", config), None, None)
    exporter.start()
    try:
        trace = os.urandom(16)
        attributes = {
            "spanguard.review.tier": "spot_check",
            "gen_ai.operation.name": "chat",
            "gen_ai.response.model": "m\x00",
            "app.\x00key": "a\x00b",
        }
        span = Span(
            trace_id=trace,
            span_id=os.urandom(8),
            name="chat\x00",
            attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
        )
        span.events.add(name="event\x00")
        exporter.consume(TraceBatch([ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]))
        assert wait_until(lambda: exporter.stats["sent_batches"] == 1, timeout=30)
        stats = exporter.stats
        assert (stats["sent_spans"], stats["retries"], stats["dropped"]) == (1, 0, 0)
        [item] = store.list()
        [stored] = item.spans
        assert (item.trace_id, stored["name"]) == (trace.hex(), "chat\ufffd")
        assert stored["events"][0]["name"] == "event\ufffd"
        assert stored["attributes"]["app.\ufffdkey"] == "a\ufffdb" and item.models == ["m\ufffd"]
    finally:
        exporter.shutdown(timeout=5)
        service.shutdown()
        store.shutdown()

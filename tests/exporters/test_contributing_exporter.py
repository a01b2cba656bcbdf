"""docs/contributing.md's worked example of an exporter, run as written: its three modules, as a package of
``spanguard.exporters``, registered and built by a collector from its config, post the span names of a batch and
report them in ``/metrics``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from contributing_examples import add_to_package, example_modules
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

import spanguard.exporters
from spanguard.collector.component import TraceBatch
from spanguard.collector.components import register_builtins
from spanguard.collector.config import Registry, load_config_text
from spanguard.collector.service import Collector


@pytest.fixture
def span_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``spanguard.exporters.span_names`` importable from the example's text."""
    modules = example_modules("An exporter", "exporters/span_names")
    assert set(modules) == {"config.py", "sender.py", "factory.py"}
    add_to_package(spanguard.exporters, modules, tmp_path, monkeypatch, "span_names")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP server taking POSTs: its URL and the bodies it got."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/names", bodies
    server.shutdown()
    server.server_close()


def test_the_worked_example_exports_in_a_collector(span_names: None, receiver: tuple[str, list[bytes]]) -> None:
    from spanguard.exporters.span_names.factory import new_factory

    url, bodies = receiver
    registry = Registry()
    register_builtins(registry)
    registry.register(new_factory())
    config = load_config_text(
        f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
exporters: {{span_names/hook: {{endpoint: "{url}"}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [span_names/hook]}}}}
""",
        registry=registry,
    )
    collector = Collector(config)
    collector.start()
    try:
        spans = [Span(name=name, trace_id=b"\x01" * 16, span_id=bytes([n + 1]) * 8) for n, name in enumerate("ab")]
        collector.exporters["span_names/hook"].consume(
            TraceBatch([ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
        )
        collector.shutdown(10)  # drains the queue
    finally:
        collector.shutdown(1)
    assert bodies == [b"a\nb"]
    assert b'spanguard_exporter_sent_spans_total{exporter="span_names/hook"} 2.0' in collector.metrics.render()

"""The paths a planted value can take out of an app, run end to end, and what each one let through.

* :func:`run_in_process`: ``spanguard.instrument(capture_content=True, tracer_provider=...)`` on an SDK
  ``TracerProvider`` whose in-memory exporter and an app's own :class:`~.plant.RecordingProcessor` (registered before
  ``instrument()``) record every span; with ``redact=False`` it gives the raw spans the collector path starts from.
* :func:`run_collector`: those raw spans over real OTLP gRPC and HTTP into spanguard's collector (default
  ``redaction`` but for a time budget no loaded runner trips), read back at an OTLP sink and, through the collector's
  ``review`` exporter, from the review service's API and its SQLite store.
* :func:`redact_otlp`: the collector's redaction in-process, through the OTLP adapter
  (:func:`spanguard.processors.otlp.redact_resource_spans`), for the benchmark.

Each returns, per slot's trace id, the strings of what arrived; :func:`leaks` searches them.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spanguard

from .detect import Detector, flatten, is_generated_id, otlp_span_strings, readable_span_strings
from .generator import Planted
from .plant import SERVICE, Planter, RecordingProcessor, Slot

__all__ = [
    "CollectorRun",
    "InProcessRun",
    "Leak",
    "clean_altered",
    "leaks",
    "redact_otlp",
    "run_collector",
    "run_in_process",
]

Arrived = dict[int, list[str]]
"""Per trace id: every string that arrived for that trace."""


@dataclass
class InProcessRun:
    slots: list[Slot]
    exported: Arrived
    on_start: Arrived
    on_end: Arrived
    spans: list[ReadableSpan]
    seconds: float


@dataclass
class CollectorRun:
    slots: list[Slot] = field(default_factory=list)
    sink: dict[str, Arrived] = field(default_factory=dict)
    """Per protocol (``grpc``, ``http``)."""
    review_api: Arrived = field(default_factory=dict)
    review_rows: Arrived = field(default_factory=dict)
    review_other_rows: list[str] = field(default_factory=list)
    """Rows of the store's tables that belong to no trace (audit log, ...)."""
    protocol_of: dict[int, str] = field(default_factory=dict)
    sink_spans: int = 0
    review_items: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Leak:
    stage: str
    location: str
    planted: Planted
    sdk: str


def _by_trace(pairs: Iterable[tuple[int, list[str]]]) -> Arrived:
    out: Arrived = defaultdict(list)
    for trace_id, strings in pairs:
        out[trace_id].extend(strings)
    return out


def run_in_process(
    fake: Any,
    slots: Sequence[Slot],
    *,
    redact: bool = True,
    redactor: Any = None,
) -> InProcessRun:
    """Plant every slot through an instrumented SDK tracer provider; ``redactor`` replaces the default one."""
    from spanguard.processors.redaction import Redactor
    from spanguard.processors.sdk import wrap_with_redaction

    if spanguard.is_instrumented():
        raise RuntimeError("spanguard is instrumented already: instrument() would ignore this run's provider")
    started = time.perf_counter()
    fake.reset()
    exporter = InMemorySpanExporter()
    observer = RecordingProcessor()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(observer)  # the app's own processor, registered before instrument()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    resource_redactor = None
    if redact:
        resource_redactor = redactor or Redactor()
        if redactor is not None:  # instrument() then finds the processors wrapped already
            wrap_with_redaction(provider, redactor)
    extra_providers: list[TracerProvider] = []

    def provider_for(resource: Resource) -> TracerProvider:
        extra = TracerProvider(resource=resource)
        extra.add_span_processor(observer)
        extra.add_span_processor(SimpleSpanProcessor(exporter))
        if resource_redactor is not None:
            wrap_with_redaction(extra, resource_redactor)
        extra_providers.append(extra)
        return extra

    meter_provider = MeterProvider()
    spanguard.instrument(capture_content=True, redact=redact, tracer_provider=provider, meter_provider=meter_provider)
    try:
        Planter(fake, provider, provider_for).run(slots)
    finally:
        spanguard.uninstrument()
        provider.force_flush()
    spans = list(exporter.get_finished_spans())
    exported = _by_trace((s.context.trace_id, readable_span_strings(s)) for s in spans)
    run = InProcessRun(
        list(slots),
        exported,
        _by_trace((t, s) for t, lists in observer.started.items() for s in lists),
        _by_trace((t, s) for t, lists in observer.ended.items() for s in lists),
        spans,
        time.perf_counter() - started,
    )
    meter_provider.shutdown()
    return run


def leaks(
    detector: Detector,
    slots: Iterable[Slot],
    stages: dict[str, Arrived],
) -> list[Leak]:
    """Every (stage, slot value) whose value arrived in that stage's strings of the slot's trace."""
    found: list[Leak] = []
    for slot in slots:
        if not slot.values:
            continue
        for stage, arrived in stages.items():
            strings = arrived.get(slot.trace_id)
            if not strings:
                continue
            for planted in detector.arrivals(slot.values, strings):
                found.append(Leak(stage, slot.location, planted, slot.sdk))
    return found


def clean_altered(slots: Iterable[Slot], arrived: Arrived) -> tuple[int, list[tuple[str, str, str]]]:
    """How many clean values were checked, and those that did not arrive verbatim (kind, location, value)."""
    checked = 0
    altered: list[tuple[str, str, str]] = []
    for slot in slots:
        if not slot.clean:
            continue
        text = "\n".join(arrived.get(slot.trace_id, ()))
        for clean in slot.clean:
            checked += 1
            if clean.value not in text:
                altered.append((clean.kind, slot.location, clean.value))
    return checked, altered


# ---------------------------------------------------------------------------------------------------------------------
# the collector, in-process (benchmark) and for real (tests)


def encode(spans: Sequence[ReadableSpan]) -> Any:
    """The OTLP ``ExportTraceServiceRequest`` of SDK spans, as the official exporters build it."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans)


def otlp_by_trace(resource_spans: Iterable[Any]) -> Arrived:
    pairs = []
    for group in resource_spans:
        for scope in group.scope_spans:
            for span in scope.spans:
                pairs.append((int.from_bytes(span.trace_id, "big"), otlp_span_strings(span, group.resource)))
    return _by_trace(pairs)


def redact_otlp(spans: Sequence[ReadableSpan], redactor: Any) -> Arrived:
    """The collector's redaction of ``spans`` through the OTLP adapter, without the network."""
    from spanguard.processors.otlp import redact_resource_spans

    request = encode(spans)
    redact_resource_spans(request.resource_spans, redactor)
    return otlp_by_trace(request.resource_spans)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The corpus measures what redaction recognises, not how fast a loaded runner is: with the default 200 ms, a bundle of
# clean values on a busy 2-core machine once failed closed whole and counted as six false positives. Failing closed on
# the budget is tested in tests/processors/test_redaction.py.
CLEAN_BUDGET_MS = 10_000


def _collector_yaml(sink: Any, review_port: int) -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{time_budget_ms: {CLEAN_BUDGET_MS}}}
  risk: {{}}
  tail_sampling: {{decision_wait: 0.5s, root_grace: 0.05s, green_rate: 1.0, yellow_rate: 1.0, poll_interval: 0.05}}
  batch: {{}}
exporters:
  otlp/sink:
    endpoint: "{sink.grpc_endpoint}"
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 0.05s}}
  review:
    endpoint: "http://127.0.0.1:{review_port}"
    token: ${{env:SPANGUARD_REVIEW_TOKEN}}
    retry_on_failure: {{initial_interval: 0.05s, max_interval: 0.2s}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction, risk, tail_sampling, batch]
      exporters: [otlp/sink, review]
"""


def run_collector(
    spans: Sequence[ReadableSpan],
    slots: Sequence[Slot],
    sink_factory: Any,
    directory: Path,
    *,
    timeout: float = 60.0,
) -> CollectorRun:
    """Send ``spans`` (even slots over gRPC, odd over HTTP) through a real collector to a sink and the review store."""
    import httpx
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    from spanguard.collector.config import load_config_text
    from spanguard.collector.service import Collector
    from spanguard.review.cli import ReviewServer
    from spanguard.review.config import ServiceConfig
    from spanguard.review.store import ReviewStore

    started = time.perf_counter()
    run = CollectorRun(list(slots))
    protocol_of = {slot.trace_id: ("grpc" if slot.index % 2 == 0 else "http") for slot in slots}
    run.protocol_of = protocol_of
    traces = {slot.trace_id for slot in slots}
    wanted = [s for s in spans if s.context.trace_id in traces]
    db = directory / "review.db"
    db_url = f"sqlite:///{db}"
    config = ServiceConfig(db=db_url)
    store = ReviewStore(db_url, config.policy)
    store.migrate()
    ingest = store.create_token("collector", "ingest")
    reviewer = store.create_token("auditor", "reviewer")
    port = _free_port()
    service = ReviewServer(config, store, port=port)
    service.start()
    with sink_factory() as sink:
        text = _collector_yaml(sink, port)
        collector = Collector(load_config_text(text, environ={"SPANGUARD_REVIEW_TOKEN": ingest}))
        collector.start()
        try:
            receiver = collector.receivers[0]
            grpc = GrpcExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True)
            http = HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces")
            for protocol, exporter in (("grpc", grpc), ("http", http)):
                mine = [s for s in wanted if protocol_of[s.context.trace_id] == protocol]
                for i in range(0, len(mine), 256):
                    exporter.export(mine[i : i + 256])
                exporter.shutdown()
            sink.wait_for_spans(len(wanted), timeout=timeout)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and len(store.list(limit=10_000)) < len(traces):
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            collector.shutdown(timeout=10)
        by_protocol: dict[str, list[Any]] = defaultdict(list)
        for received in sink.received:
            by_protocol["all"].extend(received.request.resource_spans)
        arrived = otlp_by_trace(by_protocol["all"])
        run.sink_spans = len(sink.spans())
    for protocol in ("grpc", "http"):
        run.sink[protocol] = {t: s for t, s in arrived.items() if protocol_of.get(t) == protocol}
    try:
        headers = {"Authorization": f"Bearer {reviewer}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            ids: list[int] = []
            offset = 0
            while True:
                page = client.get("/v1/review-items", params={"limit": 500, "offset": offset}).json()["items"]
                ids += [item["id"] for item in page]
                if len(page) < 500:
                    break
                offset += 500
            pairs = []
            for item_id in ids:
                detail = client.get(f"/v1/review-items/{item_id}").json()
                strings: list[str] = []
                flatten(detail, strings)
                pairs.append((int(detail["trace_id"], 16), strings))
            run.review_api = _by_trace(pairs)
            run.review_items = len(ids)
            audit = client.get("/v1/audit", params={"limit": 10_000}).json()
            flatten(audit, run.review_other_rows)
    finally:
        service.shutdown()
        store.shutdown()
    run.review_rows, other = _store_rows(db)
    run.review_other_rows += other
    run.seconds = time.perf_counter() - started
    return run


def _store_rows(db: Path) -> tuple[Arrived, list[str]]:
    """Every row of every table of the SQLite store: by trace id where the row has one, else in one list."""
    per_trace: Arrived = defaultdict(list)
    other: list[str] = []
    with sqlite3.connect(db) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')  # table names from sqlite_master
            columns = [c[0] for c in cursor.description]
            for row in cursor:
                strings: list[str] = []
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, (str, bytes)) and not is_generated_id(column, value):
                        flatten(value if isinstance(value, str) else value.decode("utf-8", "replace"), strings)
                record = dict(zip(columns, row, strict=True))
                trace_id = record.get("trace_id")
                if isinstance(trace_id, str) and len(trace_id) == 32:
                    per_trace[int(trace_id, 16)].extend(strings)
                else:
                    other.extend(strings)
    return per_trace, other

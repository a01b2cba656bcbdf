"""Service-level faults: the collector as a whole (a real process where process death matters), real OTLP clients in,
the scriptable OTLP sink out.

What "nothing lost" means here, and what these tests assert:

- delivery is **at least once**: a span the collector acknowledged to a client arrives at the backend; after a crash
  or a restart it may arrive twice (a batch that was sent but not yet removed from the persistent queue is sent
  again). So the tests assert *no loss* (every acknowledged span id is at the sink) and *nothing invented* (every span
  id at the sink was sent by the test), not exactly-once;
- a span the collector refused (backpressure) was never acknowledged: the client got a status OTLP clients retry,
  and is responsible for it until it is acknowledged;
- the pipelines under test have no ``tail_sampling``: its per-trace buffer is memory by design (a trace is decided
  only once it is complete), so only the exporters' sending queues are durable. Those are what these tests cover.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourcePb
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sink import OtlpSink

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector

pytestmark = pytest.mark.timeout(60)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
RETRY_INFO_TRAILER = "google.rpc.retryinfo-bin"
# Fast, never-giving-up retries towards the sink, so recovery is quick and nothing is dropped by a retry limit.
FAST_RETRY = "retry_on_failure: {initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}"


# ------------------------------------------------------------------------------------------------------------ helpers


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (all bound at once, so they differ)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


@dataclass(frozen=True)
class Ports:
    grpc: int
    http: int
    metrics: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(3))

    @classmethod
    def any(cls) -> Ports:
        """Port 0 everywhere: for an in-process collector, which tells the bound ports."""
        return cls(0, 0, 0)


def collector_yaml(ports: Ports, exporters: dict[str, str], *, grpc_extra: str = "", http_extra: str = "") -> str:
    """One ``traces`` pipeline, ``otlp`` receiver -> ``exporters`` (id -> settings), no processors (so nothing is
    held in memory outside the exporters' sending queues)."""
    defined = "".join(f"\n  {cid}: {settings}" for cid, settings in exporters.items())
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{ports.grpc}"{grpc_extra}}}
      http: {{endpoint: "127.0.0.1:{ports.http}"{http_extra}}}
exporters:{defined}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{ports.metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [{", ".join(exporters)}]}}
"""


def otlp_exporter(sink: OtlpSink, queue: str = "{}") -> str:
    return f'{{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}, sending_queue: {queue}, {FAST_RETRY}}}'


def otlphttp_exporter(sink: OtlpSink, queue: str = "{}") -> str:
    return f'{{endpoint: "{sink.http_endpoint}", sending_queue: {queue}, {FAST_RETRY}}}'


def make_request(spans: int = 5) -> tuple[ExportTraceServiceRequest, set[bytes]]:
    """One OTLP request of ``spans`` spans of one new trace; answers it and its span ids."""
    trace_id = random.randbytes(15) + b"\x01"
    ids = [random.randbytes(7) + b"\x01" for _ in range(spans)]
    now = time.time_ns()
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=ResourcePb(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="faults"))]),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="test_faults"),
                        spans=[
                            Span(
                                trace_id=trace_id,
                                span_id=span_id,
                                parent_span_id=b"" if index == 0 else ids[0],
                                name=f"op {index}",
                                kind=Span.SPAN_KIND_INTERNAL,
                                start_time_unix_nano=now,
                                end_time_unix_nano=now + 1_000_000,
                            )
                            for index, span_id in enumerate(ids)
                        ],
                    )
                ],
            )
        ]
    )
    return request, set(ids)


class SpanFactory:
    """Finished SDK spans (``ReadableSpan``) for the official exporters; one factory per thread."""

    def __init__(self) -> None:
        self._memory = InMemorySpanExporter()
        self._provider = TracerProvider(resource=Resource.create({"service.name": "faults-sdk"}))
        self._provider.add_span_processor(SimpleSpanProcessor(self._memory))
        self._tracer = self._provider.get_tracer("test_faults")

    def batch(self, count: int) -> list[ReadableSpan]:
        with self._tracer.start_as_current_span("root"):
            for index in range(count - 1):
                self._tracer.start_span(f"child {index}").end()
        spans = list(self._memory.get_finished_spans())
        self._memory.clear()
        return spans

    def close(self) -> None:
        self._provider.shutdown()


def sdk_ids(spans: Iterable[ReadableSpan]) -> set[bytes]:
    return {span.context.span_id.to_bytes(8, "big") for span in spans}


class Client:
    """Raw OTLP/gRPC (official stub) and OTLP/HTTP (httpx) to one collector."""

    def __init__(self, grpc_port: int, http_port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.stub = TraceServiceStub(self.channel)
        self.raw = self.channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
        self.url = f"http://127.0.0.1:{http_port}/v1/traces"
        self.http = httpx.Client(timeout=5.0)

    def send_grpc(self, request: ExportTraceServiceRequest, timeout: float = 5.0) -> grpc.RpcError | None:
        """``None`` when acknowledged, else the error."""
        try:
            self.stub.Export(request, timeout=timeout)
        except grpc.RpcError as error:
            return error
        return None

    def send_http(self, request: ExportTraceServiceRequest) -> httpx.Response:
        return self.post(request.SerializeToString())

    def post(self, body: bytes, content_type: str = PROTOBUF, **headers: str) -> httpx.Response:
        return self.http.post(self.url, content=body, headers={"Content-Type": content_type, **headers})

    def close(self) -> None:
        self.channel.close()
        self.http.close()


def delivered(sink: OtlpSink, protocol: str | None = None) -> list[bytes]:
    """Every span id the sink received (with repeats), optionally only over ``protocol``."""
    return [
        span.span_id
        for received in list(sink.received)
        if protocol is None or received.protocol == protocol
        for resource in received.request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def wait_delivered(sink: OtlpSink, ids: set[bytes], timeout: float, protocol: str | None = None) -> set[bytes]:
    """Wait (bounded) until every id in ``ids`` reached the sink; answers what arrived."""
    deadline = time.monotonic() + timeout
    while True:
        got = set(delivered(sink, protocol))
        if ids <= got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric(text: str, sample_name: str, **labels: str) -> float:
    """The sum of the samples called ``sample_name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


REFUSED = "spanguard_receiver_refused_spans_total"
ACCEPTED = "spanguard_receiver_accepted_spans_total"
SENT = "spanguard_exporter_sent_spans_total"


class CollectorProcess:
    """``python -m spanguard.collector --config FILE`` as a child process, stderr captured to a file."""

    def __init__(self, config: Path, ports: Ports, workdir: Path, *, shutdown_timeout: float | None = None) -> None:
        self.config, self.ports, self.workdir = config, ports, workdir
        self.shutdown_timeout = shutdown_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.stderr_path = workdir / "collector-0.stderr"

    def start(self, timeout: float = 15.0) -> CollectorProcess:
        """Start and wait for ``/healthz`` 200."""
        self.runs += 1
        self.stderr_path = self.workdir / f"collector-{self.runs}.stderr"
        args = [sys.executable, "-m", "spanguard.collector", "--config", str(self.config)]
        if self.shutdown_timeout is not None:
            args += ["--shutdown-timeout", str(self.shutdown_timeout)]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert self.proc.poll() is None, f"collector exited with {self.proc.returncode}:\n{self.stderr()}"
            assert time.monotonic() < deadline, f"collector not healthy after {timeout}s:\n{self.stderr()}"
            time.sleep(0.05)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports.metrics}/healthz", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, tail: int | None = 6000) -> str:
        """What it logged (the last ``tail`` characters; all with ``None``)."""
        text = self.stderr_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """End it if it still runs (SIGTERM, then SIGKILL), by its own pid."""
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def processes() -> Iterator[list[CollectorProcess]]:
    """Collector processes a test started; whatever still runs is stopped afterwards."""
    started: list[CollectorProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


@contextlib.contextmanager
def in_process(text: str) -> Iterator[tuple[Collector, Client]]:
    collector = Collector(load_config_text(text))
    collector.start()
    receiver = collector.receivers[0]
    client = Client(receiver.grpc_port, receiver.http_port)
    try:
        yield collector, client
    finally:
        client.close()
        collector.shutdown(timeout=5)


def metrics_port(collector: Collector) -> int:
    return collector.telemetry_servers[0].port


# -------------------------------------------------------------------------------------------- 1. backend down, back


def test_backend_down_then_back_loses_nothing(sink: OtlpSink) -> None:
    """The backend is down while clients send; everything acknowledged meanwhile arrives once it is back, through
    both exporter types (``otlp`` over gRPC and ``otlphttp``), each with its own memory sending queue."""
    text = collector_yaml(Ports.any(), {"otlp/sink": otlp_exporter(sink), "otlphttp/sink": otlphttp_exporter(sink)})
    with in_process(text) as (collector, client):
        sink.down()
        sent: set[bytes] = set()
        for index in range(20):
            request, ids = make_request(5)
            if index % 2:
                response = client.send_http(request)
                assert response.status_code == 200, response.text
            else:
                assert client.send_grpc(request) is None
            sent |= ids
        time.sleep(1.0)
        assert delivered(sink) == []
        sink.up()
        over_grpc = wait_delivered(sink, sent, timeout=15, protocol="grpc")
        over_http = wait_delivered(sink, sent, timeout=5, protocol="http")
        assert sent - over_grpc == set(), f"lost over otlp: {len(sent - over_grpc)} of {len(sent)}"
        assert sent - over_http == set(), f"lost over otlphttp: {len(sent - over_http)} of {len(sent)}"
        assert over_grpc | over_http <= sent  # nothing invented
        for name in ("otlp/sink", "otlphttp/sink"):
            stats = collector.exporters[name].stats
            assert stats["retries"] > 0, (name, stats)  # it did fail and retry while the sink was down
            assert stats["dropped"] == 0 and stats["failed_spans"] == 0, (name, stats)


# ----------------------------------------------------------------------------------------- 2. SIGKILL under load


def test_sigkill_under_load_loses_no_acknowledged_span(
    sink: OtlpSink, tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """Clients (the official SDK exporters, two over gRPC, one over HTTP) send batches to a collector with a
    persistent sending queue while the backend is down; the collector is killed with SIGKILL mid-load. A new collector
    process on the same config and queue directory delivers every batch a client saw acknowledged.

    Batches in flight at the kill (not acknowledged) may or may not arrive; repeats are allowed (at least once).
    No ``tail_sampling`` here: its buffer is memory by design, so it would lose whole-trace state on SIGKILL.
    """
    ports = Ports.free()
    queue = f'{{storage: file, directory: "{tmp_path / "queue"}", queue_size: 100000}}'
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(ports, {"otlp/sink": otlp_exporter(sink, queue)}))
    sink.down()
    first = CollectorProcess(config, ports, tmp_path)
    processes.append(first)
    first.start()

    acked: set[bytes] = set()
    attempted: set[bytes] = set()
    acked_batches = [0]
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def load(make_exporter: Callable[[], Any]) -> None:
        factory, exporter = SpanFactory(), make_exporter()
        try:
            for _ in range(5000):  # bounded; the test stops it long before
                if stop.is_set():
                    return
                spans = factory.batch(10)
                ids = sdk_ids(spans)
                with lock:
                    attempted.update(ids)
                if exporter.export(spans) == SpanExportResult.SUCCESS:
                    with lock:
                        acked.update(ids)
                        acked_batches[0] += 1
        except BaseException as error:  # surfaced by the test below
            errors.append(error)
        finally:
            exporter.shutdown()
            factory.close()

    loaders = [
        threading.Thread(target=load, args=(make,), daemon=True)
        for make in (
            lambda: GrpcSpanExporter(endpoint=f"127.0.0.1:{ports.grpc}", insecure=True, timeout=2),
            lambda: GrpcSpanExporter(endpoint=f"127.0.0.1:{ports.grpc}", insecure=True, timeout=2),
            lambda: HttpSpanExporter(endpoint=f"http://127.0.0.1:{ports.http}/v1/traces", timeout=2),
        )
    ]
    for loader in loaders:
        loader.start()
    started = time.monotonic()
    assert wait_until(lambda: acked_batches[0] >= 30 and time.monotonic() - started > 0.5, timeout=10), (
        f"only {acked_batches[0]} batches acknowledged:\n{first.stderr()}"
    )
    first.signal(signal.SIGKILL)  # mid-load: the loaders are sending right now
    assert first.wait(5) == -signal.SIGKILL
    with lock:
        acked_at_kill = set(acked)
    time.sleep(0.3)  # the loaders see the collector gone
    stop.set()
    for loader in loaders:
        loader.join(15)
        assert not loader.is_alive()
    assert not errors, errors
    assert acked == acked_at_kill  # nothing can be acknowledged by a dead process
    assert len(acked) >= 300

    sink.up()
    second = CollectorProcess(config, ports, tmp_path)
    processes.append(second)
    second.start()
    got = wait_delivered(sink, acked, timeout=15)
    lost = acked - got
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged spans lost after SIGKILL:\n{second.stderr()}"
    assert got <= attempted  # nothing invented
    assert "resuming" in second.stderr(tail=None)


# ------------------------------------------------------------------------------------------------- 3. queue full


def test_queue_full_pushes_back_and_drops_nothing(sink: OtlpSink) -> None:
    """A tiny sending queue (2 batches) and the backend down: once the queue is full, clients get retryable answers
    (gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After) and the refusals are counted as backpressure. When
    the backend is back, what was accepted is exactly what is delivered, and the refused batches, sent again by the
    client, are accepted and delivered too."""
    queue = "{queue_size: 2, num_consumers: 2}"
    with in_process(collector_yaml(Ports.any(), {"otlp/sink": otlp_exporter(sink, queue)})) as (collector, client):
        sink.down()
        accepted: set[bytes] = set()
        refused: dict[str, list[tuple[ExportTraceServiceRequest, set[bytes]]]] = {"grpc": [], "http": []}
        for index in range(12):
            request, ids = make_request(5)
            if index % 2 == 0:
                error = client.send_grpc(request)
                if error is None:
                    accepted |= ids
                    continue
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                trailer = dict(error.trailing_metadata())[RETRY_INFO_TRAILER]
                assert error_details_pb2.RetryInfo.FromString(trailer).retry_delay.ToTimedelta().total_seconds() >= 1
                status = rpc_status.from_call(error)
                assert status is not None and any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
                refused["grpc"].append((request, ids))
            else:
                response = client.send_http(request)
                if response.status_code == 200:
                    accepted |= ids
                    continue
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
                refused["http"].append((request, ids))
        assert len(accepted) == 2 * 5  # the queue holds two batches
        assert refused["grpc"] and refused["http"]

        text = scrape(metrics_port(collector))
        for transport, requests in refused.items():
            spans = sum(len(ids) for _, ids in requests)
            assert metric(text, REFUSED, transport=transport, reason="backpressure") == spans, transport
        assert metric(text, ACCEPTED) == len(accepted)

        sink.up()
        got = wait_delivered(sink, accepted, timeout=15)
        assert got == accepted, "accepted != delivered"
        assert wait_until(lambda: metric(scrape(metrics_port(collector)), SENT) == len(accepted), timeout=5)

        # The client retries what was refused (as OTLP clients do) and it goes through now that there is room.
        everything = set(accepted)
        for transport, requests in refused.items():
            for request, ids in requests:
                deadline = time.monotonic() + 10
                while True:
                    ok = (
                        client.send_grpc(request) is None
                        if transport == "grpc"
                        else client.send_http(request).status_code == 200
                    )
                    if ok:
                        break
                    assert time.monotonic() < deadline, f"{transport} retry never accepted"
                    time.sleep(0.1)
                everything |= ids
        got = wait_delivered(sink, everything, timeout=15)
        assert got == everything
        stats = collector.exporters["otlp/sink"].stats
        assert stats["dropped"] == 0 and stats["failed_spans"] == 0, stats


# ------------------------------------------------------------------------------ 4. the SDK's exporter as the client


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporter_retries_the_collectors_pushback(sink: OtlpSink, transport: str) -> None:
    """The official OTLP exporter's ``export()`` while the collector pushes back (its one-batch queue is full, the
    backend down): it is refused at least once, retries on the collector's answer (RetryInfo / Retry-After), and
    returns SUCCESS once the backend is back and the queue has room."""
    queue = "{queue_size: 1, num_consumers: 1}"
    with in_process(collector_yaml(Ports.any(), {"otlphttp/sink": otlphttp_exporter(sink, queue)})) as (
        collector,
        client,
    ):
        sink.down()
        filler, filler_ids = make_request(3)
        assert client.send_grpc(filler) is None  # the queue is full now
        receiver = collector.receivers[0]
        if transport == "grpc":
            exporter: Any = GrpcSpanExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True, timeout=15)
        else:
            exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=15)
        factory = SpanFactory()
        spans = factory.batch(4)
        port = metrics_port(collector)

        def refused() -> float:
            return metric(scrape(port), REFUSED, transport=transport, reason="backpressure")

        before = refused()
        result: list[SpanExportResult] = []
        started = time.monotonic()
        thread = threading.Thread(target=lambda: result.append(exporter.export(spans)), daemon=True)
        thread.start()
        try:
            assert wait_until(lambda: refused() >= before + len(spans), timeout=5), "the exporter was never refused"
            time.sleep(0.5)
            sink.up()
            thread.join(15)
            assert not thread.is_alive(), "export() did not return"
        finally:
            exporter.shutdown()
            factory.close()
        assert result == [SpanExportResult.SUCCESS]
        attempts_refused = (refused() - before) / len(spans)
        assert attempts_refused >= 1
        assert time.monotonic() - started < 15
        got = wait_delivered(sink, sdk_ids(spans) | filler_ids, timeout=10)
        assert sdk_ids(spans) | filler_ids <= got


# ---------------------------------------------------------------------------------------------------- 5. SIGTERM


def test_sigterm_stops_accepting_drains_and_exits_0(
    sink: OtlpSink, tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """SIGTERM with a slow backend and a memory queue holding batches: the receivers refuse new requests at once, the
    queue is drained to the backend within the shutdown timeout (a memory queue's leftovers would be lost, so all
    arriving shows it drained), and the exit code is 0."""
    ports = Ports.free()
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(ports, {"otlp/sink": otlp_exporter(sink, "{num_consumers: 2}")}))
    process = CollectorProcess(config, ports, tmp_path, shutdown_timeout=10)
    processes.append(process)
    process.start()
    client = Client(ports.grpc, ports.http)
    try:
        sink.delay = 0.4  # 12 batches, 2 at a time: about 2.4 s of draining
        acked: set[bytes] = set()
        for _ in range(12):
            request, ids = make_request(5)
            assert client.send_grpc(request) is None
            acked |= ids
        signalled = time.monotonic()
        process.signal(signal.SIGTERM)
        refused_while_draining = False
        deadline = signalled + 2.0
        while time.monotonic() < deadline:
            request, ids = make_request(1)
            if client.send_grpc(request, timeout=0.5) is None:
                acked |= ids  # raced the signal: acknowledged, so it must arrive too
            else:
                refused_while_draining = process.alive() and not acked <= set(delivered(sink))
                break
            time.sleep(0.05)
        assert refused_while_draining, "the collector kept accepting after SIGTERM (or did not drain)"
        code = process.wait(15)
        elapsed = time.monotonic() - signalled
    finally:
        client.close()
    assert code == 0, process.stderr()
    assert elapsed < 10, f"shutdown took {elapsed:.1f}s"
    got = set(delivered(sink))
    assert acked <= got, f"{len(acked - got)} acknowledged spans not drained:\n{process.stderr()}"
    assert "lost" not in process.stderr(tail=None)


def test_sigterm_with_backend_down_keeps_the_rest_for_the_next_start(
    sink: OtlpSink, tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """SIGTERM while the backend is down and the persistent queue holds batches: the collector exits 0 within its
    shutdown timeout, leaving the batches on disk; the next start delivers them."""
    ports = Ports.free()
    queue = f'{{storage: file, directory: "{tmp_path / "queue"}"}}'
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(ports, {"otlp/sink": otlp_exporter(sink, queue)}))
    sink.down()
    timeout = 2.0
    first = CollectorProcess(config, ports, tmp_path, shutdown_timeout=timeout)
    processes.append(first)
    first.start()
    client = Client(ports.grpc, ports.http)
    try:
        acked: set[bytes] = set()
        for index in range(10):
            request, ids = make_request(5)
            if index % 2:
                assert client.send_http(request).status_code == 200
            else:
                assert client.send_grpc(request) is None
            acked |= ids
    finally:
        client.close()
    signalled = time.monotonic()
    first.signal(signal.SIGTERM)
    code = first.wait(timeout + 10)
    elapsed = time.monotonic() - signalled
    assert code == 0, first.stderr()
    # The slack is the process's own part: waking on the signal, stopping the receivers, interpreter exit (~0.7 s).
    assert elapsed < timeout + 2.0, f"exit took {elapsed:.1f}s with a {timeout}s shutdown timeout"
    assert "left in the persistent queue" in first.stderr(tail=None)

    sink.up()
    second = CollectorProcess(config, ports, tmp_path)
    processes.append(second)
    second.start()
    got = wait_delivered(sink, acked, timeout=15)
    assert acked <= got, f"{len(acked - got)} of {len(acked)} spans not delivered after restart:\n{second.stderr()}"
    assert got <= acked
    second.signal(signal.SIGTERM)
    assert second.wait(15) == 0, second.stderr()


def test_sigterm_timeout_bounds_the_whole_shutdown_with_several_exporters(
    sink: OtlpSink, tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """``--shutdown-timeout`` bounds the whole shutdown, however many exporters are still trying to drain."""
    ports = Ports.free()
    queue = f'{{storage: file, directory: "{tmp_path / "queue"}"}}'
    exporters = {f"otlp/sink{index}": otlp_exporter(sink, queue) for index in range(3)}
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(ports, exporters))
    sink.down()
    timeout = 2.0
    process = CollectorProcess(config, ports, tmp_path, shutdown_timeout=timeout)
    processes.append(process)
    process.start()
    client = Client(ports.grpc, ports.http)
    try:
        for _ in range(3):
            assert client.send_grpc(make_request(3)[0]) is None
    finally:
        client.close()
    signalled = time.monotonic()
    process.signal(signal.SIGTERM)
    code = process.wait(3 * timeout + 10)
    elapsed = time.monotonic() - signalled
    assert code == 0, process.stderr()
    assert process.stderr(tail=None).count("left in the persistent queue") == 3
    assert elapsed < timeout + 2.0, f"exit took {elapsed:.1f}s with a {timeout}s shutdown timeout and 3 exporters"


# ------------------------------------------------------------------------------------------------- 6. bad config


def test_bad_config_exits_2_naming_the_path_and_validate_accepts_a_good_one(tmp_path: Path) -> None:
    ports = Ports.free()
    good = collector_yaml(ports, {"otlp/sink": '{endpoint: "127.0.0.1:1", tls: {insecure: true}}'})
    (tmp_path / "good.yaml").write_text(good)
    bad = good.replace("tls: {insecure: true}", "tls: {insecure: true}, sending_queue: {queue_size: 0}")
    bad = bad.replace(f'endpoint: "127.0.0.1:{ports.grpc}"', f'endpoint: "127.0.0.1:{ports.grpc}", bogus: 1')
    assert bad.count("queue_size: 0") == 1 and bad.count("bogus") == 1
    (tmp_path / "bad.yaml").write_text(bad)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
        )

    started = run("spanguard.collector", "--config", "bad.yaml")
    assert started.returncode == 2, started
    for path in ("exporters.otlp/sink.sending_queue.queue_size", "receivers.otlp.protocols.grpc.bogus"):
        assert path in started.stderr, started.stderr
    assert "bad.yaml" in started.stderr

    validated = run("spanguard.cli", "collector", "validate", "--config", "good.yaml")
    assert validated.returncode == 0, validated
    assert validated.stdout.strip() == "config OK"

    refused = run("spanguard.cli", "collector", "validate", "--config", "bad.yaml")
    assert refused.returncode == 2 and "exporters.otlp/sink.sending_queue.queue_size" in refused.stderr


# ---------------------------------------------------------------------------------------------- 7. bad input smoke


def test_bad_input_is_refused_and_the_process_keeps_serving(
    sink: OtlpSink, tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    ports = Ports.free()
    config = tmp_path / "collector.yaml"
    config.write_text(
        collector_yaml(
            ports,
            {"otlp/sink": otlp_exporter(sink)},
            grpc_extra=", max_recv_msg_size_mib: 1",
            http_extra=", max_request_body_size_mib: 1",
        )
    )
    process = CollectorProcess(config, ports, tmp_path)
    processes.append(process)
    process.start()
    client = Client(ports.grpc, ports.http)
    big = os.urandom(2 * 1024 * 1024)
    good_ids: set[bytes] = set()

    def grpc_code(body: bytes) -> grpc.StatusCode:
        try:
            client.raw(body, timeout=10)
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    bad_inputs: list[tuple[str, Callable[[], Any], Any]] = [
        ("grpc malformed protobuf", lambda: grpc_code(b"\xff\xff\xff\xff"), grpc.StatusCode.INVALID_ARGUMENT),
        ("grpc oversized", lambda: grpc_code(big), grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("http malformed protobuf", lambda: client.post(b"\xff\xff\xff\xff").status_code, 400),
        ("http malformed json", lambda: client.post(b'{"resourceSpans": [', "application/json").status_code, 400),
        ("http wrong content type", lambda: client.post(b"hello", "text/plain").status_code, 415),
        ("http bad gzip", lambda: client.post(b"not gzip", PROTOBUF, **{"Content-Encoding": "gzip"}).status_code, 400),
        ("http oversized", lambda: client.post(big).status_code, 413),
    ]
    try:
        for what, send_bad, expected in bad_inputs:
            assert send_bad() == expected, what
            request, ids = make_request(2)
            assert client.send_grpc(request) is None, f"gRPC refused a good request after {what}"
            good_ids |= ids
            request, ids = make_request(2)
            response = client.send_http(request)
            assert response.status_code == 200, f"HTTP refused a good request after {what}: {response.text}"
            good_ids |= ids
            assert process.alive(), f"died after {what}:\n{process.stderr()}"
        assert process.healthy()
        text = scrape(ports.metrics)
        # Refusals before decoding count 0 spans (the span count is unknown), so only the series shows them.
        for reason in ("malformed", "too_large"):
            assert f'reason="{reason}"' in text, reason
    finally:
        client.close()
    got = wait_delivered(sink, good_ids, timeout=10)
    assert good_ids <= got

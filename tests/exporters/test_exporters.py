"""Exporters against a real OTLP sink: delivery, retries, permanent failures, backpressure, shutdown, file, debug."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import grpc
import pydantic
import pytest
from exporter_build import SECRET, copy_batch, make_batch, make_exporter, wait_until
from opentelemetry import context as otel_context
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sink import OtlpSink

from spanguard.collector.component import Backpressure, Component, Consumer, PermanentError, TraceBatch
from spanguard.durations import parse_duration
from spanguard.exporters.exporterhelper.exporter import Exporter
from spanguard.exporters.exporterhelper.retry import Backoff, RetryConfig, classify_http_status, parse_retry_after
from spanguard.exporters.file.config import FileExporterConfig
from spanguard.exporters.otlp.config import OtlpExporterConfig
from spanguard.exporters.otlp.sender import GrpcSender
from spanguard.exporters.otlphttp.config import OtlpHttpExporterConfig

FAST_RETRY = {"initial_interval": 0.01, "max_interval": 0.05, "max_elapsed_time": 20, "randomization_factor": 0.2}


def spans_of(batches: list[TraceBatch]) -> dict[bytes, Span]:
    return {span.span_id: span for b in batches for r in b.resource_spans for s in r.scope_spans for span in s.spans}


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as server:
        yield server


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    made: list[Exporter] = []
    yield made
    for exporter in made:
        exporter.shutdown(timeout=2)


def otlp(sink: OtlpSink, made: list[Exporter], **overrides: Any) -> Exporter:
    config: dict[str, Any] = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY}
    config.update(overrides)
    exporter = make_exporter("otlp", "otlp/test", config)
    made.append(exporter)
    exporter.start()
    return exporter


def otlphttp(sink: OtlpSink, made: list[Exporter], **overrides: Any) -> Exporter:
    config: dict[str, Any] = {"endpoint": sink.http_endpoint, "retry_on_failure": FAST_RETRY}
    config.update(overrides)
    exporter = make_exporter("otlphttp", "otlphttp/test", config)
    made.append(exporter)
    exporter.start()
    return exporter


def make(kind: str, sink: OtlpSink, made: list[Exporter], **overrides: Any) -> Exporter:
    return (otlp if kind == "grpc" else otlphttp)(sink, made, **overrides)


def send(exporter: Exporter, count: int = 1, spans: int = 3) -> list[TraceBatch]:
    originals = []
    for index in range(count):
        batch = make_batch(spans, tag=str(index))
        originals.append(copy_batch(batch))
        exporter.consume(batch)
    return originals


# ---------------------------------------------------------------------------------------------------------------------
# Delivery


def test_exporter_is_a_consumer_and_a_component(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters)
    assert isinstance(exporter, Consumer)
    assert isinstance(exporter, Component)
    assert exporter.name == "otlp/test"


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_otlp_grpc_delivers_identical_spans(sink: OtlpSink, exporters: list[Exporter], compression: str) -> None:
    exporter = otlp(sink, exporters, compression=compression, headers={"X-Tenant": "acme"})
    originals = send(exporter, count=4)
    received = sink.wait_for_spans(12)
    assert {s.span_id: s for s in received} == spans_of(originals)
    assert sink.received[0].headers["x-tenant"] == "acme"
    assert sink.received[0].request.resource_spans[0].resource.attributes[0].key == "service.name"
    assert wait_until(lambda: exporter.stats["sent_spans"] == 12)
    assert exporter.stats | {"queue_capacity": 0} == {
        "sent_spans": 12,
        "sent_batches": 4,
        "failed_spans": 0,
        "rejected_spans": 0,
        "retries": 0,
        "queue_size": 0,
        "queue_capacity": 0,
        "dropped": 0,
        "corrupt_items": 0,
    }


@pytest.mark.parametrize(("encoding", "compression"), [("proto", "gzip"), ("proto", "none"), ("json", "gzip")])
def test_otlphttp_delivers_identical_spans(
    sink: OtlpSink, exporters: list[Exporter], encoding: str, compression: str
) -> None:
    exporter = otlphttp(sink, exporters, encoding=encoding, compression=compression, headers={"Authorization": "t"})
    originals = send(exporter, count=3)
    received = sink.wait_for_spans(9)
    assert {s.span_id: s for s in received} == spans_of(originals)
    first = sink.received[0]
    assert first.content_type == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert first.content_encoding == ("gzip" if compression == "gzip" else "")
    assert first.headers["authorization"] == "t"
    assert wait_until(lambda: exporter.stats["sent_spans"] == 9)


def test_otlphttp_traces_endpoint_overrides_the_base_url(sink: OtlpSink, exporters: list[Exporter]) -> None:
    config = OtlpHttpExporterConfig(endpoint="http://127.0.0.1:1", traces_endpoint=f"{sink.http_endpoint}/v1/traces")
    assert config.url == f"{sink.http_endpoint}/v1/traces"
    assert OtlpHttpExporterConfig(endpoint="http://h:4318/").url == "http://h:4318/v1/traces"
    exporter = make_exporter("otlphttp", "otlphttp/x", config)
    exporters.append(exporter)
    exporter.start()
    send(exporter)
    assert len(sink.wait_for_spans(3)) == 3


def test_exports_run_with_instrumentation_suppressed(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters)
    seen: list[Any] = []
    real_send = exporter._sender.send

    def spy(payload: Any) -> Any:
        seen.append(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY))
        return real_send(payload)

    exporter._sender.send = spy  # type: ignore[method-assign]
    send(exporter)
    sink.wait_for_spans(3)
    assert seen == [True]


# ---------------------------------------------------------------------------------------------------------------------
# Retries


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    ],
)
def test_grpc_retryable_codes_are_retried(sink: OtlpSink, exporters: list[Exporter], code: grpc.StatusCode) -> None:
    exporter = otlp(sink, exporters)
    sink.fail_grpc(2, code)
    originals = send(exporter)
    assert {s.span_id for s in sink.wait_for_spans(3)} == set(spans_of(originals))
    assert wait_until(lambda: exporter.stats["sent_spans"] == 3)
    assert sink.attempts["grpc"] == 3
    assert exporter.stats["retries"] == 2
    assert exporter.stats["dropped"] == 0


def test_grpc_resource_exhausted_with_retry_info_waits_as_told(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters)
    sink.fail_grpc(1, grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay=0.6)
    started = time.monotonic()
    send(exporter)
    assert len(sink.wait_for_spans(3)) == 3
    assert time.monotonic() - started >= 0.6
    assert exporter.stats["retries"] == 1


def test_grpc_resource_exhausted_without_retry_info_is_permanent(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters)
    sink.fail_grpc(1, grpc.StatusCode.RESOURCE_EXHAUSTED)
    send(exporter)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3)
    assert sink.attempts["grpc"] == 1
    assert exporter.stats["retries"] == 0


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    ],
)
def test_grpc_permanent_failure_is_not_retried_and_is_counted(
    sink: OtlpSink, exporters: list[Exporter], code: grpc.StatusCode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = otlp(sink, exporters)
    sink.fail_grpc(1, code, message="bad data")
    send(exporter)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3)
    time.sleep(0.1)
    assert sink.attempts["grpc"] == 1
    stats = exporter.stats
    assert (stats["retries"], stats["sent_spans"], stats["dropped"], stats["queue_size"]) == (0, 0, 3, 0)
    assert any(code.name in record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_retryable_statuses_are_retried(sink: OtlpSink, exporters: list[Exporter], status: int) -> None:
    exporter = otlphttp(sink, exporters)
    sink.fail_http(2, status)
    originals = send(exporter)
    assert {s.span_id for s in sink.wait_for_spans(3)} == set(spans_of(originals))
    assert sink.attempts["http"] == 3
    assert wait_until(lambda: exporter.stats["retries"] == 2 and exporter.stats["sent_spans"] == 3)


@pytest.mark.parametrize("status", [429, 503])
def test_http_retry_after_seconds_is_honoured(sink: OtlpSink, exporters: list[Exporter], status: int) -> None:
    exporter = otlphttp(sink, exporters)
    sink.fail_http(1, status, retry_after="1")
    started = time.monotonic()
    send(exporter)
    assert len(sink.wait_for_spans(3)) == 3
    assert time.monotonic() - started >= 1.0


def test_http_retry_after_date_is_honoured(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlphttp(sink, exporters)
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
    sink.fail_http(1, 503, retry_after=format_datetime(when, usegmt=True))
    send(exporter)
    assert len(sink.wait_for_spans(3)) == 3
    assert datetime.now(timezone.utc) >= when - timedelta(milliseconds=50)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
def test_http_permanent_failure_is_not_retried(
    sink: OtlpSink, exporters: list[Exporter], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = otlphttp(sink, exporters)
    sink.fail_http(1, status)
    send(exporter)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3)
    time.sleep(0.1)
    assert sink.attempts["http"] == 1
    assert exporter.stats["retries"] == 0
    assert f"HTTP {status}" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_partial_success_is_logged_and_counted(
    sink: OtlpSink, exporters: list[Exporter], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make(kind, sink, exporters)
    sink.partial_success(kind, 2, "2 spans had invalid ids")
    send(exporter, spans=5)
    assert wait_until(lambda: exporter.stats["sent_batches"] == 1)
    assert exporter.stats["rejected_spans"] == 2
    assert exporter.stats["sent_spans"] == 3
    assert sink.attempts[kind] == 1
    assert "2 spans had invalid ids" in caplog.text


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_backend_down_then_back_loses_nothing(sink: OtlpSink, exporters: list[Exporter], kind: str) -> None:
    exporter = make(kind, sink, exporters)
    sink.down()
    originals = send(exporter, count=10)
    time.sleep(0.8)
    assert exporter.stats["retries"] > 0
    assert exporter.stats["sent_spans"] == 0
    sink.up()
    received = sink.wait_for_spans(30, timeout=15)
    assert {s.span_id for s in received} == set(spans_of(originals))
    assert wait_until(lambda: exporter.stats["sent_spans"] == 30)
    assert exporter.stats["dropped"] == 0
    assert exporter.stats["failed_spans"] == 0


def test_giving_up_after_max_elapsed_time_counts_failed(sink: OtlpSink, exporters: list[Exporter]) -> None:
    retry = dict(FAST_RETRY, max_elapsed_time=0.3)
    exporter = otlp(sink, exporters, retry_on_failure=retry)
    sink.down()
    started = time.monotonic()
    send(exporter)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3, timeout=5)
    assert time.monotonic() - started < 2
    assert exporter.stats["retries"] >= 1
    assert exporter.stats["dropped"] == 3
    assert exporter.stats["queue_size"] == 0


def test_retry_disabled_fails_on_first_error(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters, retry_on_failure={"enabled": False})
    sink.fail_grpc(1, grpc.StatusCode.UNAVAILABLE)
    send(exporter)
    assert wait_until(lambda: exporter.stats["failed_spans"] == 3)
    assert sink.attempts["grpc"] == 1


# ---------------------------------------------------------------------------------------------------------------------
# Backpressure and shutdown


def test_full_queue_pushes_back_and_drops_nothing(sink: OtlpSink, exporters: list[Exporter]) -> None:
    exporter = otlp(sink, exporters, sending_queue={"queue_size": 3, "num_consumers": 1})
    sink.down()
    originals = send(exporter, count=3)
    assert exporter.stats["queue_size"] == 3
    with pytest.raises(Backpressure) as refused:
        exporter.consume(make_batch())
    assert refused.value.retry_after >= 1.0
    assert "full" in refused.value.reason
    sink.up()
    received = sink.wait_for_spans(9, timeout=15)
    assert {s.span_id for s in received} == set(spans_of(originals))
    assert wait_until(lambda: exporter.stats["queue_size"] == 0)
    more = send(exporter)  # room again
    assert len(sink.wait_for_spans(12)) == 12
    assert set(spans_of(more)) <= {s.span_id for s in sink.spans()}
    assert exporter.stats["dropped"] == 0


def test_shutdown_drains_the_queue(sink: OtlpSink) -> None:
    exporter = make_exporter(
        "otlp",
        "otlp/drain",
        {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY},
    )
    exporter.start()
    sink.delay = 0.01
    originals = send(exporter, count=30)
    started = time.monotonic()
    exporter.shutdown(timeout=10)
    assert time.monotonic() - started < 10
    assert {s.span_id for s in sink.spans()} == set(spans_of(originals))
    assert exporter.stats["sent_spans"] == 90
    assert exporter.stats["dropped"] == 0
    with pytest.raises(Backpressure):
        exporter.consume(make_batch())


def test_shutdown_is_bounded_and_counts_what_a_memory_queue_loses(
    sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(
        "otlp", "otlp/mem", {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY}
    )
    exporter.start()
    sink.down()
    send(exporter, count=4)
    started = time.monotonic()
    exporter.shutdown(timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert exporter.stats["dropped"] == 12
    assert "lost" in caplog.text


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_shutdown_is_bounded_when_a_send_hangs(sink: OtlpSink, kind: str) -> None:
    config: dict[str, Any] = {"retry_on_failure": FAST_RETRY, "timeout": 30}
    if kind == "grpc":
        exporter = make_exporter("otlp", "otlp/hang", dict(config, endpoint=sink.grpc_endpoint, tls={"insecure": True}))
    else:
        exporter = make_exporter("otlphttp", "otlphttp/hang", dict(config, endpoint=sink.http_endpoint))
    exporter.start()
    sink.delay = 3.0  # the backend accepts but does not answer
    send(exporter, count=3)
    time.sleep(0.1)
    started = time.monotonic()
    exporter.shutdown(timeout=0.8)
    assert time.monotonic() - started < 1.3
    sink.delay = 0.0


def test_shutdown_leaves_the_rest_on_disk_for_the_next_start(sink: OtlpSink, tmp_path: Path) -> None:
    config = {
        "endpoint": sink.grpc_endpoint,
        "tls": {"insecure": True},
        "retry_on_failure": FAST_RETRY,
        "sending_queue": {"storage": "file", "directory": str(tmp_path)},
    }
    first = make_exporter("otlp", "otlp/disk", config)
    first.start()
    sink.down()
    originals = send(first, count=5)
    started = time.monotonic()
    first.shutdown(timeout=0.6)
    assert time.monotonic() - started < 1.1
    assert first.stats["dropped"] == 0
    sink.up()
    second = make_exporter("otlp", "otlp/disk", config)
    second.start()
    try:
        received = sink.wait_for_spans(15, timeout=15)
        assert {s.span_id: s for s in received} == spans_of(originals)
        assert wait_until(lambda: second.stats["queue_size"] == 0)
    finally:
        second.shutdown(timeout=2)


def test_shutdown_is_idempotent_and_safe_unstarted(sink: OtlpSink) -> None:
    exporter = make_exporter("otlp", "otlp/idle", {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}})
    with pytest.raises(Backpressure):
        exporter.consume(make_batch())  # not started: pushed back, not dropped
    exporter.shutdown()
    exporter.shutdown()
    with pytest.raises(RuntimeError):
        exporter.start()
    started = make_exporter("otlp", "otlp/twice", {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}})
    started.start()
    started.start()
    started.shutdown(timeout=1)
    started.shutdown(timeout=1)
    for kind, config in (("file", {"path": "unused.jsonl"}), ("debug", {})):
        make_exporter(kind, kind, config).shutdown()


def test_queue_disabled_sends_inline_and_pushes_back_when_it_cannot(sink: OtlpSink, exporters: list[Exporter]) -> None:
    retry = dict(FAST_RETRY, max_elapsed_time=0.2)
    exporter = otlp(sink, exporters, sending_queue={"enabled": False}, retry_on_failure=retry)
    originals = send(exporter)
    assert {s.span_id for s in sink.spans()} == set(spans_of(originals))  # delivered before consume returned
    sink.fail_grpc(1, grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(PermanentError):
        exporter.consume(make_batch())
    sink.down()
    with pytest.raises(Backpressure):
        exporter.consume(make_batch())
    assert exporter.stats["failed_spans"] == 3  # the permanent one only: the pushed-back batch is the client's


def _with_hooks(name: str, config: dict[str, Any], hooks: Any) -> Exporter:
    """An otlp exporter reporting to exporter telemetry ``hooks`` (the exporterhelper's ``telemetry``)."""
    model = OtlpExporterConfig.model_validate(config)
    return Exporter(
        name, GrpcSender(model), queue_config=model.sending_queue, retry=model.retry_on_failure, telemetry=hooks
    )


def test_telemetry_hooks_are_called(sink: OtlpSink) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []
            self.lock = threading.Lock()

        def sent(self, exporter: str, spans: int) -> None:
            with self.lock:
                self.calls.append(("sent", exporter, spans))

        def failed(self, exporter: str, spans: int, reason: str) -> None:
            with self.lock:
                self.calls.append(("failed", exporter, spans, reason))

        def queue(self, exporter: str, size: int, capacity: int) -> None:
            with self.lock:
                self.calls.append(("queue", exporter, size, capacity))

    recorder = Recorder()
    config = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY}
    exporter = _with_hooks("otlp/t", config, recorder)
    exporter.start()
    send(exporter)
    sink.wait_for_spans(3)
    sink.fail_grpc(1, grpc.StatusCode.INVALID_ARGUMENT)
    send(exporter, spans=2)
    exporter.shutdown(timeout=5)
    assert ("sent", "otlp/t", 3) in recorder.calls
    assert ("failed", "otlp/t", 2, "permanent") in recorder.calls
    assert ("queue", "otlp/t", 1, 1000) in recorder.calls
    assert recorder.calls[-1] == ("queue", "otlp/t", 0, 1000)


def test_a_failing_telemetry_hook_does_not_stop_the_exporter(sink: OtlpSink, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def sent(self, exporter: str, spans: int) -> None:
            raise RuntimeError("boom")

        def failed(self, exporter: str, spans: int, reason: str) -> None:
            raise RuntimeError("boom")

        def queue(self, exporter: str, size: int, capacity: int) -> None:
            raise RuntimeError("boom")

    config = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY}
    exporter = _with_hooks("otlp/b", config, Broken())
    exporter.start()
    originals = send(exporter, count=5)
    exporter.shutdown(timeout=5)
    assert {s.span_id for s in sink.spans()} == set(spans_of(originals))
    assert "telemetry hook" in caplog.text


# ---------------------------------------------------------------------------------------------------------------------
# Config and retry policy


def test_configs_accept_duration_strings_and_refuse_bad_values() -> None:
    config = OtlpExporterConfig(
        endpoint="127.0.0.1:4317",
        timeout="500ms",
        retry_on_failure={"initial_interval": "5s", "max_interval": "1m", "max_elapsed_time": "5m"},
    )
    assert config.timeout == 0.5
    assert config.retry_on_failure == RetryConfig(initial_interval=5, max_interval=60, max_elapsed_time=300)
    assert config.sending_queue.queue_size == 1000 and config.sending_queue.storage == "memory"
    assert parse_duration("1m30s") == 90 and parse_duration(2) == 2.0
    for bad in ("5", "-1s", "soon", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    bad_configs: list[tuple[type[pydantic.BaseModel], dict[str, Any]]] = [
        (OtlpExporterConfig, {"endpoint": "h:1", "unknown": 1}),
        (OtlpExporterConfig, {"endpoint": "h:1", "sending_queue": {"queue_size": 0}}),
        (OtlpExporterConfig, {"endpoint": "h:1", "sending_queue": {"storage": "redis"}}),
        (
            OtlpExporterConfig,
            {"endpoint": "h:1", "retry_on_failure": {"initial_interval": "10s", "max_interval": "1s"}},
        ),
        (OtlpExporterConfig, {"endpoint": "h:1", "retry_on_failure": {"randomization_factor": 1.5}}),
        (OtlpExporterConfig, {"endpoint": "h:1", "tls": {"cert_file": "c.pem"}}),
        (OtlpExporterConfig, {"endpoint": "h:1", "headers": {"bad header": "x"}}),
        (OtlpExporterConfig, {"endpoint": "h:1", "compression": "zstd"}),
        (OtlpExporterConfig, {"endpoint": "h:1", "timeout": 0}),
        (OtlpHttpExporterConfig, {"endpoint": "127.0.0.1:4318"}),
        (OtlpHttpExporterConfig, {}),
        (FileExporterConfig, {"path": "x", "rotation": {"max_megabytes": 0}}),
    ]
    for model, data in bad_configs:
        with pytest.raises(pydantic.ValidationError):
            model.model_validate(data)


def test_backoff_grows_with_jitter_and_gives_up() -> None:
    now = [0.0]
    config = RetryConfig(
        initial_interval=1, max_interval=4, multiplier=2, randomization_factor=0.5, max_elapsed_time=20
    )
    backoff = Backoff(config, clock=lambda: now[0])
    delays = []
    for _ in range(5):
        delay = backoff.next_delay()
        assert delay is not None
        delays.append(delay)
    bases = [1, 2, 4, 4, 4]
    assert all(base * 0.5 <= delay <= base * 1.5 for base, delay in zip(bases, delays, strict=True))
    assert Backoff(config).next_delay(hint=7.5) >= 7.5  # a server's hint is a floor
    now[0] = 19.9
    assert backoff.next_delay() is None  # would pass max_elapsed_time
    unlimited = Backoff(RetryConfig(max_elapsed_time=0), clock=lambda: now[0])
    now[0] = 1e9
    assert unlimited.next_delay() is not None


def test_retry_after_and_status_classification() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now=now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert classify_http_status(503, {"retry-after": "2"}).retry_after == 2.0
    assert classify_http_status(503, {}).retryable
    assert not classify_http_status(400, {"retry-after": "2"}).retryable

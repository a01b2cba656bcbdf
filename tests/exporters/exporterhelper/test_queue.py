"""Sending queues: bounds and acknowledgement, and the persistent queue's promises (kill -9, corrupt stores)."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exporter_build import make_exporter, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from sink import OtlpSink

from spanguard.collector.component import TraceBatch
from spanguard.exporters.exporterhelper.exporter import Exporter
from spanguard.exporters.exporterhelper.queue import (
    MemoryQueue,
    PersistentQueue,
    QueueClosed,
    QueueFull,
    QueueStorageError,
    store_path,
)
from spanguard.exporters.exporterhelper.sending import Payload

FAST_RETRY = {"initial_interval": 0.01, "max_interval": 0.05, "max_elapsed_time": 20}


def request_bytes(index: int, spans: int = 2) -> bytes:
    """A serialized request whose span ids encode ``index``."""
    items = [Span(name="s", trace_id=b"\x01" * 16, span_id=struct.pack(">II", index, j + 1)) for j in range(spans)]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=items)])]
    ).SerializeToString()


def batch(index: int, spans: int = 3) -> TraceBatch:
    return TraceBatch(ExportTraceServiceRequest.FromString(request_bytes(index, spans)).resource_spans)


def span_ids(index: int, spans: int = 3) -> set[bytes]:
    return {struct.pack(">II", index, j + 1) for j in range(spans)}


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as server:
        yield server


def persistent_config(sink_endpoint: str, directory: Path, **queue: Any) -> dict[str, Any]:
    return {
        "endpoint": sink_endpoint,
        "tls": {"insecure": True},
        "retry_on_failure": FAST_RETRY,
        "sending_queue": {"storage": "file", "directory": str(directory), **queue},
    }


# ---------------------------------------------------------------------------------------------------------------------
# Memory queue


def test_memory_queue_is_bounded_fifo_and_counts_items_in_flight() -> None:
    queue = MemoryQueue(3)
    with pytest.raises(QueueClosed):
        queue.put("x", 1)  # not opened
    queue.open()
    for name in ("a", "b", "c"):
        queue.put(name, 1)
    with pytest.raises(QueueFull):
        queue.put("d", 1)
    first = queue.get(0)
    assert first is not None and first.payload == "a"
    assert (queue.size, queue.pending) == (3, 2)
    with pytest.raises(QueueFull):
        queue.put("d", 1)  # in flight still counts
    queue.release(first)
    again = queue.get(0)
    assert again is not None and again.payload == "a"  # released items go first
    queue.ack(again)
    queue.ack(again)  # twice is harmless
    assert queue.size == 2
    queue.put("d", 1)
    assert [queue.get(0).payload for _ in range(3)] == ["b", "c", "d"]  # type: ignore[union-attr]
    assert queue.get(0.05) is None


def test_memory_queue_wakes_waiters_and_drains() -> None:
    queue = MemoryQueue(10)
    queue.open()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(5)))
    waiter.start()
    time.sleep(0.05)
    queue.put("x", 4)
    waiter.join(2)
    assert got[0].payload == "x" and got[0].spans == 4
    queue.put("y", 5)
    queue.stop_accepting()
    with pytest.raises(QueueClosed):
        queue.put("z", 1)
    assert not queue.drained  # "y" still waits
    item = queue.get(0)
    assert item is not None and queue.drained
    started = time.monotonic()
    assert queue.get(5) is None  # drained: answers at once
    assert time.monotonic() - started < 1
    assert queue.close() == (2, 9)  # x and y never acknowledged


# ---------------------------------------------------------------------------------------------------------------------
# Persistent queue


def test_persistent_queue_keeps_unacknowledged_items_across_reopen(tmp_path: Path) -> None:
    queue = PersistentQueue(10, tmp_path, "otlp/a")
    queue.open()
    assert queue.path == tmp_path / "otlp%2Fa.db" == store_path(tmp_path, "otlp/a")
    for index in range(5):
        queue.put(request_bytes(index), 2)
    done = queue.get(0)
    in_flight = queue.get(0)
    assert done is not None and in_flight is not None
    queue.ack(done)
    assert queue.close() == (4, 8)

    again = PersistentQueue(10, tmp_path, "otlp/a", decode=Payload.from_bytes)
    again.open()
    assert again.size == 4
    items = [again.get(0) for _ in range(4)]
    assert [item.payload.data for item in items] == [request_bytes(i) for i in (1, 2, 3, 4)]  # type: ignore[union-attr]
    assert all(item.spans == 2 for item in items)  # type: ignore[union-attr]
    again.close()


def test_persistent_queue_capacity_counts_what_is_on_disk(tmp_path: Path) -> None:
    queue = PersistentQueue(5, tmp_path, "q")
    queue.open()
    for index in range(5):
        queue.put(request_bytes(index), 2)
    queue.close()
    smaller = PersistentQueue(3, tmp_path, "q")
    smaller.open()
    assert smaller.size == 5
    with pytest.raises(QueueFull):
        smaller.put(request_bytes(9), 2)
    smaller.close()


def test_persistent_queue_is_held_by_one_owner(tmp_path: Path, sink: OtlpSink) -> None:
    first = PersistentQueue(5, tmp_path, "q")
    first.open()
    with pytest.raises(QueueStorageError, match="in use"):
        PersistentQueue(5, tmp_path, "q").open()
    first.close()
    second = PersistentQueue(5, tmp_path, "q")
    second.open()  # released on close
    second.close()

    config = persistent_config(sink.grpc_endpoint, tmp_path)
    owner = make_exporter("otlp", "otlp/one", config)
    owner.start()
    try:
        with pytest.raises(RuntimeError, match="in use by another process"):
            make_exporter("otlp", "otlp/one", config).start()
    finally:
        owner.shutdown(timeout=1)


def test_corrupt_items_are_skipped_logged_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue = PersistentQueue(10, tmp_path, "q")
    queue.open()
    for index in range(4):
        queue.put(request_bytes(index), 2)
    queue.close()
    with sqlite3.connect(store_path(tmp_path, "q")) as db:
        db.execute("UPDATE items SET data = ? WHERE id = 2", (b"bit rot",))  # checksum no longer matches
        garbage = b"\xff\xff\xff\xff"
        db.execute("UPDATE items SET data = ?, crc = ? WHERE id = 3", (garbage, zlib.crc32(garbage)))  # not a request
    with pytest.raises(Exception):  # noqa: B017 - whatever protobuf raises for it
        ExportTraceServiceRequest.FromString(garbage)

    reopened = PersistentQueue(10, tmp_path, "q", decode=Payload.from_bytes)
    reopened.open()
    items = []
    while (item := reopened.get(0)) is not None:
        items.append(item)
        reopened.ack(item)
    assert [item.payload.data for item in items] == [request_bytes(0), request_bytes(3)]
    assert reopened.corrupt_items == 2
    assert reopened.size == 0
    assert "checksum mismatch" in caplog.text and "cannot decode" in caplog.text
    reopened.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_store_never_stops_startup(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    path = store_path(tmp_path, "q")
    queue = PersistentQueue(100, tmp_path, "q")
    queue.open()
    for index in range(50):
        queue.put(request_bytes(index, spans=20), 20)
    queue.close()
    size = path.stat().st_size
    if damage == "garbage":
        path.write_bytes(os.urandom(size))
    elif damage == "truncated":
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
    else:
        path.write_bytes(b"")

    reopened = PersistentQueue(100, tmp_path, "q", decode=Payload.from_bytes)
    reopened.open()  # does not raise
    salvaged = reopened.size
    assert salvaged <= 50
    if damage == "empty":
        assert salvaged == 0  # an empty file is a valid empty database
    elif damage == "garbage":
        assert reopened.corrupt_stores == 1
        assert any(p.name.startswith("q.db.corrupt-") for p in tmp_path.iterdir())
        assert "is corrupt" in caplog.text
    for _ in range(salvaged):
        item = reopened.get(0)
        if item is None:
            break
        reopened.ack(item)
    reopened.put(request_bytes(99), 2)  # and it keeps working
    assert reopened.get(0).payload.data == request_bytes(99)  # type: ignore[union-attr]
    reopened.close()


def test_exporter_starts_on_a_corrupt_store_and_delivers(tmp_path: Path, sink: OtlpSink) -> None:
    store_path(tmp_path, "otlp/c").write_bytes(b"this is not a database" * 100)
    exporter = make_exporter("otlp", "otlp/c", persistent_config(sink.grpc_endpoint, tmp_path))
    exporter.start()
    try:
        exporter.consume(batch(1))
        assert {s.span_id for s in sink.wait_for_spans(3)} == span_ids(1)
        assert wait_until(lambda: exporter.stats["queue_size"] == 0)
    finally:
        exporter.shutdown(timeout=2)


def test_consume_returns_only_once_the_batch_is_on_disk(tmp_path: Path) -> None:
    config = persistent_config("127.0.0.1:9", tmp_path)  # nothing listens: items stay queued
    config["retry_on_failure"] = {"initial_interval": 60, "max_interval": 60}
    exporter = make_exporter("otlp", "otlp/d", config)
    exporter.start()
    try:
        for index in range(3):
            exporter.consume(batch(index))
            with sqlite3.connect(store_path(tmp_path, "otlp/d")) as db:  # another reader sees it committed
                assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == index + 1
    finally:
        exporter.shutdown(timeout=0.5)


def test_exporter_backpressure_when_the_disk_refuses(tmp_path: Path) -> None:
    from spanguard.collector.component import Backpressure

    config = persistent_config("127.0.0.1:9", tmp_path)
    exporter = make_exporter("otlp", "otlp/ro", config)
    exporter.start()
    try:
        queue: Any = exporter._queue
        queue._db.execute("PRAGMA query_only=ON")  # every write now fails, as on a full disk
        with pytest.raises(Backpressure):
            exporter.consume(batch(1))
        assert exporter.stats["dropped"] == 0
    finally:
        exporter.shutdown(timeout=0.5)


# ---------------------------------------------------------------------------------------------------------------------
# kill -9


CHILD = textwrap.dedent(
    """
    import struct, sys, time
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
    from spanguard.collector.component import Settings, TraceBatch
    from spanguard.exporters.otlp.config import OtlpExporterConfig
    from spanguard.exporters.otlp.factory import create

    endpoint, directory, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    retry = {"initial_interval": 60, "max_interval": 60} if endpoint.endswith(":9") else {"initial_interval": 0.01}
    config = OtlpExporterConfig.model_validate({
        "endpoint": endpoint, "tls": {"insecure": True}, "retry_on_failure": retry,
        "sending_queue": {"storage": "file", "directory": directory, "queue_size": 100000, "num_consumers": 2},
    })
    exporter = create(Settings("otlp/kill", "exporter", "otlp", config), None, None)
    exporter.start()
    for index in range(count):
        spans = [Span(name="s", trace_id=b"\\x01" * 16, span_id=struct.pack(">II", index, j + 1)) for j in range(3)]
        exporter.consume(TraceBatch([ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]))
        print(index, flush=True)  # acknowledged: consume returned
        if pause:
            time.sleep(pause)
    print("done", flush=True)
    time.sleep(600)
    """
)


def run_child(endpoint: str, directory: Path, count: int, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, endpoint, str(directory), str(count), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
    )


def read_acks(child: subprocess.Popen[str], until: int) -> list[int]:
    assert child.stdout is not None
    acked: list[int] = []
    for line in child.stdout:
        if line.strip() == "done":
            break
        acked.append(int(line))
        if len(acked) >= until:
            break
    return acked


def kill(child: subprocess.Popen[str]) -> list[int]:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert child.stdout is not None
    rest = [int(line) for line in child.stdout.read().split() if line != "done"]
    child.stdout.close()
    return rest


def restart_and_drain(sink: OtlpSink, directory: Path) -> Exporter:
    exporter = make_exporter("otlp", "otlp/kill", persistent_config(sink.grpc_endpoint, directory))
    exporter.start()
    assert wait_until(lambda: exporter.stats["queue_size"] == 0, timeout=20)
    return exporter


def test_queued_items_survive_kill_9_before_sending(tmp_path: Path, sink: OtlpSink) -> None:
    child = run_child("127.0.0.1:9", tmp_path, 40, 0.0)  # nothing listens on :9: nothing is sent
    acked = read_acks(child, until=40)
    acked += kill(child)
    assert len(acked) == 40

    exporter = restart_and_drain(sink, tmp_path)
    try:
        expected = set().union(*(span_ids(i) for i in acked))
        received = sink.span_ids()
        assert set(received) == expected
        assert len(received) == len(expected)  # nothing had been sent before: no duplicates either
        assert exporter.stats["sent_spans"] == 120 and exporter.stats["dropped"] == 0
    finally:
        exporter.shutdown(timeout=2)


def test_acknowledged_items_survive_kill_9_under_load(tmp_path: Path, sink: OtlpSink) -> None:
    sink.delay = 0.005  # the child sends while it queues
    child = run_child(sink.grpc_endpoint, tmp_path, 100000, 0.0)
    acked = read_acks(child, until=150)
    acked += kill(child)  # mid-stream: items queued, in flight and sent
    sent_before_restart = len(sink.span_ids())

    sink.delay = 0.0
    exporter = restart_and_drain(sink, tmp_path)
    try:
        expected = set().union(*(span_ids(i) for i in acked))
        received = set(sink.span_ids())
        assert expected <= received, f"lost {len(expected - received)} acknowledged spans"
        assert exporter.stats["dropped"] == 0
        logging.getLogger(__name__).info(
            "acked %d batches; %d spans sent before the kill, %d after",
            len(acked),
            sent_before_restart,
            exporter.stats["sent_spans"],
        )
    finally:
        exporter.shutdown(timeout=2)

"""A real OTLP sink for exporter tests: a gRPC server and an HTTP server on 127.0.0.1, recording requests.

Traces are recorded as :class:`Received`; logs and metrics requests in ``signals`` (by signal name), unscripted.

Scriptable: fail the next N requests of a protocol with a gRPC status (with or without ``google.rpc.RetryInfo``) or an
HTTP status (with ``Retry-After``), answer with an OTLP partial success, answer slowly, or be down (servers stopped,
connections refused) until :meth:`OtlpSink.up` restarts them on the same ports.
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanguard.collector.receivers.otlp import otlp_json
from spanguard.collector.signals import LOGS, METRICS, SIGNALS, Signal


@dataclass
class Received:
    """One request the sink accepted."""

    protocol: str  # "grpc" or "http"
    request: ExportTraceServiceRequest
    headers: dict[str, str]
    content_type: str = ""
    content_encoding: str = ""


@dataclass
class _Failure:
    grpc_code: grpc.StatusCode | None = None
    retry_delay: float | None = None
    http_status: int | None = None
    retry_after: str | None = None
    message: str = "scripted failure"


@dataclass
class _Script:
    failures: deque[_Failure] = field(default_factory=deque)
    partial: deque[tuple[int, str]] = field(default_factory=deque)


class OtlpSink:
    """Both OTLP transports on loopback. Use as a context manager, or :meth:`start` / :meth:`close`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.signals: dict[str, list[Any]] = {"logs": [], "metrics": []}
        """Logs and metrics requests received (either transport), by signal."""
        self.attempts = {"grpc": 0, "http": 0}
        self.delay = 0.0
        self._scripts = {"grpc": _Script(), "http": _Script()}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._grpc_server: Any = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port = 0
        self.http_port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def __enter__(self) -> OtlpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self._start_grpc()
        self._start_http()

    def up(self) -> None:
        """Come back after :meth:`down`, on the same ports."""
        self.start()

    def down(self) -> None:
        """Stop both servers: connections are refused until :meth:`up`."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
            assert self._http_thread is not None
            self._http_thread.join(5)

    def close(self) -> None:
        self.down()

    def _start_grpc(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), server)
        for signal in (LOGS, METRICS):
            handler = grpc.unary_unary_rpc_method_handler(
                functools.partial(self._other_grpc, signal=signal),
                request_deserializer=signal.request.FromString,
                response_serializer=lambda response: response.SerializeToString(),
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(signal.service, {"Export": handler}),)
            )
        port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        assert port, "cannot bind the gRPC sink"
        self.grpc_port = port
        server.start()
        self._grpc_server = server

    def _start_http(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.http_port), _http_handler(self))
        server.daemon_threads = True
        self.http_port = server.server_port
        self._http_server = server
        self._http_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._http_thread.start()

    def _other_grpc(self, request: Any, context: grpc.ServicerContext, *, signal: Signal) -> Any:
        self.record_signal(signal.name, request)
        return signal.response()

    def record_signal(self, signal: str, request: Any) -> None:
        with self._changed:
            self.signals[signal].append(request)
            self._changed.notify_all()

    def wait_for_items(self, signal: str, count: int, timeout: float = 10.0) -> list[Any]:
        """The ``signal`` requests once they hold ``count`` items (log records, data points) or more."""
        counter = SIGNALS[signal]
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(counter.count(counter.resources(r)) for r in self.signals[signal]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink: fewer than {count} {counter.items} arrived in {timeout}s")
                self._changed.wait(left)
            return list(self.signals[signal])

    # -- scripting -----------------------------------------------------------------------------------------------------

    def fail_grpc(
        self, times: int, code: grpc.StatusCode, *, retry_delay: float | None = None, message: str = "scripted"
    ) -> None:
        """Answer the next ``times`` gRPC requests with ``code`` (with ``RetryInfo`` when ``retry_delay`` is given)."""
        with self._lock:
            for _ in range(times):
                self._scripts["grpc"].failures.append(
                    _Failure(grpc_code=code, retry_delay=retry_delay, message=message)
                )

    def fail_http(self, times: int, status: int, *, retry_after: str | None = None, message: str = "scripted") -> None:
        """Answer the next ``times`` HTTP requests with ``status`` (and a ``Retry-After`` header when given)."""
        with self._lock:
            for _ in range(times):
                self._scripts["http"].failures.append(
                    _Failure(http_status=status, retry_after=retry_after, message=message)
                )

    def partial_success(self, protocol: str, rejected: int, message: str) -> None:
        """Accept the next request of ``protocol`` but report ``rejected`` spans in an OTLP partial success."""
        with self._lock:
            self._scripts[protocol].partial.append((rejected, message))

    # -- what arrived --------------------------------------------------------------------------------------------------

    def spans(self) -> list[Span]:
        with self._lock:
            return [
                span
                for received in self.received
                for resource in received.request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            ]

    def span_ids(self) -> list[bytes]:
        return [span.span_id for span in self.spans()]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Span]:
        """Wait until at least ``count`` spans arrived (or ``timeout``); answer them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(_span_count(r.request) for r in self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
        return self.spans()

    # -- internals -----------------------------------------------------------------------------------------------------

    def _next(self, protocol: str) -> tuple[_Failure | None, tuple[int, str] | None]:
        with self._lock:
            self.attempts[protocol] += 1
            script = self._scripts[protocol]
            if script.failures:
                return script.failures.popleft(), None
            return None, (script.partial.popleft() if script.partial else None)

    def _record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()


def _span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def _response(partial: tuple[int, str] | None) -> ExportTraceServiceResponse:
    if partial is None:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=partial[0], error_message=partial[1])
    )


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self._sink = sink

    def Export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        sink = self._sink
        if sink.delay:
            time.sleep(sink.delay)
        failure, partial = sink._next("grpc")
        if failure is not None:
            assert failure.grpc_code is not None
            status = status_pb2.Status(code=failure.grpc_code.value[0], message=failure.message)
            if failure.retry_delay is not None:
                info = error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(
                        seconds=int(failure.retry_delay), nanos=int((failure.retry_delay % 1) * 1e9)
                    )
                )
                detail = any_pb2.Any()
                detail.Pack(info)
                status.details.append(detail)
            context.abort_with_status(rpc_status.to_status(status))
        metadata = {key: value for key, value in context.invocation_metadata()}
        sink._record(Received("grpc", request, metadata))
        return _response(partial)


def _http_handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if sink.delay:
                time.sleep(sink.delay)
            other = {LOGS.path: LOGS, METRICS.path: METRICS}.get(self.path)
            if other is not None:
                if self.headers.get("Content-Encoding", "") == "gzip":
                    body = gzip.decompress(body)
                is_json = self.headers.get("Content-Type", "").startswith("application/json")
                request = otlp_json.decode_request(body, other) if is_json else other.request.FromString(body)
                sink.record_signal(other.name, request)
                self._reply(200, other.response().SerializeToString(), "application/x-protobuf")
                return
            if self.path != "/v1/traces":
                self._reply(404, b"", "text/plain")
                return
            failure, partial = sink._next("http")
            content_type = self.headers.get("Content-Type", "")
            is_json = content_type.startswith("application/json")
            if failure is not None:
                assert failure.http_status is not None
                status = status_pb2.Status(code=14, message=failure.message)
                payload = otlp_json.encode_message(status) if is_json else status.SerializeToString()
                extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                self._reply(failure.http_status, payload, content_type or "application/x-protobuf", extra)
                return
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            request = otlp_json.decode_request(body) if is_json else ExportTraceServiceRequest.FromString(body)
            headers = {key.lower(): value for key, value in self.headers.items()}
            sink._record(Received("http", request, headers, content_type, encoding))
            response = _response(partial)
            payload = otlp_json.encode_response(response) if is_json else response.SerializeToString()
            self._reply(200, payload, content_type)

        def _reply(self, status: int, payload: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler

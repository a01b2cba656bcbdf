"""The ``otlp`` receiver's servers: OTLP/gRPC and OTLP/HTTP (protobuf and JSON), traces, logs and metrics.

After the OTel Collector's otlpreceiver: each request is size-checked, admitted (memory limiter), decoded off the
event loop, validated (bad spans removed, reported as partial success) and acknowledged only once the consumer took
it; refusals map to the statuses OTLP clients retry or not. The request path and its answers, per transport:
docs/collector-config.md (receiver ``otlp``). Logs never contain span content.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import math
import socket
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, cast

import grpc
import uvicorn
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from spanguard.collector.component import Backpressure, Batch, Consumer, PermanentError
from spanguard.collector.confignet import grpc_server_credentials, split_endpoint
from spanguard.collector.receivers.otlp import otlp_json
from spanguard.collector.receivers.otlp.config import GrpcSettings, HttpSettings, OtlpReceiverConfig
from spanguard.collector.signals import LOGS, SIGNALS, TRACES, Signal

__all__ = [
    "EXPORT_METHOD",
    "TRACES_PATH",
    "AdmitRequest",
    "NoopReceiverTelemetry",
    "OtlpReceiver",
    "ReceiverTelemetry",
]

logger = logging.getLogger("spanguard.collector.receivers")

MIB = 1024 * 1024
EXPORT_METHOD = TRACES.export_method
TRACES_PATH = TRACES.path
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_INFO_TRAILER = "google.rpc.retryinfo-bin"
_WORKERS = 16
_START_TIMEOUT = 10.0

# -------------------------------------------------------------------------------------------------------- telemetry

RefusalReason = Literal["too_large", "malformed", "invalid", "backpressure", "permanent", "internal"]
"""``too_large``/``malformed``: request refused before parsing/while decoding (span count 0: unknown); ``invalid``:
spans removed by validation (partial success); ``backpressure``: consumer or admission refused, retryable;
``permanent``: consumer raised PermanentError; ``internal``: the consumer failed unexpectedly."""


class ReceiverTelemetry(Protocol):
    """Counts spans per receiver (component id) and transport (``grpc`` or ``http``)."""

    def accepted(self, receiver: str, transport: str, spans: int, items: str = "spans") -> None:
        """``spans`` (or log records, data points: ``items``) were acknowledged to the client."""

    def refused(self, receiver: str, transport: str, spans: int, reason: str, items: str = "spans") -> None:
        """``spans`` (or ``items``) were not accepted, for ``reason`` (one of :data:`RefusalReason`)."""


class NoopReceiverTelemetry:
    """The default: counts nothing."""

    def accepted(self, receiver: str, transport: str, spans: int, items: str = "spans") -> None:
        pass

    def refused(self, receiver: str, transport: str, spans: int, reason: str, items: str = "spans") -> None:
        pass


AdmitRequest = Callable[[int], None]
"""Called with a request's size in bytes (on the wire) before it is parsed; raises :class:`Backpressure` to refuse."""

# ---------------------------------------------------------------------------------------------------------- outcome

Kind = Literal["ok", "invalid_argument", "too_large", "unsupported", "unavailable", "internal"]
_GRPC_CODES: dict[str, grpc.StatusCode] = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unsupported": grpc.StatusCode.INVALID_ARGUMENT,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}
_HTTP_CODES: dict[str, int] = {
    "invalid_argument": 400,
    "too_large": 413,
    "unsupported": 415,
    "unavailable": 503,
    "internal": 500,
}
_INTERNAL_MESSAGE = "internal error while accepting the request; it was not accepted"


@dataclass(frozen=True)
class _Outcome:
    kind: Kind
    message: str = ""
    response: Any = None
    retry_after: float = 0.0


class _TooLarge(Exception):
    pass


class _GrpcStatus(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def _decode_protobuf(body: bytes | bytearray, signal: Signal = TRACES) -> Any:
    try:
        # The stubs say bytes; protobuf parses any buffer, and copying a request body to bytes would cost a copy.
        return signal.request.FromString(cast(bytes, body))
    except DecodeError as error:
        text = str(error)
        if "MaxDepth" in text:
            why = "messages nested deeper than protobuf's limit of 100 levels (e.g. a deeply nested AnyValue)"
        elif "UTF-8" in text or "utf-8" in text:
            why = "a string field is not valid UTF-8"
        else:
            why = text.rpartition(": ")[2].lower() or "invalid wire format"
        raise ValueError(f"request body is not a valid OTLP {signal.request.DESCRIPTOR.name} protobuf: {why}") from None


def _decompress(body: bytes | bytearray, encoding: str, limit: int) -> bytes:
    """Inflate gzip (possibly several members) or ``deflate`` (zlib-wrapped as HTTP defines it, or raw), refusing
    output larger than ``limit``."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:  # a zlib header: CM 8 and a header checksum that divides by 31; else raw deflate, as some clients send
        zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as error:
            raise ValueError(f"request body is not valid {encoding} data: {error}") from None
        if len(out) > limit:
            raise _TooLarge(f"request body decompresses to more than {limit // MIB} MiB, the limit")
        if not inflater.eof:
            raise ValueError(f"request body is truncated {encoding} data")
        data = inflater.unused_data
        if not data or encoding != "gzip":
            if data:
                raise ValueError(f"request body has {len(data)} bytes after the end of the {encoding} data")
            return bytes(out)


def _span_problem(span: Any) -> str:
    """Why a span cannot be taken, or ``""``."""
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_id) != 16:
        return f"trace_id is {len(trace_id)} bytes, must be 16"
    if not any(trace_id):
        return "trace_id is all zeros"
    if len(span_id) != 8:
        return f"span_id is {len(span_id)} bytes, must be 8"
    if not any(span_id):
        return "span_id is all zeros"
    if parent and len(parent) != 8:
        return f"parent_span_id is {len(parent)} bytes, must be empty or 8"
    for index, link in enumerate(span.links):
        if len(link.trace_id) != 16 or len(link.span_id) != 8:
            return f"links[{index}] has ids of {len(link.trace_id)} and {len(link.span_id)} bytes, must be 16 and 8"
    return ""


def _log_problem(record: Any) -> str:
    """Why a log record cannot be taken, or ``""`` (its ids are optional, but must have their lengths when set)."""
    if record.trace_id and len(record.trace_id) != 16:
        return f"trace_id is {len(record.trace_id)} bytes, must be empty or 16"
    if record.span_id and len(record.span_id) != 8:
        return f"span_id is {len(record.span_id)} bytes, must be empty or 8"
    return ""


def _remove_invalid(request: Any, signal: Signal) -> tuple[int, str]:
    """Remove invalid spans or log records (metrics are taken as they come); (how many, the first one's problem)."""
    if signal is TRACES:
        return _remove_invalid_spans(request)
    if signal is not LOGS:
        return 0, ""
    rejected, first = 0, ""
    for r, resource in enumerate(request.resource_logs):
        for s, scope in enumerate(resource.scope_logs):
            bad = [i for i, record in enumerate(scope.log_records) if _log_problem(record)]
            if bad:
                rejected += len(bad)
                problem = _log_problem(scope.log_records[bad[0]])
                first = first or f"resource_logs[{r}].scope_logs[{s}].log_records[{bad[0]}]: {problem}"
                for i in reversed(bad):
                    del scope.log_records[i]
    return rejected, first


def _remove_invalid_spans(request: Any) -> tuple[int, str]:
    """Remove invalid spans (and the scopes and resources they leave empty); (how many, the first one's problem)."""
    rejected, first = 0, ""
    emptied_resources = []
    for r, resource in enumerate(request.resource_spans):
        emptied_scopes = []
        for s, scope in enumerate(resource.scope_spans):
            bad = []
            for i, span in enumerate(scope.spans):
                problem = _span_problem(span)
                if problem:
                    bad.append(i)
                    first = first or f"resource_spans[{r}].scope_spans[{s}].spans[{i}]: {problem}"
            if bad:
                rejected += len(bad)
                if len(bad) == len(scope.spans):
                    emptied_scopes.append(s)
                else:
                    for i in reversed(bad):
                        del scope.spans[i]
        if emptied_scopes:
            for s in reversed(emptied_scopes):
                del resource.scope_spans[s]
            if not resource.scope_spans:
                emptied_resources.append(r)
    for r in reversed(emptied_resources):
        del request.resource_spans[r]
    return rejected, first


# --------------------------------------------------------------------------------------------------------- receiver


class OtlpReceiver:
    """OTLP over gRPC and/or HTTP into one :class:`Consumer`; a :class:`Component`.

    It serves the signals the consumer lists in its ``signals`` (a :class:`~spanguard.collector.fanout.SignalRouter`
    does), traces only for a consumer that lists none; a signal it does not serve is UNIMPLEMENTED (gRPC) or 404.
    """

    def __init__(
        self,
        name: str,
        config: OtlpReceiverConfig,
        consumer: Consumer,
        *,
        telemetry: ReceiverTelemetry | None = None,
        admission: AdmitRequest | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._consumer = consumer
        served = getattr(consumer, "signals", ("traces",))
        self._signals = [SIGNALS[name] for name in SIGNALS if name in served]
        self._telemetry: ReceiverTelemetry = telemetry or NoopReceiverTelemetry()
        self._admission = admission
        self._lock = threading.Lock()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._grpc_server: grpc.Server | None = None
        self._grpc_pool: ThreadPoolExecutor | None = None
        self._grpc_port: int | None = None
        self._http_server: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._http_pool: ThreadPoolExecutor | None = None
        self._http_port: int | None = None

    # ---- lifecycle

    @property
    def grpc_port(self) -> int | None:
        """The port gRPC is bound to (useful with ``:0``); None when gRPC is off or not started."""
        return self._grpc_port

    @property
    def http_port(self) -> int | None:
        """The port HTTP is bound to (useful with ``:0``); None when HTTP is off or not started."""
        return self._http_port

    def start(self) -> None:
        """Bind and serve; raises :class:`OSError` naming the endpoint when a port cannot be bound."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"receiver {self.name!r} was already started")
            self._state = "running"
        try:
            if self.config.protocols.grpc is not None:
                self._start_grpc(self.config.protocols.grpc)
            if self.config.protocols.http is not None:
                self._start_http(self.config.protocols.http)
        except BaseException:
            self.shutdown(timeout=1.0)
            raise
        logger.info("receiver %s listening: grpc port %s, http port %s", self.name, self._grpc_port, self._http_port)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting new requests on every transport, then wait for in-flight ones up to ``timeout`` seconds.

        Idempotent, and safe on a receiver that was never started. Requests still running at the deadline are
        cancelled (their clients see an error and retry).
        """
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        deadline = time.monotonic() + max(timeout, 0.0)
        grpc_stopped = None
        if self._grpc_server is not None:
            grpc_stopped = self._grpc_server.stop(grace=max(timeout, 0.0))  # refuses new RPCs at once
        if self._http_server is not None:
            # Read by uvicorn when it shuts down: how long in-flight requests may take before they are cancelled.
            self._http_server.config.timeout_graceful_shutdown = max(timeout - 0.3, 0.0)  # type: ignore[assignment]
            self._http_server.should_exit = True  # closes the listening socket, then drains connections
        if grpc_stopped is not None:
            grpc_stopped.wait(max(deadline - time.monotonic(), 0.0))
        if self._http_thread is not None:
            self._http_thread.join(max(deadline - time.monotonic(), 0.0))
            if self._http_thread.is_alive() and self._http_server is not None:
                logger.warning("receiver %s: HTTP server did not stop within %.1fs; forcing it", self.name, timeout)
                self._http_server.force_exit = True
        for pool in (self._grpc_pool, self._http_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        logger.info("receiver %s stopped", self.name)

    # ---- the shared path

    def _admit(self, transport: str, size: int) -> _Outcome | None:
        if self._admission is None:
            return None
        try:
            self._admission(size)
        except Backpressure as error:
            self._refused(transport, 0, "backpressure")
            return _Outcome("unavailable", f"receiver is overloaded: {error.reason}", retry_after=error.retry_after)
        except Exception as error:
            self._log_unexpected(transport, error, "checking admission")
            self._refused(transport, 0, "internal")
            return _Outcome("internal", _INTERNAL_MESSAGE)
        return None

    def _process(self, transport: str, signal: Signal, decode: Callable[[], Any]) -> _Outcome:
        """Decode, validate, consume: the outcome to answer. Runs in a worker thread; never raises."""
        try:
            return self._decode_and_consume(transport, signal, decode)
        except Exception as error:  # a bug here, not in the consumer: still a clean INTERNAL, still serving
            self._log_unexpected(transport, error, "handling a request")
            self._refused(transport, 0, "internal")
            return _Outcome("internal", _INTERNAL_MESSAGE)

    def _log_unexpected(self, transport: str, error: Exception, doing: str) -> None:
        # Type and traceback only: an exception's message may quote span content.
        logger.error(
            "receiver %s (%s): unexpected %s while %s; answered INTERNAL\n%s",
            self.name,
            transport,
            type(error).__qualname__,
            doing,
            "".join(traceback.format_tb(error.__traceback__)).rstrip(),
        )

    def _decode_and_consume(self, transport: str, signal: Signal, decode: Callable[[], Any]) -> _Outcome:
        try:
            request = decode()
        except _TooLarge as error:
            self._refused(transport, 0, "too_large")
            return _Outcome("too_large", str(error))
        except ValueError as error:
            logger.debug("receiver %s (%s): malformed request: %s", self.name, transport, error)
            self._refused(transport, 0, "malformed")
            return _Outcome("invalid_argument", str(error))
        rejected, first_problem = _remove_invalid(request, signal)
        response: Any = signal.response()
        items = signal.items
        if rejected:
            setattr(response.partial_success, signal.rejected_field, rejected)
            response.partial_success.error_message = f"{rejected} invalid {items} rejected; first: {first_problem}"
            logger.debug("receiver %s (%s): rejected %d invalid %s", self.name, transport, rejected, items)
            self._refused(transport, rejected, "invalid", signal)
        resources = signal.resources(request)
        spans = signal.count(resources)
        if spans == 0:
            return _Outcome("ok", response=response)
        try:
            self._consumer.consume(Batch.for_signal(signal.name).of(resources))
        except Backpressure as error:
            self._refused(transport, spans, "backpressure", signal)
            return _Outcome(
                "unavailable", f"pipeline is full, retry later: {error.reason}", retry_after=error.retry_after
            )
        except PermanentError as error:
            self._refused(transport, spans, "permanent", signal)
            return _Outcome("invalid_argument", f"the data was refused and will never be accepted: {error}")
        except Exception as error:
            self._log_unexpected(transport, error, f"consuming {spans} {items}")
            self._refused(transport, spans, "internal", signal)
            return _Outcome("internal", _INTERNAL_MESSAGE)
        self._accepted(transport, spans, signal)
        return _Outcome("ok", response=response)

    def _accepted(self, transport: str, spans: int, signal: Signal = TRACES) -> None:
        try:
            if signal is TRACES:
                self._telemetry.accepted(self.name, transport, spans)
            else:
                self._telemetry.accepted(self.name, transport, spans, signal.items.replace(" ", "_"))
        except Exception:
            logger.exception("receiver %s: telemetry failed", self.name)

    def _refused(self, transport: str, spans: int, reason: RefusalReason, signal: Signal = TRACES) -> None:
        try:
            if signal is TRACES:
                self._telemetry.refused(self.name, transport, spans, reason)
            else:
                self._telemetry.refused(self.name, transport, spans, reason, signal.items.replace(" ", "_"))
        except Exception:
            logger.exception("receiver %s: telemetry failed", self.name)

    # ---- gRPC

    def _start_grpc(self, settings: GrpcSettings) -> None:
        host, port = split_endpoint(settings.endpoint)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        limit = settings.max_recv_msg_size_mib * MIB
        self._grpc_pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix=f"otlp-{self.name}-grpc")
        server = grpc.server(
            self._grpc_pool,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),  # else a second server could silently share a port already in use
            ],
        )
        handlers = []
        for signal in self._signals:
            handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
                functools.partial(self._grpc_export, limit=limit, signal=signal),
                request_deserializer=None,  # raw bytes: size and admission are checked before parsing
                response_serializer=None,  # the handler returns serialized bytes
            )
            handlers.append(grpc.method_handlers_generic_handler(signal.service, {"Export": handler}))
        server.add_generic_rpc_handlers(tuple(handlers))
        try:
            if settings.tls is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, grpc_server_credentials(settings.tls))
        except RuntimeError:
            bound = 0
        if not bound:
            raise _bind_error(self.name, "gRPC", settings.endpoint, host, port)
        server.start()
        self._grpc_server, self._grpc_port = server, bound

    def _grpc_export(self, body: bytes, context: grpc.ServicerContext, *, limit: int, signal: Signal) -> bytes:
        if len(body) > limit:  # grpc refuses these itself; kept in case its option is ever changed
            self._refused("grpc", 0, "too_large")
            outcome = _Outcome("too_large", f"request of {len(body)} bytes exceeds the {limit // MIB} MiB limit")
        else:
            outcome = self._admit("grpc", len(body)) or self._process(
                "grpc", signal, lambda: _decode_protobuf(body, signal)
            )
        if outcome.kind == "ok" and outcome.response is not None:
            return outcome.response.SerializeToString()
        # grpc reads code, details and trailing_metadata off any object: the stubs ask for its abstract Status class.
        context.abort_with_status(cast(grpc.Status, _grpc_status(outcome)))  # raises
        raise AssertionError("unreachable")

    # ---- HTTP

    def _start_http(self, settings: HttpSettings) -> None:
        host, port = split_endpoint(settings.endpoint)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it a
            # response's body waits ~40 ms for the client's delayed ACK of the headers.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except OSError as error:
            raise OSError(
                error.errno, f"receiver {self.name!r}: cannot listen for HTTP on {settings.endpoint}: {error}"
            ) from error
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; a live listener still wins
            sock.bind((host, port))
            sock.listen(2048)
        except OSError as error:
            sock.close()
            raise _listen_error(self.name, "HTTP", settings.endpoint, port, error) from error
        limit = settings.max_request_body_size_mib * MIB
        app = Starlette(
            routes=[
                Route(signal.path, functools.partial(self._http_export, limit=limit, signal=signal), methods=["POST"])
                for signal in self._signals
            ]
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            ssl_certfile=settings.tls.cert_file if settings.tls else None,
            ssl_keyfile=settings.tls.key_file if settings.tls else None,
        )
        try:
            config.load()  # here, not in the thread, so a bad certificate fails start()
        except BaseException:
            sock.close()
            raise
        server = uvicorn.Server(config)
        self._http_pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix=f"otlp-{self.name}-http")
        # Its own event loop in its own thread; uvicorn installs signal handlers only on the main thread, so the
        # service keeps SIGTERM for itself.
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"otlp-{self.name}-http-server", daemon=True
        )
        self._http_server, self._http_thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"receiver {self.name!r}: HTTP server on {settings.endpoint} failed to start")
            time.sleep(0.005)
        self._http_port = sock.getsockname()[1]

    async def _http_export(self, request: Request, *, limit: int, signal: Signal) -> Response:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in (PROTOBUF, JSON):
            return _http_error(
                _Outcome("unsupported", f"unsupported Content-Type {media_type!r}; use {PROTOBUF} or {JSON}"), JSON
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        encoding = {"": "identity", "x-gzip": "gzip"}.get(encoding, encoding)
        if encoding not in ("identity", "gzip", "deflate"):
            return _http_error(
                _Outcome("unsupported", f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none"),
                media_type,
            )
        length = request.headers.get("content-length", "")
        declared = int(length) if length.isdigit() else None  # h11 refuses malformed lengths itself
        too_large = f"request body exceeds the {limit // MIB} MiB limit"
        if declared is not None:
            if declared > limit:
                self._refused("http", 0, "too_large")
                return _http_error(_Outcome("too_large", too_large), media_type)
            if refused := self._admit("http", declared):
                return _http_error(refused, media_type)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    self._refused("http", 0, "too_large")
                    return _http_error(_Outcome("too_large", too_large), media_type)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        if declared is None and (refused := self._admit("http", len(body))):
            return _http_error(refused, media_type)
        decode = functools.partial(_decode_http, body, media_type, encoding, limit, signal)  # no copy of the body
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._http_pool, self._process, "http", signal, decode)
        if outcome.kind == "ok" and outcome.response is not None:
            if media_type == JSON:
                return Response(otlp_json.encode_response(outcome.response), media_type=JSON)
            return Response(outcome.response.SerializeToString(), media_type=PROTOBUF)
        return _http_error(outcome, media_type)


def _decode_http(body: bytes | bytearray, media_type: str, encoding: str, limit: int, signal: Signal) -> Any:
    if encoding != "identity":
        body = _decompress(body, encoding, limit)
    return otlp_json.decode_request(body, signal) if media_type == JSON else _decode_protobuf(body, signal)


def _rpc_status(outcome: _Outcome) -> tuple[status_pb2.Status, error_details_pb2.RetryInfo | None]:
    code = _GRPC_CODES[outcome.kind]
    status = status_pb2.Status(code=code.value[0], message=outcome.message)
    retry_info = None
    if outcome.kind == "unavailable":
        retry_info = error_details_pb2.RetryInfo()
        retry_info.retry_delay.FromNanoseconds(max(int(outcome.retry_after * 1e9), 0))
        status.details.add().Pack(retry_info)
    return status, retry_info


def _grpc_status(outcome: _Outcome) -> _GrpcStatus:
    status, retry_info = _rpc_status(outcome)
    trailers: list[tuple[str, bytes]] = [("grpc-status-details-bin", status.SerializeToString())]
    if retry_info is not None:
        trailers.append((RETRY_INFO_TRAILER, retry_info.SerializeToString()))
    return _GrpcStatus(_GRPC_CODES[outcome.kind], outcome.message, tuple(trailers))


def _http_error(outcome: _Outcome, media_type: str) -> Response:
    status, _ = _rpc_status(outcome)
    headers = {}
    if outcome.kind == "unavailable":
        headers["Retry-After"] = str(max(1, math.ceil(outcome.retry_after)))
    if media_type == PROTOBUF:
        return Response(status.SerializeToString(), _HTTP_CODES[outcome.kind], headers, media_type=PROTOBUF)
    return Response(otlp_json.encode_message(status), _HTTP_CODES[outcome.kind], headers, media_type=JSON)


def _listen_error(name: str, transport: str, endpoint: str, port: int, error: OSError) -> OSError:
    message = f"receiver {name!r}: cannot listen for {transport} on {endpoint}: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        message += f" (is another process using port {port}?)"
    return OSError(error.errno, message)


def _bind_error(name: str, transport: str, endpoint: str, host: str, port: int) -> OSError:
    """grpc says only "failed to bind"; find out why by trying the same bind."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as error:
        return _listen_error(name, transport, endpoint, port, error)
    return OSError(f"receiver {name!r}: grpc could not listen on {endpoint} (check the TLS certificate and key)")

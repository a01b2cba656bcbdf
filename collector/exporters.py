"""The collector's exporters: ``otlp`` (gRPC), ``otlphttp``, ``file`` (OTLP JSON lines), ``debug`` and ``review``.

Modelled on the OpenTelemetry Collector's exporterhelper. An :class:`Exporter` is a sender behind a sending queue
with retries:

- :meth:`Exporter.consume` puts the batch on the queue and returns once it is queued (for the persistent queue:
  written and fsync'd, so it survives ``kill -9``). A full queue raises :class:`Backpressure`; nothing is dropped
  silently. The client's request is acknowledged only after that, by the receiver.
- ``num_consumers`` worker threads take items and send them, retrying retryable failures with exponential backoff
  and jitter (:mod:`spanguard.collector.retry`). An item leaves the queue only once it was sent, failed permanently,
  or ran out of ``max_elapsed_time``; the last two are logged (never with span content) and counted.
- :meth:`Exporter.shutdown` stops taking batches, keeps sending until the queue is empty or ``timeout`` has passed,
  and then leaves what is left in the persistent queue (a memory queue's leftovers are lost: logged and counted).

``review`` (review items to the review service or a webhook) is :mod:`spanguard.exporters.review`'s sender behind
the same machinery.

``otlp``, ``otlphttp`` and ``review`` have a ``sending_queue`` (memory by default, or ``storage: file``) and
``retry_on_failure``.
``file`` and ``debug`` write synchronously inside :meth:`Exporter.consume` (no queue: the line is in the file when
the batch is acknowledged); a write failure raises :class:`Backpressure` so the client retries.

The exports run with OpenTelemetry instrumentation suppressed, so an instrumented ``grpc``/``httpx`` in the same
process never makes spans about the collector's own sending.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import pydantic
from opentelemetry import context as otel_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from spanguard.collector.component import Backpressure, PermanentError, TraceBatch
from spanguard.collector.confignet import TlsClientConfig, client_ssl_context, grpc_channel_credentials, grpc_target
from spanguard.collector.queue import (
    MemoryQueue,
    PersistentQueue,
    QueueClosed,
    QueueFull,
    QueueItem,
    QueueStorageError,
    SendingQueue,
)
from spanguard.collector.retry import (
    Backoff,
    RetryConfig,
    SendError,
    classify_grpc_error,
    classify_http_status,
)
from spanguard.collector.sending import (
    Headers,
    Payload,
    Sender,
    SendingQueueConfig,
    SendResult,
    SettingsModel,
    Timeout,
)
from spanguard.exporters.review import ReviewExporterConfig, ReviewSender

from spanguard._logging import safe_url

__all__ = [
    "EXPORTER_CONFIGS",
    "DebugExporterConfig",
    "Exporter",
    "ExporterTelemetry",
    "FileExporterConfig",
    "NoopExporterTelemetry",
    "OtlpExporterConfig",
    "OtlpHttpExporterConfig",
    "Payload",
    "RetryConfig",
    "RotationConfig",
    "SendResult",
    "SendingQueueConfig",
    "create_exporter",
]

logger = logging.getLogger("spanguard.collector.exporter")
debug_logger = logging.getLogger("spanguard.collector.exporter.debug")


# ---------------------------------------------------------------------------------------------------------------------
# Configs


_Model = SettingsModel


class OtlpExporterConfig(_Model):
    """``exporters.otlp``: OTLP over gRPC. ``endpoint`` is ``host:port`` (``http://``/``https://`` also accepted:
    the scheme then decides plaintext or TLS); TLS unless ``tls.insecure``."""

    endpoint: str = pydantic.Field(min_length=1)
    tls: TlsClientConfig = TlsClientConfig()
    headers: Headers = {}
    compression: Literal["gzip", "none"] = "gzip"
    timeout: Timeout = 10.0
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    retry_on_failure: RetryConfig = RetryConfig()


class OtlpHttpExporterConfig(_Model):
    """``exporters.otlphttp``: OTLP over HTTP. ``endpoint`` is the base URL (``/v1/traces`` is appended), or give
    the full ``traces_endpoint``; ``https://`` URLs use TLS (``tls.ca_file``, ``tls.cert_file``/``key_file``)."""

    endpoint: str | None = None
    traces_endpoint: str | None = None
    tls: TlsClientConfig = TlsClientConfig()
    headers: Headers = {}
    compression: Literal["gzip", "none"] = "gzip"
    timeout: Timeout = 10.0
    encoding: Literal["proto", "json"] = "proto"
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    retry_on_failure: RetryConfig = RetryConfig()

    @pydantic.model_validator(mode="after")
    def _url(self) -> OtlpHttpExporterConfig:
        if not self.endpoint and not self.traces_endpoint:
            raise ValueError("give endpoint (base URL) or traces_endpoint")
        for url in (self.endpoint, self.traces_endpoint):
            if url is not None and not (url.startswith("http://") or url.startswith("https://")):
                raise ValueError(f"invalid URL {url!r}: expected http://host:port[/path] or https://...")
        return self

    @property
    def url(self) -> str:
        """Where traces are POSTed."""
        if self.traces_endpoint:
            return self.traces_endpoint
        assert self.endpoint is not None
        return self.endpoint.rstrip("/") + "/v1/traces"


class RotationConfig(_Model):
    """``rotation``: start a new file once the current one would pass ``max_megabytes``; keep ``max_backups``."""

    max_megabytes: int = pydantic.Field(default=100, ge=1)
    max_backups: int = pydantic.Field(default=3, ge=0)


class FileExporterConfig(_Model):
    """``exporters.file``: OTLP JSON lines, one ``ExportTraceServiceRequest`` per line, flushed per batch."""

    path: str = pydantic.Field(min_length=1)
    rotation: RotationConfig | None = None


class DebugExporterConfig(_Model):
    """``exporters.debug``: logs batch counts (``basic``), span names and ids (``normal``), or everything including
    attributes (``detailed``: it logs span content, so only after redaction)."""

    verbosity: Literal["basic", "normal", "detailed"] = "basic"


EXPORTER_CONFIGS: dict[str, type[pydantic.BaseModel]] = {
    "otlp": OtlpExporterConfig,
    "otlphttp": OtlpHttpExporterConfig,
    "file": FileExporterConfig,
    "debug": DebugExporterConfig,
    "review": ReviewExporterConfig,
}
"""The config model of each exporter type."""


# ---------------------------------------------------------------------------------------------------------------------
# Telemetry


class ExporterTelemetry(Protocol):
    """Where an exporter reports what it did (the collector wires Prometheus here)."""

    def sent(self, exporter: str, spans: int) -> None:
        """``spans`` were accepted by the backend."""

    def failed(self, exporter: str, spans: int, reason: str) -> None:
        """``spans`` will not be delivered: ``permanent``, ``retries_exhausted``, ``rejected`` (OTLP partial
        success), ``shutdown`` (left in a memory queue) or ``corrupt``."""

    def queue(self, exporter: str, size: int, capacity: int) -> None:
        """The sending queue now holds ``size`` of ``capacity`` batches."""


class _SafeTelemetry:
    """Forwards to the collector's telemetry; a failing hook is logged once per hook, never raised into a worker."""

    def __init__(self, inner: ExporterTelemetry) -> None:
        self._inner = inner
        self._warned: set[str] = set()

    def _call(self, hook: str, *args: Any) -> None:
        try:
            getattr(self._inner, hook)(*args)
        except Exception:
            if hook not in self._warned:
                self._warned.add(hook)
                logger.exception("exporter telemetry hook %s failed", hook)

    def sent(self, exporter: str, spans: int) -> None:
        self._call("sent", exporter, spans)

    def failed(self, exporter: str, spans: int, reason: str) -> None:
        self._call("failed", exporter, spans, reason)

    def queue(self, exporter: str, size: int, capacity: int) -> None:
        self._call("queue", exporter, size, capacity)


class NoopExporterTelemetry:
    """Reports nowhere."""

    def sent(self, exporter: str, spans: int) -> None:
        pass

    def failed(self, exporter: str, spans: int, reason: str) -> None:
        pass

    def queue(self, exporter: str, size: int, capacity: int) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------------------
# Payloads and senders


_json_encoder: Callable[[ExportTraceServiceRequest], bytes] | None = None


def encode_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON for ``request`` on one line (``spanguard.collector.otlp_json``)."""
    global _json_encoder
    if _json_encoder is None:
        from spanguard.collector.otlp_json import encode_request

        _json_encoder = encode_request
    data = _json_encoder(request)
    if b"\n" in data or b"\r" in data:  # one request per line, whatever the encoder's layout
        data = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode()
    return data


def _partial(response: ExportTraceServiceResponse) -> SendResult:
    if response.HasField("partial_success"):
        partial = response.partial_success
        return SendResult(int(partial.rejected_spans), partial.error_message)
    return SendResult()


class GrpcSender:
    """OTLP/gRPC with the official ``TraceServiceStub`` over one shared channel."""

    def __init__(self, config: OtlpExporterConfig) -> None:
        self._config = config
        self.target, self.secure = grpc_target(config.endpoint, insecure=config.tls.insecure)
        self._metadata = tuple((key.lower(), value) for key, value in config.headers.items())
        self._channel: Any = None
        self._stub: Any = None

    def start(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            # reconnect soon after a backend comes back, so our backoff (not the channel's) paces the retries
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        if self.secure:
            tls = self._config.tls
            if tls.insecure_skip_verify:
                logger.warning("otlp: tls.insecure_skip_verify is not supported for gRPC; the server is verified")
            self._channel = grpc.secure_channel(self.target, grpc_channel_credentials(tls), options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        logger.info("otlp: exporting to %s (%s)", safe_url(self.target), "TLS" if self.secure else "plaintext")
        self._stub = TraceServiceStub(self._channel)
        self._compression = (
            grpc.Compression.Gzip if self._config.compression == "gzip" else grpc.Compression.NoCompression
        )
        self._rpc_error = grpc.RpcError

    def send(self, payload: Payload) -> SendResult:
        stub = self._stub
        if stub is None:
            raise SendError("gRPC channel is closed", retryable=True)
        try:
            response = stub.Export(
                payload.request,
                timeout=self._config.timeout,
                metadata=self._metadata or None,
                compression=self._compression,
            )
        except self._rpc_error as error:
            raise classify_grpc_error(error) from None
        return _partial(response)

    def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()  # cancels RPCs in flight


class HttpSender:
    """OTLP/HTTP with ``httpx``: protobuf or JSON, gzip, ``Retry-After`` honoured."""

    def __init__(self, config: OtlpHttpExporterConfig) -> None:
        self._config = config
        self.url = config.url
        self._client: Any = None
        headers = {key: value for key, value in config.headers.items()}
        headers["Content-Type"] = "application/json" if config.encoding == "json" else "application/x-protobuf"
        if config.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
        self._headers = headers

    def start(self) -> None:
        import httpx

        self._httpx = httpx
        try:
            verify = client_ssl_context(self.url, self._config.tls)
        except (OSError, ssl.SSLError) as error:
            raise OSError(f"otlphttp: cannot load TLS files: {error}") from None
        self._client = httpx.Client(timeout=self._config.timeout, verify=verify, follow_redirects=False)
        logger.info("otlphttp: exporting to %s", safe_url(self.url))

    def _body(self, payload: Payload) -> bytes:
        body = encode_json(payload.request) if self._config.encoding == "json" else payload.data
        if self._config.compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
        return body

    def send(self, payload: Payload) -> SendResult:
        client = self._client
        if client is None:
            raise SendError("HTTP client is closed", retryable=True)
        httpx = self._httpx
        try:
            response = client.post(self.url, content=self._body(payload), headers=self._headers)
        except httpx.TransportError as error:
            raise SendError(f"HTTP {type(error).__name__}: {error}", retryable=True) from None
        except RuntimeError as error:  # the client was closed under us (shutdown)
            raise SendError(f"HTTP client: {error}", retryable=True) from None
        if 200 <= response.status_code < 300:
            return self._partial(response)
        raise classify_http_status(response.status_code, response.headers, self._status_message(response))

    @staticmethod
    def _is_json(response: Any) -> bool:
        return "json" in response.headers.get("content-type", "").lower()

    def _partial(self, response: Any) -> SendResult:
        body = response.content
        if not body:
            return SendResult()
        try:
            if self._is_json(response):
                from spanguard.collector.otlp_json import decode_response

                return _partial(decode_response(body))
            return _partial(ExportTraceServiceResponse.FromString(body))
        except Exception:  # an unreadable success body is still a success
            return SendResult()

    def _status_message(self, response: Any) -> str | None:
        body = response.content
        if not body:
            return None
        try:
            from google.rpc import status_pb2

            if self._is_json(response):
                message = json.loads(body).get("message")
                return str(message) if message else None
            if "protobuf" in response.headers.get("content-type", "").lower():
                return status_pb2.Status.FromString(body).message or None
        except Exception:
            return None
        return None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


class FileSender:
    """Appends one OTLP/JSON line per request, flushed per batch; optional size-based rotation.

    Rotation renames ``path`` to ``path.1`` (older backups shift to ``.2`` ... ``.<max_backups>``; the oldest goes).
    """

    def __init__(self, config: FileExporterConfig) -> None:
        self.path = Path(config.path)
        self._rotation = config.rotation
        self._lock = threading.Lock()
        self._file: Any = None
        self._size = 0

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        self._file = open(self.path, "ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        assert self._rotation is not None
        self._file.close()
        self._file = None
        backups = self._rotation.max_backups
        if backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            Path(f"{self.path}.{backups}").unlink(missing_ok=True)
            for index in range(backups - 1, 0, -1):
                older = Path(f"{self.path}.{index}")
                if older.exists():
                    os.replace(older, f"{self.path}.{index + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._open()

    def send(self, payload: Payload) -> SendResult:
        line = encode_json(payload.request) + b"\n"
        with self._lock:
            if self._file is None:
                raise SendError("file exporter is closed", retryable=True)
            try:
                limit = self._rotation.max_megabytes * 1024 * 1024 if self._rotation else 0
                if limit and self._size and self._size + len(line) > limit:
                    self._rotate()
                self._file.write(line)
                self._file.flush()
                self._size += len(line)
            except OSError as error:
                raise SendError(f"cannot write {self.path}: {error.strerror or error}", retryable=True) from None
        return SendResult()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None


def _hex(value: bytes) -> str:
    return value.hex()


class DebugSender:
    """Logs what passes: counts (``basic``), span names and ids (``normal``), everything (``detailed``)."""

    def __init__(self, name: str, config: DebugExporterConfig) -> None:
        self._name = name
        self.verbosity = config.verbosity

    def start(self) -> None:
        if self.verbosity == "detailed":
            logger.warning(
                "exporter %s logs span attributes (verbosity: detailed): put it after the redaction processor",
                self._name,
                extra={"exporter": self._name},
            )

    def send(self, payload: Payload) -> SendResult:
        request = payload.request
        extra = {"exporter": self._name}
        debug_logger.info(
            "%s: %d resource spans, %d spans", self._name, len(request.resource_spans), payload.spans, extra=extra
        )
        if self.verbosity == "basic":
            return SendResult()
        from google.protobuf import json_format

        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    debug_logger.info(
                        "%s: span %r trace_id=%s span_id=%s parent_span_id=%s scope=%r",
                        self._name,
                        span.name,
                        _hex(span.trace_id),
                        _hex(span.span_id),
                        _hex(span.parent_span_id),
                        scope.scope.name,
                        extra=extra,
                    )
                    if self.verbosity == "detailed":
                        attributes = json_format.MessageToDict(span, preserving_proto_field_name=True).get(
                            "attributes", []
                        )
                        resource_attributes = json_format.MessageToDict(
                            resource.resource, preserving_proto_field_name=True
                        ).get("attributes", [])
                        debug_logger.info(
                            "%s: span_id=%s attributes=%s resource=%s",
                            self._name,
                            _hex(span.span_id),
                            json.dumps(attributes, ensure_ascii=False),
                            json.dumps(resource_attributes, ensure_ascii=False),
                            extra=extra,
                        )
        return SendResult()

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------------------
# The exporter


_SUPPRESS_KEYS: tuple[Any, ...] | None = None


@contextlib.contextmanager
def _no_instrumentation() -> Iterator[None]:
    """Suppress OpenTelemetry instrumentation (spans about our own exports) for the duration."""
    global _SUPPRESS_KEYS
    if _SUPPRESS_KEYS is None:
        keys: list[Any] = ["suppress_instrumentation"]  # the plain key older instrumentations check
        for attribute in ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY"):
            key = getattr(otel_context, attribute, None)
            if key is not None:
                keys.append(key)
        _SUPPRESS_KEYS = tuple(keys)
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


_OK, _PERMANENT, _GAVE_UP, _STOPPED = "ok", "permanent", "retries_exhausted", "stopped"


class Exporter:
    """A sender behind a sending queue with retries (see the module docstring). A Consumer and a Component.

    With ``queue=None`` (``file``, ``debug``, or ``sending_queue.enabled: false``) :meth:`consume` sends inline,
    still retrying per ``retry``; when it cannot deliver in time it raises :class:`Backpressure` (the client
    retries), and on a permanent failure :class:`PermanentError`.
    """

    def __init__(
        self,
        name: str,
        sender: Sender,
        *,
        queue_config: SendingQueueConfig | None = None,
        retry: RetryConfig | None = None,
        telemetry: ExporterTelemetry | None = None,
    ) -> None:
        self.name = name
        self._sender = sender
        self._retry = retry or RetryConfig(enabled=False)
        self._telemetry: ExporterTelemetry = (
            _SafeTelemetry(telemetry) if telemetry is not None else NoopExporterTelemetry()
        )
        self._queue_config = queue_config if queue_config is not None and queue_config.enabled else None
        self._queue: SendingQueue | None = None
        if self._queue_config is not None:
            qc = self._queue_config
            if qc.storage == "file":
                self._queue = PersistentQueue(qc.queue_size, qc.directory, name, decode=Payload.from_bytes)
            else:
                self._queue = MemoryQueue(qc.queue_size)
        self._persistent = isinstance(self._queue, PersistentQueue)
        self._state = "new"
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._stats_lock = threading.Lock()
        self._sent_spans = 0
        self._sent_batches = 0
        self._failed_spans = 0
        self._rejected_spans = 0
        self._retries = 0
        self._dropped = 0
        self._last_delay = 0.0
        self._log = {"exporter": name}

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the queue (a persistent one resumes what it holds), connect the sender, start the workers."""
        with self._state_lock:
            if self._state == "running":
                return
            if self._state == "shutdown":
                raise RuntimeError(f"exporter {self.name} was shut down; it cannot start again")
            self._sender.start()
            if self._queue is not None:
                try:
                    self._queue.open()
                except BaseException as error:
                    self._sender.close()
                    if isinstance(error, QueueStorageError):
                        raise RuntimeError(f"exporter {self.name}: {error}") from None
                    raise
            if self._queue is not None:
                resumed = self._queue.size
                if resumed:
                    logger.info(
                        "exporter %s: resuming %d batch(es) from the persistent queue",
                        self.name,
                        resumed,
                        extra=self._log,
                    )
                assert self._queue_config is not None
                for index in range(self._queue_config.num_consumers):
                    worker = threading.Thread(
                        target=self._work, name=f"spanguard-export-{self.name}-{index}", daemon=True
                    )
                    worker.start()
                    self._workers.append(worker)
            self._state = "running"
        self._report_queue()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking batches; keep sending until the queue is empty or ``timeout`` passed; leave the rest on disk.

        Idempotent, bounded by ``timeout`` and safe before :meth:`start`.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state_lock:
            previous, self._state = self._state, "shutdown"
        if previous != "running":
            return
        queue = self._queue
        if queue is None:
            self._stop.set()  # inline sends waiting to retry give up (their callers get Backpressure)
            self._sender.close()
            return
        queue.stop_accepting()
        grace = min(0.5, max(0.0, timeout) * 0.1)
        for worker in self._workers:
            worker.join(max(0.0, deadline - grace - time.monotonic()))
        if any(worker.is_alive() for worker in self._workers):
            self._stop.set()  # workers waiting to retry hand their item back
            self._sender.close()  # and sends in flight are cancelled
            for worker in self._workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        left_items, left_spans = queue.close()
        self._sender.close()
        if left_items and self._persistent:
            logger.warning(
                "exporter %s: %d batch(es), %d span(s) left in the persistent queue; they are sent after a restart",
                self.name,
                left_items,
                left_spans,
                extra=self._log,
            )
        elif left_items:
            logger.error(
                "exporter %s: %d batch(es), %d span(s) could not be sent before shutdown and are lost (memory queue)",
                self.name,
                left_items,
                left_spans,
                extra=self._log,
            )
            with self._stats_lock:
                self._dropped += left_spans
            self._telemetry.failed(self.name, left_spans, "shutdown")
        self._report_queue()

    # -- consuming -----------------------------------------------------------------------------------------------------

    def consume(self, batch: TraceBatch) -> None:
        """Queue the batch (durably, for a persistent queue); :class:`Backpressure` when it cannot be taken now."""
        if self._state != "running":
            raise Backpressure(f"exporter {self.name} is not running", retry_after=1.0)
        payload = Payload.of(batch)
        if payload.spans == 0:
            return
        queue = self._queue
        if queue is None:
            self._send_inline(payload)
            return
        try:
            queue.put(payload.data if self._persistent else payload, payload.spans)
        except QueueFull as error:
            raise Backpressure(f"exporter {self.name}: {error}", retry_after=self._retry_after()) from None
        except QueueClosed:
            raise Backpressure(f"exporter {self.name} is shutting down", retry_after=1.0) from None
        except QueueStorageError as error:
            raise Backpressure(f"exporter {self.name}: {error}", retry_after=self._retry_after()) from None
        self._report_queue()

    def _send_inline(self, payload: Payload) -> None:
        outcome, error = self._deliver(payload)
        if outcome == _OK:
            return
        if outcome == _PERMANENT:
            self._count_failed(payload.spans, _PERMANENT, error)
            raise PermanentError(f"exporter {self.name}: {error}")
        logger.warning("exporter %s: cannot deliver now (%s); pushing back", self.name, error, extra=self._log)
        raise Backpressure(f"exporter {self.name}: cannot deliver now ({error})", retry_after=self._retry_after())

    def _retry_after(self) -> float:
        """What to tell clients: a second, or the current backoff while the backend is failing (at most 30 s)."""
        return max(1.0, min(self._last_delay, 30.0))

    # -- sending -------------------------------------------------------------------------------------------------------

    def _work(self) -> None:
        queue = self._queue
        assert queue is not None
        while not self._stop.is_set():
            try:
                item = queue.get(timeout=0.25)
            except Exception:
                logger.exception("exporter %s: cannot read the sending queue", self.name, extra=self._log)
                self._stop.wait(1.0)
                continue
            if item is None:
                if queue.drained:
                    return
                continue
            try:
                self._process(queue, item)
            except Exception:  # never let a worker die: the queue would stop draining
                logger.exception("exporter %s: unexpected error in a sending worker", self.name, extra=self._log)
                with contextlib.suppress(Exception):
                    queue.release(item)
                self._stop.wait(1.0)

    def _process(self, queue: SendingQueue, item: QueueItem) -> None:
        self._report_queue()
        payload: Payload = item.payload
        outcome, error = self._deliver(payload)
        if outcome == _STOPPED:
            queue.release(item)
            return
        if outcome != _OK:
            self._count_failed(item.spans, outcome, error)
        queue.ack(item)
        self._report_queue()

    def _deliver(self, payload: Payload) -> tuple[str, SendError | None]:
        """Send with retries. ``(_OK | _PERMANENT | _GAVE_UP | _STOPPED, last error)``."""
        backoff = Backoff(self._retry)
        while True:
            if self._stop.is_set():
                return _STOPPED, None
            try:
                with _no_instrumentation():
                    result = self._sender.send(payload)
            except SendError as failure:
                error = failure
            except PermanentError as failure:
                error = SendError(str(failure), retryable=False)
            except Exception as failure:  # a bug or an unexpected library error: retry rather than lose data
                if self._stop.is_set():  # e.g. the channel was closed under us at shutdown
                    return _STOPPED, None
                logger.exception("exporter %s: unexpected error while sending", self.name, extra=self._log)
                error = SendError(f"unexpected {type(failure).__name__}", retryable=True)
            else:
                self._count_sent(payload.spans, result)
                return _OK, None
            if self._stop.is_set():
                return _STOPPED, error
            if not error.retryable:
                return _PERMANENT, error
            if not self._retry.enabled:
                return _GAVE_UP, error
            delay = backoff.next_delay(error.retry_after)
            if delay is None:
                return _GAVE_UP, error
            with self._stats_lock:
                self._retries += 1
                self._last_delay = delay
            logger.info(
                "exporter %s: export of %d span(s) failed (%s); retry %d in %.2fs",
                self.name,
                payload.spans,
                error,
                backoff.attempts,
                delay,
                extra=self._log,
            )
            if self._stop.wait(delay):
                return _STOPPED, error

    def _count_sent(self, spans: int, result: SendResult) -> None:
        rejected = min(max(result.rejected, 0), spans)
        with self._stats_lock:
            self._sent_spans += spans - rejected
            self._sent_batches += 1
            self._rejected_spans += rejected
            self._last_delay = 0.0
        self._telemetry.sent(self.name, spans - rejected)
        if rejected or result.message:
            logger.warning(
                "exporter %s: backend rejected %d of %d span(s): %s",
                self.name,
                rejected,
                spans,
                " ".join(result.message.split())[:200] or "(no message)",
                extra=self._log,
            )
        if rejected:
            self._telemetry.failed(self.name, rejected, "rejected")

    def _count_failed(self, spans: int, reason: str, error: SendError | None) -> None:
        with self._stats_lock:
            self._failed_spans += spans
            self._dropped += spans
        what = "failed permanently" if reason == _PERMANENT else "gave up after retrying"
        logger.error("exporter %s: export of %d span(s) %s: %s", self.name, spans, what, error, extra=self._log)
        self._telemetry.failed(self.name, spans, reason)

    def _report_queue(self) -> None:
        if self._queue is not None:
            self._telemetry.queue(self.name, self._queue.size, self._queue.capacity)

    # -- stats ---------------------------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start.

        ``sent_spans`` (accepted by the backend), ``failed_spans`` (permanent failure or retries exhausted),
        ``rejected_spans`` (OTLP partial success), ``retries``, ``queue_size`` / ``queue_capacity`` (batches),
        ``dropped`` (spans that will never be delivered: failed, lost from a memory queue at shutdown; 0 unless
        something failed for good), ``corrupt_items`` (unreadable persistent items skipped), ``sent_batches``.
        """
        queue = self._queue
        with self._stats_lock:
            return {
                "sent_spans": self._sent_spans,
                "sent_batches": self._sent_batches,
                "failed_spans": self._failed_spans,
                "rejected_spans": self._rejected_spans,
                "retries": self._retries,
                "queue_size": queue.size if queue is not None else 0,
                "queue_capacity": queue.capacity if queue is not None else 0,
                "dropped": self._dropped,
                "corrupt_items": queue.corrupt_items if queue is not None else 0,
            }


# ---------------------------------------------------------------------------------------------------------------------
# Factory


def create_exporter(
    kind: str, name: str, config: pydantic.BaseModel | dict[str, Any] | None = None, *, telemetry: Any = None
) -> Exporter:
    """An exporter of type ``kind`` (``otlp``, ``otlphttp``, ``file``, ``debug``, ``review``) called ``name``
    (``otlp/phoenix``).

    ``config`` is the type's config model, or a mapping validated into it.
    """
    model = EXPORTER_CONFIGS.get(kind)
    if model is None:
        raise ValueError(f"unknown exporter type {kind!r}; known: {', '.join(EXPORTER_CONFIGS)}")
    if config is None:
        config = {}
    if isinstance(config, dict):
        config = model.model_validate(config)
    if not isinstance(config, model):
        raise TypeError(f"exporter {kind!r} takes a {model.__name__}, not {type(config).__name__}")
    if isinstance(config, (OtlpExporterConfig, OtlpHttpExporterConfig)):
        sender = GrpcSender(config) if isinstance(config, OtlpExporterConfig) else HttpSender(config)
        return Exporter(
            name, sender, queue_config=config.sending_queue, retry=config.retry_on_failure, telemetry=telemetry
        )
    if isinstance(config, ReviewExporterConfig):
        return Exporter(
            name,
            ReviewSender(config),
            queue_config=config.sending_queue,
            retry=config.retry_on_failure,
            telemetry=telemetry,
        )
    if isinstance(config, FileExporterConfig):
        return Exporter(name, FileSender(config), telemetry=telemetry)
    assert isinstance(config, DebugExporterConfig)
    return Exporter(name, DebugSender(name, config), telemetry=telemetry)

"""The Collector's exporterhelper: an exporter type supplies a sender, this gives it the queue, retries and telemetry.

:class:`Exporter` puts each batch on a sending queue (memory, or persistent on disk) and returns once it is queued;
worker threads send it with retries and exponential backoff. Without a queue it sends inline. A full queue raises
:class:`~spanguard.collector.component.Backpressure`; nothing is dropped silently. Exports run with OpenTelemetry
instrumentation suppressed. Behaviour (queue, retries, shutdown, metrics): docs/collector-config.md, "Exporters".
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from enum import Enum
from typing import Any, Protocol

from opentelemetry import context as otel_context

from spanguard.collector.component import Backpressure, Batch, PermanentError, Settings
from spanguard.collector.signals import SIGNALS, TRACES, Signal
from spanguard.exporters.exporterhelper.queue import (
    MemoryQueue,
    PersistentQueue,
    QueueClosed,
    QueueFull,
    QueueItem,
    QueueStorageError,
    SendingQueue,
)
from spanguard.exporters.exporterhelper.retry import Backoff, RetryConfig, SendError
from spanguard.exporters.exporterhelper.sending import Payload, Sender, SendingQueueConfig, SendResult
from spanguard.semconv import StrEnum

__all__ = [
    "Exporter",
    "ExporterTelemetry",
    "FailureReason",
    "NoopExporterTelemetry",
    "new_exporter",
]

logger = logging.getLogger("spanguard.collector.exporter")


# ---------------------------------------------------------------------------------------------------------------------
# Telemetry


class FailureReason(StrEnum):
    """Why spans will not be delivered (what :meth:`ExporterTelemetry.failed` is told)."""

    PERMANENT = "permanent"
    """The backend refused them for good."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """Still failing after ``retry_on_failure.max_elapsed_time`` (or on the first failure, retries disabled)."""
    REJECTED = "rejected"
    """The backend accepted the request but rejected these spans (OTLP partial success)."""
    SHUTDOWN = "shutdown"
    """Left in a memory queue at shutdown."""


class ExporterTelemetry(Protocol):
    """Where an exporter reports what it did, as it happens (optional: the collector's metrics read
    :attr:`Exporter.stats`)."""

    def sent(self, exporter: str, spans: int) -> None:
        """``spans`` were accepted by the backend."""

    def failed(self, exporter: str, spans: int, reason: str) -> None:
        """``spans`` will not be delivered, for ``reason`` (a :class:`FailureReason`)."""

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


class _Delivery(Enum):
    """How one attempt to deliver a payload (with its retries) ended."""

    SENT = "sent"
    PERMANENT = "permanent"
    RETRIES_EXHAUSTED = "retries_exhausted"
    STOPPED = "stopped"
    """The exporter is stopping: the payload goes back to its queue (or the inline caller gets Backpressure)."""


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    SHUTDOWN = "shutdown"


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
        signal: Signal = TRACES,
    ) -> None:
        self.name = name
        self.signal = signal
        """The signal this exporter sends (one exporter per configured exporter and signal)."""
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
                # Each signal has its own store: traces keep ``<id>.db`` (as before logs and metrics existed).
                store = name if signal is TRACES else f"{name}.{signal.name}"
                decode = functools.partial(Payload.from_bytes, signal=signal)
                self._queue = PersistentQueue(qc.queue_size, qc.directory, store, decode=decode)
            else:
                self._queue = MemoryQueue(qc.queue_size)
        self._persistent = isinstance(self._queue, PersistentQueue)
        self._state = _State.NEW
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
        self._log = {"exporter": name, "signal": signal.name}

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the queue (a persistent one resumes what it holds), connect the sender, start the workers."""
        with self._state_lock:
            if self._state is _State.RUNNING:
                return
            if self._state is _State.SHUTDOWN:
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
            self._state = _State.RUNNING
        self._report_queue()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking batches; keep sending until the queue is empty or ``timeout`` passed; leave the rest on disk.

        Idempotent, bounded by ``timeout`` and safe before :meth:`start`.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state_lock:
            previous, self._state = self._state, _State.SHUTDOWN
        if previous is not _State.RUNNING:
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
                "exporter %s: %d batch(es), %d %s left in the persistent queue; they are sent after a restart",
                self.name,
                left_items,
                left_spans,
                self.signal.items,
                extra=self._log,
            )
        elif left_items:
            logger.error(
                "exporter %s: %d batch(es), %d %s could not be sent before shutdown and are lost (memory queue)",
                self.name,
                left_items,
                left_spans,
                self.signal.items,
                extra=self._log,
            )
            with self._stats_lock:
                self._dropped += left_spans
            self._telemetry.failed(self.name, left_spans, FailureReason.SHUTDOWN)
        self._report_queue()

    # -- consuming -----------------------------------------------------------------------------------------------------

    def consume(self, batch: Batch) -> None:
        """Queue the batch (durably, for a persistent queue); :class:`Backpressure` when it cannot be taken now."""
        if self._state is not _State.RUNNING:
            raise Backpressure(f"exporter {self.name} is not running", retry_after=1.0)
        if batch.signal is not self.signal:
            raise PermanentError(f"exporter {self.name} sends {self.signal.name}, not {batch.signal.name}")
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
        if outcome is _Delivery.SENT:
            return
        if outcome is _Delivery.PERMANENT:
            self._count_failed(payload.spans, FailureReason.PERMANENT, error)
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
        if outcome is _Delivery.STOPPED:
            queue.release(item)
            return
        if outcome is not _Delivery.SENT:
            permanent = outcome is _Delivery.PERMANENT
            reason = FailureReason.PERMANENT if permanent else FailureReason.RETRIES_EXHAUSTED
            self._count_failed(item.spans, reason, error)
        queue.ack(item)
        self._report_queue()

    def _deliver(self, payload: Payload) -> tuple[_Delivery, SendError | None]:
        """Send with retries: how it ended, and the last error."""
        backoff = Backoff(self._retry)
        while True:
            if self._stop.is_set():
                return _Delivery.STOPPED, None
            try:
                with _no_instrumentation():
                    result = self._sender.send(payload)
            except SendError as failure:
                error = failure
            except PermanentError as failure:
                error = SendError(str(failure), retryable=False)
            except Exception as failure:  # a bug or an unexpected library error: retry rather than lose data
                if self._stop.is_set():  # e.g. the channel was closed under us at shutdown
                    return _Delivery.STOPPED, None
                logger.exception("exporter %s: unexpected error while sending", self.name, extra=self._log)
                error = SendError(f"unexpected {type(failure).__name__}", retryable=True)
            else:
                self._count_sent(payload.spans, result)
                return _Delivery.SENT, None
            if self._stop.is_set():
                return _Delivery.STOPPED, error
            if not error.retryable:
                return _Delivery.PERMANENT, error
            if not self._retry.enabled:
                return _Delivery.RETRIES_EXHAUSTED, error
            delay = backoff.next_delay(error.retry_after)
            if delay is None:
                return _Delivery.RETRIES_EXHAUSTED, error
            with self._stats_lock:
                self._retries += 1
                self._last_delay = delay
            logger.info(
                "exporter %s: export of %d %s failed (%s); retry %d in %.2fs",
                self.name,
                payload.spans,
                self.signal.items,
                error,
                backoff.attempts,
                delay,
                extra=self._log,
            )
            if self._stop.wait(delay):
                return _Delivery.STOPPED, error

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
                "exporter %s: backend rejected %d of %d %s: %s",
                self.name,
                rejected,
                spans,
                self.signal.items,
                " ".join(result.message.split())[:200] or "(no message)",
                extra=self._log,
            )
        if rejected:
            self._telemetry.failed(self.name, rejected, FailureReason.REJECTED)

    def _count_failed(self, spans: int, reason: FailureReason, error: SendError | None) -> None:
        with self._stats_lock:
            self._failed_spans += spans
            self._dropped += spans
        what = "failed permanently" if reason is FailureReason.PERMANENT else "gave up after retrying"
        items = self.signal.items
        logger.error("exporter %s: export of %d %s %s: %s", self.name, spans, items, what, error, extra=self._log)
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


def new_exporter(
    settings: Settings,
    sender: Sender,
    telemetry: Any,
    *,
    queue_config: SendingQueueConfig | None = None,
    retry: RetryConfig | None = None,
) -> Exporter:
    """An :class:`Exporter` named ``settings.id`` over ``sender``, its ``stats`` reported in the collector's
    ``telemetry`` (the exporter metric family) when there is one: what an exporter factory's ``create`` returns."""
    signal = SIGNALS[settings.signal]
    exporter = Exporter(settings.id, sender, queue_config=queue_config, retry=retry, signal=signal)
    if telemetry is not None and signal is TRACES:  # the exporter metrics count spans (docs/collector-config.md)
        telemetry.track("exporter", settings.id, exporter)
    return exporter

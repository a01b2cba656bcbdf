"""Human verdicts back into OpenTelemetry: each decision and rating as a ``gen_ai.evaluation.result`` event.

:func:`evaluation_events` maps a :class:`Verdict` to its events (pure, testable without the SDK);
:class:`VerdictEmitter` sends them over OTLP and never raises. The events, their attributes and what never leaves the
store are ``docs/review.md``, "Verdicts in OpenTelemetry" (approval gates: ``docs/gates.md``).
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import pydantic
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import spanguard
from spanguard._logging import safe_url
from spanguard.semconv import (
    EVALUATION_HUMAN_APPROVAL,
    EVALUATION_HUMAN_CHECKLIST_PREFIX,
    EVALUATION_HUMAN_LIKERT,
    EVALUATION_HUMAN_REVIEW,
    EVALUATION_HUMAN_THUMBS,
    GEN_AI_EVALUATION_EXPLANATION,
    GEN_AI_EVALUATION_NAME,
    GEN_AI_EVALUATION_RESULT,
    GEN_AI_EVALUATION_SCORE_LABEL,
    GEN_AI_EVALUATION_SCORE_VALUE,
    GEN_AI_RESPONSE_ID,
    SPANGUARD_GATE_APPROVAL_ID,
    SPANGUARD_REVIEW_ITEM_ID,
    SPANGUARD_REVIEW_REVIEWER,
    ApprovalOutcome,
    ReviewOutcome,
)

__all__ = [
    "APPROVAL_OUTCOME_SCORES",
    "AUTO",
    "DEFAULT_GRPC_ENDPOINT",
    "DEFAULT_HTTP_ENDPOINT",
    "OUTCOME_SCORES",
    "Verdict",
    "VerdictEmitter",
    "VerdictsConfig",
    "evaluation_events",
    "parent_context",
]

logger = logging.getLogger("spanguard.review.verdicts")

DEFAULT_SERVICE_NAME = "spanguard-review"
SCOPE_NAME = "spanguard.review"

OUTCOME_SCORES: Mapping[str, float] = {
    ReviewOutcome.APPROVE: 1.0,
    ReviewOutcome.REJECT: 0.0,
    ReviewOutcome.CORRECT: 0.5,
}
"""The decision's ``gen_ai.evaluation.score.value``: a correction is half-way (usable only after a human fix)."""

APPROVAL_OUTCOME_SCORES: Mapping[str, float] = {
    ApprovalOutcome.APPROVE: 1.0,
    ApprovalOutcome.REJECT: 0.0,
    ApprovalOutcome.MODIFY: 0.5,
}
"""An approval gate's decision (``human_approval``) scored the same way: a modify ran only after a human edit."""

_THUMBS = {"up": 1.0, "down": 0.0}
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")


# --- configuration -------------------------------------------------------------------------------------------------


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for key, value in headers.items():
        if not key or any(ch.isspace() or ord(ch) < 33 or ord(ch) > 126 or ch in ':()<>@,;\\"/[]?={}' for ch in key):
            raise ValueError(f"invalid header name {key!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"invalid value for header {key!r}: line breaks are not allowed")
    return headers


AUTO: Final = "auto"
"""The default ``endpoint``: the collector at the OTLP default address, whenever one listens there."""
DEFAULT_GRPC_ENDPOINT: Final = "127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT: Final = "http://127.0.0.1:4318"
_PROBE_EVERY_S: Final = 10.0


class VerdictsConfig(pydantic.BaseModel):
    """Where verdict events go. ``auto`` (the default): the collector at the OTLP default address
    (``127.0.0.1:4317``, or ``http://127.0.0.1:4318`` for ``http/protobuf``) while one listens there; None: off.

    For ``grpc`` the endpoint is ``host:port`` (``insecure`` decides plaintext, or TLS with the system's CAs) or
    ``http://host:port`` (plaintext) or ``https://host:port`` (TLS). For ``http/protobuf`` it is the collector's base
    URL (``/v1/logs`` is appended unless the URL already ends with it); TLS follows the URL's scheme, and
    ``insecure`` does not apply. ``headers`` go with every export (gRPC metadata keys are lowercased);
    ``timeout_s`` bounds one export, retries included. With no ``headers``, the SDK's ``OTEL_EXPORTER_OTLP_*HEADERS``
    environment variables apply, as for any OTLP exporter.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    endpoint: str | None = AUTO
    protocol: Literal["grpc", "http/protobuf"] = "grpc"
    headers: dict[str, str] = {}
    insecure: bool = True
    timeout_s: float = pydantic.Field(default=10, gt=0, le=600)

    @pydantic.field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)

    @pydantic.field_validator("timeout_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("timeout_s must be a finite number of seconds")
        return value

    @pydantic.model_validator(mode="after")
    def _endpoint(self) -> VerdictsConfig:
        endpoint = self.endpoint
        if endpoint is None or endpoint == AUTO:
            return self
        if not endpoint.strip() or any(ch.isspace() for ch in endpoint):
            raise ValueError(f"invalid endpoint {endpoint!r}: empty or has spaces")
        has_scheme = endpoint.startswith(("http://", "https://"))
        if self.protocol == "http/protobuf" and not has_scheme:
            raise ValueError(f"invalid endpoint {endpoint!r} for http/protobuf: expected http://host:port[/path]")
        if "://" in endpoint and not has_scheme:
            raise ValueError(f"invalid endpoint {endpoint!r}: the scheme must be http:// or https://")
        if self.protocol == "grpc" and not has_scheme and ":" not in endpoint:
            raise ValueError(f"invalid endpoint {endpoint!r} for grpc: expected host:port, e.g. 127.0.0.1:4317")
        return self

    @property
    def auto(self) -> bool:
        """Whether the endpoint is the default collector's, used only while one listens there."""
        return self.endpoint == AUTO

    @property
    def target(self) -> str | None:
        """The endpoint events go to (``auto`` resolved to the OTLP default address); None when off."""
        if self.endpoint == AUTO:
            return DEFAULT_HTTP_ENDPOINT if self.protocol == "http/protobuf" else DEFAULT_GRPC_ENDPOINT
        return self.endpoint

    @property
    def logs_url(self) -> str | None:
        """For ``http/protobuf``: the URL the log records are POSTed to."""
        target = self.target
        if target is None or self.protocol != "http/protobuf":
            return None
        url = target.rstrip("/")
        return url if url.endswith("/v1/logs") else url + "/v1/logs"


# --- the verdict and its events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One reviewer's verdict on one review item, as the review service hands it to :class:`VerdictEmitter`.

    ``span_id`` is the span evaluated (the service passes the trace's root or last LLM span); ``reason`` is the
    configured rejection reason code; ``comment`` is carried so the verdict is the whole decision, but it is free
    text and never exported.
    """

    trace_id: str | None
    span_id: str | None
    item_id: int | None
    reviewer: str
    outcome: str
    reason: str | None = None
    ratings: Mapping[str, Any] = field(default_factory=dict)
    checklist: Mapping[str, bool] = field(default_factory=dict)
    comment: str | None = None
    response_id: str | None = None
    approval_id: str | None = None
    """Set for an approval gate's decision (then ``item_id`` is None): the event is ``human_approval``."""


Event = tuple[dict[str, Any], str | None]


def _event(verdict: Verdict, name: str, label: str, value: float) -> Event:
    attributes: dict[str, Any] = {
        GEN_AI_EVALUATION_NAME: name,
        GEN_AI_EVALUATION_SCORE_LABEL: label,
        GEN_AI_EVALUATION_SCORE_VALUE: float(value),
        SPANGUARD_REVIEW_REVIEWER: verdict.reviewer,
    }
    if verdict.item_id is not None:
        attributes[SPANGUARD_REVIEW_ITEM_ID] = int(verdict.item_id)
    if verdict.approval_id is not None:
        attributes[SPANGUARD_GATE_APPROVAL_ID] = verdict.approval_id
    if verdict.response_id:
        attributes[GEN_AI_RESPONSE_ID] = verdict.response_id
    return attributes, f"{name}: {label}"


def _rating_event(verdict: Verdict, key: str, value: Any) -> Event | None:
    if key == "thumbs":
        if isinstance(value, str) and value in _THUMBS:
            return _event(verdict, EVALUATION_HUMAN_THUMBS, value, _THUMBS[value])
    elif key == "likert":
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return _event(verdict, EVALUATION_HUMAN_LIKERT, str(value), float(value))
    else:
        logger.info("verdict on review item %s: an unknown rating left out", _item(verdict))
        return None
    logger.info("verdict on review item %s: rating %r has an invalid value, left out", _item(verdict), key)
    return None


def evaluation_events(verdict: Verdict) -> list[Event]:
    """The ``gen_ai.evaluation.result`` events of ``verdict``: (attributes, body) of each, the decision first.

    Raises :class:`ValueError` for an unknown outcome. Ratings and checklist entries that do not fit (an unknown
    rating, an out-of-range value, a checklist item that is not a code or not a boolean) are left out and noted.
    Free text (the reason when it is not a code, the comment) is never part of any event.
    """
    approval = verdict.approval_id is not None
    name, scores = (
        (EVALUATION_HUMAN_APPROVAL, APPROVAL_OUTCOME_SCORES) if approval else (EVALUATION_HUMAN_REVIEW, OUTCOME_SCORES)
    )
    if verdict.outcome not in scores:
        raise ValueError(f"unknown outcome {verdict.outcome!r}; expected one of {', '.join(scores)}")
    decision = _event(verdict, name, verdict.outcome, scores[verdict.outcome])
    if verdict.reason is not None:
        if isinstance(verdict.reason, str) and _CODE.match(verdict.reason):
            decision[0][GEN_AI_EVALUATION_EXPLANATION] = verdict.reason
        else:
            logger.warning(
                "verdict on review item %s: the reason is not a reason code (free text?); left out of the event",
                _item(verdict),
            )
    events = [decision]
    for key, value in verdict.ratings.items():
        rating = _rating_event(verdict, str(key), value)
        if rating is not None:
            events.append(rating)
    for key, passed in verdict.checklist.items():
        if not isinstance(key, str) or not _CODE.match(key) or not isinstance(passed, bool):
            logger.info("verdict on review item %s: a checklist entry is not code -> bool, left out", _item(verdict))
            continue
        events.append(
            _event(verdict, EVALUATION_HUMAN_CHECKLIST_PREFIX + key, "pass" if passed else "fail", float(passed))
        )
    return events


def parent_context(verdict: Verdict) -> Context:
    """The context the events are emitted in: the reviewed span (sampled), or no parent at all.

    Never the caller's current span (the review API's request span is not what was evaluated). A trace id that is
    not 32 hex digits (or is all zeros) gives no parent; a span id that is missing or not 16 hex digits links the
    events to the trace alone. Invalid ids are noted in the log.
    """
    trace_id = (
        int(verdict.trace_id, 16) if isinstance(verdict.trace_id, str) and _TRACE_ID.match(verdict.trace_id) else 0
    )
    if not trace_id:
        logger.warning("verdict on review item %s: invalid trace id, emitted without a parent", _item(verdict))
        return trace.set_span_in_context(trace.INVALID_SPAN, Context())
    span_id = 0
    if verdict.span_id is not None:
        if isinstance(verdict.span_id, str) and _SPAN_ID.match(verdict.span_id):
            span_id = int(verdict.span_id, 16)
        if not span_id:
            logger.warning("verdict on review item %s: invalid span id, linked to the trace only", _item(verdict))
    span_context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


# --- the emitter ---------------------------------------------------------------------------------------------------


class _WhileListening(LogRecordExporter):
    """For ``endpoint: auto``: exports only while something listens at the default address (checked at most every
    few seconds); events meanwhile are skipped and counted, not retried, since nobody asked for them."""

    def __init__(self, inner: LogRecordExporter, address: tuple[str, int]) -> None:
        self._inner = inner
        self._address = address
        self._checked_at = -math.inf
        self._listening = False
        self._said = False
        self.skipped = 0

    def _is_listening(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= _PROBE_EVERY_S:
            self._checked_at = now
            try:
                socket.create_connection(self._address, timeout=0.5).close()
                self._listening = True
            except OSError:
                self._listening = False
        return self._listening

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._is_listening():
            return self._inner.export(batch)
        self.skipped += len(batch)
        if not self._said:
            self._said = True
            logger.info(
                "verdicts: no collector listens at %s:%d, so verdict events are not sent until one does "
                "(set verdicts.endpoint to send them elsewhere, or to null to turn them off)",
                *self._address,
            )
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()


class _CountingExporter(LogRecordExporter):
    """The official OTLP exporter, counting the records whose export failed; its shutdown runs once."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._shut = False
        self.failed = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self._inner.export(batch)
        except Exception as error:  # the SDK would log it with a traceback; count it and say what kind it was
            logger.warning("exporting %d verdict events failed: %s", len(batch), type(error).__name__)
            result = LogRecordExportResult.FAILURE
        if result is not LogRecordExportResult.SUCCESS:
            with self._lock:
                self.failed += len(batch)
        return result

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self._inner.shutdown()


def _run_bounded(name: str, function: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
    """Run ``function`` in a daemon thread and wait at most ``timeout_s``: (finished, its result)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(function())
        except Exception as error:
            logger.warning("verdict emitter %s failed: %s", name, type(error).__name__)
            outcome.append(None)

    worker = threading.Thread(target=run, name=f"spanguard-verdicts-{name}", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    return (not worker.is_alive(), outcome[0] if outcome else None)


class VerdictEmitter:
    """Sends verdicts as ``gen_ai.evaluation.result`` events over OTLP; a no-op when ``config.endpoint`` is None.

    It has its own ``LoggerProvider`` (the global one, if any, is never touched), with ``service.name``
    ``spanguard-review`` unless ``resource_attributes`` gives another (``OTEL_RESOURCE_ATTRIBUTES`` is merged in,
    as the SDK does).
    """

    def __init__(self, config: VerdictsConfig, *, resource_attributes: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.emitted = 0
        self._failed = 0
        self._lock = threading.Lock()
        self._shut = False
        self._provider: LoggerProvider | None = None
        self._exporter: _CountingExporter | None = None
        self._auto: _WhileListening | None = None
        if config.endpoint is None:
            return
        attributes: dict[str, Any] = {SERVICE_NAME: DEFAULT_SERVICE_NAME, **(resource_attributes or {})}
        inner = _otlp_exporter(config)
        if config.auto:
            target = config.target or ""
            split = urlsplit(target if "://" in target else f"//{target}")
            inner = self._auto = _WhileListening(inner, (str(split.hostname or "127.0.0.1"), split.port or 4317))
        self._exporter = _CountingExporter(inner)
        self._provider = LoggerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        self._provider.add_log_record_processor(BatchLogRecordProcessor(self._exporter))
        self._logger = self._provider.get_logger(SCOPE_NAME, spanguard.__version__)
        atexit.register(self.shutdown)
        where = safe_url(config.logs_url or config.target or "")
        logger.info("verdicts: exporting to %s (%s%s)", where, config.protocol, ", while it listens" * config.auto)

    @property
    def enabled(self) -> bool:
        """Whether verdicts are sent anywhere (an endpoint is configured)."""
        return self._provider is not None

    @property
    def skipped(self) -> int:
        """With ``endpoint: auto``: events not sent because no collector listened at the default address."""
        return self._auto.skipped if self._auto is not None else 0

    @property
    def failed(self) -> int:
        """Events that could not be emitted, or whose export failed (after the exporter's retries)."""
        exported_failed = self._exporter.failed if self._exporter is not None else 0
        return self._failed + exported_failed

    def _count_failure(self, count: int = 1) -> None:
        with self._lock:
            self._failed += count

    def emit(self, verdict: Verdict) -> None:
        """Queue the events of ``verdict`` for export. Never raises: a failure is logged without content, counted."""
        if self._provider is None:
            return
        if self._shut:
            logger.warning("verdict on review item %s not sent: the emitter is shut down", _item(verdict))
            self._count_failure()
            return
        try:
            events = evaluation_events(verdict)
            context = parent_context(verdict)
        except Exception as error:
            logger.warning("verdict on review item %s not sent: %s", _item(verdict), type(error).__name__)
            self._count_failure()
            return
        self._send(events, context, f"review item {_item(verdict)}")

    def emit_events(self, events: Sequence[Event], context: Context, *, about: str) -> None:
        """Queue ``gen_ai.evaluation.result`` events built elsewhere (a judge's verdicts) in ``context``; never raises.

        ``about`` names what they evaluate in a log line (an id, never content).
        """
        if self._provider is None:
            return
        if self._shut:
            logger.warning("verdict events on %s not sent: the emitter is shut down", about)
            self._count_failure(len(events))
            return
        self._send(events, context, about)

    def _send(self, events: Sequence[Event], context: Context, about: str) -> None:
        now = time.time_ns()
        for attributes, body in events:
            try:
                self._logger.emit(
                    timestamp=now,
                    observed_timestamp=now,
                    context=context,
                    severity_number=SeverityNumber.INFO,
                    severity_text="INFO",
                    body=body,
                    attributes=attributes,
                    event_name=GEN_AI_EVALUATION_RESULT,
                )
            except Exception as error:
                logger.warning("a verdict event of %s not sent: %s", about, type(error).__name__)
                self._count_failure()
            else:
                with self._lock:
                    self.emitted += 1

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export what is queued; True when that ended within ``timeout_millis`` and no export failed meanwhile."""
        if self._provider is None:
            return True
        if self._shut:
            return False
        before = self.failed
        provider = self._provider
        finished, result = _run_bounded("flush", lambda: provider.force_flush(timeout_millis), timeout_millis / 1000)
        return bool(finished and result) and self.failed == before

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Export what is queued and stop; idempotent, and returns within ``timeout_millis``.

        The default bound is the export timeout plus two seconds. Events still unsent then are dropped (logged).
        """
        with self._lock:
            if self._shut:
                return
            self._shut = True
        atexit.unregister(self.shutdown)
        if self._provider is None or self._exporter is None:
            return
        bound = (self.config.timeout_s + 2.0) if timeout_millis is None else timeout_millis / 1000
        finished, _ = _run_bounded("shutdown", self._provider.shutdown, bound)
        if not finished:
            logger.warning("verdict events not exported within %.1fs of shutdown: dropped", bound)
            self._exporter.shutdown()  # aborts the exporter's retries and closes its connection


def _item(verdict: Any) -> str:
    item_id = getattr(verdict, "item_id", None)
    approval_id = getattr(verdict, "approval_id", None)
    return str(item_id) if isinstance(item_id, int) else approval_id if isinstance(approval_id, str) else "?"


def _otlp_exporter(config: VerdictsConfig) -> LogRecordExporter:
    """The official OTLP log exporter for ``config`` (gRPC or HTTP/protobuf)."""
    assert config.target is not None
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        endpoint = config.target
        if endpoint.startswith(("http://", "https://")):
            insecure = endpoint.startswith("http://")
        else:
            insecure = config.insecure
        return GrpcLogExporter(
            endpoint=endpoint,
            insecure=insecure,
            headers={key.lower(): value for key, value in config.headers.items()} or None,
            timeout=config.timeout_s,
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(endpoint=config.logs_url, headers=dict(config.headers) or None, timeout=config.timeout_s)

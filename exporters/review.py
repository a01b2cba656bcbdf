"""The collector's ``review`` exporter: the traces tail sampling sent to review, posted to the review service.

Tail sampling marks every span of a kept trace that goes to review with ``spanguard.review.tier``
(``processors/sampling.py``). This exporter groups a batch's spans by trace, keeps the traces that carry that
attribute, turns each into a review item (``docs/review.md``: ``trace_id``, ``tier``, ``risk_tier``, ``reasons``
and its spans as ``ReviewSpan`` JSON) and POSTs them as ``{"items": [...]}``:

- ``mode: review`` (default): to ``{endpoint}/v1/review-items`` of ``spanguard review serve``, with
  ``Authorization: Bearer <token>`` (a token with the ``ingest`` role);
- ``mode: webhook``: the same body to ``endpoint`` exactly as given, with optional ``headers`` (and the token, if
  one is set).

It is the collector's :class:`~spanguard.collector.exporters.Exporter` with a :class:`ReviewSender`: the same
sending queue (memory or persistent file), retries and shutdown as the OTLP exporters. Span content and the token
are never logged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import pydantic
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanguard.collector.confignet import HttpUrl, TlsClientConfig, client_ssl_context
from spanguard.collector.retry import RetryConfig, SendError, classify_http_status, parse_retry_after
from spanguard.collector.sending import (
    Headers,
    Payload,
    SendingQueueConfig,
    SendResult,
    SettingsModel,
    Timeout,
)
from spanguard.processors.otlp import views_of
from spanguard.processors.view import EventView, SpanView
from spanguard.semconv import SPANGUARD_REVIEW_TIER, SPANGUARD_RISK_REASONS, SPANGUARD_RISK_TIER

from spanguard._logging import safe_url

__all__ = [
    "REVIEW_ITEMS_PATH",
    "ReviewExporterConfig",
    "ReviewSender",
    "json_value",
    "review_items",
    "review_span",
]

logger = logging.getLogger("spanguard.collector.exporter.review")

REVIEW_ITEMS_PATH = "/v1/review-items"
"""Where the review service takes items, under its base URL."""

_REVIEW_TIERS = ("spot_check", "factual_verification", "dual_approval")
"""Review tiers, least demanding first: a trace whose spans disagree goes to the most demanding one."""
_RISK_TIERS = ("green", "yellow", "red")
"""Risk tiers, least risky first: a trace whose spans disagree gets the riskiest one."""


# ---------------------------------------------------------------------------------------------------------------------
# Conversion


def json_value(value: Any) -> Any:
    """A plain attribute value (as :func:`spanguard.processors.otlp.from_any` gives it) as a JSON value.

    Arrays become lists, kvlists dicts, bytes a base64 string; NaN and infinities become the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` (as in the protobuf JSON mapping), since JSON has no such numbers.
    """
    if isinstance(value, (tuple, list)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _json_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in attributes.items()}


# The review service's limits (``review/schemas.py``): an item over one would be refused whole, and with it every
# other trace of the batch, so values are cut to fit here instead (the service keeps what it is sent).
_MAX_NAME, _MAX_MESSAGE, _MAX_SCOPE_VERSION = 1024, 4096, 256
_MAX_EVENTS, _MAX_REASONS, _MAX_REASON = 10_000, 200, 200
_MAX_SPANS_PER_ITEM = 5_000  # more spans of one trace go in several items of the same trace id (the service merges)
_HEX = frozenset("0123456789abcdef")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and set(value) <= _HEX and value != "0" * length


def _review_event(event: EventView) -> dict[str, Any]:
    attributes = _json_attributes(event.attributes)
    return {"name": _cut(event.name, _MAX_NAME), "time_unix_nano": event.time_unix_nano, "attributes": attributes}


def review_span(view: SpanView, scope_version: str = "", resource: dict[str, Any] | None = None) -> dict[str, Any]:
    """One span as a ``ReviewSpan`` (``docs/review.md``). ``resource``: the view's resource already as JSON (shared
    by the spans of one resource), else it is converted here."""
    return {
        "trace_id": view.trace_id,
        "span_id": view.span_id,
        "parent_span_id": view.parent_span_id if _is_hex(view.parent_span_id or "", 16) else None,
        "name": _cut(view.name, _MAX_NAME),
        "kind": view.kind.lower(),
        "start_time_unix_nano": view.start_time_unix_nano,
        "end_time_unix_nano": view.end_time_unix_nano,
        "status": {"code": view.status_code.lower(), "message": _cut(view.status_message, _MAX_MESSAGE)},
        "attributes": _json_attributes(view.attributes),
        "events": [_review_event(event) for event in view.events[:_MAX_EVENTS]],
        "resource": resource if resource is not None else _json_attributes(view.resource),
        "scope": {"name": _cut(view.scope, _MAX_NAME), "version": _cut(scope_version, _MAX_SCOPE_VERSION)},
    }


def _reasons(value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        return value
    return (value,)


def _ranked(values: list[Any], order: tuple[str, ...]) -> str | None:
    known = [order.index(value) for value in values if isinstance(value, str) and value in order]
    return order[max(known)] if known else None


def _convert(request: ExportTraceServiceRequest) -> tuple[list[dict[str, Any]], int]:
    """The review items of ``request``, and how many traces carried only review tiers this version does not know."""
    traces: dict[str, list[SpanView]] = {}
    for view in views_of(request.resource_spans):
        traces.setdefault(view.trace_id, []).append(view)
    items: list[dict[str, Any]] = []
    unknown = 0
    resources: dict[int, dict[str, Any]] = {}  # each resource converted once (its views share one dict)
    for trace_id, views in traces.items():
        views = [view for view in views if _is_hex(view.span_id, 16)]  # a span without a valid id cannot be merged
        if not _is_hex(trace_id, 32) or not views:
            continue
        tiers = [view.attributes[SPANGUARD_REVIEW_TIER] for view in views if SPANGUARD_REVIEW_TIER in view.attributes]
        if not tiers:
            continue  # not for review
        tier = _ranked(tiers, _REVIEW_TIERS)
        if tier is None:
            unknown += 1
            continue
        risk_tier = _ranked([view.attributes.get(SPANGUARD_RISK_TIER) for view in views], _RISK_TIERS) or "green"
        reasons: dict[str, None] = {}
        for view in views:
            for reason in _reasons(view.attributes.get(SPANGUARD_RISK_REASONS)):
                if reason is not None and reason != "":  # an empty reason says nothing (and the service refuses it)
                    reasons.setdefault(_cut(str(reason), _MAX_REASON), None)
        spans = []
        for view in views:
            resource = resources.get(id(view.resource))
            if resource is None:
                resource = resources[id(view.resource)] = _json_attributes(view.resource)
            spans.append(review_span(view, view.source.scope.scope.version, resource))
        for start in range(0, len(spans), _MAX_SPANS_PER_ITEM):
            items.append(
                {
                    "trace_id": trace_id,
                    "tier": tier,
                    "risk_tier": risk_tier,
                    "reasons": list(reasons)[:_MAX_REASONS],
                    "spans": spans[start : start + _MAX_SPANS_PER_ITEM],
                }
            )
    return items, unknown


def review_items(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """The review items (``docs/review.md``) of an export request: one per trace that has a span carrying
    ``spanguard.review.tier``, in the order the traces first appear; other traces are not for review and are left out.

    An item holds every span of its trace found in ``request`` (spans of one trace may come in several requests; the
    review service merges them by trace id). ``tier`` is the most demanding review tier among the spans (a value this
    version does not know is ignored, and a trace with only such values is left out), ``risk_tier`` the riskiest
    ``spanguard.risk.tier`` (``green`` when none), ``reasons`` the union of ``spanguard.risk.reasons`` in first-seen
    order (empty ones left out). The spans of one resource share one ``resource`` dict. Pure: no I/O, no logging.
    """
    return _convert(request)[0]


def encode_items(items: Sequence[dict[str, Any]]) -> bytes:
    """The request body for ``items``: ``{"items": [...]}`` as compact UTF-8 JSON."""
    return json.dumps({"items": list(items)}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# ---------------------------------------------------------------------------------------------------------------------
# Config


class ReviewExporterConfig(SettingsModel):
    """``exporters.review``: review items to the review service (``mode: review``) or to any URL (``webhook``)."""

    endpoint: HttpUrl = pydantic.Field(
        min_length=1,
        description="review mode: the review service's base URL (items go to {endpoint}/v1/review-items); "
        "webhook mode: the URL to POST to, as given",
    )
    token: str | None = pydantic.Field(
        None, repr=False, description="sent as Authorization: Bearer <token>; required in review mode"
    )
    mode: Literal["review", "webhook"] = "review"
    headers: Headers = pydantic.Field(default={}, repr=False, description="extra request headers")
    tls: TlsClientConfig = TlsClientConfig()
    timeout: Timeout = 10.0
    max_items_per_request: int = pydantic.Field(100, ge=1, le=10_000, description="items per POST")
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    retry_on_failure: RetryConfig = RetryConfig()

    @pydantic.field_validator("token")
    @classmethod
    def _empty_token(cls, value: str | None) -> str | None:
        return value or None  # ${env:TOKEN:-} set to nothing: no token

    @pydantic.model_validator(mode="after")
    def _token(self) -> ReviewExporterConfig:
        # The token's value is never put in a message.
        if self.mode == "review" and self.token is None:
            raise ValueError(
                "token is required in review mode (the review service needs a token with the ingest role, "
                "e.g. token: ${env:SPANGUARD_REVIEW_TOKEN}); mode: webhook posts without one"
            )
        if self.token is not None and any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in self.token):
            raise ValueError("token must not contain spaces, line breaks or control characters")
        if self.token is not None and any(key.lower() == "authorization" for key in self.headers):
            raise ValueError("give either token or an Authorization header in headers, not both")
        return self

    @property
    def url(self) -> str:
        """Where items are POSTed."""
        if self.mode == "webhook":
            return self.endpoint
        base = self.endpoint.rstrip("/")
        return base if base.endswith(REVIEW_ITEMS_PATH) else base + REVIEW_ITEMS_PATH


# ---------------------------------------------------------------------------------------------------------------------
# Sender

_HINTS = {
    400: "the receiver refused the items",
    401: "the token was not accepted",
    403: "the token may not post items (it needs the ingest role)",
    404: "no such URL: check endpoint and mode",
    413: "the request is too large: lower max_items_per_request",
    422: "the receiver refused the items as invalid",
}


class ReviewSender:
    """Posts a batch's review items (:func:`review_items`) as ``{"items": [...]}``, ``max_items_per_request`` per POST.

    A batch without a trace for review sends nothing and succeeds. Failures are classified as for OTLP/HTTP
    (:func:`~spanguard.collector.retry.classify_http_status`): connection errors, timeouts, 429 and every 5xx are
    retryable (honouring ``Retry-After``); 400, 401, 403, 404, 413, 422 and every other 4xx are permanent: the
    exporter drops the batch and logs how many spans it lost, since posting the same items again would be refused
    again. A 500 is retried too, unlike OTLP: the review service's 500 is usually a passing database error.

    Sending stops at the first POST that fails, and the exporter retries the whole batch, so the items of POSTs that
    succeeded before are posted again. That is safe: the review service ingests idempotently by trace id (the same
    trace twice is one item; spans it has not seen yet are merged in), and a webhook receiver should do the same.

    Never logs span content, the token or the headers; messages name the HTTP status and a hint, not the response body
    (it may quote what was sent).
    """

    def __init__(self, config: ReviewExporterConfig) -> None:
        self._config = config
        self.url = config.url
        headers = {key: value for key, value in config.headers.items()}
        headers["Content-Type"] = "application/json"
        headers.setdefault("Accept", "application/json")
        if config.token is not None:
            headers["Authorization"] = f"Bearer {config.token}"
        self._headers = headers
        self._client: Any = None

    def start(self) -> None:
        import httpx

        self._httpx = httpx
        try:
            verify = client_ssl_context(self.url, self._config.tls)
        except OSError as error:  # ssl.SSLError is an OSError
            raise OSError(f"review: cannot load TLS files: {error}") from None
        self._client = httpx.Client(timeout=self._config.timeout, verify=verify, follow_redirects=False)
        logger.info("review: exporting to %s", safe_url(self.url))

    def send(self, payload: Payload) -> SendResult:
        client = self._client
        if client is None:
            raise SendError("HTTP client is closed", retryable=True)
        items, unknown = _convert(payload.request)
        if unknown:
            logger.warning(
                "review: %d trace(s) carry only unknown values of %s; they are not sent",
                unknown,
                SPANGUARD_REVIEW_TIER,
            )
        size = self._config.max_items_per_request
        for start in range(0, len(items), size):
            self._post(client, encode_items(items[start : start + size]))
        return SendResult()

    def _post(self, client: Any, body: bytes) -> None:
        httpx = self._httpx
        try:
            response = client.post(self.url, content=body, headers=self._headers)
        except httpx.TransportError as error:
            raise SendError(f"HTTP {type(error).__name__}: {error}", retryable=True) from None
        except RuntimeError as error:  # the client was closed under us (shutdown)
            raise SendError(f"HTTP client: {error}", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        error = classify_http_status(status, response.headers, _HINTS.get(status))
        if status >= 500 and not error.retryable:
            delay = parse_retry_after(response.headers.get("retry-after"))
            error = SendError(str(error), retryable=True, retry_after=delay)
        raise error

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

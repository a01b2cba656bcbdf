"""Review items (docs/review.md) from an export request: the traces tail sampling marked with
``spanguard.review.tier``, each with its spans as ``ReviewSpan`` JSON. Pure: no I/O, no logging."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanguard.processors.otlp import views_of
from spanguard.processors.view import EventView, SpanView
from spanguard.semconv import (
    SPANGUARD_REVIEW_TIER,
    SPANGUARD_RISK_REASONS,
    SPANGUARD_RISK_TIER,
    ReviewTier,
    RiskTier,
)

__all__ = [
    "convert_request",
    "encode_items",
    "json_value",
    "review_items",
    "review_span",
]

_REVIEW_TIERS = ReviewTier.values()
"""Review tiers, least demanding first: a trace whose spans disagree goes to the most demanding one."""
_RISK_TIERS = RiskTier.values()
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


def convert_request(request: ExportTraceServiceRequest) -> tuple[list[dict[str, Any]], int]:
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
        risk_tier = (
            _ranked([view.attributes.get(SPANGUARD_RISK_TIER) for view in views], _RISK_TIERS) or RiskTier.GREEN.value
        )
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
    return convert_request(request)[0]


def encode_items(items: Sequence[dict[str, Any]]) -> bytes:
    """The request body for ``items``: ``{"items": [...]}`` as compact UTF-8 JSON."""
    return json.dumps({"items": list(items)}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

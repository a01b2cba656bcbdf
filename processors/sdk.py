"""Adapter between the OTel SDK's ``ReadableSpan`` and :class:`SpanView` (the in-process path).

Spans are read-only once ended, so a processor that changes one gets a new ``ReadableSpan`` built by
:func:`rebuild`, with the original's context, parent, links, kind, status, times and scope.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from spanguard.processors.view import EventView, SpanView, span_id_hex, trace_id_hex


def to_view(span: ReadableSpan) -> SpanView:
    """A plain view of an SDK span (attribute maps are copied, so the view can be changed freely)."""
    context = span.context
    parent = span.parent
    return SpanView(
        trace_id=trace_id_hex(context.trace_id) if context else "0" * 32,
        span_id=span_id_hex(context.span_id) if context else "0" * 16,
        parent_span_id=span_id_hex(parent.span_id) if parent else None,
        name=span.name,
        kind=span.kind.name,  # type: ignore[arg-type]
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or 0,
        status_code=span.status.status_code.name,  # type: ignore[arg-type]
        status_message=span.status.description or "",
        attributes=dict(span.attributes or {}),
        events=[EventView(e.name, e.timestamp or 0, dict(e.attributes or {})) for e in span.events],
        resource=dict(span.resource.attributes) if span.resource else {},
        scope=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


def rebuild(
    span: ReadableSpan,
    *,
    attributes: dict[str, Any] | None = None,
    events: list[EventView] | None = None,
    resource: dict[str, Any] | None = None,
) -> ReadableSpan:
    """A copy of ``span`` with new attributes, events and/or resource attributes; the rest is unchanged."""
    new_events = (
        span.events
        if events is None
        else tuple(Event(e.name, attributes=e.attributes, timestamp=e.time_unix_nano) for e in events)
    )
    new_resource = span.resource
    if resource is not None:
        new_resource = Resource(resource, span.resource.schema_url if span.resource else "")
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=new_resource,
        attributes=span.attributes if attributes is None else attributes,
        events=new_events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )

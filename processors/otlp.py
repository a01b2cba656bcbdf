"""Adapter between OTLP protobuf spans and :class:`SpanView` (the collector path).

The collector owns the protobuf messages it received, so changes are written back in place with
:func:`write_attributes` / :func:`write_events`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status
from spanguard.processors.view import EventView, SpanView

_KINDS = {
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUS = {Status.STATUS_CODE_UNSET: "UNSET", Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}


def from_any(value: AnyValue) -> Any:
    """A protobuf ``AnyValue`` as a plain value (arrays become tuples, bytes stay bytes)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(from_any(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: from_any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def to_any(value: Any) -> AnyValue:
    """A plain attribute value as a protobuf ``AnyValue``."""
    result = AnyValue()
    if isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int):
        result.int_value = value
    elif isinstance(value, float):
        result.double_value = value
    elif isinstance(value, str):
        result.string_value = value
    elif isinstance(value, bytes):
        result.bytes_value = value
    elif isinstance(value, Mapping):
        result.kvlist_value.values.extend(KeyValue(key=str(k), value=to_any(v)) for k, v in value.items())
    elif isinstance(value, Sequence):
        result.array_value.values.extend(to_any(item) for item in value)
    else:
        result.string_value = str(value)
    return result


def attributes_of(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    """Protobuf key-values as a dict."""
    return {kv.key: from_any(kv.value) for kv in pairs}


def write_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    """Replace the ``attributes`` field of a protobuf span, event or resource."""
    del target.attributes[:]
    target.attributes.extend(KeyValue(key=key, value=to_any(value)) for key, value in attributes.items())


def write_events(span: Span, events: Sequence[EventView]) -> None:
    """Replace a protobuf span's events with the given views."""
    del span.events[:]
    for event in events:
        proto = span.events.add(name=event.name, time_unix_nano=event.time_unix_nano)
        proto.attributes.extend(KeyValue(key=k, value=to_any(v)) for k, v in event.attributes.items())


def to_view(span: Span, resource: dict[str, Any], scope: str) -> SpanView:
    """A plain view of a protobuf span, given its resource attributes (shared, not copied) and scope name."""
    return SpanView(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=_KINDS.get(span.kind, "INTERNAL"),  # type: ignore[arg-type]
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        status_code=_STATUS.get(span.status.code, "UNSET"),  # type: ignore[arg-type]
        status_message=span.status.message,
        attributes=attributes_of(span.attributes),
        events=[EventView(e.name, e.time_unix_nano, attributes_of(e.attributes)) for e in span.events],
        resource=resource,  # shared by the views of one resource: views are never changed in place
        scope=scope,
    )


def iter_spans(resource_spans: Sequence[ResourceSpans]) -> Iterator[tuple[ResourceSpans, Any, Span]]:
    """Every (resource spans, scope spans, span) triple of an export request's ``resource_spans``."""
    for resource in resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                yield resource, scope, span


class ProtoSource(NamedTuple):
    """Where a view came from: its protobufs, and its attributes as read (to write back only what changed)."""

    resource: ResourceSpans
    scope: Any
    span: Span
    attributes: dict[str, Any]


def views_of(resource_spans: Sequence[ResourceSpans]) -> list[SpanView]:
    """Views of every span of an export request; each view's ``source`` is a :class:`ProtoSource`."""
    views: list[SpanView] = []
    for resource in resource_spans:
        resource_attributes = attributes_of(resource.resource.attributes)
        for scope in resource.scope_spans:
            for span in scope.spans:
                view = to_view(span, resource_attributes, scope.scope.name)
                view.source = ProtoSource(resource, scope, span, view.attributes)
                views.append(view)
    return views


_MISSING = object()


def _key_value(key: str, value: Any, cache: dict[Any, KeyValue] | None) -> KeyValue:
    if cache is None:
        return KeyValue(key=key, value=to_any(value))
    try:
        return cache[(key, value)]
    except KeyError:
        built = cache[(key, value)] = KeyValue(key=key, value=to_any(value))
        return built
    except TypeError:  # an unhashable value
        return KeyValue(key=key, value=to_any(value))


def _write_changed_attributes(
    span: Span, original: dict[str, Any], attributes: dict[str, Any], cache: dict[Any, KeyValue] | None = None
) -> None:
    if attributes is original:
        return
    get = attributes.get
    for key, value in original.items():
        new = get(key, _MISSING)
        if new is not value and new != value:
            write_attributes(span, attributes)
            return
    # Only additions (the common case: risk and sampling annotations, the same for every span of a trace): append
    # them, building each distinct key-value once per call site's cache.
    if len(attributes) > len(original):
        span.attributes.extend(
            _key_value(key, value, cache) for key, value in attributes.items() if key not in original
        )


def write_back(view: SpanView) -> None:
    """Write a changed view's attributes and events into its own protobuf span, in place."""
    source = view.source
    span = source.span
    _write_changed_attributes(span, source.attributes, view.attributes)
    write_events(span, view.events)
    span.status.message = view.status_message
    if span.name != view.name:
        span.name = view.name


class Regrouping:
    """New ``ResourceSpans`` that take copies of spans, each under a copy of its original resource and scope."""

    def __init__(self) -> None:
        self._groups: dict[int, tuple[ResourceSpans, dict[int, Any]]] = {}

    def add(
        self, resource: ResourceSpans, scope: Any, span: Span, view_resource: Mapping[str, Any] | None = None
    ) -> Span:
        """Copy ``span`` in (under its resource and scope); the copy is returned. ``view_resource``: the resource's
        attributes as a view has them, written into the resource's copy when they differ from the original's."""
        entry = self._groups.get(id(resource))
        if entry is None:
            target = ResourceSpans(schema_url=resource.schema_url)
            target.resource.CopyFrom(resource.resource)
            if view_resource is not None and attributes_of(resource.resource.attributes) != view_resource:
                write_attributes(target.resource, view_resource)
            entry = self._groups[id(resource)] = (target, {})
        target, scopes = entry
        target_scope = scopes.get(id(scope))
        if target_scope is None:
            target_scope = scopes[id(scope)] = target.scope_spans.add(schema_url=scope.schema_url)
            target_scope.scope.CopyFrom(scope.scope)
        copy = target_scope.spans.add()
        copy.CopyFrom(span)
        return copy

    def result(self) -> list[ResourceSpans]:
        """The new ``ResourceSpans``, in the order their first span was added."""
        return [target for target, _ in self._groups.values()]


def regroup(views: Sequence[SpanView]) -> list[ResourceSpans]:
    """New ``ResourceSpans`` holding the given views, grouped under copies of their original resource and scope."""
    regrouping = Regrouping()
    cache: dict[Any, KeyValue] = {}
    for view in views:
        resource, scope, span, original = view.source
        new_span = regrouping.add(resource, scope, span, view.resource)
        _write_changed_attributes(new_span, original, view.attributes, cache)
        if view.events or span.events:
            write_events(new_span, view.events)
        new_span.status.message = view.status_message
        if new_span.name != view.name:
            new_span.name = view.name
    return regrouping.result()


def chunked(resource_spans: Sequence[ResourceSpans], max_spans: int) -> list[list[ResourceSpans]]:
    """An export request's spans in pieces of at most ``max_spans``, each under copies of its resource and scope."""
    pieces: list[list[ResourceSpans]] = []
    piece, count = Regrouping(), 0
    for resource, scope, span in iter_spans(resource_spans):
        if count == max_spans:
            pieces.append(piece.result())
            piece, count = Regrouping(), 0
        piece.add(resource, scope, span)
        count += 1
    if count:
        pieces.append(piece.result())
    return pieces


def redact_resource_spans(
    resource_spans: Sequence[ResourceSpans], redactor: Any, views_out: list[SpanView] | None = None
) -> int:
    """Redact every span of an export request in place (batched); returns how many spans changed.

    ``views_out``, when given, receives a view of every span as it now is (redacted), for the next stage.
    """
    views = views_of(resource_spans)
    redacted = redactor.redact_spans(views)
    changed = 0
    resources_done: set[int] = set()
    for original, view in zip(views, redacted, strict=True):
        resource = original.source.resource
        if view is original:
            pass  # nothing needed redacting
        elif (
            view.attributes != original.attributes
            or view.events != original.events
            or view.status_message != original.status_message
            or view.name != original.name
        ):
            view.source = original.source
            write_back(view)
            view.source = original.source._replace(attributes=view.attributes)
            changed += 1
        else:
            view = original
        if id(resource) not in resources_done and view.resource != original.resource:
            write_attributes(resource.resource, view.resource)
            resources_done.add(id(resource))
        if views_out is not None:
            views_out.append(view)
    return changed

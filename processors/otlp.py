"""Adapter between OTLP protobuf spans and :class:`SpanView` (the collector path).

The collector owns the protobuf messages it received, so changes are written back in place with
:func:`write_attributes` / :func:`write_events`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Final, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from spanguard.collector.signals import METRICS, TRACES, Signal, data_points
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


def read_any(value: AnyValue) -> tuple[Any, bool]:
    """:func:`from_any` and :func:`repeats_a_key` in one pass: the plain value, and whether a key repeats in it."""
    repeated = [False]
    return _read_any(value, repeated), repeated[0]


def _read_any(value: AnyValue, repeated: list[bool]) -> Any:
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        pairs = value.kvlist_value.values
        out = {kv.key: _read_any(kv.value, repeated) for kv in pairs}
        if len(out) != len(pairs):
            repeated[0] = True
        return out
    if kind == "array_value":
        return tuple(_read_any(item, repeated) for item in value.array_value.values)
    return None if kind is None else getattr(value, kind)


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


_SCALARS: Final = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})


def attributes_of(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    """Protobuf key-values as a dict."""
    return read_attributes(pairs)[0]


def read_attributes(pairs: Sequence[KeyValue]) -> tuple[dict[str, Any], bool]:
    """Protobuf key-values as a dict, and whether a key repeats (at the top or in a nested key-value list)."""
    out: dict[str, Any] = {}
    nested_repeat = False
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        # Scalars read in place: a call of from_any per attribute is a good part of reading a span.
        if kind in _SCALARS:
            out[kv.key] = getattr(value, kind)
        else:
            out[kv.key], repeated = read_any(value)
            nested_repeat = nested_repeat or repeated
    return out, nested_repeat or len(out) != len(pairs)


def repeats_a_key(value: AnyValue) -> bool:
    """Whether a key repeats in a value's key-value lists, at any depth."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        pairs = value.kvlist_value.values
        return len({kv.key for kv in pairs}) != len(pairs) or any(repeats_a_key(kv.value) for kv in pairs)
    if kind == "array_value":
        return any(repeats_a_key(item) for item in value.array_value.values)
    return False


def owned_attributes_of(target: Any) -> dict[str, Any]:
    """The ``attributes`` of a protobuf span, event or resource as a dict, the protobuf made to hold exactly that.

    OTLP keys must be unique, but nothing on the wire enforces it: where a key repeats (in the list, or in a nested
    key-value list), the dict keeps the last value and the protobuf is rewritten to match, so no value is sent on
    that no processor saw (redaction included).
    """
    attributes, repeats = read_attributes(target.attributes)
    if repeats:
        write_attributes(target, attributes)
    return attributes


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
    status = span.status
    events = span.events
    return SpanView(
        span.trace_id.hex(),
        span.span_id.hex(),
        span.name,
        span.parent_span_id.hex() or None,
        _KINDS.get(span.kind, "INTERNAL"),  # type: ignore[arg-type]
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        _STATUS.get(status.code, "UNSET"),  # type: ignore[arg-type]
        status.message,
        owned_attributes_of(span),
        [EventView(e.name, e.time_unix_nano, owned_attributes_of(e)) for e in events] if events else [],
        resource,  # shared by the views of one resource: views are never changed in place
        scope,
    )


def iter_spans(resource_spans: Sequence[ResourceSpans]) -> Iterator[tuple[ResourceSpans, Any, Span]]:
    """Every (resource spans, scope spans, span) triple of an export request's ``resource_spans``."""
    for resource in resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                yield resource, scope, span


class ProtoSource(NamedTuple):
    """Where a view came from: its protobufs, and its attributes and events as read (to write only what changed)."""

    resource: ResourceSpans
    scope: Any
    span: Span
    attributes: dict[str, Any]
    events: list[EventView] | None = None
    name: str | None = None
    status_message: str | None = None


def views_of(resource_spans: Sequence[ResourceSpans]) -> list[SpanView]:
    """Views of every span of an export request; each view's ``source`` is a :class:`ProtoSource`."""
    views: list[SpanView] = []
    for resource in resource_spans:
        resource_attributes = owned_attributes_of(resource.resource)
        for scope in resource.scope_spans:
            for span in scope.spans:
                view = to_view(span, resource_attributes, scope.scope.name)
                view.source = ProtoSource(
                    resource, scope, span, view.attributes, view.events, view.name, view.status_message
                )
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
    changed: dict[str, Any] = {}
    for key, value in original.items():
        new = get(key, _MISSING)
        if new is _MISSING:
            write_attributes(span, attributes)  # a key removed: the list is rebuilt
            return
        if new is not value and new != value:
            changed[key] = new
    if changed:
        # Redaction changes a value or two of a span: those key-values are rewritten in place, the rest kept as read.
        for pair in span.attributes:
            new = changed.get(pair.key, _MISSING)
            if new is not _MISSING:
                pair.value.CopyFrom(to_any(new))
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
        source = view.source
        _apply(view, regrouping.add(source.resource, source.scope, source.span, view.resource), cache)
    return regrouping.result()


def _apply(view: SpanView, copy: Span, cache: dict[Any, KeyValue]) -> None:
    """Make ``copy`` (of the view's protobuf span) say what the view says."""
    source = view.source
    _write_changed_attributes(copy, source.attributes, view.attributes, cache)
    if view.events or source.span.events:
        write_events(copy, view.events)
    copy.status.message = view.status_message
    if copy.name != view.name:
        copy.name = view.name


# The wire format of the messages encode_views writes (field number << 3 | 2: length-delimited), after
# opentelemetry/proto/collector/trace/v1/trace_service.proto and opentelemetry/proto/trace/v1/trace.proto.
_REQUEST_RESOURCE_SPANS: Final = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1
_RESOURCE: Final = b"\x0a"  # ResourceSpans.resource = 1
_SCOPE_SPANS: Final = b"\x12"  # ResourceSpans.scope_spans = 2
_SCOPE: Final = b"\x0a"  # ScopeSpans.scope = 1
_SPANS: Final = b"\x12"  # ScopeSpans.spans = 2
_SCHEMA_URL: Final = b"\x1a"  # ResourceSpans.schema_url = 3, ScopeSpans.schema_url = 3
_SPAN_ATTRIBUTE: Final = b"\x4a"  # Span.attributes = 9
_EMPTY_STATUS: Final = b"\x7a\x00"  # Span.status = 15, present and empty (what assigning status.message leaves)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class _AttributeFields:
    """Serialized ``Span.attributes`` entries, built once per distinct key and value in one :func:`encode_views`."""

    __slots__ = ("_by_id", "_by_value")

    def __init__(self) -> None:
        self._by_id: dict[tuple[str, int], tuple[Any, bytes]] = {}
        self._by_value: dict[tuple[str, Any], bytes] = {}

    def get(self, key: str, value: Any) -> bytes:
        """The field for ``key`` and ``value``."""
        # By the value's identity first: the spans of a trace share the annotations' objects, and hashing a tuple of
        # reasons per span costs more than this lookup (the entry keeps the value, so its id is not reused meanwhile);
        # then by value, so that traces with equal annotations build each key-value once.
        entry = self._by_id.get((key, id(value)))
        if entry is not None and entry[0] is value:
            return entry[1]
        try:
            data = self._by_value.get((key, value))
        except TypeError:  # an unhashable value
            data = None
        if data is None:
            data = _field(_SPAN_ATTRIBUTE, KeyValue(key=key, value=to_any(value)).SerializeToString())
            try:
                self._by_value[(key, value)] = data
            except TypeError:
                pass
        self._by_id[(key, id(value))] = (value, data)
        return data


def _as_read(view: SpanView, source: ProtoSource) -> bool:
    """Whether the view's name, status message and events are those its protobuf span holds."""
    if source.name is None:  # a source that did not record them: ask the protobuf
        span = source.span
        return (
            (view.events is source.events or (not view.events and not span.events))
            and view.name == span.name
            and view.status_message == span.status.message
        )
    return view.events is source.events and view.name == source.name and view.status_message == source.status_message


def _span_pieces(view: SpanView, fields: _AttributeFields, kvs: dict[Any, KeyValue]) -> list[bytes]:
    """The serialized span :func:`regroup` would make of ``view``, in pieces: its protobuf's bytes and the attributes
    the view added (entries of a repeated field may follow the message: parsing appends them), or a changed copy's."""
    source = view.source
    attributes, original = view.attributes, source.attributes
    # Every original pair still there (identity or equality, as in _write_changed_attributes), the rest as read.
    if (attributes is original or original.items() <= attributes.items()) and _as_read(view, source):
        pieces = [source.span.SerializeToString()]
        extra = len(attributes) - len(original)
        if extra > 0:
            # Annotations come last ({**original, ...}): when the last ``extra`` keys are new, they are all the new
            # ones (every original key is there), in order.
            added = list(islice(reversed(attributes.items()), extra))
            if any(key in original for key, _ in added):
                added = [(key, value) for key, value in attributes.items() if key not in original]
            else:
                added.reverse()
            pieces.extend([fields.get(key, value) for key, value in added])
        # An empty status merges into a present one unchanged and makes an absent one present, as regroup's
        # assignment of status.message does.
        pieces.append(_EMPTY_STATUS)
        return pieces
    copy = Span()
    copy.CopyFrom(source.span)
    _apply(view, copy, kvs)
    return [copy.SerializeToString()]


class _Scope:
    """A scope's spans on their way into a serialized request: their framed pieces and how many bytes they make."""

    __slots__ = ("pieces", "scope", "size")

    def __init__(self, scope: Any) -> None:
        self.scope = scope
        self.pieces: list[bytes] = []
        self.size = 0

    def add(self, pieces: list[bytes]) -> None:
        """Add one span, serialized in ``pieces``."""
        size = sum(map(len, pieces))
        head = _SPANS + _varint(size)
        self.pieces.append(head)
        self.pieces.extend(pieces)
        self.size += len(head) + size


def _resource_spans_bytes(resource: ResourceSpans, proto: Any, scopes: Iterable[_Scope], out: list[bytes]) -> None:
    """Append one framed ``ResourceSpans`` to ``out``: ``proto`` (its resource), then its scopes, as regroup's copy."""
    body = [_field(_RESOURCE, proto.SerializeToString())]
    size = len(body[0])
    for entry in scopes:
        scope = entry.scope
        scope_field = _field(_SCOPE, scope.scope.SerializeToString())
        schema = _field(_SCHEMA_URL, scope.schema_url.encode()) if scope.schema_url else b""
        scope_size = len(scope_field) + entry.size + len(schema)
        head = _SCOPE_SPANS + _varint(scope_size)
        body.append(head)
        body.append(scope_field)
        body.extend(entry.pieces)
        body.append(schema)
        size += len(head) + scope_size
    if resource.schema_url:
        body.append(_field(_SCHEMA_URL, resource.schema_url.encode()))
        size += len(body[-1])
    out.append(_REQUEST_RESOURCE_SPANS + _varint(size))
    out.extend(body)


def encode_views(views: Sequence[SpanView]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``regroup(views)``, without building its protobufs: a span
    the view has not changed (beyond added attributes) is its protobuf's bytes (the tail sampler's kept traces).
    The pieces are joined once, their lengths written ahead of them."""
    groups: dict[int, tuple[ResourceSpans, Mapping[str, Any], dict[int, _Scope]]] = {}
    fields = _AttributeFields()
    kvs: dict[Any, KeyValue] = {}
    for view in views:
        source = view.source
        resource, scope = source.resource, source.scope
        group = groups.get(id(resource))
        if group is None:
            group = groups[id(resource)] = (resource, view.resource, {})
        entry = group[2].get(id(scope))
        if entry is None:
            entry = group[2][id(scope)] = _Scope(scope)
        entry.add(_span_pieces(view, fields, kvs))
    out: list[bytes] = []
    for resource, view_resource, scopes in groups.values():
        proto = resource.resource
        if view_resource is not None and attributes_of(proto.attributes) != view_resource:
            changed = Resource()
            changed.CopyFrom(proto)
            write_attributes(changed, view_resource)
            proto = changed
        _resource_spans_bytes(resource, proto, scopes.values(), out)
    return b"".join(out)


def encode_parts(resource_spans: Sequence[ResourceSpans], part_of: Callable[[Span], int], parts: int) -> list[bytes]:
    """The spans of a request as ``parts`` serialized requests (span by span, ``part_of(span)`` says which), each
    span under its resource and scope: what a :class:`Regrouping` per part serializes to, made of each span's bytes
    (b"" for a part without spans)."""
    out: list[list[bytes]] = [[] for _ in range(parts)]
    for resource in resource_spans:
        scopes: list[dict[int, _Scope]] = [{} for _ in range(parts)]
        for scope in resource.scope_spans:
            for span in scope.spans:
                mine = scopes[part_of(span)]
                entry = mine.get(id(scope))
                if entry is None:
                    entry = mine[id(scope)] = _Scope(scope)
                entry.add([span.SerializeToString()])
        for index, mine in enumerate(scopes):
            if mine:
                _resource_spans_bytes(resource, resource.resource, mine.values(), out[index])
    return [b"".join(pieces) for pieces in out]


def chunked(resource_spans: Sequence[Any], max_spans: int, signal: Signal = TRACES) -> list[list[Any]]:
    """An export request's items in pieces of at most ``max_spans`` (spans, log records, or data points: a metric is
    not split, so one with more points is a piece of its own), each under copies of its resource and scope."""
    if signal is not TRACES:
        return _chunked_items(resource_spans, max_spans, signal)
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


def _chunked_items(resources: Sequence[Any], max_items: int, signal: Signal) -> list[list[Any]]:
    pieces: list[list[Any]] = []
    piece: dict[int, tuple[Any, dict[int, Any]]] = {}
    count = 0
    for resource in resources:
        for scope in getattr(resource, signal.scopes_field):
            for item in getattr(scope, signal.items_field):
                cost = data_points(item) if signal is METRICS else 1
                if count and count + cost > max_items:
                    pieces.append([target for target, _ in piece.values()])
                    piece, count = {}, 0
                entry = piece.get(id(resource))
                if entry is None:
                    target = type(resource)(schema_url=resource.schema_url)
                    target.resource.CopyFrom(resource.resource)
                    entry = piece[id(resource)] = (target, {})
                target_scope = entry[1].get(id(scope))
                if target_scope is None:
                    target_scope = entry[1][id(scope)] = getattr(entry[0], signal.scopes_field).add(
                        schema_url=scope.schema_url
                    )
                    target_scope.scope.CopyFrom(scope.scope)
                getattr(target_scope, signal.items_field).add().CopyFrom(item)
                count += cost
    if count:
        pieces.append([target for target, _ in piece.values()])
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
    scopes_done: set[int] = set()
    for original, view in zip(views, redacted, strict=True):
        source = original.source
        resource = source.resource
        # What a view does not hold: the scope's attributes, the links' attributes and the trace states.
        if id(source.scope) not in scopes_done:
            scopes_done.add(id(source.scope))
            if source.scope.scope.attributes:
                _redact_attributes_in_place(source.scope.scope, redactor)
        span = source.span
        if span.links or span.trace_state:
            _redact_links_and_state(span, redactor)
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
            view.source = original.source._replace(
                attributes=view.attributes, events=view.events, name=view.name, status_message=view.status_message
            )
            changed += 1
        else:
            view = original
        if id(resource) not in resources_done and view.resource != original.resource:
            write_attributes(resource.resource, view.resource)
            resources_done.add(id(resource))
        if views_out is not None:
            views_out.append(view)
    return changed


def _redact_attributes_in_place(target: Any, redactor: Any) -> None:
    """Redact the attributes of a protobuf scope or link (parts of a span no view holds), writing only on change."""
    result = redactor.redact_attributes(owned_attributes_of(target))
    if result.count:
        write_attributes(target, result.attributes)


def _redact_links_and_state(span: Span, redactor: Any) -> None:
    """Redact a span's links' attributes and the trace states of the span and its links (W3C ``tracestate`` is free
    text to a client: a vendor value may hold an id)."""
    for link in span.links:
        if link.attributes:
            _redact_attributes_in_place(link, redactor)
        if link.trace_state:
            link.trace_state = redactor.redact_text(link.trace_state).text
    if span.trace_state:
        span.trace_state = redactor.redact_text(span.trace_state).text

"""The OTLP adapter for log records and metrics: redaction of ``ResourceLogs`` and ``ResourceMetrics`` in place.

A log record goes through the same redactor as a span: its attributes, its body (a string, or a map or list of
values, as the GenAI content events have it), its event name and its resource; metrics carry no content, so only
their resource, scope and data-point attributes are redacted. Behaviour: docs/redaction.md ("Logs and metrics").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spanguard.processors.otlp import owned_attributes_of, read_any, read_attributes, to_any, write_attributes
from spanguard.processors.view import SpanView

__all__ = ["CleanValues", "redact_resource_logs", "redact_resource_metrics"]

_BODY: Final = "\x00log.body"
"""Where a record's body sits among its attributes while it is redacted (a key no record can have: OTLP keys are
text a client writes, and none starts with NUL); never written out."""


class CleanValues:
    """Structured values (an attribute's key and its serialized ``AnyValue``) that redaction left as they were: an
    LRU bounded in entries and bytes, so a record repeating one (tool definitions, a system prompt's messages) is not
    read again."""

    def __init__(
        self, max_entries: int = 65_536, max_value_bytes: int = 65_536, max_total_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self._entries: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._max_entries = max_entries
        self._max_value_bytes = max_value_bytes
        self._max_total_bytes = max_total_bytes
        self._total_bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, bytes]) -> bool:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            return False

    def add(self, key: tuple[str, bytes]) -> None:
        """Remember a value redaction left unchanged (too large values are not kept)."""
        if len(key[1]) > self._max_value_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = None
            self._total_bytes += len(key[1])
            while len(self._entries) > self._max_entries or self._total_bytes > self._max_total_bytes:
                old, _ = self._entries.popitem(last=False)
                self._total_bytes -= len(old[1])


def _read_record(record: Any, clean: CleanValues | None) -> tuple[dict[str, Any], dict[str, bytes], set[str]]:
    """A record's attributes to judge, the serialized structured ones among them, and the keys left out because
    they are known clean (all read, and the record rewritten to hold exactly them, when a key repeats)."""
    pairs = record.attributes
    if clean is None or len({kv.key for kv in pairs}) != len(pairs):
        return owned_attributes_of(record), {}, set()
    attributes: dict[str, Any] = {}
    structured: dict[str, bytes] = {}
    skipped: set[str] = set()
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind not in ("kvlist_value", "array_value"):
            attributes[kv.key] = None if kind is None else getattr(value, kind)
            continue
        data = value.SerializeToString()
        if (kv.key, data) in clean:
            skipped.add(kv.key)
            continue
        attributes[kv.key], repeated = read_any(value)
        if repeated:  # a nested key repeats: read everything the usual way, which rewrites the record
            return owned_attributes_of(record), {}, set()
        structured[kv.key] = data
    return attributes, structured, skipped


def _write_record_attributes(record: Any, attributes: dict[str, Any], skipped: set[str]) -> None:
    """Replace a record's attributes with ``attributes``, keeping the known-clean ones as they are, in place."""
    kept = [KeyValue(key=kv.key, value=kv.value) for kv in record.attributes if kv.key in skipped]
    del record.attributes[:]
    record.attributes.extend(kept)
    record.attributes.extend(KeyValue(key=key, value=to_any(value)) for key, value in attributes.items())


def redact_resource_logs(resource_logs: Sequence[Any], redactor: Any, clean: CleanValues | None = None) -> int:
    """Redact every log record of an export request in place (one batched call); returns how many records changed.

    ``clean``: structured values known to come out unchanged, skipped (and added to as values are judged).
    """
    views: list[SpanView] = []
    sources: list[tuple[Any, Any, dict[str, bytes], set[str]]] = []
    resources: dict[int, dict[str, Any]] = {}
    for resource in resource_logs:
        resource_attributes = resources[id(resource)] = owned_attributes_of(resource.resource)
        for scope in resource.scope_logs:
            if scope.scope.attributes:
                _redact_in_place(scope.scope, redactor)
            for record in scope.log_records:
                attributes, structured, skipped = _read_record(record, clean)
                if record.HasField("body"):
                    body, repeated = read_any(record.body)
                    attributes[_BODY] = body
                    if repeated:  # as for attributes: what goes on is what was judged
                        record.body.CopyFrom(to_any(body))
                views.append(
                    SpanView(
                        record.trace_id.hex() or "0" * 32,
                        record.span_id.hex() or "0" * 16,
                        record.event_name,
                        attributes=attributes,
                        resource=resource_attributes,
                        scope=scope.scope.name,
                        source=record,
                    )
                )
                sources.append((resource, record, structured, skipped))
    if not views:
        return 0
    redacted = redactor.redact_spans(views)
    changed = 0
    written: set[int] = set()
    for (resource, record, structured, skipped), original, view in zip(sources, views, redacted, strict=True):
        if clean is not None:
            for key, data in structured.items():
                if view.attributes.get(key, _MISSING) == original.attributes[key]:
                    clean.add((key, data))
        if view is original:
            continue
        if id(resource) not in written and view.resource != original.resource:
            written.add(id(resource))
            write_attributes(resource.resource, view.resource)
        attributes = dict(view.attributes)
        body = attributes.pop(_BODY, _MISSING)
        if attributes != {k: v for k, v in original.attributes.items() if k != _BODY}:
            _write_record_attributes(record, attributes, skipped)
        if body is not _MISSING and body != original.attributes.get(_BODY, _MISSING):
            record.body.CopyFrom(to_any(body))
        elif body is _MISSING and _BODY in original.attributes:
            record.ClearField("body")  # dropped by a rule: the value goes, never the original
        if view.name != original.name:
            record.event_name = view.name
        changed += 1
    return changed


def redact_resource_metrics(resource_metrics: Sequence[Any], redactor: Any) -> int:
    """Redact the resources, scopes and data-point attributes of an export request's metrics in place; returns how
    many attribute maps changed."""
    changed = 0
    for resource in resource_metrics:
        changed += _redact_in_place(resource.resource, redactor)
        for scope in resource.scope_metrics:
            if scope.scope.attributes:
                changed += _redact_in_place(scope.scope, redactor)
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                for point in getattr(metric, kind).data_points:
                    if point.attributes:
                        changed += _redact_in_place(point, redactor)
                    for exemplar in getattr(point, "exemplars", ()):
                        if exemplar.filtered_attributes:
                            changed += _redact_in_place(exemplar, redactor, "filtered_attributes")
    return changed


def _redact_in_place(target: Any, redactor: Any, field: str = "attributes") -> int:
    """Redact a repeated ``KeyValue`` field of a protobuf (``attributes``, an exemplar's ``filtered_attributes``),
    rewriting it when a key repeats (the last value is the one judged) or a value changed; 1 if one changed."""
    pairs = getattr(target, field)
    attributes, repeats = read_attributes(pairs)
    result = redactor.redact_attributes(attributes)
    if result.count or repeats:
        del pairs[:]
        pairs.extend(KeyValue(key=key, value=to_any(value)) for key, value in result.attributes.items())
    return 1 if result.count else 0


class _Missing:
    pass


_MISSING: Final = _Missing()

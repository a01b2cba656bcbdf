"""The OTLP adapter for log records and metrics: redaction of ``ResourceLogs`` and ``ResourceMetrics`` in place.

A log record goes through the same redactor as a span: its attributes, its body (a string, or a map or list of
values, as the GenAI content events have it), its event name and its resource; metrics carry no content, so only
their resource, scope and data-point attributes are redacted. Behaviour: docs/redaction.md ("Logs and metrics").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spanguard.processors.otlp import (
    from_any,
    owned_attributes_of,
    read_attributes,
    repeats_a_key,
    to_any,
    write_attributes,
)
from spanguard.processors.view import SpanView

__all__ = ["redact_resource_logs", "redact_resource_metrics"]

_BODY: Final = "\x00log.body"
"""Where a record's body sits among its attributes while it is redacted (a key no record can have: OTLP keys are
text a client writes, and none starts with NUL); never written out."""


def redact_resource_logs(resource_logs: Sequence[Any], redactor: Any) -> int:
    """Redact every log record of an export request in place (one batched call); returns how many records changed."""
    views: list[SpanView] = []
    sources: list[tuple[Any, Any]] = []
    resources: dict[int, dict[str, Any]] = {}
    for resource in resource_logs:
        resource_attributes = resources[id(resource)] = owned_attributes_of(resource.resource)
        for scope in resource.scope_logs:
            if scope.scope.attributes:
                _redact_in_place(scope.scope, redactor)
            for record in scope.log_records:
                attributes = owned_attributes_of(record)
                if record.HasField("body"):
                    body = attributes[_BODY] = from_any(record.body)
                    if repeats_a_key(record.body):  # as for attributes: what goes on is what was judged
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
                sources.append((resource, record))
    if not views:
        return 0
    redacted = redactor.redact_spans(views)
    changed = 0
    written: set[int] = set()
    for (resource, record), original, view in zip(sources, views, redacted, strict=True):
        if view is original:
            continue
        if id(resource) not in written and view.resource != original.resource:
            written.add(id(resource))
            write_attributes(resource.resource, view.resource)
        attributes = dict(view.attributes)
        body = attributes.pop(_BODY, _MISSING)
        if attributes != {k: v for k, v in original.attributes.items() if k != _BODY}:
            write_attributes(record, attributes)
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

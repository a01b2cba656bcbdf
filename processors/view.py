"""The small, plain span view every processor works on, independent of the OTel SDK and of protobuf.

Adapters turn SDK ``ReadableSpan`` objects (in-process, ``processors/sdk.py``) and OTLP protobuf spans (the
collector, ``processors/otlp.py``) into :class:`SpanView` and back, so each processor is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StatusCode = Literal["UNSET", "OK", "ERROR"]
SpanKindName = Literal["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
Attributes = dict[str, Any]
"""Attribute values are str, bool, int, float or tuples of one of those."""


@dataclass(slots=True)
class EventView:
    """A span event: its name, time and attributes."""

    name: str
    time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class SpanView:
    """One span as plain values; ids are lower-case hex (32 digits for traces, 16 for spans)."""

    trace_id: str
    span_id: str
    name: str
    parent_span_id: str | None = None
    kind: SpanKindName = "INTERNAL"
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    status_code: StatusCode = "UNSET"
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    events: list[EventView] = field(default_factory=list)
    resource: Attributes = field(default_factory=dict)
    scope: str = ""
    source: Any = field(default=None, compare=False, repr=False)
    """The adapter's original span (SDK ``ReadableSpan`` or protobuf ``Span``), for rebuilding it with changes."""

    @property
    def is_root(self) -> bool:
        """Whether the span has no parent (within its trace, as far as this process knows)."""
        return not self.parent_span_id


def with_attributes(view: SpanView, attributes: Attributes) -> SpanView:
    """A copy of ``view`` with other attributes, sharing everything else (``dataclasses.replace`` costs 3x more)."""
    return SpanView(
        view.trace_id,
        view.span_id,
        view.name,
        view.parent_span_id,
        view.kind,
        view.start_time_unix_nano,
        view.end_time_unix_nano,
        view.status_code,
        view.status_message,
        attributes,
        view.events,
        view.resource,
        view.scope,
        view.source,
    )


def trace_id_hex(value: int | bytes) -> str:
    """A trace id (SDK int or OTLP bytes) as 32 lower-case hex digits."""
    return value.hex() if isinstance(value, bytes) else f"{value:032x}"


def span_id_hex(value: int | bytes) -> str:
    """A span id (SDK int or OTLP bytes) as 16 lower-case hex digits."""
    return value.hex() if isinstance(value, bytes) else f"{value:016x}"

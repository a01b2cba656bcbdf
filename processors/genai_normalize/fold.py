"""GenAI content log records kept for the span they belong to, and folded into it as the conventions' attributes.

Instrumentations in ``EVENT_ONLY`` mode (and older official ones) put the conversation in log records, not on the
span; a logs pipeline's ``genai_normalize`` keeps those records here, keyed by trace and span id, and the traces
pipeline's ``genai_normalize`` (on arrival) or ``tail_sampling`` (at its decision) folds them in. Bounded in spans and
age. Behaviour: docs/instrumentation.md ("Content in log records").
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from spanguard import semconv
from spanguard.processors import otlp
from spanguard.processors.genai_normalize.mapping import SOURCES, dumps, normalize_attributes
from spanguard.processors.view import EventView, SpanView, with_attributes
from spanguard.semconv import sources as src

__all__ = ["CONTENT_EVENTS", "ContentFold", "content_event"]

CONTENT_EVENTS: Final = frozenset(
    {semconv.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, *src.OLD_MESSAGE_EVENTS, src.OLD_CHOICE_EVENT}
)
"""The event names of log records that carry a model call's content."""
_CONTENT_KEYS: Final = (
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
    semconv.GEN_AI_TOOL_DEFINITIONS,
)
_LEGACY: Final = tuple(source for source in SOURCES if source.name == "official_legacy")
_EVENT_NAME_ATTRIBUTE: Final = "event.name"  # where SDKs before LogRecord.event_name put it


def content_event(record: Any) -> tuple[str, str, EventView, int] | None:
    """A protobuf ``LogRecord`` as ``(trace id, span id, event, its size in bytes)`` when it is GenAI content tied to
    a span."""
    trace_id, span_id = record.trace_id, record.span_id
    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
        return None
    attributes, _ = otlp.read_attributes(record.attributes)
    name = record.event_name or attributes.get(_EVENT_NAME_ATTRIBUTE)
    if name not in CONTENT_EVENTS:
        return None
    if record.HasField("body") and record.body.WhichOneof("value") == "kvlist_value":
        body = otlp.from_any(record.body)
        # The older events put the message in the body ({"content": ..., "tool_calls": [...]}).
        attributes = {**body, **attributes} if isinstance(body, Mapping) else attributes
    time_unix_nano = record.time_unix_nano or record.observed_time_unix_nano
    return trace_id.hex(), span_id.hex(), EventView(str(name), time_unix_nano, attributes), record.ByteSize()


def _folded(view: SpanView, events: Sequence[EventView]) -> dict[str, Any] | None:
    """The span's attributes with the events' content added (never overwriting), or ``None`` if nothing is new."""
    attributes = dict(view.attributes)
    added = False
    for event in events:
        if event.name != semconv.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS:
            continue
        for key in _CONTENT_KEYS:
            value = event.attributes.get(key)
            if value is not None and key not in attributes:
                # On the span the conventions' structured attributes are JSON strings (attribute values are flat).
                attributes[key] = value if isinstance(value, str) else dumps(value)
                added = True
    legacy = [event for event in events if event.name != semconv.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS]
    if legacy:
        result = normalize_attributes(attributes, legacy, sources=_LEGACY)
        if result is not None:
            attributes, added = result[0], True
    return attributes if added else None


class _Waiting:
    __slots__ = ("deadline", "events", "size")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.events: list[EventView] = []
        self.size = 0


class ContentFold:
    """Content events waiting for their span: at most ``max_spans`` spans' worth and ``max_bytes`` of records (as
    they came on the wire), each kept ``ttl`` seconds; the oldest go first."""

    def __init__(
        self,
        max_spans: int = 10_000,
        ttl: float = 120.0,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: OrderedDict[tuple[str, str], _Waiting] = OrderedDict()
        self._bytes = 0
        self.stats = {"kept": 0, "folded": 0, "evicted": 0, "expired": 0}
        """Events kept, spans folded into, and spans' events evicted (room) or expired (age) unfolded."""

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, trace_id: str, span_id: str, event: EventView, size: int = 0) -> None:
        """Keep ``event`` (``size`` bytes on the wire) for span ``span_id`` of trace ``trace_id``."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._waiting.get((trace_id, span_id))
            if entry is None:
                entry = self._waiting[(trace_id, span_id)] = _Waiting(now + self._ttl)
            entry.events.append(event)
            entry.size += size
            self._bytes += size
            self.stats["kept"] += 1
            while self._waiting and (len(self._waiting) > self._max_spans or self._bytes > self._max_bytes):
                _, oldest = self._waiting.popitem(last=False)
                self._bytes -= oldest.size
                self.stats["evicted"] += 1

    def attach(self, view: SpanView) -> SpanView:
        """``view`` with the content kept for it folded in (a new view), or ``view`` itself when there is none."""
        if not self._waiting:
            return view
        with self._lock:
            entry = self._waiting.pop((view.trace_id, view.span_id), None)
            if entry is not None:
                self._bytes -= entry.size
        if entry is None:
            return view
        events = sorted(entry.events, key=lambda event: event.time_unix_nano)
        attributes = _folded(view, events)
        if attributes is None:
            return view
        self.stats["folded"] += 1
        return with_attributes(view, attributes)

    def attach_all(self, views: Sequence[SpanView]) -> list[SpanView]:
        """Each view with its content folded in, in order."""
        return [self.attach(view) for view in views]

    def _expire(self, now: float) -> None:
        while self._waiting:
            key, entry = next(iter(self._waiting.items()))
            if entry.deadline > now:
                return
            del self._waiting[key]
            self._bytes -= entry.size
            self.stats["expired"] += 1

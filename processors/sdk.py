"""The in-process adapters: OTel SDK ``ReadableSpan`` <-> :class:`SpanView`, the SDK span processors, and the
redactor they load in the background.

Spans are read-only once ended, so a processor that changes one builds a new ``ReadableSpan`` (:func:`from_view`)
with the original's context, parent, links, kind, status, times and scope, and hands that copy on.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, TraceState

from spanguard.processors.view import EventView, SpanView, span_id_hex, trace_id_hex
from spanguard.semconv import SPANGUARD_REDACTION_COUNT

if TYPE_CHECKING:
    from spanguard.processors.redaction import Redactor
    from spanguard.processors.tail_sampling import Decision, TailSampler

logger = logging.getLogger("spanguard.processors")


class _ResourceMaps:
    """The attribute map of the last resource seen, and the SDK resource built for the last redacted map.

    An SDK's spans share one ``Resource``; sharing one map between their views lets redaction judge and rewrite the
    resource once per batch, and sharing the rebuilt ``Resource`` keeps exported batches under one resource.
    Views never change maps in place, so sharing is safe.
    """

    def __init__(self) -> None:
        self._last: tuple[Resource | None, dict[str, Any]] = (None, {})
        self._built: tuple[Resource | None, dict[str, Any], Resource | None] = (None, {}, None)

    def attributes(self, resource: Resource | None) -> dict[str, Any]:
        last = self._last
        if resource is None:
            return {}
        if last[0] is not resource:
            last = self._last = (resource, dict(resource.attributes))
        return last[1]

    def rebuilt(self, original: Resource | None, attributes: dict[str, Any]) -> Resource:
        built = self._built
        if built[0] is original and built[1] == attributes and built[2] is not None:
            return built[2]
        resource = Resource(attributes, original.schema_url if original else "")
        self._built = (original, attributes, resource)
        return resource


_resources = _ResourceMaps()


def to_view(span: ReadableSpan) -> SpanView:
    """A plain view of an SDK span (attribute maps are copied, so the view can be changed freely; the resource map is
    shared by the views of one resource and must not be changed in place)."""
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
        resource=_resources.attributes(span.resource),
        scope=span.instrumentation_scope.name if span.instrumentation_scope else "",
        source=span,
    )


def from_view(view: SpanView, **overrides: Any) -> ReadableSpan:
    """The view's source span rebuilt with the view's attributes, events and resource attributes (``overrides`` replace
    the source's ``links``, ``context`` or ``instrumentation_scope``)."""
    span: ReadableSpan = view.source
    resource = span.resource
    if resource is None or (
        view.resource is not _resources.attributes(resource) and resource.attributes != view.resource
    ):
        resource = _resources.rebuilt(span.resource, view.resource)
    return ReadableSpan(
        name=view.name,
        context=overrides.get("context", span.context),
        parent=span.parent,
        resource=resource,
        attributes=view.attributes,
        events=tuple(Event(e.name, attributes=e.attributes, timestamp=e.time_unix_nano) for e in view.events),
        links=overrides.get("links", span.links),
        kind=span.kind,
        status=_status(span.status, view.status_message),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=overrides.get("instrumentation_scope", span.instrumentation_scope),
    )


def outside_view(span: ReadableSpan, redactor: Redactor) -> dict[str, Any]:
    """The redacted parts of an SDK span that no view holds (links' attributes and trace states, the span's trace
    state, the scope's attributes), as :func:`from_view` overrides: empty when none of them changed."""
    overrides: dict[str, Any] = {}
    if span.links:
        links = [_redacted_link(link, redactor) for link in span.links]
        if any(new is not old for new, old in zip(links, span.links, strict=True)):
            overrides["links"] = links
    context = span.context
    if context is not None and context.trace_state:
        state = _redacted_state(context.trace_state, redactor)
        if state is not context.trace_state:
            overrides["context"] = SpanContext(
                context.trace_id, context.span_id, context.is_remote, context.trace_flags, state
            )
    scope = span.instrumentation_scope
    if scope is not None and scope.attributes:
        result = redactor.redact_attributes(scope.attributes)
        if result.count:
            overrides["instrumentation_scope"] = InstrumentationScope(
                scope.name, scope.version, scope.schema_url, result.attributes
            )
    return overrides


def _redacted_link(link: Link, redactor: Redactor) -> Link:
    attributes = link.attributes
    if attributes:
        result = redactor.redact_attributes(attributes)
        if result.count:
            attributes = result.attributes
    context = link.context
    state = _redacted_state(context.trace_state, redactor) if context.trace_state else context.trace_state
    if state is not context.trace_state:
        context = SpanContext(context.trace_id, context.span_id, context.is_remote, context.trace_flags, state)
    if attributes is link.attributes and context is link.context:
        return link
    return Link(context, attributes)


def _redacted_state(state: TraceState, redactor: Redactor) -> TraceState:
    # A W3C tracestate value is free text to a vendor and may hold an id; a value redaction changed is replaced, and
    # one the SDK then refuses (outside the W3C alphabet) is dropped with its key rather than kept as it was.
    pairs = [(key, redactor.redact_text(value).text) for key, value in state.items()]
    if all(new == old for (_, new), old in zip(pairs, state.values(), strict=True)):
        return state
    return TraceState([(key, value) for key, value in pairs if _W3C_VALUE.fullmatch(value)])


_W3C_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


def _status(status: Status, message: str) -> Status:
    # Only ERROR statuses carry a description in the SDK; a redacted one replaces the original.
    if (status.description or "") == message or not status.description:
        return status
    return Status(status.status_code, message)


class LazyRedactor:
    """A :class:`~spanguard.processors.redaction.Redactor` built in a background thread from ``instrument()`` on,
    so that starting an app does not wait for Presidio and spaCy to load; the first span to be redacted waits for
    the build if it is not done. A build that fails makes every use fail, so the span is dropped, never passed on."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._done = threading.Event()
        self._redactor: Any = None
        self._error: BaseException | None = None
        self._started = False
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start building in a daemon thread (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="spanguard-redaction-load", daemon=True).start()

    def _run(self) -> None:
        try:
            self._redactor = self._build()
        except BaseException as error:  # kept and raised on use: the span is dropped, not leaked
            self._error = error
            logger.warning("spanguard: redaction could not be loaded (%s); spans with content are dropped", error)
        finally:
            self._done.set()

    @property
    def redactor(self) -> Any:
        """The built redactor, waiting for the build (started now if it was not)."""
        self.warm()
        self._done.wait()
        if self._error is not None:
            raise RuntimeError("spanguard: redaction is not available") from self._error
        return self._redactor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redactor, name)

    def shutdown(self) -> None:
        """Shut the redactor down once built (a build still running is left to finish and be dropped)."""
        if self._done.is_set() and self._redactor is not None:
            self._redactor.shutdown()


class RedactingSpanProcessor(SpanProcessor):
    """Redacts every ended span, then hands the redacted copy to the wrapped processor (and so its exporter)."""

    def __init__(self, next_processor: SpanProcessor, redactor: Redactor | None = None) -> None:
        if redactor is None:
            from spanguard.processors.redaction import Redactor

            redactor = Redactor()
        self._next = next_processor
        self._redactor = redactor
        self._dropped = 0
        self._shutdown = False
        # Exporting processors do nothing on start; only processors that read a starting span need it redacted first.
        self._redacts_on_start = type(next_processor).on_start not in _NOOP_ON_START

    @property
    def next_processor(self) -> SpanProcessor:
        """The processor redacted spans are handed to."""
        return self._next

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Redact the starting span's name, attributes and resource in place (when the wrapped processor reads starts),
        then pass the start on; the ended span is redacted whole in :meth:`on_end`."""
        if self._redacts_on_start:
            self._redact_started(span)
        self._next.on_start(span, parent_context=parent_context)

    def _redact_started(self, span: Span) -> None:
        try:
            view = SpanView(
                trace_id="0" * 32,
                span_id="0" * 16,
                name=span.name,
                attributes=dict(span.attributes or {}),
                resource=_resources.attributes(span.resource),
            )
            redacted = self._redactor.redact_span(view)
            if redacted is view:
                return
            for key in view.attributes.keys() - redacted.attributes.keys():
                del cast("MutableMapping[str, Any]", span._attributes)[key]  # the SDK has no public removal
            span.set_attributes({k: v for k, v in redacted.attributes.items() if view.attributes.get(k, _MISSING) != v})
            if redacted.name != view.name:
                span.update_name(redacted.name)
            if redacted.resource is not view.resource and redacted.resource != view.resource:
                span._resource = _resources.rebuilt(span.resource, redacted.resource)
        except Exception:
            # The start is passed on regardless; the ended span is redacted (or dropped) in on_end.
            logger.debug("spanguard: a starting span could not be redacted in place", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        """Hand on a redacted copy; a span that cannot be redacted is dropped, never passed on as it was."""
        try:
            view = self._redactor.redact_span(to_view(span))
            overrides = outside_view(span, self._redactor)
            redacted = (
                from_view(view, **overrides) if overrides or SPANGUARD_REDACTION_COUNT in view.attributes else span
            )
        except Exception:
            self._dropped += 1
            if self._dropped == 1:  # once: a broken redactor must not flood the app's logs
                logger.warning("spanguard: a span could not be redacted and was dropped (further drops not logged)")
            return
        self._next.on_end(redacted)

    def shutdown(self) -> None:
        """Shut the wrapped processor down (idempotent)."""
        if self._shutdown:
            return
        self._shutdown = True
        self._next.shutdown()
        self._redactor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped processor."""
        return self._next.force_flush(timeout_millis)


class RiskSamplingSpanProcessor(SpanProcessor):
    """Buffers ended spans per trace, classifies the trace by risk and hands on only the kept traces, annotated.

    The in-process counterpart of the collector's ``risk`` and ``tail_sampling`` processors: a background thread
    polls the sampler every ``poll_interval`` seconds, so traces are decided without new spans arriving.
    """

    def __init__(self, next_processor: SpanProcessor, sampler: TailSampler, *, poll_interval: float = 1.0) -> None:
        self._next = next_processor
        self._sampler = sampler
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._shutdown:
            self._thread = threading.Thread(target=self._run, name="spanguard-risk-sampling", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                with self._lock:
                    decisions = self._sampler.poll()
                self._forward(decisions)
            except Exception:
                logger.warning("spanguard: tail sampling poll failed", exc_info=True)

    def _forward(self, decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            for view in decision.spans:
                self._next.on_end(from_view(view))

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Pass the start on."""
        self._next.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer the span; hand on whatever the sampler decides now (late spans, early decisions)."""
        if self._shutdown:
            return
        self._ensure_thread()
        try:
            with self._lock:
                decisions = self._sampler.add([to_view(span)])
        except Exception:
            logger.warning("spanguard: tail sampling could not take a span", exc_info=True)
            return
        self._forward(decisions)

    def shutdown(self) -> None:
        """Decide every buffered trace, hand the kept ones on, and shut the wrapped processor down (idempotent)."""
        if self._shutdown:
            return
        self._shutdown = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            decisions = self._sampler.shutdown()
        self._forward(decisions)
        self._next.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Decide every buffered trace now and flush the wrapped processor."""
        with self._lock:
            decisions = self._sampler.flush()
        self._forward(decisions)
        return self._next.force_flush(timeout_millis)


_MISSING = object()
_NOOP_ON_START = frozenset({SpanProcessor.on_start, BatchSpanProcessor.on_start, SimpleSpanProcessor.on_start})


def wrap_with_redaction(provider: Any, redactor: Redactor) -> int:
    """Wrap every span processor already on an SDK tracer provider so spans are redacted before export.

    Returns how many processors were wrapped. Processors the app adds later through
    ``add_span_processor`` are wrapped as they are added.
    """
    multi = getattr(provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", None)
    if multi is None or processors is None:
        return 0
    # Session stamping runs on start, before content exists; everything else must see only redacted spans.
    from spanguard.instrumentation.session import SessionSpanProcessor

    lock = getattr(multi, "_lock", None) or threading.Lock()
    with lock:
        wrapped = tuple(
            p if isinstance(p, (RedactingSpanProcessor, SessionSpanProcessor)) else RedactingSpanProcessor(p, redactor)
            for p in multi._span_processors
        )
        count = sum(1 for old, new in zip(multi._span_processors, wrapped, strict=True) if old is not new)
        multi._span_processors = wrapped
    original_add = type(provider).add_span_processor

    def add_span_processor(span_processor: SpanProcessor) -> None:
        # Processors the app adds after instrument() must not see unredacted spans either.
        if not isinstance(span_processor, (RedactingSpanProcessor, SessionSpanProcessor)):
            span_processor = RedactingSpanProcessor(span_processor, redactor)
        original_add(provider, span_processor)

    provider.add_span_processor = add_span_processor
    return count


def unwrap_redaction(provider: Any) -> None:
    """Undo :func:`wrap_with_redaction`, putting the original processors back."""
    if "add_span_processor" in getattr(provider, "__dict__", {}):
        del provider.add_span_processor
    multi = getattr(provider, "_active_span_processor", None)
    if multi is None or getattr(multi, "_span_processors", None) is None:
        return
    multi._span_processors = tuple(
        p.next_processor if isinstance(p, RedactingSpanProcessor) else p for p in multi._span_processors
    )

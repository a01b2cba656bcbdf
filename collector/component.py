"""The collector's component model, after the OpenTelemetry Collector's: typed configs, factories, consumers.

A pipeline is receivers -> processors -> exporters, each handing batches to the next consumer and each made by its
:class:`Factory`; :class:`Backpressure` is a refusal clients retry. The model is docs/architecture.md ("The component
model"); how to write a component is docs/collector-config.md ("For component authors").
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Protocol, runtime_checkable

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from pydantic import BaseModel
from typing_extensions import Self

from spanguard.collector.signals import LOGS, METRICS, SIGNALS, TRACES, Signal

__all__ = [
    "KINDS",
    "Admission",
    "Backpressure",
    "Batch",
    "CheckPipelines",
    "Component",
    "Consumer",
    "Create",
    "Factory",
    "Kind",
    "LogBatch",
    "MetricBatch",
    "PermanentError",
    "Settings",
    "TraceBatch",
]

Kind = Literal["receiver", "processor", "exporter", "extension"]
KINDS: Final[tuple[Kind, ...]] = ("receiver", "processor", "exporter", "extension")
TYPE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
"""What a component type may be: a letter, then letters, digits or ``_``."""


class Backpressure(Exception):
    """The pipeline cannot take more now; the client should retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float = 1.0, remaining: Batch | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.remaining = remaining
        """When part of a batch was taken before the refusal: the part that was not (else the whole batch)."""


class PermanentError(Exception):
    """The data can never be accepted (it is invalid); retrying will not help."""


class Batch:
    """Items of one signal moving through a pipeline: OTLP resource messages the pipeline owns and may change in place.

    A batch made :meth:`from_bytes` holds a serialized request and decodes it only when ``resources`` is first read:
    a hop that only forwards it (worker to exporter) never pays for a decode and a re-encode. :class:`TraceBatch`,
    :class:`LogBatch` and :class:`MetricBatch` are the batches of the three signals.
    """

    __slots__ = ("_count", "_encoded", "_resources", "views")
    signal: ClassVar[Signal] = TRACES

    def __init__(self, resources: list[Any], views: list[Any] | None = None) -> None:
        self._resources: list[Any] | None = resources
        self._encoded: bytes | None = None
        self._count: int | None = None
        self.views = views
        """The items as views (``SpanView`` s for spans), when a stage built them for exactly these protobufs."""

    @staticmethod
    def for_signal(name: str) -> type[Batch]:
        """The batch class of the signal called ``name`` (``traces``, ``logs``, ``metrics``)."""
        return _BATCHES[name]

    @classmethod
    def from_bytes(cls, data: bytes, count: int | None = None) -> Self:
        """A batch of a serialized export request of the class's signal (``count``: its items, when known)."""
        batch = cls.__new__(cls)
        batch._resources = None
        batch._encoded = data
        batch._count = count
        batch.views = None
        return batch

    @property
    def resources(self) -> list[Any]:
        """The resource messages (decoded on first use for a batch made from bytes)."""
        if self._resources is None:
            assert self._encoded is not None
            request = self.signal.request.FromString(self._encoded)
            self._resources = list(self.signal.resources(request))
            # Whoever reads the protobufs may change them in place: from now on they, not the bytes, are the batch.
            self._encoded = None
        return self._resources

    @resources.setter
    def resources(self, value: list[Any]) -> None:
        self._resources, self._encoded, self._count = value, None, None

    @property
    def encoded(self) -> bytes | None:
        """The serialized request, while the batch is still only those bytes (None once decoded, or never bytes)."""
        return self._encoded

    @property
    def item_count(self) -> int:
        """How many items (spans, log records, data points) the batch holds."""
        if self._resources is None and self._count is not None:
            return self._count
        return self.signal.count(self.resources)

    @classmethod
    def of(cls, resources: Sequence[Any]) -> Self:
        """A batch over the given resource messages (not copied)."""
        return cls(list(resources))

    @classmethod
    def joined(cls, batches: Sequence[Self]) -> Self:
        """One batch holding the items of ``batches`` in order (serialized requests concatenate into one request)."""
        if len(batches) == 1:
            return batches[0]
        if all(batch.encoded is not None for batch in batches):
            counts = [batch._count for batch in batches]
            total = None if any(n is None for n in counts) else sum(n for n in counts if n is not None)
            return cls.from_bytes(b"".join(batch.encoded for batch in batches if batch.encoded is not None), total)
        return cls([resource for batch in batches for resource in batch.resources])

    def copy(self) -> Self:
        """An independent copy (bytes are shared: they are never changed)."""
        if self._encoded is not None:
            return type(self).from_bytes(self._encoded, self._count)
        clones = []
        for resource in self.resources:
            clone = type(resource)()
            clone.CopyFrom(resource)
            clones.append(clone)
        return type(self)(clones)

    def __repr__(self) -> str:
        held = "bytes" if self._resources is None else f"{len(self._resources)} resources"
        return f"{type(self).__name__}({held}, {self.item_count} {self.signal.items})"


class TraceBatch(Batch):
    """Spans moving through a pipeline: ``ResourceSpans`` (see :class:`Batch`)."""

    __slots__ = ()
    signal: ClassVar[Signal] = TRACES

    @property
    def resource_spans(self) -> list[ResourceSpans]:
        """The spans as protobufs (decoded on first use for a batch made from bytes)."""
        return self.resources

    @resource_spans.setter
    def resource_spans(self, value: list[ResourceSpans]) -> None:
        self.resources = value

    @property
    def span_count(self) -> int:
        """How many spans the batch holds."""
        return self.item_count


class LogBatch(Batch):
    """Log records moving through a pipeline: ``ResourceLogs`` (see :class:`Batch`)."""

    __slots__ = ()
    signal: ClassVar[Signal] = LOGS


class MetricBatch(Batch):
    """Metrics moving through a pipeline: ``ResourceMetrics`` (see :class:`Batch`)."""

    __slots__ = ()
    signal: ClassVar[Signal] = METRICS


_BATCHES: Final[dict[str, type[Batch]]] = {cls.signal.name: cls for cls in (TraceBatch, LogBatch, MetricBatch)}


@runtime_checkable
class Consumer(Protocol):
    """Takes batches; raises :class:`Backpressure` when it cannot take more now."""

    def consume(self, batch: Any) -> None:
        """Take one batch (it becomes the consumer's: the caller must not change it afterwards)."""


@runtime_checkable
class Component(Protocol):
    """Anything with a lifecycle: started once, shut down once (idempotent, bounded in time, safe unstarted)."""

    def start(self) -> None:
        """Start serving or working."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop, draining what can be drained within ``timeout`` seconds."""


@runtime_checkable
class Admission(Protocol):
    """A processor that also vets each request before it is parsed (the memory limiter).

    The service finds it by this method on what a processor's factory created, and has the pipeline's receivers call
    it with each request's size on the wire; it raises :class:`Backpressure` to refuse.
    """

    def admit(self, request_bytes: int) -> None:
        """Refuse (raise :class:`Backpressure`) when taking ``request_bytes`` more would be too much."""


@dataclass(frozen=True)
class Settings:
    """What a factory's ``create`` gets about the component to build."""

    id: str
    """The component id, ``type`` or ``type/name`` (``otlp/sink``)."""
    kind: Kind
    type: str
    config: BaseModel
    """The validated settings: an instance of the factory's ``config_class``."""
    pipeline: str | None = None
    """The pipeline's id for a processor (``traces``); ``None`` for the other kinds."""
    pipeline_types: tuple[str, ...] = ()
    """The processor types of that pipeline, in order (risk steps aside when tail_sampling follows it)."""
    pipeline_configs: tuple[BaseModel, ...] = ()
    """The validated configs of that pipeline's processors, in the same order (tail_sampling finds risk's rules)."""
    config_dir: Path | None = None
    """The config file's directory (``None`` for a config given as text)."""
    signal: str = "traces"
    """The signal of the pipeline a processor or exporter is built for (an exporter is built once per signal it
    exports); for receivers and extensions, ``traces``."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Objects one collector's components share across pipelines, under keys their types choose (the content a
    logs pipeline's ``genai_normalize`` keeps for the traces pipeline's spans); each worker process has its own."""


Create = Callable[[Settings, Any, Any], Any]
CheckPipelines = Callable[[str, Mapping[str, Any], Mapping[str, str]], list[tuple[tuple[str | int, ...], str]]]
"""``check_pipelines(component_id, pipelines, types)`` (see :attr:`Factory.check_pipelines`)."""
"""``create(settings, next_consumer, telemetry)``: the component (see :class:`Factory`)."""


@dataclass(frozen=True)
class Factory:
    """Makes components of one kind and type; ``config_class`` validates their settings (unknown keys refused)."""

    kind: Kind
    type: str
    config_class: builtins.type[BaseModel]
    create: Create | None = None
    """``create(settings, next_consumer, telemetry)`` builds the component. ``next_consumer``: for a processor the
    consumer after it (it may return ``next_consumer`` itself when it has nothing to do in this pipeline), for a
    receiver the pipeline's entry; ``None`` for exporters and extensions. ``telemetry`` is the collector's
    :class:`~spanguard.collector.telemetry.CollectorMetrics`, where a component registers what it reports.
    Processors and exporters return a :class:`Consumer`; every component has ``start``/``shutdown``."""
    signals: tuple[str, ...] = ("traces",)
    """The signals a receiver, processor or exporter of this type handles; a pipeline of another signal that names
    it is refused when the config loads."""
    in_workers: bool = True
    """For a processor in a pipeline with ``workers``: built in the worker processes (``True``), or in the
    collector's own process instead (``False``: the memory limiter, which vets requests before they are parsed)."""
    check_pipelines: CheckPipelines | None = None
    """``check_pipelines(component_id, pipelines, types)``: problems, as ``(key path, message)``, that one
    component's place in the pipelines makes (``types`` maps processor ids to types); checked when the config
    loads, after each pipeline is checked on its own."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown component kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not isinstance(self.type, str) or not TYPE_RE.fullmatch(self.type):
            raise ValueError(f"invalid component type {self.type!r}: a letter, then letters, digits or '_'")
        if not (isinstance(self.config_class, type) and issubclass(self.config_class, BaseModel)):
            raise TypeError(f"config_class of {self.kind} {self.type!r} must be a pydantic model class")
        unknown = [name for name in self.signals if name not in SIGNALS]
        if unknown or not self.signals:
            raise ValueError(f"signals of {self.kind} {self.type!r} must be some of {', '.join(SIGNALS)}")
        if self.create is not None and not callable(self.create):
            raise TypeError(f"create of {self.kind} {self.type!r} must be callable")

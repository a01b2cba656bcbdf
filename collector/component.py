"""The collector's component model, after the OpenTelemetry Collector's: typed configs, factories, consumers.

A pipeline is receivers -> processors -> exporters. Receivers hand each accepted request to the pipeline's first
consumer; processors are consumers that pass (possibly changed, possibly fewer) spans on; exporters are the last
consumers: they put batches on their sending queue, and a request is acknowledged to its client only once every
exporter of the pipeline has queued it. A full queue or memory limit raises :class:`Backpressure`, which receivers
turn into a status OTLP clients retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans


class Backpressure(Exception):
    """The pipeline cannot take more now; the client should retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float = 1.0, remaining: TraceBatch | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.remaining = remaining
        """When part of a batch was taken before the refusal: the part that was not (else the whole batch)."""


class PermanentError(Exception):
    """The data can never be accepted (it is invalid); retrying will not help."""


@dataclass
class TraceBatch:
    """Spans moving through a pipeline: OTLP ``ResourceSpans`` the pipeline owns and may change in place."""

    resource_spans: list[ResourceSpans]
    views: list[Any] | None = None
    """The spans as ``SpanView`` s, when a stage already built them for exactly these protobufs (saves a re-read)."""

    @property
    def span_count(self) -> int:
        """How many spans the batch holds."""
        return sum(len(scope.spans) for resource in self.resource_spans for scope in resource.scope_spans)

    @classmethod
    def of(cls, resource_spans: Sequence[ResourceSpans]) -> TraceBatch:
        """A batch over the given resource spans (not copied)."""
        return cls(list(resource_spans))


@runtime_checkable
class Consumer(Protocol):
    """Takes trace batches; raises :class:`Backpressure` when it cannot take more now."""

    def consume(self, batch: TraceBatch) -> None:
        """Take one batch (it becomes the consumer's: the caller must not change it afterwards)."""


@runtime_checkable
class Component(Protocol):
    """Anything with a lifecycle: started once, shut down once (idempotent, bounded in time, safe unstarted)."""

    def start(self) -> None:
        """Start serving or working."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop, draining what can be drained within ``timeout`` seconds."""

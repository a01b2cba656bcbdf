"""Pipeline wiring: hand each batch to several consumers (a pipeline's exporters, or a receiver's pipelines).

Behaviour: docs/collector-config.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from spanguard.collector.component import Consumer, TraceBatch

__all__ = ["FanOut"]


class FanOut:
    """Hands each batch to every consumer in turn; the first that is full pushes back to the client."""

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = list(consumers)

    def consume(self, batch: TraceBatch) -> None:
        """Give each consumer its own copy (the last gets the original)."""
        for consumer in self._consumers[:-1]:
            if batch.encoded is not None:
                consumer.consume(TraceBatch.from_bytes(batch.encoded, batch.span_count))  # bytes are never changed
                continue
            copy = []
            for resource in batch.resource_spans:
                clone = ResourceSpans()
                clone.CopyFrom(resource)
                copy.append(clone)
            consumer.consume(TraceBatch(copy))
        if self._consumers:
            self._consumers[-1].consume(batch)

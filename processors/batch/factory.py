"""The ``batch`` processor's factory and its stage. Behaviour: docs/collector-config.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Backpressure, Consumer, Factory, Settings, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.batch.config import BatchProcessorConfig

__all__ = ["BatchStage", "new_factory"]

TYPE: Final = "batch"


class BatchStage:
    """Splits batches above ``send_batch_max_size`` spans so exporters never send oversized requests."""

    def __init__(self, config: BatchProcessorConfig, next_consumer: Consumer) -> None:
        self._max = config.send_batch_max_size
        self._next = next_consumer

    def consume(self, batch: TraceBatch) -> None:
        """Pass the batch on, in pieces of at most ``send_batch_max_size`` spans."""
        if batch.span_count <= self._max:
            self._next.consume(batch)
            return
        # Split the protobufs directly: reading every span into a view first would double the memory of a big batch
        # (the tail sampler hands over everything it decided while the exporters were full in one batch).
        pieces = otlp.chunked(batch.resource_spans, self._max)
        for index, piece in enumerate(pieces):
            try:
                self._next.consume(TraceBatch(piece))
            except Backpressure as error:
                if index == 0:
                    raise
                # The pieces before this one are queued: only the rest may be retried, or they would be sent twice.
                rest = [resource for later in pieces[index:] for resource in later]
                raise Backpressure(error.reason, error.retry_after, TraceBatch(rest)) from None

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Nothing to release."""


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    config = settings.config
    assert isinstance(config, BatchProcessorConfig)
    return BatchStage(config, next_consumer)


def new_factory() -> Factory:
    """The ``batch`` processor's factory."""
    return Factory("processor", TYPE, BatchProcessorConfig, create=_create)

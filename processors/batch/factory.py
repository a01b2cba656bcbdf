"""The ``batch`` processor's factory and its stage. Behaviour: docs/collector-config.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Backpressure, Batch, Consumer, Factory, Settings
from spanguard.collector.signals import SIGNALS
from spanguard.processors import otlp
from spanguard.processors.batch.config import BatchProcessorConfig

__all__ = ["BatchStage", "new_factory"]

TYPE: Final = "batch"


class BatchStage:
    """Splits batches above ``send_batch_max_size`` spans (log records, data points for those signals) so exporters
    never send oversized requests."""

    def __init__(self, config: BatchProcessorConfig, next_consumer: Consumer) -> None:
        self._max = config.send_batch_max_size
        self._next = next_consumer

    def consume(self, batch: Batch) -> None:
        """Pass the batch on, in pieces of at most ``send_batch_max_size`` items."""
        if batch.item_count <= self._max:
            self._next.consume(batch)
            return
        # Split the protobufs directly: reading every span into a view first would double the memory of a big batch
        # (the tail sampler hands over everything it decided while the exporters were full in one batch).
        make = type(batch)
        pieces = otlp.chunked(batch.resources, self._max, batch.signal)
        for index, piece in enumerate(pieces):
            try:
                self._next.consume(make(piece))
            except Backpressure as error:
                if index == 0:
                    raise
                # The pieces before this one are queued: only the rest may be retried, or they would be sent twice.
                rest = [resource for later in pieces[index:] for resource in later]
                raise Backpressure(error.reason, error.retry_after, make(rest)) from None

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
    return Factory("processor", TYPE, BatchProcessorConfig, create=_create, signals=tuple(SIGNALS))

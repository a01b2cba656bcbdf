"""Pipeline wiring: hand each batch to several consumers (a pipeline's exporters, or a receiver's pipelines), and
route a receiver's batches to the pipelines of their signal.

Behaviour: docs/collector-config.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from spanguard.collector.component import Batch, Consumer, PermanentError

__all__ = ["FanOut", "SignalRouter"]


class FanOut:
    """Hands each batch to every consumer in turn; the first that is full pushes back to the client."""

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = list(consumers)

    def consume(self, batch: Batch) -> None:
        """Give each consumer its own copy (the last gets the original)."""
        for consumer in self._consumers[:-1]:
            consumer.consume(batch.copy())
        if self._consumers:
            self._consumers[-1].consume(batch)


class SignalRouter:
    """A receiver's entry: each batch goes to the consumer of its signal (what ``signals`` lists)."""

    def __init__(self, consumers: Mapping[str, Consumer]) -> None:
        self._consumers = dict(consumers)

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals some pipeline takes from this receiver."""
        return tuple(self._consumers)

    def consume(self, batch: Batch) -> None:
        """Pass ``batch`` to its signal's pipelines; a signal no pipeline takes is refused for good."""
        consumer = self._consumers.get(batch.signal.name)
        if consumer is None:
            raise PermanentError(f"no {batch.signal.name} pipeline takes data from this receiver")
        consumer.consume(batch)

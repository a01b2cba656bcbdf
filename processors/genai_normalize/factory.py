"""The ``genai_normalize`` processor's factory and its pipeline stage. Behaviour: docs/instrumentation.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Batch, Consumer, Factory, Settings, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.genai_normalize import GenAiNormalizeConfig, Normalizer

__all__ = ["NormalizeStage", "new_factory"]

TYPE: Final = "genai_normalize"


class NormalizeStage:
    """Rewrites every recognised span of a batch in place, then passes the batch on with the views."""

    def __init__(self, normalizer: Normalizer, next_consumer: Consumer) -> None:
        self._normalizer = normalizer
        self._next = next_consumer

    @property
    def stats(self) -> dict[str, int]:
        """Spans normalized so far."""
        return {"normalized_spans": self._normalizer.normalized}

    def consume(self, batch: Batch) -> None:
        """Normalize, then pass on (the next stage reads the rewritten spans afresh)."""
        changed = False
        for view in otlp.views_of(batch.resources):
            normalized = self._normalizer.normalize(view)
            if normalized is not view:
                otlp.write_back(normalized)
                changed = True
        self._next.consume(TraceBatch(batch.resources) if changed else batch)

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Nothing to release."""


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    config = settings.config
    assert isinstance(config, GenAiNormalizeConfig)
    return NormalizeStage(Normalizer(config), next_consumer)


def new_factory() -> Factory:
    """The ``genai_normalize`` processor's factory."""
    return Factory("processor", TYPE, GenAiNormalizeConfig, create=_create)

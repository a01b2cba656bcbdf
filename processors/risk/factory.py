"""The ``risk`` processor's factory and its pipeline stage (per batch, when no tail sampling follows).

Behaviour: docs/risk.md and docs/collector-config.md.
"""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Consumer, Factory, Settings, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.risk.config import RiskProcessorConfig
from spanguard.processors.risk.engine import RiskClassifier

__all__ = ["RiskStage", "new_factory"]

TYPE: Final = "risk"
_TAIL_SAMPLING: Final = "tail_sampling"


class RiskStage:
    """Classifies the spans of each trace in a batch and annotates them (used when no tail sampling follows).

    Spans of one trace that arrive in different batches are classified separately; put ``tail_sampling`` after
    ``risk`` to classify whole traces.
    """

    def __init__(self, classifier: RiskClassifier, next_consumer: Consumer) -> None:
        self.classifier = classifier
        self._next = next_consumer

    def consume(self, batch: TraceBatch) -> None:
        """Annotate each trace's spans with its risk, then pass on."""
        by_trace: dict[str, list[Any]] = {}
        for view in batch.views if batch.views is not None else otlp.views_of(batch.resource_spans):
            by_trace.setdefault(view.trace_id, []).append(view)
        for views in by_trace.values():
            for annotated in self.classifier.annotate(views, self.classifier.classify(views)):
                otlp.write_back(annotated)
        self._next.consume(TraceBatch(batch.resource_spans))

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Release the classifier."""
        self.classifier.shutdown()


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    if _TAIL_SAMPLING in settings.pipeline_types:
        return next_consumer  # tail sampling classifies whole traces with these rules (its factory reads them)
    config = settings.config
    assert isinstance(config, RiskProcessorConfig)
    return RiskStage(RiskClassifier(config.risk_config()), next_consumer)


def new_factory() -> Factory:
    """The ``risk`` processor's factory."""
    return Factory("processor", TYPE, RiskProcessorConfig, create=_create)

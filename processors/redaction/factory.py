"""The ``redaction`` processor's factory and its pipeline stage. Behaviour: docs/redaction.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Batch, Consumer, Factory, Settings, TraceBatch
from spanguard.collector.signals import LOGS, METRICS, SIGNALS
from spanguard.processors import otlp, otlp_logs
from spanguard.processors.redaction import RedactionConfig, Redactor

__all__ = ["RedactionStage", "new_factory"]

TYPE: Final = "redaction"


class RedactionStage:
    """Redacts every span of a batch in place, then passes it on."""

    def __init__(self, redactor: Any, next_consumer: Consumer) -> None:
        self._redactor = redactor
        self._next = next_consumer
        self._clean_log_values = otlp_logs.CleanValues()

    @property
    def stats(self) -> dict[str, Any]:
        """The redactor's counters."""
        return self._redactor.stats

    def consume(self, batch: Batch) -> None:
        """Redact, then pass on (spans with their redacted views, so the next stage need not read them again)."""
        if batch.signal is LOGS:
            otlp_logs.redact_resource_logs(batch.resources, self._redactor, self._clean_log_values)
            self._next.consume(batch)
            return
        if batch.signal is METRICS:
            otlp_logs.redact_resource_metrics(batch.resources, self._redactor)
            self._next.consume(batch)
            return
        views: list[Any] = []
        otlp.redact_resource_spans(batch.resources, self._redactor, views)
        self._next.consume(TraceBatch(batch.resources, views))

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Release the redactor."""
        self._redactor.shutdown()


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    config = settings.config
    assert isinstance(config, RedactionConfig)
    stage = RedactionStage(Redactor(config), next_consumer)
    if telemetry is not None:
        telemetry.track("redaction", f"{settings.pipeline}/{settings.id}", stage)
    return stage


def new_factory() -> Factory:
    """The ``redaction`` processor's factory."""
    return Factory("processor", TYPE, RedactionConfig, create=_create, signals=tuple(SIGNALS))

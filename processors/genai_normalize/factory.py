"""The ``genai_normalize`` processor's factory and its pipeline stages: spans normalized (with the content their log
records carried folded in), and a logs pipeline's GenAI content records kept for their spans.

Behaviour: docs/instrumentation.md ("Spans from other instrumentations", "Content in log records").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from spanguard.collector.component import Batch, Consumer, Factory, Settings, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.genai_normalize import GenAiNormalizeConfig, Normalizer
from spanguard.processors.genai_normalize.fold import ContentFold, content_event

__all__ = ["ContentKeepStage", "NormalizeStage", "fold_of_pipeline", "new_factory"]

TYPE: Final = "genai_normalize"
_REDACTION: Final = "redaction"


def _fold_key(component_id: str) -> str:
    return f"{TYPE}/{component_id}:fold"


def _pipeline_key(pipeline: str) -> str:
    return f"{TYPE}:fold-of-pipeline:{pipeline}"


def fold_of_pipeline(shared: Mapping[str, Any], pipeline: str) -> ContentFold | None:
    """The content fold a traces pipeline's ``genai_normalize`` reads, if it has one (``tail_sampling`` folds late
    records in with it at its decision)."""
    fold = shared.get(_pipeline_key(pipeline))
    return fold if isinstance(fold, ContentFold) else None


class NormalizeStage:
    """Folds in the content kept for each span, normalizes every recognised span in place, then passes the batch on."""

    def __init__(self, normalizer: Normalizer, next_consumer: Consumer, fold: ContentFold | None = None) -> None:
        self._normalizer = normalizer
        self._next = next_consumer
        self._fold = fold

    @property
    def stats(self) -> dict[str, int]:
        """Spans normalized so far, and spans content log records were folded into."""
        folded = self._fold.stats["folded"] if self._fold is not None else 0
        return {"normalized_spans": self._normalizer.normalized, "folded_spans": folded}

    def consume(self, batch: Batch) -> None:
        """Fold, normalize, then pass on (the next stage reads the rewritten spans afresh)."""
        changed = False
        fold = self._fold
        for view in otlp.views_of(batch.resources):
            folded = fold.attach(view) if fold is not None else view
            normalized = self._normalizer.normalize(folded)
            if normalized is not view:
                otlp.write_back(normalized)
                changed = True
        self._next.consume(TraceBatch(batch.resources) if changed else batch)

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Nothing to release."""


class ContentKeepStage:
    """Keeps each GenAI content log record for the span it belongs to, and passes the records on unchanged."""

    def __init__(self, fold: ContentFold, next_consumer: Consumer) -> None:
        self._fold = fold
        self._next = next_consumer

    @property
    def stats(self) -> dict[str, int]:
        """The fold's counters: records kept, spans folded into, spans' records evicted or expired unfolded."""
        return dict(self._fold.stats)

    def consume(self, batch: Batch) -> None:
        """Keep the content records, then pass the batch on."""
        for resource_logs in batch.resources:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    found = content_event(record)
                    if found is not None:
                        self._fold.add(*found)
        self._next.consume(batch)

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Nothing to release."""


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    config = settings.config
    assert isinstance(config, GenAiNormalizeConfig)
    # One fold per component id, shared by the logs and traces pipelines that name it (as the OTel Collector shares
    # a component across pipelines).
    fold = settings.shared.get(_fold_key(settings.id))
    if fold is None:
        fold = settings.shared[_fold_key(settings.id)] = ContentFold(
            config.fold_max_spans, config.fold_ttl, max_bytes=config.fold_max_mib * 1024 * 1024
        )
    if settings.signal == "logs":
        return ContentKeepStage(fold, next_consumer)
    if settings.pipeline is not None:
        settings.shared[_pipeline_key(settings.pipeline)] = fold
    return NormalizeStage(Normalizer(config), next_consumer, fold)


def _check_pipelines(
    component_id: str, pipelines: Mapping[str, Any], types: Mapping[str, str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """A logs pipeline's content must be redacted before it is kept for spans that the traces pipelines redact, and
    cannot reach traces pipelines whose processors run in worker processes."""
    logs = [p for p in pipelines.values() if p.type == "logs" and component_id in p.processors]
    traces = [p for p in pipelines.values() if p.type == "traces" and component_id in p.processors]
    problems: list[tuple[tuple[str | int, ...], str]] = []
    redacting = [p.name for p in traces if any(types.get(pid) == _REDACTION for pid in p.processors)]
    for pipeline in logs:
        at = pipeline.processors.index(component_id)
        if redacting and not any(types.get(pid) == _REDACTION for pid in pipeline.processors[:at]):
            problems.append(
                (
                    ("service", "pipelines", pipeline.name, "processors", at),
                    f"{component_id} keeps log records' content for the spans of {', '.join(redacting)}, which "
                    f"redact(s) content: put a redaction processor before {component_id} in this pipeline",
                )
            )
    if logs and not traces:
        problems.append(
            (
                ("service", "pipelines", logs[0].name, "processors", logs[0].processors.index(component_id)),
                f"{component_id} keeps log records' content for the spans of a traces pipeline that names it, and "
                "none does: add it to the traces pipeline, first, or remove it here",
            )
        )
    if logs:
        for pipeline in traces:
            if pipeline.workers > 1:
                problems.append(
                    (
                        ("service", "pipelines", pipeline.name, "workers"),
                        f"{component_id} folds the content of log records (pipeline {logs[0].name}) into this "
                        "pipeline's spans, which cannot cross into worker processes: set workers to 1, or give the "
                        "logs pipeline's genai_normalize another id",
                    )
                )
    return problems


def new_factory() -> Factory:
    """The ``genai_normalize`` processor's factory."""
    return Factory(
        "processor",
        TYPE,
        GenAiNormalizeConfig,
        create=_create,
        signals=("traces", "logs"),
        check_pipelines=_check_pipelines,
    )

"""The collector's processors as pipeline stages (consumers that pass batches on), and the exporter fan-out.

Redaction, risk classification and tail sampling are the shared processors of ``spanguard.processors``, run here
through the OTLP adapter. Nothing here holds acknowledged data except the tail-sampling buffer, which is memory by
design (a trace is decided only once it is complete); from the exporters' sending queues on, data is persistent
when the queue is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import pydantic
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from spanguard.collector.component import Backpressure, Consumer, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.risk import (
    DetectorsConfig,
    RiskClassifier,
    RiskConfig,
    RiskConfigError,
    Rule,
    duplicate_rule_names,
    load_risk_config,
)
from spanguard.processors.sampling import Decision, SamplingConfig, TailSampler

from spanguard.yamlconfig import Problem, format_path, relative_to_config

logger = logging.getLogger("spanguard.collector")


class RiskProcessorConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.risk``: a rules file, or rules and detectors inline (the packaged defaults when neither).

    A relative ``rules_file`` is found next to the collector's config file; it is read once, when the config loads.
    """

    rules_file: str | None = None
    rules: tuple[Rule, ...] | None = None
    detectors: DetectorsConfig | None = None
    _risk: RiskConfig = pydantic.PrivateAttr()

    @pydantic.model_validator(mode="after")
    def _loads(self, info: pydantic.ValidationInfo) -> RiskProcessorConfig:
        if self.rules_file is not None and (self.rules is not None or self.detectors is not None):
            raise ValueError("give either rules_file or inline rules/detectors, not both")
        if self.rules_file is not None:
            # A RiskConfigError is a ValueError: the collector's loader reports its problems at the rules file's
            # own lines.
            self._risk = load_risk_config(relative_to_config(self.rules_file, info.context))
        elif self.rules is None and self.detectors is None:
            self._risk = load_risk_config(None)
        else:
            duplicates = duplicate_rule_names(self.rules or ())
            if duplicates:
                raise RiskConfigError([Problem(format_path(path), message, None) for path, message in duplicates])
            self._risk = RiskConfig(rules=self.rules or (), detectors=self.detectors or DetectorsConfig())
        return self

    def risk_config(self) -> RiskConfig:
        """The validated risk configuration this section describes."""
        return self._risk


class TailSamplingProcessorConfig(SamplingConfig, frozen=True, extra="forbid"):
    """``processors.tail_sampling``: the sampler's settings plus how often buffered traces are checked."""

    poll_interval: float = pydantic.Field(default=0.5, gt=0, le=60)


class BatchProcessorConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.batch``: split batches larger than ``send_batch_max_size`` spans (holds nothing in memory)."""

    send_batch_max_size: int = pydantic.Field(default=8192, gt=0)


class RedactionStage:
    """Redacts every span of a batch in place, then passes it on."""

    def __init__(self, redactor: Any, next_consumer: Consumer) -> None:
        self._redactor = redactor
        self._next = next_consumer

    def consume(self, batch: TraceBatch) -> None:
        """Redact, then pass on (with the redacted views, so the next stage need not read the spans again)."""
        views: list[Any] = []
        otlp.redact_resource_spans(batch.resource_spans, self._redactor, views)
        self._next.consume(TraceBatch(batch.resource_spans, views))

    def start(self) -> None:
        """Nothing to start."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Release the redactor."""
        self._redactor.shutdown()


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


class TailSamplingStage:
    """Buffers spans per trace, decides whole traces by risk, and passes on the kept ones, annotated."""

    def __init__(
        self,
        config: TailSamplingProcessorConfig,
        classifier: RiskClassifier | None,
        next_consumer: Consumer,
        *,
        telemetry: Any = None,
    ) -> None:
        self._sampler = TailSampler(config, classifier)
        self._config = config
        self._next = next_consumer
        self._lock = threading.Lock()
        self._pending: list[ResourceSpans] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._telemetry = telemetry

    @property
    def stats(self) -> dict[str, Any]:
        """The sampler's counters."""
        with self._lock:
            return dict(self._sampler.stats)

    def consume(self, batch: TraceBatch) -> None:
        """Buffer the batch's spans; pass on whatever is decided now (late spans, early decisions).

        While decided traces wait for room downstream, new batches are refused (retryably): the client keeps
        them, instead of this process holding an ever-growing backlog in memory.
        """
        if self._pending:
            raise Backpressure("exporters are full; decided traces are waiting", retry_after=1.0)
        views = batch.views if batch.views is not None else otlp.views_of(batch.resource_spans)
        with self._lock:
            decisions = self._sampler.add(views)
        kept = self._kept(decisions)
        if kept:
            # Already buffered and decided: on backpressure keep it here rather than make the client resend.
            self._send_or_hold(kept)

    def _kept(self, decisions: Sequence[Decision]) -> list[ResourceSpans]:
        if self._telemetry is not None:
            for decision in decisions:
                # A recalled trace was counted when it was dropped; its recall is the sampler's session_recalled.
                if not decision.recalled:
                    self._telemetry.decided(decision)
        kept = [view for decision in decisions if decision.keep for view in decision.spans]
        return otlp.regroup(kept) if kept else []

    def _send_or_hold(self, resource_spans: list[ResourceSpans]) -> bool:
        try:
            self._next.consume(TraceBatch(resource_spans))
            return True
        except Backpressure as error:
            held = error.remaining.resource_spans if error.remaining is not None else resource_spans
            with self._lock:
                self._pending[:0] = held
            return False

    def _run(self) -> None:
        while not self._stop.wait(self._config.poll_interval):
            try:
                self._tick()
            except Exception:
                logger.exception("tail sampling: a decision round failed")

    def _tick(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            decisions = self._sampler.poll()
        batch = pending + self._kept(decisions)
        if batch and not self._send_or_hold(batch):
            logger.info("tail sampling: downstream is full; decided traces wait in memory")

    def start(self) -> None:
        """Start the decision thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanguard-tail-sampling", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Decide everything buffered and pass the kept traces on (idempotent, safe unstarted)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            pending, self._pending = self._pending, []
            decisions = self._sampler.shutdown()
        batch = pending + self._kept(decisions)
        if batch and not self._send_or_hold(batch):
            logger.warning("tail sampling: downstream full at shutdown; decided traces could not be passed on")


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


class FanOut:
    """Hands each batch to every exporter of a pipeline; the first that is full pushes back to the client."""

    def __init__(self, exporters: Sequence[Consumer]) -> None:
        self._exporters = list(exporters)

    def consume(self, batch: TraceBatch) -> None:
        """Give each exporter its own copy (the last gets the original)."""
        for exporter in self._exporters[:-1]:
            copy = []
            for resource in batch.resource_spans:
                clone = ResourceSpans()
                clone.CopyFrom(resource)
                copy.append(clone)
            exporter.consume(TraceBatch(copy))
        if self._exporters:
            self._exporters[-1].consume(batch)

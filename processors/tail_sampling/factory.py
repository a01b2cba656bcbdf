"""The ``tail_sampling`` processor's factory and its pipeline stage: buffer per trace, decide whole traces by risk.

Nothing else in the collector holds acknowledged data in memory: a trace is decided only once it is complete, so the
buffer is memory by design. Behaviour: docs/sampling.md and docs/collector-config.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from spanguard.collector.component import Backpressure, Consumer, Factory, Settings, TraceBatch
from spanguard.processors import otlp
from spanguard.processors.genai_normalize.factory import fold_of_pipeline
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.risk.config import RiskProcessorConfig
from spanguard.processors.tail_sampling.config import TailSamplingProcessorConfig
from spanguard.processors.tail_sampling.sampler import Decision, TailSampler
from spanguard.processors.view import SpanView

__all__ = ["TailSamplingStage", "new_factory"]

TYPE: Final = "tail_sampling"
logger = logging.getLogger("spanguard.collector")


class TailSamplingStage:
    """Buffers spans per trace, decides whole traces by risk, and passes on the kept ones, annotated."""

    def __init__(
        self,
        config: TailSamplingProcessorConfig,
        classifier: RiskClassifier | None,
        next_consumer: Consumer,
        *,
        telemetry: Any = None,
        complete: Callable[[list[SpanView]], list[SpanView]] | None = None,
    ) -> None:
        self._sampler = TailSampler(config, classifier, complete=complete)
        self._config = config
        self._next = next_consumer
        self._lock = threading.Lock()
        self._pending: list[TraceBatch] = []
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

    def _kept(self, decisions: Sequence[Decision]) -> list[TraceBatch]:
        if self._telemetry is not None:
            for decision in decisions:
                # A recalled trace was counted when it was dropped; its recall is the sampler's session_recalled.
                if not decision.recalled:
                    self._telemetry.decided(decision)
        if logger.isEnabledFor(logging.DEBUG):
            for decision in decisions:
                # Ids, tiers and reason codes only: never content (docs/sampling.md, "Why a trace was kept").
                logger.debug(
                    "tail sampling: trace %s %s: tier %s, rate %s, reasons %s%s",
                    decision.trace_id,
                    "kept" if decision.keep else "dropped",
                    decision.tier,
                    f"{decision.rate:g}",
                    ",".join(decision.reasons) or "-",
                    " (early)" if decision.early else " (recalled)" if decision.recalled else "",
                )
        kept = [view for decision in decisions if decision.keep for view in decision.spans]
        # Serialized straight from the views: the exporters send bytes, so no protobufs are built for them.
        return [TraceBatch.from_bytes(otlp.encode_views(kept), len(kept))] if kept else []

    def _send_or_hold(self, batches: list[TraceBatch]) -> bool:
        batch = TraceBatch.joined(batches)
        try:
            self._next.consume(batch)
            return True
        except Backpressure as error:
            with self._lock:
                self._pending[:0] = [error.remaining if isinstance(error.remaining, TraceBatch) else batch]
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


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Consumer:
    config = settings.config
    assert isinstance(config, TailSamplingProcessorConfig)
    # The pipeline's risk rules classify whole traces here (the risk processor steps aside); the last one wins.
    rules = [peer for peer in settings.pipeline_configs if isinstance(peer, RiskProcessorConfig)]
    classifier = RiskClassifier(rules[-1].risk_config()) if rules else None
    shared, pipeline = settings.shared, settings.pipeline or ""

    def complete(spans: list[SpanView]) -> list[SpanView]:
        # Looked up at decision time: genai_normalize, earlier in the pipeline, is built after this stage.
        fold = fold_of_pipeline(shared, pipeline)
        return fold.attach_all(spans) if fold is not None else spans

    stage = TailSamplingStage(config, classifier, next_consumer, telemetry=telemetry, complete=complete)
    if telemetry is not None:
        telemetry.track("sampling", f"{settings.pipeline}/{settings.id}", stage)
    return stage


def new_factory() -> Factory:
    """The ``tail_sampling`` processor's factory."""
    return Factory("processor", TYPE, TailSamplingProcessorConfig, create=_create)

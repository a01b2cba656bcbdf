"""The collector service: builds pipelines from a validated config, runs them, and shuts down without losing data.

Start order is exporters, processors, receivers (so nothing is accepted before it can go somewhere); shutdown is the
reverse: receivers stop accepting, tail sampling decides what it holds, exporters drain their queues within the
timeout and leave the rest in the persistent queue.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, NamedTuple

import pydantic
from spanguard.collector.component import Consumer
from spanguard.collector.config import CollectorConfig, ConfigError, Endpoint, Factory, PipelineConfig, register
from spanguard.collector.memory import MemoryLimiter, MemoryLimiterConfig
from spanguard.collector.pipeline import (
    BatchProcessorConfig,
    BatchStage,
    FanOut,
    RedactionStage,
    RiskProcessorConfig,
    RiskStage,
    TailSamplingProcessorConfig,
    TailSamplingStage,
)
from spanguard.collector.telemetry import (
    CollectorMetrics,
    TelemetryServer,
    exporter_families,
    redaction_families,
    sampling_families,
)

logger = logging.getLogger("spanguard.collector")


class HealthCheckConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``extensions.health_check``: where ``/healthz`` is served."""

    endpoint: Endpoint = "127.0.0.1:13133"


def _register_factories() -> None:
    from spanguard.collector import exporters, receivers
    from spanguard.exporters.review import ReviewExporterConfig
    from spanguard.processors.redaction import RedactionConfig

    for factory in (
        Factory("receiver", "otlp", receivers.OtlpReceiverConfig),
        Factory("processor", "redaction", RedactionConfig),
        Factory("processor", "risk", RiskProcessorConfig),
        Factory("processor", "tail_sampling", TailSamplingProcessorConfig),
        Factory("processor", "batch", BatchProcessorConfig),
        Factory("processor", "memory_limiter", MemoryLimiterConfig),
        Factory("exporter", "otlp", exporters.OtlpExporterConfig),
        Factory("exporter", "otlphttp", exporters.OtlpHttpExporterConfig),
        Factory("exporter", "file", exporters.FileExporterConfig),
        Factory("exporter", "debug", exporters.DebugExporterConfig),
        Factory("exporter", "review", ReviewExporterConfig),
        Factory("extension", "health_check", HealthCheckConfig),
    ):
        register(factory)


_register_factories()

BUILT_IN_PROCESSORS = frozenset({"redaction", "risk", "tail_sampling", "batch", "memory_limiter"})
"""The processor types :func:`build_chain` builds itself; any other type is built by its factory's ``create``."""


def unbuildable(config: CollectorConfig) -> list[str]:
    """A problem for each processor or exporter that nothing can build (a processor not built in whose factory has
    no ``create``; an exporter type the exporters module does not make): such a component must stop the collector at
    start, never be left out of its pipeline (a redaction step that silently does not run sends data out
    unredacted)."""
    from spanguard.collector.exporters import EXPORTER_CONFIGS

    problems = [
        f"processors.{pid}: type {component.type!r} has no create function in its factory, so it cannot run; "
        "register it as Factory('processor', type, ConfigModel, create=make) (docs/collector-config.md)"
        for pid, component in config.processors.items()
        if component.type not in BUILT_IN_PROCESSORS and getattr(component.factory, "create", None) is None
    ]
    # Exporters are built by their own module for now: a type registered elsewhere is refused here, not at start.
    problems += [
        f"exporters.{eid}: type {component.type!r} cannot be built by this collector yet; "
        f"known: {', '.join(EXPORTER_CONFIGS)}"
        for eid, component in config.exporters.items()
        if component.type not in EXPORTER_CONFIGS
    ]
    return problems


def _admit_all(limiters: list[MemoryLimiter]) -> Any:
    def admit(request_bytes: int) -> None:
        for limiter in limiters:
            limiter.admit(request_bytes)

    return admit


class BuiltChain(NamedTuple):
    """A pipeline's processors built as consumers, first to last."""

    entry: Consumer
    stages: list[Any]
    redactors: dict[str, Any]
    samplers: dict[str, Any]
    limiters: list[MemoryLimiter]


def build_chain(
    config: CollectorConfig,
    pipeline: PipelineConfig,
    last: Consumer,
    telemetry: Any,
    *,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
) -> BuiltChain:
    """Build a pipeline's processors in front of ``last`` (those of the types in ``only``, if given, minus ``skip``)."""
    from spanguard.processors.redaction import Redactor
    from spanguard.processors.risk import RiskClassifier

    wanted = [
        p
        for p in pipeline.processors
        if (only is None or config.processors[p].type in only) and config.processors[p].type not in skip
    ]
    types = {config.processors[p].type: config.processors[p] for p in wanted}
    # One classifier per pipeline: used by tail sampling on whole traces, or by the risk stage per batch.
    classifier = RiskClassifier(types["risk"].config.risk_config()) if "risk" in types else None
    consumer = last
    stages: list[Any] = []
    redactors: dict[str, Any] = {}
    samplers: dict[str, Any] = {}
    limiters: list[MemoryLimiter] = []
    # Built back to front: each stage hands on to the one after it.
    for pid in reversed(wanted):
        component = config.processors[pid]
        settings = component.config
        if component.type == "redaction":
            redactor = Redactor(settings)
            redactors[f"{pipeline.name}/{pid}"] = redactor
            consumer = RedactionStage(redactor, consumer)
        elif component.type == "risk":
            if "tail_sampling" in types:
                continue  # tail sampling classifies whole traces with the pipeline's classifier
            consumer = RiskStage(classifier, consumer)
        elif component.type == "tail_sampling":
            stage = TailSamplingStage(settings, classifier, consumer, telemetry=telemetry)
            samplers[f"{pipeline.name}/{pid}"] = stage
            consumer = stage
        elif component.type == "batch":
            consumer = BatchStage(settings, consumer)
        elif component.type == "memory_limiter":
            consumer = MemoryLimiter(settings, consumer)
            limiters.append(consumer)
        else:
            create = getattr(component.factory, "create", None)
            if create is None:
                raise ConfigError("; ".join(unbuildable(config)))
            consumer = create(settings, consumer, telemetry)
            if not isinstance(consumer, Consumer):
                raise TypeError(f"processors.{pid}: its factory's create returned no consumer (a .consume(batch))")
        stages.append(consumer)
    return BuiltChain(consumer, list(reversed(stages)), redactors, samplers, limiters)


class Collector:
    """One collector process: its pipelines, exporters, receivers and own telemetry."""

    def __init__(self, config: CollectorConfig) -> None:
        from spanguard.collector.exporters import create_exporter
        from spanguard.collector.receivers import OtlpReceiver

        self.config = config
        self.metrics = CollectorMetrics()
        self.exporters: dict[str, Any] = {
            cid: create_exporter(component.type, cid, component.config) for cid, component in config.exporters.items()
        }
        self.stages: list[Any] = []
        self.receivers: list[Any] = []
        redactors: dict[str, Any] = {}
        samplers: dict[str, Any] = {}
        entry_points: dict[str, list[Consumer]] = {}
        admissions: dict[str, list[MemoryLimiter]] = {}
        for pipeline in config.pipelines.values():
            consumer: Consumer = FanOut([self.exporters[e] for e in pipeline.exporters])
            if pipeline.workers > 1:
                from spanguard.collector.workers import PipelineWorkers

                # The memory limiter guards this process, so it stays here; the other processors run in the workers.
                workers = PipelineWorkers(config, pipeline.name, consumer, telemetry=self.metrics)
                redactors.update(workers.redactors())
                samplers.update(workers.samplers())
                built = build_chain(config, pipeline, workers, self.metrics, only=("memory_limiter",))
                self.stages.extend([*built.stages, workers])
            else:
                built = build_chain(config, pipeline, consumer, self.metrics)
                self.stages.extend(built.stages)
            redactors.update(built.redactors)
            samplers.update(built.samplers)
            for rid in pipeline.receivers:
                entry_points.setdefault(rid, []).append(built.entry)
                admissions.setdefault(rid, []).extend(built.limiters)
        for rid, consumers in entry_points.items():
            target: Consumer = consumers[0] if len(consumers) == 1 else FanOut(consumers)
            limiters = admissions.get(rid, [])
            self.receivers.append(
                OtlpReceiver(
                    rid,
                    config.receivers[rid].config,
                    target,
                    telemetry=self.metrics,
                    admission=_admit_all(limiters) if limiters else None,
                )
            )
        self.metrics.add_source(exporter_families(self.exporters))
        self.metrics.add_source(redaction_families(redactors))
        self.metrics.add_source(sampling_families(samplers))
        self.metrics.install_scrape_collector()
        self._running = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.telemetry_servers: list[TelemetryServer] = []
        metrics_address = config.telemetry.metrics_address
        if metrics_address:
            self.telemetry_servers.append(TelemetryServer(metrics_address, self.metrics, self.healthy))
        for component in config.extensions.values():
            if component.type == "health_check":
                self.telemetry_servers.append(TelemetryServer(component.config.endpoint, None, self.healthy))

    def healthy(self) -> bool:
        """Whether every pipeline is running (its worker processes included)."""
        return self._running and all(getattr(stage, "healthy", lambda: True)() for stage in self.stages)

    def start(self) -> None:
        """Start exporters, then processors, then receivers, then the telemetry endpoints."""
        with self._lock:
            if self._running or self._stopped.is_set():
                return
            try:
                for exporter in self.exporters.values():
                    exporter.start()
                for stage in self.stages:
                    stage.start()
                for receiver in self.receivers:
                    receiver.start()
            except Exception:
                self._stopped.set()
                self._shutdown_components(5.0)
                raise
            for server in self.telemetry_servers:
                server.start()
            self._running = True
        logger.info("collector started: %d pipeline(s)", len(self.config.pipelines))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting, decide and drain what is held, within ``timeout`` (idempotent, safe unstarted)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._running = False
            self._stopped.set()
        self._shutdown_components(timeout)
        logger.info("collector stopped")

    def _shutdown_components(self, timeout: float) -> None:
        # One deadline for the whole shutdown: exporters drain in parallel within what is left of it.
        deadline = time.monotonic() + max(0.0, timeout)

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        for receiver in self.receivers:
            receiver.shutdown(timeout=min(left(), 5.0))
        for stage in self.stages:
            stage.shutdown(left())
        budget = left()
        threads = [
            threading.Thread(target=exporter.shutdown, args=(budget,), name=f"spanguard-shutdown-{name}", daemon=True)
            for name, exporter in self.exporters.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(left() + 1.0)
        for server in self.telemetry_servers:
            server.shutdown()

    def run(self, timeout: float = 10.0) -> None:
        """Start, serve until SIGTERM or SIGINT, then shut down."""
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            logger.info("signal %d: shutting down", signum)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.shutdown(timeout)

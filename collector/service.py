"""The collector service: builds pipelines from a validated config, runs them, and shuts down without losing data.

Every component is made by its :class:`~spanguard.collector.component.Factory`; this module only wires what the
factories return, and starts and stops them in order. The build, start and shutdown order is docs/architecture.md
("The component model"); the rest of the behaviour is docs/collector-config.md.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from spanguard.collector.component import Admission, Batch, Consumer, Settings
from spanguard.collector.config import (
    CONFIG_LABEL,
    SECTIONS,
    CollectorConfig,
    ComponentConfig,
    PipelineConfig,
    unbuildable,
)
from spanguard.collector.fanout import FanOut, SignalRouter
from spanguard.collector.telemetry import CollectorMetrics, TelemetryServer
from spanguard.yamlconfig import ConfigError

__all__ = ["BuiltChain", "Collector", "build_chain", "create_component", "unbuildable"]

logger = logging.getLogger("spanguard.collector")


def create_component(
    config: CollectorConfig,
    component: ComponentConfig,
    next_consumer: Any,
    telemetry: Any,
    pipeline: PipelineConfig | None = None,
    *,
    signal: str | None = None,
    shared: dict[str, Any] | None = None,
) -> Any:
    """``component`` as its factory's ``create`` builds it (with the pipeline's processors when it is a processor;
    for ``signal``'s pipelines when it is an exporter, the pipeline's signal when it is a processor); ``shared`` is
    the collector's :attr:`~spanguard.collector.component.Settings.shared`."""
    create = component.factory.create
    if create is None:
        problem = f"{SECTIONS[component.kind]}.{component.id}: its factory has no create function"
        raise ConfigError(problem, label=CONFIG_LABEL)
    peers = [config.processors[pid] for pid in pipeline.processors] if pipeline is not None else []
    settings = Settings(
        id=component.id,
        kind=component.kind,
        type=component.type,
        config=component.config,
        pipeline=pipeline.name if pipeline is not None else None,
        pipeline_types=tuple(peer.type for peer in peers),
        pipeline_configs=tuple(peer.config for peer in peers),
        config_dir=config.config_dir,
        signal=signal or (pipeline.type if pipeline is not None else "traces"),
        shared=shared if shared is not None else {},
    )
    built = create(settings, next_consumer, telemetry)
    needs_consume = component.kind in ("processor", "exporter")
    if built is None or (needs_consume and not callable(getattr(built, "consume", None))):
        what = "a consumer (with consume(batch))" if needs_consume else "a component"
        raise TypeError(f"{SECTIONS[component.kind]}.{component.id}: its factory's create returned no {what}")
    return built


class BuiltChain(NamedTuple):
    """A pipeline's processors built as consumers, first to last."""

    entry: Consumer
    stages: list[Any]
    admissions: list[Admission]
    """The stages that vet requests before they are parsed (memory limiters), for the pipeline's receivers."""


def build_chain(
    config: CollectorConfig,
    pipeline: PipelineConfig,
    last: Consumer,
    telemetry: Any,
    *,
    in_workers: bool | None = None,
    shared: dict[str, Any] | None = None,
) -> BuiltChain:
    """Build a pipeline's processors in front of ``last``, back to front, each by its factory.

    ``in_workers``: ``None`` builds every processor; ``True`` those that run in worker processes, ``False`` those
    that stay in the collector's own process (:attr:`~spanguard.collector.component.Factory.in_workers`).
    ``shared``: what the pipelines' components share (:attr:`~spanguard.collector.component.Settings.shared`).
    """
    consumer = last
    stages: list[Any] = []
    for pid in reversed(pipeline.processors):
        component = config.processors[pid]
        if in_workers is not None and component.factory.in_workers != in_workers:
            continue
        built = create_component(config, component, consumer, telemetry, pipeline, shared=shared)
        if built is consumer:
            continue  # nothing to do in this pipeline (risk when tail sampling classifies whole traces)
        consumer = built
        stages.append(built)
    stages.reverse()
    return BuiltChain(consumer, stages, [stage for stage in stages if isinstance(stage, Admission)])


def _exporter_key(exporter_id: str, signal: str) -> str:
    """The key of an exporter built for ``signal``: its id for traces (as before logs and metrics), else
    ``id[signal]``."""
    return exporter_id if signal == "traces" else f"{exporter_id}[{signal}]"


class _Admitting:
    """A receiver's entry with the admission of every pipeline it feeds (a :class:`Consumer` and an Admission)."""

    def __init__(self, target: SignalRouter, admissions: Sequence[Admission]) -> None:
        self._target = target
        self._admissions = list(admissions)

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals some pipeline takes from the receiver."""
        return self._target.signals

    def admit(self, request_bytes: int) -> None:
        """Ask each memory limiter; the first that refuses raises Backpressure."""
        for admission in self._admissions:
            admission.admit(request_bytes)

    def consume(self, batch: Batch) -> None:
        """Pass the batch on (admission happened before parsing)."""
        self._target.consume(batch)


class Collector:
    """One collector process: its pipelines, exporters, receivers and own telemetry."""

    def __init__(self, config: CollectorConfig) -> None:
        problems = unbuildable(config)
        if problems:
            raise ConfigError("; ".join(problems), label=CONFIG_LABEL)
        self.config = config
        self.metrics = CollectorMetrics()
        self.metrics.set_health(self.healthy)
        shared: dict[str, Any] = {}
        # One exporter per exporter id and signal, each with its own sending queue (as the OTel Collector has).
        used = {(eid, pipeline.type): None for pipeline in config.pipelines.values() for eid in pipeline.exporters}
        self.exporters: dict[str, Any] = {
            _exporter_key(eid, signal): create_component(
                config, config.exporters[eid], None, self.metrics, signal=signal
            )
            for eid, signal in used
        }
        self.stages: list[Any] = []
        self.receivers: list[Any] = []
        entry_points: dict[str, dict[str, list[Consumer]]] = {}
        admissions: dict[str, list[Admission]] = {}
        for pipeline in config.pipelines.values():
            consumer: Consumer = FanOut([self.exporters[_exporter_key(e, pipeline.type)] for e in pipeline.exporters])
            if pipeline.workers > 1:
                from spanguard.collector.workers import PipelineWorkers

                # Processors run in the workers, except those that guard this process (the memory limiter).
                workers = PipelineWorkers(config, pipeline.name, consumer, telemetry=self.metrics)
                built = build_chain(config, pipeline, workers, self.metrics, in_workers=False, shared=shared)
                self.stages.extend([*built.stages, workers])
            else:
                built = build_chain(config, pipeline, consumer, self.metrics, shared=shared)
                self.stages.extend(built.stages)
            for rid in pipeline.receivers:
                entry_points.setdefault(rid, {}).setdefault(pipeline.type, []).append(built.entry)
                admissions.setdefault(rid, []).extend(built.admissions)
        for rid, by_signal in entry_points.items():
            router = SignalRouter(
                {
                    signal: consumers[0] if len(consumers) == 1 else FanOut(consumers)
                    for signal, consumers in by_signal.items()
                }
            )
            target: Consumer = _Admitting(router, admissions[rid]) if admissions[rid] else router
            self.receivers.append(create_component(config, config.receivers[rid], target, self.metrics))
        self._running = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.telemetry_servers: list[Any] = []
        """The metrics endpoint (``service.telemetry.metrics``) and the extensions, started last, stopped last."""
        metrics_address = config.telemetry.metrics_address
        if metrics_address:
            self.telemetry_servers.append(TelemetryServer(metrics_address, self.metrics, self.healthy))
        for xid in config.service_extensions:
            self.telemetry_servers.append(create_component(config, config.extensions[xid], None, self.metrics))

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

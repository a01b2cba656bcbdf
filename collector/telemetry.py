"""The collector's own telemetry: Prometheus metrics on ``/metrics`` and a health check on ``/healthz``.

Counters on the data path are plain increments; everything else (queue sizes, redactions, sampling decisions, review
budget use) is read from the components' ``stats`` when Prometheus scrapes, so it costs nothing per span. Components
register themselves from their factory's ``create`` (:meth:`CollectorMetrics.track`, ``add_source``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from spanguard.collector.confignet import split_endpoint
from spanguard.semconv import SamplingStat

logger = logging.getLogger("spanguard.collector")

Family = Literal["exporter", "redaction", "sampling"]
"""The metric families a component's ``stats`` feed: an exporter's, a redactor's, a tail sampler's."""


class HasStats(Protocol):
    """A component whose counters the telemetry reads at scrape time."""

    @property
    def stats(self) -> dict[str, Any]:
        """The component's counters (see the family functions below for the keys read)."""


class CollectorMetrics:
    """The collector's metrics registry and the data-path counters components report to."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._accepted = Counter(
            "spanguard_receiver_accepted_spans",
            "Spans accepted by a receiver (acknowledged to the client).",
            ["receiver", "transport"],
            registry=self.registry,
        )
        self._refused = Counter(
            "spanguard_receiver_refused_spans",
            "Spans refused by a receiver, by reason (backpressure, invalid, error).",
            ["receiver", "transport", "reason"],
            registry=self.registry,
        )
        # Logs and metrics: the same counts under the signal's item, as the OTel Collector's receiver metrics have it.
        self._accepted_items = {
            name: Counter(
                f"spanguard_receiver_accepted_{name}",
                f"{name.replace('_', ' ').capitalize()} accepted by a receiver (acknowledged to the client).",
                ["receiver", "transport"],
                registry=self.registry,
            )
            for name in ("log_records", "data_points")
        }
        self._refused_items = {
            name: Counter(
                f"spanguard_receiver_refused_{name}",
                f"{name.replace('_', ' ').capitalize()} refused by a receiver, by reason.",
                ["receiver", "transport", "reason"],
                registry=self.registry,
            )
            for name in ("log_records", "data_points")
        }
        self._refused_requests = Counter(
            "spanguard_receiver_refused_requests",
            "Requests refused by a receiver, by reason (counted even when the spans could not be read).",
            ["receiver", "transport", "reason"],
            registry=self.registry,
        )
        self._decisions = Counter(
            "spanguard_sampling_decisions",
            "Tail-sampling decisions per trace, by tier and outcome.",
            ["tier", "kept", "early"],
            registry=self.registry,
        )
        self._sources: list[Callable[[], Iterable[Any]]] = []
        self._tracked: dict[Family, dict[str, HasStats]] = {"exporter": {}, "redaction": {}, "sampling": {}}
        self._health: Callable[[], bool] = lambda: False
        self.add_source(exporter_families(self._tracked["exporter"]))
        self.add_source(redaction_families(self._tracked["redaction"]))
        self.add_source(sampling_families(self._tracked["sampling"]))
        self._install_scrape_collector()

    # ReceiverTelemetry
    def accepted(self, receiver: str, transport: str, spans: int, items: str = "spans") -> None:
        """Count spans (or ``items``: ``log_records``, ``data_points``) a receiver acknowledged."""
        counter = self._accepted if items == "spans" else self._accepted_items[items]
        counter.labels(receiver, transport).inc(spans)

    def refused(self, receiver: str, transport: str, spans: int, reason: str, items: str = "spans") -> None:
        """Count a refused request and the spans (or ``items``) in it (0 when it was refused before it was read)."""
        if items != "spans":
            self._refused_items[items].labels(receiver, transport, reason).inc(spans)
            return
        self._refused.labels(receiver, transport, reason).inc(spans)
        self._refused_requests.labels(receiver, transport, reason).inc()

    # Tail-sampling telemetry
    def decided(self, decision: Any) -> None:
        """Count one tail-sampling decision."""
        self._decisions.labels(decision.tier, str(decision.keep).lower(), str(decision.early).lower()).inc()

    def decided_count(self, tier: str, keep: bool, early: bool, count: int) -> None:
        """Count ``count`` tail-sampling decisions of one kind (made in a worker process)."""
        self._decisions.labels(tier, str(keep).lower(), str(early).lower()).inc(count)

    def track(self, family: Family, name: str, component: HasStats) -> None:
        """Report ``component``'s ``stats`` in ``family``'s metrics under ``name`` (e.g. ``traces/redaction``)."""
        self._tracked[family][name] = component

    def add_source(self, source: Callable[[], Iterable[Any]]) -> None:
        """Register a callable yielding metric families at scrape time (for families of a component's own)."""
        self._sources.append(source)

    def set_health(self, check: Callable[[], bool]) -> None:
        """Where :meth:`healthy` asks (the collector service sets it)."""
        self._health = check

    def healthy(self) -> bool:
        """Whether every pipeline of the collector is running (for the ``health_check`` extension)."""
        return self._health()

    def _install_scrape_collector(self) -> None:
        sources = self._sources

        class _Scrape(Collector):
            def collect(self) -> Iterable[Any]:
                for source in sources:
                    try:
                        yield from source()
                    except Exception:
                        logger.exception("metrics source failed")

        self.registry.register(_Scrape())

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def exporter_families(exporters: dict[str, HasStats]) -> Callable[[], Iterable[Any]]:
    """Scrape-time metrics of exporters: spans sent and failed, queue size and capacity."""

    def families() -> Iterable[Any]:
        sent = CounterMetricFamily("spanguard_exporter_sent_spans", "Spans sent by an exporter.", labels=["exporter"])
        failed = CounterMetricFamily(
            "spanguard_exporter_send_failed_spans", "Spans an exporter failed to send for good.", labels=["exporter"]
        )
        size = GaugeMetricFamily("spanguard_exporter_queue_size", "Batches in the sending queue.", labels=["exporter"])
        capacity = GaugeMetricFamily(
            "spanguard_exporter_queue_capacity", "Capacity of the sending queue.", labels=["exporter"]
        )
        for name, exporter in exporters.items():
            stats = getattr(exporter, "stats", {}) or {}
            sent.add_metric([name], stats.get("sent_spans", 0))
            failed.add_metric([name], stats.get("failed_spans", 0))
            size.add_metric([name], stats.get("queue_size", 0))
            capacity.add_metric([name], stats.get("queue_capacity", 0))
        return [sent, failed, size, capacity]

    return families


def redaction_families(redactors: dict[str, HasStats]) -> Callable[[], Iterable[Any]]:
    """Scrape-time metrics of redaction: redactions by entity type, failures."""

    def families() -> Iterable[Any]:
        redacted = CounterMetricFamily(
            "spanguard_redaction_redacted", "Values redacted, by entity type.", labels=["processor", "entity"]
        )
        failed = CounterMetricFamily(
            "spanguard_redaction_failed", "Values replaced because redaction failed.", labels=["processor"]
        )
        for name, redactor in redactors.items():
            stats = redactor.stats
            for entity, count in sorted(stats.get("redacted", {}).items()):
                redacted.add_metric([name, entity], count)
            failed.add_metric([name], stats.get("failed", 0))
        return [redacted, failed]

    return families


def sampling_families(samplers: dict[str, HasStats]) -> Callable[[], Iterable[Any]]:
    """Scrape-time metrics of tail sampling: buffered and held traces, early decisions, recalls, review budget use."""

    def families() -> Iterable[Any]:
        buffered = GaugeMetricFamily(
            "spanguard_sampling_buffered_traces", "Traces waiting for a decision.", labels=["processor"]
        )
        early = CounterMetricFamily(
            "spanguard_sampling_early_decisions", "Traces decided early (memory bound).", labels=["processor"]
        )
        held = GaugeMetricFamily(
            "spanguard_sampling_held_traces",
            "Dropped traces of sessions held in case their session turns red.",
            labels=["processor"],
        )
        recalled = CounterMetricFamily(
            "spanguard_sampling_session_recalled",
            "Held traces kept after all because their session turned red.",
            labels=["processor"],
        )
        budget = GaugeMetricFamily(
            "spanguard_review_budget_used", "Traces sent to review today, by review tier.", labels=["processor", "tier"]
        )
        limit = GaugeMetricFamily(
            "spanguard_review_budget_limit", "Daily review budget, by review tier.", labels=["processor", "tier"]
        )
        for name, stage in samplers.items():
            stats = stage.stats
            buffered.add_metric([name], stats.get(SamplingStat.BUFFERED_TRACES, 0))
            early.add_metric([name], stats.get(SamplingStat.EARLY_DECISIONS, 0))
            held.add_metric([name], stats.get(SamplingStat.HELD_TRACES, 0))
            recalled.add_metric([name], stats.get(SamplingStat.SESSION_RECALLED, 0))
            for tier, use in (stats.get(SamplingStat.REVIEW_BUDGET) or {}).items():
                if isinstance(use, dict):
                    budget.add_metric([name, tier], use.get("used", 0))
                    if use.get("limit") is not None:
                        limit.add_metric([name, tier], use["limit"])
        return [buffered, early, held, recalled, budget, limit]

    return families


class TelemetryServer:
    """Serves ``/metrics`` (Prometheus) and ``/healthz`` (200 only when every pipeline runs) on one address."""

    def __init__(self, address: str, metrics: CollectorMetrics | None, healthy: Callable[[], bool]) -> None:
        host, port = split_endpoint(address, empty_host="127.0.0.1")
        metrics_ref, healthy_ref = metrics, healthy

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics" and metrics_ref is not None:
                    body, status, kind = metrics_ref.render(), 200, "text/plain; version=0.0.4; charset=utf-8"
                elif self.path in ("/healthz", "/"):
                    ok = healthy_ref()
                    body = b'{"status":"ok"}' if ok else b'{"status":"unavailable"}'
                    status, kind = (200 if ok else 503), "application/json"
                else:
                    body, status, kind = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.server_address[1]

    def start(self) -> None:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="spanguard-telemetry", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving (idempotent, safe unstarted)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()

"""Providers built from the standard ``OTEL_*`` variables, for apps that registered none themselves.

Traces: ``OTEL_TRACES_EXPORTER`` (default ``otlp``; ``console``, ``none`` or any installed exporter's entry-point
name), with ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` choosing gRPC (default, as the Python SDK does) or
``http/protobuf``; endpoint, headers and TLS are read by the official exporters themselves. Metrics are set up only
when ``OTEL_METRICS_EXPORTER`` names an exporter (a collector takes them only where it has a metrics pipeline).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import ProxyTracerProvider, TracerProvider
from opentelemetry.util._importlib_metadata import entry_points

logger = logging.getLogger("spanguard")

_BY_PROTOCOL: Final = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http", "http/json": "otlp_json_http"}


def exporter_names(signal: str, default: str) -> list[str]:
    """The exporter names ``OTEL_{SIGNAL}_EXPORTER`` lists, ``none`` giving an empty list."""
    value = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", default)
    names = [name.strip() for name in value.split(",") if name.strip()]
    return [] if names == ["none"] else [name for name in names if name != "none"]


def entry_point_name(name: str, signal: str) -> str:
    """Map ``otlp`` to the entry point of the configured OTLP protocol; other names stay as they are."""
    if name != "otlp":
        return name
    protocol = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol not in _BY_PROTOCOL:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not one of {', '.join(_BY_PROTOCOL)}")
    return _BY_PROTOCOL[protocol]


def load_exporter(name: str, signal: str) -> object | None:
    """Instantiate the exporter that the entry point ``name`` of ``opentelemetry_{signal}_exporter`` names."""
    try:
        point = entry_point_name(name, signal)
        found = list(entry_points(group=f"opentelemetry_{signal}_exporter", name=point))
        if not found:
            raise ValueError(f"no installed exporter is named {point!r} (from OTEL_{signal.upper()}_EXPORTER)")
        return found[0].load()()
    except Exception as error:
        # A bad setting must not stop the app: it runs, without that exporter, and says why.
        logger.warning("spanguard: %s exporter %r is not used: %s", signal, name, error)
        return None


def build_tracer_provider(*, shutdown_on_exit: bool = True) -> SdkTracerProvider:
    """A tracer provider with the resource from ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` and exporters."""
    provider = SdkTracerProvider(resource=Resource.create(), shutdown_on_exit=shutdown_on_exit)
    for name in exporter_names("traces", "otlp"):
        exporter = load_exporter(name, "traces")
        if isinstance(exporter, SpanExporter):
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def shutdown_timeout_setting(value: float | None) -> float | None:
    """The bound on the exit-time flush: ``value``, else ``OTEL_BSP_EXPORT_TIMEOUT`` (milliseconds), else none."""
    if value is not None:
        if not (isinstance(value, (int, float)) and value >= 0 and value == value):
            raise ValueError(f"shutdown_timeout must be a number of seconds >= 0, not {value!r}")
        return float(value)
    raw = os.environ.get("OTEL_BSP_EXPORT_TIMEOUT", "").strip()
    if not raw:
        return None
    try:
        millis = float(raw)
    except ValueError:
        logger.warning("spanguard: OTEL_BSP_EXPORT_TIMEOUT=%r is not a number of milliseconds; ignored", raw)
        return None
    return max(0.0, millis / 1000)


def bounded_shutdown(provider: SdkTracerProvider, timeout: float | None) -> None:
    """Shut ``provider`` down (flushing its batch processors), waiting at most ``timeout`` seconds (None: as long as
    the exporters take); what is not exported by then is dropped, so an app never hangs at exit on a collector that
    is down."""
    if timeout is None:
        provider.shutdown()
        return
    worker = threading.Thread(target=provider.shutdown, name="spanguard-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        logger.warning("spanguard: spans not exported within the %.1f s shutdown timeout were dropped", timeout)


def ensure_tracer_provider(shutdown_timeout: float | None = None) -> TracerProvider | None:
    """Register a provider built from the environment when the app has none; return it (or ``None``: global).

    It is flushed and shut down at exit, within ``shutdown_timeout`` seconds when one is set.
    """
    if not isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        return None
    provider = build_tracer_provider(shutdown_on_exit=False)
    trace.set_tracer_provider(provider)
    atexit.register(bounded_shutdown, provider, shutdown_timeout)
    return provider


def ensure_meter_provider() -> MeterProvider | None:
    """Register a meter provider when ``OTEL_METRICS_EXPORTER`` asks for one and the app has none."""
    names = exporter_names("metrics", "none")
    if not names or type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider":
        return None
    readers = []
    for name in names:
        exporter = load_exporter(name, "metrics")
        if isinstance(exporter, MetricExporter):
            readers.append(PeriodicExportingMetricReader(exporter))
    provider = SdkMeterProvider(resource=Resource.create(), metric_readers=readers)
    metrics.set_meter_provider(provider)
    return provider

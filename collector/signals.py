"""The three OTLP signals a pipeline can carry, each described once: its request, service, path and items.

Every part of the collector that differs by signal (the receiver's services and paths, the exporters' requests, the
batches' counts) reads it from a :class:`Signal` here instead of naming trace types. Behaviour:
docs/collector-config.md ("Pipelines").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["LOGS", "METRICS", "SIGNALS", "TRACES", "Signal", "SignalName", "data_points"]

SignalName = Literal["traces", "logs", "metrics"]


def _spans(resources: Sequence[Any]) -> int:
    return sum(len(scope.spans) for resource in resources for scope in resource.scope_spans)


def _log_records(resources: Sequence[Any]) -> int:
    return sum(len(scope.log_records) for resource in resources for scope in resource.scope_logs)


def data_points(metric: Any) -> int:
    """How many data points one ``Metric`` holds (what the OTel Collector counts for metrics; a histogram's point is
    one)."""
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind is not None else 0


def _data_points(resources: Sequence[Any]) -> int:
    return sum(
        data_points(metric) for resource in resources for scope in resource.scope_metrics for metric in scope.metrics
    )


@dataclass(frozen=True)
class Signal:
    """What the collector needs to know of one signal (see the module docstring)."""

    name: SignalName
    request: type[Message]
    """The ``Export*ServiceRequest`` message class."""
    response: type[Message]
    """The ``Export*ServiceResponse`` message class."""
    field: str
    """The request's repeated resource field: ``resource_spans``, ``resource_logs`` or ``resource_metrics``."""
    service: str
    """The OTLP/gRPC service's full name."""
    path: str
    """The OTLP/HTTP path (``/v1/traces``, ``/v1/logs``, ``/v1/metrics``)."""
    items: str
    """What the signal's counts count, in words (``spans``, ``log records``, ``data points``)."""
    rejected_field: str
    """The field of a response's ``partial_success`` that counts rejected items."""
    count: Callable[[Sequence[Any]], int]
    """How many items the given resource messages hold."""
    scopes_field: str
    """A resource message's repeated scope field: ``scope_spans``, ``scope_logs``, ``scope_metrics``."""
    items_field: str
    """A scope message's repeated item field: ``spans``, ``log_records``, ``metrics``."""

    @property
    def export_method(self) -> str:
        """The gRPC method path of the signal's ``Export``."""
        return f"/{self.service}/Export"

    def resources(self, request: Message) -> Any:
        """The request's repeated resource messages."""
        return getattr(request, self.field)

    def make_request(self, resources: Sequence[Any]) -> Message:
        """A request holding ``resources`` (copied into it, as protobuf does)."""
        return self.request(**{self.field: resources})


TRACES: Final = Signal(
    "traces",
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    "resource_spans",
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "/v1/traces",
    "spans",
    "rejected_spans",
    _spans,
    "scope_spans",
    "spans",
)
LOGS: Final = Signal(
    "logs",
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    "resource_logs",
    "opentelemetry.proto.collector.logs.v1.LogsService",
    "/v1/logs",
    "log records",
    "rejected_log_records",
    _log_records,
    "scope_logs",
    "log_records",
)
METRICS: Final = Signal(
    "metrics",
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    "resource_metrics",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "/v1/metrics",
    "data points",
    "rejected_data_points",
    _data_points,
    "scope_metrics",
    "metrics",
)
SIGNALS: Final[dict[str, Signal]] = {signal.name: signal for signal in (TRACES, LOGS, METRICS)}
"""The signals by name, in the order pipelines are listed."""

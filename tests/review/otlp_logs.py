"""A real OTLP/gRPC logs receiver for tests: records every ExportLogsServiceRequest it is sent."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Received:
    """What a receiver got: every request, its metadata or headers, and the log records with resource and scope."""

    def __init__(self) -> None:
        self.requests: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def take(self, request: logs_service_pb2.ExportLogsServiceRequest, headers: dict[str, str], path: str) -> None:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            self.paths.append(path)

    def records(self) -> list[tuple[dict[str, Any], str, LogRecord]]:
        """(resource attributes, scope name, record) of every log record received."""
        out = []
        for request in self.requests:
            for resource_logs in request.resource_logs:
                resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
                for scope_logs in resource_logs.scope_logs:
                    out.extend((resource, scope_logs.scope.name, record) for record in scope_logs.log_records)
        return out


def attributes_of(record: LogRecord) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in record.attributes}


class GrpcLogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request, context):  # the generated servicer's method name
        self.received.take(request, dict(context.invocation_metadata()), "LogsService/Export")
        return logs_service_pb2.ExportLogsServiceResponse()

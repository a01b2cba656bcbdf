"""How the ``debug`` exporter "sends": it logs counts, span names and ids, or everything (docs/collector-config.md)."""

from __future__ import annotations

import json
import logging

from spanguard.collector.signals import LOGS, TRACES
from spanguard.exporters.debug.config import DebugExporterConfig
from spanguard.exporters.exporterhelper.sending import Payload, SendResult

__all__ = ["DebugSender"]

logger = logging.getLogger("spanguard.collector.exporter")
debug_logger = logging.getLogger("spanguard.collector.exporter.debug")


def _hex(value: bytes) -> str:
    return value.hex()


class DebugSender:
    """Logs what passes: counts (``basic``), span names and ids (``normal``), everything (``detailed``)."""

    def __init__(self, name: str, config: DebugExporterConfig) -> None:
        self._name = name
        self.verbosity = config.verbosity

    def start(self) -> None:
        if self.verbosity == "detailed":
            logger.warning(
                "exporter %s logs span attributes (verbosity: detailed): put it after the redaction processor",
                self._name,
                extra={"exporter": self._name},
            )

    def send(self, payload: Payload) -> SendResult:
        if payload.signal is not TRACES:
            return self._send_other(payload)
        request = payload.request
        extra = {"exporter": self._name}
        debug_logger.info(
            "%s: %d resource spans, %d spans", self._name, len(request.resource_spans), payload.spans, extra=extra
        )
        if self.verbosity == "basic":
            return SendResult()
        from google.protobuf import json_format

        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    debug_logger.info(
                        "%s: span %r trace_id=%s span_id=%s parent_span_id=%s scope=%r",
                        self._name,
                        span.name,
                        _hex(span.trace_id),
                        _hex(span.span_id),
                        _hex(span.parent_span_id),
                        scope.scope.name,
                        extra=extra,
                    )
                    if self.verbosity == "detailed":
                        attributes = json_format.MessageToDict(span, preserving_proto_field_name=True).get(
                            "attributes", []
                        )
                        resource_attributes = json_format.MessageToDict(
                            resource.resource, preserving_proto_field_name=True
                        ).get("attributes", [])
                        debug_logger.info(
                            "%s: span_id=%s attributes=%s resource=%s",
                            self._name,
                            _hex(span.span_id),
                            json.dumps(attributes, ensure_ascii=False),
                            json.dumps(resource_attributes, ensure_ascii=False),
                            extra=extra,
                        )
        return SendResult()

    def _send_other(self, payload: Payload) -> SendResult:
        """Logs and metrics: counts; log records' event names and ids, metrics' names (``normal``); log records'
        attributes and bodies (``detailed``)."""
        signal = payload.signal
        resources = signal.resources(payload.request)
        extra = {"exporter": self._name}
        debug_logger.info(
            "%s: %d resource %s, %d %s",
            self._name,
            len(resources),
            signal.name,
            payload.spans,
            signal.items,
            extra=extra,
        )
        if self.verbosity == "basic":
            return SendResult()
        from google.protobuf import json_format

        for resource in resources:
            if signal is LOGS:
                for scope in resource.scope_logs:
                    for record in scope.log_records:
                        debug_logger.info(
                            "%s: log record event_name=%r severity=%s trace_id=%s span_id=%s scope=%r",
                            self._name,
                            record.event_name,
                            record.severity_text or record.severity_number,
                            _hex(record.trace_id),
                            _hex(record.span_id),
                            scope.scope.name,
                            extra=extra,
                        )
                        if self.verbosity == "detailed":
                            fields = json_format.MessageToDict(record, preserving_proto_field_name=True)
                            debug_logger.info(
                                "%s: log record attributes=%s body=%s",
                                self._name,
                                json.dumps(fields.get("attributes", []), ensure_ascii=False),
                                json.dumps(fields.get("body", {}), ensure_ascii=False),
                                extra=extra,
                            )
            else:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data") or "none"
                        points = len(getattr(metric, kind).data_points) if kind != "none" else 0
                        debug_logger.info(
                            "%s: metric %r %s, %d data point(s), scope=%r",
                            self._name,
                            metric.name,
                            kind,
                            points,
                            scope.scope.name,
                            extra=extra,
                        )
        return SendResult()

    def close(self) -> None:
        pass

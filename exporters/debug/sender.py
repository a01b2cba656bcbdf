"""How the ``debug`` exporter "sends": it logs counts, span names and ids, or everything (docs/collector-config.md)."""

from __future__ import annotations

import json
import logging

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

    def close(self) -> None:
        pass

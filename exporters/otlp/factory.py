"""The ``otlp`` exporter's factory (docs/collector-config.md, "otlp")."""

from __future__ import annotations

from typing import Any

from spanguard.collector.component import Factory, Settings
from spanguard.collector.signals import SIGNALS
from spanguard.exporters.exporterhelper.exporter import Exporter, new_exporter
from spanguard.exporters.otlp.config import OtlpExporterConfig
from spanguard.exporters.otlp.sender import GrpcSender

__all__ = ["new_factory"]


def create(settings: Settings, next_consumer: Any, telemetry: Any) -> Exporter:
    """An OTLP/gRPC exporter behind a sending queue with retries."""
    config = settings.config
    assert isinstance(config, OtlpExporterConfig)
    return new_exporter(
        settings,
        GrpcSender(config, SIGNALS[settings.signal]),
        telemetry,
        queue_config=config.sending_queue,
        retry=config.retry_on_failure,
    )


def new_factory() -> Factory:
    """The ``otlp`` exporter's factory."""
    return Factory("exporter", "otlp", OtlpExporterConfig, create=create, signals=tuple(SIGNALS))

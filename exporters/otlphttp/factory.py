"""The ``otlphttp`` exporter's factory (docs/collector-config.md, "otlphttp")."""

from __future__ import annotations

from typing import Any

from spanguard.collector.component import Factory, Settings
from spanguard.collector.config import CONFIG_LABEL
from spanguard.collector.signals import SIGNALS
from spanguard.exporters.exporterhelper.exporter import Exporter, new_exporter
from spanguard.exporters.otlphttp.config import OtlpHttpExporterConfig
from spanguard.exporters.otlphttp.sender import HttpSender
from spanguard.yamlconfig import ConfigError

__all__ = ["new_factory"]


def create(settings: Settings, next_consumer: Any, telemetry: Any) -> Exporter:
    """An OTLP/HTTP exporter behind a sending queue with retries."""
    config = settings.config
    assert isinstance(config, OtlpHttpExporterConfig)
    try:
        sender = HttpSender(config, SIGNALS[settings.signal])
    except ValueError as error:
        raise ConfigError(f"exporters.{settings.id}: {error}", label=CONFIG_LABEL) from None
    return new_exporter(settings, sender, telemetry, queue_config=config.sending_queue, retry=config.retry_on_failure)


def new_factory() -> Factory:
    """The ``otlphttp`` exporter's factory."""
    return Factory("exporter", "otlphttp", OtlpHttpExporterConfig, create=create, signals=tuple(SIGNALS))

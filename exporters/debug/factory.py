"""The ``debug`` exporter's factory (docs/collector-config.md, "debug")."""

from __future__ import annotations

from typing import Any

from spanguard.collector.component import Factory, Settings
from spanguard.collector.signals import SIGNALS
from spanguard.exporters.debug.config import DebugExporterConfig
from spanguard.exporters.debug.sender import DebugSender
from spanguard.exporters.exporterhelper.exporter import Exporter, new_exporter

__all__ = ["new_factory"]


def create(settings: Settings, next_consumer: Any, telemetry: Any) -> Exporter:
    """A debug exporter: it logs inside ``consume`` (no queue)."""
    config = settings.config
    assert isinstance(config, DebugExporterConfig)
    return new_exporter(settings, DebugSender(settings.id, config), telemetry)


def new_factory() -> Factory:
    """The ``debug`` exporter's factory."""
    return Factory("exporter", "debug", DebugExporterConfig, create=create, signals=tuple(SIGNALS))

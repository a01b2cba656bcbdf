"""The ``file`` exporter's factory (docs/collector-config.md, "file")."""

from __future__ import annotations

from typing import Any

from spanguard.collector.component import Factory, Settings
from spanguard.collector.signals import SIGNALS
from spanguard.exporters.exporterhelper.exporter import Exporter, new_exporter
from spanguard.exporters.file.config import FileExporterConfig
from spanguard.exporters.file.sender import FileSender

__all__ = ["new_factory"]


def create(settings: Settings, next_consumer: Any, telemetry: Any) -> Exporter:
    """A file exporter: it writes inside ``consume`` (no queue): the line is in the file once the batch is taken."""
    config = settings.config
    assert isinstance(config, FileExporterConfig)
    return new_exporter(settings, FileSender(config), telemetry)


def new_factory() -> Factory:
    """The ``file`` exporter's factory."""
    return Factory("exporter", "file", FileExporterConfig, create=create, signals=tuple(SIGNALS))

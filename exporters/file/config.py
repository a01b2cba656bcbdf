"""The ``file`` exporter's settings (docs/collector-config.md, "file")."""

from __future__ import annotations

import pydantic
from spanguard.exporters.exporterhelper.sending import SettingsModel

__all__ = ["FileExporterConfig", "RotationConfig"]


class RotationConfig(SettingsModel):
    """``rotation``: start a new file once the current one would pass ``max_megabytes``; keep ``max_backups``."""

    max_megabytes: int = pydantic.Field(default=100, ge=1)
    max_backups: int = pydantic.Field(default=3, ge=0)


class FileExporterConfig(SettingsModel):
    """``exporters.file``: OTLP JSON lines, one ``ExportTraceServiceRequest`` per line, flushed per batch."""

    path: str = pydantic.Field(min_length=1)
    rotation: RotationConfig | None = None

"""The ``file`` exporter's settings (docs/collector-config.md, "file")."""

from __future__ import annotations

import pydantic

from spanguard.exporters.exporterhelper.sending import SettingsModel

__all__ = ["FileExporterConfig", "RotationConfig"]


class RotationConfig(SettingsModel):
    """``rotation``: start a new file once the current one would pass ``max_megabytes``; keep ``max_backups``."""

    max_megabytes: int = pydantic.Field(default=100, ge=1)
    """Start a new file once the current one would grow past this size."""
    max_backups: int = pydantic.Field(default=3, ge=0)
    """Rotated files kept (``path.1`` newest); ``0`` keeps none."""


class FileExporterConfig(SettingsModel):
    """``exporters.file``: OTLP JSON lines, one ``ExportTraceServiceRequest`` per line, flushed per batch."""

    path: str = pydantic.Field(min_length=1)
    """File to append to (its directory is created); a batch is written and flushed before it is acknowledged."""
    rotation: RotationConfig | None = None
    """Size-based rotation; none by default (the file grows without limit)."""

"""The ``debug`` exporter's settings (docs/collector-config.md, "debug")."""

from __future__ import annotations

from typing import Literal

from spanguard.exporters.exporterhelper.sending import SettingsModel

__all__ = ["DebugExporterConfig"]


class DebugExporterConfig(SettingsModel):
    """``exporters.debug``: logs batch counts (``basic``), span names and ids (``normal``), or everything including
    attributes (``detailed``: it logs span content, so only after redaction)."""

    verbosity: Literal["basic", "normal", "detailed"] = "basic"
    """``basic``: batch counts; ``normal``: also span names and ids; ``detailed``: also attributes (span content: put
    it after redaction)."""

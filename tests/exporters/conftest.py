"""Exporter tests: tests/collector (the OTLP sink, ``make_exporter``) on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

_HELPERS = str(Path(__file__).resolve().parents[1] / "collector")
if _HELPERS not in sys.path:
    sys.path.insert(0, _HELPERS)

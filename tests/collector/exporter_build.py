"""Builds an exporter as the collector does: by its type's factory, from a config mapping (tests only)."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel
from spanguard.collector.component import Settings
from spanguard.exporters.exporterhelper.exporter import Exporter


def make_exporter(
    type_: str, component_id: str, config: BaseModel | dict[str, Any] | None = None, telemetry: Any = None
) -> Exporter:
    """The ``type_`` exporter (``otlp``, ``file``, ...) called ``component_id``, from its config model or a mapping."""
    factory = importlib.import_module(f"spanguard.exporters.{type_}.factory").new_factory()
    model = config if isinstance(config, BaseModel) else factory.config_class.model_validate(config or {})
    assert factory.create is not None
    return factory.create(Settings(component_id, "exporter", type_, model), None, telemetry)

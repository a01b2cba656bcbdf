"""The ``health_check`` extension's factory. See docs/collector-config.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Factory, Settings
from spanguard.collector.extensions.health_check.config import HealthCheckConfig
from spanguard.collector.telemetry import TelemetryServer

__all__ = ["new_factory"]

TYPE: Final = "health_check"


def _create(settings: Settings, next_consumer: None, telemetry: Any) -> TelemetryServer:
    config = settings.config
    assert isinstance(config, HealthCheckConfig)
    return TelemetryServer(config.endpoint, None, telemetry.healthy)


def new_factory() -> Factory:
    """The ``health_check`` extension's factory."""
    return Factory("extension", TYPE, HealthCheckConfig, create=_create)

"""The ``review`` exporter's factory (docs/collector-config.md, "review")."""

from __future__ import annotations

from typing import Any

from spanguard.collector.component import Factory, Settings
from spanguard.exporters.exporterhelper.exporter import Exporter, new_exporter
from spanguard.exporters.review.config import ReviewExporterConfig
from spanguard.exporters.review.sender import ReviewSender

__all__ = ["new_factory"]


def create(settings: Settings, next_consumer: Any, telemetry: Any) -> Exporter:
    """A review-items exporter behind a sending queue with retries."""
    config = settings.config
    assert isinstance(config, ReviewExporterConfig)
    return new_exporter(
        settings, ReviewSender(config), telemetry, queue_config=config.sending_queue, retry=config.retry_on_failure
    )


def new_factory() -> Factory:
    """The ``review`` exporter's factory."""
    return Factory("exporter", "review", ReviewExporterConfig, create=create)

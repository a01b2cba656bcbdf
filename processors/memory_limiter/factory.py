"""The ``memory_limiter`` processor's factory. Behaviour: docs/collector-config.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Consumer, Factory, Settings
from spanguard.collector.signals import SIGNALS
from spanguard.processors.memory_limiter.config import MemoryLimiterConfig
from spanguard.processors.memory_limiter.limiter import MemoryLimiter

__all__ = ["new_factory"]

TYPE: Final = "memory_limiter"


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> MemoryLimiter:
    config = settings.config
    assert isinstance(config, MemoryLimiterConfig)
    return MemoryLimiter(config, next_consumer)


def new_factory() -> Factory:
    """The ``memory_limiter`` processor's factory: built in the collector's own process (it guards that process and
    its workers, and vets requests before they are parsed)."""
    return Factory("processor", TYPE, MemoryLimiterConfig, create=_create, in_workers=False, signals=tuple(SIGNALS))

"""The ``otlp`` receiver's factory. Behaviour: docs/collector-config.md."""

from __future__ import annotations

from typing import Any, Final

from spanguard.collector.component import Admission, Consumer, Factory, Settings
from spanguard.collector.receivers.otlp.config import OtlpReceiverConfig
from spanguard.collector.signals import SIGNALS

__all__ = ["new_factory"]

TYPE: Final = "otlp"


def _create(settings: Settings, next_consumer: Consumer, telemetry: Any) -> Any:
    # The servers (grpc, uvicorn) are imported only when a receiver is built, not when configs are validated.
    from spanguard.collector.receivers.otlp.receiver import OtlpReceiver

    config = settings.config
    assert isinstance(config, OtlpReceiverConfig)
    # A pipeline entry that is an Admission (a memory limiter) vets each request's size before it is parsed.
    admission = next_consumer.admit if isinstance(next_consumer, Admission) else None
    return OtlpReceiver(settings.id, config, next_consumer, telemetry=telemetry, admission=admission)


def new_factory() -> Factory:
    """The ``otlp`` receiver's factory."""
    return Factory("receiver", TYPE, OtlpReceiverConfig, create=_create, signals=tuple(SIGNALS))

"""The ``health_check`` extension's config model (``extensions.health_check``). See docs/collector-config.md."""

from __future__ import annotations

import pydantic

from spanguard.collector.confignet import Endpoint

__all__ = ["HealthCheckConfig"]


class HealthCheckConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``extensions.health_check``: where ``/healthz`` is served."""

    endpoint: Endpoint = "127.0.0.1:13133"
    """Where ``/healthz`` is served (``host:port``); it answers 200 while every pipeline runs, else 503."""

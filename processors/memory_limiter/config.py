"""The ``memory_limiter`` processor's config model (``processors.memory_limiter``); docs/collector-config.md."""

from __future__ import annotations

import pydantic

from spanguard.durations import Duration

__all__ = ["MemoryLimiterConfig"]


class MemoryLimiterConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.memory_limiter``: the limit and how often the process's memory is read."""

    limit_mib: int = pydantic.Field(gt=0)
    """The most resident memory (of the collector and its worker processes) the collector may use."""
    spike_limit_mib: int | None = pydantic.Field(default=None, ge=0)
    """Headroom for requests in flight: refusing starts at ``limit_mib - spike_limit_mib`` (default 20 % of the limit),
    as in the OpenTelemetry Collector, since a request admitted now still grows while it is parsed and processed."""
    check_interval: Duration = 0.5
    """How often the resident memory is read (a duration)."""
    retry_after: Duration = 1.0
    """How long refused clients are told to wait before they retry (a duration)."""

    @pydantic.model_validator(mode="after")
    def _spike_below_limit(self) -> MemoryLimiterConfig:
        if self.spike_limit_mib is not None and self.spike_limit_mib >= self.limit_mib:
            raise ValueError("spike_limit_mib must be less than limit_mib")
        return self

    @property
    def soft_limit_bytes(self) -> int:
        """Where refusing starts: ``limit_mib - spike_limit_mib``, in bytes."""
        spike = self.spike_limit_mib if self.spike_limit_mib is not None else self.limit_mib // 5
        return (self.limit_mib - spike) * 1024 * 1024

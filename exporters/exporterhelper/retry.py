"""Retry on failure, after the OpenTelemetry Collector's ``retry_on_failure``: exponential backoff with jitter, and
which gRPC codes and HTTP statuses are retryable (as the OTLP specification says). A server's delay hint
(``Retry-After``, ``RetryInfo``) never shortens the backoff. Behaviour: docs/collector-config.md, "Exporters".
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pydantic

from spanguard.durations import Duration

__all__ = [
    "Backoff",
    "RetryConfig",
    "SendError",
    "classify_grpc_error",
    "classify_http_status",
    "parse_retry_after",
]


class RetryConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``retry_on_failure``: exponential backoff with jitter; ``max_elapsed_time: 0`` retries without limit."""

    enabled: bool = True
    """Retry retryable failures (connection errors, timeouts, ``UNAVAILABLE``, 429, 502, 503, 504, ...); ``false``
    gives up on the first failure."""
    initial_interval: Duration = 5.0
    """Wait before the first retry; each further wait is ``multiplier`` times longer."""
    max_interval: Duration = 30.0
    """Longest wait between two retries."""
    max_elapsed_time: Duration = 300.0
    """Give up on a batch (logged and counted as failed) once this long has passed since its first try; ``0`` retries
    without limit."""
    multiplier: float = 1.5
    """Growth of the wait from one retry to the next (at least 1)."""
    randomization_factor: float = 0.5
    """Jitter: each wait is picked within this fraction either side (0 to below 1); a server's ``Retry-After`` or
    ``RetryInfo`` is a floor."""

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> RetryConfig:
        if self.initial_interval <= 0:
            raise ValueError("initial_interval must be > 0")
        if self.max_interval < self.initial_interval:
            raise ValueError("max_interval must be >= initial_interval")
        if not self.multiplier >= 1.0:
            raise ValueError("multiplier must be >= 1")
        if not 0.0 <= self.randomization_factor < 1.0:
            raise ValueError("randomization_factor must be in [0, 1)")
        return self


class SendError(Exception):
    """A failed export attempt, classified. The message never holds span content."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Backoff:
    """The delays of one item's retries: ``initial * multiplier**n`` capped at ``max_interval``, with jitter.

    :meth:`next_delay` answers ``None`` once waiting would pass ``max_elapsed_time`` (counted from construction).
    """

    def __init__(self, config: RetryConfig, *, clock: Any = time.monotonic, rng: random.Random | None = None) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._start = clock()
        self._interval = config.initial_interval
        self.attempts = 0

    def next_delay(self, hint: float | None = None) -> float | None:
        """The wait before the next attempt (at least ``hint``), or ``None`` to give up."""
        config = self._config
        factor = config.randomization_factor
        delay = self._interval * (1.0 + factor * (2.0 * self._rng.random() - 1.0)) if factor else self._interval
        self._interval = min(self._interval * config.multiplier, config.max_interval)
        if hint is not None:
            delay = max(delay, hint)
        self.attempts += 1
        if config.max_elapsed_time > 0 and self._clock() - self._start + delay > config.max_elapsed_time:
            return None
        return delay


# gRPC ------------------------------------------------------------------------------------------------------------

_GRPC_RETRYABLE = {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}


def _retry_info_delay(error: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay a gRPC error carries in its status details, if any."""
    try:
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status

        status = rpc_status.from_call(error)
    except Exception:  # no details, malformed details, or not a call
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return max(0.0, info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def classify_grpc_error(error: Any) -> SendError:
    """A ``grpc.RpcError`` as a :class:`SendError` (retryable or permanent, with the server's delay if any)."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    name = getattr(code, "name", "UNKNOWN")
    details = error.details() if callable(getattr(error, "details", None)) else None
    delay = _retry_info_delay(error)
    retryable = name in _GRPC_RETRYABLE or (name == "RESOURCE_EXHAUSTED" and delay is not None)
    message = f"gRPC {name}" + (f": {_short(details)}" if details else "")
    return SendError(message, retryable=retryable, retry_after=delay)


# HTTP ------------------------------------------------------------------------------------------------------------

_HTTP_RETRYABLE = {429, 502, 503, 504}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` when absent or malformed."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def classify_http_status(status: int, headers: Mapping[str, str], detail: str | None = None) -> SendError:
    """A non-2xx HTTP answer as a :class:`SendError`."""
    retryable = status in _HTTP_RETRYABLE
    delay = parse_retry_after(headers.get("retry-after")) if retryable else None
    message = f"HTTP {status}" + (f": {_short(detail)}" if detail else "")
    return SendError(message, retryable=retryable, retry_after=delay)


def _short(text: str, limit: int = 200) -> str:
    """A server's message, on one line and bounded (it is logged)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

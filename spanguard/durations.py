"""Durations in configs: seconds as numbers, or Go-style strings as in the OpenTelemetry Collector ("10s", "1m30s").

One parser for every config in spanguard (collector components, processors, exporters).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_HELP: Final = "use a number of seconds or a duration such as '10s', '500ms', '1m30s', '2h'"


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds), a :class:`~datetime.timedelta` or a Go-style duration string.

    The strings are those of Go's ``time.ParseDuration`` (as in the OTel Collector) without a sign: one or more
    ``<number><unit>`` parts with units ``ns``, ``us`` (``µs``), ``ms``, ``s``, ``m``, ``h``, e.g. ``"10s"``,
    ``"500ms"``, ``"1m30s"``, ``"1.5h"``, and ``"0"``. A string number without a unit (``"10"``) is refused, as in
    Go, because it is ambiguous; a YAML number (``10``) means seconds. Negative and non-finite values are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or a string such as '10s', not a boolean ({value})")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text == "0":
            return 0.0
        if not text:
            raise ValueError(f"empty duration: {_DURATION_HELP}")
        if re.fullmatch(r"[0-9]*\.?[0-9]+", text):
            raise ValueError(f"invalid duration {value!r}: missing unit (write {text}s, or the number {text})")
        seconds, pos = 0.0, 0
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if match is None:
                raise ValueError(f"invalid duration {value!r}: {_DURATION_HELP} (units: ns, us, ms, s, m, h)")
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
    else:
        raise ValueError(f"a duration is a number of seconds or a string such as '10s', not {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be finite and not negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A duration in seconds (float) for config models: accepts ``10``, ``0.5``, ``"10s"``, ``"1m30s"``."""

"""``service.telemetry.logs.encoding``: the collector's own logs as JSON lines (the default) or console text."""

from __future__ import annotations

import json
import logging

import pytest

from spanguard._logging import ConsoleFormatter, JsonFormatter, configure_logging
from spanguard.collector.config import TelemetryConfig


def record(message: str = "receiver %s listening", *args: object) -> logging.LogRecord:
    return logging.LogRecord("spanguard.collector", logging.INFO, __file__, 1, message, args or ("otlp",), None)


def test_json_is_the_default_and_one_object_per_line():
    assert TelemetryConfig().logs_encoding == "json"
    entry = json.loads(JsonFormatter().format(record()))
    assert (entry["level"], entry["logger"], entry["msg"]) == ("info", "spanguard.collector", "receiver otlp listening")


def test_console_is_one_line_of_text():
    line = ConsoleFormatter().format(record())
    ts, level, logger, message = line.split("\t")
    assert ts.endswith("Z") and (level, logger, message) == ("info", "spanguard.collector", "receiver otlp listening")
    try:
        raise ValueError("secret span content")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert ConsoleFormatter().format(failed).endswith("\tfailed\terror=ValueError")


@pytest.mark.parametrize(("encoding", "formatter"), [("json", JsonFormatter), ("console", ConsoleFormatter)])
def test_configure_logging_uses_the_encoding(encoding, formatter):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("warn", encoding)
        [handler] = root.handlers
        assert isinstance(handler.formatter, formatter) and root.level == logging.WARNING
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_library_loggers_stay_at_warning_whatever_the_level():
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure_logging("debug", "json")
        for name in ("presidio-analyzer", "httpx", "alembic", "uvicorn.error", "grpc"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
        assert logging.getLogger("spanguard.collector").getEffectiveLevel() == logging.DEBUG
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

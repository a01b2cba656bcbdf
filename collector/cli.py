"""``spanguard collector [--config FILE]`` and ``spanguard collector validate --config FILE``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from spanguard._logging import quiet_library_loggers


class JsonFormatter(logging.Formatter):
    """One JSON object per line; messages are spanguard's own, never span content."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``<time> <level> <logger> <message>`` per line, for a terminal; like :class:`JsonFormatter`, no span content."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one line of text."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = f"{ts}\t{record.levelname.lower()}\t{record.name}\t{record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            line += f"\terror={record.exc_info[0].__name__}"
        return line


def configure_logging(level: str = "info", encoding: str = "json") -> None:
    """Logs on stderr, one JSON object (``encoding`` ``json``) or one line of text (``console``) per record; the HTTP
    and gRPC client libraries only from WARNING up, whatever ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter() if encoding == "console" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_library_loggers()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The collector's command-line arguments."""
    parser.add_argument(
        "action", nargs="?", choices=["run", "validate"], default="run", help="run (default) or validate"
    )
    parser.add_argument("--config", required=True, help="the collector's YAML config")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0, help="seconds to drain queues on SIGTERM")


def run(args: argparse.Namespace) -> int:
    """Validate the config, then run the collector until SIGTERM; returns the exit code."""
    from spanguard.collector.config import checked_config, main_validate
    from spanguard.collector.service import Collector

    if args.action == "validate":
        return main_validate(args.config)
    config = checked_config(args.config)
    if config is None:
        return 2
    configure_logging(config.telemetry.logs_level, config.telemetry.logs_encoding)
    collector = Collector(config)
    try:
        collector.run(args.shutdown_timeout)
    except (OSError, RuntimeError) as error:
        logging.getLogger("spanguard.collector").error("cannot start: %s", error)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m spanguard.collector``."""
    parser = argparse.ArgumentParser(prog="spanguard collector", description="OTLP in, risk pipeline, OTLP out.")
    add_arguments(parser)
    return run(parser.parse_args(argv))

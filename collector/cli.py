"""``spanguard collector [--config FILE]`` and ``spanguard collector validate --config FILE``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from spanguard._logging import LOG_LEVELS, configure_logging


def _options(parser: argparse.ArgumentParser, *, run: bool, nested: bool) -> None:
    # Under a subcommand, SUPPRESS keeps an option given before it (`collector --config x run`) from being reset.
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    parser.add_argument(
        "--config", metavar="FILE", help="the collector's YAML config (docs/collector-config.md)", **default
    )
    if run:
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            metavar="SECONDS",
            help="how long to drain queues and decide held traces on SIGTERM (default 10)",
            **default,
        )
        parser.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            help="the collector's log level (default: service.telemetry.logs.level, info)",
            **default,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The collector's command-line arguments: ``[run] --config FILE`` and ``validate --config FILE``."""
    parser.description = "Run the collector (the default action) or validate its config."
    _options(parser, run=True, nested=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    run_parser = actions.add_parser(
        "run", help="run the collector until SIGTERM (the default)", description="Run the collector until SIGTERM."
    )
    _options(run_parser, run=True, nested=True)
    validate = actions.add_parser(
        "validate",
        help="check a config and exit (0: it would run, 2: it would not)",
        description="Check a collector config: every problem with its file, line and key; exit 0 or 2.",
    )
    _options(validate, run=False, nested=True)


def run(args: argparse.Namespace) -> int:
    """Validate the config, then run the collector until SIGTERM; returns the exit code (2: a usage or config error)."""
    from spanguard.collector.config import checked_config, main_validate
    from spanguard.collector.service import Collector

    if not getattr(args, "config", None):
        print("spanguard collector: error: --config FILE is required", file=sys.stderr)
        return 2
    if args.action == "validate":
        return main_validate(args.config)
    config = checked_config(args.config)
    if config is None:
        return 2
    level = getattr(args, "log_level", None) or config.telemetry.logs_level
    configure_logging(level, config.telemetry.logs_encoding)
    collector = Collector(config)
    timeout = getattr(args, "shutdown_timeout", None)
    try:
        collector.run(10.0 if timeout is None else timeout)
    except (OSError, RuntimeError) as error:
        logging.getLogger("spanguard.collector").error("cannot start: %s", error)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m spanguard.collector``."""
    parser = argparse.ArgumentParser(prog="spanguard collector", description="OTLP in, risk pipeline, OTLP out.")
    add_arguments(parser)
    return run(parser.parse_args(argv))

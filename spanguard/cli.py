"""The ``spanguard`` command line: attributes, collector, review, gates and dataset subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Final

from spanguard import __version__
from spanguard.semconv import render_markdown

__all__ = ["build_parser", "main"]


# Each subcommand: (name, help, its module, the extra that installs what it needs).
_COMMANDS: Final = (
    ("collector", "run or validate the collector", "spanguard.collector.cli", "collector"),
    ("review", "run the review service; manage its tokens", "spanguard.review.cli", "review"),
    ("gates", "approval gates: the approval-fatigue report", "spanguard.review.gates_cli", "review"),
    ("gate", "the CI gate: run a target on an eval dataset and score it", "spanguard.review.evalgate.cli", "gate"),
    ("judge-eval", "measure the gate's LLM judge against people", "spanguard.review.evalgate.judge_eval", "gate"),
    ("dataset", "export reviewed items as eval, SFT or DPO data", "spanguard.review.datasets_cli", "review"),
)


def _missing_extra(error: ImportError) -> str | None:
    """The distribution a failed import lacks, when it is a third-party one (not a bug of ours)."""
    name = (error.name or "").partition(".")[0]
    return name if name and name != "spanguard" else None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (one whose extra is not installed says how to install it)."""
    parser = argparse.ArgumentParser(prog="spanguard", description="Human-in-the-loop reliability for LLM apps.")
    parser.add_argument("--version", action="version", version=f"spanguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("attributes", help="print the table of spanguard's own span attributes")
    for name, help_text, module_name, extra in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            missing = _missing_extra(error)
            if missing is None:
                raise
            sub = commands.add_parser(name, help=f"{help_text} (needs spanguard[{extra}])")
            sub.set_defaults(missing=(extra, missing))
            sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            continue
        module.add_arguments(commands.add_parser(name, help=help_text))
        _RUNNERS[name] = module.run
    return parser


_RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for a usage error, as argparse has it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "attributes":
        sys.stdout.write(render_markdown())
        return 0
    missing = getattr(args, "missing", None)
    if missing is not None:
        extra, module = missing
        sys.stderr.write(
            f"spanguard {args.command}: {module} is not installed; install the {extra} extra: "
            f"pip install 'spanguard[{extra}]'\n"
        )
        return 1
    if args.command in _RUNNERS:
        return _RUNNERS[args.command](args)
    parser.print_usage(sys.stderr)
    sys.stderr.write("spanguard: error: a command is required (spanguard --help lists them)\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``spanguard`` command line: attributes, collector, review, gates and dataset subcommands."""

from __future__ import annotations

import argparse
import sys

from spanguard import __version__
from spanguard.semconv import render_markdown

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="spanguard", description="Human-in-the-loop reliability for LLM apps.")
    parser.add_argument("--version", action="version", version=f"spanguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("attributes", help="print the table of spanguard's own span attributes")
    from spanguard.collector.cli import add_arguments

    add_arguments(commands.add_parser("collector", help="run or validate the collector"))
    from spanguard.review.cli import add_arguments as add_review_arguments

    add_review_arguments(commands.add_parser("review", help="run the review service; manage its tokens"))
    from spanguard.review.gates_cli import add_arguments as add_gates_arguments

    add_gates_arguments(commands.add_parser("gates", help="approval gates: the approval-fatigue report"))
    from spanguard.review.evalgate.cli import add_arguments as add_gate_arguments

    add_gate_arguments(commands.add_parser("gate", help="the CI gate: run a target on an eval dataset and score it"))
    from spanguard.review.evalgate.judge_eval import add_arguments as add_judge_eval_arguments

    add_judge_eval_arguments(commands.add_parser("judge-eval", help="measure the gate's LLM judge against people"))
    from spanguard.review.datasets_cli import add_arguments as add_dataset_arguments

    add_dataset_arguments(commands.add_parser("dataset", help="export reviewed items as eval, SFT or DPO data"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "attributes":
        sys.stdout.write(render_markdown())
        return 0
    if args.command == "collector":
        from spanguard.collector.cli import run

        return run(args)
    if args.command == "review":
        from spanguard.review.cli import run as run_review

        return run_review(args)
    if args.command == "gates":
        from spanguard.review.gates_cli import run as run_gates

        return run_gates(args)
    if args.command == "gate":
        from spanguard.review.evalgate.cli import run as run_gate

        return run_gate(args)
    if args.command == "judge-eval":
        from spanguard.review.evalgate.judge_eval import run as run_judge_eval

        return run_judge_eval(args)
    if args.command == "dataset":
        from spanguard.review.datasets_cli import run as run_dataset

        return run_dataset(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``spanguard`` command line as a whole: every command and option has help, and each command's own ``--help``
describes that command."""

from __future__ import annotations

import argparse
import subprocess
import sys

from spanguard.cli import build_parser


def commands(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[list[str], argparse.ArgumentParser, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append(([*path, name], sub, helps.get(name) or ""))
                found += commands(sub, [*path, name])
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    every = commands(build_parser(), ["spanguard"])
    assert len(every) >= 15  # collector run/validate, review serve/migrate/token ..., gate, dataset, ...
    for path, parser, help_text in every:
        if not help_text:
            missing.append(" ".join(path))
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.dest == "rest":
                continue
            if not action.help:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_a_subcommands_help_is_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spanguard.cli", "collector", "validate", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: spanguard collector validate")
    assert "--shutdown-timeout" not in result.stdout  # the collector's run options are not validate's


def test_the_collectors_options_are_taken_before_or_after_run() -> None:
    parser = build_parser()
    before = parser.parse_args(["collector", "--config", "c.yaml", "--log-level", "debug"])
    after = parser.parse_args(["collector", "run", "--config", "c.yaml", "--log-level", "warn"])
    mixed = parser.parse_args(["collector", "--config", "c.yaml", "run", "--shutdown-timeout", "3"])
    assert (before.action, before.config, before.log_level) == (None, "c.yaml", "debug")
    assert (after.action, after.config, after.log_level) == ("run", "c.yaml", "warn")
    assert (mixed.config, mixed.shutdown_timeout) == ("c.yaml", 3.0)  # run's own defaults do not reset --config

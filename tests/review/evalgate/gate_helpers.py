"""Helpers for the gate's tests: cases written as JSON Lines, and the real CLI run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGETS = HERE / "gate_targets.py"


def case(case_id: str, question: str, *, expected: str | None = None, **fields: Any) -> dict[str, Any]:
    """An eval case: a corrected one when ``expected`` is given."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "id": case_id,
        "input": {"messages": [{"role": "user", "content": question}]},
    }
    if expected is not None:
        data.update(
            outcome="correct",
            original_output={"role": "assistant", "content": "Sydney is the capital."},
            expected_output={"role": "assistant", "content": expected},
        )
    data.update(fields)
    return data


CAPITAL = case("case_capital", "What is the capital of Australia?", expected="Canberra is the capital of Australia.")
SUM = case(
    "case_sum",
    "What is two plus two?",
    assertions=[{"type": "contains", "value": "four"}, {"type": "not-contains", "value": "five"}],
)


def write_cases(path: Path, *cases: dict[str, Any]) -> Path:
    """``cases`` as a JSON Lines file at ``path``."""
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), "utf-8")
    return path


def target(name: str) -> str:
    """``--target`` for a function of gate_targets.py."""
    return f"{TARGETS}:{name}"


def gate(*args: str, cwd: Path, calls: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``spanguard gate ARGS`` in a subprocess (no cache unless a test gives ``--cache``)."""
    env = {**os.environ, "GATE_CALLS": str(calls) if calls else "", "COLUMNS": "200"}
    command = [sys.executable, "-m", "spanguard.cli", "gate", *args]
    if "--cache" not in args:
        command.append("--no-cache")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def calls(path: Path, kind: str) -> int:
    """How many calls of ``kind`` gate_targets.py recorded in ``path``."""
    return path.read_text("utf-8").splitlines().count(kind) if path.exists() else 0

"""Targets for the gate's tests, imported by the gate itself (``--target tests/.../gate_targets.py:name``).

Each call is counted in the file named by ``GATE_CALLS`` (one line per call) when it is set, so a test in another
process can count calls.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

ANSWERS = {
    "capital of australia": "Canberra is the capital of Australia.",
    "two plus two": "Two plus two is four.",
}
_lock = threading.Lock()


def _count(kind: str) -> int:
    """Record one call; the number of calls of this kind so far."""
    name = os.environ.get("GATE_CALLS")
    if not name:
        return 0
    with _lock, open(name, "a", encoding="utf-8") as out:
        out.write(kind + "\n")
    return Path(name).read_text("utf-8").splitlines().count(kind)


def _question(messages: list[dict[str, Any]]) -> str:
    return str(messages[-1].get("content") or "").lower()


def fixed(messages: list[dict[str, Any]]) -> str:
    """The right answer, as text."""
    _count("fixed")
    question = _question(messages)
    return next((text for key, text in ANSWERS.items() if key in question), "I do not know.")


async def fixed_async(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The right answer, as a message dict, from a coroutine."""
    await asyncio.sleep(0)
    return {"role": "assistant", "content": fixed(messages), "tool_calls": []}


def regressed(messages: list[dict[str, Any]]) -> str:
    """The old wrong answers."""
    _count("regressed")
    return "Sydney is the capital." if "australia" in _question(messages) else "Two plus two is five."


def broken(messages: list[dict[str, Any]]) -> str:
    """Always fails."""
    _count("broken")
    raise ConnectionError("the model server is down")


def hanging(messages: list[dict[str, Any]]) -> str:
    """Never answers within a test's timeout."""
    _count("hanging")
    time.sleep(30)
    return "too late"


def flaky(messages: list[dict[str, Any]]) -> str:
    """Fails on the first call, then answers."""
    if _count("flaky") == 1:
        raise TimeoutError("first call fails")
    return fixed(messages)


def wrong_type(messages: list[dict[str, Any]]) -> int:
    """Answers something that is not an output."""
    return 42

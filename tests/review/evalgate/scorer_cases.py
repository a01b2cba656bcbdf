"""Eval cases and target outputs for the scorer, judge and judge-eval tests."""

from __future__ import annotations

import json
from typing import Any

from spanguard.review.evalgate.dataset import EvalCase

CORRECTION = "Canberra is the capital of Australia."
ORIGINAL = "Sydney is the capital."


def make_case(**fields: Any) -> EvalCase:
    """A case asking for Australia's capital, with ``fields`` set."""
    data: dict[str, Any] = {
        "id": "case_1",
        "input": {"messages": [{"role": "user", "content": "Capital of Australia?"}]},
    }
    data.update(fields)
    return EvalCase.model_validate(data)


def corrected(**fields: Any) -> EvalCase:
    """A corrected case: the rejected original said Sydney, the correction says Canberra."""
    return make_case(
        outcome="correct",
        original_output={"role": "assistant", "content": ORIGINAL},
        expected_output={"role": "assistant", "content": CORRECTION},
        **fields,
    )


def say(text: str | None, *calls: tuple[str, Any]) -> dict[str, Any]:
    """An assistant message with ``text`` and tool calls given as (name, arguments)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(calls)
        ]
    return message

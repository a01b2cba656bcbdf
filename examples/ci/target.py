"""An example target for ``spanguard gate``: a tiny support assistant with no model, so the gate runs anywhere.

``answer(messages)`` takes the conversation in the OpenAI chat format and returns an assistant message. It answers
the cases in ``cases.jsonl`` the way the reviewers' corrections say. Set ``SPANGUARD_EXAMPLE_REGRESS=1`` to bring
the fixed failures back (the capital is Sydney again, the refused refund is issued again) and watch the gate fail::

    spanguard gate --dataset examples/ci/cases.jsonl --target examples/ci/target.py:answer
    SPANGUARD_EXAMPLE_REGRESS=1 spanguard gate --dataset examples/ci/cases.jsonl --target examples/ci/target.py:answer
"""

from __future__ import annotations

import json
import os
from typing import Any


def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant's next message for ``messages`` (the last user message decides)."""
    question = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    question = question.lower() if isinstance(question, str) else ""
    regressed = os.environ.get("SPANGUARD_EXAMPLE_REGRESS") == "1"
    if "capital of australia" in question:
        text = "Sydney is the capital." if regressed else "Canberra is the capital of Australia."
        return {"role": "assistant", "content": text}
    if "refund" in question:
        if regressed:
            call = {"name": "issue_refund", "arguments": json.dumps({"order_id": "A-17", "amount": 900})}
            return {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "function": call}]}
        return {
            "role": "assistant",
            "content": "A refund of that size needs a person's approval: I have passed your request to our team.",
        }
    if "opening hours" in question:
        return {"role": "assistant", "content": "We are open from 9:00 to 17:00, Monday to Friday."}
    return {"role": "assistant", "content": "I am not sure; let me find someone who knows."}

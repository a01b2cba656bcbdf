"""Session traces for the review tests: spans of one LLM call each, placed on a turn of a conversation."""

from __future__ import annotations

import json
import uuid
from typing import Any

from spanguard.review.store import IngestItem

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def span(
    trace: str,
    *,
    start: int,
    end: int,
    conversation: str | None = None,
    user: str | None = None,
    question: str = "Where is my order?",
    model: str = "gpt-4o-2024-08-06",
    root: bool = True,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.response.model": model,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
    }
    if conversation is not None:
        attributes["gen_ai.conversation.id"] = conversation
    if user is not None:
        attributes["user.id"] = user
    return {
        "trace_id": trace,
        "span_id": uuid.uuid4().hex[:16],
        "name": "chat " + model,
        "kind": "client",
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "attributes": attributes,
    }


def item(
    *,
    turn: int = 0,
    conversation: str | None = None,
    user: str | None = None,
    tier: str = "spot_check",
    risk: str = "green",
    reasons: tuple[str, ...] = ("sampled",),
    model: str = "gpt-4o-2024-08-06",
) -> IngestItem:
    trace = uuid.uuid4().hex
    start = T0 + turn * 10 * SECOND
    spans = [
        span(
            trace,
            start=start,
            end=start + 2 * SECOND,
            conversation=conversation,
            user=user,
            model=model,
            question=f"question {turn}",
        )
    ]
    return IngestItem(trace, tier, risk, list(reasons), spans)  # type: ignore[arg-type]

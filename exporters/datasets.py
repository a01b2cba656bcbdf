"""Reviewed items and rejected approval requests as eval cases, SFT rows and preference (DPO) rows.

Pure: plain values in (an item's stored ReviewSpans and decisions, an approval request's state), JSON-able dicts out.
The case format, the ids and the choices made here are the contract in docs/datasets.md. Content is exported as the
store holds it, already redacted: nothing here reads or restores what redaction replaced. A session item's case holds
its conversation across traces up to the corrected turn (docs/datasets.md, "Multi-turn cases from sessions").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from spanguard.review.conversation import session_spans, thread
from spanguard.semconv import GEN_AI_INPUT_MESSAGES, GEN_AI_OPERATION_CHAT, GEN_AI_OPERATION_NAME

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "SESSION_SOURCE",
    "ExportKind",
    "RejectedApproval",
    "ReviewDecision",
    "ReviewedItem",
    "approval_case",
    "case_id",
    "encode_line",
    "genai_to_openai",
    "item_case",
    "preference_row",
    "row",
    "sft_row",
    "turns_to_openai",
]

SCHEMA_VERSION: Final = 1
"""The eval case format's version (``schema_version`` of every case)."""
ExportKind = Literal["eval", "sft", "preference"]
KINDS: Final[tuple[ExportKind, ...]] = ("eval", "sft", "preference")
SESSION_SOURCE: Final = "session_item"
"""``source.kind`` of a session item's case (a trace item's is ``review_item``, an approval's ``approval``)."""
_ID_DIGITS: Final = 16


@dataclass(frozen=True)
class ReviewDecision:
    """One reviewer's recorded decision on an item (the fields of :class:`~spanguard.review.store.DecisionRecord`)."""

    reviewer: str
    outcome: str
    reason: str | None = None
    reason_text: str | None = None
    correction: str | None = None
    ratings: Mapping[str, Any] = field(default_factory=dict)
    checklist: Mapping[str, bool] = field(default_factory=dict)
    at: dt.datetime | None = None
    turn: str | None = None  # on a session item: the trace id of the corrected turn


@dataclass(frozen=True)
class ReviewedItem:
    """A reviewed review item: its stored spans, the item's verdict, its decisions (oldest first) and dataset tags.

    A session item (``kind`` ``session``) has no spans of its own: ``traces`` are its session's traces as
    ``(trace id, spans)`` in time order, from the session's first up to the item's latest member.
    """

    item_id: int
    trace_id: str
    tier: str
    risk_tier: str
    outcome: str
    spans: Sequence[Mapping[str, Any]]
    decisions: Sequence[ReviewDecision]
    golden: str | None = None
    decided_at: dt.datetime | None = None
    tags: Sequence[str] = ()
    kind: str = "trace"
    conversation_id: str | None = None
    traces: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = ()


@dataclass(frozen=True)
class RejectedApproval:
    """A rejected approval request: the refused action and arguments, the agent's state, who rejected it and why."""

    approval_id: str
    action: str
    tier: str
    arguments: Mapping[str, Any]
    state: Mapping[str, Any]
    reason: str | None
    reviewers: Sequence[str]
    trace_id: str | None = None
    decided_at: dt.datetime | None = None
    tags: Sequence[str] = ()


def case_id(source: str) -> str:
    """The stable id of the case made from ``source`` (``review_item:{trace_id}`` or ``approval:{approval id}``)."""
    return "case_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:_ID_DIGITS]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


# --- messages -------------------------------------------------------------------------------------------------------


def _arguments(value: Any) -> str:
    # OpenAI's function.arguments is JSON text; assembled arguments are parsed values, or text that was not JSON.
    if isinstance(value, str):
        return value
    return json.dumps({} if value is None else value, ensure_ascii=False, separators=(",", ":"))


def _assistant(turn: Mapping[str, Any], ids: _CallIds) -> dict[str, Any]:
    """An assembled assistant turn as an OpenAI assistant message (always with its ``tool_calls`` list)."""
    calls = [
        {
            "id": ids.open(call.get("id")),
            "type": "function",
            "function": {"name": call.get("name") or "", "arguments": _arguments(call.get("arguments"))},
        }
        for call in turn.get("tool_calls") or []
    ]
    content = turn.get("content") or ""
    return {"role": "assistant", "content": content if content or not calls else None, "tool_calls": calls}


class _CallIds:
    """Tool call ids in the OpenAI shape: a call without one gets ``call_N``; a result without one answers the oldest
    call still open (OpenAI needs every tool message to name its call)."""

    def __init__(self) -> None:
        self._made = 0
        self._open: list[str] = []

    def open(self, call_id: str | None) -> str:
        if not call_id:
            self._made += 1
            call_id = f"call_{self._made}"
        self._open.append(call_id)
        return call_id

    def answer(self, call_id: str | None) -> str:
        if call_id:
            if call_id in self._open:
                self._open.remove(call_id)
            return call_id
        return self._open.pop(0) if self._open else "call_unknown"


def turns_to_openai(turns: Iterable[Mapping[str, Any]], ids: _CallIds | None = None) -> list[dict[str, Any]]:
    """Assembled turns (:func:`~spanguard.review.conversation.assemble`) as OpenAI chat messages."""
    ids = ids or _CallIds()
    messages: list[dict[str, Any]] = []
    for turn in turns:
        role = turn.get("role")
        if role == "assistant":
            message = _assistant(turn, ids)
            if not message["tool_calls"]:
                del message["tool_calls"]  # the chat API refuses an empty list
            messages.append(message)
        elif role == "tool":
            tool_call_id = ids.answer(turn.get("tool_call_id"))
            messages.append({"role": "tool", "content": turn.get("content") or "", "tool_call_id": tool_call_id})
        elif role in ("system", "user"):
            messages.append({"role": role, "content": turn.get("content") or ""})
    return messages


def _split(
    turns: list[dict[str, Any]], judged: Callable[[Mapping[str, Any]], bool] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None]:
    """(input messages, the judged output, its model): the output is the last assistant turn, the input before it.

    ``judged`` says whether a turn belongs to what was judged (a session case's corrected trace): a last assistant
    turn outside it is input too, and there is no output.
    """
    last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i]["role"] == "assistant"), None)
    if last is not None and judged is not None and not judged(turns[last]):
        last = None
    ids = _CallIds()
    if last is None:
        return turns_to_openai(turns, ids), None, None
    messages = turns_to_openai(turns[:last], ids)
    return messages, _assistant(turns[last], ids), turns[last].get("model")


def genai_to_openai(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Messages in the GenAI conventions' parts format (as in ``gen_ai.input.messages``) as OpenAI chat messages."""
    return turns_to_openai(_genai_turns(messages))


def _genai_turns(messages: Sequence[Any]) -> list[dict[str, Any]]:
    # Read by the same code that reads spans, so both sources accept (and tolerate) exactly the same shapes.
    span = {
        "span_id": "0" * 16,
        "name": GEN_AI_OPERATION_CHAT,
        "attributes": {GEN_AI_OPERATION_NAME: GEN_AI_OPERATION_CHAT, GEN_AI_INPUT_MESSAGES: json.dumps(list(messages))},
    }
    return thread([span])[0]


# --- cases ----------------------------------------------------------------------------------------------------------


def _ratings(decisions: Sequence[ReviewDecision]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for decision in decisions:
        merged.update(decision.ratings or {})
    return merged


def _checklist(decisions: Sequence[ReviewDecision]) -> dict[str, bool]:
    # Several reviewers (dual approval): an item holds only when every one of them said it does.
    merged: dict[str, bool] = {}
    for decision in decisions:
        for item, answer in (decision.checklist or {}).items():
            merged[item] = merged.get(item, True) and bool(answer)
    return merged


def _as_typed(text: str) -> str:
    return text


def _typed(text: str | None, redact: Callable[[str], str]) -> str | None:
    return redact(text) if text else text


def item_case(item: ReviewedItem, redact: Callable[[str], str] = _as_typed) -> dict[str, Any]:
    """The eval case of a reviewed item (docs/datasets.md, "The eval case"); ``redact`` is applied to what reviewers
    typed (the correction, the reason's text), since the store redacted only what telemetry brought."""
    decisions = list(item.decisions)
    final = decisions[-1] if decisions else None
    session = None
    if item.kind == "session":
        messages, output, model, models, session = _session_split(item, final)
    else:
        turns, models = thread(item.spans)
        messages, output, model = _split(turns)
    correction = item.golden if item.outcome == "correct" else None
    if correction is None and item.outcome == "correct" and final is not None:
        correction = final.correction
    correction = _typed(correction, redact)
    return {
        "schema_version": SCHEMA_VERSION,
        "id": case_id(f"review_item:{item.trace_id}"),
        "input": {"messages": messages},
        "original_output": output,
        "outcome": item.outcome,
        "reason": final.reason if final else None,
        "reason_text": _typed(final.reason_text, redact) if final else None,
        "expected_output": {"role": "assistant", "content": correction} if correction else None,
        "rejected_tool_calls": [],
        "ratings": _ratings(decisions),
        "checklist": _checklist(decisions),
        "model": model or (models[-1] if models else None),
        "tags": sorted(set(item.tags)),
        "source": {
            "kind": "review_item" if session is None else SESSION_SOURCE,
            "item_id": item.item_id,
            # A session item's own trace id is a synthetic key no backend has: the judged turn's trace is the source.
            "trace_id": item.trace_id if session is None else session["turn"],
            "reviewers": list(dict.fromkeys(d.reviewer for d in decisions)),
            "reviewed_at": _iso(item.decided_at or (final.at if final else None)),
            **(session or {}),
        },
        "assertions": [],
        "threshold": None,
    }


def _session_split(
    item: ReviewedItem, final: ReviewDecision | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None, list[str], dict[str, Any]]:
    """A session item's (input, output, its model, models, session metadata): the conversation from the session's
    first trace up to the judged turn (the corrected one, else the latest member), history resent by later calls
    once, and that turn's last assistant answer as the output. Later traces are left out."""
    traces = list(item.traces)
    ids = [trace_id for trace_id, _ in traces]
    turn = final.turn if final is not None and final.turn in ids else (ids[-1] if ids else None)
    traces = traces[: ids.index(turn) + 1] if turn is not None else []
    spans, owner = session_spans(traces)
    turns, models = thread(spans)
    messages, output, model = _split(turns, lambda t: owner.get(t.get("span_id")) == turn)
    session = {
        "conversation_id": item.conversation_id,
        "trace_ids": [trace_id for trace_id, _ in traces],
        "turn": turn,
        "turns": len(traces),
    }
    return messages, output, model, models, session


def approval_case(request: RejectedApproval, redact: Callable[[str], str] = _as_typed) -> dict[str, Any]:
    """The eval case of a rejected approval request: the refused call is a ``rejected_tool_calls`` entry (``redact``:
    as for :func:`item_case`, on the reviewer's reason)."""
    state = request.state if isinstance(request.state, Mapping) else {}
    raw = state.get("messages")
    turns = _genai_turns(raw if isinstance(raw, list) else [])
    messages, output, _ = _split(turns)
    arguments = dict(request.arguments) if isinstance(request.arguments, Mapping) else {}
    if output is None:
        output = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": request.action, "arguments": _arguments(arguments)},
                }
            ],
        }
    models = [m for m in state.get("models") or [] if isinstance(m, str)]
    return {
        "schema_version": SCHEMA_VERSION,
        "id": case_id(f"approval:{request.approval_id}"),
        "input": {"messages": messages},
        "original_output": output,
        "outcome": "reject",
        "reason": None,
        "reason_text": _typed(request.reason, redact),
        "expected_output": None,
        "rejected_tool_calls": [{"name": request.action, "arguments": arguments}],
        "ratings": {},
        "checklist": {},
        "model": models[-1] if models else None,
        "tags": sorted(set(request.tags)),
        "source": {
            "kind": "approval",
            "approval_id": request.approval_id,
            "trace_id": request.trace_id,
            "action": request.action,
            "reviewers": list(dict.fromkeys(request.reviewers)),
            "reviewed_at": _iso(request.decided_at),
        },
        "assertions": [],
        "threshold": None,
    }


# --- fine-tuning rows -----------------------------------------------------------------------------------------------


def _message(output: Mapping[str, Any]) -> dict[str, Any]:
    """An output as an OpenAI assistant message: without an empty ``tool_calls`` list, which OpenAI refuses."""
    message = {"role": "assistant", "content": output.get("content")}
    if output.get("tool_calls"):
        message["tool_calls"] = [dict(call) for call in output["tool_calls"]]
    return message


def sft_row(case: Mapping[str, Any], *, include_approved: bool = False) -> dict[str, Any] | None:
    """OpenAI's chat fine-tuning row for ``case``: its input and the correction (or, with ``include_approved``, the
    approved output) as the final assistant turn; None for a case that has neither."""
    messages = list(case["input"]["messages"])
    if case.get("expected_output"):
        final = _message(case["expected_output"])
    elif include_approved and case.get("outcome") == "approve" and case.get("original_output"):
        final = _message(case["original_output"])
    else:
        return None
    return {"messages": [*messages, final]}


def preference_row(case: Mapping[str, Any]) -> dict[str, Any] | None:
    """OpenAI's DPO row for a corrected case (correction preferred, original output not); None for any other case."""
    if not case.get("expected_output") or not case.get("original_output"):
        return None
    return {
        "input": {"messages": list(case["input"]["messages"])},
        "preferred_output": [_message(case["expected_output"])],
        "non_preferred_output": [_message(case["original_output"])],
    }


def encode_line(line: Mapping[str, Any]) -> str:
    """One JSON Lines line, without its newline: compact JSON that UTF-8 can carry. A lone surrogate (a reviewer's
    text may hold one: JSON allows its escape) keeps its ``\\u`` escape, where writing it raw would fail mid-file."""
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(line, separators=(",", ":"))
    return text


def row(case: Mapping[str, Any], kind: ExportKind, *, include_approved: bool = False) -> dict[str, Any] | None:
    """The line ``kind`` exports for ``case`` (the case itself for ``eval``), or None when ``kind`` has none for it."""
    if kind == "eval":
        return dict(case)
    if kind == "sft":
        return sft_row(case, include_approved=include_approved)
    if kind == "preference":
        return preference_row(case)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")

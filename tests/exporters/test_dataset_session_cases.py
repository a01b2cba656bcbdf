"""A session item's eval case, SFT row and DPO row: the conversation across its traces up to the corrected turn
(docs/datasets.md, "Multi-turn cases from sessions"). Hand-written ReviewSpans of one conversation, one trace a turn;
the OpenAI formats are checked with the openai SDK's own message types."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pydantic
from openai.types.chat import ChatCompletionMessageParam

from spanguard.exporters.datasets import (
    SESSION_SOURCE,
    ReviewDecision,
    ReviewedItem,
    case_id,
    item_case,
    preference_row,
    sft_row,
)

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
AT = dt.datetime(2026, 12, 3, 10, 0, 0)
SESSION_KEY = "5e" * 16  # the session item's synthetic trace id (store.session_trace_id)
SYSTEM = "You are a support agent."
MESSAGES = pydantic.TypeAdapter(list[ChatCompletionMessageParam])


def parts(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


def chat(trace: str, turn: int, inputs: list[dict], outputs: list[dict]) -> dict[str, Any]:
    start = T0 + turn * 10 * SECOND
    return {
        "trace_id": trace,
        "span_id": f"{turn:x}".rjust(4, "0") + trace[:12],
        "name": "chat gpt-4o-mini",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + SECOND,
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.response.model": f"gpt-4o-mini-turn-{turn}",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
            "gen_ai.input.messages": json.dumps(inputs),
            "gen_ai.output.messages": json.dumps(outputs),
        },
    }


def conversation(turns: int, *, resend: bool = True) -> list[tuple[str, list[dict[str, Any]]]]:
    """``turns`` traces of one conversation: trace n asks ``question n`` and answers ``answer n``; with ``resend``
    each call's input resends the history (as chat apps do), without it only the new question."""
    traces = []
    history: list[dict[str, Any]] = []
    for n in range(1, turns + 1):
        trace = f"{n:02d}" * 16
        history.append(parts("user", f"question {n}"))
        inputs = list(history) if resend else [history[-1]]
        traces.append((trace, [chat(trace, n, inputs, [parts("assistant", f"answer {n}")])]))
        history.append(parts("assistant", f"answer {n}"))
    return traces


def session_item(
    traces: list[tuple[str, list[dict[str, Any]]]], outcome: str = "correct", *, turn: str | None = None, **fields: Any
) -> ReviewedItem:
    correction = fields.pop("correction", "the corrected answer" if outcome == "correct" else None)
    decision = ReviewDecision(
        reviewer="alice", outcome=outcome, reason="factually_incorrect", correction=correction, at=AT, turn=turn
    )
    return ReviewedItem(
        item_id=fields.pop("item_id", 40),
        trace_id=SESSION_KEY,
        tier="dual_approval",
        risk_tier="red",
        outcome=outcome,
        spans=[],
        decisions=fields.pop("decisions", [decision]),
        golden=correction,
        decided_at=AT,
        kind="session",
        conversation_id="conv-1",
        traces=traces,
        **fields,
    )


def said(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(m["role"], m.get("content")) for m in messages]


def test_a_session_corrected_at_its_second_trace_gives_the_conversation_up_to_that_turn():
    traces = conversation(3)
    case = item_case(session_item(traces, turn=traces[1][0]))
    assert said(case["input"]["messages"]) == [
        ("system", SYSTEM),
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
    ]  # trace 1's turns, then trace 2's; nothing of trace 3
    assert case["original_output"] == {"role": "assistant", "content": "answer 2", "tool_calls": []}
    assert case["expected_output"] == {"role": "assistant", "content": "the corrected answer"}
    assert case["model"] == "gpt-4o-mini-turn-2"
    assert case["id"] == case_id(f"review_item:{SESSION_KEY}")
    assert case["source"] == {
        "kind": SESSION_SOURCE,
        "item_id": 40,
        "trace_id": traces[1][0],  # a real trace, not the session item's synthetic key
        "reviewers": ["alice"],
        "reviewed_at": "2026-12-03T10:00:00Z",
        "conversation_id": "conv-1",
        "trace_ids": [traces[0][0], traces[1][0]],
        "turn": traces[1][0],
        "turns": 2,
    }
    MESSAGES.validate_python(case["input"]["messages"])


def test_the_sft_row_keeps_every_turn_with_the_corrected_answer_replaced():
    traces = conversation(3)
    case = item_case(session_item(traces, turn=traces[1][0]))
    row = sft_row(case)
    assert row is not None
    assert said(row["messages"]) == [
        ("system", SYSTEM),
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "the corrected answer"),
    ]
    MESSAGES.validate_python(row["messages"])
    dpo = preference_row(case)
    assert dpo is not None and said(dpo["input"]["messages"]) == said(case["input"]["messages"])
    assert said(dpo["preferred_output"]) == [("assistant", "the corrected answer")]
    assert said(dpo["non_preferred_output"]) == [("assistant", "answer 2")]


def test_a_correction_without_a_turn_is_for_the_latest_member():
    traces = conversation(3)
    case = item_case(session_item(traces, turn=None))
    assert said(case["input"]["messages"])[-3:] == [
        ("user", "question 2"),
        ("assistant", "answer 2"),
        ("user", "question 3"),
    ]
    assert case["original_output"]["content"] == "answer 3"
    assert case["source"]["turn"] == traces[2][0] and case["source"]["turns"] == 3
    assert case["source"]["trace_ids"] == [t for t, _ in traces]


def test_a_turn_that_is_not_among_the_traces_falls_back_to_the_latest_member():
    traces = conversation(2)
    case = item_case(session_item(traces, turn="ff" * 16))
    assert case["source"]["turn"] == traces[1][0] and case["original_output"]["content"] == "answer 2"


def test_history_not_resent_is_still_the_whole_conversation():
    """An app that sends only the new question: the traces' own turns, in time order, are the conversation."""
    traces = conversation(3, resend=False)
    case = item_case(session_item(traces, turn=traces[2][0]))
    assert said(case["input"]["messages"]) == [
        ("system", SYSTEM),
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "answer 2"),
        ("user", "question 3"),
    ]


def test_an_approved_session_exports_its_output_as_given_and_a_rejected_one_as_a_trace_item_does():
    traces = conversation(2)
    approved = item_case(session_item(traces, "approve"))
    assert approved["expected_output"] is None and approved["original_output"]["content"] == "answer 2"
    assert sft_row(approved) is None
    row = sft_row(approved, include_approved=True)
    assert row is not None and said(row["messages"])[-2:] == [("user", "question 2"), ("assistant", "answer 2")]
    rejected = item_case(session_item(traces, "reject"))
    assert (rejected["outcome"], rejected["expected_output"], rejected["reason"]) == (
        "reject",
        None,
        "factually_incorrect",
    )
    assert rejected["original_output"]["content"] == "answer 2" and preference_row(rejected) is None


def test_a_corrected_turn_with_no_answer_has_no_output_and_all_its_turns_as_input():
    traces = conversation(2)
    trace, [span] = traces[1]
    span = {**span, "attributes": {k: v for k, v in span["attributes"].items() if k != "gen_ai.output.messages"}}
    traces[1] = (trace, [span])
    case = item_case(session_item(traces, turn=trace))
    assert case["original_output"] is None  # answer 1 belongs to trace 1: it is input, not the judged output
    assert said(case["input"]["messages"])[-2:] == [("assistant", "answer 1"), ("user", "question 2")]


def test_tool_calls_across_traces_keep_their_ids_paired():
    first, second = "aa" * 16, "bb" * 16
    ask = {"role": "assistant", "parts": [{"type": "tool_call", "id": None, "name": "lookup", "arguments": {"q": 1}}]}
    answer = {"role": "tool", "parts": [{"type": "tool_call_response", "id": None, "response": {"status": "shipped"}}]}
    q1, q2 = parts("user", "where is my order?"), parts("user", "and when does it arrive?")
    traces = [
        (
            first,
            [
                chat(first, 1, [q1], [ask]),
                chat(first, 2, [q1, ask, answer], [parts("assistant", "It has shipped.")]),
            ],
        ),
        (
            second,
            [
                chat(
                    second,
                    3,
                    [q1, ask, answer, parts("assistant", "It has shipped."), q2],
                    [parts("assistant", "Monday.")],
                )
            ],
        ),
    ]
    case = item_case(session_item(traces, turn=second, correction="Tuesday."))
    messages = case["input"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[2]["tool_calls"][0]["id"] == messages[3]["tool_call_id"] == "call_1"
    assert case["original_output"]["content"] == "Monday."
    MESSAGES.validate_python(sft_row(case)["messages"])


def test_what_the_reviewer_typed_is_redacted_and_the_conversation_is_exported_as_stored():
    traces = conversation(2)
    case = item_case(
        session_item(traces, turn=traces[0][0], correction="mail jane@example.com"),
        redact=lambda text: text.replace("jane@example.com", "<EMAIL_ADDRESS>"),
    )
    assert case["expected_output"]["content"] == "mail <EMAIL_ADDRESS>"
    assert said(case["input"]["messages"]) == [("system", SYSTEM), ("user", "question 1")]
    assert case["source"]["turns"] == 1


def test_a_session_item_without_traces_gives_an_empty_case_not_an_error():
    case = item_case(session_item([], "approve"))
    assert case["input"]["messages"] == [] and case["original_output"] is None
    assert case["source"]["trace_ids"] == [] and case["source"]["turn"] is None and case["source"]["trace_id"] is None

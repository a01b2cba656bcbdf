"""Reviewed items and rejected approvals as eval cases, SFT rows and DPO rows (docs/datasets.md).

The Anthropic and PII traces are made by the real instrumentation (real SDK clients against the fake provider, spans
converted to ReviewSpans by the review exporter's own ``review_span``); the other shapes are hand-written ReviewSpans.
The OpenAI formats are checked with the openai SDK's own message types.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pydantic
import pytest
from fake_provider import text, tool_call
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)

import spanguard
from spanguard.exporters.datasets import (
    RejectedApproval,
    ReviewDecision,
    ReviewedItem,
    approval_case,
    case_id,
    encode_line,
    genai_to_openai,
    item_case,
    preference_row,
    row,
    sft_row,
)
from spanguard.exporters.review.items import review_span
from spanguard.processors.sdk import to_view

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
CHECKLIST = {"factual_accuracy": True, "policy_adherence": True, "tone": True}
AT = dt.datetime(2026, 12, 3, 10, 0, 0)
CASE_KEYS = {
    "schema_version",
    "id",
    "input",
    "original_output",
    "outcome",
    "reason",
    "reason_text",
    "expected_output",
    "rejected_tool_calls",
    "ratings",
    "checklist",
    "model",
    "tags",
    "source",
    "assertions",
    "threshold",
}
MESSAGES = pydantic.TypeAdapter(list[ChatCompletionMessageParam])
ASSISTANT = pydantic.TypeAdapter(ChatCompletionAssistantMessageParam)
TOOL_CALL = pydantic.TypeAdapter(ChatCompletionMessageFunctionToolCallParam)


# --- helpers ------------------------------------------------------------------------------------------------------


def parts(role: str, *content: dict[str, Any]) -> dict[str, Any]:
    return {"role": role, "parts": list(content)}


def txt(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def call(call_id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def response(call_id: str | None, result: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": result}


def chat(span_id: str, start_ms: int, inputs: list[dict], outputs: list[dict], **attributes: Any) -> dict[str, Any]:
    """A chat span as the OpenAI instrumentation records it (span-only capture)."""
    return {
        "trace_id": TRACE,
        "span_id": span_id.ljust(16, "0"),
        "name": "chat gpt-4o-mini",
        "start_time_unix_nano": T0 + start_ms * MS,
        "end_time_unix_nano": T0 + (start_ms + 5) * MS,
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.input.messages": json.dumps(inputs),
            "gen_ai.output.messages": json.dumps(outputs),
            **attributes,
        },
    }


def tool_span(span_id: str, start_ms: int, name: str, arguments: Any, result: Any) -> dict[str, Any]:
    """A tool span as ``@spanguard.tool`` records it (no call id)."""
    return {
        "trace_id": TRACE,
        "span_id": span_id.ljust(16, "0"),
        "name": f"execute_tool {name}",
        "start_time_unix_nano": T0 + start_ms * MS,
        "end_time_unix_nano": T0 + (start_ms + 1) * MS,
        "attributes": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.arguments": json.dumps(arguments),
            "gen_ai.tool.call.result": json.dumps(result),
        },
    }


def decision(outcome: str = "approve", reviewer: str = "alice", **fields: Any) -> ReviewDecision:
    return ReviewDecision(
        reviewer=reviewer, outcome=outcome, checklist=fields.pop("checklist", CHECKLIST), at=AT, **fields
    )


def reviewed(spans: list[dict], outcome: str = "approve", decisions: list[ReviewDecision] | None = None, **fields):
    golden = fields.pop("golden", None)
    return ReviewedItem(
        item_id=fields.pop("item_id", 12),
        trace_id=fields.pop("trace_id", TRACE),
        tier=fields.pop("tier", "spot_check"),
        risk_tier=fields.pop("risk_tier", "yellow"),
        outcome=outcome,
        spans=spans,
        decisions=decisions if decisions is not None else [decision(outcome)],
        golden=golden,
        decided_at=AT,
        **fields,
    )


def simple_trace() -> list[dict[str, Any]]:
    history = [parts("system", txt("You answer geography questions.")), parts("user", txt("Capital of Australia?"))]
    return [chat("a", 0, history, [parts("assistant", txt("Sydney is the capital."))])]


def tool_trace() -> list[dict[str, Any]]:
    """A chat asking for a tool, the tool span, a chat answering with the result in its input."""
    history = [parts("system", txt("You are a support agent.")), parts("user", txt("Where is order A-1?"))]
    asked = parts("assistant", call("call_7", "lookup_order", {"order_id": "A-1"}))
    second = [*history, asked, parts("tool", response("call_7", '{"status": "shipped"}'))]
    return [
        chat("b", 0, history, [asked]),
        tool_span("c", 6, "lookup_order", {"order_id": "A-1"}, {"status": "shipped"}),
        chat("d", 8, second, [parts("assistant", txt("It has shipped."))]),
    ]


def assert_openai_chat(messages: list[dict[str, Any]]) -> None:
    """Valid as OpenAI chat messages (the SDK's types), tool calls included, every tool message naming a call."""
    MESSAGES.validate_python(messages)
    asked = set()
    for message in messages:
        for tool_call_ in message.get("tool_calls", []):
            TOOL_CALL.validate_python(tool_call_)
            json.loads(tool_call_["function"]["arguments"])
            asked.add(tool_call_["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in asked
        assert message.get("tool_calls", [None]) != []  # OpenAI refuses an empty list


def assert_sft_row(line: dict[str, Any]) -> None:
    """OpenAI's chat fine-tuning row: {"messages": [...]} ending with the assistant turn to learn."""
    assert set(line) == {"messages"}
    assert_openai_chat(line["messages"])
    assert line["messages"][-1]["role"] == "assistant"


def assert_preference_row(line: dict[str, Any]) -> None:
    """OpenAI's DPO row: input.messages, and one assistant message each as preferred and non-preferred output."""
    assert set(line) == {"input", "preferred_output", "non_preferred_output"}
    assert set(line["input"]) == {"messages"}
    assert_openai_chat(line["input"]["messages"])
    for key in ("preferred_output", "non_preferred_output"):
        (message,) = line[key]
        ASSISTANT.validate_python(message)
        assert message["role"] == "assistant"


def exported_text(*cases: dict[str, Any]) -> str:
    lines = [c for c in cases]
    for case in cases:
        lines += [r for r in (sft_row(case, include_approved=True), preference_row(case)) if r is not None]
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)


# --- eval cases -----------------------------------------------------------------------------------------------------


def test_a_plain_text_trace_becomes_input_messages_and_the_judged_answer():
    case = item_case(reviewed(simple_trace(), "approve", tags=["geo", "capitals", "geo"]))
    assert set(case) == CASE_KEYS
    assert case["input"]["messages"] == [
        {"role": "system", "content": "You answer geography questions."},
        {"role": "user", "content": "Capital of Australia?"},
    ]
    assert case["original_output"] == {"role": "assistant", "content": "Sydney is the capital.", "tool_calls": []}
    assert (case["outcome"], case["expected_output"], case["rejected_tool_calls"]) == ("approve", None, [])
    assert case["model"] == "gpt-4o-mini-2024-07-18"
    assert case["tags"] == ["capitals", "geo"]
    assert case["checklist"] == CHECKLIST
    assert case["source"] == {
        "kind": "review_item",
        "item_id": 12,
        "trace_id": TRACE,
        "reviewers": ["alice"],
        "reviewed_at": "2026-12-03T10:00:00Z",
    }
    assert (case["schema_version"], case["assertions"], case["threshold"]) == (1, [], None)
    assert_openai_chat(case["input"]["messages"])


def test_the_case_id_is_the_sha256_of_its_source_and_stable_across_exports():
    expected = "case_" + hashlib.sha256(f"review_item:{TRACE}".encode()).hexdigest()[:16]
    first = item_case(reviewed(simple_trace()))
    again = item_case(reviewed(list(reversed(simple_trace())), item_id=99))  # spans in another order, another row
    assert first["id"] == again["id"] == case_id(f"review_item:{TRACE}") == expected
    assert first == item_case(reviewed(simple_trace()))
    other = item_case(reviewed(simple_trace(), trace_id="f" * 32))
    assert other["id"] != first["id"]
    assert case_id("approval:apr_x") != case_id("review_item:apr_x")


def test_tool_calls_and_tool_results_are_in_the_openai_shape():
    case = item_case(reviewed(tool_trace(), "approve"))
    messages = case["input"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_7",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order_id":"A-1"}'},
            }
        ],
    }
    assert messages[3] == {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_7"}
    assert case["original_output"] == {"role": "assistant", "content": "It has shipped.", "tool_calls": []}
    assert_openai_chat(messages)


def test_a_judged_output_that_calls_a_tool_keeps_its_calls_and_ids_are_made_for_calls_without_one():
    history = [parts("user", txt("Refund order 9."))]
    asked = parts("assistant", call(None, "refund", {"order_id": "9"}), call(None, "notify", "not json"))
    case = item_case(reviewed([chat("a", 0, history, [asked])], "reject", [decision("reject", reason="unsafe")]))
    output = case["original_output"]
    assert output["content"] is None
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in output["tool_calls"]] == [
        ("call_1", "refund", '{"order_id":"9"}'),
        ("call_2", "notify", "not json"),  # arguments that were not JSON are kept as the text they were
    ]
    assert (case["outcome"], case["reason"]) == ("reject", "unsafe")
    ASSISTANT.validate_python(output)


def test_a_tool_result_without_a_call_id_answers_the_oldest_open_call():
    messages = genai_to_openai(
        [
            parts("user", txt("Two lookups.")),
            parts("assistant", call(None, "a", {}), call(None, "b", {})),
            parts("tool", response(None, "first")),
            parts("tool", response(None, "second")),
        ]
    )
    assert [m.get("tool_call_id") for m in messages] == [None, None, "call_1", "call_2"]
    assert_openai_chat(messages)


def test_a_multi_span_trace_with_several_calls_is_one_conversation_each_message_once():
    spans = tool_trace()
    follow = [
        *json.loads(spans[2]["attributes"]["gen_ai.input.messages"]),
        parts("assistant", txt("It has shipped.")),
        parts("user", txt("Thanks, and order A-2?")),
    ]
    spans.append(chat("e", 20, follow, [parts("assistant", txt("A-2 is packed."))]))
    case = item_case(reviewed(spans))
    roles = [m["role"] for m in case["input"]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert case["original_output"]["content"] == "A-2 is packed."


def test_a_corrected_item_has_the_correction_as_expected_output():
    correct = decision("correct", reason="factually_incorrect", reason_text="it is Canberra", correction="Canberra.")
    correct = ReviewDecision(**{**correct.__dict__, "ratings": {"likert": 2}})
    case = item_case(reviewed(simple_trace(), "correct", [correct], golden="Canberra."))
    assert case["expected_output"] == {"role": "assistant", "content": "Canberra."}
    assert (case["reason"], case["reason_text"], case["ratings"]) == (
        "factually_incorrect",
        "it is Canberra",
        {"likert": 2},
    )
    assert case["original_output"]["content"] == "Sydney is the capital."


def test_a_rejected_item_has_no_expected_output():
    case = item_case(reviewed(simple_trace(), "reject", [decision("reject", reason="factually_incorrect")]))
    assert (case["outcome"], case["expected_output"], case["reason"]) == ("reject", None, "factually_incorrect")
    assert sft_row(case) is None and sft_row(case, include_approved=True) is None and preference_row(case) is None


def test_a_dual_approval_item_lists_both_reviewers_and_merges_their_answers():
    first = ReviewDecision("alice", "approve", ratings={"likert": 4, "thumbs": "up"}, checklist={**CHECKLIST}, at=AT)
    second = ReviewDecision(
        "bob", "approve", ratings={"likert": 5}, checklist={**CHECKLIST, "tone": False}, at=AT + dt.timedelta(hours=1)
    )
    case = item_case(reviewed(simple_trace(), "approve", [first, second], tier="dual_approval", risk_tier="red"))
    assert case["source"]["reviewers"] == ["alice", "bob"]
    assert case["ratings"] == {"likert": 5, "thumbs": "up"}  # the later decision wins per key
    assert case["checklist"] == {"factual_accuracy": True, "policy_adherence": True, "tone": False}


def test_a_trace_without_an_output_has_a_null_original_output():
    spans = [chat("a", 0, [parts("user", txt("Hello?"))], [])]
    case = item_case(reviewed(spans, "reject", [decision("reject", reason="other")]))
    assert case["original_output"] is None
    assert case["input"]["messages"] == [{"role": "user", "content": "Hello?"}]
    assert case["model"] == "gpt-4o-mini-2024-07-18"
    assert preference_row({**case, "expected_output": {"role": "assistant", "content": "x"}}) is None


def test_a_trace_with_no_content_captured_still_makes_a_case():
    span = chat("a", 0, [], [])
    del span["attributes"]["gen_ai.input.messages"], span["attributes"]["gen_ai.output.messages"]
    case = item_case(reviewed([span, {"span_id": "bad"}, "not a span"]))
    assert case["input"]["messages"] == [] and case["original_output"] is None


def test_long_contents_are_exported_whole_not_cut_for_the_page():
    long = "x" * 50_000
    spans = [chat("a", 0, [parts("user", txt(long))], [parts("assistant", txt("ok"))])]
    assert item_case(reviewed(spans))["input"]["messages"][0]["content"] == long


def test_anthropic_spans_make_the_same_openai_shaped_case(instrument, anthropic_client, fake):
    telemetry = instrument(capture_content=True, redact=False)

    @spanguard.tool
    def refund(order_id: str, amount: float) -> str:
        """Refund an order."""
        return f"refunded {amount} on {order_id}"

    fake.script(tool_call("refund", {"order_id": "42", "amount": 19.5}, call_id="toolu_1"), text("Done, refunded."))
    tools = [{"name": "refund", "description": "Refund", "input_schema": {"type": "object"}}]
    model, system = "claude-haiku-4-5", "You handle refunds."
    history: list[dict[str, Any]] = [{"role": "user", "content": "Refund order 42, please."}]
    with spanguard.agent("refunds"):
        first = anthropic_client.messages.create(
            model=model, max_tokens=256, system=system, messages=history, tools=tools
        )
        block = next(b for b in first.content if b.type == "tool_use")
        outcome = refund(**block.input)
        history += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": outcome}]},
        ]
        anthropic_client.messages.create(model=model, max_tokens=256, system=system, messages=history, tools=tools)
    spans = [json.loads(json.dumps(review_span(to_view(span)))) for span in telemetry.spans()]

    case = item_case(reviewed(spans, trace_id=spans[0]["trace_id"]))

    messages = case["input"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["tool_calls"][0]["id"] == "toolu_1"
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"order_id": "42", "amount": 19.5}
    assert messages[3] == {"role": "tool", "content": "refunded 19.5 on 42", "tool_call_id": "toolu_1"}
    assert case["original_output"]["content"] == "Done, refunded."
    assert case["model"] == "claude-haiku-4-5-20251001"
    assert_openai_chat(messages)


# --- rejected approvals ---------------------------------------------------------------------------------------------


def rejected(**fields: Any) -> RejectedApproval:
    state = {
        "messages": [
            parts("system", txt("You issue refunds.")),
            parts("user", txt("Refund 250 on A-1.")),
            parts("assistant", call("call_r", "issue_refund", {"order_id": "A-1", "amount": 250.0})),
        ],
        "tool_calls": [],
        "context": {},
        "models": ["gpt-4o-mini-2024-07-18"],
    }
    base = {
        "approval_id": "apr_" + "A" * 22,
        "action": "issue_refund",
        "tier": "red",
        "arguments": {"order_id": "A-1", "amount": 250.0},
        "state": state,
        "reason": "over the refund limit",
        "reviewers": ["alice"],
        "trace_id": TRACE,
        "decided_at": AT,
    }
    return RejectedApproval(**{**base, **fields})


def test_a_rejected_approval_is_a_case_whose_rejected_tool_call_is_the_action():
    case = approval_case(rejected(tags=["refunds"]))
    assert set(case) == CASE_KEYS
    assert case["id"] == case_id("approval:apr_" + "A" * 22)
    assert case["rejected_tool_calls"] == [{"name": "issue_refund", "arguments": {"order_id": "A-1", "amount": 250.0}}]
    assert case["input"]["messages"] == [
        {"role": "system", "content": "You issue refunds."},
        {"role": "user", "content": "Refund 250 on A-1."},
    ]
    assert case["original_output"]["tool_calls"][0]["function"]["name"] == "issue_refund"
    assert (case["outcome"], case["reason"], case["reason_text"]) == ("reject", None, "over the refund limit")
    assert case["model"] == "gpt-4o-mini-2024-07-18" and case["tags"] == ["refunds"]
    assert case["source"] == {
        "kind": "approval",
        "approval_id": "apr_" + "A" * 22,
        "trace_id": TRACE,
        "action": "issue_refund",
        "reviewers": ["alice"],
        "reviewed_at": "2026-12-03T10:00:00Z",
    }
    assert sft_row(case) is None and preference_row(case) is None
    assert_openai_chat(case["input"]["messages"])


@pytest.mark.parametrize("state", [{}, {"messages": "not a list"}, {"messages": [1, None, {"role": 5}]}, "junk"])
def test_a_rejected_approval_without_usable_messages_calls_the_action_as_its_output(state):
    case = approval_case(rejected(state=state))
    assert case["original_output"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "issue_refund", "arguments": '{"order_id":"A-1","amount":250.0}'},
        }
    ]
    ASSISTANT.validate_python(case["original_output"])
    assert_openai_chat(case["input"]["messages"])


# --- SFT and preference rows ----------------------------------------------------------------------------------------


def test_sft_rows_end_with_the_correction_and_match_openais_chat_format():
    case = item_case(
        reviewed(
            tool_trace(),
            "correct",
            [decision("correct", correction="A-1 arrives Monday.")],
            golden="A-1 arrives Monday.",
        )
    )
    line = sft_row(case)
    assert_sft_row(line)
    assert line["messages"][-1] == {"role": "assistant", "content": "A-1 arrives Monday."}
    assert line["messages"][:-1] == case["input"]["messages"]
    assert row(case, "sft") == line


def test_approved_outputs_are_sft_rows_only_when_asked():
    case = item_case(reviewed(simple_trace(), "approve"))
    assert sft_row(case) is None
    line = sft_row(case, include_approved=True)
    assert_sft_row(line)
    assert line["messages"][-1] == {"role": "assistant", "content": "Sydney is the capital."}  # no empty tool_calls


def test_preference_rows_prefer_the_correction_over_the_original_and_match_openais_dpo_format():
    correct = decision("correct", correction="Canberra is the capital of Australia.")
    case = item_case(reviewed(simple_trace(), "correct", [correct], golden="Canberra is the capital of Australia."))
    line = preference_row(case)
    assert_preference_row(line)
    assert line["preferred_output"] == [{"role": "assistant", "content": "Canberra is the capital of Australia."}]
    assert line["non_preferred_output"] == [{"role": "assistant", "content": "Sydney is the capital."}]
    assert line["input"]["messages"] == case["input"]["messages"]
    assert preference_row(item_case(reviewed(simple_trace(), "approve"))) is None


def test_a_lone_surrogate_in_a_reviewers_text_is_written_as_its_escape():
    correct = decision("correct", correction="broken \ud800 text")
    case = item_case(reviewed(simple_trace(), "correct", [correct], golden="broken \ud800 text"))
    line = encode_line(case)
    line.encode("utf-8")
    assert "\\ud800" in line and json.loads(line) == case
    assert encode_line({"text": "Crème brûlée"}) == '{"text":"Crème brûlée"}'  # UTF-8 kept as it is otherwise


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of eval, sft, preference"):
        row(item_case(reviewed(simple_trace())), "csv")  # type: ignore[arg-type]


# --- PII ------------------------------------------------------------------------------------------------------------

EMAIL = "jane.doe@example.org"
CARD = "4111 1111 1111 1111"


def test_exports_of_items_ingested_redacted_hold_no_raw_pii(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True, redact=True)
    fake.script(text(f"I have noted {EMAIL} and the card {CARD}."))
    openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": f"My e-mail is {EMAIL} and my card is {CARD}. Refund me."},
        ],
    )
    spans = [json.loads(json.dumps(review_span(to_view(span)))) for span in telemetry.spans()]
    raw = json.dumps(spans)
    assert EMAIL not in raw and CARD not in raw  # the store only ever holds this
    correct = decision("correct", correction="I will refund the card ending <CREDIT_CARD>.")
    case = item_case(reviewed(spans, "correct", [correct], golden=correct.correction, trace_id=spans[0]["trace_id"]))

    exported = exported_text(case)

    assert EMAIL not in exported and CARD not in exported and "4111" not in exported
    assert "<EMAIL_ADDRESS>" in exported
    assert case["input"]["messages"][1]["content"].count("<") >= 2  # the placeholders, as stored

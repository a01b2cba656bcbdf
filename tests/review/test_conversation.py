"""Assembling one trace's ReviewSpans into the conversation a reviewer reads.

The OpenAI, Anthropic and event-capture traces are made by the real instrumentation (the real SDK clients against
the fake provider, spans taken from an in-memory exporter), so the assembler is tested on exactly what spanguard
emits; the other cases use hand-written ReviewSpans shaped the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import agent as example_agent
import pytest
from fake_provider import text, tool_call

import spanguard
from spanguard.processors.sdk import to_view
from spanguard.review.conversation import CONTENT_LIMIT, TRUNCATED, assemble, placeholders

TRACE = "0af7651916cd43dd8448eb211c80319c"
MS = 1_000_000
T0 = 1_700_000_000_000_000_000
TOP_KEYS = {
    "trace_id",
    "started_at_unix_nano",
    "duration_ms",
    "turns",
    "llm_calls",
    "tool_calls",
    "models",
    "providers",
    "redaction",
    "errors",
    "spans",
    "notes",
}
TURN_KEYS = {
    "role",
    "content",
    "span_id",
    "time_unix_nano",
    "model",
    "tool_calls",
    "tool_call_id",
    "finish_reason",
    "redacted",
}


# --- helpers ------------------------------------------------------------------------------------------------------


def review_span(span: Any) -> dict[str, Any]:
    """An SDK ReadableSpan as the ReviewSpan JSON of docs/review.md (through JSON, as the ingest API gets it)."""
    view = to_view(span)
    body = {
        "trace_id": view.trace_id,
        "span_id": view.span_id,
        "parent_span_id": view.parent_span_id,
        "name": view.name,
        "kind": view.kind.lower(),
        "start_time_unix_nano": view.start_time_unix_nano,
        "end_time_unix_nano": view.end_time_unix_nano,
        "status": {"code": view.status_code.lower(), "message": view.status_message},
        "attributes": view.attributes,
        "events": [
            {"name": event.name, "time_unix_nano": event.time_unix_nano, "attributes": event.attributes}
            for event in view.events
        ],
        "resource": view.resource,
        "scope": {"name": view.scope, "version": spanguard.__version__},
    }
    return json.loads(json.dumps(body))


def traces_of(telemetry: Any) -> dict[str, list[dict[str, Any]]]:
    """The finished spans as ReviewSpans grouped by trace, each trace's spans in reverse (to prove order is rebuilt)."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in telemetry.spans():
        body = review_span(span)
        traces.setdefault(body["trace_id"], []).insert(0, body)
    return traces


def span(
    span_id: str,
    name: str,
    start_ms: float,
    end_ms: float,
    attributes: dict[str, Any] | None = None,
    *,
    parent: str | None = "root",
    status: str = "unset",
    message: str = "",
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A hand-written ReviewSpan; times in milliseconds after T0."""
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "client",
        "start_time_unix_nano": T0 + int(start_ms * MS),
        "end_time_unix_nano": T0 + int(end_ms * MS),
        "status": {"code": status, "message": message},
        "attributes": attributes or {},
        "events": events or [],
        "resource": {"service.name": "agent"},
        "scope": {"name": "spanguard.instrumentation.openai", "version": "0.1.0"},
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def msg(role: str, *parts: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "parts": list(parts)}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def txt(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content}


def call_part(call_id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def response_part(call_id: str | None, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def chat(
    span_id: str,
    start_ms: float,
    end_ms: float,
    inputs: Sequence[dict[str, Any]] = (),
    outputs: Sequence[dict[str, Any]] = (),
    **attributes: Any,
) -> dict[str, Any]:
    """A chat span as the OpenAI instrumentation records it with SPAN_ONLY capture."""
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.input.messages": dumps(list(inputs)),
        "gen_ai.output.messages": dumps(list(outputs)),
    }
    base.update({key.replace("__", "."): value for key, value in attributes.items()})
    return span(span_id, "chat gpt-4o", start_ms, end_ms, base)


def tool_span(
    span_id: str, start_ms: float, end_ms: float, name: str, arguments: Any, result: Any, **extra: Any
) -> dict[str, Any]:
    """A tool span as ``@spanguard.tool`` records it (no call id: the function does not know it)."""
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.arguments": dumps(arguments),
    }
    if result is not None:
        attributes["gen_ai.tool.call.result"] = result if isinstance(result, str) else dumps(result)
    attributes.update({key.replace("__", "."): value for key, value in extra.items()})
    return span(span_id, f"execute_tool {name}", start_ms, end_ms, attributes)


def root(end_ms: float = 100) -> dict[str, Any]:
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
    return span("root", "invoke_agent support", 0, end_ms, attributes, parent=None)


def roles(conversation: dict[str, Any]) -> list[str]:
    return [turn["role"] for turn in conversation["turns"]]


def assert_plain_json(conversation: dict[str, Any]) -> None:
    """Every key present, and the result encodable as strict JSON in UTF-8 (what the API responds with)."""
    assert set(conversation) == TOP_KEYS
    for turn in conversation["turns"]:
        assert set(turn) == TURN_KEYS
    json.dumps(conversation, ensure_ascii=False, allow_nan=False).encode("utf-8")


SYSTEM = "You are a support agent."
TOOL_ARGS = {"order_id": "A-1001"}
TOOL_RESULT = {"status": "shipped", "eta": "tomorrow"}


def openai_style_trace() -> list[dict[str, Any]]:
    """Agent root, a chat asking for a tool, the tool span, a chat answering with the tool result in its input."""
    history = [msg("system", txt(SYSTEM)), msg("user", txt("Where is order A-1001?"))]
    asked = msg("assistant", call_part("call_1", "lookup_order", TOOL_ARGS), finish_reason="tool_calls")
    answer = msg("assistant", txt("It ships tomorrow."), finish_reason="stop")
    second_input = [
        *history,
        msg("assistant", call_part("call_1", "lookup_order", TOOL_ARGS)),
        msg("tool", response_part("call_1", json.dumps(TOOL_RESULT))),
    ]
    return [
        root(),
        chat("chat1", 1, 20, history, [asked]),
        tool_span("tool1", 21, 22, "lookup_order", TOOL_ARGS, TOOL_RESULT),
        chat("chat2", 23, 40, second_input, [answer]),
    ]


# --- traces made by the real instrumentation ------------------------------------------------------------------------


def test_openai_agent_trace_reads_as_one_thread_with_each_message_once(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True, redact=True)
    example_agent.script_fake_provider(fake)
    example_agent.run(openai_client, quiet=True)
    traces = list(traces_of(telemetry).values())
    assert len(traces) == 2  # one per conversation of the example agent
    first = next(t for t in traces if len(t) == 5)  # agent, chat, tool, chat, chat

    conversation = assemble(first)

    assert_plain_json(conversation)
    assert roles(conversation) == ["system", "user", "assistant", "tool", "assistant", "user", "assistant"]
    turns = conversation["turns"]
    assert turns[0]["content"] == example_agent.SYSTEM
    assert turns[1]["content"] == "Hi, where is my order A-1001?"
    assert turns[2]["content"] == ""
    assert turns[2]["tool_calls"] == [{"id": "call_order_1001", "name": "lookup_order", "arguments": TOOL_ARGS}]
    assert turns[2]["finish_reason"] == "tool_calls"
    assert turns[2]["model"] == "gpt-4o-mini-2024-07-18"
    assert turns[3]["tool_call_id"] == "call_order_1001"
    assert json.loads(turns[3]["content"]) == example_agent.ORDERS["A-1001"]
    assert turns[4]["content"] == "Your order A-1001 has shipped with DHL and arrives tomorrow."
    assert turns[5]["content"] == "Thanks! Can you email <EMAIL_ADDRESS> too?"  # redacted in-process
    assert turns[5]["redacted"] == ["EMAIL_ADDRESS"]
    assert turns[6]["finish_reason"] == "stop"
    times = [turn["time_unix_nano"] for turn in turns]
    assert times == sorted(times)

    assert [c["finish_reasons"] for c in conversation["llm_calls"]] == [["tool_calls"], ["stop"], ["stop"]]
    assert all(c["request_model"] == "gpt-4o-mini" for c in conversation["llm_calls"])
    (executed,) = conversation["tool_calls"]
    # The tool span has no call id: it is tied to the model's request by name and arguments.
    assert executed["id"] == "call_order_1001"
    assert executed["executed"] is True
    assert executed["arguments"] == TOOL_ARGS
    assert executed["result"] == example_agent.ORDERS["A-1001"]
    assert conversation["models"] == ["gpt-4o-mini-2024-07-18"]
    assert conversation["providers"] == ["openai"]
    # The e-mail in the prompt, and the session's user.id on each of the five spans (redacted by its key).
    assert conversation["redaction"] == {"count": 6, "entities": ["EMAIL_ADDRESS", "USER_ID"]}
    assert [(s["name"], s["depth"]) for s in conversation["spans"]] == [
        ("invoke_agent support-agent", 0),
        ("chat gpt-4o-mini", 1),
        ("execute_tool lookup_order", 1),
        ("chat gpt-4o-mini", 1),
        ("chat gpt-4o-mini", 1),
    ]
    assert conversation["errors"] == []
    assert conversation["notes"] == []


def test_anthropic_trace_with_system_prompt_and_tool_result_blocks(instrument, anthropic_client, fake):
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
    (trace,) = traces_of(telemetry).values()

    conversation = assemble(trace)

    assert_plain_json(conversation)
    assert roles(conversation) == ["system", "user", "assistant", "tool", "assistant"]  # the system prompt once
    turns = conversation["turns"]
    assert turns[0]["content"] == system
    assert turns[2]["tool_calls"] == [
        {"id": "toolu_1", "name": "refund", "arguments": {"order_id": "42", "amount": 19.5}}
    ]
    assert turns[2]["finish_reason"] == "tool_use"
    assert turns[3] | {"span_id": None, "time_unix_nano": None} == {
        "role": "tool",
        "content": "refunded 19.5 on 42",
        "span_id": None,
        "time_unix_nano": None,
        "model": None,
        "tool_calls": [],
        "tool_call_id": "toolu_1",
        "finish_reason": None,
        "redacted": [],
    }
    assert turns[4]["content"] == "Done, refunded."
    assert conversation["providers"] == ["anthropic"]
    assert conversation["models"] == ["claude-haiku-4-5-20251001"]
    (executed,) = conversation["tool_calls"]
    assert (executed["id"], executed["name"], executed["result"]) == ("toolu_1", "refund", "refunded 19.5 on 42")
    assert conversation["notes"] == []


def test_content_recorded_only_as_span_events_is_read_from_the_events(instrument, openai_client, fake):
    telemetry = instrument(capture_content="EVENT_ONLY", redact=False)
    fake.script(text("It ships tomorrow."))
    openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where?"}]
    )
    (trace,) = traces_of(telemetry).values()
    (chat_span,) = trace
    assert "gen_ai.input.messages" not in chat_span["attributes"]
    assert chat_span["events"][0]["name"] == "gen_ai.client.inference.operation.details"

    conversation = assemble(trace)

    assert [(t["role"], t["content"]) for t in conversation["turns"]] == [
        ("system", SYSTEM),
        ("user", "Where?"),
        ("assistant", "It ships tomorrow."),
    ]
    assert conversation["notes"] == []


def test_attributes_win_over_events_when_both_are_recorded():
    spans = openai_style_trace()
    spans[1]["events"] = [
        {
            "name": "gen_ai.client.inference.operation.details",
            "time_unix_nano": T0,
            "attributes": {"gen_ai.input.messages": dumps([msg("user", txt("from the event"))])},
        }
    ]
    assert "from the event" not in [t["content"] for t in assemble(spans)["turns"]]


# --- the thread -----------------------------------------------------------------------------------------------------


def test_history_repeated_in_each_call_appears_once_and_tool_result_from_input_not_duplicated():
    conversation = assemble(openai_style_trace())

    assert roles(conversation) == ["system", "user", "assistant", "tool", "assistant"]
    turns = conversation["turns"]
    assert [t["span_id"] for t in turns] == ["chat1", "chat1", "chat1", "chat2", "chat2"]
    assert turns[3]["content"] == json.dumps(TOOL_RESULT)
    assert turns[3]["tool_call_id"] == "call_1"
    assert turns[4]["model"] == "gpt-4o-2024-08-06"
    assert [c["span_id"] for c in conversation["llm_calls"]] == ["chat1", "chat2"]


def test_spans_in_any_order_give_the_same_conversation():
    spans = openai_style_trace()
    assert assemble(list(reversed(spans))) == assemble(spans)


def test_tool_result_becomes_a_turn_when_no_later_call_carries_it():
    spans = openai_style_trace()[:3]  # the agent stopped after the tool ran

    conversation = assemble(spans)

    assert roles(conversation) == ["system", "user", "assistant", "tool"]
    tool_turn = conversation["turns"][-1]
    assert (tool_turn["span_id"], tool_turn["tool_call_id"]) == ("tool1", "call_1")
    assert json.loads(tool_turn["content"]) == TOOL_RESULT


def test_tool_call_no_tool_span_ran_is_listed_as_not_executed():
    history = [msg("user", txt("Cancel A-1 and refund it."))]
    asked = msg(
        "assistant",
        call_part("call_a", "cancel", {"id": "A-1"}),
        call_part("call_b", "refund", {"id": "A-1"}),
        finish_reason="tool_calls",
    )
    second_input = [
        *history,
        asked | {"finish_reason": None},
        msg("tool", response_part("call_a", "cancelled")),
        msg("tool", response_part("call_b", "refunded")),
    ]
    spans = [
        root(),
        chat("chat1", 1, 10, history, [asked]),
        tool_span("t_cancel", 11, 12, "cancel", {"id": "A-1"}, "cancelled"),
        chat("chat2", 13, 20, second_input, [msg("assistant", txt("Both done."))]),
    ]

    conversation = assemble(spans)

    assert [(c["name"], c["executed"], c["span_id"], c["result"]) for c in conversation["tool_calls"]] == [
        ("refund", False, None, "refunded"),  # requested when chat1 ended, before the cancel tool started
        ("cancel", True, "t_cancel", "cancelled"),
    ]
    assert roles(conversation) == ["user", "assistant", "tool", "tool", "assistant"]


def test_tool_span_with_call_id_is_matched_by_id_not_name():
    spans = openai_style_trace()
    spans[2]["attributes"]["gen_ai.tool.call.id"] = "call_1"
    spans[2]["attributes"]["gen_ai.tool.call.arguments"] = dumps({"order_id": "other"})

    (executed,) = assemble(spans)["tool_calls"]

    assert (executed["id"], executed["arguments"]) == ("call_1", {"order_id": "other"})


def test_parallel_calls_of_one_tool_are_matched_by_arguments():
    asked = msg(
        "assistant",
        call_part("call_a", "lookup_order", {"order_id": "A"}),
        call_part("call_b", "lookup_order", {"order_id": "B"}),
    )
    spans = [
        root(),
        chat("c1", 1, 2, [msg("user", txt("A and B?"))], [asked]),
        tool_span("tb", 3, 4, "lookup_order", {"order_id": "B"}, "b shipped"),  # run in the other order
        tool_span("ta", 5, 6, "lookup_order", {"order_id": "A"}, "a shipped"),
    ]

    executed = assemble(spans)["tool_calls"]

    assert [(c["span_id"], c["id"]) for c in executed] == [("tb", "call_b"), ("ta", "call_a")]


def test_tool_results_without_call_ids_are_not_shown_twice():
    """Some providers give tool calls no ids: the result itself, however spelled, tells it is already shown."""
    history = [msg("user", txt("Status and note?"))]
    asked = msg("assistant", call_part(None, "status", {}), call_part(None, "note", {}))
    second_input = [
        *history,
        asked,
        msg("tool", response_part(None, json.dumps({"eta": "tomorrow", "status": "shipped"}))),  # other spelling
        msg("tool", response_part(None, "noted")),
    ]
    spans = [
        root(),
        chat("c1", 1, 2, history, [asked]),
        tool_span("t1", 3, 4, "status", {}, {"status": "shipped", "eta": "tomorrow"}),
        tool_span("t2", 5, 6, "note", {}, "noted"),
        chat("c2", 7, 8, second_input, [msg("assistant", txt("Shipped, noted."))]),
    ]

    conversation = assemble(spans)

    assert roles(conversation) == ["user", "assistant", "tool", "tool", "assistant"]
    assert {t["span_id"] for t in conversation["turns"] if t["role"] == "tool"} == {"c2"}
    assert [c["executed"] for c in conversation["tool_calls"]] == [True, True]


def test_trimmed_history_and_a_second_system_prompt():
    first_input = [msg("system", txt(SYSTEM)), msg("user", txt("one"))]
    # The app keeps only the system prompt and the last exchange: nothing of it is new but the last user turn.
    trimmed = [msg("system", txt(SYSTEM)), msg("assistant", txt("ok one")), msg("user", txt("two"))]
    spans = [
        root(),
        chat("c1", 1, 2, first_input, [msg("assistant", txt("ok one"))]),
        chat("c2", 3, 4, trimmed, [msg("assistant", txt("ok two"))]),
    ]
    spans[2]["attributes"]["gen_ai.system_instructions"] = dumps([txt("Now be terse.")])

    conversation = assemble(spans)

    assert [(t["role"], t["content"]) for t in conversation["turns"]] == [
        ("system", SYSTEM),
        ("user", "one"),
        ("assistant", "ok one"),
        ("system", "Now be terse."),
        ("user", "two"),
        ("assistant", "ok two"),
    ]


def test_system_instructions_attribute_is_shown_once():
    spans = [root()]
    history: list[dict[str, Any]] = []
    for index in range(3):
        history.append(msg("user", txt(f"q{index}")))
        output = msg("assistant", txt(f"a{index}"))
        item = chat(f"c{index}", index * 10 + 1, index * 10 + 5, history, [output])
        item["attributes"]["gen_ai.system_instructions"] = dumps([txt("Be kind.")])
        spans.append(item)
        history.append(output)

    assert roles(assemble(spans)) == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]


# --- redaction, models, errors, timing ------------------------------------------------------------------------------


def test_redaction_placeholders_are_listed_per_turn_and_counts_summed():
    inputs = [msg("user", txt("I am <PERSON:3f2a9c1b>, mail <EMAIL_ADDRESS>, card ***************1111, <b>hi</b>"))]
    outputs = [msg("assistant", txt("Noted."), call_part("c1", "mail", {"to": "<EMAIL_ADDRESS:0011aabb>"}))]
    spans = [
        root(),
        chat(
            "c1",
            1,
            5,
            inputs,
            outputs,
            spanguard__redaction__count=2,
            spanguard__redaction__entities=["EMAIL_ADDRESS", "PERSON"],
        ),
        tool_span(
            "t1",
            6,
            7,
            "mail",
            {"to": "<EMAIL_ADDRESS:0011aabb>"},
            {"token": "<DROPPED_KEY>"},
            spanguard__redaction__count=1,
            spanguard__redaction__entities=["DROPPED_KEY", "EMAIL_ADDRESS"],
        ),
    ]

    conversation = assemble(spans)

    user, assistant, tool = conversation["turns"]
    assert user["redacted"] == ["EMAIL_ADDRESS", "PERSON"]  # a mask carries no type; <b> is no placeholder
    assert assistant["redacted"] == ["EMAIL_ADDRESS"]  # found in the tool call's arguments
    assert tool["redacted"] == ["DROPPED_KEY"]
    assert conversation["redaction"] == {"count": 3, "entities": ["DROPPED_KEY", "EMAIL_ADDRESS", "PERSON"]}
    assert placeholders("<CREDIT_CARD> <PERSON:3f2a9c1b> <PERSON:3F2A9C1B> <person> <US_SSN>") == [
        "CREDIT_CARD",
        "PERSON",
        "US_SSN",
    ]


def test_redaction_failed_content_is_withheld_with_a_note():
    spans = openai_style_trace()
    spans[1]["attributes"]["gen_ai.input.messages"] = "<REDACTION_FAILED>"

    conversation = assemble(spans)

    assert conversation["notes"] == ["span chat1: gen_ai.input.messages failed redaction and was withheld"]
    # The next call's input does not continue a thread that starts with its output: shown again, nothing lost.
    assert roles(conversation) == ["assistant", "system", "user", "assistant", "tool", "assistant"]


def test_models_in_order_of_first_use_with_request_model_fallback_and_providers():
    spans = [
        root(),
        chat("c1", 1, 2, gen_ai__response__model="gpt-4o-2024-08-06"),
        chat("c2", 3, 4, gen_ai__response__model="gpt-4o-mini-2024-07-18"),
        chat("c3", 5, 6, gen_ai__response__model="gpt-4o-2024-08-06"),
        chat("c4", 7, 8, gen_ai__provider__name="anthropic", gen_ai__response__model="claude-haiku-4-5-20251001"),
        span("c5", "chat", 9, 10, {"gen_ai.operation.name": "chat", "gen_ai.system": "gcp.gemini"}),
        span("c6", "embeddings", 11, 12, {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "emb-3"}),
    ]

    conversation = assemble(spans)

    assert conversation["models"] == [
        "gpt-4o-2024-08-06",
        "gpt-4o-mini-2024-07-18",
        "claude-haiku-4-5-20251001",
        "emb-3",
    ]
    assert conversation["providers"] == ["openai", "anthropic", "gcp.gemini"]
    assert [c["operation"] for c in conversation["llm_calls"]] == ["chat"] * 5 + ["embeddings"]
    assert conversation["llm_calls"][-1]["response_model"] is None
    assert conversation["llm_calls"][-1]["request_model"] == "emb-3"


def test_llm_call_rows_carry_usage_and_finish_reasons():
    item = chat(
        "c1",
        1,
        251,
        gen_ai__response__id="chatcmpl-1",
        gen_ai__usage__input_tokens=30,
        gen_ai__usage__output_tokens=6,
        gen_ai__response__finish_reasons=["stop"],
    )

    (row,) = assemble([item])["llm_calls"]

    assert row == {
        "span_id": "c1",
        "name": "chat gpt-4o",
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "response_id": "chatcmpl-1",
        "input_tokens": 30,
        "output_tokens": 6,
        "finish_reasons": ["stop"],
        "duration_ms": 250.0,
        "status": "unset",
        "error_type": None,
    }


def test_error_spans_are_listed_with_their_error_type():
    failed_chat = chat("c1", 1, 2)
    failed_chat["status"] = {"code": "error", "message": "openai.RateLimitError"}
    failed_chat["attributes"]["error.type"] = "openai.RateLimitError"
    failed_tool = tool_span("t1", 3, 4, "lookup_order", TOOL_ARGS, None)
    failed_tool["status"] = {"code": "error", "message": "KeyError"}
    ok_span = chat("c2", 5, 6)
    ok_span["status"] = {"code": "ok", "message": ""}

    conversation = assemble([root(), ok_span, failed_tool, failed_chat])

    assert conversation["errors"] == [
        {"span_id": "c1", "name": "chat gpt-4o", "error_type": "openai.RateLimitError"},
        {"span_id": "t1", "name": "execute_tool lookup_order", "error_type": "KeyError"},  # from the status message
    ]
    assert [(c["span_id"], c["status"], c["error_type"]) for c in conversation["llm_calls"]] == [
        ("c1", "error", "openai.RateLimitError"),
        ("c2", "ok", None),
    ]
    assert conversation["tool_calls"][0]["status"] == "error"


def test_timing_tree_is_pre_order_with_depths_and_orphans_as_roots():
    spans = [
        span("b", "b", 50, 60, parent="root"),
        span("a2", "a2", 20, 30, parent="a"),
        span("a", "a", 10, 40, parent="root"),
        span("a1", "a1", 15, 18, parent="a"),
        span("orphan", "orphan", 5, 8, parent="not-in-this-trace"),
        span("root", "root", 0, 100, parent=None),
    ]

    conversation = assemble(spans)

    assert [(s["span_id"], s["depth"]) for s in conversation["spans"]] == [
        ("root", 0),
        ("a", 1),
        ("a1", 2),
        ("a2", 2),
        ("b", 1),
        ("orphan", 0),
    ]
    first = conversation["spans"][0]
    assert first == {
        "span_id": "root",
        "parent_span_id": None,
        "name": "root",
        "start_time_unix_nano": T0,
        "duration_ms": 100.0,
        "status": "unset",
        "depth": 0,
    }
    assert conversation["spans"][-1]["parent_span_id"] == "not-in-this-trace"
    assert (conversation["started_at_unix_nano"], conversation["duration_ms"]) == (T0, 100.0)
    assert conversation["trace_id"] == TRACE


def test_spans_whose_parents_form_a_cycle_are_still_shown():
    spans = [span("x", "x", 1, 2, parent="y"), span("y", "y", 3, 4, parent="x"), span("z", "z", 5, 6, parent="z")]

    conversation = assemble(spans)

    assert [(s["span_id"], s["depth"]) for s in conversation["spans"]] == [("z", 0), ("x", 0), ("y", 1)]
    assert "some spans' parents form a cycle; they are shown as roots" in conversation["notes"]


def test_duplicate_span_ids_keep_the_first():
    spans = openai_style_trace()
    changed = json.loads(json.dumps(spans[1]))
    changed["name"] = "a later copy"
    changed["attributes"]["gen_ai.output.messages"] = dumps([msg("assistant", txt("different"))])

    conversation = assemble([*spans, changed, spans[3]])

    assert conversation == assemble(spans) | {
        "notes": ["2 duplicate span(s) ignored (the first of each span_id is kept)"]
    }


# --- untrusted input ------------------------------------------------------------------------------------------------

HOSTILE_SPANS: list[Any] = [
    None,
    "a string",
    42,
    [],
    {},
    {"span_id": None},
    {"span_id": 7, "attributes": None},
    {"span_id": "x" * 10_000},
    {"span_id": "n1", "parent_span_id": 12, "status": "error", "start_time_unix_nano": "soon", "events": "no"},
    {"span_id": "n2", "attributes": ["not", "a", "map"], "events": [None, {"name": 3, "attributes": None}]},
    {"span_id": "n3", "start_time_unix_nano": True, "end_time_unix_nano": -5, "status": {"code": None}},
    {"span_id": "n4", "attributes": {None: 1, 5: "x", "gen_ai.operation.name": None}},
    span("h1", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "{not json"}),
    span("h2", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.output.messages": "[[[[[[" * 50_000}),
    span("h3", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "42"}),
    span("h4", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.input.messages": 3.5}),
    span("h5", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.input.messages": '[1, "x", null, {}]'}),
    span(
        "h6",
        "chat",
        1,
        2,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": dumps(
                [
                    {"role": 5, "parts": "plain"},
                    {"role": "alien", "parts": [None, 3, {"type": None}, {"type": ["x"]}, {"type": "image_url"}]},
                    {"role": "user", "parts": [{"type": "text", "content": {"nested": [1, 2]}}]},
                    {"role": "user", "parts": {"type": "text", "content": "a part not in a list"}},
                    {"role": "assistant", "parts": [{"type": "tool_call", "id": 3, "name": None, "arguments": None}]},
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": [], "response": {"a": None}}]},
                    {"role": None, "parts": None},
                ]
            ),
            "gen_ai.output.messages": dumps([{"finish_reason": 9, "parts": [{"type": "text", "content": None}]}]),
            "gen_ai.system_instructions": "not json, just a prompt",
            "gen_ai.usage.input_tokens": "many",
            "gen_ai.usage.output_tokens": True,
            "gen_ai.response.finish_reasons": 5,
            "spanguard.redaction.count": "lots",
            "spanguard.redaction.entities": [None, 3, "PERSON"],
        },
    ),
    span("h7", "execute_tool", 1, 2, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": "{x"}),
    span("h8", "execute_tool", 1, 2, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.result": 1.5}),
    span("h9", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.input.messages": '[{"parts": ["\\ud800"]}]'}),
    span("h10", "chat", 1, 2, {"gen_ai.operation.name": "chat", "gen_ai.output.messages": '[{"parts": NaN}]'}),
    span(
        "h11",
        "chat",
        1,
        2,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.output.messages": '[{"parts": [{"type": "tool_call", "name": "f", "arguments": [NaN]}]}]',
        },
    ),
]


@pytest.mark.parametrize("index", range(len(HOSTILE_SPANS)))
def test_a_malformed_span_never_raises(index):
    hostile = HOSTILE_SPANS[index]

    conversation = assemble([*openai_style_trace(), hostile])

    assert_plain_json(conversation)
    ours = [t["role"] for t in conversation["turns"] if t["span_id"] in ("chat1", "chat2")]
    assert ours == ["system", "user", "assistant", "tool", "assistant"]


def test_all_malformed_spans_at_once_never_raise_and_notes_say_what_was_skipped():
    conversation = assemble(HOSTILE_SPANS)

    assert_plain_json(conversation)
    notes = conversation["notes"]
    assert "span #0 is not an object; skipped" in notes
    assert "span #5 has no usable span_id; skipped" in notes
    assert "span h1: gen_ai.input.messages is not valid JSON; skipped" in notes
    assert "span h6: a part of type image_url is not shown" in notes
    assert "span h7: gen_ai.tool.call.arguments is not valid JSON; shown as text" in notes
    assert len(notes) <= 50
    assert conversation["redaction"]["entities"] == ["PERSON"]
    turns = {(t["span_id"], t["content"]) for t in conversation["turns"]}
    assert ("h6", "not json, just a prompt") in turns  # a bare system prompt is read as text
    assert ("h6", '{"nested": [1, 2]}') in turns  # a text part that is no string is shown as JSON
    assert ("h9", "?") in turns  # a lone surrogate cannot be sent as UTF-8


def test_notes_are_bounded():
    spans = [{"span_id": f"s{index}", "attributes": "not a map"} for index in range(200)]

    notes = assemble(spans)["notes"]

    assert len(notes) == 50
    assert notes[-1] == "... and 151 more notes"


@pytest.mark.parametrize("spans", [None, "spans", 42, {"span_id": "a"}, b"bytes", [None, None]])
def test_input_that_is_not_a_list_of_spans_gives_an_empty_conversation(spans):
    conversation = assemble(spans)

    assert_plain_json(conversation)
    assert conversation["turns"] == [] and conversation["spans"] == []
    assert conversation["notes"]


def test_a_1mb_content_is_truncated_with_a_note():
    huge = "A" * 1_000_000
    spans = openai_style_trace()
    spans[1]["attributes"]["gen_ai.input.messages"] = dumps([msg("user", txt(huge))])
    spans[2]["attributes"]["gen_ai.tool.call.result"] = huge
    spans[2]["attributes"]["gen_ai.tool.call.arguments"] = dumps({"blob": huge})
    del spans[3]  # so the tool span's result becomes a turn

    conversation = assemble(spans)

    user = conversation["turns"][0]
    assert user["content"] == "A" * CONTENT_LIMIT + TRUNCATED
    assert conversation["turns"][-1]["content"] == "A" * CONTENT_LIMIT + TRUNCATED
    (executed,) = conversation["tool_calls"]
    assert len(executed["arguments"]) == CONTENT_LIMIT + len(TRUNCATED)  # too big to show as an object
    assert len(executed["result"]) == CONTENT_LIMIT + len(TRUNCATED)
    assert "span chat1: a content over 20000 characters was truncated" in conversation["notes"]
    assert len(json.dumps(conversation)) < 200_000
    assert huge[:100] not in " ".join(conversation["notes"])


def test_markup_is_kept_as_plain_text():
    script = "<script>alert('x')</script> & <img src=x onerror=alert(1)> \"quoted\""
    spans = openai_style_trace()
    spans[1]["attributes"]["gen_ai.input.messages"] = dumps([msg("user", txt(script))])

    conversation = assemble(spans)

    assert conversation["turns"][0]["content"] == script
    assert conversation["turns"][0]["redacted"] == []


def test_no_content_captured_is_noted():
    spans = openai_style_trace()
    for item in spans:
        for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.result"):
            item["attributes"].pop(key, None)

    conversation = assemble(spans)

    assert conversation["turns"] == []
    assert conversation["notes"] == ["no message content was recorded (content capture is off)"]
    assert len(conversation["llm_calls"]) == 2
    assert conversation["tool_calls"][0]["name"] == "lookup_order"

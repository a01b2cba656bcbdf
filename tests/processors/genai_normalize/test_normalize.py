"""genai_normalize: each source's span shape onto the latest GenAI conventions, then risk sees the tool call.

The shapes are written after each project's published attribute names (OpenInference's semantic conventions,
OpenLLMetry's ``gen_ai.prompt.N.*``, the Vercel AI SDK's ``ai.*``, the official events before 1.37), not captured
from the instrumentations themselves: a real-peer test is still to come (issue 16).
"""

from __future__ import annotations

import json

from spanguard.processors.genai_normalize import GenAiNormalizeConfig, Normalizer
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.view import EventView, SpanView


def view(attributes: dict, events: list | None = None, name: str = "span") -> SpanView:
    return SpanView("1" * 32, "2" * 16, name, attributes=attributes, events=events or [])


def normalized(attributes: dict, events: list | None = None, **config) -> dict:
    return Normalizer(GenAiNormalizeConfig(**config)).normalize(view(attributes, events)).attributes


def messages(attributes: dict, key: str) -> list:
    return json.loads(attributes[key])


def test_openinference_llm_span_becomes_a_chat_with_messages_usage_and_tool_calls() -> None:
    out = normalized(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.provider": "openai",
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 7,
            "session.id": "conv-9",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You are support.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.contents.0.message_content.type": "text",
            "llm.input_messages.1.message.contents.0.message_content.text": "Refund order A-1",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "refund",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"order": "A-1"}',
        }
    )
    assert out["gen_ai.operation.name"] == "chat" and out["gen_ai.provider.name"] == "openai"
    assert out["gen_ai.request.model"] == "gpt-4o-2024-08-06"
    assert (out["gen_ai.usage.input_tokens"], out["gen_ai.usage.output_tokens"]) == (12, 7)
    assert out["gen_ai.conversation.id"] == "conv-9"
    inputs = messages(out, "gen_ai.input.messages")
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "Refund order A-1"}]
    (call,) = messages(out, "gen_ai.output.messages")[0]["parts"]
    assert call == {"type": "tool_call", "id": "call_1", "name": "refund", "arguments": {"order": "A-1"}}
    assert out["llm.model_name"] == "gpt-4o-2024-08-06"  # originals kept unless told


def test_openinference_tool_span_becomes_execute_tool_and_is_red_for_a_refund() -> None:
    attributes = {"openinference.span.kind": "TOOL", "tool.name": "refund", "input.value": '{"amount": 90}'}
    out = normalized(attributes)
    assert out["gen_ai.operation.name"] == "execute_tool" and out["gen_ai.tool.name"] == "refund"
    assert out["gen_ai.tool.call.arguments"] == '{"amount": 90}'
    risk = RiskClassifier().classify([view(out, name="execute_tool refund")])
    assert risk.tier == "red"
    assert RiskClassifier().classify([view(attributes, name="refund")]).tier != "red"  # why the normaliser exists


def test_openllmetry_prompt_and_completion_keys_become_messages() -> None:
    out = normalized(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 20,
            "gen_ai.usage.completion_tokens": 5,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Where is A-1?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c1",
            "gen_ai.completion.0.tool_calls.0.name": "track",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"order":"A-1"}',
        }
    )
    assert out["gen_ai.operation.name"] == "chat" and out["gen_ai.provider.name"] == "openai"
    assert out["gen_ai.usage.input_tokens"] == 20
    assert messages(out, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is A-1?"}]}
    ]
    output = messages(out, "gen_ai.output.messages")[0]
    assert output["finish_reason"] == "tool_calls" and output["parts"][0]["name"] == "track"


def test_vercel_ai_sdk_generate_and_tool_call_spans() -> None:
    out = normalized(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.id": "gpt-4o-mini",
            "ai.model.provider": "openai.chat",
            "ai.usage.promptTokens": 9,
            "ai.usage.completionTokens": 3,
            "ai.prompt.messages": json.dumps([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]),
            "ai.response.toolCalls": json.dumps([{"toolCallId": "t1", "toolName": "refund", "args": '{"a":1}'}]),
            "ai.response.finishReason": "tool-calls",
        }
    )
    assert out["gen_ai.operation.name"] == "chat" and out["gen_ai.provider.name"] == "openai"
    assert out["gen_ai.usage.output_tokens"] == 3
    assert messages(out, "gen_ai.input.messages")[0]["parts"] == [{"type": "text", "content": "Hi"}]
    assert messages(out, "gen_ai.output.messages")[0]["parts"][0]["arguments"] == {"a": 1}
    tool = normalized({"ai.operationId": "ai.toolCall", "ai.toolCall.name": "refund", "ai.toolCall.args": "{}"})
    assert tool["gen_ai.operation.name"] == "execute_tool" and tool["gen_ai.tool.name"] == "refund"


def test_older_official_events_fold_into_the_span_and_can_be_dropped() -> None:
    events = [
        EventView("gen_ai.user.message", 1, {"content": "My card is 4111"}),
        EventView("gen_ai.choice", 2, {"message": json.dumps({"content": "Noted."}), "finish_reason": "stop"}),
        EventView("exception", 3, {"exception.type": "X"}),
    ]
    attributes = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"}
    normalizer = Normalizer(GenAiNormalizeConfig(drop_original=True))
    out = normalizer.normalize(view(attributes, events))
    assert out.attributes["gen_ai.provider.name"] == "openai" and "gen_ai.system" not in out.attributes
    assert messages(out.attributes, "gen_ai.input.messages")[0]["parts"][0]["content"] == "My card is 4111"
    assert messages(out.attributes, "gen_ai.output.messages")[0]["finish_reason"] == "stop"
    assert [e.name for e in out.events] == ["exception"]


def test_a_span_already_in_the_latest_conventions_is_left_alone() -> None:
    span = view({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "x"})
    assert Normalizer().normalize(span) is span


def test_what_the_span_already_says_is_never_overwritten() -> None:
    out = normalized({"openinference.span.kind": "LLM", "llm.model_name": "a", "gen_ai.request.model": "b"})
    assert out["gen_ai.request.model"] == "b"


def test_malformed_source_values_do_not_raise() -> None:
    out = normalized(
        {
            "openinference.span.kind": "LLM",
            "llm.token_count.prompt": "many",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{not json",
            "llm.invocation_parameters": "[1,2",
        }
    )
    assert "gen_ai.usage.input_tokens" not in out
    assert messages(out, "gen_ai.output.messages")[0]["parts"][0]["arguments"] == "{not json"

"""Anthropic SDK instrumentation, through the real client against the fake provider."""

from __future__ import annotations

import asyncio
import gc
import json

import anthropic
import pytest
from fake_provider import error, text, tool_call
from opentelemetry.trace import SpanKind, StatusCode

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Refund order 42, please."}]


def create(client, **extra):
    return client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, **extra)


def assert_message_span(span, *, stream=False):
    attributes = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "spanguard.instrumentation.anthropic"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert attributes["gen_ai.response.id"].startswith("msg_")
    assert attributes["spanguard.model.pinned"] is False
    assert attributes.get("gen_ai.request.stream", False) is stream


def test_messages_create_records_usage_including_cache(instrument, anthropic_client, fake):
    telemetry = instrument()
    fake.script(text("Refund issued.", input_tokens=100, cached_tokens=60, output_tokens=5))
    message = create(anthropic_client, stop_sequences=["###"])
    assert message.content[0].text == "Refund issued."
    span = telemetry.span()
    assert_message_span(span)
    attributes = span.attributes
    assert attributes["gen_ai.request.stop_sequences"] == ("###",)
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    # input_tokens counts every input token, cached ones included, as the conventions define it.
    assert attributes["gen_ai.usage.input_tokens"] == 100
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 60
    assert attributes["gen_ai.usage.output_tokens"] == 5


def test_one_call_gives_one_span_and_sdk_span_returns_after_uninstrument(instrument, anthropic_client, fake):
    telemetry = instrument()
    create(anthropic_client)
    (span,) = telemetry.spans()
    assert span.instrumentation_scope.name == "spanguard.instrumentation.anthropic"

    import spanguard

    spanguard.uninstrument()
    telemetry.exporter.clear()
    client = anthropic.Anthropic(
        base_url=fake.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    create(client)
    scopes = [s.instrumentation_scope.name for s in telemetry.spans()]
    assert scopes == ["com.anthropic.sdk.python"]  # the SDK's own span, switched back on


def test_sdk_span_silenced_even_with_explicit_tracer_provider(instrument, fake):
    telemetry = instrument()
    client = anthropic.Anthropic(
        base_url=fake.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    create(client)
    assert [s.instrumentation_scope.name for s in telemetry.spans()] == ["spanguard.instrumentation.anthropic"]


async def test_async_messages_create(instrument, async_anthropic_client, fake):
    telemetry = instrument()
    message = await create(async_anthropic_client)
    assert message.content[0].text == "Hello from the fake provider."
    assert_message_span(telemetry.span())


def test_messages_create_stream(instrument, anthropic_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(text("Refund issued for order 42.", input_tokens=20, output_tokens=8))
    events = list(create(anthropic_client, stream=True))
    assert events[-1].type == "message_stop"
    span = telemetry.span()
    assert_message_span(span, stream=True)
    assert span.attributes["gen_ai.usage.input_tokens"] == 20
    assert span.attributes["gen_ai.usage.output_tokens"] == 8
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "gen_ai.response.time_to_first_chunk" in span.attributes
    (message,) = json.loads(span.attributes["gen_ai.output.messages"])
    assert message["parts"] == [{"type": "text", "content": "Refund issued for order 42."}]


async def test_async_messages_create_stream(instrument, async_anthropic_client, fake):
    telemetry = instrument()
    stream = await create(async_anthropic_client, stream=True)
    events = [event async for event in stream]
    assert events[0].type == "message_start"
    assert_message_span(telemetry.span(), stream=True)


def test_messages_stream_helper(instrument, anthropic_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(text("Streaming refund answer."))
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES, system="Be kind.")
    assert telemetry.spans() == []  # nothing is sent until the manager is entered
    with manager as stream:
        assert "".join(stream.text_stream) == "Streaming refund answer."
        final = stream.get_final_message()
    assert final.content[0].text == "Streaming refund answer."
    span = telemetry.span()
    assert_message_span(span, stream=True)
    assert json.loads(span.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be kind."}]


async def test_async_messages_stream_helper(instrument, async_anthropic_client, fake):
    telemetry = instrument()
    async with async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert_message_span(telemetry.span(), stream=True)


def test_stream_helper_left_early_ends_span(instrument, anthropic_client, fake):
    telemetry = instrument()
    fake.script(text("word " * 200))
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        next(iter(stream))
    assert len(telemetry.spans()) == 1


def test_abandoned_raw_stream_ends_span(instrument, anthropic_client, fake):
    telemetry = instrument()
    stream = create(anthropic_client, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_tool_use_round_trip_is_captured(instrument, anthropic_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(tool_call("refund", {"order_id": "42", "amount": 19.5}, call_id="toolu_1"), text("Done."))
    tools = [{"name": "refund", "description": "Refund", "input_schema": {"type": "object"}}]
    first = create(anthropic_client, tools=tools)
    assert first.stop_reason == "tool_use"
    history = [
        *MESSAGES,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "refunded"}]},
    ]
    anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=history, tools=tools)
    span_one, span_two = telemetry.spans()
    (message,) = json.loads(span_one.attributes["gen_ai.output.messages"])
    assert message["parts"] == [
        {"type": "tool_call", "id": "toolu_1", "name": "refund", "arguments": {"order_id": "42", "amount": 19.5}}
    ]
    assert message["finish_reason"] == "tool_use"
    inputs = json.loads(span_two.attributes["gen_ai.input.messages"])
    assert inputs[1]["parts"][0]["type"] == "tool_call"
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": "refunded"}],
    }


def test_streamed_tool_use_is_reassembled(instrument, anthropic_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(tool_call("refund", {"order_id": "42"}, call_id="toolu_2"))
    list(create(anthropic_client, stream=True))
    (message,) = json.loads(telemetry.span().attributes["gen_ai.output.messages"])
    assert message["parts"][-1] == {
        "type": "tool_call",
        "id": "toolu_2",
        "name": "refund",
        "arguments": {"order_id": "42"},
    }


def test_rate_limit_error_is_recorded_and_raised_unchanged(instrument, anthropic_client, fake):
    telemetry = instrument()
    fake.script(error(429, "slow down"))
    with pytest.raises(anthropic.RateLimitError):
        create(anthropic_client)
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "anthropic.RateLimitError"


def test_stream_helper_error_on_enter(instrument, anthropic_client, fake):
    telemetry = instrument()
    fake.script(error(529, "overloaded"))
    with pytest.raises(anthropic.APIStatusError):
        with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES):
            pass
    assert telemetry.span().status.status_code is StatusCode.ERROR


def test_async_stream_helper_never_entered_leaks_nothing(instrument, async_anthropic_client, fake):
    instrument()

    async def run():
        manager = async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
        async with manager as stream:
            await stream.get_final_message()

    asyncio.run(run())
    assert fake.requests[-1].path == "/v1/messages"


def test_the_sdk_keeps_its_own_span_for_requests_spanguard_does_not_instrument(instrument, fake):
    telemetry = instrument()
    client = anthropic.Anthropic(
        base_url=fake.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    create(client)
    assert [s.instrumentation_scope.name for s in telemetry.spans()] == ["spanguard.instrumentation.anthropic"]
    telemetry.exporter.clear()
    with pytest.raises(anthropic.NotFoundError):  # the fake provider serves no token counting
        client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    # count_tokens has no spanguard span, so switching the SDK's off there would leave the request with none.
    assert [s.instrumentation_scope.name for s in telemetry.spans()] == ["com.anthropic.sdk.python"]

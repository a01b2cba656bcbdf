"""OpenAI SDK instrumentation, through the real client against the fake provider."""

from __future__ import annotations

import gc
import json
from urllib.parse import urlsplit

import openai
import pytest
from fake_provider import error, text, tool_call
from opentelemetry.trace import SpanKind, StatusCode

MESSAGES = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "Where is my order 42?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]


def assert_chat_span(span, fake, *, model="gpt-4o", stream=False):
    attributes = span.attributes
    assert span.name == f"chat {model}"
    assert span.kind is SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in attributes
    assert attributes["gen_ai.request.model"] == model
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attributes["gen_ai.response.id"].startswith("chatcmpl-")
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == urlsplit(fake.url).port
    assert attributes["spanguard.model.pinned"] is False
    assert attributes.get("gen_ai.request.stream", False) is stream
    assert span.status.status_code is StatusCode.UNSET


def test_chat_create_records_request_response_and_usage(instrument, openai_client, fake):
    telemetry = instrument()
    fake.script(text("It ships tomorrow.", input_tokens=30, output_tokens=6, cached_tokens=10, reasoning_tokens=2))
    result = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, temperature=0.3, top_p=0.9, max_tokens=100, seed=7, stop=["END"]
    )
    assert result.choices[0].message.content == "It ships tomorrow."
    span = telemetry.span()
    assert_chat_span(span, fake)
    attributes = span.attributes
    assert attributes["gen_ai.request.temperature"] == 0.3
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.max_tokens"] == 100
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 30
    assert attributes["gen_ai.usage.output_tokens"] == 6
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 10
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 2
    assert "gen_ai.input.messages" not in attributes  # content capture is off by default
    assert "gen_ai.output.messages" not in attributes


def test_chat_create_records_metrics(instrument, openai_client, fake):
    telemetry = instrument()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert duration.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.metric_points("gen_ai.client.token.usage")}
    assert tokens == {"input": 12, "output": 7}


async def test_async_chat_create(instrument, async_openai_client, fake):
    telemetry = instrument()
    result = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content == "Hello from the fake provider."
    assert_chat_span(telemetry.span(), fake)


def test_chat_stream_takes_usage_from_final_chunk_and_time_to_first_chunk(instrument, openai_client, fake):
    telemetry = instrument()
    fake.script(text("Your order ships tomorrow by noon.", input_tokens=21, output_tokens=9))
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)  # the proxy passes isinstance checks
    assert telemetry.spans() == []  # the span is open until the stream is read
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "Your order ships tomorrow by noon."
    span = telemetry.span()
    assert_chat_span(span, fake, stream=True)
    assert span.attributes["gen_ai.usage.input_tokens"] == 21
    assert span.attributes["gen_ai.usage.output_tokens"] == 9
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert 0 < span.attributes["gen_ai.response.time_to_first_chunk"] < 5
    assert len(telemetry.metric_points("gen_ai.client.operation.time_to_first_chunk")) == 1


async def test_async_chat_stream(instrument, async_openai_client, fake):
    telemetry = instrument()
    stream = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks
    assert_chat_span(telemetry.span(), fake, stream=True)


def test_chat_stream_as_context_manager_left_early_ends_span(instrument, openai_client, fake):
    telemetry = instrument()
    fake.script(text("one two three four five six seven eight nine ten " * 5))
    with openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
        assert telemetry.spans() == []
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.response.time_to_first_chunk" in span.attributes


def test_chat_stream_close_ends_span_once(instrument, openai_client, fake):
    telemetry = instrument()
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()
    stream.close()
    assert len(telemetry.spans()) == 1


def test_abandoned_stream_ends_span_when_garbage_collected(instrument, openai_client, fake):
    telemetry = instrument()
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(iter(stream))
    assert telemetry.spans() == []
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_tool_calls_are_captured_with_arguments(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(tool_call("lookup_order", {"order_id": "42"}, call_id="call_1"))
    result = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
    assert result.choices[0].message.tool_calls[0].function.name == "lookup_order"
    follow_up = [
        *MESSAGES,
        result.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
    ]
    openai_client.chat.completions.create(model="gpt-4o", messages=follow_up, tools=TOOLS)
    first, second = telemetry.spans()
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    output = json.loads(first.attributes["gen_ai.output.messages"])
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_order", "arguments": {"order_id": "42"}}],
            "finish_reason": "tool_calls",
        }
    ]
    definitions = json.loads(first.attributes["gen_ai.tool.definitions"])
    assert definitions[0]["type"] == "function" and definitions[0]["name"] == "lookup_order"  # the conventions' shape
    history = json.loads(second.attributes["gen_ai.input.messages"])
    assert history[0] == {"role": "system", "parts": [{"type": "text", "content": "You are a support agent."}]}
    assert history[2]["parts"][0]["type"] == "tool_call"
    assert history[3] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": '{"status": "shipped"}'}],
    }


def test_streamed_tool_call_is_reassembled(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(tool_call("lookup_order", {"order_id": "42", "verbose": True}, call_id="call_9"))
    for _ in openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS, stream=True):
        pass
    span = telemetry.span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    (message,) = json.loads(span.attributes["gen_ai.output.messages"])
    assert message["parts"] == [
        {"type": "tool_call", "id": "call_9", "name": "lookup_order", "arguments": {"order_id": "42", "verbose": True}}
    ]


def test_content_capture_on_records_messages_in_parts_format(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(text("Tomorrow."))
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    attributes = telemetry.span().attributes
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are a support agent."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Where is my order 42?"}]},
    ]
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Tomorrow."}], "finish_reason": "stop"}
    ]


@pytest.mark.parametrize(
    ("value", "on_span", "on_event"),
    [
        ("SPAN_ONLY", True, False),
        ("EVENT_ONLY", False, True),
        ("SPAN_AND_EVENT", True, True),
        ("true", True, False),
        ("NO_CONTENT", False, False),
        ("false", False, False),
        ("bogus", False, False),
    ],
)
def test_capture_mode_from_environment(instrument, openai_client, fake, monkeypatch, value, on_span, on_event):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    telemetry = instrument()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    span = telemetry.span()
    assert ("gen_ai.input.messages" in span.attributes) is on_span
    events = [e for e in span.events if e.name == "gen_ai.client.inference.operation.details"]
    assert bool(events) is on_event
    if on_event:
        assert "gen_ai.output.messages" in events[0].attributes


def test_rate_limit_error_is_recorded_and_raised_unchanged(instrument, openai_client, fake):
    telemetry = instrument()
    fake.script(error(429, "Rate limit reached", retry_after=1))
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert raised.value.status_code == 429
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "openai.RateLimitError"
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "openai.RateLimitError"


def test_server_error_inside_stream_setup(instrument, openai_client, fake):
    telemetry = instrument()
    fake.script(error(500, "boom"))
    with pytest.raises(openai.InternalServerError):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert telemetry.span().attributes["error.type"] == "openai.InternalServerError"


def test_timeout_is_recorded(instrument, fake):
    from fake_provider import hang

    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0, timeout=0.3)
    telemetry = instrument()
    fake.script(hang(5))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.span().attributes["error.type"] == "openai.APITimeoutError"


def test_responses_create(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(text("Done.", input_tokens=15, output_tokens=3))
    result = openai_client.responses.create(
        model="gpt-4o", input="Cancel order 42", instructions="Be brief.", max_output_tokens=50
    )
    assert result.output_text == "Done."
    span = telemetry.span()
    attributes = span.attributes
    assert span.name == "chat gpt-4o"
    assert attributes["gen_ai.response.id"].startswith("resp_")
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.usage.input_tokens"] == 15
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert json.loads(attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Cancel order 42"


def test_responses_stream_sync_and_async(instrument, openai_client, async_openai_client, fake):
    import asyncio

    telemetry = instrument()
    fake.script(text("Streaming answer here."), text("Async answer."))
    events = list(openai_client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[-1].type == "response.completed"

    async def run():
        stream = await async_openai_client.responses.create(model="gpt-4o", input="hi", stream=True)
        return [event async for event in stream]

    assert asyncio.run(run())[-1].type == "response.completed"
    first, second = telemetry.spans()
    for span in (first, second):
        assert span.attributes["gen_ai.response.id"].startswith("resp_")
        assert span.attributes["gen_ai.usage.output_tokens"] == 7
        assert "gen_ai.response.time_to_first_chunk" in span.attributes


def test_responses_function_call(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)
    fake.script(tool_call("lookup_order", {"order_id": "7"}, call_id="call_7"))
    openai_client.responses.create(model="gpt-4o", input="where is 7?")
    span = telemetry.span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    (message,) = json.loads(span.attributes["gen_ai.output.messages"])
    assert message["parts"][0]["name"] == "lookup_order"
    assert message["parts"][0]["arguments"] == {"order_id": "7"}


def test_embeddings_sync_and_async(instrument, openai_client, async_openai_client, fake):
    import asyncio

    telemetry = instrument()
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=16)
    assert len(result.data) == 2
    asyncio.run(async_openai_client.embeddings.create(model="text-embedding-3-small", input="c"))
    first, second = telemetry.spans()
    assert first.name == "embeddings text-embedding-3-small"
    assert first.attributes["gen_ai.operation.name"] == "embeddings"
    assert first.attributes["gen_ai.embeddings.dimension.count"] == 16
    assert first.attributes["gen_ai.usage.input_tokens"] > 0
    assert second.attributes["gen_ai.request.model"] == "text-embedding-3-small"


def test_logprobs_give_mean_logprob(instrument, openai_client, fake):
    telemetry = instrument()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)
    list(openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True, stream=True))
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    plain, streamed, without = telemetry.spans()
    assert plain.attributes["spanguard.response.logprob.mean"] == pytest.approx(-0.1)
    assert streamed.attributes["spanguard.response.logprob.mean"] == pytest.approx(-0.1)
    assert "spanguard.response.logprob.mean" not in without.attributes

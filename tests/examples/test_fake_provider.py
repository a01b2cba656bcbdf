"""Tests for examples/fake_provider.py, driven by the real openai and anthropic SDK clients."""

from __future__ import annotations

import base64
import http.client
import json
import struct
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import fake_provider
from fake_provider import FakeProvider, error, hang, text, tool_call, tool_calls

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

USER = [{"role": "user", "content": "Hi there"}]
HAIKU = "claude-haiku-4-5"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fake(_server: FakeProvider) -> FakeProvider:
    _server.reset()
    return _server


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[Any]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def aoai(fake: FakeProvider) -> Any:
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def ant(fake: FakeProvider) -> Iterator[Any]:
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def aant(fake: FakeProvider) -> Any:
    client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    yield client
    await client.close()


def raw_request(
    provider: FakeProvider, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection(provider.host, provider.port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data) if data else None
    finally:
        conn.close()


# --------------------------------------------------------------------------- OpenAI chat completions


def test_chat_create_sync(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("Paris is the capital.", input_tokens=30, output_tokens=5, cached_tokens=10))
    completion = oai.chat.completions.create(model="gpt-4o", messages=USER, temperature=0.2)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.system_fingerprint and completion.system_fingerprint.startswith("fp_")
    assert completion.created > 0
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Paris is the capital."
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 5, 35)
    assert usage.prompt_tokens_details.cached_tokens == 10
    assert usage.completion_tokens_details.reasoning_tokens == 0

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer test"
    assert request.body["model"] == "gpt-4o"
    assert request.body["messages"] == USER
    assert request.body["temperature"] == 0.2


async def test_chat_create_async(fake: FakeProvider, aoai: Any) -> None:
    fake.script(text("async hello", model="my-pinned-model", reasoning_tokens=3))
    completion = await aoai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content == "async hello"
    assert completion.model == "my-pinned-model"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 3
    assert fake.requests[0].headers["x-stainless-async"].startswith("async")


def test_chat_n_choices_and_logprobs(fake: FakeProvider, oai: Any) -> None:
    completion = oai.chat.completions.create(model="gpt-4.1", messages=USER, n=3, logprobs=True, top_logprobs=2)
    assert completion.model == "gpt-4.1-2025-04-14"
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(c.message.content == fake_provider.DEFAULT_TEXT for c in completion.choices)
    assert completion.usage.completion_tokens == 3 * 7
    tokens = completion.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == fake_provider.DEFAULT_TEXT
    assert len(tokens) == len(fake_provider.DEFAULT_TEXT.split())
    assert all(t.logprob == pytest.approx(-0.1) and len(t.top_logprobs) == 2 for t in tokens)


def test_chat_stream_with_usage(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("one two three four", input_tokens=20, output_tokens=4))
    stream = oai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-2024-08-06" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "one two three four"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (20, 4)
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_usage(fake: FakeProvider, oai: Any) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == fake_provider.DEFAULT_TEXT


async def test_chat_stream_async(fake: FakeProvider, aoai: Any) -> None:
    fake.script(text("streamed asynchronously"))
    stream = await aoai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    parts = []
    usage = None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        else:
            usage = chunk.usage
    assert "".join(parts) == "streamed asynchronously"
    assert usage is not None and usage.total_tokens == 19


def test_chat_tool_call(fake: FakeProvider, oai: Any) -> None:
    fake.script(tool_call("get_weather", {"city": "Paris", "unit": "C"}, call_id="call_abc"))
    completion = oai.chat.completions.create(model="gpt-4o", messages=USER)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id == "call_abc"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "C"}


def test_chat_tool_calls_streamed(fake: FakeProvider, oai: Any) -> None:
    fake.script(
        tool_calls(
            [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Europe/Paris", "format": "24h"})],
            text="Checking both.",
        )
    )
    stream = oai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    content = ""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += tc.id or ""
            if tc.function:
                slot["name"] += tc.function.name or ""
                slot["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish

    assert content == "Checking both."
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["arguments"]) == {"timezone": "Europe/Paris", "format": "24h"}
    assert all(c["id"].startswith("call_") for c in calls.values())
    assert calls[0]["id"] != calls[1]["id"]


def test_chat_stream_helper(fake: FakeProvider, oai: Any) -> None:
    fake.script(tool_call("lookup", {"q": "spanguard"}, text="Looking it up."))
    with oai.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Looking it up."
    assert message.tool_calls[0].function.name == "lookup"
    assert json.loads(message.tool_calls[0].function.arguments) == {"q": "spanguard"}


def test_finish_reason_given(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("cut", finish_reason="length"), text("cut", finish_reason="max_tokens"))
    assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].finish_reason == "length"
    assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].finish_reason == "length"


# --------------------------------------------------------------------------- OpenAI responses


def test_responses_create_text(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("A response.", input_tokens=40, output_tokens=9, cached_tokens=8, reasoning_tokens=2))
    response = oai.responses.create(model="gpt-4.1", input="Hi", instructions="Be brief.")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "gpt-4.1-2025-04-14"
    assert response.instructions == "Be brief."
    assert response.output_text == "A response."
    [item] = response.output
    assert item.type == "message" and item.role == "assistant"
    assert item.content[0].type == "output_text"
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (40, 9, 49)
    assert usage.input_tokens_details.cached_tokens == 8
    assert usage.output_tokens_details.reasoning_tokens == 2
    assert fake.requests[0].path == "/v1/responses"


def test_responses_function_call(fake: FakeProvider, oai: Any) -> None:
    fake.script(tool_call("get_weather", {"city": "Oslo"}, call_id="call_1"))
    response = oai.responses.create(model="gpt-4o", input="weather?")
    [item] = response.output
    assert item.type == "function_call"
    assert (item.name, item.call_id) == ("get_weather", "call_1")
    assert json.loads(item.arguments) == {"city": "Oslo"}
    assert item.id.startswith("fc_")


def test_responses_stream(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("streamed response text"))
    events = list(oai.responses.create(model="gpt-4o", input="Hi", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert types.count("response.output_text.delta") == 3
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "streamed response text"
    completed = events[-1].response
    assert completed.status == "completed"
    assert completed.output_text == "streamed response text"
    assert completed.usage.total_tokens == 19
    assert events[0].response.id == completed.id


async def test_responses_stream_helper_async(fake: FakeProvider, aoai: Any) -> None:
    fake.script(tool_call("get_weather", {"city": "Rome"}, text="Let me see."))
    async with aoai.responses.stream(model="gpt-4o", input="weather?") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "Let me see."
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert json.loads(final.output[1].arguments) == {"city": "Rome"}


def test_responses_incomplete(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("truncated", finish_reason="length"))
    response = oai.responses.create(model="gpt-4o", input="Hi")
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


# --------------------------------------------------------------------------- OpenAI embeddings


def test_embeddings_sdk_default_is_base64(fake: FakeProvider, oai: Any) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert fake.requests[0].body["encoding_format"] == "base64"  # the SDK asks for base64 by default
    assert result.model == "text-embedding-3-small"
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 8 and isinstance(d.embedding[0], float) for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    assert sum(v * v for v in result.data[0].embedding) == pytest.approx(1.0, rel=1e-5)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (12, 12)


def test_embeddings_float_and_base64_agree(fake: FakeProvider, oai: Any) -> None:
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input="same text", encoding_format="float", dimensions=16
    )
    raw = oai.embeddings.create(
        model="text-embedding-3-small", input="same text", encoding_format="base64", dimensions=16
    )
    vector = floats.data[0].embedding
    assert len(vector) == 16
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str)  # explicit base64 is returned as-is by the SDK
    decoded = list(struct.unpack("<16f", base64.b64decode(encoded)))
    assert decoded == vector
    again = oai.embeddings.create(model="text-embedding-3-small", input="same text", dimensions=16)
    assert again.data[0].embedding == vector  # deterministic


async def test_embeddings_async(fake: FakeProvider, aoai: Any) -> None:
    result = await aoai.embeddings.create(model="text-embedding-3-large", input="x")
    assert result.model == "text-embedding-3-large"
    assert len(result.data) == 1


# --------------------------------------------------------------------------- Anthropic messages


def test_anthropic_create_sync(fake: FakeProvider, ant: Any) -> None:
    fake.script(text("Bonjour.", input_tokens=50, output_tokens=3, cached_tokens=20))
    message = ant.messages.create(model=HAIKU, max_tokens=100, messages=USER, system="Be polite.")
    assert message.id.startswith("msg_")
    assert (message.type, message.role) == ("message", "assistant")
    assert message.model == "claude-haiku-4-5-20251001"
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour."
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (30, 3)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (20, 0)

    [request] = fake.requests
    assert request.path == "/v1/messages"
    # anthropic 2.x sends the key as a bearer token; older SDKs used x-api-key
    assert request.headers.get("x-api-key") == "test" or request.headers["authorization"] == "Bearer test"
    assert "anthropic-version" in request.headers
    assert request.body["system"] == "Be polite."


async def test_anthropic_create_async(fake: FakeProvider, aant: Any) -> None:
    fake.script(tool_call("get_weather", {"city": "Lyon"}, text="Checking.", call_id="toolu_x"))
    message = await aant.messages.create(model=HAIKU, max_tokens=100, messages=USER)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    tool = message.content[1]
    assert (tool.id, tool.name, tool.input) == ("toolu_x", "get_weather", {"city": "Lyon"})
    assert message.stop_reason == "tool_use"


def test_anthropic_models(fake: FakeProvider, ant: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK warns about claude-sonnet-4-5
        models = [
            ant.messages.create(model=m, max_tokens=10, messages=USER).model
            for m in ("claude-sonnet-4-5", "claude-3-5-sonnet-latest", "claude-opus-4-1")
        ]
    assert models == ["claude-sonnet-4-5-20250929", "claude-3-5-sonnet-20241022", "claude-opus-4-1"]


def test_anthropic_stream_raw(fake: FakeProvider, ant: Any) -> None:
    fake.script(text("one two three", input_tokens=15, output_tokens=3))
    events = list(ant.messages.create(model=HAIKU, max_tokens=100, messages=USER, stream=True))
    types = [e.type for e in events]
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0].message.usage.input_tokens == 15
    assert events[0].message.model == "claude-haiku-4-5-20251001"
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "one two three"
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == 3


async def test_anthropic_stream_async(fake: FakeProvider, aant: Any) -> None:
    stream = await aant.messages.create(model=HAIKU, max_tokens=100, messages=USER, stream=True)
    pieces = [e.delta.text async for e in stream if e.type == "content_block_delta"]
    assert "".join(pieces) == fake_provider.DEFAULT_TEXT


def test_anthropic_stream_helper(fake: FakeProvider, ant: Any) -> None:
    fake.script(text("helper streamed text", output_tokens=4))
    with ant.messages.stream(model=HAIKU, max_tokens=100, messages=USER) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "helper streamed text"
    assert final.content[0].text == "helper streamed text"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 4)
    assert fake.requests[0].body["stream"] is True


def test_anthropic_stream_helper_tool_use(fake: FakeProvider, ant: Any) -> None:
    args = {"city": "Paris", "days": 3, "details": {"wind": True, "units": ["C", "km/h"]}}
    fake.script(tool_call("forecast", args))
    with ant.messages.stream(model=HAIKU, max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    [block] = final.content
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert (block.name, block.input) == ("forecast", args)
    assert final.stop_reason == "tool_use"


async def test_anthropic_stream_helper_async(fake: FakeProvider, aant: Any) -> None:
    fake.script(text("async helper"))
    async with aant.messages.stream(model=HAIKU, max_tokens=100, messages=USER) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert streamed == final.content[0].text == "async helper"


def test_anthropic_finish_reason_mapping(fake: FakeProvider, ant: Any) -> None:
    fake.script(text("cut", finish_reason="length"), text("stop", finish_reason="stop_sequence"))
    assert ant.messages.create(model=HAIKU, max_tokens=5, messages=USER).stop_reason == "max_tokens"
    message = ant.messages.create(model=HAIKU, max_tokens=5, messages=USER, stop_sequences=["END"])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


# --------------------------------------------------------------------------- errors


def test_openai_rate_limit(fake: FakeProvider, oai: Any) -> None:
    fake.script(error(429, "slow down", retry_after=2))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    err = info.value
    assert err.status_code == 429
    assert err.message.endswith("slow down")
    assert err.body["message"] == "slow down"
    assert err.body["code"] == "rate_limit_exceeded"
    assert err.response.headers["retry-after"] == "2"
    assert err.request_id


def test_openai_error_types(fake: FakeProvider, oai: Any) -> None:
    fake.script(error(401), error(500), error(400, error_type="invalid_request_error"))
    with pytest.raises(openai.AuthenticationError):
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.InternalServerError):
        oai.responses.create(model="gpt-4o", input="x")
    with pytest.raises(openai.BadRequestError) as info:
        oai.embeddings.create(model="text-embedding-3-small", input="x")
    assert info.value.body["type"] == "invalid_request_error"


async def test_anthropic_rate_limit_async(fake: FakeProvider, aant: Any) -> None:
    fake.script(error(429, "too many", retry_after=1.5))
    with pytest.raises(anthropic.RateLimitError) as info:
        await aant.messages.create(model=HAIKU, max_tokens=10, messages=USER)
    err = info.value
    assert err.status_code == 429
    assert err.body["type"] == "error"
    assert err.body["error"] == {"type": "rate_limit_error", "message": "too many"}
    assert err.response.headers["retry-after"] == "1.5"


def test_anthropic_overloaded_sync(fake: FakeProvider, ant: Any) -> None:
    fake.script(error(529))
    with pytest.raises(anthropic.InternalServerError) as info:
        ant.messages.create(model=HAIKU, max_tokens=10, messages=USER)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_error_on_stream_request(fake: FakeProvider, oai: Any, ant: Any) -> None:
    fake.script(error(429), error(429))
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    with pytest.raises(anthropic.RateLimitError):
        with ant.messages.stream(model=HAIKU, max_tokens=5, messages=USER) as stream:
            stream.get_final_message()


def test_unknown_path_is_404_and_not_consumed(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("kept"))
    status, _, body = raw_request(fake, "POST", "/v1/nope", b"{}")
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert "/v1/nope" in body["error"]["message"]
    status, _, _ = raw_request(fake, "GET", "/v1/chat/completions")
    assert status == 404
    with pytest.raises(openai.NotFoundError):
        oai.get("/unknown", cast_to=object)
    assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content == "kept"
    paths = [r.path for r in fake.requests]
    assert paths == ["/v1/nope", "/v1/chat/completions", "/v1/unknown", "/v1/chat/completions"]


def test_malformed_json_is_400_in_provider_shape(fake: FakeProvider) -> None:
    fake.script(text("kept"))
    status, _, body = raw_request(fake, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, _, body = raw_request(fake, "POST", "/v1/messages", b"[1, 2]")
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    status, _, body = raw_request(fake, "POST", "/v1/responses", b"")
    assert status == 400
    assert [r.body for r in fake.requests] == [None, [1, 2], None]
    assert fake.pending == 1  # malformed requests do not consume replies
    valid = b'{"model": "gpt-4o", "messages": []}'
    status, _, body = raw_request(fake, "POST", "/v1/chat/completions", valid)
    assert status == 200 and body["choices"][0]["message"]["content"] == "kept"


# --------------------------------------------------------------------------- scripting, recording, server


def test_fifo_default_and_reset(fake: FakeProvider, oai: Any, ant: Any) -> None:
    fake.script(text("first"), text("second"))
    fake.script(text("third"))
    assert fake.pending == 3
    assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content == "first"
    assert ant.messages.create(model=HAIKU, max_tokens=9, messages=USER).content[0].text == "second"
    assert oai.responses.create(model="gpt-4o", input="x").output_text == "third"
    assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content == (
        "Hello from the fake provider."
    )
    assert [r.path for r in fake.requests] == [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/responses",
        "/v1/chat/completions",
    ]
    fake.script(text("dropped"))
    fake.reset()
    assert fake.requests == [] and fake.pending == 0
    with pytest.raises(TypeError):
        fake.script("not a reply")  # type: ignore[arg-type]


def test_keep_alive_and_content_length(fake: FakeProvider) -> None:
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/v1/chat/completions", body=b'{"model": "gpt-4o", "messages": []}')
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200
            assert int(resp.getheader("content-length")) == len(data)
            assert resp.getheader("connection") == "keep-alive"
            assert not resp.will_close
        sock = conn.sock
        conn.request("POST", "/v1/messages", body=b'{"model": "x", "messages": [], "stream": true}')
        resp = conn.getresponse()
        assert resp.getheader("transfer-encoding") == "chunked"
        assert resp.getheader("content-type").startswith("text/event-stream")
        assert resp.read().rstrip().endswith(b'data: {"type":"message_stop"}')
        assert conn.sock is sock  # same connection reused after a streamed answer
    finally:
        conn.close()


def test_concurrent_requests(fake: FakeProvider) -> None:
    clients = [openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0) for _ in range(8)]
    results: list[str] = []

    def worker(client: Any) -> None:
        for _ in range(10):
            completion = client.chat.completions.create(model="gpt-4o", messages=USER)
            results.append(completion.choices[0].message.content)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    assert len(results) == 80 and set(results) == {fake_provider.DEFAULT_TEXT}
    assert len(fake.requests) == 80


def test_delay_and_chunk_delay(fake: FakeProvider, oai: Any) -> None:
    fake.script(text("slow", delay=0.2), text("a b c", chunk_delay=0.05))
    start = time.monotonic()
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    stamps = []
    for chunk in oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.monotonic() - start)
    assert len(stamps) == 3 and stamps[-1] - stamps[0] >= 0.05


def test_hang_times_out_and_shutdown_is_prompt() -> None:
    provider = FakeProvider().start()
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="t", max_retries=0, timeout=0.3)
    other = anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="t", max_retries=0, timeout=5)
    try:
        provider.script(hang(30), hang(30))
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="gpt-4o", messages=USER)
        assert time.monotonic() - start < 5

        # a hanging request must not block other connections
        hung: list[BaseException] = []

        def call_hanging() -> None:
            try:
                other.messages.create(model=HAIKU, max_tokens=5, messages=USER)
            except Exception as exc:
                hung.append(exc)

        blocker = threading.Thread(target=call_hanging)
        blocker.start()
        time.sleep(0.1)
        start = time.monotonic()
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content
        assert time.monotonic() - start < 2
    finally:
        start = time.monotonic()
        provider.shutdown()
        elapsed = time.monotonic() - start
        client.close()
    assert elapsed < 1.0
    blocker.join(5)
    assert not blocker.is_alive()
    assert isinstance(hung[0], anthropic.APIConnectionError)  # the server dropped the hanging request
    provider.shutdown()  # idempotent
    other.close()


async def test_hang_async_timeout() -> None:
    with FakeProvider() as provider:
        provider.script(hang(10))
        client = anthropic.AsyncAnthropic(base_url=provider.anthropic_base_url, api_key="t", max_retries=0, timeout=0.2)
        with pytest.raises(anthropic.APITimeoutError):
            await client.messages.create(model=HAIKU, max_tokens=5, messages=USER)
        await client.close()
        start = time.monotonic()
    assert time.monotonic() - start < 1.0


def test_lifecycle() -> None:
    provider = FakeProvider()
    assert provider.url == f"http://127.0.0.1:{provider.port}"
    assert provider.openai_base_url == provider.url + "/v1"
    assert provider.anthropic_base_url == provider.url
    provider.shutdown()  # safe without start()
    provider.shutdown()
    with pytest.raises(RuntimeError):
        provider.start()
    with FakeProvider() as second:
        assert second.start() is second  # starting twice is a no-op
        status, headers, _ = raw_request(second, "POST", "/v1/embeddings", b'{"input": "x", "model": "m"}')
        assert status == 200 and headers["content-type"] == "application/json"


def test_reply_builders() -> None:
    reply = tool_calls([("a", {}), {"name": "b", "arguments": '{"x": 1}', "call_id": "call_b"}])
    assert [c.name for c in reply.tool_calls] == ["a", "b"]
    assert reply.tool_calls[1].call_id == "call_b"
    assert error(503).message
    with pytest.raises(ValueError):
        error(200)
    with pytest.raises(ValueError):
        tool_calls([])

"""Every call path of the SDKs that gets a model response gives one complete span: create, parse, stream, beta,
``with_raw_response`` and ``with_streaming_response``, sync and async, through the real clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fake_provider import text

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"
OPENAI_CHAT = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_RESPONSES = {"model": OPENAI_MODEL, "input": "hi"}
ANTHROPIC = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
COMPLETE = (
    "gen_ai.response.id",
    "gen_ai.response.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.output_tokens",
)


def drain(stream: Any) -> None:
    for _ in stream:
        pass


async def adrain(stream: Any) -> None:
    async for _ in stream:
        pass


def streamed(manager: Any, *, text_stream: bool = False) -> None:
    with manager as stream:
        drain(stream.text_stream if text_stream else stream)


def streaming_response(manager: Any, *, stream: bool = False) -> Any:
    with manager as response:
        parsed = response.parse()
        if stream:
            drain(parsed)
        return parsed


SYNC_PATHS: dict[str, Callable[[Any, Any], Any]] = {
    "openai chat.completions.create": lambda o, a: o.chat.completions.create(**OPENAI_CHAT),
    "openai chat.completions.create(stream=True)": lambda o, a: drain(
        o.chat.completions.create(**OPENAI_CHAT, stream=True, stream_options={"include_usage": True})
    ),
    "openai chat.completions.parse": lambda o, a: o.chat.completions.parse(**OPENAI_CHAT),
    "openai chat.completions.stream": lambda o, a: streamed(
        o.chat.completions.stream(**OPENAI_CHAT, stream_options={"include_usage": True})
    ),
    "openai chat.completions.with_raw_response.create": lambda o, a: o.chat.completions.with_raw_response.create(
        **OPENAI_CHAT
    ).parse(),
    "openai chat.completions.with_raw_response.create(stream=True)": lambda o, a: drain(
        o.chat.completions.with_raw_response.create(
            **OPENAI_CHAT, stream=True, stream_options={"include_usage": True}
        ).parse()
    ),
    "openai chat.completions.with_streaming_response.create": lambda o, a: streaming_response(
        o.chat.completions.with_streaming_response.create(**OPENAI_CHAT)
    ),
    "openai chat.completions.with_streaming_response.create(stream=True)": lambda o, a: streaming_response(
        o.chat.completions.with_streaming_response.create(
            **OPENAI_CHAT, stream=True, stream_options={"include_usage": True}
        ),
        stream=True,
    ),
    "openai responses.create": lambda o, a: o.responses.create(**OPENAI_RESPONSES),
    "openai responses.create(stream=True)": lambda o, a: drain(o.responses.create(**OPENAI_RESPONSES, stream=True)),
    "openai responses.parse": lambda o, a: o.responses.parse(**OPENAI_RESPONSES),
    "openai beta.responses.create": lambda o, a: o.beta.responses.create(**OPENAI_RESPONSES),
    "openai responses.stream": lambda o, a: streamed(o.responses.stream(**OPENAI_RESPONSES)),
    "openai responses.with_raw_response.create": lambda o, a: o.responses.with_raw_response.create(
        **OPENAI_RESPONSES
    ).parse(),
    "openai responses.with_streaming_response.create(stream=True)": lambda o, a: streaming_response(
        o.responses.with_streaming_response.create(**OPENAI_RESPONSES, stream=True), stream=True
    ),
    "anthropic messages.create": lambda o, a: a.messages.create(**ANTHROPIC),
    "anthropic messages.create(stream=True)": lambda o, a: drain(a.messages.create(**ANTHROPIC, stream=True)),
    "anthropic messages.parse": lambda o, a: a.messages.parse(**ANTHROPIC),
    "anthropic messages.stream": lambda o, a: streamed(a.messages.stream(**ANTHROPIC), text_stream=True),
    "anthropic messages.with_raw_response.create": lambda o, a: a.messages.with_raw_response.create(
        **ANTHROPIC
    ).parse(),
    "anthropic messages.with_raw_response.create(stream=True)": lambda o, a: drain(
        a.messages.with_raw_response.create(**ANTHROPIC, stream=True).parse()
    ),
    "anthropic messages.with_streaming_response.create": lambda o, a: streaming_response(
        a.messages.with_streaming_response.create(**ANTHROPIC)
    ),
    "anthropic beta.messages.create": lambda o, a: a.beta.messages.create(**ANTHROPIC),
    "anthropic beta.messages.parse": lambda o, a: a.beta.messages.parse(**ANTHROPIC),
    "anthropic beta.messages.stream": lambda o, a: streamed(a.beta.messages.stream(**ANTHROPIC), text_stream=True),
    "anthropic beta.messages.with_raw_response.create": lambda o, a: a.beta.messages.with_raw_response.create(
        **ANTHROPIC
    ).parse(),
}


async def _astreamed(manager: Any, *, text_stream: bool = False) -> None:
    async with manager as stream:
        await adrain(stream.text_stream if text_stream else stream)


async def _astreaming_response(manager: Any, *, stream: bool = False) -> Any:
    async with manager as response:
        parsed = await response.parse()
        if stream:
            await adrain(parsed)
        return parsed


async def _araw_stream(pending: Any) -> None:
    raw = await pending
    await adrain(raw.parse())


ASYNC_PATHS: dict[str, Callable[[Any, Any], Any]] = {
    "openai chat.completions.create": lambda o, a: o.chat.completions.create(**OPENAI_CHAT),
    "openai chat.completions.parse": lambda o, a: o.chat.completions.parse(**OPENAI_CHAT),
    "openai chat.completions.with_raw_response.create(stream=True)": lambda o, a: _araw_stream(
        o.chat.completions.with_raw_response.create(**OPENAI_CHAT, stream=True, stream_options={"include_usage": True})
    ),
    "openai chat.completions.with_streaming_response.create": lambda o, a: _astreaming_response(
        o.chat.completions.with_streaming_response.create(**OPENAI_CHAT)
    ),
    "openai responses.parse": lambda o, a: o.responses.parse(**OPENAI_RESPONSES),
    "openai responses.stream": lambda o, a: _astreamed(o.responses.stream(**OPENAI_RESPONSES)),
    "anthropic messages.parse": lambda o, a: a.messages.parse(**ANTHROPIC),
    "anthropic messages.with_streaming_response.create(stream=True)": lambda o, a: _astreaming_response(
        a.messages.with_streaming_response.create(**ANTHROPIC, stream=True), stream=True
    ),
    "anthropic beta.messages.create": lambda o, a: a.beta.messages.create(**ANTHROPIC),
    "anthropic beta.messages.stream": lambda o, a: _astreamed(a.beta.messages.stream(**ANTHROPIC), text_stream=True),
}


def assert_one_complete_span(telemetry: Any, path: str) -> None:
    spans = telemetry.spans()
    assert len(spans) == 1, (path, [s.name for s in spans])  # the SDK's own span stays off, and no duplicate
    (span,) = spans
    assert span.instrumentation_scope.name.startswith("spanguard.instrumentation."), path
    missing = [key for key in COMPLETE if key not in span.attributes]
    assert not missing, (path, missing)
    output = span.attributes.get("gen_ai.output.messages")
    assert output is not None and '"parts":[]' not in output and '"finish_reason":null' not in output, (path, output)


@pytest.mark.parametrize("path", list(SYNC_PATHS))
def test_every_sync_call_path_gives_one_complete_span(instrument, fake, openai_client, anthropic_client, path):
    telemetry = instrument(capture_content=True)
    fake.script(text("Hello there.", input_tokens=7, output_tokens=3))
    SYNC_PATHS[path](openai_client, anthropic_client)
    assert_one_complete_span(telemetry, path)


@pytest.mark.parametrize("path", list(ASYNC_PATHS))
def test_every_async_call_path_gives_one_complete_span(
    instrument, fake, async_openai_client, async_anthropic_client, path
):
    telemetry = instrument(capture_content=True)
    fake.script(text("Hello there.", input_tokens=7, output_tokens=3))

    async def run() -> None:
        await ASYNC_PATHS[path](async_openai_client, async_anthropic_client)

    asyncio.run(run())
    assert_one_complete_span(telemetry, path)


def test_a_raw_response_parses_to_the_same_object_the_app_would_get(instrument, fake, openai_client):
    instrument()
    fake.script(text("Hello there."))
    raw = openai_client.chat.completions.with_raw_response.create(**OPENAI_CHAT)
    first = raw.parse()
    assert first is raw.parse()
    assert first.choices[0].message.content == "Hello there."
    assert raw.headers.get("content-type", "").startswith("application/json")


def test_a_streaming_response_read_without_parse_still_ends_its_span(instrument, fake, anthropic_client):
    telemetry = instrument()
    fake.script(text("Hello there."))
    with anthropic_client.messages.with_streaming_response.create(**ANTHROPIC) as response:
        body = response.read()
    assert b"Hello there." in body
    (span,) = telemetry.spans()
    assert span.attributes["gen_ai.request.model"] == ANTHROPIC_MODEL

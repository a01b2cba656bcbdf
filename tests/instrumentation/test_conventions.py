"""Attributes in the GenAI conventions' exact shapes: every content attribute validates against the conventions'
JSON schemas (vendored in ``tests/semconv/schemas``), on every call path, and the typed attributes have their types."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import test_call_paths as call_paths
from fake_provider import text, tool_call
from test_call_paths import ANTHROPIC, ASYNC_PATHS, OPENAI_CHAT, OPENAI_RESPONSES, SYNC_PATHS

SCHEMAS = Path(__file__).resolve().parents[1] / "semconv" / "schemas"
CONTENT_SCHEMAS = {
    "gen_ai.input.messages": "gen-ai-input-messages.json",
    "gen_ai.output.messages": "gen-ai-output-messages.json",
    "gen_ai.system_instructions": "gen-ai-system-instructions.json",
    "gen_ai.tool.definitions": "gen-ai-tool-definitions.json",
}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "strict": True,  # chat.completions.parse takes strict tools only
        },
    }
]
RESPONSES_TOOLS = [
    {"type": "function", "name": "lookup_order", "parameters": {"type": "object", "properties": {}}},
    {"type": "web_search_preview"},
]
ANTHROPIC_TOOLS = [
    {"name": "lookup_order", "description": "Find an order.", "input_schema": {"type": "object", "properties": {}}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
]


def validators() -> dict[str, Any]:
    out = {}
    for attribute, name in CONTENT_SCHEMAS.items():
        schema = json.loads((SCHEMAS / name).read_text())
        out[attribute] = jsonschema.validators.validator_for(schema)(schema)
    return out


VALIDATORS = validators()


def assert_content_valid(span: Any) -> int:
    checked = 0
    for attribute, validator in VALIDATORS.items():
        value = span.attributes.get(attribute)
        if value is None:
            continue
        errors = sorted(validator.iter_errors(json.loads(value)), key=str)
        assert not errors, (span.name, attribute, [e.message for e in errors[:3]], value[:300])
        checked += 1
    return checked


def with_tools(path: str) -> dict[str, Any]:
    if path.startswith("openai chat"):
        return {"tools": OPENAI_TOOLS}
    if path.startswith("openai") and "responses" in path:
        return {"tools": RESPONSES_TOOLS, "instructions": "Be brief."}
    if path.startswith("anthropic"):
        return {"tools": ANTHROPIC_TOOLS, "system": "Be brief."}
    return {}


def test_the_vendored_schemas_are_the_conventions_v1_41():
    readme = (SCHEMAS / "README.md").read_text()
    assert "v1.41.0" in readme
    for name in CONTENT_SCHEMAS.values():
        jsonschema.validators.validator_for(json.loads((SCHEMAS / name).read_text())).check_schema(
            json.loads((SCHEMAS / name).read_text())
        )


@pytest.mark.parametrize("reply", ["text", "tool_call"])
@pytest.mark.parametrize("path", [p for p in SYNC_PATHS if "embeddings" not in p])
def test_every_content_attribute_validates_against_its_schema(
    instrument, fake, openai_client, anthropic_client, monkeypatch, path, reply
):
    telemetry = instrument(capture_content=True)
    fake.script(text("Hello there.") if reply == "text" else tool_call("lookup_order", {"order_id": "42"}))
    for name in ("OPENAI_CHAT", "OPENAI_RESPONSES", "ANTHROPIC"):
        if _family(name, path):  # the paths read these request dicts when they run
            monkeypatch.setattr(call_paths, name, {**getattr(call_paths, name), **with_tools(path)})
    SYNC_PATHS[path](openai_client, anthropic_client)
    (span,) = telemetry.spans()
    assert span.attributes.get("gen_ai.input.messages") is not None
    assert assert_content_valid(span) >= 2


def _family(name: str, path: str) -> bool:
    return {
        "OPENAI_CHAT": path.startswith("openai chat"),
        "OPENAI_RESPONSES": path.startswith("openai") and "responses" in path,
        "ANTHROPIC": path.startswith("anthropic"),
    }[name]


@pytest.mark.parametrize("path", list(ASYNC_PATHS))
def test_every_async_path_content_validates(instrument, fake, async_openai_client, async_anthropic_client, path):
    telemetry = instrument(capture_content=True)
    fake.script(text("Hello there."))

    async def run() -> None:
        await ASYNC_PATHS[path](async_openai_client, async_anthropic_client)

    asyncio.run(run())
    (span,) = telemetry.spans()
    assert assert_content_valid(span) >= 2


def test_tool_definitions_have_type_and_name_on_top(instrument, fake, openai_client, anthropic_client):
    telemetry = instrument(capture_content=True)
    openai_client.chat.completions.create(**OPENAI_CHAT, tools=OPENAI_TOOLS)
    anthropic_client.messages.create(**ANTHROPIC, tools=ANTHROPIC_TOOLS)
    openai_client.responses.create(**OPENAI_RESPONSES, tools=RESPONSES_TOOLS)
    chat, messages, responses = (json.loads(s.attributes["gen_ai.tool.definitions"]) for s in telemetry.spans())
    assert chat == [
        {
            "type": "function",
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "strict": True,
        }
    ]
    assert messages[0] == {
        "type": "function",
        "name": "lookup_order",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {}},
    }
    assert messages[1] == {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    assert responses[1] == {"type": "web_search_preview", "name": "web_search_preview"}


class Refund(pydantic.BaseModel):
    order_id: str
    amount: float


def test_anthropic_structured_output_thinking_tokens_and_extra_body_sampling(instrument, fake, anthropic_client):
    telemetry = instrument()
    fake.script(text('{"order_id": "42", "amount": 9.5}', output_tokens=30, reasoning_tokens=12))
    anthropic_client.messages.create(
        **ANTHROPIC,
        output_config={"format": {"type": "json_schema", "schema": Refund.model_json_schema()}},
        extra_body={"temperature": 0.2, "top_k": 40, "top_p": 0.9},
    )
    fake.script(text('{"order_id": "42", "amount": 9.5}'))
    anthropic_client.messages.parse(**ANTHROPIC, output_format=Refund)
    created, parsed = telemetry.spans()
    attributes = created.attributes
    assert attributes["gen_ai.output.type"] == "json"
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 12
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.top_p"] == 0.9
    top_k = attributes["gen_ai.request.top_k"]
    assert top_k == 40.0 and isinstance(top_k, float)  # the conventions type top_k as a double
    assert parsed.attributes["gen_ai.output.type"] == "json"


def test_anthropic_streamed_thinking_tokens_are_recorded(instrument, fake, anthropic_client):
    telemetry = instrument()
    fake.script(text("Done.", output_tokens=20, reasoning_tokens=8))
    with anthropic_client.messages.stream(**ANTHROPIC) as stream:
        for _ in stream.text_stream:
            pass
    assert telemetry.span().attributes["gen_ai.usage.reasoning.output_tokens"] == 8


@pytest.mark.parametrize("encoding", [None, "base64", "float"])
def test_embedding_dimension_count_is_the_vector_length_in_every_encoding(instrument, fake, openai_client, encoding):
    telemetry = instrument()
    kwargs = {"encoding_format": encoding} if encoding else {}
    result = openai_client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=64, **kwargs)
    vector = result.data[0].embedding
    if isinstance(vector, str):
        import base64

        length = len(base64.b64decode(vector)) // 4
    else:
        length = len(vector)
    assert telemetry.span().attributes["gen_ai.embeddings.dimension.count"] == length == 64


def test_a_tool_round_trip_validates_in_every_api(instrument, fake, openai_client, anthropic_client):
    """Tool calls in the input, tool results, system prompts: the input side of an agent's second turn."""
    telemetry = instrument(capture_content=True)
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id":"42"}'}}
    openai_client.chat.completions.create(
        model=OPENAI_CHAT["model"],
        tools=OPENAI_TOOLS,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is order 42?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
        ],
    )
    openai_client.responses.create(
        model=OPENAI_RESPONSES["model"],
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Where is order 42?"},
            {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": '{"order_id":"42"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": '{"status": "shipped"}'},
        ],
    )
    anthropic_client.messages.create(
        model=ANTHROPIC["model"],
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}],
        tools=ANTHROPIC_TOOLS,
        messages=[
            {"role": "user", "content": "Where is order 42?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "42"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}]}
                ],
            },
        ],
    )
    spans = telemetry.spans()
    assert len(spans) == 3
    for span in spans:
        assert assert_content_valid(span) >= 3, span.name

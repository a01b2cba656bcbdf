"""Every attribute the code emits is declared, and ``docs/attributes.md`` is generated from the declarations."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from fake_provider import error, text, tool_call

import spanguard
from spanguard.semconv import SPANGUARD_ATTRIBUTES, declared_attribute_names, render_markdown

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]


def exercise(openai_client, anthropic_client, fake) -> None:
    """Drive every instrumented call shape once, content capture on (the most attributes)."""

    @spanguard.tool
    def lookup(order_id: str) -> str:
        return "ok"

    fake.script(tool_call("lookup", {"order_id": "1"}), text("a", cached_tokens=2, reasoning_tokens=1))
    with spanguard.session(id="c", user_id="u"), spanguard.agent("a"):
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            temperature=0.1,
            top_p=0.5,
            max_tokens=9,
            seed=1,
            stop="x",
            n=2,
            frequency_penalty=0.1,
            presence_penalty=0.1,
            response_format={"type": "json_object"},
            service_tier="default",
            tools=[{"type": "function", "function": {"name": "lookup"}}],
        )
        lookup("1")
        list(
            openai_client.chat.completions.create(
                model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
            )
        )
    openai_client.responses.create(model="gpt-4o", input="hi", instructions="x", max_output_tokens=5)
    list(openai_client.responses.create(model="gpt-4o", input="hi", stream=True))
    openai_client.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float", dimensions=4)
    anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=USER[1:], system="s", stop_sequences=["x"]
    )
    list(anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=USER[1:], stream=True))
    fake.script(error(429))
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)


@pytest.mark.parametrize("capture", ["SPAN_AND_EVENT", "NO_CONTENT"])
def test_every_emitted_attribute_is_declared(instrument, openai_client, anthropic_client, fake, capture):
    telemetry = instrument(capture_content=capture)
    exercise(openai_client, anthropic_client, fake)
    declared = declared_attribute_names()
    emitted = set()
    for span in telemetry.spans():
        emitted |= set(span.attributes)
        for event in span.events:
            emitted |= set(event.attributes)
    undeclared = emitted - declared
    assert not undeclared, f"emitted but declared nowhere: {sorted(undeclared)}"
    assert "gen_ai.system" not in emitted  # deprecated in favour of gen_ai.provider.name
    assert "spanguard.model.pinned" in emitted


def test_declared_names_catch_an_unknown_attribute():
    assert "spanguard.not.declared" not in declared_attribute_names()
    assert "gen_ai.request.model" in declared_attribute_names()


def test_own_attributes_are_namespaced_and_described():
    for attribute in SPANGUARD_ATTRIBUTES:
        assert attribute.name.startswith("spanguard.")
        assert attribute.brief.strip()


def test_attributes_doc_is_generated_from_declarations():
    doc = (ROOT / "docs" / "attributes.md").read_text(encoding="utf-8")
    assert doc == render_markdown(), "docs/attributes.md is stale: run `python -m spanguard.semconv`"
    json.dumps(doc)

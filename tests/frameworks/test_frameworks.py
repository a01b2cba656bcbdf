"""Real frameworks on top of the SDKs, through the fake provider: every model request has one complete chat span, the
framework's output is what it is without spanguard, and every content attribute validates against its schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCENARIOS = Path(__file__).with_name("scenarios.py")
SCHEMAS = Path(__file__).resolve().parents[1] / "semconv" / "schemas"
CONTENT = {
    "gen_ai.input.messages": "gen-ai-input-messages.json",
    "gen_ai.output.messages": "gen-ai-output-messages.json",
    "gen_ai.system_instructions": "gen-ai-system-instructions.json",
    "gen_ai.tool.definitions": "gen-ai-tool-definitions.json",
}
NAMES = [
    "langchain_invoke",
    "langchain_ainvoke",
    "langchain_stream",
    "langchain_responses_api",
    "langgraph_react_agent",
    "agents_run_sync_responses",
    "agents_run_sync_chat",
    "agents_run_streamed_responses",
    "agents_run_streamed_chat",
]


def run(python: Path, name: str, *flags: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(SCENARIOS), name, *flags], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def validators() -> dict[str, Any]:
    out = {}
    for attribute, file in CONTENT.items():
        schema = json.loads((SCHEMAS / file).read_text())
        out[attribute] = jsonschema.validators.validator_for(schema)(schema)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_a_framework_call_gives_complete_chat_spans_and_the_same_output(framework_python, name):
    plain = run(framework_python, name, "--plain")
    traced = run(framework_python, name)
    assert traced["output"] == plain["output"]
    assert plain["spans"] == []
    chats = [s for s in traced["spans"] if s["attributes"].get("gen_ai.operation.name") == "chat"]
    # One span per model request: none missing, none doubled (LangChain's with_raw_response included).
    assert len(chats) == traced["requests"] == plain["requests"], [s["name"] for s in traced["spans"]]
    checkers = validators()
    for span, usage_asked in zip(chats, traced["usage_asked"], strict=True):
        attributes = span["attributes"]
        assert span["scope"] == "spanguard.instrumentation.openai"
        for key in ("gen_ai.response.id", "gen_ai.response.model", "gen_ai.response.finish_reasons"):
            assert attributes.get(key), (name, key)
        streamed = attributes.get("gen_ai.request.stream", False)
        if not streamed or usage_asked or "responses" in name:
            assert attributes.get("gen_ai.usage.output_tokens"), (name, "usage the provider sent")
        for attribute, checker in checkers.items():
            if attribute in attributes:
                errors = [e.message for e in checker.iter_errors(json.loads(attributes[attribute]))]
                assert not errors, (name, attribute, errors[:3])

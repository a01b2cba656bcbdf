"""Framework scenarios, run in the frameworks' own virtual environment (see ``conftest.py``), never imported by pytest.

``python scenarios.py NAME`` runs one scenario against the fake provider with spanguard instrumented and prints one
JSON object: the framework's output, the spans that ended (name, scope, attributes) and the number of requests the
fake provider answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # the Agents SDK would send its traces to OpenAI

from fake_provider import FakeProvider, text, tool_call
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spanguard

MODEL = "gpt-4o-2024-08-06"
ANSWER = "Your order 42 has shipped."


def _chat_openai(fake: FakeProvider, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=MODEL, base_url=fake.openai_base_url, api_key="test-key", max_retries=0, **kwargs)


def langchain_invoke(fake: FakeProvider) -> str:
    fake.script(text(ANSWER))
    return str(_chat_openai(fake).invoke("Where is my order 42?").content)


def langchain_ainvoke(fake: FakeProvider) -> str:
    fake.script(text(ANSWER))
    result = asyncio.run(_chat_openai(fake).ainvoke("Where is my order 42?"))
    return str(result.content)


def langchain_stream(fake: FakeProvider) -> str:
    fake.script(text(ANSWER))
    return "".join(str(chunk.content) for chunk in _chat_openai(fake, stream_usage=True).stream("Where is order 42?"))


def langchain_responses_api(fake: FakeProvider) -> str:
    fake.script(text(ANSWER))
    result = _chat_openai(fake, use_responses_api=True).invoke("Where is my order 42?")
    return str(result.text() if callable(result.text) else result.text)


def langgraph_react_agent(fake: FakeProvider) -> str:
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    @tool
    def order_status(order_id: str) -> str:
        """The shipping status of an order."""
        return f"order {order_id}: shipped"

    fake.script(tool_call("order_status", {"order_id": "42"}), text(ANSWER))
    agent = create_react_agent(_chat_openai(fake), [order_status])
    state = agent.invoke({"messages": [("user", "Where is my order 42?")]})
    return str(state["messages"][-1].content)


def _agents(fake: FakeProvider, api: str) -> Any:
    import agents
    import openai

    agents.set_tracing_disabled(True)
    agents.set_default_openai_client(
        openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0), use_for_tracing=False
    )
    agents.set_default_openai_api(api)
    return agents


def _order_agent(agents: Any) -> Any:
    @agents.function_tool
    def order_status(order_id: str) -> str:
        """The shipping status of an order."""
        return f"order {order_id}: shipped"

    return agents.Agent(name="support", instructions="Answer briefly.", model=MODEL, tools=[order_status])


def agents_run_sync(fake: FakeProvider, api: str = "responses") -> str:
    agents = _agents(fake, api)
    fake.script(tool_call("order_status", {"order_id": "42"}), text(ANSWER))
    return str(agents.Runner.run_sync(_order_agent(agents), "Where is my order 42?").final_output)


def agents_run_streamed(fake: FakeProvider, api: str = "responses") -> str:
    agents = _agents(fake, api)
    fake.script(tool_call("order_status", {"order_id": "42"}), text(ANSWER))

    async def run() -> str:
        result = agents.Runner.run_streamed(_order_agent(agents), "Where is my order 42?")
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    return asyncio.run(run())


SCENARIOS: dict[str, Callable[[FakeProvider], str]] = {
    "langchain_invoke": langchain_invoke,
    "langchain_ainvoke": langchain_ainvoke,
    "langchain_stream": langchain_stream,
    "langchain_responses_api": langchain_responses_api,
    "langgraph_react_agent": langgraph_react_agent,
    "agents_run_sync_responses": agents_run_sync,
    "agents_run_sync_chat": lambda fake: agents_run_sync(fake, "chat_completions"),
    "agents_run_streamed_responses": agents_run_streamed,
    "agents_run_streamed_chat": lambda fake: agents_run_streamed(fake, "chat_completions"),
}


def main(name: str, instrumented: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if instrumented:
        spanguard.instrument(tracer_provider=provider, capture_content=True)
    with FakeProvider() as fake:
        output = SCENARIOS[name](fake)
        requests = [r for r in fake.requests if r.path.startswith("/v1/")]
        answered = len(requests)
        usage_asked = [bool((r.body or {}).get("stream_options", {}).get("include_usage")) for r in requests]
    provider.force_flush()
    spans = [
        {"name": s.name, "scope": s.instrumentation_scope.name, "attributes": dict(s.attributes or {})}
        for s in exporter.get_finished_spans()
    ]
    result = {"output": output, "requests": answered, "usage_asked": usage_asked, "spans": spans}
    print(json.dumps(result, default=list))


if __name__ == "__main__":
    main(sys.argv[1], instrumented="--plain" not in sys.argv[2:])

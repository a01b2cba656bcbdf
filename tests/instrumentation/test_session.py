"""Sessions, agents and tools: conversation ids on every span, across threads, tasks and an HTTP hop."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from fake_provider import text, tool_call
from opentelemetry import context, propagate
from opentelemetry.trace import SpanKind, StatusCode

import spanguard

USER = [{"role": "user", "content": "hi"}]


def test_session_stamps_every_span_inside(instrument, openai_client, fake):
    telemetry = instrument()
    tracer = telemetry.tracer_provider.get_tracer("app")
    with spanguard.session(id="conv-1", user_id="user-7"):
        with tracer.start_as_current_span("app work"):
            openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    llm, app, outside = telemetry.spans()
    for span in (llm, app):
        assert span.attributes["gen_ai.conversation.id"] == "conv-1"
        assert span.attributes["user.id"] == "user-7"
    assert "gen_ai.conversation.id" not in outside.attributes


async def test_async_sessions_do_not_leak_between_tasks(instrument, async_openai_client, fake):
    telemetry = instrument()

    async def turn(conversation: str) -> None:
        async with spanguard.session(id=conversation):
            await asyncio.sleep(0.01)
            await async_openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    await asyncio.gather(turn("a"), turn("b"), turn("c"))
    assert sorted(s.attributes["gen_ai.conversation.id"] for s in telemetry.spans()) == ["a", "b", "c"]


def test_session_rejects_bad_ids():
    with pytest.raises(ValueError, match="non-empty string id"):
        spanguard.session(id="")
    with pytest.raises(ValueError, match="user_id"):
        spanguard.session(id="x", user_id=3)  # type: ignore[arg-type]


class _Downstream(BaseHTTPRequestHandler):
    """A second service: extracts the incoming context, then makes an LLM call."""

    client: openai.OpenAI

    def do_POST(self) -> None:
        token = context.attach(propagate.extract(self.headers))
        try:
            answer = self.client.chat.completions.create(model="gpt-4o", messages=USER)
        finally:
            context.detach(token)
        body = answer.choices[0].message.content.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("propagate_user", [False, True])
def test_session_id_crosses_an_http_hop_in_baggage_and_the_user_id_only_when_asked(
    instrument, openai_client, fake, propagate_user
):
    telemetry = instrument()
    handler = type("Downstream", (_Downstream,), {"client": openai_client})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        tracer = telemetry.tracer_provider.get_tracer("frontend")
        with (
            spanguard.session(id="conv-http", user_id="u-1", propagate_user=propagate_user),
            tracer.start_as_current_span("frontend request"),
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)  # what an HTTP client instrumentation does
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_port}/", data=b"{}", headers=headers, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.read() == b"Hello from the fake provider."
    finally:
        server.shutdown()
        server.server_close()
    downstream = next(s for s in telemetry.spans() if s.name == "chat gpt-4o")
    frontend = next(s for s in telemetry.spans() if s.name == "frontend request")
    assert "baggage" in headers and "conv-http" in headers["baggage"]
    assert ("u-1" in headers["baggage"]) is propagate_user
    assert downstream.attributes["gen_ai.conversation.id"] == "conv-http"
    assert downstream.attributes.get("user.id") == ("u-1" if propagate_user else None)
    assert frontend.attributes["user.id"] == "u-1"  # in the app, every span has it
    assert downstream.context.trace_id == frontend.context.trace_id


def test_a_user_id_stays_in_the_app_across_threads_and_tasks(instrument):
    telemetry = instrument()
    tracer = telemetry.tracer_provider.get_tracer("app")
    with spanguard.session(id="conv-t", user_id="u-9"):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        saved = context.get_current()

        def work() -> None:
            token = context.attach(saved)
            try:
                with tracer.start_as_current_span("in a thread"):
                    pass
            finally:
                context.detach(token)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert "u-9" not in headers.get("baggage", "")
    (span,) = telemetry.spans()
    assert span.attributes["user.id"] == "u-9"
    assert span.attributes["gen_ai.conversation.id"] == "conv-t"


def test_agent_and_tool_spans_nest(instrument, openai_client, fake):
    telemetry = instrument(capture_content=True)

    @spanguard.tool
    def lookup_order(order_id: str) -> dict:
        """Find an order by id."""
        return {"order_id": order_id, "status": "shipped"}

    fake.script(tool_call("lookup_order", {"order_id": "42"}), text("Shipped."))
    with spanguard.session(id="conv-agent"), spanguard.agent("support") as agent_span:
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)
        lookup_order("42")
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    spans = {s.name: s for s in telemetry.spans()}
    agent = spans["invoke_agent support"]
    tool = spans["execute_tool lookup_order"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "support"
    assert agent.attributes["gen_ai.conversation.id"] == "conv-agent"
    assert agent.kind is SpanKind.INTERNAL
    assert agent_span.get_span_context().span_id == agent.context.span_id
    assert tool.parent.span_id == agent.context.span_id
    assert tool.attributes["gen_ai.tool.name"] == "lookup_order"
    assert tool.attributes["gen_ai.tool.description"] == "Find an order by id."
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"order_id": "42"}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == {"order_id": "42", "status": "shipped"}
    for span in telemetry.spans():
        if span.name.startswith("chat"):
            assert span.parent.span_id == agent.context.span_id


def test_tool_without_content_capture_records_no_arguments(instrument, fake):
    telemetry = instrument(capture_content=False)

    @spanguard.tool(name="charge_card")
    def charge(amount: float, card: str) -> str:
        return "ok"

    assert charge(10.0, card="4111111111111111") == "ok"
    span = telemetry.span()
    assert span.name == "execute_tool charge_card"
    assert "gen_ai.tool.call.arguments" not in span.attributes
    assert "gen_ai.tool.call.result" not in span.attributes


async def test_async_tool_and_agent_record_errors(instrument, fake):
    telemetry = instrument()

    @spanguard.tool
    async def flaky() -> None:
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError):
        async with spanguard.agent("async-agent"):
            await flaky()
    tool, agent = telemetry.spans()
    for span in (tool, agent):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "TimeoutError"

"""spanguard's redaction as the official GenAI utilities' completion hook."""

from __future__ import annotations

import json

import pytest

genai = pytest.importorskip("opentelemetry.util.genai.handler", reason="opentelemetry-util-genai is not installed")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.util.genai.completion_hook import load_completion_hook  # noqa: E402
from opentelemetry.util.genai.types import InputMessage, OutputMessage, Text  # noqa: E402

from spanguard.processors.redaction.genai_hook import RedactionCompletionHook  # noqa: E402

EMAIL = "jane.doe@example.com"


@pytest.fixture
def content_on(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")


def run_inference(hook):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = genai.TelemetryHandler(tracer_provider=provider, completion_hook=hook)
    with handler.inference("openai", request_model="gpt-4o") as invocation:
        invocation.input_messages = [InputMessage(role="user", parts=[Text(content=f"I am {EMAIL}")])]
        invocation.output_messages = [
            OutputMessage(role="assistant", parts=[Text(content=f"Hi {EMAIL}")], finish_reason="stop")
        ]
    (span,) = exporter.get_finished_spans()
    return span


def test_official_utilities_record_content_redacted_through_the_hook(content_on):
    span = run_inference(RedactionCompletionHook())
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        assert EMAIL not in span.attributes[key]
        json.loads(span.attributes[key])
    assert "<EMAIL_ADDRESS>" in span.attributes["gen_ai.input.messages"]


def test_hook_is_found_by_its_entry_point_name(monkeypatch, content_on):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK", "spanguard_redaction")
    span = run_inference(load_completion_hook())
    assert EMAIL not in span.attributes["gen_ai.input.messages"]


def test_hook_fails_closed(content_on):
    class Broken:
        def redact_attributes(self, attributes):
            raise RuntimeError("boom")

    span = run_inference(RedactionCompletionHook(Broken()))
    assert span.attributes["gen_ai.input.messages"] == "<REDACTION_FAILED>"

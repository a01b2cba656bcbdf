"""A support agent instrumented by a peer GenAI instrumentation, run inside that peer's own virtual environment.

It imports nothing from spanguard: only the real ``openai`` SDK, the OpenTelemetry SDK and OTLP exporter, and the
peer's instrumentor. Two chat calls under one root span: the user's message (with planted PII) asks for a refund, the
model calls the ``refund`` tool, the tool's result goes back and the model answers. Spans and log records go to the
collector over OTLP/gRPC.

Usage: ``python peer_app.py PEER OTLP_ENDPOINT OPENAI_BASE_URL`` where PEER is official, openinference or openllmetry.
"""

from __future__ import annotations

import json
import os
import sys

PEER, ENDPOINT, BASE_URL = sys.argv[1:4]
EMAIL = os.environ.get("PEER_APP_EMAIL", "dana.whitfield@example.org")
CARD = os.environ.get("PEER_APP_CARD", "4111 1111 1111 1111")
REFUND_TOOL = {
    "type": "function",
    "function": {
        "name": "refund",
        "description": "Refund an order to the card it was paid with.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["order_id", "amount"],
        },
    },
}

if PEER == "official":
    # EVENT_ONLY: message content goes into log records only, never onto the span.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "EVENT_ONLY"

import openai  # noqa: E402
from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

resource = Resource.create({"service.name": f"support-agent-{PEER}"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=ENDPOINT, insecure=True)))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=ENDPOINT, insecure=True)))
_logs.set_logger_provider(logger_provider)

if PEER == "official":
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
elif PEER == "openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceInstrumentor

    OpenInferenceInstrumentor().instrument(tracer_provider=tracer_provider)
elif PEER == "openllmetry":
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopInstrumentor

    os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
    TraceloopInstrumentor().instrument(tracer_provider=tracer_provider)
else:
    raise SystemExit(f"unknown peer {PEER!r}")

client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
messages: list[dict] = [
    {"role": "system", "content": "You are the support agent of an online shop."},
    {
        "role": "user",
        "content": f"I was charged twice for order A-1042. My card is {CARD}, write to me at {EMAIL}. Refund me.",
    },
]
with trace.get_tracer("support-agent").start_as_current_span("support-turn"):
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[REFUND_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        }
    )
    result = {"status": "refunded", "order_id": json.loads(call.function.arguments)["order_id"], "notify": EMAIL}
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[REFUND_TOOL])

# Logs first: the collector folds content log records into their spans, and the spans' trace waits for them anyway.
logger_provider.shutdown()
tracer_provider.shutdown()

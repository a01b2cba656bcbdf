"""The example agent: the one-line form and ``opentelemetry-instrument`` give the same spans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from otlp_sink import OtlpSink, ReceivedSpan

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent.py"
VOLATILE = {"gen_ai.response.id", "gen_ai.response.time_to_first_chunk", "server.port", "spanguard.gate.wait.duration"}


def run_agent(command: list[str], sink: OtlpSink) -> list[ReceivedSpan]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "support-agent",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        }
    )
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return list(sink.spans)


def shape(spans: list[ReceivedSpan]) -> list[tuple[str, str, dict[str, object]]]:
    """What must match: names, scopes, stable attributes, and the parent/child structure by name."""
    by_id = {s.span_id: s for s in spans}
    rows = []
    for span in spans:
        parent = by_id.get(span.parent_span_id)
        attributes = {k: v for k, v in span.attributes.items() if k not in VOLATILE}
        attributes["(parent)"] = parent.name if parent else None
        rows.append((span.name, span.scope, attributes))
    return sorted(rows, key=repr)


def test_one_line_form_and_opentelemetry_instrument_give_the_same_spans():
    with OtlpSink() as one_line_sink:
        one_line = run_agent([sys.executable, str(AGENT), "--quiet"], one_line_sink)
    instrument_bin = Path(sys.executable).with_name("opentelemetry-instrument")
    if not instrument_bin.exists():
        pytest.skip("opentelemetry-instrument is not installed in this environment")
    with OtlpSink() as zero_code_sink:
        zero_code = run_agent(
            [str(instrument_bin), sys.executable, str(AGENT), "--quiet", "--no-instrument"], zero_code_sink
        )
    assert len(one_line) == 11  # 2 agents, 2 lookups, 6 chat calls, 1 refund gate
    assert shape(one_line) == shape(zero_code)
    # No review service is set here, so the refund's gate fails closed: the refund never runs.
    (gate,) = [s for s in one_line if s.name == "gate issue_refund"]
    assert gate.attributes["spanguard.gate.outcome"] == "unavailable"
    assert not [s for s in one_line if s.name == "execute_tool issue_refund"]
    chat = [s for s in one_line if s.name == "chat gpt-4o-mini"]
    assert {s.attributes["gen_ai.conversation.id"] for s in chat} == {"conv-001", "conv-002"}
    assert all("gen_ai.input.messages" in s.attributes for s in chat)
    assert one_line[0].resource["service.name"] == "support-agent"

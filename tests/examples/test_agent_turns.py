"""The example agent's multi-turn modes: one trace per user turn in the conversation's session, and ``--session``
conversations continued across runs through ``--history`` (examples/agent.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from fake_provider import text
from otlp_sink import OtlpSink, ReceivedSpan

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent.py"
ROOT_SPAN = "invoke_agent support-agent"


def agent(*args: str, sink: OtlpSink | None = None, base_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "SPANGUARD_"))}
    env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "support-agent"})
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
    if sink is not None:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    else:
        env["OTEL_TRACES_EXPORTER"] = "none"
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return subprocess.run([sys.executable, str(AGENT), *args], env=env, capture_output=True, text=True, timeout=120)


def traces(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    return by_trace


def test_multi_turn_makes_each_user_turn_its_own_trace_of_the_conversations_session():
    with OtlpSink() as sink:
        done = agent("--multi-turn", sink=sink)
        assert done.returncode == 0, done.stderr
        spans = list(sink.spans)
    turns = [line for line in done.stdout.splitlines() if " user: " in line]
    assert [line.split("]")[0] for line in turns] == ["[conv-001", "[conv-001", "[conv-002", "[conv-002"]
    assert "Will UPS e-mail me" in turns[-1]  # bob's follow-up after his refund
    by_trace = traces(spans)
    assert len(by_trace) == 4  # one per user turn
    for trace in by_trace.values():
        roots = [s for s in trace if s.name == ROOT_SPAN]
        assert len(roots) == 1 and not roots[0].parent_span_id
        assert len({s.attributes.get("gen_ai.conversation.id") for s in trace}) == 1
    conversations = sorted(trace[0].attributes["gen_ai.conversation.id"] for trace in by_trace.values())
    assert conversations == ["conv-001", "conv-001", "conv-002", "conv-002"]


def test_a_session_continues_in_a_later_run_through_its_history(tmp_path, fake):
    history = tmp_path / "conv-9.json"
    fake.script(text("Hello, Ann."), text("Your order is on its way."), text("You said hi first."))
    first = agent("--session", "conv-9", "--turn", "Hi", "--turn", "Where is A-1001?", "--history", str(history),
                  base_url=fake.openai_base_url)  # fmt: skip
    assert first.returncode == 0, first.stderr
    later = agent("--session", "conv-9", "--turn", "What did I say first?", "--history", str(history),
                  base_url=fake.openai_base_url)  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert "agent: You said hi first." in later.stdout
    # The later run sent the whole conversation so far, not only its own turn.
    sent = [m["content"] for m in fake.requests[-1].body["messages"] if m["role"] == "user"]
    assert sent == ["Hi", "Where is A-1001?", "What did I say first?"]
    assert [m["role"] for m in json.loads(history.read_text())][-2:] == ["user", "assistant"]


def test_wrong_session_arguments_are_refused_with_what_is_wrong(tmp_path):
    assert "--session needs at least one --turn" in agent("--session", "conv-9").stderr
    assert "belong to a --session" in agent("--turn", "Hi").stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    refused = agent("--session", "conv-9", "--turn", "Hi", "--history", str(broken))
    assert refused.returncode == 2 and f"--history {broken}: not a readable JSON file" in refused.stderr
    broken.write_text('{"role": "user"}')
    refused = agent("--session", "conv-9", "--turn", "Hi", "--history", str(broken))
    assert refused.returncode == 2 and "expected a JSON list of chat messages" in refused.stderr

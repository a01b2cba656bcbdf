"""Apps instrumented by other GenAI instrumentations, through the collector: OpenInference's and OpenLLMetry's OpenAI
instrumentations and the official ``opentelemetry-instrumentation-genai-openai`` in ``EVENT_ONLY`` mode, each in its
own virtual environment, drive the real OpenAI SDK against the fake provider and export spans and log records to a
collector running genai_normalize, redaction, risk, tail sampling and the review exporter.

Whatever the instrumentation, the refund tool call makes the trace red, the PII planted in the user's message and
in the tool's result reaches neither the backend (spans or log records) nor the review store, and the review item's
conversation shows every turn and the tool call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from fake_provider import FakeProvider, text, tool_call
from sink import OtlpSink
from test_faults import free_ports, wait_until
from venvs import venv_python

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

APP = Path(__file__).with_name("peer_app.py")
EMAIL = "dana.whitfield@example.org"
CARD = "4111 1111 1111 1111"
PEERS = {
    "official": ("opentelemetry-instrumentation-genai-openai>=1.3b0",),
    "openinference": ("openinference-instrumentation-openai>=0.1.66",),
    "openllmetry": ("opentelemetry-instrumentation-openai>=0.62",),
}
BASE = ("openai>=1.60", "opentelemetry-sdk>=1.30", "opentelemetry-exporter-otlp-proto-grpc>=1.30")


def collector_yaml(sink: OtlpSink, review_port: int) -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  genai_normalize: {{}}
  redaction: {{}}
  risk: {{}}
  tail_sampling: {{decision_wait: 1s, root_grace: 0.2s, green_rate: 0.0, yellow_rate: 0.0, poll_interval: 0.05}}
exporters:
  otlp/sink:
    endpoint: "{sink.grpc_endpoint}"
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 0.05s}}
  review:
    endpoint: "http://127.0.0.1:{review_port}"
    token: ${{env:SPANGUARD_REVIEW_TOKEN}}
    retry_on_failure: {{initial_interval: 0.05s, max_interval: 0.2s}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [redaction, genai_normalize], exporters: [otlp/sink]}}
    traces:
      receivers: [otlp]
      processors: [genai_normalize, redaction, risk, tail_sampling]
      exporters: [otlp/sink, review]
"""


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_refund_agent_instrumented_by_a_peer_is_red_redacted_and_reviewable(peer: str, tmp_path: Path) -> None:
    python = venv_python(f"peer-{peer}", (*BASE, *PEERS[peer]), inherit=False)
    db = f"sqlite:///{tmp_path / 'review.db'}"
    config = ServiceConfig(db=db)
    store = ReviewStore(db, config.policy)
    store.migrate()
    ingest = store.create_token("collector", "ingest")
    reviewer = store.create_token("alice", "reviewer")
    [port] = free_ports(1)
    service = ReviewServer(config, store, port=port)
    service.start()
    provider = FakeProvider().start()
    provider.script(
        tool_call("refund", {"order_id": "A-1042", "amount": 49.9}), text("Done: 49.90 is back on your card.")
    )
    with OtlpSink() as sink:
        collector = Collector(load_config_text(collector_yaml(sink, port), environ={"SPANGUARD_REVIEW_TOKEN": ingest}))
        collector.start()
        try:
            endpoint = f"127.0.0.1:{collector.receivers[0].grpc_port}"
            run = subprocess.run(
                [str(python), str(APP), peer, endpoint, provider.openai_base_url],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert run.returncode == 0, run.stderr[-3000:]
            assert wait_until(lambda: len(store.list()) == 1, 30), (
                f"no review item; collector saw {sink.spans()!r:.300}"
            )
            assert wait_until(lambda: len(sink.spans()) >= 3, 30)
        finally:
            collector.shutdown(timeout=5)
            provider.shutdown()
        exported = b"".join(span.SerializeToString() for span in sink.spans())
        exported += b"".join(request.SerializeToString() for request in sink.signals.get("logs", []))
    try:
        [item] = store.list()
        detail = httpx.get(
            f"http://127.0.0.1:{port}/v1/review-items/{item.id}",
            headers={"Authorization": f"Bearer {reviewer}"},
            timeout=30,
        ).json()
    finally:
        service.shutdown()
        store.shutdown()

    assert item.risk_tier == "red", (item.risk_tier, item.reasons)
    assert any("refund" in reason or "payment" in reason for reason in item.reasons), item.reasons
    for planted in (EMAIL, CARD, CARD.replace(" ", "")):
        assert planted.encode() not in exported, f"{planted} reached the backend"
        assert planted not in json.dumps(item.spans), f"{planted} reached the review store"
        assert planted not in json.dumps(detail), f"{planted} reached the review page"
    turns = detail["conversation"]["turns"]
    roles = [turn["role"] for turn in turns]
    assert roles == ["system", "user", "assistant", "tool", "assistant"], json.dumps(turns, indent=1)[:3000]
    assert "charged twice" in turns[1]["content"]
    assert [call["name"] for call in turns[2]["tool_calls"]] == ["refund"], turns[2]
    assert "refunded" in turns[3]["content"]
    assert "back on your card" in turns[4]["content"]
    assert any(call["name"] == "refund" for call in detail["conversation"]["tool_calls"])

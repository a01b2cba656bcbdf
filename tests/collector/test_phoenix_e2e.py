"""End to end with a real backend: the example agent -> spanguard collector -> Arize Phoenix, read back over REST.

Phoenix runs from its own virtual environment (``make test`` creates ``.venv-phoenix``), on free ports, with a
temporary working directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"

pytestmark = pytest.mark.skipif(
    not PHOENIX.exists(), reason="Arize Phoenix is not installed in .venv-phoenix (run `make phoenix`)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    process = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"Phoenix exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("Phoenix did not become healthy in 90 s")
    yield http_port, grpc_port
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_agent_traces_reach_phoenix_through_the_collector(phoenix, tmp_path):
    http_port, grpc_port = phoenix
    # conv-002 is made red by an inline rule; everything else is yellow or green and sampled at 0 %.
    config = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{}}
  risk:
    rules:
      - {{name: double-charge, tier: red, reason: the demo's risky session,
          match: {{attributes: {{gen_ai.conversation.id: {{equals: conv-002}}}}}}}}
  tail_sampling: {{decision_wait: 1s, root_grace: 0.2s, yellow_rate: 0.0, green_rate: 0.0, poll_interval: 0.1}}
exporters:
  otlp/phoenix: {{endpoint: "127.0.0.1:{grpc_port}", tls: {{insecure: true}}}}
service:
  telemetry: {{metrics: {{address: null}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction, risk, tail_sampling], exporters: [otlp/phoenix]}}
"""
    collector = Collector(load_config_text(config))
    collector.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.receivers[0].grpc_port}",
                "OTEL_SERVICE_NAME": "support-agent",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
                # In-process redaction off: the collector's redaction must catch the PII (defence in depth).
                "SPANGUARD_REDACT": "false",
            }
        )
        agent = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "agent.py"), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert agent.returncode == 0, agent.stderr
        spans: list[dict] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(spans) < 6:
            time.sleep(0.5)
            spans = get_json(f"http://127.0.0.1:{http_port}/v1/projects/default/spans?limit=100")["data"]
    finally:
        collector.shutdown(timeout=10)
    time.sleep(1.0)
    spans = get_json(f"http://127.0.0.1:{http_port}/v1/projects/default/spans?limit=100")["data"]
    conversations = {s["attributes"].get("gen_ai.conversation.id") for s in spans}
    assert conversations == {"conv-002"}  # the dropped traces are absent
    assert sorted(s["name"] for s in spans) == [
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "execute_tool lookup_order",
        "gate issue_refund",  # no review service here: the refund was denied, and never ran
        "invoke_agent support-agent",
    ]  # the kept trace is whole
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    text = json.dumps(spans)
    assert CARD not in text and CARD.replace(" ", "") not in text and EMAIL not in text
    assert "<CREDIT_CARD>" in text
    for span in spans:
        assert span["attributes"]["spanguard.risk.tier"] == "red"

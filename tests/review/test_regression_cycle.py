"""The whole loop of the seed (observe, annotate, convert, verify, persist), with real parts end to end.

An incident (a real OpenAI SDK call to the fake provider, instrumented by spanguard) goes through the collector into
the review service; a reviewer corrects it on the page in Chromium; `spanguard dataset export` makes it an eval case;
`spanguard gate` passes a fixed target, fails a regressed one with exit 1 and a JUnit failure naming the case, and
the baseline of the passing run catches the case that used to pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import openai
import test_page
from fake_provider import text
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from playwright.sync_api import expect

import spanguard
from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

browser = test_page.browser
tab = test_page.tab
SPANGUARD = Path(sys.executable).with_name("spanguard")
QUESTION = "What is the capital of Australia?"
WRONG = "Sydney is the capital of Australia."
RIGHT = "Canberra is the capital of Australia."
TARGETS = f"""
def fixed(messages):
    assert messages[-1] == {{"role": "user", "content": {QUESTION!r}}}, messages
    return {RIGHT!r}


def regressed(messages):
    return {WRONG!r}
"""


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def gate(tmp_path: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPANGUARD), "gate", "--dataset", str(tmp_path / "cases.jsonl"), "--target", target, "--no-cache", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_an_incident_corrected_by_a_reviewer_becomes_a_case_that_gates_ci(tmp_path, tab, fake) -> None:
    url = f"sqlite:///{tmp_path / 'review.db'}"
    store = ReviewStore(url)
    store.migrate()
    tokens = {"ingest": store.create_token("collector", "ingest"), "alice": store.create_token("alice", "reviewer")}
    server = ReviewServer(ServiceConfig(db=url), store, port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    collector = Collector(
        load_config_text(
            f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{}}
  risk: {{}}
  tail_sampling: {{decision_wait: 0.3s, root_grace: 0.05s, green_rate: 1.0, yellow_rate: 1.0, poll_interval: 0.05}}
exporters:
  review: {{endpoint: "{base}", token: "{tokens["ingest"]}"}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [redaction, risk, tail_sampling], exporters: [review]}}
"""
        )
    )
    collector.start()
    try:
        # Observe: the app's incident, as spans through the collector into the review queue.
        provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.receivers[0].grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        spanguard.instrument(tracer_provider=provider, meter_provider=MeterProvider(), capture_content=True)
        try:
            fake.script(text(WRONG))
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)
            with spanguard.session("conv-incident"), spanguard.agent("support-agent"):
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
        finally:
            spanguard.uninstrument()
            provider.shutdown()
        assert wait_until(lambda: len(store.list()) == 1)
    finally:
        collector.shutdown(timeout=10)
    try:
        (item,) = store.list()

        # Annotate: the reviewer corrects the answer on the page.
        page = tab.page
        test_page.sign_in(page, test_page.Service(store, base, tokens), "alice")
        test_page.open_from_queue(page, QUESTION[:20])
        test_page.answer_checklist(page)
        page.locator("#item-title").focus()
        page.keyboard.press("e")
        page.locator("#correction").fill(RIGHT)
        page.click("#correct")
        # The incident's conversation is reviewed by session (its tier's unit): one session item, one turn.
        assert item.kind == "session"
        expect(page.locator("#flash")).to_contain_text(f"Session item #{item.id} corrected")

        # Convert: the reviewed item becomes an eval case (exported twice: the same case, not two).
        for _ in range(2):
            done = subprocess.run(
                [str(SPANGUARD), "dataset", "export", "--db", url, "--out", str(tmp_path / "cases.jsonl")],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
        (line,) = (tmp_path / "cases.jsonl").read_text().splitlines()
        case = json.loads(line)
        assert case["outcome"] == "correct"
        assert case["expected_output"]["content"] == RIGHT
        assert case["input"]["messages"][-1] == {"role": "user", "content": QUESTION}
        (turn,) = store.members(item.id)  # a session case names its judged turn's real trace, not the item's key
        assert (case["source"]["kind"], case["source"]["trace_id"]) == ("session_item", turn.trace_id)

        # Verify: the fixed target passes and becomes the baseline; the regressed one fails, naming the case.
        (tmp_path / "targets.py").write_text(TARGETS)
        passed = gate(tmp_path, "targets.py:fixed", "--write-baseline", "baseline.json")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        failed = gate(tmp_path, "targets.py:regressed", "--junit", "junit.xml")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        suite = ElementTree.parse(tmp_path / "junit.xml").getroot()
        failing = [c for c in suite.iter("testcase") if c.find("failure") is not None]
        assert [c.get("name") for c in failing] == [case["id"]]

        # Persist: against the baseline, the case that used to pass is a regression.
        regressed = gate(tmp_path, "targets.py:regressed", "--baseline", "baseline.json", "--report", "report.json")
        assert regressed.returncode == 1
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["gate"]["regressions"] == [case["id"]]
        assert report["gate"]["passed"] is False
    finally:
        server.shutdown()
        store.shutdown()

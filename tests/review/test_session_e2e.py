"""Review by session end to end: the example agent's multi-turn conversations through the collector into the review
service (issue 14; docs/review.md "Review by session", docs/sampling.md "Red sessions").

Everything is real: examples/agent.py (the openai SDK against the fake provider, ``spanguard.instrument()``, one
trace per user turn in ``spanguard.session``) runs as a subprocess; the collector runs examples/collector-demo.yaml
(redaction, risk, tail sampling with its session hold and the demo's rates, the review exporter), only its ports and
sampling waits made small; the review service answers over HTTP on SQLite. One collector and service for the module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from approvals_helpers import Service, start_service, stop_service
from fake_provider import FakeProvider, Reply, text, tool_call

from spanguard.collector.config import load_config_text
from spanguard.collector.service import Collector
from spanguard.processors.tail_sampling import REASON_SESSION_RED, should_keep
from spanguard.processors.tail_sampling.factory import TailSamplingStage

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent.py"
DEMO_CONFIG = ROOT / "examples" / "collector-demo.yaml"
PAYMENT_RULE = "rule:payment-tool"  # the packaged rule (processors/risk/default_rules.yaml) a refund fires
DUAL = "dual_approval"
# Conversation ids the demo's yellow_rate (0.25) drops: their ordinary turns are kept only because of a red turn.
CONV_DUAL = "conv-e2e-refund-first"
CONV_LATE_RED = "conv-e2e-red-third"


@dataclass
class Stack:
    """The review service, the collector in front of it, and the fake provider the agent talks to."""

    service: Service
    collector: Collector
    fake: FakeProvider
    yellow_rate: float
    tmp: Path

    def sampler_stats(self) -> dict[str, Any]:
        (stage,) = [s for s in self.collector.stages if isinstance(s, TailSamplingStage)]
        return stage.stats

    def agent(self, conversation: str, user: str, turns: list[str], *replies: Reply) -> list[str]:
        """Run the example agent for these user turns of ``conversation`` (continuing its history); its answers."""
        self.fake.script(*replies)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "SPANGUARD_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.collector.receivers[0].grpc_port}",
                "OTEL_SERVICE_NAME": "support-agent",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
                "OPENAI_BASE_URL": self.fake.openai_base_url,
                # Refunds up to 50 EUR need no approval under the example policy: the refund tool itself runs.
                "SPANGUARD_GATE_POLICY": str(ROOT / "examples" / "gate-policy.yaml"),
            }
        )
        history = self.tmp / f"{conversation}.json"
        command = [sys.executable, str(AGENT), "--session", conversation, "--user", user, "--history", str(history)]
        for turn in turns:
            command += ["--turn", turn]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return [line.split(" agent: ", 1)[1] for line in done.stdout.splitlines() if " agent: " in line]


def demo_collector(review_url: str, token: str, directory: Path) -> tuple[Collector, float]:
    """The demo's collector config with loopback ports and short sampling waits; the collector and its yellow rate."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["receivers"]["otlp"]["protocols"] = {"grpc": {"endpoint": "127.0.0.1:0"}}
    # Short waits keep the test fast; the hold must outlast the agent's start-up between two runs.
    data["processors"]["tail_sampling"].update(
        {"decision_wait": "1s", "root_grace": "0.2s", "poll_interval": 0.05, "session_hold": "60s"}
    )
    data["exporters"]["review"]["endpoint"] = review_url
    data["service"]["telemetry"] = {"metrics": {"level": "none"}}
    environ = {"SPANGUARD_REVIEW_TOKEN": token, "SPANGUARD_DEMO_DIR": str(directory)}
    config = load_config_text(yaml.safe_dump(data), source=str(DEMO_CONFIG), environ=environ)
    return Collector(config), float(data["processors"]["tail_sampling"]["yellow_rate"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("session-e2e")
    service = start_service(f"sqlite:///{tmp / 'review.db'}")
    collector, yellow_rate = demo_collector(service.url, service.tokens["ingest"], tmp)
    collector.start()
    fake = FakeProvider().start()
    try:
        yield Stack(service, collector, fake, yellow_rate, tmp)
    finally:
        fake.shutdown()
        collector.shutdown(timeout=10)
        stop_service(service)


def wait_for(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``probe`` until it returns something truthy; that value (a failed assertion after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            assert value, f"nothing after {timeout} s"
            return value
        time.sleep(0.1)


def session_items(stack: Stack, conversation: str) -> list[dict[str, Any]]:
    with stack.service.client("alice") as client:
        items = client.get("/v1/review-items", params={"kind": "session"}).json()["items"]
    return sorted((i for i in items if i["conversation_id"] == conversation), key=lambda i: i["id"])


def settled(stack: Stack, conversation: str, traces: list[int]) -> list[dict[str, Any]]:
    """The conversation's session items once they review ``traces`` traces each (and nothing more arrived)."""

    def probe() -> list[dict[str, Any]]:
        items = session_items(stack, conversation)
        return items if [i["traces"] for i in items] == traces else []

    wait_for(probe)
    time.sleep(0.5)  # a late or duplicate delivery would land by now
    items = session_items(stack, conversation)
    assert [i["traces"] for i in items] == traces, items
    return items


def detail(stack: Stack, item_id: int) -> dict[str, Any]:
    with stack.service.client("alice") as client:
        response = client.get(f"/v1/review-items/{item_id}")
    assert response.status_code == 200, response.text
    return response.json()


def user_turns(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [turn for turn in item["conversation"]["turns"] if turn["role"] == "user"]


def approve(stack: Stack, item_id: int, reviewer: str) -> dict[str, Any]:
    with stack.service.client(reviewer) as client:
        claimed = client.post(f"/v1/review-items/{item_id}/claim")
        assert claimed.status_code == 200, claimed.text
        checklist = {question: True for question in claimed.json()["checklist"]}
        body = {"outcome": "approve", "checklist": checklist}
        decided = client.post(f"/v1/review-items/{item_id}/decision", json=body)
    assert decided.status_code == 200, decided.text
    return decided.json()


def refund(amount: float, call_id: str) -> Reply:
    arguments = {"order_id": "A-1002", "amount": amount, "reason": "double charge"}
    return tool_call("issue_refund", arguments, call_id=call_id)


def lookup(order_id: str, call_id: str) -> Reply:
    return tool_call("lookup_order", {"order_id": order_id}, call_id=call_id)


def test_a_multi_turn_session_is_one_dual_approval_item_and_a_later_turn_opens_a_follow_up(stack):
    assert not should_keep(CONV_DUAL, stack.yellow_rate)  # its ordinary turns alone would be dropped
    turns = [
        "I was charged twice for A-1002, please refund the 20 EUR.",
        "Thanks. Where is A-1002 now?",
        "And when will it arrive?",
    ]
    answers = stack.agent(
        CONV_DUAL,
        "user-ann",
        turns,
        refund(20, "call_refund"),
        text("Refunded 20 EUR to your card."),
        lookup("A-1002", "call_lookup"),
        text("A-1002 is delayed with UPS."),
        text("In about 5 days."),
    )
    assert answers == ["Refunded 20 EUR to your card.", "A-1002 is delayed with UPS.", "In about 5 days."]

    (first,) = settled(stack, CONV_DUAL, [3])
    assert (first["kind"], first["tier"], first["risk_tier"]) == ("session", DUAL, "red")
    # The collector redacts user.id by default (docs/redaction.md): a value removed whole is no user id.
    assert first["user_id"] is None
    assert first["follows_id"] is None
    assert PAYMENT_RULE in first["reasons"] and REASON_SESSION_RED in first["reasons"]
    unit = detail(stack, first["id"])
    traces = unit["session"]["traces"]
    assert [t["member"] for t in traces] == [True, True, True]
    assert [t["started_unix_nano"] for t in traces] == sorted(t["started_unix_nano"] for t in traces)
    # The turn that refunded is the red one; the later turns are kept because their session is red.
    assert traces[0]["risk_tier"] == "red" and PAYMENT_RULE in traces[0]["reasons"]
    assert all(REASON_SESSION_RED in t["reasons"] for t in traces[1:])
    assert [turn["content"] for turn in user_turns(unit)] == turns  # every user turn once, in order
    assert [turn["trace_id"] for turn in user_turns(unit)] == unit["conversation"]["trace_ids"]
    assert unit["conversation"]["trace_ids"] == [t["trace_id"] for t in traces]
    tools = [call["name"] for call in unit["conversation"]["tool_calls"]]
    assert tools == ["issue_refund", "lookup_order"]
    # The traces are reviewed within the session item only.
    with stack.service.client("alice") as client:
        alone = client.post(f"/v1/review-items/{traces[1]['item_id']}/claim")
    assert alone.status_code == 409 and f"session item {first['id']}" in alone.json()["detail"]

    half = approve(stack, first["id"], "alice")
    assert (half["status"], half["approvals"]) == ("pending", ["alice"])
    done = approve(stack, first["id"], "bob")
    assert (done["status"], done["outcome"], done["approvals"]) == ("done", "approve", ["alice", "bob"])
    assert {(t["status"], t["outcome"]) for t in done["session"]["traces"]} == {("done", "approve")}

    # The customer comes back: the next turn of the decided session opens a follow-up item.
    later = "One more thing: can I still change the delivery address?"
    assert stack.agent(CONV_DUAL, "user-ann", [later], text("Yes, until it ships.")) == ["Yes, until it ships."]
    decided, follow_up = settled(stack, CONV_DUAL, [3, 1])
    assert decided["id"] == first["id"] and decided["status"] == "done"
    assert (follow_up["follows_id"], follow_up["status"]) == (first["id"], "pending")
    # Kept because its session turned red earlier; reviewed by session as the tier of its own risk says.
    assert follow_up["risk_tier"] != "red" and REASON_SESSION_RED in follow_up["reasons"]
    again = detail(stack, follow_up["id"])
    assert [t["member"] for t in again["session"]["traces"]] == [False, False, False, True]
    assert [t["reviewed_in"] for t in again["session"]["traces"]] == [first["id"]] * 3 + [follow_up["id"]]
    assert [e["id"] for e in again["session"]["earlier"]] == [first["id"]]
    assert [turn["content"] for turn in user_turns(again)] == [*turns, later]  # with what was reviewed before


def test_a_session_whose_third_turn_is_red_is_red_as_a_whole_and_keeps_its_earlier_turns(stack):
    assert not should_keep(CONV_LATE_RED, stack.yellow_rate)
    before = stack.sampler_stats()
    ordinary = ["Hi, where is my order A-1001?", "Which carrier has it?"]
    answers = stack.agent(
        CONV_LATE_RED,
        "user-bea",
        ordinary,
        lookup("A-1001", "call_lookup"),
        text("A-1001 has shipped and arrives tomorrow."),
        text("DHL has it."),
    )
    assert answers == ["A-1001 has shipped and arrives tomorrow.", "DHL has it."]

    # Turns 1 and 2 are decided (dropped by the yellow rate) and held, before turn 3 exists.
    def held() -> bool:
        stats = stack.sampler_stats()
        return stats["held_traces"] - before["held_traces"] == 2

    wait_for(held)
    dropped = sum(counts["dropped"] for counts in stack.sampler_stats()["decisions"].values())
    assert dropped - sum(counts["dropped"] for counts in before["decisions"].values()) == 2
    with stack.service.client("alice") as client:
        assert client.get(f"/v1/sessions/{CONV_LATE_RED}").status_code == 404  # nothing reached review
    assert session_items(stack, CONV_LATE_RED) == []

    third = "It never arrived. Please refund the 20 EUR."
    answers = stack.agent(CONV_LATE_RED, "user-bea", [third], refund(20, "call_refund"), text("Refunded 20 EUR."))
    assert answers == ["Refunded 20 EUR."]

    (unit,) = settled(stack, CONV_LATE_RED, [3])
    assert (unit["tier"], unit["risk_tier"], unit["follows_id"]) == (DUAL, "red", None)
    opened = detail(stack, unit["id"])
    traces = opened["session"]["traces"]
    assert [t["member"] for t in traces] == [True, True, True]
    assert [t["risk_tier"] == "red" for t in traces] == [False, False, True]
    assert all(REASON_SESSION_RED in t["reasons"] for t in traces[:2]) and PAYMENT_RULE in traces[2]["reasons"]
    assert [turn["content"] for turn in user_turns(opened)] == [*ordinary, third]
    # Every trace of the session is in the store, whole: the spans each turn made.
    with stack.service.client("alice") as client:
        session = client.get(f"/v1/sessions/{CONV_LATE_RED}").json()
    assert [t["trace_id"] for t in session["traces"]] == [t["trace_id"] for t in traces]
    stored = {t["trace_id"]: stack.service.store.get(t["item_id"]) for t in traces}
    names = [sorted(span["name"] for span in stored[t["trace_id"]].spans) for t in traces]
    assert names == [
        ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool lookup_order", "invoke_agent support-agent"],
        ["chat gpt-4o-mini", "invoke_agent support-agent"],
        [
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            "execute_tool issue_refund",
            "gate issue_refund",
            "invoke_agent support-agent",
        ],
    ]
    assert stack.sampler_stats()["session_recalled"] - before.get("session_recalled", 0) == 2
    # Kept means kept for every exporter: the demo's file exporter has all three traces as well.
    exported = stack.tmp / "traces.jsonl"
    wait_for(lambda: exported.exists() and all(t["trace_id"] in exported.read_text() for t in traces))


def test_a_correction_without_a_turn_goes_to_the_latest_turn_of_a_session_whose_earlier_turns_were_recalled(stack):
    items = session_items(stack, CONV_LATE_RED)
    if not items:
        pytest.skip("needs the session the test above sends")
    (unit,) = items
    correction = "Refunds go to the card within 5 days; I have refunded 20 EUR."
    with stack.service.client("alice") as client:
        claimed = client.post(f"/v1/review-items/{unit['id']}/claim")
        checklist = {question: True for question in claimed.json()["checklist"]}
        body = {"outcome": "correct", "correction": correction, "checklist": checklist}
        decided = client.post(f"/v1/review-items/{unit['id']}/decision", json=body)
    assert decided.status_code == 200, decided.text
    traces = decided.json()["session"]["traces"]
    assert [detail(stack, t["item_id"])["golden"] for t in traces] == [None, None, correction]

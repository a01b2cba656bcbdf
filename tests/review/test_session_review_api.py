"""Review by session over real HTTP (docs/review.md, "Review by session"), on SQLite and on PostgreSQL: a session item
opens as one conversation across its traces, is decided as one with a verdict on each trace, and is followed up."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from approvals_helpers import Service, start_service, stop_service
from otlp_logs import attributes_of

from spanguard.review.verdicts import VerdictsConfig

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
CHECKS = {
    "factual_accuracy": True,
    "policy_adherence": True,
    "safety": True,
    "tone": True,
    "context_retained": True,
    "consistent_with_earlier_answers": True,
    "no_repeated_tool_calls": True,
}
QUESTIONS = ["Where is order A-17?", "Can you refund it?", "And the shipping fee?"]
ANSWERS = ["It left Lyon on Monday.", "I have asked for a refund.", "The fee is refunded too."]


def message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def turn(conversation: str, n: int, *, tier: str = "dual_approval", risk: str = "yellow", reasons=("sampled",)) -> dict:
    """Turn ``n`` of a support chat as the instrumentation records it: the call's input resends the history."""
    history = [m for k in range(n) for m in (message("user", QUESTIONS[k]), message("assistant", ANSWERS[k]))]
    trace = uuid.uuid4().hex
    start = T0 + n * 60 * SECOND
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.conversation.id": conversation,
        "user.id": "u-7",
        "gen_ai.input.messages": json.dumps([*history, message("user", QUESTIONS[n])]),
        "gen_ai.output.messages": json.dumps([{**message("assistant", ANSWERS[n]), "finish_reason": "stop"}]),
    }
    span = {
        "trace_id": trace,
        "span_id": uuid.uuid4().hex[:16],
        "name": "chat gpt-4o",
        "kind": "client",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + 2 * SECOND,
        "attributes": attributes,
    }
    return {"trace_id": trace, "tier": tier, "risk_tier": risk, "reasons": list(reasons), "spans": [span]}


@pytest.fixture
def service(db_url) -> Iterator[Service]:
    running = start_service(db_url)
    yield running
    stop_service(running)


def post(service: Service, *bodies: dict) -> list[int]:
    with service.client("ingest") as client:
        response = client.post("/v1/review-items", json={"items": list(bodies)})
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["items"]]


def decide(service: Service, item_id: int, who: str, **body: Any) -> dict:
    with service.client(who) as client:
        assert client.post(f"/v1/review-items/{item_id}/claim").status_code == 200
        response = client.post(f"/v1/review-items/{item_id}/decision", json={"checklist": CHECKS, **body})
    assert response.status_code == 200, response.text
    return response.json()


def session_item(service: Service) -> dict:
    with service.client("alice") as client:
        [unit] = client.get("/v1/review-items", params={"kind": "session", "status": "pending"}).json()["items"]
        return client.get(f"/v1/review-items/{unit['id']}").json()


def test_a_session_item_opens_as_one_conversation_with_every_turn_once_and_its_trace_boundaries(service):
    bodies = [turn("chat-1", n) for n in range(3)]
    bodies[2] = turn("chat-1", 2, risk="red", reasons=("rule:refund",))
    trace_items = post(service, *bodies)
    detail = session_item(service)
    assert (detail["kind"], detail["tier"], detail["risk_tier"], detail["conversation_id"]) == (
        "session",
        "dual_approval",
        "red",
        "chat-1",
    )
    assert detail["trace_url"] is None and detail["reasons"] == ["sampled", "rule:refund"]
    turns = detail["conversation"]["turns"]
    assert [(t["role"], t["content"]) for t in turns] == [
        pair for n in range(3) for pair in (("user", QUESTIONS[n]), ("assistant", ANSWERS[n]))
    ]
    assert [t["trace_id"] for t in turns] == [b["trace_id"] for b in bodies for _ in (0, 1)]
    assert detail["conversation"]["trace_ids"] == [b["trace_id"] for b in bodies]
    assert [(t["item_id"], t["member"], t["risk_tier"]) for t in detail["session"]["traces"]] == [
        (trace_items[0], True, "yellow"),
        (trace_items[1], True, "yellow"),
        (trace_items[2], True, "red"),
    ]
    assert detail["checklist"] == list(CHECKS)
    with service.client("alice") as client:
        queue = client.get("/v1/review-items").json()["items"]
        traces = client.get("/v1/review-items", params={"kind": "trace"}).json()["items"]
        me = client.get("/v1/me").json()
    assert [i["id"] for i in queue] == [detail["id"]]  # the queue holds the session once, not its traces again
    assert {t["session_item_id"] for t in traces} == {detail["id"]}
    assert me["units"]["dual_approval"] == "session" and "context_retained" in me["session_checklist"]


def test_a_session_decision_is_a_verdict_on_each_of_its_traces(db_url, grpc_receiver):
    endpoint, received = grpc_receiver
    running = start_service(db_url, verdicts=VerdictsConfig(endpoint=endpoint))
    try:
        bodies = [turn("chat-2", n, tier="factual_verification") for n in range(2)]
        post(running, *bodies)
        unit = session_item(running)
        checks = {k: True for k in unit["checklist"]}
        decided = decide(
            running,
            unit["id"],
            "alice",
            outcome="correct",
            correction="No fee.",
            turn=bodies[0]["trace_id"],
            checklist=checks,
        )
        assert decided["status"] == "done" and decided["decisions"][0]["turn"] == bodies[0]["trace_id"]
        assert checks.keys() == CHECKS.keys() - {"safety"} | {"sources_supported"}
        deadline = time.monotonic() + 30
        while len({r.trace_id for _, _, r in received.records()}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        reviews = [r for _, _, r in received.records() if attributes_of(r)["gen_ai.evaluation.name"] == "human_review"]
        assert sorted(r.trace_id.hex() for r in reviews) == sorted(b["trace_id"] for b in bodies)
        with running.client("alice") as client:
            traces = client.get("/v1/review-items", params={"kind": "trace"}).json()["items"]
            first = client.get(f"/v1/review-items/{traces[0]['id']}").json()
        assert {(t["status"], t["outcome"]) for t in traces} == {("done", "correct")}
        assert first["golden"] == "No fee."
    finally:
        stop_service(running)


def test_a_turn_after_the_decision_opens_a_follow_up_that_shows_what_was_reviewed(service):
    post(service, turn("chat-3", 0), turn("chat-3", 1))
    first = session_item(service)
    decide(service, first["id"], "alice", outcome="approve")
    decide(service, first["id"], "bob", outcome="approve")
    [later] = post(service, turn("chat-3", 2, tier="spot_check"))
    follow_up = session_item(service)
    assert follow_up["follows_id"] == first["id"] and follow_up["id"] != first["id"]
    assert [(t["member"], t["reviewed_in"], t["status"]) for t in follow_up["session"]["traces"]] == [
        (False, first["id"], "done"),
        (False, first["id"], "done"),
        (True, follow_up["id"], "pending"),
    ]
    assert [e["id"] for e in follow_up["session"]["earlier"]] == [first["id"]]
    assert follow_up["session"]["earlier"][0]["outcome"] == "approve"
    assert [t["content"] for t in follow_up["conversation"]["turns"] if t["role"] == "user"] == QUESTIONS
    assert follow_up["session"]["traces"][2]["item_id"] == later


def test_what_does_not_fit_a_session_item_is_refused_with_its_reason(service):
    [trace_item, _] = post(service, turn("chat-4", 0), turn("chat-4", 1))
    unit = session_item(service)
    with service.client("alice") as client:
        held = client.post(f"/v1/review-items/{trace_item}/claim")
        bad_kind = client.get("/v1/review-items", params={"kind": "sessions"})
        client.post(f"/v1/review-items/{unit['id']}/claim")
        bad_turn = client.post(
            f"/v1/review-items/{unit['id']}/decision",
            json={"outcome": "correct", "correction": "x", "checklist": CHECKS, "turn": "not-a-trace"},
        )
        other_turn = client.post(
            f"/v1/review-items/{unit['id']}/decision",
            json={"outcome": "correct", "correction": "x", "checklist": CHECKS, "turn": "0" * 32},
        )
        missing = client.post(
            f"/v1/review-items/{unit['id']}/decision",
            json={"outcome": "approve", "checklist": {k: True for k in list(CHECKS)[:4]}},
        )
    with service.client("ingest") as client:
        forbidden = client.get("/v1/review-items", params={"kind": "session"})
    assert held.status_code == 409 and f"within session item {unit['id']}" in held.json()["detail"]
    assert bad_kind.status_code == 422 and "kind" in bad_kind.text
    assert bad_turn.status_code == 422 and "turn" in bad_turn.text
    assert other_turn.status_code == 422 and "is not a trace of session item" in other_turn.json()["detail"]
    assert missing.status_code == 422 and "context_retained" in missing.json()["detail"]
    assert forbidden.status_code == 403
    assert service.store.get(unit["id"]).status == "claimed"  # nothing above changed it


def test_replicas_sending_traces_of_one_session_merge_into_one_session_item(db_url):
    """Each collector replica decides the traces it saw; the store groups whatever they send by conversation."""
    first = start_service(db_url)
    second = start_service(db_url, tokens=first.tokens)
    try:
        post(first, turn("chat-5", 0, tier="spot_check", risk="green"))
        post(second, turn("chat-5", 1, risk="red", reasons=("rule:refund",)))
        post(first, turn("chat-5", 2, tier="spot_check", risk="green", reasons=("session_red",)))
        unit = session_item(first)
        assert unit["risk_tier"] == "red" and [t["member"] for t in unit["session"]["traces"]] == [True] * 3
        with second.client("alice") as client:
            [session] = client.get("/v1/sessions").json()["sessions"]
        assert (session["risk_tier"], session["turns"]) == ("red", 3)
        assert [r["item_id"] for r in session["reviews"]] == [unit["id"]]
    finally:
        stop_service(second)
        stop_service(first)

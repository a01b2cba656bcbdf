"""The approvals API over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL: the contract of docs/gates.md."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from approvals_helpers import (
    DIGEST,
    PII,
    Service,
    approval_body,
    start_service,
    stop_service,
    until,
    webhook_receiver,
)
from otlp_logs import attributes_of

from spanguard.review.approvals import ApprovalStore, NewApproval
from spanguard.review.approvals_live import EscalationWebhook
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig, load_config
from spanguard.review.store import ReviewStore
from spanguard.review.verdicts import VerdictsConfig
from spanguard.yamlconfig import ConfigError

OTHER = "cd" * 32


@pytest.fixture
def make_service(db_url) -> Iterator:
    running: list[Service] = []

    def start(**settings) -> Service:
        service = start_service(db_url, **settings)
        running.append(service)
        return service

    yield start
    for service in running:
        stop_service(service)


@pytest.fixture
def service(make_service) -> Service:
    return make_service()


@pytest.fixture
def hook():
    yield from webhook_receiver()


def create(service: Service, **changes) -> dict:
    with service.client("ingest") as client:
        response = client.post("/v1/approvals", json=approval_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()


def decide(service: Service, who: str, approval_id: str, **body) -> httpx.Response:
    with service.client(who) as client:
        return client.post(f"/v1/approvals/{approval_id}/decision", json=body)


# -- creating and reading ---------------------------------------------------------------------------------------------


def test_a_request_is_created_once_per_request_key_and_answers_with_its_whole_state(service):
    body = approval_body()
    with service.client("ingest") as client:
        first = client.post("/v1/approvals", json=body)
        again = client.post("/v1/approvals", json=body)
        read = client.get(f"/v1/approvals/{first.json()['id']}")
    assert (first.status_code, again.status_code, read.status_code) == (201, 200, 200)
    answer = first.json()
    assert again.json()["id"] == answer["id"] and read.json() == again.json()
    assert re.fullmatch(r"apr_[A-Za-z0-9_-]{22}", answer["id"])
    assert answer["schema_version"] == 1 and answer["status"] == "pending"
    assert {key: answer[key] for key in body} == body
    assert answer["approvers"] == [] and answer["decisions"] == [] and answer["decided_arguments"] is None
    for key in ("created_at", "soft_deadline", "hard_deadline"):
        assert answer[key].endswith("Z")
    assert answer["escalated_at"] is answer["decided_at"] is answer["consumed_at"] is None


def test_a_request_key_reused_for_another_call_is_409(service):
    body = approval_body()
    with service.client("ingest") as client:
        client.post("/v1/approvals", json=body)
        response = client.post("/v1/approvals", json={**body, "digest": OTHER})
    assert response.status_code == 409 and "another call" in response.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"tier": "green"}, "tier"),
        ({"approvals_required": 6}, "approvals_required"),
        ({"approvals_required": "2"}, "approvals_required"),
        ({"digest": "xyz"}, "digest"),
        ({"arguments": [1, 2]}, "arguments"),
        ({"arguments": None}, "arguments"),
        ({"trace_id": "abc"}, "trace_id"),
        ({"span_id": "0" * 17}, "span_id"),
        ({"request_key": ""}, "request_key"),
        ({"action": "x" * 201}, "action"),
        ({"reasons": ["r"] * 51}, "reasons"),
        ({"session_id": "a\x00b"}, "session_id"),
        ({"soft_timeout_s": 0}, "soft_timeout_s"),
        ({"hard_timeout_s": -1}, "hard_timeout_s"),
        ({"soft_timeout_s": 600, "hard_timeout_s": 60}, "soft_timeout_s"),
        ({"on_hard_timeout": "later"}, "on_hard_timeout"),
        ({"tier": "red", "on_hard_timeout": "proceed"}, "on_hard_timeout"),
        ({"approver": "mallory"}, "approver"),
        ({"state": {"big": "x" * (8 * 1024 * 1024)}}, "state"),
        ({"action": "tab\there"}, "action"),
    ],
)
def test_a_bad_body_is_422_naming_the_field_and_creates_nothing(service, changes, named):
    with service.client("ingest") as client:
        response = client.post("/v1/approvals", json=approval_body(**changes))
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
    with service.client("alice") as client:
        assert client.get("/v1/approvals").json()["items"] == []


def test_a_body_missing_a_field_or_not_json_is_refused(service):
    body = approval_body()
    del body["digest"]
    with service.client("ingest") as client:
        missing = client.post("/v1/approvals", json=body)
        broken = client.post("/v1/approvals", content=b"{", headers={"Content-Type": "application/json"})
        nan = client.post(
            "/v1/approvals",
            content=b'{"request_key": "k", "action": "a", "tier": "red", "digest": "' + DIGEST.encode() + b'",'
            b' "arguments": {"x": NaN}}',
            headers={"Content-Type": "application/json"},
        )
    assert missing.status_code == 422 and "body.digest" in missing.json()["detail"]
    assert broken.status_code == 400
    assert nan.status_code == 422 and "arguments" in nan.json()["detail"]


def test_the_list_is_escalated_first_then_red_then_oldest_and_filters_by_status(make_service):
    service = make_service(approvals={"timer_interval_s": 0.05})
    yellow = create(service)
    red = create(service, tier="red")
    escalating = create(service, soft_timeout_s=0.2)
    until(lambda: _get(service, escalating["id"])["escalated_at"], what="the escalation")
    with service.client("alice") as alice:
        listed = alice.get("/v1/approvals", params={"status": "pending"}).json()["items"]
        assert decide(service, "alice", red["id"], outcome="reject", reason="no").status_code == 200
        rejected = alice.get("/v1/approvals", params={"status": "rejected,timed_out"}).json()["items"]
        page = alice.get("/v1/approvals", params={"limit": 1, "offset": 1}).json()["items"]
        bad = alice.get("/v1/approvals", params={"status": "gone"})
        bad_limit = alice.get("/v1/approvals", params={"limit": 0})
    assert [r["id"] for r in listed] == [escalating["id"], red["id"], yellow["id"]]
    assert [r["id"] for r in rejected] == [red["id"]]
    assert [r["id"] for r in page] == [red["id"]]
    assert bad.status_code == 422 and "query.status" in bad.json()["detail"]
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["detail"]


def _get(service: Service, approval_id: str, **params) -> dict:
    with service.client("alice") as client:
        return client.get(f"/v1/approvals/{approval_id}", params=params).json()


def test_unknown_and_malformed_ids_are_404(service):
    with service.client("alice") as alice:
        for approval_id in ("apr_" + "A" * 22, "nope", "apr_%00"):
            assert alice.get(f"/v1/approvals/{approval_id}").status_code == 404
            response = alice.post(f"/v1/approvals/{approval_id}/decision", json={"outcome": "approve"})
            assert response.status_code == 404 and response.json()["detail"]


# -- decisions --------------------------------------------------------------------------------------------------------


def test_approve_records_the_tokens_name_as_the_approver(service):
    request = create(service)
    response = decide(service, "alice", request["id"], outcome="approve")
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "approved" and answer["approvers"] == ["alice"] and answer["decided_at"]
    assert [(d["reviewer"], d["outcome"]) for d in answer["decisions"]] == [("alice", "approve")]


def test_the_approver_cannot_be_named_in_the_body(service):
    request = create(service)
    response = decide(service, "alice", request["id"], outcome="approve", reviewer="mallory")
    assert response.status_code == 422 and "reviewer" in response.json()["detail"]


def test_a_rejection_needs_a_reason(service):
    request = create(service)
    missing = decide(service, "alice", request["id"], outcome="reject")
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    rejected = decide(service, "alice", request["id"], outcome="reject", reason="refund already paid")
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "refund already paid"


def test_a_modify_needs_object_arguments_and_answers_them_as_decided_arguments(service):
    request = create(service)
    for bad in ({}, {"arguments": [1]}, {"arguments": "x"}):
        response = decide(service, "alice", request["id"], outcome="modify", **bad)
        assert response.status_code == 422 and "arguments" in response.json()["detail"]
    response = decide(service, "alice", request["id"], outcome="approve", arguments={"amount": 1})
    assert response.status_code == 422 and "only a modify" in response.json()["detail"]
    edited = {"order_id": "ORD-7Q-KX", "amount": 100.0}
    answer = decide(service, "alice", request["id"], outcome="modify", arguments=edited).json()
    assert answer["status"] == "modified" and answer["decided_arguments"] == edited
    assert answer["arguments"]["amount"] == 913.37


def test_two_distinct_reviewers_approve_a_red_request_and_the_same_one_twice_is_409(service):
    request = create(service, tier="red", approvals_required=2)
    assert decide(service, "alice", request["id"], outcome="approve").json()["status"] == "pending"
    twice = decide(service, "alice", request["id"], outcome="approve")
    assert twice.status_code == 409 and "already approved" in twice.json()["detail"]
    answer = decide(service, "bob", request["id"], outcome="approve").json()
    assert answer["status"] == "approved" and answer["approvers"] == ["alice", "bob"]


def test_a_replayed_decision_changes_nothing_and_a_conflicting_one_is_409(service):
    request = create(service)
    first = decide(service, "alice", request["id"], outcome="modify", arguments={"amount": 5})
    replay = decide(service, "alice", request["id"], outcome="modify", arguments={"amount": 5})
    assert replay.status_code == 200 and replay.json() == first.json()
    for who, body in (
        ("alice", {"outcome": "modify", "arguments": {"amount": 6}}),
        ("alice", {"outcome": "approve"}),
        ("bob", {"outcome": "modify", "arguments": {"amount": 5}}),
    ):
        response = decide(service, who, request["id"], **body)
        assert response.status_code == 409 and "no longer pending" in response.json()["detail"]


def test_an_approval_is_consumed_once_for_its_digest_only(service):
    request = create(service)
    with service.client("ingest") as agent:
        early = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST})
        decide(service, "alice", request["id"], outcome="approve")
        other = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": OTHER})
        malformed = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": "zz"})
        first = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST})
        second = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST})
    assert early.status_code == 409 and "pending" in early.json()["detail"]
    assert other.status_code == 409 and malformed.status_code == 422
    assert first.status_code == 200 and first.json()["consumed_at"].endswith("Z")
    assert second.status_code == 409 and "already consumed" in second.json()["detail"]


ROUTES = [
    ("POST", "/v1/approvals", {"ingest", "admin"}),
    ("GET", "/v1/approvals", {"alice", "admin"}),
    ("GET", "/v1/approvals/report", {"alice", "admin"}),
    ("GET", "/v1/approvals/{id}", {"ingest", "alice", "admin"}),
    ("GET", "/v1/approvals/{id}/audit", {"alice", "admin"}),
    ("POST", "/v1/approvals/{id}/decision", {"alice", "admin"}),
    ("POST", "/v1/approvals/{id}/consume", {"ingest", "admin"}),
]


def test_each_route_takes_only_its_roles_tokens(service):
    approval_id = create(service)["id"]
    bodies = {
        "/v1/approvals": approval_body(),
        "/v1/approvals/{id}/decision": {"outcome": "reject", "reason": "no"},
        "/v1/approvals/{id}/consume": {"digest": DIGEST},
    }
    wrong = []
    for method, route, allowed in ROUTES:
        for who in (None, "invalid", "ingest", "alice", "admin"):
            headers = {"Authorization": f"Bearer {service.tokens.get(who, 'sgr_not-a-token')}"} if who else {}
            url = service.url + route.replace("{id}", approval_id)
            response = httpx.request(method, url, headers=headers, json=bodies.get(route), timeout=30)
            expected = 401 if who in (None, "invalid") else None if who in allowed else 403
            if expected != (response.status_code if response.status_code in (401, 403) else None):
                wrong.append((method, route, who, response.status_code))
    assert wrong == []


# -- long polls -------------------------------------------------------------------------------------------------------


def test_a_long_poll_answers_as_soon_as_a_decision_lands(make_service):
    # No re-read within the poll's wait: only the wakeup can answer it before the client's own timeout.
    service = make_service(approvals={"reread_interval_s": 60})
    request = create(service)
    answers: list[httpx.Response] = []

    def poll() -> None:
        with service.client("ingest", timeout=20) as agent:
            answers.append(agent.get(f"/v1/approvals/{request['id']}", params={"wait": 60}))

    thread = threading.Thread(target=poll)
    thread.start()
    until(lambda: service.waiting == 1, what="the poll waiting")
    decide(service, "alice", request["id"], outcome="approve")
    thread.join(30)
    assert [a.json()["status"] for a in answers] == ["approved"]


def test_a_long_poll_answers_pending_when_its_wait_passes(service):
    request = create(service)
    answer = _get(service, request["id"], wait=0.3)
    assert answer["status"] == "pending" and answer["id"] == request["id"]
    assert service.waiting == 0
    with service.client("ingest") as agent:
        assert agent.get(f"/v1/approvals/{request['id']}", params={"wait": 61}).status_code == 422
        assert agent.get(f"/v1/approvals/{request['id']}", params={"wait": "nan"}).status_code == 422


def test_fifty_long_polls_do_not_starve_the_service(make_service):
    service = make_service(approvals={"reread_interval_s": 60})
    request = create(service)
    answers: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        with service.client("ingest", timeout=40) as agent:
            status = agent.get(f"/v1/approvals/{request['id']}", params={"wait": 60}).json()["status"]
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=poll) for _ in range(50)]
    for thread in threads:
        thread.start()
    until(lambda: service.waiting == 50, what="fifty polls waiting")
    # More than the 40 threads of the sync routes' pool are waiting, and sync routes still answer.
    with service.client("alice", timeout=10) as alice:
        assert alice.get("/v1/approvals").status_code == 200
        assert alice.get("/v1/me").status_code == 200
    decide(service, "alice", request["id"], outcome="approve")
    for thread in threads:
        thread.join(40)
    assert answers == ["approved"] * 50


def test_stopping_the_service_answers_the_waiting_polls(make_service):
    service = make_service(approvals={"reread_interval_s": 60})
    request = create(service)
    answers: list[str] = []

    def poll() -> None:
        with service.client("ingest", timeout=20) as agent:
            answers.append(agent.get(f"/v1/approvals/{request['id']}", params={"wait": 60}).json()["status"])

    thread = threading.Thread(target=poll)
    thread.start()
    until(lambda: service.waiting == 1, what="the poll waiting")
    service.server.shutdown()
    thread.join(30)
    assert answers == ["pending"]


# -- timers and the webhook -------------------------------------------------------------------------------------------


def test_the_soft_timeout_escalates_once_and_calls_the_webhook_once_without_the_calls_content(make_service, hook):
    page = "https://review.example/#/approvals/{id}"
    service = make_service(approvals={"timer_interval_s": 0.05, "webhook_url": hook.url, "page_url": page})
    request = create(service, soft_timeout_s=0.2, tier="red")
    until(lambda: hook.posts, what="the webhook call")
    escalated = _get(service, request["id"])
    assert escalated["escalated_at"] and escalated["status"] == "pending"
    until(lambda: _audit_actions(service, request["id"]).count("escalate") == 1, what="the audit entry")
    # Twenty more timer rounds: nothing more is sent.
    threading.Event().wait(1.0)
    assert len(hook.posts) == 1
    [post] = hook.posts
    link = page.replace("{id}", request["id"])
    assert request["id"] in post["text"] and "issue_refund" in post["text"] and link in post["text"]
    assert post["approval"]["id"] == request["id"] and post["approval"]["tier"] == "red"
    assert post["approval"]["url"] == link and post["approval"]["waited_s"] >= 0.2
    # Values no id or time can hold by chance (a request id is random base64, times carry microseconds).
    assert "John" not in str(post) and "913.37" not in str(post) and "ORD-7Q-KX" not in str(post)
    with service.client("alice") as alice:
        metrics = alice.get("/metrics").text
    assert 'spanguard_review_approval_escalations_total{action="issue_refund",tier="red"} 1.0' in metrics
    assert 'spanguard_review_approvals_pending{escalated="true",tier="red"} 1.0' in metrics


def _audit_actions(service: Service, approval_id: str) -> list[str]:
    with service.client("alice") as alice:
        return [e["action"] for e in alice.get(f"/v1/approvals/{approval_id}/audit").json()["entries"]]


def test_the_hard_timeout_times_a_request_out_and_wakes_its_poll(make_service):
    service = make_service(approvals={"timer_interval_s": 0.05, "reread_interval_s": 60})
    request = create(service, soft_timeout_s=0.3, hard_timeout_s=0.3)
    with service.client("ingest", timeout=20) as agent:
        answer = agent.get(f"/v1/approvals/{request['id']}", params={"wait": 60}).json()
        consume = agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST})
    assert answer["status"] == "timed_out" and answer["decided_at"]
    assert consume.status_code == 409  # denied: nothing to run
    assert decide(service, "alice", request["id"], outcome="approve").status_code == 409
    assert _audit_actions(service, request["id"]) == ["create", "escalate", "time_out"]
    with service.client("alice") as alice:
        metrics = alice.get("/metrics").text
    assert 'spanguard_review_approval_timeouts_total{action="issue_refund",tier="yellow"} 1.0' in metrics


def test_a_yellow_request_that_proceeds_at_its_hard_timeout_can_be_consumed_once(make_service):
    service = make_service(approvals={"timer_interval_s": 0.05})
    request = create(service, soft_timeout_s=0.1, hard_timeout_s=0.1, on_hard_timeout="proceed")
    until(lambda: _get(service, request["id"])["status"] == "timed_out", what="the time-out")
    with service.client("ingest") as agent:
        assert agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST}).status_code == 200
        assert agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST}).status_code == 409


def test_a_failing_webhook_is_retried_then_logged_without_content(hook, caplog, tmp_path):
    hook.status = 503
    failures: list[int] = []
    webhook = EscalationWebhook(hook.url, retries=2, backoff_s=0.01, on_failure=lambda: failures.append(1))
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.migrate()
    request, _ = ApprovalStore(store).create(
        NewApproval(request_key="k", action="send_email", tier="yellow", digest=DIGEST, arguments={"to": PII}), "a"
    )
    with caplog.at_level(logging.WARNING, logger="spanguard.review.approvals"):
        webhook.send(request, request.created_at)
        until(lambda: failures, what="the failure")
    webhook.shutdown()
    store.shutdown()
    assert len(hook.posts) == 3  # the first attempt and two retries
    assert "HTTP 503" in caplog.text and request.id in caplog.text
    assert "John" not in caplog.text and hook.url not in caplog.text


def test_with_the_store_down_the_service_starts_answers_503_and_stops():
    # The timers and the LISTEN connection fail in the background; start, requests and shutdown do not.
    down = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    config = ServiceConfig(db=down, approvals={"timer_interval_s": 0.05})
    store = ReviewStore(down, config.policy)
    server = ReviewServer(config, store, port=0)
    server.start()
    try:
        headers = {"Authorization": "Bearer sgr_" + "x" * 43}
        url = f"http://127.0.0.1:{server.port}/v1/approvals/apr_{'a' * 22}"
        response = httpx.get(url, headers=headers, params={"wait": 1}, timeout=30)
    finally:
        server.shutdown()
        store.shutdown()
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]


# -- audit, verdicts, metrics, report ---------------------------------------------------------------------------------


def test_every_create_decision_and_consume_is_audited_with_the_callers_name(service):
    request = create(service, tier="red", approvals_required=2)
    decide(service, "alice", request["id"], outcome="approve")
    decide(service, "bob", request["id"], outcome="approve")
    with service.client("ingest") as agent:
        agent.post(f"/v1/approvals/{request['id']}/consume", json={"digest": DIGEST})
    with service.client("alice") as alice:
        entries = alice.get(f"/v1/approvals/{request['id']}/audit").json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("agent", "create"),
        ("alice", "decide:approve"),
        ("bob", "decide:approve"),
        ("agent", "consume"),
    ]
    assert entries[2]["before"]["approvers"] == ["alice"] and entries[2]["after"]["status"] == "approved"
    assert all(e["at"].endswith("Z") for e in entries)
    assert PII not in str(entries)


def test_each_decision_is_a_human_approval_event_linked_to_the_gates_span(make_service, grpc_receiver):
    endpoint, received = grpc_receiver
    service = make_service(verdicts=VerdictsConfig(endpoint=endpoint))
    request = create(service, tier="red", approvals_required=2)
    other = create(service)
    decide(service, "alice", request["id"], outcome="approve")
    decide(service, "bob", request["id"], outcome="approve")
    decide(service, "bob", other["id"], outcome="reject", reason=f"do not refund {PII}")
    decide(service, "bob", other["id"], outcome="reject", reason=f"do not refund {PII}")  # a replay: no event
    until(lambda: len(received.records()) >= 3, what="three events")
    records = [record for _, _, record in received.records()]
    assert len(records) == 3 and {r.event_name for r in records} == {"gen_ai.evaluation.result"}
    by_reviewer = sorted(
        (attributes_of(r)["spanguard.review.reviewer"], attributes_of(r)["gen_ai.evaluation.score.label"], r)
        for r in records
    )
    assert [(who, label) for who, label, _ in by_reviewer] == [
        ("alice", "approve"),
        ("bob", "approve"),
        ("bob", "reject"),
    ]
    alice = by_reviewer[0][2]
    assert alice.trace_id.hex() == request["trace_id"] and alice.span_id.hex() == request["span_id"]
    attributes = attributes_of(alice)
    assert attributes["gen_ai.evaluation.name"] == "human_approval"
    assert attributes["spanguard.gate.approval_id"] == request["id"]
    assert "spanguard.review.item_id" not in attributes
    assert all("John" not in str(attributes_of(r)) for r in records)  # a rejection's text stays in the store


def test_metrics_count_requests_decisions_and_time_to_decision(service):
    request = create(service)
    decide(service, "alice", request["id"], outcome="modify", arguments={"amount": 1})
    create(service, tier="red", action="delete_account")
    with service.client("alice") as alice:
        metrics = alice.get("/metrics").text
    assert 'spanguard_review_approval_requests_total{action="issue_refund",tier="yellow"} 1.0' in metrics
    assert (
        'spanguard_review_approval_decisions_total{action="issue_refund",outcome="modify",tier="yellow"} 1.0' in metrics
    )
    assert 'spanguard_review_approval_time_to_decision_seconds_count{tier="yellow"} 1.0' in metrics
    assert 'spanguard_review_approvals_pending{escalated="false",tier="red"} 1.0' in metrics


def test_the_report_counts_the_recorded_requests(service):
    request = create(service)
    decide(service, "alice", request["id"], outcome="approve")
    with service.client("alice") as alice:
        report = alice.get("/v1/approvals/report", params={"days": 7})
        bad = alice.get("/v1/approvals/report", params={"days": 0})
    assert report.status_code == 200, report.text
    assert "issue_refund" in report.text and PII not in report.text
    assert bad.status_code == 422 and "days" in bad.json()["detail"]


def test_the_openapi_document_lists_the_approvals_routes(service):
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    assert {
        "/v1/approvals",
        "/v1/approvals/report",
        "/v1/approvals/{approval_id}",
        "/v1/approvals/{approval_id}/decision",
        "/v1/approvals/{approval_id}/consume",
        "/v1/approvals/{approval_id}/audit",
    } <= set(paths)


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("approvals: {webhook_url: 'ftp://hooks.example/x'}", "approvals.webhook_url"),
        ("approvals: {timer_interval_s: 0}", "approvals.timer_interval_s"),
        ("approvals: {webhook_retries: 11}", "approvals.webhook_retries"),
        ("approvals: {page_url: 'not a url'}", "approvals.page_url"),
        ("approvals: {policy: {tiers: {red: {on_hard_timeout: proceed}}}}", "approvals.policy.tiers"),
        ("approvals: {webhook: 'x'}", "approvals.webhook"),
    ],
)
def test_a_bad_approvals_config_is_refused_at_load_naming_the_key(tmp_path, yaml_text, named):
    path = tmp_path / "review.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert named in str(error.value)


def test_the_background_parts_stop_idempotently_and_the_server_then_stops(make_service):
    service = make_service(approvals={"timer_interval_s": 0.05})
    runtime = service.server.app.state.approvals
    runtime.stop(timeout=5)
    runtime.stop(timeout=5)  # again, as the lifespan's shutdown will: nothing to do
    assert not runtime.timers._thread and runtime.waiters.closed
    service.server.shutdown()
    service.server.shutdown()

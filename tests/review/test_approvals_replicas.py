"""Two review service replicas on one PostgreSQL schema: a decision through one wakes a long poll on the other, and
the timers of both fire each escalation (and its webhook) and each time-out once. Skipped when PostgreSQL is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from approvals_helpers import Service, approval_body, start_service, stop_service, until, webhook_receiver

# PostgreSQL only: replicas need a shared store (db_url skips, saying so, when the server is not reachable).
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def replicas(db_url) -> Iterator:
    running: list[Service] = []

    def start(a: dict, b: dict) -> tuple[Service, Service]:
        first = start_service(db_url, approvals=a)
        running.append(first)
        second = start_service(db_url, tokens=first.tokens, approvals=b)  # one store, so the same tokens
        running.append(second)
        return first, second

    yield start
    for service in running:
        stop_service(service)


@pytest.fixture
def hook():
    yield from webhook_receiver()


def _create(service: Service, **changes) -> str:
    with service.client("ingest") as agent:
        response = agent.post("/v1/approvals", json=approval_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _poll_in_background(service: Service, approval_id: str, answers: list[httpx.Response]) -> threading.Thread:
    def poll() -> None:
        # The client gives up long before the poll's wait and re-read would end it: only a wakeup answers in time.
        with service.client("ingest", timeout=20) as agent:
            answers.append(agent.get(f"/v1/approvals/{approval_id}", params={"wait": 60}))

    thread = threading.Thread(target=poll)
    thread.start()
    until(lambda: service.waiting == 1, what="the poll waiting")
    return thread


def test_a_decision_through_one_replica_wakes_a_long_poll_on_the_other(replicas):
    a, b = replicas({"reread_interval_s": 60}, {"reread_interval_s": 60})
    until(lambda: a.server.app.state.approvals.listener.listening.is_set(), what="replica A listening")
    approval_id = _create(a)
    answers: list[httpx.Response] = []
    thread = _poll_in_background(a, approval_id, answers)
    with b.client("alice") as alice:
        assert alice.post(f"/v1/approvals/{approval_id}/decision", json={"outcome": "approve"}).status_code == 200
    thread.join(30)
    assert [r.json()["status"] for r in answers] == ["approved"]


def test_without_listen_the_periodic_re_read_still_answers_the_poll(replicas):
    a, b = replicas({"listen": False, "reread_interval_s": 0.2}, {})
    assert a.server.app.state.approvals.listener is None
    approval_id = _create(a)
    answers: list[httpx.Response] = []
    thread = _poll_in_background(a, approval_id, answers)
    with b.client("bob") as bob:
        response = bob.post(f"/v1/approvals/{approval_id}/decision", json={"outcome": "reject", "reason": "no"})
    assert response.status_code == 200
    thread.join(30)
    assert [(r.json()["status"], r.json()["reason"]) for r in answers] == [("rejected", "no")]


def test_the_timers_of_both_replicas_escalate_and_time_out_each_request_once(replicas, hook):
    settings = {"timer_interval_s": 0.02, "webhook_url": hook.url}
    a, b = replicas(settings, settings)
    ids = [_create(a if n % 2 else b, soft_timeout_s=0.3, hard_timeout_s=0.6) for n in range(8)]
    until(lambda: len(hook.posts) >= 8, what="eight webhook calls")
    with a.client("alice") as alice:
        until(
            lambda: all(alice.get(f"/v1/approvals/{i}").json()["status"] == "timed_out" for i in ids),
            what="every request timed out",
        )
        threading.Event().wait(0.5)  # some more timer rounds in both replicas: nothing more may fire
        trails = [[e["action"] for e in alice.get(f"/v1/approvals/{i}/audit").json()["entries"]] for i in ids]
    assert sorted(post["approval"]["id"] for post in hook.posts) == sorted(ids)
    assert trails == [["create", "escalate", "time_out"]] * 8
    escalations = timeouts = 0.0
    for replica in (a, b):
        with replica.client("alice") as alice:
            for line in alice.get("/metrics").text.splitlines():
                if line.startswith("spanguard_review_approval_escalations_total{"):
                    escalations += float(line.rsplit(" ", 1)[1])
                if line.startswith("spanguard_review_approval_timeouts_total{"):
                    timeouts += float(line.rsplit(" ", 1)[1])
    assert (escalations, timeouts) == (8.0, 8.0)  # counted by the replica that fired, once across both

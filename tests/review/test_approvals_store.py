"""The approvals store on SQLite and PostgreSQL: creation, the decision rules, consume, timers, history and audit."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import replace

import psycopg
import pytest

from spanguard.review.approvals import NOTIFY_CHANNEL, ApprovalStore, NewApproval, check_new
from spanguard.review.store import Conflict, NotFound, ReviewError, ReviewStore

DIGEST = "ab" * 32
OTHER = "cd" * 32


def new(**changes) -> NewApproval:
    fields = {
        "request_key": str(uuid.uuid4()),
        "action": "issue_refund",
        "tier": "yellow",
        "digest": DIGEST,
        "arguments": {"order_id": "ORD-7Q-KX", "amount": 913.37},
        "reasons": ["amount > 100"],
        "state": {"messages": [{"role": "user", "content": "refund please"}], "tool_calls": [], "context": {}},
    }
    fields.update(changes)
    return NewApproval(**fields)


@pytest.fixture
def approvals(db_url):
    store = ReviewStore(db_url)
    store.migrate()
    changed: list[str] = []
    approvals = ApprovalStore(store, on_change=changed.extend)
    approvals.changed = changed  # type: ignore[attr-defined]
    yield approvals
    store.shutdown()


def later(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=seconds)


def test_a_request_is_created_pending_with_its_deadlines_and_an_id_of_22_url_safe_characters(approvals):
    request, created = approvals.create(new(soft_timeout_s=60, hard_timeout_s=120), "agent")
    assert created and request.status == "pending" and request.schema_version == 1
    assert request.id.startswith("apr_") and len(request.id) == 26
    assert request.hard_deadline - request.soft_deadline == dt.timedelta(seconds=60)
    stored = approvals.get(request.id)
    assert stored.arguments == {"order_id": "ORD-7Q-KX", "amount": 913.37}
    assert stored.state["messages"][0]["role"] == "user"
    assert approvals.changed == [request.id]


def test_creating_again_with_the_same_request_key_returns_the_same_request(approvals):
    first, _ = approvals.create(new(request_key="k-1"), "agent")
    again, created = approvals.create(new(request_key="k-1"), "agent")
    assert not created and again.id == first.id
    assert len(approvals.list()) == 1


def test_a_request_key_reused_for_another_call_is_a_conflict(approvals):
    approvals.create(new(request_key="k-1"), "agent")
    with pytest.raises(Conflict, match="another call"):
        approvals.create(new(request_key="k-1", digest=OTHER), "agent")


def test_concurrent_creates_with_one_key_make_one_request(approvals):
    ids: list[str] = []
    body = new(request_key="same")

    def create() -> None:
        ids.append(approvals.create(body, "agent")[0].id)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ids) == 6 and len(set(ids)) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"request_key": ""}, "request_key"),
        ({"request_key": "x" * 201}, "request_key"),
        ({"action": "a\nb"}, "action"),
        ({"tier": "green"}, "tier"),
        ({"approvals_required": 0}, "approvals_required"),
        ({"approvals_required": 6}, "approvals_required"),
        ({"approvals_required": True}, "approvals_required"),
        ({"digest": "AB" * 32}, "digest"),
        ({"digest": "ab" * 31}, "digest"),
        ({"reasons": "not a list"}, "reasons"),
        ({"reasons": ["ok", ""]}, "reasons[1]"),
        ({"arguments": ["not", "an", "object"]}, "arguments"),
        ({"arguments": {"x": float("nan")}}, "arguments"),
        ({"arguments": {"x": "y" * (1024 * 1024)}}, "arguments"),
        ({"state": {"x": "y" * (8 * 1024 * 1024)}}, "state"),
        ({"session_id": "s\x00"}, "session_id"),
        ({"trace_id": "0" * 31}, "trace_id"),
        ({"span_id": "Z" * 16}, "span_id"),
        ({"soft_timeout_s": 0}, "soft_timeout_s"),
        ({"hard_timeout_s": float("inf")}, "hard_timeout_s"),
        ({"soft_timeout_s": 100, "hard_timeout_s": 50}, "soft_timeout_s"),
        ({"on_hard_timeout": "maybe"}, "on_hard_timeout"),
        ({"tier": "red", "on_hard_timeout": "proceed"}, "on_hard_timeout"),
    ],
)
def test_an_invalid_request_is_refused_naming_the_field(changes, field):
    with pytest.raises(ReviewError) as error:
        check_new(new(**changes))
    assert str(error.value).startswith(field)


def test_nuls_in_the_agents_content_are_kept_as_u_fffd(approvals):
    request, _ = approvals.create(new(arguments={"note\x00": "a\x00b"}, state={"m": ["\x00"]}), "agent")
    stored = approvals.get(request.id)
    assert stored.arguments == {"note\ufffd": "a\ufffdb"} and stored.state == {"m": ["\ufffd"]}


def test_the_list_puts_escalated_first_then_red_before_yellow_then_oldest(approvals):
    yellow_old, _ = approvals.create(new(), "agent")
    red, _ = approvals.create(new(tier="red"), "agent")
    yellow_new, _ = approvals.create(new(), "agent")
    escalating, _ = approvals.create(new(soft_timeout_s=0.001), "agent")
    approvals.fire_timers(later(1))
    assert [r.id for r in approvals.list(status="pending")] == [escalating.id, red.id, yellow_old.id, yellow_new.id]
    approvals.decide(red.id, "alice", "reject", reason="no")
    assert red.id not in [r.id for r in approvals.list(status="pending")]
    assert [r.id for r in approvals.list(status=["rejected"])] == [red.id]
    with pytest.raises(ReviewError, match="unknown status"):
        approvals.list(status="gone")


def test_one_approval_approves_a_single_approver_request(approvals):
    request, _ = approvals.create(new(), "agent")
    decided, record = approvals.decide(request.id, "alice", "approve")
    assert decided.status == "approved" and decided.approvers == ["alice"] and decided.decided_at is not None
    assert record is not None and record.reviewer == "alice"


def test_a_rejection_needs_a_reason_and_ends_the_request(approvals):
    request, _ = approvals.create(new(tier="red", approvals_required=2), "agent")
    with pytest.raises(ReviewError, match="reason"):
        approvals.decide(request.id, "alice", "reject")
    with pytest.raises(ReviewError, match="reason"):
        approvals.decide(request.id, "alice", "reject", reason="   ")
    decided, _ = approvals.decide(request.id, "alice", "reject", reason="the customer was refunded already")
    assert decided.status == "rejected" and decided.reason == "the customer was refunded already"


def test_a_modify_needs_object_arguments_and_records_them(approvals):
    request, _ = approvals.create(new(), "agent")
    with pytest.raises(ReviewError, match="arguments"):
        approvals.decide(request.id, "alice", "modify")
    with pytest.raises(ReviewError, match="arguments"):
        approvals.decide(request.id, "alice", "modify", arguments=[1])  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="NUL"):
        approvals.decide(request.id, "alice", "modify", arguments={"x": "\x00"})
    with pytest.raises(ReviewError, match="only a modify"):
        approvals.decide(request.id, "alice", "approve", arguments={"amount": 1})
    decided, _ = approvals.decide(request.id, "alice", "modify", arguments={"order_id": "ORD-7Q-KX", "amount": 100.0})
    assert decided.status == "modified" and decided.decided_arguments == {"order_id": "ORD-7Q-KX", "amount": 100.0}
    assert approvals.get(request.id).arguments == {"order_id": "ORD-7Q-KX", "amount": 913.37}  # the original is kept


def test_m_of_n_needs_distinct_reviewers_and_the_same_reviewer_twice_is_a_conflict(approvals):
    request, _ = approvals.create(new(tier="red", approvals_required=2), "agent")
    first, _ = approvals.decide(request.id, "alice", "approve")
    assert first.status == "pending" and first.approvers == ["alice"]
    with pytest.raises(Conflict, match="already approved"):
        approvals.decide(request.id, "alice", "approve")
    second, _ = approvals.decide(request.id, "bob", "approve")
    assert second.status == "approved" and second.approvers == ["alice", "bob"]


def test_a_modify_resets_earlier_approvals_and_the_request_ends_modified(approvals):
    request, _ = approvals.create(new(tier="red", approvals_required=2), "agent")
    approvals.decide(request.id, "alice", "approve")
    modified, _ = approvals.decide(request.id, "bob", "modify", arguments={"amount": 1})
    assert modified.status == "pending" and modified.approvers == ["bob"]
    final, _ = approvals.decide(request.id, "alice", "approve")
    assert final.status == "modified" and final.approvers == ["bob", "alice"]
    assert final.decided_arguments == {"amount": 1}


def test_the_same_decision_repeated_changes_nothing_and_another_is_a_conflict(approvals):
    request, _ = approvals.create(new(), "agent")
    approvals.decide(request.id, "alice", "reject", reason="no")
    again, record = approvals.decide(request.id, "alice", "reject", reason="no")
    assert record is None and again.status == "rejected"
    assert len(approvals.decisions(request.id)) == 1
    for reviewer, outcome, reason in (("alice", "reject", "other reason"), ("alice", "approve", None)):
        with pytest.raises(Conflict, match="no longer pending"):
            approvals.decide(request.id, reviewer, outcome, reason=reason)
    with pytest.raises(Conflict):
        approvals.decide(request.id, "bob", "reject", reason="no")


def test_an_approval_is_consumed_once_and_only_for_its_digest(approvals):
    request, _ = approvals.create(new(), "agent")
    with pytest.raises(Conflict, match="pending"):
        approvals.consume(request.id, DIGEST, "agent")
    approvals.decide(request.id, "alice", "approve")
    with pytest.raises(Conflict, match="another call"):
        approvals.consume(request.id, OTHER, "agent")
    with pytest.raises(ReviewError, match="digest"):
        approvals.consume(request.id, "not hex", "agent")
    consumed = approvals.consume(request.id, DIGEST, "agent")
    assert consumed.consumed_at is not None and consumed.consumed_digest == DIGEST
    with pytest.raises(Conflict, match="already consumed"):
        approvals.consume(request.id, DIGEST, "agent")


def test_a_rejected_or_denied_request_cannot_be_consumed_and_a_proceeding_time_out_can(approvals):
    rejected, _ = approvals.create(new(), "agent")
    approvals.decide(rejected.id, "alice", "reject", reason="no")
    denied, _ = approvals.create(new(soft_timeout_s=0.001, hard_timeout_s=0.001), "agent")
    proceeds, _ = approvals.create(new(soft_timeout_s=0.001, hard_timeout_s=0.001, on_hard_timeout="proceed"), "agent")
    approvals.fire_timers(later(1))
    for request in (rejected, denied):
        with pytest.raises(Conflict):
            approvals.consume(request.id, DIGEST, "agent")
    assert approvals.consume(proceeds.id, DIGEST, "agent").status == "timed_out"


def test_timers_escalate_once_and_time_out_once_even_when_replicas_fire_together(approvals):
    soft, _ = approvals.create(new(soft_timeout_s=5, hard_timeout_s=3600), "agent")
    hard, _ = approvals.create(new(soft_timeout_s=5, hard_timeout_s=10), "agent")
    untouched, _ = approvals.create(new(), "agent")
    assert approvals.fire_timers(later(1)).escalated == []
    results = []

    def fire() -> None:
        results.append(approvals.fire_timers(later(7)))

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    escalated = sorted(i for r in results for i in r.escalated)
    assert escalated == sorted([soft.id, hard.id])  # each once, across the four
    assert [i for r in results for i in r.timed_out] == []
    timers = approvals.fire_timers(later(11))
    assert timers.timed_out == [hard.id] and timers.escalated == []
    assert approvals.fire_timers(later(12)).timed_out == []
    assert approvals.get(hard.id).status == "timed_out" and approvals.get(soft.id).status == "pending"
    assert approvals.get(untouched.id).escalated_at is None
    with pytest.raises(Conflict, match="timed_out"):
        approvals.decide(hard.id, "alice", "approve")


def test_every_change_is_audited_without_the_arguments(approvals):
    request, _ = approvals.create(new(soft_timeout_s=1, tier="red", approvals_required=2), "agent")
    approvals.fire_timers(later(2))
    approvals.decide(request.id, "alice", "approve")
    approvals.decide(request.id, "bob", "modify", arguments={"amount": 1})
    approvals.decide(request.id, "carol", "approve")
    approvals.consume(request.id, DIGEST, "agent")
    trail = approvals.audit(request.id)
    assert [(e.actor, e.action) for e in trail] == [
        ("agent", "create"),
        ("system", "escalate"),
        ("alice", "decide:approve"),
        ("bob", "decide:modify"),
        ("carol", "decide:approve"),
        ("agent", "consume"),
    ]
    assert trail[1].before["escalated"] is False and trail[1].after["escalated"] is True
    assert trail[-1].after == {
        "status": "modified",
        "approvers": ["bob", "carol"],
        "escalated": True,
        "modified": True,
        "consumed": True,
    }
    assert "913.37" not in str([(e.before, e.after) for e in trail])


def test_history_gives_the_fatigue_reports_records(approvals):
    approved, _ = approvals.create(new(), "agent")
    approvals.decide(approved.id, "alice", "approve")
    modified, _ = approvals.create(new(action="send_email"), "agent")
    approvals.decide(modified.id, "alice", "modify", arguments={"to": []})
    records = approvals.history(later(-60))
    assert [(r["id"], r["status"], r["modified"]) for r in records] == [
        (approved.id, "approved", False),
        (modified.id, "modified", True),
    ]
    assert set(records[0]) == {
        "id",
        "action",
        "tier",
        "status",
        "approvals_required",
        "created_at",
        "decided_at",
        "escalated_at",
        "modified",
    }
    assert approvals.history(later(60)) == []


def test_unknown_and_malformed_ids_are_not_found(approvals):
    for approval_id in ("apr_" + "x" * 22, "nope", "apr_" + "x" * 23):
        with pytest.raises(NotFound):
            approvals.get(approval_id)
        with pytest.raises(NotFound):
            approvals.decide(approval_id, "alice", "approve")


def test_on_postgresql_each_change_is_notified_on_commit(approvals):
    if approvals.dialect != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    url = approvals.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        request, _ = approvals.create(new(), "agent")
        approvals.decide(request.id, "alice", "approve")
        payloads = []
        for notify in listener.notifies(timeout=10):
            payloads.append(notify.payload)
            if payloads.count(request.id) == 2:
                break
    assert payloads.count(request.id) == 2


def test_an_invalid_create_changes_nothing(approvals):
    body = new()
    request, _ = approvals.create(body, "agent")
    with pytest.raises(ReviewError, match="tier"):
        approvals.create(replace(body, request_key="other", tier="blue"), "agent")
    assert [r.id for r in approvals.list()] == [request.id]

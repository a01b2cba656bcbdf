"""The review store on SQLite and PostgreSQL: idempotent ingestion, atomic leases, decisions, the audit trail."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from spanguard.review.store import Decision, ReviewError, ReviewStore
from sqlalchemy import create_engine, text

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_url() -> str:
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"review_{uuid.uuid4().hex[:12]}"
        with engine.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
        engine.dispose()
    except Exception as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) is not reachable: {type(error).__name__}")
    return f"{PG_ADMIN}?options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'review.db'}" if request.param == "sqlite" else _postgres_url()
    store = ReviewStore(url)
    store.create_schema()
    yield store
    store.shutdown()


def _span(span_id: str, content: str = "hello") -> dict:
    return {"span_id": span_id, "name": "chat gpt-4o", "attributes": {"gen_ai.input.messages": content}}


def _ingest(store: ReviewStore, trace_id: str, *, tier="spot_check", risk="yellow", spans=("a",)) -> int:
    return store.ingest(
        trace_id, tier=tier, risk_tier=risk, reasons=["unpinned_model"], spans=[_span(s) for s in spans], actor="ingest"
    )


def test_the_same_trace_twice_is_one_item_and_later_spans_merge_in(store):
    first = _ingest(store, "t1", spans=("a", "b"))
    again = _ingest(store, "t1", spans=("a", "b"))
    later = _ingest(store, "t1", spans=("b", "c"))
    assert first == again == later
    item = store.get(first)
    assert [s["span_id"] for s in item.spans] == ["a", "b", "c"]
    assert [e.action for e in store.audit(first)] == ["ingest", "merge"]


def test_queue_is_ordered_by_risk_then_age(store):
    green = _ingest(store, "g", risk="green")
    red = _ingest(store, "r", risk="red", tier="dual_approval")
    yellow = _ingest(store, "y", risk="yellow")
    assert [i.id for i in store.list(status="pending")] == [red, yellow, green]
    assert [i.id for i in store.list(tier="dual_approval")] == [red]


def test_two_concurrent_claimers_never_get_the_same_item(store):
    ids = [_ingest(store, f"t{n}") for n in range(10)]
    won: dict[int, list[str]] = {i: [] for i in ids}
    barrier = threading.Barrier(8)

    def reviewer(name: str) -> None:
        barrier.wait()
        for item_id in ids:
            if store.claim(item_id, name):
                won[item_id].append(name)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(names) == 1 for names in won.values()), won


def test_claim_next_hands_each_item_to_one_reviewer(store):
    ids = {_ingest(store, f"t{n}") for n in range(12)}
    got: list[int] = []
    lock = threading.Lock()

    def reviewer(name: str) -> None:
        while (item := store.claim_next(name)) is not None:
            with lock:
                got.append(item)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(ids)


def test_an_expired_lease_returns_the_item_to_the_queue(store):
    item = _ingest(store, "t")
    assert store.claim(item, "alice", lease_s=0.05)
    assert not store.claim(item, "bob")
    time.sleep(0.2)
    assert store.claim(item, "bob")
    with pytest.raises(ReviewError, match="not claimed by alice"):
        store.decide(item, "alice", Decision("approve"))


def test_dual_approval_needs_two_different_reviewers_and_one_rejection_ends_it(store):
    item = _ingest(store, "t", tier="dual_approval", risk="red")
    assert store.claim(item, "alice")
    assert store.decide(item, "alice", Decision("approve")).status == "pending"
    assert store.claim(item, "alice")
    with pytest.raises(ReviewError, match="second reviewer"):
        store.decide(item, "alice", Decision("approve"))
    store.release(item, "alice")
    assert store.claim(item, "bob")
    done = store.decide(item, "bob", Decision("approve"))
    assert (done.status, done.outcome, done.approvals) == ("done", "approve", ["alice", "bob"])

    other = _ingest(store, "t2", tier="dual_approval", risk="red")
    assert store.claim(other, "alice")
    rejected = store.decide(other, "alice", Decision("reject", reason="policy"))
    assert (rejected.status, rejected.outcome) == ("done", "reject")


def test_decisions_are_checked_and_audited(store):
    item = _ingest(store, "t")
    with pytest.raises(ReviewError, match="not claimed"):
        store.decide(item, "alice", Decision("approve"))
    assert store.claim(item, "alice")
    with pytest.raises(ReviewError, match="needs a reason"):
        store.decide(item, "alice", Decision("reject"))
    with pytest.raises(ReviewError, match="corrected output"):
        store.decide(item, "alice", Decision("correct"))
    store.decide(item, "alice", Decision("correct", correction="The parcel arrives on Monday."))
    trail = store.audit(item)
    assert [(e.actor, e.action) for e in trail] == [
        ("ingest", "ingest"),
        ("alice", "claim"),
        ("alice", "decide:correct"),
    ]
    assert trail[-1].before["status"] == "claimed" and trail[-1].after["status"] == "done"
    with pytest.raises(ReviewError, match="no review item"):
        store.get(999_999)


def test_shutdown_without_start(tmp_path):
    store = ReviewStore(f"sqlite:///{tmp_path / 'never.db'}")
    store.shutdown()
    store.shutdown()

"""The review store on SQLite and PostgreSQL: idempotent ingestion, atomic leases, decisions, the audit trail."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from spanguard.review.config import ReviewPolicy
from spanguard.review.store import Conflict, Decision, NotFound, Principal, ReviewError, ReviewStore, hash_token


@pytest.fixture
def store(db_url):
    # No checklists here: these tests are about leases and outcomes; the checklist rules have their own test.
    store = ReviewStore(db_url, ReviewPolicy(checklists={}))
    store.migrate()
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
    with pytest.raises(Conflict, match="second, different reviewer"):
        store.claim(item, "alice")
    assert store.claim(item, "bob")
    done = store.decide(item, "bob", Decision("approve"))
    assert (done.status, done.outcome, done.approvals) == ("done", "approve", ["alice", "bob"])

    other = _ingest(store, "t2", tier="dual_approval", risk="red")
    assert store.claim(other, "alice")
    rejected = store.decide(other, "alice", Decision("reject", reason="policy_violation"))
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


def test_every_checklist_item_of_the_tier_must_be_answered_and_nothing_else(db_url):
    store = ReviewStore(db_url)
    store.migrate()
    item = _ingest(store, "t", tier="spot_check")
    assert store.claim(item, "alice")
    with pytest.raises(ReviewError, match="missing: policy_adherence, tone"):
        store.decide(item, "alice", Decision("approve", checklist={"factual_accuracy": True}))
    full = {"factual_accuracy": True, "policy_adherence": True, "tone": False}
    with pytest.raises(ReviewError, match="does not: made_up"):
        store.decide(item, "alice", Decision("approve", checklist={**full, "made_up": True}))
    with pytest.raises(ReviewError, match="unknown reason 'bored'"):
        store.decide(item, "alice", Decision("reject", reason="bored", checklist=full))
    done = store.decide(item, "alice", Decision("approve", checklist=full, ratings={"likert": 4}, comment="ok"))
    assert done.status == "done"
    [record] = store.decisions(item)
    assert (record.reviewer, record.checklist, record.ratings, record.comment) == ("alice", full, {"likert": 4}, "ok")
    store.shutdown()


def test_a_correction_is_kept_as_the_golden_answer(store):
    item = _ingest(store, "t")
    assert store.claim(item, "alice")
    with pytest.raises(ReviewError, match="only for the outcome 'correct'"):
        store.decide(item, "alice", Decision("approve", correction="x"))
    store.decide(item, "alice", Decision("correct", correction="The parcel arrives on Monday."))
    assert store.get(item).golden == "The parcel arrives on Monday."
    with pytest.raises(Conflict, match="not claimed"):
        store.decide(item, "alice", Decision("approve"))


def test_tokens_are_stored_hashed_and_name_their_holder(store):
    token = store.create_token("alice", "reviewer")
    assert token.startswith("sgr_") and len(token) > 40
    assert store.authenticate(token) == Principal("alice", "reviewer")
    assert store.authenticate(token + "x") is None
    assert store.authenticate("not-a-token") is None
    with store.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT token_hash FROM api_tokens"))]
    assert token not in stored and stored == [hash_token(token)]
    assert store.revoke_tokens("alice") == 1
    assert store.authenticate(token) is None
    with pytest.raises(ReviewError, match="unknown role"):
        store.create_token("bob", "root")  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="printable"):
        store.create_token("bob\n", "reviewer")


def test_expired_leases_show_as_expired_in_the_audit_and_can_be_claimed_again(store):
    item = _ingest(store, "t")
    assert store.claim(item, "alice", lease_s=0.05)
    time.sleep(0.2)
    assert store.expire_leases() == 1
    assert store.get(item).status == "expired"
    assert [i.id for i in store.list(status=["pending", "expired"])] == [item]
    assert store.claim_next("bob") == item
    assert [(e.actor, e.action) for e in store.audit(item)][-2:] == [("system", "expire"), ("bob", "claim")]


def test_the_queue_filters_by_reason_model_and_date(store):
    chat = {"gen_ai.operation.name": "chat", "gen_ai.response.model": "gpt-4o-2024-08-06"}
    first = store.ingest(
        "a1", tier="spot_check", risk_tier="red", reasons=["loop", "pii"], actor="i",
        spans=[{"span_id": "s1", "name": "chat", "attributes": chat}],
    )  # fmt: skip
    second = _ingest(store, "a2")
    assert [i.id for i in store.list(reason="pii")] == [first]
    assert [i.id for i in store.list(reason="unpinned_model")] == [second]
    assert [i.id for i in store.list(reason="pi")] == []  # a whole reason, not a substring
    assert [i.id for i in store.list(model="gpt-4o-2024-08-06")] == [first]
    assert store.get(first).models == ["gpt-4o-2024-08-06"]
    created = store.get(second).created_at
    assert [i.id for i in store.list(since=created)] == [second]
    assert [i.id for i in store.list(until=created)] == [first]
    assert store.counts() == {("spot_check", "pending"): 2}


def test_later_spans_of_a_riskier_kind_raise_the_items_tier(store):
    item = _ingest(store, "t", tier="spot_check", risk="green")
    store.ingest("t", tier="dual_approval", risk_tier="red", reasons=["loop"], spans=[_span("z")], actor="ingest")
    got = store.get(item)
    assert (got.tier, got.risk_tier, got.reasons) == ("dual_approval", "red", ["unpinned_model", "loop"])


def test_unknown_items_are_not_found(store):
    with pytest.raises(NotFound):
        store.claim(12345, "alice")
    with pytest.raises(NotFound):
        store.release(12345, "alice")


def test_claim_next_skips_dual_approval_items_the_reviewer_already_approved(store):
    item = _ingest(store, "t", tier="dual_approval", risk="red")
    assert store.claim_next("alice") == item
    store.decide(item, "alice", Decision("approve"))
    assert store.claim_next("alice") is None
    assert store.claim_next("bob") == item


def test_a_reviewer_who_approved_a_dual_approval_item_cannot_claim_it_again(store):
    item = _ingest(store, "t", tier="dual_approval", risk="red")
    assert store.claim(item, "alice")
    store.decide(item, "alice", Decision("approve"))
    with pytest.raises(Conflict, match=r"alice already approved review item \d+; a second, different reviewer must"):
        store.claim(item, "alice")
    left = store.get(item)
    assert (left.status, left.lease_owner, left.approvals) == ("pending", None, ["alice"])  # not held from bob
    assert [(e.actor, e.action) for e in store.audit(item)][-1] == ("alice", "decide:approve")
    assert store.claim(item, "bob")
    assert [(e.actor, e.action, e.after["lease_owner"]) for e in store.audit(item)][-1] == ("bob", "claim", "bob")
    done = store.decide(item, "bob", Decision("approve"))
    assert (done.status, done.approvals) == ("done", ["alice", "bob"])
    assert not store.claim(item, "alice")  # a done item is refused as done, not as already approved


def _by_id(store: ReviewStore, item_id: int) -> list:
    """Every store call that takes an item id, ready to be called with ``item_id``."""
    return [
        (store.get, (item_id,)),
        (store.claim, (item_id, "alice")),
        (store.release, (item_id, "alice")),
        (store.decide, (item_id, "alice", Decision("approve"))),
    ]


def test_item_ids_are_64_bit_and_ids_no_row_can_have_are_not_found_not_database_errors(store):
    item = _ingest(store, "t")
    # In range but beyond any row (and beyond PostgreSQL's 32-bit id column): not found, on every method.
    for missing in (2**31, 3_000_000_000, 2**63 - 1):
        for call, args in _by_id(store, missing):
            with pytest.raises(NotFound, match=f"no review item {missing}"):
                call(*args)
        assert store.decisions(missing) == [] and store.audit(missing) == []
    # Not a 64-bit id at all: refused as such (a ReviewError that is not NotFound), before the database sees it.
    for invalid in (0, -1, 2**63, 10**23):
        for call, args in [*_by_id(store, invalid), (store.decisions, (invalid,)), (store.audit, (invalid,))]:
            with pytest.raises(ReviewError, match="not a review item id") as raised:
                call(*args)
            assert not isinstance(raised.value, NotFound)
    assert store.get(item).status == "pending" and store.ping()


def test_a_nul_byte_in_a_filter_is_refused_rather_than_matching_every_item(store):
    _ingest(store, "t1")
    _ingest(store, "t2")
    for name, filters in (
        ("reason", {"reason": "\x00"}),
        ("reason", {"reason": "unpinned_model\x00"}),
        ("model", {"model": "\x00"}),
        ("status", {"status": "pending\x00"}),
        ("tier", {"tier": "spot_check\x00"}),
    ):
        with pytest.raises(ReviewError, match=f"{name} must not contain a NUL byte"):
            store.list(**filters)
    with pytest.raises(ReviewError, match="status must not contain a NUL byte"):
        store.facets(status=["\x00"])
    assert len(store.list(reason="unpinned_model")) == 2 and store.list(reason="unpinned") == []


def test_nul_bytes_are_stored_as_u_fffd_in_spans_and_refused_in_a_decisions_text(store):
    span = {"span_id": "a", "name": "chat\x00", "attributes": {"k\x00": ["v\x00"]}, "events": [{"name": "e\x00"}]}
    item = store.ingest("t1", tier="spot_check", risk_tier="red", reasons=["r\x00"], spans=[span], actor="ingest")
    [stored] = store.get(item).spans
    assert stored == {
        "span_id": "a",
        "name": "chat\ufffd",
        "attributes": {"k\ufffd": ["v\ufffd"]},
        "events": [{"name": "e\ufffd"}],
    }
    assert store.get(item).reasons == ["r\ufffd"] and span["name"] == "chat\x00"  # the caller's spans are not changed
    assert store.claim(item, "alice")
    for field, decision in (
        ("reason_text", Decision("reject", reason="other", reason_text="\x00")),
        ("correction", Decision("correct", correction="x\x00")),
        ("comment", Decision("approve", comment="x\x00y")),
        ("checklist", Decision("approve", checklist={"tone\x00": True})),
    ):
        with pytest.raises(ReviewError, match=f"^{field} must not contain a NUL byte"):
            store.decide(item, "alice", decision)
    assert store.decisions(item) == [] and store.get(item).status == "claimed"
    store.decide(item, "alice", Decision("approve", comment="fine"))

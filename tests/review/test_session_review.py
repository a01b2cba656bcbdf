"""Review by session in the store (docs/review.md, "Review by session"), on SQLite and on PostgreSQL: traces of a
tier reviewed by session join one session item, claimed, decided and audited as one; later traces open a follow-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sessions_helpers import item

from spanguard.review.config import ReviewPolicy
from spanguard.review.store import Conflict, Decision, IngestItem, ReviewError, ReviewStore

DUAL = "dual_approval"
SESSION_CHECKS = {"context_retained": True, "consistent_with_earlier_answers": True, "no_repeated_tool_calls": True}
DUAL_CHECKS = {"factual_accuracy": True, "policy_adherence": True, "safety": True, "tone": True, **SESSION_CHECKS}


@pytest.fixture
def store(db_url) -> Iterator[ReviewStore]:
    store = ReviewStore(db_url)
    store.migrate()
    yield store
    store.shutdown()


def ingest(store: ReviewStore, *items: IngestItem) -> list[int]:
    return [item_id for item_id, _ in store.ingest_many(list(items), actor="collector")]


def approve(store: ReviewStore, item_id: int, reviewer: str, checklist=DUAL_CHECKS) -> None:
    assert store.claim(item_id, reviewer)
    store.decide(item_id, reviewer, Decision("approve", checklist=checklist))


def session_items(store: ReviewStore) -> list:
    return store.list(kind="session")


def test_dual_approval_turns_of_one_conversation_are_one_session_item(store):
    turns = [item(turn=n, conversation="c-1", user="u-1", tier=DUAL, risk="yellow") for n in range(3)]
    turns[1] = item(turn=1, conversation="c-1", user="u-1", tier=DUAL, risk="red", reasons=("refund",))
    ids = ingest(store, *turns)
    [unit] = store.list()  # the queue holds what is reviewed: one session item, not three traces
    assert (unit.kind, unit.tier, unit.risk_tier, unit.conversation_id, unit.user_id) == (
        "session",
        DUAL,
        "red",
        "c-1",
        "u-1",
    )
    assert unit.reasons == ["sampled", "refund"] and unit.session_key is None and unit.spans == []
    assert [m.id for m in store.members(unit.id)] == ids
    assert [t.session_item_id for t in store.list(kind="trace")] == [unit.id] * 3


def test_a_trace_reviewed_within_a_session_is_claimed_only_through_it(store):
    [first, _] = ingest(store, *(item(turn=n, conversation="c-2", tier=DUAL) for n in range(2)))
    with pytest.raises(Conflict, match="within session item"):
        store.claim(first, "alice")
    unit = store.claim_next("alice")
    assert unit is not None and store.get(unit).kind == "session"
    assert store.claim_next("bob") is None  # its traces are not claimable on their own


def test_a_session_decision_needs_the_session_checklist_and_applies_to_every_trace(store):
    ids = ingest(store, *(item(turn=n, conversation="c-3", tier=DUAL) for n in range(3)))
    [unit] = session_items(store)
    assert store.claim(unit.id, "alice")
    tier_only = {k: v for k, v in DUAL_CHECKS.items() if k not in SESSION_CHECKS}
    with pytest.raises(ReviewError, match="missing: context_retained, consistent_with_earlier_answers"):
        store.decide(unit.id, "alice", Decision("approve", checklist=tier_only))
    store.decide(unit.id, "alice", Decision("approve", checklist=DUAL_CHECKS))
    assert store.get(unit.id).status == "pending" and all(store.get(i).status == "pending" for i in ids)
    approve(store, unit.id, "bob")
    assert (store.get(unit.id).status, store.get(unit.id).outcome) == ("done", "approve")
    assert [(store.get(i).status, store.get(i).outcome) for i in ids] == [("done", "approve")] * 3
    for trace_id in ids:  # audited on each trace, by the reviewer whose approval completed it
        assert [(e.actor, e.action) for e in store.audit(trace_id)][-1] == ("bob", "decide:approve")
    assert [e.action for e in store.audit(unit.id)] == [
        "ingest",
        "merge",
        "merge",
        "merge",
        "claim",
        "decide:approve",
        "claim",
        "decide:approve",
    ]


def test_a_turn_after_the_decision_opens_a_follow_up_item(store):
    ingest(store, *(item(turn=n, conversation="c-4", tier=DUAL) for n in range(2)))
    [first] = session_items(store)
    approve(store, first.id, "alice")
    approve(store, first.id, "bob")
    [later] = ingest(store, item(turn=2, conversation="c-4", tier="spot_check"))
    follow_up = [u for u in session_items(store) if u.id != first.id]
    assert len(follow_up) == 1 and follow_up[0].follows_id == first.id
    assert [m.id for m in store.members(follow_up[0].id)] == [later]
    assert follow_up[0].tier == "spot_check"  # a decided session reviews its later traces too, at their tier
    # The decided item left the queue; the follow-up is in it.
    assert [u.id for u in store.list(status=["pending"])] == [follow_up[0].id]


def test_a_turn_while_the_session_item_is_held_opens_a_follow_up_not_a_change_under_the_reviewer(store):
    ingest(store, item(turn=0, conversation="c-5", tier=DUAL))
    [held] = session_items(store)
    assert store.claim(held.id, "alice")
    ingest(store, item(turn=1, conversation="c-5", tier=DUAL))
    assert len(store.members(held.id)) == 1
    [follow_up] = [u for u in session_items(store) if u.id != held.id]
    assert follow_up.follows_id == held.id and len(store.members(follow_up.id)) == 1


def test_spot_check_traces_stay_trace_items_until_the_session_needs_a_session_review(store):
    early = ingest(store, *(item(turn=n, conversation="c-6") for n in range(2)))
    assert [u.kind for u in store.list()] == ["trace", "trace"]
    assert store.claim(early[1], "carol")  # one is being reviewed on its own: it stays so
    [risky] = ingest(store, item(turn=2, conversation="c-6", tier=DUAL, risk="red"))
    [unit] = session_items(store)
    assert [m.id for m in store.members(unit.id)] == [early[0], risky]
    assert store.get(early[1]).session_item_id is None and store.get(early[1]).status == "claimed"


def test_traces_without_a_conversation_id_are_reviewed_on_their_own(store):
    ingest(store, item(tier=DUAL), item(tier=DUAL))
    assert [u.kind for u in store.list()] == ["trace", "trace"] and session_items(store) == []


def test_the_policy_chooses_the_unit_per_tier(db_url):
    store = ReviewStore(db_url, ReviewPolicy(units={"dual_approval": "trace", "spot_check": "session"}))
    store.migrate()
    try:
        ingest(store, *(item(turn=n, conversation="c-7", tier=DUAL) for n in range(2)))
        assert session_items(store) == []
        ingest(store, item(turn=0, conversation="c-8"))
        assert [u.conversation_id for u in session_items(store)] == ["c-8"]
    finally:
        store.shutdown()


def test_a_correction_goes_to_the_turn_it_names(store):
    ids = ingest(store, *(item(turn=n, conversation="c-9", tier="factual_verification") for n in range(3)))
    traces = [store.get(i) for i in ids]
    [unit] = session_items(store)
    checks = {
        "factual_accuracy": False,
        "sources_supported": True,
        "policy_adherence": True,
        "tone": True,
        **SESSION_CHECKS,
        "context_retained": False,
    }
    assert store.claim(unit.id, "alice")
    with pytest.raises(ReviewError, match="is not a trace of session item"):
        store.decide(unit.id, "alice", Decision("correct", correction="x", checklist=checks, turn="0" * 32))
    with pytest.raises(ReviewError, match="turn is only for a correction"):
        store.decide(unit.id, "alice", Decision("approve", checklist=checks, turn=traces[1].trace_id))
    store.decide(
        unit.id, "alice", Decision("correct", correction="The fee is 5 EUR.", checklist=checks, turn=traces[1].trace_id)
    )
    assert [store.get(i).golden for i in ids] == [None, "The fee is 5 EUR.", None]
    assert store.decisions(unit.id)[-1].turn == traces[1].trace_id
    assert {store.get(i).outcome for i in ids} == {"correct"}


def test_a_correction_without_a_turn_is_for_the_latest_trace(store):
    ids = ingest(store, *(item(turn=n, conversation="c-10", tier="factual_verification") for n in range(2)))
    [unit] = session_items(store)
    checks = {k: True for k in ReviewPolicy().checklist("factual_verification", "session")}
    assert store.claim(unit.id, "alice")
    store.decide(unit.id, "alice", Decision("correct", correction="better", checklist=checks))
    assert [store.get(i).golden for i in ids] == [None, "better"]


def test_a_member_turning_red_raises_the_open_session_item(store):
    first = item(turn=0, conversation="c-11", tier=DUAL, risk="yellow")
    ingest(store, first)
    [unit] = session_items(store)
    assert unit.risk_tier == "yellow"
    late = IngestItem(first.trace_id, DUAL, "red", ["rule:refund"], [item(turn=0, conversation="c-11").spans[0]])
    ingest(store, late)
    raised = store.get(unit.id)
    assert (raised.risk_tier, raised.reasons) == ("red", ["sampled", "rule:refund"])


def test_a_session_item_key_is_never_merged_into_as_a_trace(store):
    ingest(store, item(turn=0, conversation="c-12", tier=DUAL))
    [unit] = session_items(store)
    with pytest.raises(ReviewError, match="session item's key"):
        ingest(store, IngestItem(unit.trace_id, "spot_check", "green", [], item().spans))
    assert store.get(unit.id).spans == []


def test_traces_of_one_session_ingested_at_once_by_replicas_join_one_session_item(db_url):
    """Replicas sending turns of one conversation at the same moment: one session item, every turn a member of it."""
    stores = [ReviewStore(db_url) for _ in range(4)]
    stores[0].migrate()
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def send(store: ReviewStore, n: int) -> None:
        barrier.wait()
        try:
            ingest(store, item(turn=n, conversation="c-race", tier=DUAL))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        [unit] = stores[0].list(kind="session")
        assert len(stores[0].members(unit.id)) == len(stores)
        assert {t.session_item_id for t in stores[0].list(kind="trace")} == {unit.id}
    finally:
        for store in stores:
            store.shutdown()


def test_a_correction_without_a_turn_is_for_the_latest_turn_in_time_even_when_it_arrived_first(store):
    """A sampler keeping a red session's earlier traces sends them after the red one: arrival is not turn order."""
    turns = [item(turn=n, conversation="c-13", tier="factual_verification") for n in range(3)]
    ids = ingest(store, turns[2], turns[0], turns[1])
    [unit] = session_items(store)
    assert [m.trace_id for m in store.members(unit.id)] == [t.trace_id for t in turns]
    checks = {k: True for k in ReviewPolicy().checklist("factual_verification", "session")}
    assert store.claim(unit.id, "alice")
    store.decide(unit.id, "alice", Decision("correct", correction="latest", checklist=checks))
    assert store.get(ids[0]).golden == "latest" and store.decisions(unit.id)[-1].turn == turns[2].trace_id

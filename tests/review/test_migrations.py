"""The review store's Alembic migrations: an empty database and one at an older revision both reach the head."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from spanguard.review.approvals import ApprovalStore, NewApproval
from spanguard.review.store import Base, Decision, ReviewStore

HEAD = "0007"


def test_an_empty_database_is_migrated_to_the_head_and_matches_the_models(db_url):
    store = ReviewStore(db_url)
    assert store.revision() is None
    store.migrate()
    assert store.revision() == HEAD
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # Only nullability/defaults may differ in ways autogenerate reports as no-ops; tables and columns must match.
    structural = [d for d in differences if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert structural == []
    store.migrate()  # again: nothing to do
    assert store.revision() == HEAD
    store.shutdown()


def test_an_existing_database_keeps_its_items_through_the_upgrade(db_url):
    store = ReviewStore(db_url)
    store.migrate("0001")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_items (trace_id, tier, risk_tier, risk_rank, reasons, spans, status, created_at,"
                " updated_at, approvals) VALUES (:t, 'spot_check', 'yellow', 1, :r, :s, 'pending', :now, :now, '[]')"
            ),
            {
                "t": "old",
                "r": json.dumps(["loop", "pii"]),
                "s": json.dumps([{"span_id": "a", "name": "chat"}]),
                "now": "2026-11-01 10:00:00",
            },
        )
    store.migrate()
    assert store.revision() == HEAD
    [item] = store.list()
    assert (item.trace_id, item.reasons, item.status) == ("old", ["loop", "pii"], "pending")
    assert [i.trace_id for i in store.list(reason="pii")] == ["old"]  # the filter column was filled in
    assert store.claim(item.id, "alice")
    store.decide(
        item.id,
        "alice",
        Decision("approve", checklist={"factual_accuracy": True, "policy_adherence": True, "tone": True}),
    )
    assert store.get(item.id).status == "done"
    store.shutdown()


def test_a_database_from_before_approvals_gets_their_tables_and_keeps_its_items(db_url):
    store = ReviewStore(db_url)
    store.migrate("0002")
    # In SQL: today's models map columns that later migrations add (0005's sessions), which a 0002 table lacks.
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_items (trace_id, tier, risk_tier, risk_rank, reasons, spans, status, created_at,"
                " updated_at, approvals) VALUES (:t, 'spot_check', 'green', 0, '[]', :s, 'pending', :now, :now, '[]')"
            ),
            {"t": "t" * 32, "s": json.dumps([{"span_id": "a", "name": "chat"}]), "now": "2026-11-01 10:00:00"},
        )
    store.migrate()
    assert store.revision() == HEAD
    assert [item.trace_id for item in store.list()] == ["t" * 32]
    approvals = ApprovalStore(store)
    new = NewApproval(request_key="k", action="issue_refund", tier="red", digest="a" * 64, arguments={"n": 1})
    request, created = approvals.create(new, "agent")
    assert created and approvals.get(request.id).schema_version == 1
    assert [entry.action for entry in approvals.audit(request.id)] == ["create"]
    store.shutdown()


def test_a_database_from_before_review_by_session_keeps_every_item_as_a_trace_item(db_url):
    store = ReviewStore(db_url)
    store.migrate("0005")
    with store.engine.begin() as connection:
        for n, (tier, status) in enumerate(
            [("dual_approval", "pending"), ("dual_approval", "done"), ("spot_check", "claimed")]
        ):
            spans = [{"span_id": f"{n:016x}", "name": "chat", "attributes": {"gen_ai.conversation.id": "conv-old"}}]
            connection.execute(
                text(
                    "INSERT INTO review_items (trace_id, tier, risk_tier, risk_rank, reasons, spans, status,"
                    " created_at, updated_at, approvals, conversation_id, session_key) VALUES (:t, :tier, 'red', 2,"
                    " '[]', :s, :status, :now, :now, '[]', 'conv-old', 'conv-old')"
                ),
                {
                    "t": f"{n:032x}",
                    "tier": tier,
                    "status": status,
                    "s": json.dumps(spans),
                    "now": "2026-11-01 10:00:00",
                },
            )
        connection.execute(
            text(
                "INSERT INTO decisions (item_id, reviewer, outcome, ratings, checklist, at) VALUES"
                " (2, 'alice', 'approve', '{}', '{}', '2026-11-01 10:01:00')"
            )
        )
    store.migrate()
    assert store.revision() == HEAD
    items = store.list(kind="trace")
    assert [(i.trace_id, i.kind, i.session_item_id, i.status) for i in items] == [
        (f"{0:032x}", "trace", None, "pending"),
        (f"{1:032x}", "trace", None, "done"),
        (f"{2:032x}", "trace", None, "claimed"),
    ]
    assert store.list(kind="session") == [] and [d.turn for d in store.decisions(2)] == [None]
    # The next turn of that conversation opens its first session item, which takes in the trace still waiting.
    spans = [{"span_id": "f" * 16, "name": "chat", "attributes": {"gen_ai.conversation.id": "conv-old"}}]
    store.ingest("e" * 32, tier="dual_approval", risk_tier="green", reasons=[], spans=spans, actor="collector")
    [unit] = store.list(kind="session")
    assert [m.trace_id for m in store.members(unit.id)] == [f"{0:032x}", "e" * 32]
    store.shutdown()

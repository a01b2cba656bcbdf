"""Sessions in the review store and over HTTP (docs/review.md, "Sessions"), on SQLite and on PostgreSQL: the traces of
one conversation listed and opened together, and the 0005 migration that backfills sessions of existing items."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from approvals_helpers import Service, start_service, stop_service
from sessions_helpers import SECOND, T0, item, span
from sqlalchemy import event, text

from spanguard.review.sessions import SessionStore
from spanguard.review.store import IngestItem, NotFound, ReviewError, ReviewStore


@pytest.fixture
def store(db_url) -> Iterator[ReviewStore]:
    store = ReviewStore(db_url)
    store.migrate()
    yield store
    store.shutdown()


def ingest(store: ReviewStore, *items: IngestItem) -> None:
    store.ingest_many(list(items), actor="collector")


# -- the store -------------------------------------------------------------------------------------------------------


def test_the_traces_of_one_conversation_open_as_one_session_in_time_order(store):
    turns = [
        item(
            turn=2,
            conversation="conv-1",
            user="u-1",
            tier="dual_approval",
            risk="red",
            reasons=("refund",),
            model="gpt-4o-mini-2024-07-18",
        ),
        item(turn=0, conversation="conv-1", user="u-1", reasons=("sampled",)),
        item(
            turn=1,
            conversation="conv-1",
            user="u-1",
            tier="factual_verification",
            risk="yellow",
            reasons=("low_confidence", "sampled"),
        ),
    ]
    ingest(store, *turns)  # ingested out of order: the session is in the spans' time order
    ingest(store, item(conversation="conv-2"))
    session = SessionStore(store).get("conv-1")
    assert [t.trace_id for t in session.traces] == [turns[1].trace_id, turns[2].trace_id, turns[0].trace_id]
    assert [(t.tier, t.risk_tier) for t in session.traces] == [
        ("spot_check", "green"),
        ("factual_verification", "yellow"),
        ("dual_approval", "red"),
    ]
    assert [t.reasons for t in session.traces] == [["sampled"], ["low_confidence", "sampled"], ["refund"]]
    assert (session.tier, session.risk_tier, session.turns) == ("dual_approval", "red", 3)
    assert session.reasons == ["sampled", "low_confidence", "refund"]  # every trace's, in the session's order
    assert set(session.models) == {"gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"}
    assert (session.conversation_id, session.user_id) == ("conv-1", "u-1")
    assert session.duration_s == 22.0  # first start (turn 0) to last end (turn 2 + 2 s)
    assert all(t.spans for t in session.traces) and session.statuses == {"pending": 3}


def test_opening_a_session_is_two_queries_whatever_its_length(store):
    ingest(store, *(item(turn=n, conversation="conv-q") for n in range(5)))
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert SessionStore(store).get("conv-q").turns == 5
    assert len([s for s in statements if "review_items" in s]) == 2  # its traces, then its session items
    statements.clear()
    assert len(SessionStore(store).list()) == 1
    assert len([s for s in statements if "review_items" in s]) == 3  # the page of keys, their traces, their reviews


def test_a_trace_without_a_conversation_id_is_a_session_of_its_own(store):
    alone = item()
    ingest(store, alone, item(conversation="conv-1"))
    session = SessionStore(store).get(alone.trace_id)
    assert (session.key, session.conversation_id, session.turns) == (alone.trace_id, None, 1)
    assert {s.key for s in SessionStore(store).list()} == {alone.trace_id, "conv-1"}


def test_a_trace_whose_later_spans_bring_the_conversation_id_joins_its_session(store):
    first = item(turn=0, conversation="conv-1")
    late = item(turn=1)  # its first spans carry no conversation id: a session of its own for now
    ingest(store, first, late)
    assert SessionStore(store).get(late.trace_id).turns == 1
    root = span(late.trace_id, start=T0 + 10 * SECOND, end=T0 + 13 * SECOND, conversation="conv-1", user="u-9")
    ingest(store, IngestItem(late.trace_id, "spot_check", "green", [], [root]))
    session = SessionStore(store).get("conv-1")
    assert [t.trace_id for t in session.traces] == [first.trace_id, late.trace_id]
    assert session.user_id == "u-9"
    with pytest.raises(NotFound, match=late.trace_id):
        SessionStore(store).get(late.trace_id)


def test_a_conversation_id_that_is_no_id_leaves_the_trace_alone_and_keeps_its_spans(store):
    odd = item(conversation="x" * 201)
    control = item(conversation="conv\n1")
    ingest(store, odd, control)
    for new in (odd, control):
        session = SessionStore(store).get(new.trace_id)
        assert session.conversation_id is None
        assert (
            session.traces[0].spans[0]["attributes"]["gen_ai.conversation.id"]
            == (new.spans[0]["attributes"]["gen_ai.conversation.id"])
        )


def test_sessions_are_listed_by_highest_risk_then_latest_activity_and_filtered(store):
    ingest(store, item(conversation="green-old", user="ann"))
    ingest(store, item(conversation="red", user="bob", tier="dual_approval", risk="red"))
    ingest(
        store,
        item(turn=0, conversation="yellow", user="ann", risk="yellow"),
        item(turn=1, conversation="yellow", user="ann", tier="factual_verification"),
    )
    ingest(store, item(conversation="green-new", user="cy"))
    sessions = SessionStore(store)
    assert [s.key for s in sessions.list()] == ["red", "yellow", "green-new", "green-old"]
    assert [s.key for s in sessions.list(user="ann")] == ["yellow", "green-old"]
    assert [s.key for s in sessions.list(tier="factual_verification")] == ["yellow"]
    assert [s.key for s in sessions.list(tier="dual_approval")] == ["red"]
    [red] = sessions.list(tier="dual_approval")
    assert red.traces[0].session_item_id == red.reviews[0].item_id  # reviewed by session (docs/review.md)
    assert store.claim(red.reviews[0].item_id, "alice")
    assert [s.key for s in sessions.list(status="claimed")] == ["red"]
    assert "red" not in [s.key for s in sessions.list(status=["pending", "expired"])]
    everything = [s.key for s in sessions.list()]
    assert [s.key for s in sessions.list(limit=2)] + [s.key for s in sessions.list(limit=2, offset=2)] == everything
    assert sessions.list(offset=10) == []
    [yellow] = sessions.list(user="ann", tier="factual_verification")
    assert (yellow.turns, yellow.risk_tier, yellow.tier) == (2, "yellow", "factual_verification")


def test_the_time_window_keeps_the_sessions_active_in_it(store):
    ingest(store, item(conversation="old"))
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE review_items SET created_at = :at, updated_at = :at WHERE session_key = 'old'"),
            {"at": "2026-01-01 10:00:00"},
        )
    ingest(store, item(conversation="new"))
    sessions = SessionStore(store)
    cut = dt.datetime(2026, 6, 1)
    assert [s.key for s in sessions.list(since=cut)] == ["new"]
    assert [s.key for s in sessions.list(until=cut)] == ["old"]


def test_bad_filters_and_ids_are_refused_naming_them(store):
    sessions = SessionStore(store)
    for call, name in (
        (lambda: sessions.list(status="lost"), "status"),
        (lambda: sessions.list(tier="gold"), "tier"),
        (lambda: sessions.list(user="a\x00b"), "user"),
        (lambda: sessions.get("a\x00b"), "conversation_id"),
        (lambda: sessions.get(""), "conversation_id"),
        (lambda: sessions.get("x" * 201), "conversation_id"),
    ):
        with pytest.raises(ReviewError, match=name):
            call()
    with pytest.raises(NotFound, match="no session conv-404"):
        sessions.get("conv-404")


# -- the migration ---------------------------------------------------------------------------------------------------


def test_migrating_a_0004_database_backfills_every_items_session_and_keeps_them_all(db_url):
    store = ReviewStore(db_url)
    store.migrate("0004")
    rows = [
        ("a" * 32, [span("a" * 32, start=T0, end=T0 + SECOND, conversation="conv-1", user="u-1")]),
        (
            "b" * 32,
            [
                span("b" * 32, start=T0 + 10 * SECOND, end=T0 + 11 * SECOND),
                span("b" * 32, start=T0 + 10 * SECOND, end=T0 + 12 * SECOND, conversation="conv-1"),
            ],
        ),
        ("c" * 32, [span("c" * 32, start=T0, end=T0 + SECOND)]),
        ("d" * 32, []),
    ]
    with store.engine.begin() as connection:
        for trace, spans in rows:
            connection.execute(
                text(
                    "INSERT INTO review_items (trace_id, tier, risk_tier, risk_rank, reasons, spans, status,"
                    " created_at, updated_at, approvals)"
                    " VALUES (:t, 'spot_check', 'green', 0, '[]', :s, 'pending', :now, :now, '[]')"
                ),
                {"t": trace, "s": json.dumps(spans), "now": "2026-11-01 10:00:00"},
            )
    store.migrate()
    assert store.revision() == "0007"
    with store.engine.connect() as connection:
        found = connection.execute(
            text("SELECT trace_id, conversation_id, user_id, session_key FROM review_items ORDER BY trace_id")
        ).all()
    assert [tuple(row) for row in found] == [
        ("a" * 32, "conv-1", "u-1", "conv-1"),
        ("b" * 32, "conv-1", None, "conv-1"),
        ("c" * 32, None, None, "c" * 32),
        ("d" * 32, None, None, "d" * 32),
    ]
    session = SessionStore(store).get("conv-1")
    assert [t.trace_id for t in session.traces] == ["a" * 32, "b" * 32]
    assert len(store.list()) == 4
    store.shutdown()


# -- the API ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def service(db_url) -> Iterator[Service]:
    running = start_service(db_url)
    yield running
    stop_service(running)


def post(service: Service, *items: IngestItem) -> None:
    body = {
        "items": [
            {
                "trace_id": i.trace_id,
                "tier": i.tier,
                "risk_tier": i.risk_tier,
                "reasons": list(i.reasons),
                "spans": list(i.spans),
            }
            for i in items
        ]
    }
    with service.client("ingest") as client:
        response = client.post("/v1/review-items", json=body)
    assert response.status_code == 200, response.text


def test_the_api_lists_and_opens_sessions(service):
    turns = [item(turn=n, conversation="conv-1", user="u-1", risk="red" if n == 2 else "green") for n in range(3)]
    post(service, *reversed(turns))
    post(service, item(conversation="conv-2", user="u-2"))
    with service.client("alice") as client:
        listed = client.get("/v1/sessions").json()["sessions"]
        assert [(s["key"], s["turns"], s["risk_tier"]) for s in listed] == [
            ("conv-1", 3, "red"),
            ("conv-2", 1, "green"),
        ]
        assert [s["key"] for s in client.get("/v1/sessions", params={"user": "u-2"}).json()["sessions"]] == ["conv-2"]
        assert [s["key"] for s in client.get("/v1/sessions", params={"limit": 1, "offset": 1}).json()["sessions"]] == [
            "conv-2"
        ]
        assert client.get("/v1/sessions", params={"since": "2999-01-01T00:00:00Z"}).json() == {"sessions": []}
        opened = client.get("/v1/sessions/conv-1")
        assert opened.status_code == 200, opened.text
        page = opened.json()
    assert [t["trace_id"] for t in page["traces"]] == [t.trace_id for t in turns]
    assert [t["risk_tier"] for t in page["traces"]] == ["green", "green", "red"]
    assert [t["conversation"]["turns"][0]["content"] for t in page["traces"]] == [
        "question 0",
        "question 1",
        "question 2",
    ]
    assert (page["turns"], page["risk_tier"], page["duration_s"], page["user_id"]) == (3, "red", 22.0, "u-1")


def test_the_api_answers_404_naming_the_session_and_422_for_bad_ids_and_filters(service):
    with service.client("alice") as client:
        missing = client.get("/v1/sessions/conv-404")
        assert missing.status_code == 404 and "conv-404" in missing.json()["detail"]
        for bad in ("a%00b", "x" * 201, "a%0Ab", "a%7Fb"):
            response = client.get(f"/v1/sessions/{bad}")
            assert response.status_code == 422, (bad, response.text)
            assert "conversation_id" in response.json()["detail"]
        for params, name in (
            ({"status": "lost"}, "status"),
            ({"tier": "gold"}, "tier"),
            ({"user": "a\x00b"}, "user"),
            ({"since": "yesterday"}, "since"),
            ({"limit": 0}, "limit"),
            ({"offset": -1}, "offset"),
        ):
            response = client.get("/v1/sessions", params=params)
            assert response.status_code == 422, (params, response.text)
            assert name in response.json()["detail"]


def test_the_sessions_routes_take_reviewer_tokens_as_items_do(service):
    post(service, item(conversation="conv-1"))
    for route in ("/v1/sessions", "/v1/sessions/conv-1"):
        with service.client("ingest") as client:
            assert client.get(route).status_code == 403
        with service.client(None) as client:
            assert client.get(route).status_code == 401
        with service.client("admin") as client:
            assert client.get(route).status_code == 200


def test_the_openapi_document_lists_the_sessions_routes(service):
    with service.client(None) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/sessions", "/v1/sessions/{conversation_id}"} <= set(paths)


def test_a_conversation_id_with_slashes_and_spaces_opens_its_session(service):
    """Ids are the app's own (tenant/chat/42, a URL, a path): any printable text, slashes included."""
    post(service, item(conversation="tenant-a/chat/42 x"), item(conversation="https://chat.example/c/9"))
    with service.client("alice") as client:
        for conversation in ("tenant-a/chat/42 x", "https://chat.example/c/9"):
            opened = client.get(f"/v1/sessions/{quote(conversation, safe='')}")
            assert opened.status_code == 200, (conversation, opened.text)
            assert opened.json()["conversation_id"] == conversation


def test_a_user_id_redaction_removed_is_no_user_but_its_pseudonym_is(store):
    """The collector redacts user.id by default: "<USER_ID>" would make every user one; the hash operator's is kept."""
    removed, pseudonym = (
        item(conversation="conv-r1", user="<USER_ID>"),
        item(conversation="conv-r2", user="<USER_ID:3f2a9c1b>"),
    )
    whole = item(conversation="<REDACTION_FAILED>")
    ingest(store, removed, pseudonym, whole)
    sessions = SessionStore(store)
    assert sessions.get("conv-r1").user_id is None
    assert [s.key for s in sessions.list(user="<USER_ID:3f2a9c1b>")] == ["conv-r2"]
    assert sessions.get(whole.trace_id).conversation_id is None  # a session of its own, not everyone's

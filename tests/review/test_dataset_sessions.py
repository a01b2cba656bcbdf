"""Multi-turn cases from session items, on SQLite and on PostgreSQL (docs/datasets.md, "Multi-turn cases from
sessions"): the store's export reader, the datasets routes over real HTTP, ``spanguard dataset export`` and
``spanguard gate`` running the exported multi-turn case through a Python target and an OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approvals_helpers import Service, start_service, stop_service
from fake_provider import text
from sqlalchemy import event

from spanguard.cli import main
from spanguard.exporters.datasets import SESSION_SOURCE, case_id
from spanguard.review.datasets import ExportFilter, count_sources, export_rows
from spanguard.review.store import Decision, IngestItem, ReviewStore

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
DUAL = "dual_approval"
SYSTEM = "You are a support agent."


# --- a conversation, one trace a turn ---------------------------------------------------------------------------------


def parts(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


class Conversation:
    """Traces of one conversation: turn n asks ``question n`` and answers ``answer n``, resending the history."""

    def __init__(self, conversation: str | None = None) -> None:
        self.id = conversation or f"conv-{uuid.uuid4().hex[:8]}"
        self.history: list[dict[str, Any]] = []
        self.traces: dict[int, str] = {}

    def turn(self, n: int, *, tier: str = DUAL) -> IngestItem:
        trace = uuid.uuid4().hex
        self.traces[n] = trace
        question = parts("user", f"question {n}")
        inputs = [*self.history, question]
        self.history = [*inputs, parts("assistant", f"answer {n}")]
        start = T0 + n * 10 * SECOND
        span = {
            "trace_id": trace,
            "span_id": trace[:16],
            "name": "chat gpt-4o-mini",
            "kind": "client",
            "start_time_unix_nano": start,
            "end_time_unix_nano": start + SECOND,
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.conversation.id": self.id,
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
                "gen_ai.input.messages": json.dumps(inputs),
                "gen_ai.output.messages": json.dumps([parts("assistant", f"answer {n}")]),
            },
        }
        return IngestItem(trace, tier, "yellow", ["sampled"], [span])  # type: ignore[arg-type]


def conversation_upto(n: int, *, asked: bool = True) -> list[tuple[str, str | None]]:
    """The messages of a conversation through turn ``n``'s question (``asked``) or answer."""
    said: list[tuple[str, str | None]] = [("system", SYSTEM)]
    for k in range(1, n + 1):
        said.append(("user", f"question {k}"))
        if k < n or not asked:
            said.append(("assistant", f"answer {k}"))
    return said


def said(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(m["role"], m.get("content")) for m in messages]


@pytest.fixture
def store(db_url) -> Iterator[ReviewStore]:
    store = ReviewStore(db_url)
    store.migrate()
    yield store
    store.shutdown()


def ingest(store: ReviewStore, *items: IngestItem) -> list[int]:
    return [item_id for item_id, _ in store.ingest_many(list(items), actor="collector")]


def session_item(store: ReviewStore, conversation: Conversation, *, open_only: bool = True) -> int:
    items = [i for i in store.list(kind="session") if i.conversation_id == conversation.id]
    items = [i for i in items if i.status != "done"] if open_only else items
    assert len(items) == 1, items
    return items[0].id


def decide(store: ReviewStore, item_id: int, outcome: str, who: str = "alice", **fields: Any) -> None:
    item = store.get(item_id)
    checklist = {name: True for name in store.policy.checklist(item.tier, "session")}
    if outcome in ("correct", "reject"):
        fields.setdefault("reason", "factually_incorrect")
    assert store.claim(item_id, who)
    store.decide(item_id, who, Decision(outcome, checklist=checklist, **fields))  # type: ignore[arg-type]


EVERYTHING = ExportFilter()


def lines(store: ReviewStore, kind: str = "eval", filters: ExportFilter = EVERYTHING, **kwargs) -> list[dict]:
    rows = export_rows(store, kind, filters, **kwargs)  # type: ignore[arg-type]
    return [line for line, _ in rows if line is not None]


# --- the export reader -------------------------------------------------------------------------------------------


def test_a_session_corrected_at_its_second_trace_exports_the_conversation_up_to_that_turn(store):
    chat = Conversation()
    first, second, third = chat.turn(1), chat.turn(2), chat.turn(3)
    ingest(store, second, first, third)  # ingested out of order: the spans' own times order the session
    unit = session_item(store, chat)
    decide(store, unit, "correct", correction="The corrected second answer.", turn=chat.traces[2])
    [case] = lines(store)  # one case: the members are in it, not exported again on their own
    assert said(case["input"]["messages"]) == conversation_upto(2)
    assert case["original_output"]["content"] == "answer 2"
    assert case["expected_output"] == {"role": "assistant", "content": "The corrected second answer."}
    assert case["id"] == case_id(f"review_item:{store.get(unit).trace_id}")
    source = case["source"]
    assert (source["kind"], source["item_id"], source["conversation_id"]) == (SESSION_SOURCE, unit, chat.id)
    assert source["trace_ids"] == [chat.traces[1], chat.traces[2]]
    assert source["turn"] == source["trace_id"] == chat.traces[2] and source["turns"] == 2
    [row] = lines(store, "sft")
    assert said(row["messages"]) == [*conversation_upto(2), ("assistant", "The corrected second answer.")]
    [dpo] = lines(store, "preference")
    assert said(dpo["non_preferred_output"]) == [("assistant", "answer 2")]


def test_a_correction_without_a_turn_is_for_the_latest_member(store):
    chat = Conversation()
    ingest(store, chat.turn(1), chat.turn(2), chat.turn(3))
    decide(store, session_item(store, chat), "correct", correction="Better.")
    [case] = lines(store)
    assert said(case["input"]["messages"]) == conversation_upto(3)
    assert case["source"]["turn"] == chat.traces[3] and case["source"]["turns"] == 3
    [row] = lines(store, "sft")
    assert said(row["messages"])[-1] == ("assistant", "Better.") and len(row["messages"]) == 1 + 3 * 2


def test_a_follow_up_session_items_case_starts_from_the_sessions_first_turn(store):
    chat = Conversation()
    ingest(store, chat.turn(1), chat.turn(2))
    first = session_item(store, chat)
    decide(store, first, "correct", correction="Fixed first.", turn=chat.traces[1])
    ingest(store, chat.turn(3), chat.turn(4))
    follow_up = session_item(store, chat)
    assert store.get(follow_up).follows_id == first
    decide(store, follow_up, "correct", correction="Fixed fourth.")
    earlier, later = lines(store)
    assert said(earlier["input"]["messages"]) == conversation_upto(1)
    assert earlier["expected_output"]["content"] == "Fixed first."
    # The follow-up reviews traces 3 and 4; its case holds the conversation from trace 1's first turn.
    assert said(later["input"]["messages"]) == conversation_upto(4)
    assert later["source"]["trace_ids"] == [chat.traces[n] for n in (1, 2, 3, 4)]
    assert later["expected_output"]["content"] == "Fixed fourth." and later["id"] != earlier["id"]


def test_approved_and_rejected_session_items_export_as_trace_items_do(store):
    approved, rejected = Conversation(), Conversation()
    ingest(store, approved.turn(1), approved.turn(2), rejected.turn(1))
    unit = session_item(store, approved)
    decide(store, unit, "approve", "alice")
    decide(store, unit, "approve", "bob")  # dual approval: two reviewers
    decide(store, session_item(store, rejected), "reject")
    by_outcome = {case["outcome"]: case for case in lines(store)}
    assert by_outcome["approve"]["expected_output"] is None
    assert by_outcome["approve"]["original_output"]["content"] == "answer 2"
    assert by_outcome["approve"]["source"]["reviewers"] == ["alice", "bob"]
    assert said(by_outcome["reject"]["input"]["messages"]) == conversation_upto(1)
    assert by_outcome["reject"]["expected_output"] is None
    [row] = lines(store, "sft", include_approved=True)
    assert said(row["messages"]) == conversation_upto(2, asked=False)


def test_the_unit_filter_picks_session_cases_or_single_trace_cases(store):
    chat, alone = Conversation(), Conversation()
    ingest(store, chat.turn(1), chat.turn(2), chat.turn(3))
    [lone] = ingest(store, alone.turn(1, tier="spot_check"))  # a spot check is reviewed by trace
    decide(store, session_item(store, chat), "correct", correction="Fixed.", turn=chat.traces[2])
    assert store.claim(lone, "carol")
    store.decide(
        lone, "carol", Decision("approve", checklist=dict.fromkeys(store.policy.checklist("spot_check"), True))
    )
    default = lines(store)
    assert sorted(case["source"]["kind"] for case in default) == ["review_item", SESSION_SOURCE]
    traces = lines(store, filters=ExportFilter(unit="trace"))
    assert sorted(case["source"]["trace_id"] for case in traces) == sorted([*chat.traces.values(), alone.traces[1]])
    # A member alone is its own trace: the corrected one carries the correction (its golden answer).
    corrected = next(case for case in traces if case["source"]["trace_id"] == chat.traces[2])
    assert corrected["expected_output"]["content"] == "Fixed."
    assert said(corrected["input"]["messages"]) == conversation_upto(2)  # its own call resent the history
    [session] = lines(store, filters=ExportFilter(unit="session"))
    assert session["source"]["kind"] == SESSION_SOURCE
    assert count_sources(store, ExportFilter()) == 2
    assert count_sources(store, ExportFilter(unit="trace")) == 4
    assert count_sources(store, ExportFilter(unit="session")) == 1


def test_the_reader_asks_one_query_a_batch_for_every_session_items_traces(store):
    selects: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    def queries() -> int:
        selects.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            lines(store)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        return len(selects)

    for sessions in (1, 5):
        while len(store.list(kind="session", status=["done"])) < sessions:
            chat = Conversation()
            ingest(store, chat.turn(1), chat.turn(2), chat.turn(3))
            decide(store, session_item(store, chat), "correct", correction="Fixed.")
        # One batch of items, decisions, tags and the sessions' traces; the empty read that ends it; approvals.
        assert queries() == 4 + 1 + 1, sessions
    assert len(lines(store)) == 5


def test_the_correction_of_a_session_item_is_redacted_in_every_kind(store):
    chat = Conversation()
    ingest(store, chat.turn(1), chat.turn(2))
    decide(store, session_item(store, chat), "correct", correction="Mail jane.doe@example.com.", turn=chat.traces[1])
    for kind in ("eval", "sft", "preference"):
        exported = json.dumps(lines(store, kind))
        assert "jane.doe@example.com" not in exported and "EMAIL_ADDRESS" in exported, kind


# --- the service and the command line ------------------------------------------------------------------------------


@pytest.fixture
def service(db_url) -> Iterator[Service]:
    running = start_service(db_url)
    yield running
    stop_service(running)


def ingest_http(service: Service, *items: IngestItem) -> None:
    body = [
        {"trace_id": i.trace_id, "tier": i.tier, "risk_tier": i.risk_tier, "reasons": list(i.reasons), "spans": i.spans}
        for i in items
    ]
    with service.client("ingest") as client:
        for item in body:
            response = client.post("/v1/review-items", json=item)
            assert response.status_code == 200, response.text


def test_a_session_item_is_added_to_a_dataset_and_exported_through_the_service(service, tmp_path, capsys):
    chat = Conversation()
    ingest_http(service, chat.turn(1), chat.turn(2), chat.turn(3))
    unit = session_item(service.store, chat)
    member = service.store.members(unit)[0].id
    with service.client("alice") as client:
        assert client.post("/v1/datasets/multi/cases", json={"item_id": unit, "tags": ["s"]}).status_code == 409
        decide(service.store, unit, "correct", correction="Fixed.", turn=chat.traces[2])
        added = client.post("/v1/datasets/multi/cases", json={"item_id": unit, "tags": ["multi-turn"]})
        assert added.status_code == 201, added.text
        refused = client.post("/v1/datasets/multi/cases", json={"item_id": member, "tags": []})
        assert refused.status_code == 409 and f"within session item {unit}" in refused.json()["detail"]
        listed = client.get("/v1/datasets/multi").json()["cases"]
        exported = client.get("/v1/datasets/export", params={"dataset": "multi"})
        by_unit = {
            unit_: client.get("/v1/datasets/export", params={"unit": unit_}).text.splitlines()
            for unit_ in ("trace", "session")
        }
        bad = client.get("/v1/datasets/export", params={"unit": "turn"})
    [case] = [json.loads(line) for line in exported.text.splitlines()]
    assert [c["case_id"] for c in listed] == [case["id"]] and case["tags"] == ["multi-turn"]
    assert said(case["input"]["messages"]) == conversation_upto(2)
    assert len(by_unit["trace"]) == 3 and len(by_unit["session"]) == 1
    assert bad.status_code == 422 and "query.unit" in bad.json()["detail"]
    # The command line: the same file from the store and from the service.
    base = ["dataset", "export", "--kind", "sft", "--unit", "session"]
    assert (
        main([*base, "--out", str(tmp_path / "db.jsonl"), "--db", service.store.engine.url.render_as_string(False)])
        == 0
    )
    token = service.tokens["alice"]
    assert main([*base, "--out", str(tmp_path / "api.jsonl"), "--endpoint", service.url, "--token", token]) == 0
    from_db = (tmp_path / "db.jsonl").read_text()
    assert from_db == (tmp_path / "api.jsonl").read_text()
    [row] = [json.loads(line) for line in from_db.splitlines()]
    assert said(row["messages"]) == [*conversation_upto(2), ("assistant", "Fixed.")]
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x.jsonl"), "--unit", "turn", "--endpoint", service.url]) == 2
    assert "--unit: unknown value 'turn'" in capsys.readouterr().err


# --- the gate -----------------------------------------------------------------------------------------------------

TARGETS = """
def whole(messages):
    said = [(m["role"], m.get("content")) for m in messages]
    assert said[:3] == [("system", "You are a support agent."), ("user", "question 1"), ("assistant", "answer 1")], said
    return "The corrected second answer."


def regressed(messages):
    return "answer 2"
"""


def gate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "spanguard.cli", "gate", "--dataset", "cases.jsonl", "--no-cache", *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_gate_runs_a_multi_turn_case_through_python_and_endpoint_targets(tmp_path, fake):
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    store.migrate()
    try:
        chat = Conversation()
        ingest(store, chat.turn(1), chat.turn(2), chat.turn(3))
        decide(
            store, session_item(store, chat), "correct", correction="The corrected second answer.", turn=chat.traces[2]
        )
        (tmp_path / "cases.jsonl").write_text("".join(json.dumps(case) + "\n" for case in lines(store)))
    finally:
        store.shutdown()
    (tmp_path / "targets.py").write_text(TARGETS)
    passed = gate(tmp_path, "--target", "targets.py:whole", "--report", "report.json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads((tmp_path / "report.json").read_text())["counts"]["passed"] == 1
    failed = gate(tmp_path, "--target", "targets.py:regressed")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    # An OpenAI-compatible endpoint is sent the whole conversation, every turn as its own message.
    fake.script(text("The corrected second answer."))
    endpoint = gate(tmp_path, "--target", fake.openai_base_url, "--model", "gpt-4o-mini")
    assert endpoint.returncode == 0, endpoint.stdout + endpoint.stderr
    [request] = [r for r in fake.requests if r.body and "messages" in r.body]
    assert said(request.body["messages"]) == conversation_upto(2)

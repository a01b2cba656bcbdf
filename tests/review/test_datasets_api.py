"""The datasets routes and the export, over real HTTP (uvicorn on loopback), on SQLite and on PostgreSQL; and
``spanguard dataset export`` from the store and from the service (docs/datasets.md)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from approvals_helpers import Service, approval_body, start_service, stop_service
from sqlalchemy import event, text

from spanguard.cli import main
from spanguard.exporters.datasets import case_id
from spanguard.review.datasets import ExportFilter, count_sources, export_rows
from spanguard.review.store import ReviewStore

CHECKLIST = {"factual_accuracy": True, "policy_adherence": True, "tone": True}
DUAL = {**CHECKLIST, "safety": True}
FACTUAL = {**CHECKLIST, "sources_supported": True}


@pytest.fixture
def service(db_url) -> Iterator[Service]:
    running = start_service(db_url)
    yield running
    stop_service(running)


def item_body(question: str, answer: str, *, tier: str = "spot_check", risk: str = "yellow") -> dict[str, Any]:
    trace = uuid.uuid4().hex
    inputs = [{"role": "user", "parts": [{"type": "text", "content": question}]}]
    outputs = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
    span = {
        "trace_id": trace,
        "span_id": trace[:16],
        "name": "chat gpt-4o",
        "kind": "client",
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_500_000_000,
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.input.messages": json.dumps(inputs),
            "gen_ai.output.messages": json.dumps(outputs),
        },
    }
    return {"trace_id": trace, "tier": tier, "risk_tier": risk, "reasons": ["sampled"], "spans": [span]}


def ingest(service: Service, question: str = "Capital of Australia?", answer: str = "Sydney.", **kwargs) -> dict:
    body = item_body(question, answer, **kwargs)
    with service.client("ingest") as client:
        response = client.post("/v1/review-items", json=body)
    assert response.status_code == 200, response.text
    return {"id": response.json()["items"][0]["id"], "trace_id": body["trace_id"]}


def decide(service: Service, item_id: int, outcome: str, *, who: str = "alice", **fields: Any) -> None:
    with service.client(who) as client:
        assert client.post(f"/v1/review-items/{item_id}/claim").status_code == 200
        body = {"outcome": outcome, "checklist": fields.pop("checklist", CHECKLIST), **fields}
        response = client.post(f"/v1/review-items/{item_id}/decision", json=body)
    assert response.status_code == 200, response.text


def reviewed(service: Service, outcome: str = "approve", **kwargs: Any) -> dict:
    item = ingest(service, **{k: kwargs.pop(k) for k in ("question", "answer", "tier", "risk") if k in kwargs})
    if outcome == "correct":
        kwargs.setdefault("reason", "factually_incorrect")
        kwargs.setdefault("correction", "Canberra.")
    if outcome == "reject":
        kwargs.setdefault("reason", "factually_incorrect")
    decide(service, item["id"], outcome, **kwargs)
    return item


def rejected_approval(service: Service) -> str:
    with service.client("ingest") as client:
        response = client.post("/v1/approvals", json=approval_body())
    approval_id = response.json()["id"]
    with service.client("alice") as client:
        decision = {"outcome": "reject", "reason": "over the limit"}
        assert client.post(f"/v1/approvals/{approval_id}/decision", json=decision).status_code == 200
    return approval_id


def export(service: Service, who: str = "alice", **params: Any) -> list[dict]:
    with service.client(who) as client:
        response = client.get("/v1/datasets/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "content-length" not in response.headers  # streamed (chunked), not built whole first
    return [json.loads(line) for line in response.text.splitlines()]


# --- datasets -------------------------------------------------------------------------------------------------------


def test_a_reviewed_item_is_added_once_and_adding_it_again_merges_its_tags(service):
    item = reviewed(service, "correct")
    with service.client("alice") as client:
        first = client.post("/v1/datasets/geo/cases", json={"item_id": item["id"], "tags": ["capitals"]})
        again = client.post("/v1/datasets/geo/cases", json={"item_id": item["id"], "tags": ["oceania", "capitals"]})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert again.json()["tags"] == ["capitals", "oceania"]
        assert again.json()["case_id"] == case_id(f"review_item:{item['trace_id']}")
        listed = client.get("/v1/datasets").json()
        page = client.get("/v1/datasets/geo").json()
    assert [(d["name"], d["cases"]) for d in listed["datasets"]] == [("geo", 1)]
    assert page["name"] == "geo" and page["total"] == 1
    (case,) = page["cases"]
    assert (case["item_id"], case["trace_id"], case["outcome"], case["added_by"]) == (
        item["id"],
        item["trace_id"],
        "correct",
        "alice",
    )
    assert case["preview"] == "Capital of Australia?" and case["added_at"].endswith("Z")


def test_only_reviewed_items_and_rejected_approvals_can_be_added(service):
    pending = ingest(service)
    claimed = ingest(service)
    with service.client("bob") as client:
        client.post(f"/v1/review-items/{claimed['id']}/claim")
    dual = reviewed(service, "approve", tier="dual_approval", checklist=DUAL)  # one approval of two: not done
    with service.client("ingest") as client:
        waiting = client.post("/v1/approvals", json=approval_body()).json()["id"]
    refused = rejected_approval(service)
    with service.client("alice") as client:
        for item in (pending, claimed, dual):
            response = client.post("/v1/datasets/d/cases", json={"item_id": item["id"]})
            assert response.status_code == 409 and "not reviewed yet" in response.json()["detail"]
        response = client.post("/v1/datasets/d/cases", json={"approval_id": waiting})
        assert response.status_code == 409 and "only rejected" in response.json()["detail"]
        assert client.post("/v1/datasets/d/cases", json={"item_id": 10**9}).status_code == 404
        assert client.post("/v1/datasets/d/cases", json={"approval_id": "apr_" + "x" * 22}).status_code == 404
        assert client.post("/v1/datasets/d/cases", json={"approval_id": "nope"}).status_code == 404
        added = client.post("/v1/datasets/d/cases", json={"approval_id": refused, "tags": ["refunds"]})
        assert added.status_code == 201
        assert (added.json()["outcome"], added.json()["risk_tier"]) == ("reject", "yellow")
        assert client.get("/v1/datasets/d").json()["total"] == 1


@pytest.mark.parametrize("name", ["Geo", "geo data", "-geo", "export", "a" * 65, "g%C3%A9o"])
def test_bad_dataset_names_are_refused_naming_the_path(service, name):
    item = reviewed(service)
    with service.client("alice") as client:
        response = client.post(f"/v1/datasets/{name}/cases", json={"item_id": item["id"]})
        assert response.status_code == 422
        assert "path.name" in response.json()["detail"] or "name" in response.json()["detail"]
        if name != "export":  # GET /v1/datasets/export is the export itself
            assert client.get(f"/v1/datasets/{name}").status_code == 422
        assert client.get("/v1/datasets").json()["datasets"] == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"item_id": 1, "tags": ["bad tag"]}, "tags[0]"),
        ({"item_id": 1, "tags": ["t"] * 21}, "tags"),
        ({"item_id": 1, "approval_id": "apr_x"}, "exactly one"),
        ({"tags": []}, "exactly one"),
        ({"item_id": "1x"}, "item_id"),
        ({"item_id": 0}, "item_id"),
        ({"item_id": 1, "colour": "red"}, "colour"),
        ({"item_id": 1, "tags": ["a\x00"]}, "NUL"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(service, body, where):
    with service.client("alice") as client:
        response = client.post("/v1/datasets/geo/cases", json=body)
    assert response.status_code == 422
    assert where in response.json()["detail"]


def test_too_many_tags_after_merging_are_refused(service):
    item = reviewed(service)
    with service.client("alice") as client:
        tags = [f"t{n}" for n in range(20)]
        assert client.post("/v1/datasets/geo/cases", json={"item_id": item["id"], "tags": tags}).status_code == 201
        response = client.post("/v1/datasets/geo/cases", json={"item_id": item["id"], "tags": ["one-more"]})
    assert response.status_code == 422 and "at most 20" in response.json()["detail"]


def test_datasets_need_a_reviewer_token(service):
    item = reviewed(service)
    with service.client("ingest") as client:
        assert client.post("/v1/datasets/geo/cases", json={"item_id": item["id"]}).status_code == 403
        assert client.get("/v1/datasets").status_code == 403
        assert client.get("/v1/datasets/export").status_code == 403
    with service.client(None) as client:
        assert client.get("/v1/datasets").status_code == 401
        assert client.get("/v1/datasets/export").status_code == 401
    with service.client("admin") as client:
        assert client.post("/v1/datasets/geo/cases", json={"item_id": item["id"]}).status_code == 201


def test_a_dataset_is_paginated_oldest_first_and_a_case_can_be_removed(service):
    items = [reviewed(service) for _ in range(3)]
    with service.client("alice") as client:
        ids = [client.post("/v1/datasets/geo/cases", json={"item_id": i["id"]}).json()["id"] for i in items]
        page = client.get("/v1/datasets/geo", params={"limit": 2, "offset": 1}).json()
        assert page["total"] == 3 and [c["id"] for c in page["cases"]] == ids[1:]
        assert client.get("/v1/datasets/geo", params={"limit": 0}).status_code == 422
        assert client.delete(f"/v1/datasets/geo/cases/{ids[0]}").status_code == 204
        assert client.delete(f"/v1/datasets/geo/cases/{ids[0]}").status_code == 404
        assert client.delete(f"/v1/datasets/other/cases/{ids[1]}").status_code == 404
        assert client.delete(f"/v1/datasets/geo/cases/{10**12}").status_code == 404
        assert client.get("/v1/datasets/geo").json()["total"] == 2
        assert client.get("/v1/datasets/never").status_code == 404


# --- export ---------------------------------------------------------------------------------------------------------


def test_the_export_streams_every_reviewed_item_and_rejected_approval_as_json_lines(service):
    approved = reviewed(service, "approve")
    corrected = reviewed(service, "correct", risk="red")
    rejected = reviewed(service, "reject")
    ingest(service)  # pending: never exported
    approval = rejected_approval(service)
    cases = export(service)
    assert [c["source"].get("item_id") or c["source"]["approval_id"] for c in cases] == [
        approved["id"],
        corrected["id"],
        rejected["id"],
        approval,
    ]
    assert [c["outcome"] for c in cases] == ["approve", "correct", "reject", "reject"]
    assert cases[1]["expected_output"] == {"role": "assistant", "content": "Canberra."}
    assert cases[1]["input"]["messages"] == [{"role": "user", "content": "Capital of Australia?"}]
    assert cases[3]["rejected_tool_calls"][0]["name"] == "issue_refund"
    (sft,) = export(service, kind="sft")
    assert sft["messages"][-1] == {"role": "assistant", "content": "Canberra."}
    assert len(export(service, kind="sft", include_approved="true")) == 2
    (dpo,) = export(service, kind="preference")
    assert dpo["non_preferred_output"] == [{"role": "assistant", "content": "Sydney."}]


def test_export_filters_by_tier_outcome_time_dataset_and_tag(service):
    spot = reviewed(service, "approve")
    red = reviewed(service, "correct", risk="red", tier="factual_verification", checklist=FACTUAL)
    tagged = reviewed(service, "reject")
    approval = rejected_approval(service)
    with service.client("alice") as client:
        client.post("/v1/datasets/geo/cases", json={"item_id": red["id"], "tags": ["capitals"]})
        client.post("/v1/datasets/geo/cases", json={"item_id": tagged["id"], "tags": ["rude"]})
        client.post("/v1/datasets/other/cases", json={"item_id": spot["id"], "tags": ["capitals"]})
        client.post("/v1/datasets/other/cases", json={"approval_id": approval, "tags": ["refunds"]})

    def ids(**params: Any) -> list[Any]:
        return [c["source"].get("item_id") or c["source"].get("approval_id") for c in export(service, **params)]

    assert ids(tier="factual_verification") == [red["id"]]
    assert ids(tier="red") == [red["id"]]
    assert ids(tier="yellow") == [spot["id"], tagged["id"], approval]  # an approval's tier is its risk tier
    assert ids(tier="spot_check,red") == [spot["id"], red["id"], tagged["id"]]
    assert ids(outcome="reject") == [tagged["id"], approval]
    assert ids(outcome="approve,correct") == [spot["id"], red["id"]]
    assert ids(dataset="geo") == [red["id"], tagged["id"]]
    assert ids(tag="capitals") == [spot["id"], red["id"]]
    assert ids(dataset="geo", tag="capitals") == [red["id"]]
    assert ids(tag="refunds") == [approval]
    assert ids(since="2000-01-01") == [spot["id"], red["id"], tagged["id"], approval]
    assert ids(since="2999-01-01T00:00:00Z") == []
    assert ids(dataset="empty") == []
    (case,) = export(service, dataset="other", tag="capitals")
    assert case["tags"] == ["capitals"]


def test_exporting_again_gives_the_same_lines_and_ids(service):
    first_items = [reviewed(service, "correct"), reviewed(service, "approve")]
    with service.client("alice") as client:
        client.post("/v1/datasets/geo/cases", json={"item_id": first_items[0]["id"], "tags": ["a"]})
        first = client.get("/v1/datasets/export").content
        assert client.get("/v1/datasets/export").content == first
    reviewed(service, "reject")
    again = export(service)
    assert [c["id"] for c in again[:2]] == [json.loads(line)["id"] for line in first.splitlines()]
    assert len({c["id"] for c in again}) == 3
    assert again[0]["id"] == case_id(f"review_item:{first_items[0]['trace_id']}")


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"kind": "csv"}, "kind"),
        ({"tier": "purple"}, "query.tier"),
        ({"outcome": "maybe"}, "query.outcome"),
        ({"since": "last tuesday"}, "query.since"),
        ({"dataset": "Bad Name"}, "query.dataset"),
        ({"tag": "bad tag"}, "query.tag"),
        ({"tag": "a\x00"}, "NUL"),
        ({"include_approved": "perhaps"}, "include_approved"),
    ],
)
def test_bad_export_parameters_are_422_naming_them(service, params, where):
    with service.client("alice") as client:
        response = client.get("/v1/datasets/export", params=params)
    assert response.status_code == 422
    assert where in response.json()["detail"]


def test_the_reader_asks_three_queries_a_batch_not_one_per_item(service):
    for outcome in ("approve", "correct", "reject", "approve", "correct", "approve", "reject"):
        reviewed(service, outcome)
    rejected_approval(service)
    selects: list[str] = []
    reader = threading.get_ident()

    # Only the reader's own statements: the service's sweeper reads approval requests on its own thread meanwhile.
    def count(_conn, _cursor, statement, *_args) -> None:
        if threading.get_ident() == reader and statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(service.store.engine, "before_cursor_execute", count)
    try:
        lines = [line for line, _ in export_rows(service.store, "eval", ExportFilter(), batch=3)]
        small = len(selects)
        selects.clear()
        assert len([line for line, _ in export_rows(service.store, "eval", ExportFilter(), batch=1000)]) == 8
        large = len(selects)
    finally:
        event.remove(service.store.engine, "before_cursor_execute", count)
    assert len(lines) == 8
    # Items: 3 batches of (items, decisions, tags) and the empty read that ends them; approvals: 1 batch of
    # (requests, decisions, tags) and its end.
    assert small == 3 * 3 + 1 + 3 + 1
    assert large == 3 + 1 + 3 + 1
    assert count_sources(service.store, ExportFilter()) == 8
    assert count_sources(service.store, ExportFilter(), "preference") == 2
    assert count_sources(service.store, ExportFilter(), "sft", include_approved=True) == 5
    assert count_sources(service.store, ExportFilter(outcomes=("reject",)), "sft") == 0


# --- the command line -----------------------------------------------------------------------------------------------


def test_the_cli_exports_the_same_file_from_the_store_and_from_the_service(service, tmp_path, capsys):
    reviewed(service, "correct")
    reviewed(service, "approve")
    rejected_approval(service)
    from_db, from_service = tmp_path / "db.jsonl", tmp_path / "service.jsonl"
    assert main(["dataset", "export", "--db", service.store.url, "--out", str(from_db)]) == 0
    assert "wrote 3 eval line(s) from 3 reviewed source(s)" in capsys.readouterr().err
    token = service.tokens["alice"]
    arguments = ["dataset", "export", "--endpoint", service.url, "--token", token, "--out", str(from_service)]
    assert main(arguments) == 0
    assert from_db.read_bytes() == from_service.read_bytes()
    assert len(from_db.read_text().splitlines()) == 3
    assert main([*arguments[:-1], str(tmp_path / "sft.jsonl"), "--kind", "sft", "--outcome", "correct"]) == 0
    (sft,) = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert sft["messages"][-1]["content"] == "Canberra."


def test_a_cli_export_replaces_the_file_whole_and_a_failed_one_leaves_it(service, tmp_path, capsys):
    reviewed(service, "approve")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "cases.jsonl"
    out.write_text("old content\n" * 1000)
    assert main(["dataset", "export", "--db", service.store.url, "--out", str(out)]) == 0
    first = out.read_bytes()
    assert b"old content" not in first and len(first.splitlines()) == 1
    assert main(["dataset", "export", "--db", service.store.url, "--out", str(out)]) == 0
    assert out.read_bytes() == first  # idempotent
    arguments = ["dataset", "export", "--endpoint", service.url, "--token", "sgr_wrong", "--out", str(out)]
    assert main(arguments) == 2
    assert out.read_bytes() == first
    assert os.listdir(tmp_path / "out") == ["cases.jsonl"]  # no temporary file left behind
    capsys.readouterr()


def test_a_progress_bar_is_drawn_on_a_terminal_and_not_otherwise(service, tmp_path):
    for _ in range(3):
        reviewed(service)
    command = [sys.executable, "-m", "spanguard.cli", "dataset", "export", "--db", service.store.url]
    leader, follower = pty.openpty()
    try:
        on_terminal = subprocess.run(
            [*command, "--out", str(tmp_path / "a.jsonl")], stderr=follower, stdout=subprocess.DEVNULL, timeout=120
        )
        os.close(follower)
        drawn = b""
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    piped = subprocess.run([*command, "--out", str(tmp_path / "b.jsonl")], capture_output=True, timeout=120)
    assert on_terminal.returncode == 0 and piped.returncode == 0
    assert b"exporting" in drawn and b"3/3" in drawn
    assert piped.stderr.decode().splitlines() == [
        f"wrote 3 eval line(s) from 3 reviewed source(s) to {tmp_path / 'b.jsonl'}"
    ]
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "yesterday"], "--since: not an ISO 8601"),
        (["--tier", "purple"], "--tier: unknown value 'purple'"),
        (["--dataset", "Bad"], "--dataset:"),
        (["--token", "t"], "--token applies to --endpoint only"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(service, tmp_path, capsys, extra, message):
    assert main(["dataset", "export", "--db", service.store.url, "--out", str(tmp_path / "x.jsonl"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"spanguard dataset: {message}") and error.count("\n") == 1


def test_cli_errors_about_the_source_and_the_destination_are_one_line_and_exit_2(service, tmp_path, capsys):
    out = str(tmp_path / "x.jsonl")
    cases = [
        (["--db", f"sqlite:///{tmp_path / 'none.db'}", "--out", out], "no review store at"),
        (["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", "--out", out], "cannot read the review store"),
        (["--db", "mysql://x", "--out", out], "db:"),
        (["--endpoint", service.url, "--out", out], "--endpoint needs a reviewer token"),
        (["--endpoint", service.url, "--token", service.tokens["ingest"], "--out", out], "refused the token (403"),
        (["--endpoint", "ftp://example.org", "--token", "t", "--out", out], "must be an http:// or https:// URL"),
        (["--endpoint", "http://127.0.0.1:1", "--token", "t", "--out", out], "cannot read from the review service"),
        (["--db", service.store.url, "--out", str(tmp_path / "missing" / "x.jsonl")], "no folder"),
        (["--db", service.store.url, "--out", str(tmp_path)], "is a directory"),
    ]
    for arguments, message in cases:
        assert main(["dataset", "export", *arguments]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and "Traceback" not in error


def test_exporting_from_a_store_before_the_datasets_migration_says_to_migrate(tmp_path, capsys):
    store = ReviewStore(f"sqlite:///{tmp_path / 'old.db'}")
    store.migrate("0003")
    body = item_body("Capital of Australia?", "Sydney.")
    # In SQL: today's models map columns that later migrations add (0005's sessions), which a 0003 table lacks.
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_items (id, trace_id, tier, risk_tier, risk_rank, reasons, spans, status, outcome,"
                " created_at, updated_at, decided_at, approvals) VALUES (1, :t, 'spot_check', 'green', 0, '[]', :s,"
                " 'done', 'approve', :now, :now, :now, '[]')"
            ),
            {"t": body["trace_id"], "s": json.dumps(body["spans"]), "now": "2026-11-01 10:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO decisions (item_id, reviewer, outcome, ratings, checklist, at)"
                " VALUES (1, 'alice', 'approve', '{}', :c, :now)"
            ),
            {"c": json.dumps(CHECKLIST), "now": "2026-11-01 10:00:00"},
        )
    store.shutdown()
    arguments = ["dataset", "export", "--db", f"sqlite:///{tmp_path / 'old.db'}", "--out", str(tmp_path / "x.jsonl")]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert "run `spanguard review migrate` on it" in error and error.count("\n") == 1


def test_what_reviewers_typed_is_redacted_in_every_export_kind(service):
    """The store redacted the telemetry; a correction or a reason a reviewer typed may still hold an address."""
    reviewed(
        service,
        "correct",
        correction="Write to jane.doe@example.com or call 212-555-0134.",
        reason_text="the agent leaked 4111 1111 1111 1111",
    )
    for kind in ("eval", "sft", "preference"):
        text = json.dumps(export(service, kind=kind))
        assert "jane.doe@example.com" not in text and "212-555-0134" not in text
        assert "4111 1111 1111 1111" not in text
        assert "<EMAIL_ADDRESS>" in text or "EMAIL_ADDRESS" in text

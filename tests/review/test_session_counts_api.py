"""GET /v1/review-items gives a session item the number of traces it reviews (docs/review.md, "Review by session"),
as its list, detail, release and earlier-items answers all do, on SQLite and PostgreSQL; trace items have none."""

from __future__ import annotations

from approvals_helpers import start_service, stop_service
from sessions_helpers import item


def _ingest(client, **options) -> int:
    made = item(**options)
    body = {
        "trace_id": made.trace_id,
        "tier": made.tier,
        "risk_tier": made.risk_tier,
        "reasons": made.reasons,
        "spans": made.spans,
    }
    response = client.post("/v1/review-items", json=body)
    assert response.status_code == 200, response.text
    return response.json()["items"][0]["id"]


def test_a_session_item_counts_its_traces(db_url):
    service = start_service(db_url)
    try:
        with service.client("ingest") as ingest, service.client("alice") as alice:
            traces = [_ingest(ingest, turn=n, conversation="c-1", tier="dual_approval") for n in range(3)]
            [unit] = alice.get("/v1/review-items", params={"kind": "session"}).json()["items"]
            assert (unit["kind"], unit["traces"]) == ("session", 3)
            listed = alice.get("/v1/review-items", params={"kind": "trace"}).json()["items"]
            assert {t["id"]: t["traces"] for t in listed} == dict.fromkeys(traces)
            assert alice.get(f"/v1/review-items/{traces[0]}").json()["traces"] is None

            assert alice.post(f"/v1/review-items/{unit['id']}/claim").json()["traces"] == 3
            assert alice.post(f"/v1/review-items/{unit['id']}/release").json()["traces"] == 3
            assert alice.post(f"/v1/review-items/{unit['id']}/claim").status_code == 200
            checks = dict.fromkeys(alice.get(f"/v1/review-items/{unit['id']}").json()["checklist"], True)
            decision = {"outcome": "correct", "correction": "better", "checklist": checks}
            assert alice.post(f"/v1/review-items/{unit['id']}/decision", json=decision).status_code == 200

            # A follow-up counts only its own trace; the earlier item it shows keeps its three.
            later = _ingest(ingest, turn=3, conversation="c-1", tier="dual_approval")
            follow_up = service.store.get(later).session_item_id
            detail = alice.get(f"/v1/review-items/{follow_up}").json()
            assert detail["traces"] == 1 and detail["follows_id"] == unit["id"]
            assert [(e["id"], e["traces"]) for e in detail["session"]["earlier"]] == [(unit["id"], 3)]
    finally:
        stop_service(service)

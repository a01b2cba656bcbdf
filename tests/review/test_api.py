"""The review API over real HTTP (uvicorn on loopback), on SQLite and on PostgreSQL: the same tests for both."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from otlp_logs import attributes_of

from spanguard.review.cli import ReviewServer
from spanguard.review.config import ReviewPolicy, ServiceConfig
from spanguard.review.store import ReviewStore
from spanguard.review.verdicts import VerdictsConfig

CHECKLIST = {"factual_accuracy": True, "policy_adherence": True, "tone": True}
DUAL_CHECKLIST = {"factual_accuracy": True, "policy_adherence": True, "safety": True, "tone": True}


@dataclass
class Service:
    """A running review service with a token of each role."""

    url: str
    store: ReviewStore
    tokens: dict[str, str]

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def make_service(db_url) -> Iterator:
    running: list[tuple[ReviewServer, ReviewStore]] = []

    def start(**settings) -> Service:
        config = ServiceConfig(db=db_url, **settings)
        store = ReviewStore(db_url, config.policy)
        store.migrate()
        tokens = {
            "ingest": store.create_token("collector", "ingest"),
            "alice": store.create_token("alice", "reviewer"),
            "bob": store.create_token("bob", "reviewer"),
            "admin": store.create_token("root", "admin"),
        }
        server = ReviewServer(config, store, port=0)
        server.start()
        running.append((server, store))
        return Service(f"http://127.0.0.1:{server.port}", store, tokens)

    yield start
    for server, store in running:
        server.shutdown()
        store.shutdown()


@pytest.fixture
def service(make_service) -> Service:
    return make_service()


def trace_id() -> str:
    return uuid.uuid4().hex


def item_body(trace: str, *, tier: str = "spot_check", risk: str = "yellow", spans: tuple[str, ...] = ("a",)) -> dict:
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "When does it arrive?"}]}]',
        "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "Monday."}],'
        ' "finish_reason": "stop"}]',
    }
    return {
        "trace_id": trace,
        "tier": tier,
        "risk_tier": risk,
        "reasons": ["unpinned_model"],
        "spans": [
            {
                "trace_id": trace,
                "span_id": f"{n:016x}",
                "name": "chat gpt-4o",
                "kind": "client",
                "start_time_unix_nano": 1_700_000_000_000_000_000 + n,
                "end_time_unix_nano": 1_700_000_000_500_000_000 + n,
                "attributes": chat,
            }
            for n in (int.from_bytes(s.encode(), "big") for s in spans)
        ],
    }


def ingest(service: Service, **kwargs) -> int:
    with service.client("ingest") as client:
        response = client.post("/v1/review-items", json=item_body(trace_id(), **kwargs))
    assert response.status_code == 200, response.text
    return response.json()["items"][0]["id"]


# -- behaviour --------------------------------------------------------------------------------------------------------


def test_ingestion_is_idempotent_by_trace_id_and_later_spans_merge_in(service):
    trace = trace_id()
    with service.client("ingest") as client:
        first = client.post("/v1/review-items", json=item_body(trace, spans=("a", "b"))).json()["items"][0]
        again = client.post("/v1/review-items", json=item_body(trace, spans=("a", "b"))).json()["items"][0]
        batch = client.post("/v1/review-items", json={"items": [item_body(trace, spans=("b", "c"))]}).json()
    assert first["created"] and not again["created"] and not batch["items"][0]["created"]
    assert first["id"] == again["id"] == batch["items"][0]["id"]
    with service.client("alice") as client:
        item = client.get(f"/v1/review-items/{first['id']}").json()
        listed = client.get("/v1/review-items").json()["items"]
    assert item["spans"] == 3 and [i["id"] for i in listed] == [first["id"]]
    assert item["conversation"]["turns"][0]["content"] == "When does it arrive?"
    assert item["models"] == ["gpt-4o-2024-08-06"] and item["preview"] == "When does it arrive?"


def test_the_queue_is_ordered_by_risk_then_age_and_filtered(service):
    green = ingest(service, risk="green")
    red = ingest(service, risk="red", tier="dual_approval")
    yellow = ingest(service, risk="yellow", tier="factual_verification")
    with service.client("alice") as client:
        assert [i["id"] for i in client.get("/v1/review-items").json()["items"]] == [red, yellow, green]
        by_tier = client.get("/v1/review-items", params={"tier": "dual_approval"}).json()["items"]
        assert [i["id"] for i in by_tier] == [red]
        assert client.get("/v1/review-items", params={"status": "done"}).json()["items"] == []
        by_model = client.get("/v1/review-items", params={"model": "gpt-4o-2024-08-06"}).json()["items"]
        assert len(by_model) == 3
        assert client.get("/v1/review-items", params={"reason": "nope"}).json()["items"] == []
        assert len(client.get("/v1/review-items", params={"since": "2000-01-01T00:00:00Z"}).json()["items"]) == 3


def test_two_concurrent_claimers_never_get_the_same_item(service):
    ids = [ingest(service) for _ in range(6)]
    won: dict[int, list[str]] = {i: [] for i in ids}
    barrier = threading.Barrier(2)

    def reviewer(name: str) -> None:
        with service.client(name) as client:
            barrier.wait()
            for item_id in ids:
                if client.post(f"/v1/review-items/{item_id}/claim").status_code == 200:
                    won[item_id].append(name)

    threads = [threading.Thread(target=reviewer, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(names) == 1 for names in won.values()), won


def test_claim_next_hands_out_the_riskiest_item_and_204_when_empty(service):
    ingest(service, risk="green")
    red = ingest(service, risk="red")
    with service.client("alice") as alice, service.client("bob") as bob:
        assert alice.post("/v1/review-items/claim-next").json()["id"] == red
        assert bob.post("/v1/review-items/claim-next").json()["id"] != red
        assert alice.post("/v1/review-items/claim-next").status_code == 204
        assert bob.post(f"/v1/review-items/{red}/claim").status_code == 409


def test_a_lease_expires_and_the_item_returns_to_the_queue(make_service):
    service = make_service(policy=ReviewPolicy(lease_s=0.3))
    item = ingest(service)
    with service.client("alice") as alice, service.client("bob") as bob:
        assert alice.post(f"/v1/review-items/{item}/claim").status_code == 200
        assert bob.post(f"/v1/review-items/{item}/claim").status_code == 409
        time.sleep(0.6)
        assert bob.get(f"/v1/review-items/{item}").json()["status"] == "expired"
        assert bob.post(f"/v1/review-items/{item}/claim").status_code == 200
        late = alice.post(f"/v1/review-items/{item}/decision", json={"outcome": "approve", "checklist": CHECKLIST})
        assert late.status_code == 409 and "not claimed by alice" in late.json()["detail"]


def test_dual_approval_needs_two_different_reviewers(service):
    item = ingest(service, tier="dual_approval", risk="red")
    approve = {"outcome": "approve", "checklist": DUAL_CHECKLIST}
    with service.client("alice") as alice, service.client("bob") as bob:
        assert alice.post(f"/v1/review-items/{item}/claim").status_code == 200
        first = alice.post(f"/v1/review-items/{item}/decision", json=approve).json()
        assert (first["status"], first["approvals"]) == ("pending", ["alice"])
        again = alice.post(f"/v1/review-items/{item}/claim")
        assert again.status_code == 409 and "second, different reviewer" in again.json()["detail"]
        assert bob.post(f"/v1/review-items/{item}/claim").status_code == 200
        done = bob.post(f"/v1/review-items/{item}/decision", json=approve).json()
    assert (done["status"], done["outcome"], done["approvals"]) == ("done", "approve", ["alice", "bob"])
    assert [d["reviewer"] for d in done["decisions"]] == ["alice", "bob"]


def test_a_reviewer_who_approved_cannot_claim_the_item_again_and_it_stays_free_for_a_second(service):
    item = ingest(service, tier="dual_approval", risk="red")
    approve = {"outcome": "approve", "checklist": DUAL_CHECKLIST}
    with service.client("alice") as alice, service.client("bob") as bob:
        alice.post(f"/v1/review-items/{item}/claim")
        alice.post(f"/v1/review-items/{item}/decision", json=approve)
        refused = alice.post(f"/v1/review-items/{item}/claim")
        left = bob.get(f"/v1/review-items/{item}").json()
        taken = bob.post(f"/v1/review-items/{item}/claim")
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": f"alice already approved review item {item}; a second, different reviewer must decide it"
    }
    assert (left["status"], left["lease_owner"], left["approvals"]) == ("pending", None, ["alice"])
    assert taken.status_code == 200 and taken.json()["lease_owner"] == "bob"


def test_one_rejection_ends_a_dual_approval_item(service):
    item = ingest(service, tier="dual_approval", risk="red")
    with service.client("alice") as alice:
        alice.post(f"/v1/review-items/{item}/claim")
        body = {"outcome": "reject", "reason": "unsafe", "reason_text": "medical advice", "checklist": DUAL_CHECKLIST}
        done = alice.post(f"/v1/review-items/{item}/decision", json=body).json()
    assert (done["status"], done["outcome"], done["decisions"][0]["reason"]) == ("done", "reject", "unsafe")


def test_decisions_record_ratings_checklist_comment_and_the_tokens_reviewer_in_the_audit(service):
    item = ingest(service)
    body = {
        "outcome": "correct",
        "correction": "It arrives on Tuesday.",
        "ratings": {"thumbs": "down", "likert": 2},
        "checklist": {**CHECKLIST, "factual_accuracy": False},
        "comment": "wrong day",
    }
    with service.client("alice") as alice:
        alice.post(f"/v1/review-items/{item}/claim")
        done = alice.post(f"/v1/review-items/{item}/decision", json=body).json()
        trail = alice.get("/v1/audit", params={"item": item}).json()["entries"]
    assert done["golden"] == "It arrives on Tuesday."
    [decision] = done["decisions"]
    assert decision["ratings"] == {"thumbs": "down", "likert": 2} and decision["comment"] == "wrong day"
    assert decision["reviewer"] == "alice"
    assert [(e["actor"], e["action"]) for e in trail] == [
        ("collector", "ingest"),
        ("alice", "claim"),
        ("alice", "decide:correct"),
    ]
    assert trail[-1]["before"]["status"] == "claimed" and trail[-1]["after"]["status"] == "done"


def test_the_reviewer_cannot_be_named_in_the_body(service):
    item = ingest(service)
    with service.client("alice") as alice:
        alice.post(f"/v1/review-items/{item}/claim")
        body = {"outcome": "approve", "checklist": CHECKLIST, "reviewer": "mallory"}
        response = alice.post(f"/v1/review-items/{item}/decision", json=body)
    assert response.status_code == 422 and "reviewer" in response.json()["detail"]


def test_metrics_count_requests_decisions_and_queue_sizes(service):
    item = ingest(service)
    with service.client("alice") as alice:
        alice.post(f"/v1/review-items/{item}/claim")
        alice.post(f"/v1/review-items/{item}/decision", json={"outcome": "approve", "checklist": CHECKLIST})
        text = alice.get("/metrics").text
    assert 'spanguard_review_decisions_total{outcome="approve",tier="spot_check"} 1.0' in text
    assert 'spanguard_review_items{status="done",tier="spot_check"} 1.0' in text
    assert 'spanguard_review_ingested_traces_total{result="created"} 1.0' in text
    assert "spanguard_review_claim_to_decision_seconds_count 1.0" in text
    assert 'spanguard_review_requests_total{code="200",route="/v1/review-items/{item_id}/claim"} 1.0' in text


def test_the_openapi_document_lists_every_route(service):
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    assert {
        "/v1/review-items",
        "/v1/review-items/{item_id}",
        "/v1/review-items/{item_id}/claim",
        "/v1/review-items/{item_id}/release",
        "/v1/review-items/{item_id}/decision",
        "/v1/audit",
        "/healthz",
        "/metrics",
    } <= set(paths)
    assert set(paths["/v1/review-items"]) == {"get", "post"}


def test_cors_is_closed_and_security_headers_are_set(service):
    with service.client("alice") as alice:
        preflight = alice.options(
            "/v1/review-items",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        response = alice.get("/v1/review-items", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_cors_opens_only_to_the_configured_origins(make_service):
    service = make_service(cors_origins=["https://tools.example"])
    with service.client("alice") as alice:
        allowed = alice.get("/v1/review-items", headers={"Origin": "https://tools.example"})
        other = alice.get("/v1/review-items", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://tools.example"
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in other.headers
    with pytest.raises(ValueError, match="no wildcard"):
        ServiceConfig(cors_origins=["*"])


def test_healthz_needs_no_token(service):
    response = httpx.get(f"{service.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# -- the auth matrix --------------------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/review-items", "ingest"),
    ("GET", "/v1/review-items", "review"),
    ("GET", "/v1/review-items/facets", "review"),
    ("GET", "/v1/review-items/{id}", "review"),
    ("POST", "/v1/review-items/claim-next", "review"),
    ("POST", "/v1/review-items/{id}/claim", "review"),
    ("POST", "/v1/review-items/{id}/release", "review"),
    ("POST", "/v1/review-items/{id}/decision", "review"),
    ("GET", "/v1/audit", "review"),
    ("GET", "/v1/me", "any"),
    ("GET", "/metrics", "any"),
]
ALLOWED = {"ingest": {"ingest", "admin"}, "review": {"alice", "admin"}, "any": {"ingest", "alice", "admin"}}


def test_the_auth_matrix_every_route_by_missing_invalid_and_each_roles_token(service):
    item = ingest(service)
    bodies = {
        "/v1/review-items": item_body(trace_id()),
        "/v1/review-items/{id}/decision": {"outcome": "approve", "checklist": CHECKLIST},
    }
    results = []
    for method, route, rule in ROUTES:
        for who in (None, "invalid", "ingest", "alice", "admin"):
            headers = {}
            if who == "invalid":
                headers["Authorization"] = "Bearer sgr_not-a-real-token"
            elif who is not None:
                headers["Authorization"] = f"Bearer {service.tokens[who]}"
            body = bodies.get(route)
            response = httpx.request(
                method, service.url + route.replace("{id}", str(item)), headers=headers, json=body, timeout=30
            )
            if who in (None, "invalid"):
                expected = "401"
            elif who in ALLOWED[rule]:
                expected = "ok"
            else:
                expected = "403"
            got = str(response.status_code) if response.status_code in (401, 403) else "ok"
            results.append((method, route, who, expected, got, response.status_code))
            if response.status_code == 401:
                assert response.headers.get("www-authenticate") == "Bearer"
            if response.status_code >= 400:
                assert response.json()["detail"]
    wrong = [r for r in results if r[3] != r[4]]
    assert wrong == [], wrong
    assert len(results) == len(ROUTES) * 5


# -- bad input --------------------------------------------------------------------------------------------------------


def test_bad_input_gets_a_4xx_naming_what_was_wrong_and_the_service_keeps_its_data(make_service):
    service = make_service(max_body_bytes=64 * 1024)
    item = ingest(service)
    cases = []
    with service.client("ingest") as client:
        cases.append(("invalid json", client.post("/v1/review-items", content=b"{bad", headers=_json()), 400, "JSON"))
        cases.append(
            (
                "huge body",
                client.post("/v1/review-items", content=b"[" + b" " * 100_000 + b"]", headers=_json()),
                413,
                "limit",
            )
        )
        unknown = {**item_body(trace_id()), "priority": "high"}
        cases.append(("unknown field", client.post("/v1/review-items", json=unknown), 422, "priority"))
        bad_id = {**item_body(trace_id()), "trace_id": "XYZ"}
        cases.append(("bad trace id", client.post("/v1/review-items", json=bad_id), 422, "trace_id"))
        other = item_body(trace_id())
        other["spans"][0]["trace_id"] = trace_id()
        cases.append(("span of another trace", client.post("/v1/review-items", json=other), 422, "belongs to trace"))
        cases.append(
            ("no spans", client.post("/v1/review-items", json={**item_body(trace_id()), "spans": []}), 422, "spans")
        )
        cases.append(
            (
                "not json",
                client.post("/v1/review-items", content=b"a=b", headers={"Content-Type": "text/plain"}),
                415,
                "application/json",
            )
        )
        bad_tier = {**item_body(trace_id()), "tier": "vip"}
        cases.append(("unknown tier", client.post("/v1/review-items", json=bad_tier), 422, "tier"))
    with service.client("alice") as client:
        cases.append(("unknown item", client.get("/v1/review-items/999999"), 404, "no review item 999999"))
        cases.append(("unknown item claim", client.post("/v1/review-items/999999/claim"), 404, "no review item"))
        cases.append(("non-numeric id", client.get("/v1/review-items/abc"), 422, "item_id"))
        cases.append(("unknown status", client.get("/v1/review-items", params={"status": "lost"}), 422, "status"))
        cases.append(("bad date", client.get("/v1/review-items", params={"since": "yesterday"}), 422, "since"))
        cases.append(
            (
                "decision unclaimed",
                client.post(f"/v1/review-items/{item}/decision", json={"outcome": "approve", "checklist": CHECKLIST}),
                409,
                "not claimed",
            )
        )
        client.post(f"/v1/review-items/{item}/claim")
        cases.append(
            (
                "unknown outcome",
                client.post(f"/v1/review-items/{item}/decision", json={"outcome": "maybe"}),
                422,
                "outcome",
            )
        )
        cases.append(
            (
                "reject without reason",
                client.post(f"/v1/review-items/{item}/decision", json={"outcome": "reject", "checklist": CHECKLIST}),
                422,
                "needs a reason",
            )
        )
        cases.append(
            (
                "likert out of range",
                client.post(
                    f"/v1/review-items/{item}/decision",
                    json={"outcome": "approve", "ratings": {"likert": 9}, "checklist": CHECKLIST},
                ),
                422,
                "likert",
            )
        )
        cases.append(
            (
                "checklist missing",
                client.post(f"/v1/review-items/{item}/decision", json={"outcome": "approve"}),
                422,
                "missing",
            )
        )
        cases.append(
            (
                "release by another",
                service.client("bob").post(f"/v1/review-items/{item}/release"),
                409,
                "not claimed by bob",
            )
        )
        still = client.get(f"/v1/review-items/{item}").json()
    wrong = [
        (name, r.status_code, r.text[:200])
        for name, r, status, words in cases
        if r.status_code != status or words.lower() not in r.json()["detail"].lower()
    ]
    assert wrong == []
    assert still["status"] == "claimed" and still["lease_owner"] == "alice" and still["spans"] == 1
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_item_ids_outside_64_bits_are_422_and_well_formed_unknown_ids_404_on_every_route(service):
    item = ingest(service)
    decision = {"outcome": "approve", "checklist": CHECKLIST}
    routes = [
        ("GET", "/v1/review-items/{id}", None),
        ("POST", "/v1/review-items/{id}/claim", None),
        ("POST", "/v1/review-items/{id}/release", None),
        ("POST", "/v1/review-items/{id}/decision", decision),
        ("GET", "/v1/audit?item={id}", None),
    ]
    invalid = ["99999999999999999999999", "9223372036854775808", "0", "-1", "+5", "1_0", "9" * 5000]
    unknown = ["9223372036854775807", "3000000000", "2147483648", "999999"]
    wrong = []
    with service.client("alice") as alice:
        for method, route, body in routes:
            name = "query.item" if "audit" in route else "path.item_id"
            for value in invalid:
                response = alice.request(method, route.replace("{id}", value), json=body)
                detail = response.json()["detail"]
                if response.status_code != 422 or not detail.startswith(f"{name}: Value error, not a review item id"):
                    wrong.append((method, route, value[:30], response.status_code, detail[:120]))
            for value in unknown:
                response = alice.request(method, route.replace("{id}", value), json=body)
                if (response.status_code, response.json()) != (404, {"detail": f"no review item {value}"}):
                    wrong.append((method, route, value, response.status_code, response.text[:120]))
        still = alice.get(f"/v1/review-items/{item}")
    assert wrong == []
    assert still.status_code == 200 and httpx.get(f"{service.url}/healthz").status_code == 200


NUL_PARAMETERS = [
    ("GET", "/v1/review-items", "status", "pending"),
    ("GET", "/v1/review-items", "tier", "spot_check"),
    ("GET", "/v1/review-items", "reason", "unpinned_model"),
    ("GET", "/v1/review-items", "model", "gpt-4o-2024-08-06"),
    ("GET", "/v1/review-items", "since", "2000-01-01T00:00:00Z"),
    ("GET", "/v1/review-items", "until", "2100-01-01T00:00:00Z"),
    ("GET", "/v1/review-items/facets", "status", "pending"),
    ("POST", "/v1/review-items/claim-next", "tier", "spot_check"),
]


def test_a_nul_byte_in_any_string_query_parameter_is_422_naming_it_not_a_match_of_every_item(service):
    ingest(service)
    ingest(service)
    wrong = []
    with service.client("alice") as alice:
        for method, route, name, value in NUL_PARAMETERS:
            for bad in ("\x00", value + "\x00", "\x00" + value):
                response = alice.request(method, route, params={name: bad})
                expected = f"query.{name}: Value error, must not contain a NUL byte"
                if response.status_code != 422 or not response.json()["detail"].startswith(expected):
                    wrong.append((route, name, repr(bad), response.status_code, response.text[:120]))
        assert len(alice.get("/v1/review-items", params={"reason": "unpinned_model"}).json()["items"]) == 2
        assert alice.get("/v1/review-items", params={"reason": "unpinned"}).json()["items"] == []
        left = alice.get("/v1/review-items", params={"status": "pending"}).json()["items"]
    assert wrong == []
    assert len(left) == 2  # claim-next with a NUL tier claimed nothing


def _nul_span(trace: str, span_id: str) -> dict:
    """A span with a NUL byte in its name, attribute keys and values, events, status, resource and scope."""
    [span] = item_body(trace, spans=(span_id,))["spans"]
    messages = '[{"role": "user", "parts": [{"type": "text", "content": "When\\u0000does it arrive?"}]}]'
    span["name"] = "chat\x00gpt-4o"
    span["attributes"] = {
        **span["attributes"],
        "gen_ai.input.messages": messages,  # an escaped NUL in JSON text: the preview decodes it
        "gen_ai.response.model": "gpt-4o\x00mini",
        "app.\x00key": "value",
        "app.value": "a\x00b",
        "app.nested": {"k\x00": ["x\x00", 1]},
    }
    span["events"] = [{"name": "gen_ai.\x00choice", "attributes": {"e\x00": "f\x00"}}]
    span["status"] = {"code": "error", "message": "boom\x00"}
    span["resource"] = {"service.\x00name": "agent\x00"}
    span["scope"] = {"name": "scope\x00", "version": "1\x00"}
    return span


def test_nul_bytes_in_ingested_span_content_are_stored_as_u_fffd_the_same_on_both_databases(service):
    trace = trace_id()
    body = {**item_body(trace), "reasons": ["nul\x00reason"], "spans": [_nul_span(trace, "a")]}
    with service.client("ingest") as client:
        created = client.post("/v1/review-items", json=body)
        merged = client.post("/v1/review-items", json={"items": [{**body, "spans": [_nul_span(trace, "b")]}]})
    assert created.status_code == 200, created.text
    assert merged.status_code == 200, merged.text
    item = created.json()["items"][0]["id"]
    assert merged.json()["items"][0] == {"id": item, "trace_id": trace, "created": False}
    with service.client("alice") as alice:
        detail = alice.get(f"/v1/review-items/{item}").json()
        by_model = alice.get("/v1/review-items", params={"model": "gpt-4o\ufffdmini"}).json()["items"]
        by_reason = alice.get("/v1/review-items", params={"reason": "nul\ufffdreason"}).json()["items"]
        claimed = alice.post(f"/v1/review-items/{item}/claim")
    assert (detail["spans"], detail["reasons"], detail["models"]) == (2, ["nul\ufffdreason"], ["gpt-4o\ufffdmini"])
    assert detail["preview"] == "When\ufffddoes it arrive?"
    assert [s["name"] for s in detail["conversation"]["spans"]] == ["chat\ufffdgpt-4o"] * 2
    assert [i["id"] for i in by_model] == [item] and [i["id"] for i in by_reason] == [item]
    assert claimed.status_code == 200
    stored = service.store.get(item).spans[0]
    assert stored["name"] == "chat\ufffdgpt-4o"
    attributes = stored["attributes"]
    assert (attributes["app.\ufffdkey"], attributes["app.value"]) == ("value", "a\ufffdb")
    assert attributes["app.nested"] == {"k\ufffd": ["x\ufffd", 1]}
    assert attributes["gen_ai.response.model"] == "gpt-4o\ufffdmini"
    assert "app.\x00key" not in attributes
    [event] = stored["events"]
    assert (event["name"], event["attributes"]) == ("gen_ai.\ufffdchoice", {"e\ufffd": "f\ufffd"})
    assert stored["status"] == {"code": "error", "message": "boom\ufffd"}
    assert stored["resource"] == {"service.\ufffdname": "agent\ufffd"}
    assert stored["scope"] == {"name": "scope\ufffd", "version": "1\ufffd"}


NUL_DECISIONS = [
    ("reason_text", {"outcome": "reject", "reason": "other", "reason_text": "made\x00up", "checklist": CHECKLIST}),
    ("comment", {"outcome": "approve", "checklist": CHECKLIST, "comment": "\x00"}),
    ("correction", {"outcome": "correct", "correction": "Tues\x00day", "checklist": CHECKLIST}),
    ("checklist", {"outcome": "approve", "checklist": {**CHECKLIST, "to\x00ne": True}}),
    ("reason", {"outcome": "reject", "reason": "other\x00", "checklist": CHECKLIST}),
]


def test_a_nul_byte_in_a_decisions_text_is_422_naming_the_field_and_the_item_stays_claimable(service):
    item = ingest(service)
    wrong = []
    with service.client("alice") as alice, service.client("bob") as bob:
        assert alice.post(f"/v1/review-items/{item}/claim").status_code == 200
        for field, body in NUL_DECISIONS:
            response = alice.post(f"/v1/review-items/{item}/decision", json=body)
            expected = f"body.{field}: Value error, must not contain a NUL byte (\\x00)"
            if (response.status_code, response.json()) != (422, {"detail": expected}):
                wrong.append((field, response.status_code, response.text[:160]))
        still = alice.get(f"/v1/review-items/{item}").json()
        trail = alice.get("/v1/audit", params={"item": item}).json()["entries"]
        assert alice.post(f"/v1/review-items/{item}/release").status_code == 200
        taken = bob.post("/v1/review-items/claim-next")
        decided = bob.post(f"/v1/review-items/{item}/decision", json={"outcome": "approve", "checklist": CHECKLIST})
    assert wrong == []
    assert (still["status"], still["lease_owner"], still["decisions"]) == ("claimed", "alice", [])
    assert [e["action"] for e in trail] == ["ingest", "claim"]
    assert taken.status_code == 200 and taken.json()["id"] == item
    assert decided.status_code == 200 and decided.json()["status"] == "done"
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_each_decision_and_rating_goes_back_into_otlp_linked_to_the_reviewed_trace(make_service, grpc_receiver):
    endpoint, received = grpc_receiver
    service = make_service(verdicts=VerdictsConfig(endpoint=endpoint))
    item = ingest(service)
    body = {"outcome": "approve", "ratings": {"thumbs": "up", "likert": 5}, "checklist": CHECKLIST, "comment": "fine"}
    with service.client("alice") as alice:
        alice.post(f"/v1/review-items/{item}/claim")
        reviewed = alice.post(f"/v1/review-items/{item}/decision", json=body).json()
    deadline = time.monotonic() + 30
    while len(received.records()) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    records = [record for _, _, record in received.records()]
    names = sorted(attributes_of(r)["gen_ai.evaluation.name"] for r in records)
    assert names == [
        "human_checklist.factual_accuracy",
        "human_checklist.policy_adherence",
        "human_checklist.tone",
        "human_likert",
        "human_review",
        "human_thumbs",
    ]
    assert {r.event_name for r in records} == {"gen_ai.evaluation.result"}
    assert {r.trace_id.hex() for r in records} == {reviewed["trace_id"]}
    assert {attributes_of(r)["spanguard.review.reviewer"] for r in records} == {"alice"}
    assert all("fine" not in str(attributes_of(r)) for r in records)  # the comment stays in the store


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(make_service):
    service = make_service(max_body_bytes=64 * 1024)

    def chunks():
        yield b'{"trace_id": "' + b"a" * 32 + b'", "spans": ['
        for _ in range(100):
            yield b" " * 1024

    with service.client("ingest") as client:
        response = client.post("/v1/review-items", content=chunks(), headers=_json())
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_facets_list_the_queues_filter_values_with_counts(service):
    ingest(service, tier="dual_approval", risk="red")
    ingest(service)
    with service.client("alice") as alice:
        facets = alice.get("/v1/review-items/facets", params={"status": "pending,expired"}).json()
        assert alice.get("/v1/review-items/facets", params={"status": "gone"}).status_code == 422
    assert facets == {
        "tiers": {"dual_approval": 1, "spot_check": 1},
        "risk_tiers": {"red": 1, "yellow": 1},
        "reasons": {"unpinned_model": 2},
        "models": {"gpt-4o-2024-08-06": 2},
    }


def test_a_store_that_does_not_answer_is_a_503_to_retry_not_a_crash(tmp_path):
    down = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    config = ServiceConfig(db=down)
    store = ReviewStore(down, config.policy)
    server = ReviewServer(config, store, port=0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        headers = {"Authorization": "Bearer sgr_" + "x" * 43}
        listed = httpx.get(f"{url}/v1/review-items", headers=headers, timeout=30)
        posted = httpx.post(f"{url}/v1/review-items", headers=headers, json=item_body(trace_id()), timeout=30)
        health = httpx.get(f"{url}/healthz", timeout=30)
    finally:
        server.shutdown()
        store.shutdown()
    assert listed.status_code == posted.status_code == 503 and listed.headers["retry-after"] == "5"
    assert "unavailable" in listed.json()["detail"]
    assert health.status_code == 503 and health.json() == {"status": "unavailable"}

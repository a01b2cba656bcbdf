"""``spanguard gates report``: from a real approvals store (SQLite and PostgreSQL) and from a service over HTTP on
loopback, as a table or JSON; every failure is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spanguard.cli import main
from spanguard.review.approvals import ApprovalStore, NewApproval
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.fatigue import build_report
from spanguard.review.store import ReviewStore

DIGEST = "ab" * 32


def ask(approvals: ApprovalStore, action: str, *, tier: str = "yellow", approvals_required: int = 1, **arguments):
    request, _ = approvals.create(
        NewApproval(
            request_key=str(uuid.uuid4()),
            action=action,
            tier=tier,
            digest=DIGEST,
            arguments=arguments,
            approvals_required=approvals_required,
        ),
        "agent",
    )
    return request.id


@pytest.fixture
def seeded(db_url) -> Iterator[str]:
    """A store with today's history: 22 lookups approved, a red deletion approved by two, a rejected e-mail, 20
    refunds of $10 to $200 approved, one of $913.37 edited, and one still pending."""
    store = ReviewStore(db_url)
    store.migrate()
    approvals = ApprovalStore(store)
    for n in range(22):
        approvals.decide(ask(approvals, "lookup_order", order_id=f"A-{n}"), "alice", "approve")
    deletion = ask(approvals, "delete_account", tier="red", approvals_required=2, account="c-1")
    approvals.decide(deletion, "alice", "approve")
    approvals.decide(deletion, "bob", "approve")
    approvals.decide(ask(approvals, "send_email", recipients=["x"]), "bob", "reject", reason="wrong customer")
    for n in range(20):
        approvals.decide(ask(approvals, "issue_refund", amount=10.0 * (n + 1)), "bob", "approve")
    approvals.decide(ask(approvals, "issue_refund", amount=913.37), "alice", "modify", arguments={"amount": 91.3})
    ask(approvals, "issue_refund", amount=20.0)
    store.shutdown()
    yield db_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["gates", "report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_report_from_a_real_store_as_json(seeded, capsys):
    # Two days: a test run just after midnight UTC still sees the requests it made (all "today" or "yesterday").
    code, out, err = run(capsys, "--db", seeded, "--days", "2", "--json")
    assert code == 0, err
    check_seeded_report(json.loads(out))


def check_seeded_report(report: dict) -> None:
    totals = report["totals"]
    assert (totals["requested"], totals["approved"], totals["rejected"], totals["modified"], totals["pending"]) == (
        46,
        43,
        1,
        1,
        1,
    )
    assert {row["action"]: row["tier"] for row in report["by_action"]}["delete_account"] == "red"
    assert len(report["by_day"]) == 2 and sum(day["budget_share"] for day in report["by_day"]) == pytest.approx(4.6)
    kinds = {(s["action"], s["kind"]) for s in report["suggestions"]}
    assert kinds == {("lookup_order", "green"), ("delete_account", "list_red"), ("issue_refund", "raise_threshold")}
    actions = report["suggested_policy"]["actions"]
    assert actions["delete_account"] == {"tier": "red", "approvals": 2}
    assert actions["issue_refund"] == {"tier": "yellow", "when": "amount > 500"}  # from the stored arguments
    assert report["projection"]["red_asked"] == 1
    assert "913.37" not in json.dumps(report)  # arguments are not copied into the report (a value unlike any time)


def test_the_report_as_a_table_with_the_suggested_policy_to_copy(seeded, capsys):
    code, out, err = run(capsys, "--db", seeded, "--days", "3")
    assert code == 0, err
    for text in ("approval fatigue", "per day", "per action", "per tier", "lookup_order", "suggestions"):
        assert text in out
    policy = out.split("suggested policy\n", 1)[1]
    assert "lookup_order:\n    tier: green" in policy
    assert "interventions a day" in out


def test_a_policy_file_sets_the_base_and_the_budget(seeded, tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text("budget_per_day: 30\nactions:\n  send_email: {tier: yellow, when: 'len(recipients) > 50'}\n")
    code, out, err = run(capsys, "--db", seeded, "--days", "2", "--policy", str(policy), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["budget_per_day"] == 30
    assert sum(day["budget_share"] for day in report["by_day"]) == pytest.approx(46 / 30)
    assert report["suggested_policy"]["budget_per_day"] == 30
    assert report["suggested_policy"]["actions"]["send_email"]["when"] == "len(recipients) > 50"


def test_the_review_config_gives_the_store_and_the_policy(seeded, tmp_path, capsys):
    config = tmp_path / "review.yaml"
    config.write_text(f"db: {seeded}\napprovals:\n  policy:\n    budget_per_day: 23\n")
    code, out, err = run(capsys, "--config", str(config), "--days", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["budget_per_day"] == 23
    config.write_text("approvals:\n  policy:\n    budget_per_day: 0\n")
    code, out, err = run(capsys, "--config", str(config), "--db", seeded)
    assert code == 2 and err.count("\n") == 1 and "approvals.policy.budget_per_day" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("actions:\n  pay: {tier: red, when: 'amount > 1'}\n", "policy.yaml:2:3: actions.pay: 'when' applies"),
        ("actions: [unclosed\n", "policy.yaml:2:1: YAML syntax error"),
    ],
)
def test_a_bad_policy_file_is_one_line_and_exit_2(seeded, tmp_path, capsys, text, message):
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    code, out, err = run(capsys, "--db", seeded, "--policy", str(policy))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("spanguard gates: ") and message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--db", "mysql://somewhere/db"], "must be a sqlite:///path or postgresql"),
        (["--db", "sqlite:////nonexistent/dir/review.db"], "no review store at /nonexistent/dir/review.db"),
        (["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], "cannot read approvals from"),
        (["--days", "0"], "--days must be from 1 to 366"),
        (["--endpoint", "http://127.0.0.1:1"], "needs a reviewer token"),
        (["--endpoint", "http://127.0.0.1:1", "--token", "t"], "cannot reach the review service at http://127.0.0.1:1"),
        (["--endpoint", "ftp://127.0.0.1:1", "--token", "t"], "must be an http:// or https:// URL"),
        (["--endpoint", "http://127.0.0.1:1", "--token", "t", "--policy", "p.yaml"], "apply to --db only"),
        (["--endpoint", "http://127.0.0.1:1", "--token", "t", "--config", "r.yaml"], "apply to --db only"),
        (["--db", "sqlite:///x.db", "--token", "t"], "--token applies to --endpoint only"),
    ],
)
def test_errors_are_one_line_and_exit_2(capsys, monkeypatch, argv, message):
    monkeypatch.delenv("SPANGUARD_REVIEW_TOKEN", raising=False)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("spanguard gates: ") and message in err, err


def test_a_store_without_the_approvals_table_says_to_migrate(tmp_path, capsys):
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE review_items (id INTEGER)").connection.close()
    code, _, err = run(capsys, "--db", f"sqlite:///{path}")
    assert code == 2 and err.count("\n") == 1
    assert "run `spanguard review migrate` on it" in err and "approval_requests" in err


def test_a_password_in_the_db_url_is_never_printed(capsys):
    code, _, err = run(capsys, "--db", "postgresql+psycopg://user:hunter2@127.0.0.1:1/none")
    assert code == 2 and "hunter2" not in err


# --------------------------------------------------------------------------------------------------------------------
# --endpoint


class _Answers(BaseHTTPRequestHandler):
    """Answers GET /v1/approvals/report with what the test set, after checking the bearer token."""

    status = 200
    body: bytes = b""
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != "Bearer good":
            self._send(401, b'{"detail": "unknown or revoked token"}')
        elif not self.path.startswith("/v1/approvals/report"):
            self._send(404, b'{"detail": "Not Found"}')
        else:
            self._send(type(self).status, type(self).body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answers() -> Iterator[tuple[str, type[_Answers]]]:
    """A real HTTP server on loopback standing in for the service's report route."""
    handler = type("Handler", (_Answers,), {"seen": [], "status": 200, "body": b""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_report_from_the_service_with_the_bearer_token(answers, capsys, monkeypatch):
    url, handler = answers
    handler.body = json.dumps(build_report([], days=7)).encode()
    code, out, err = run(capsys, "--endpoint", url + "/", "--token", "good", "--days", "7", "--json")
    assert code == 0, err
    assert json.loads(out)["days"] == 7
    assert handler.seen == [("/v1/approvals/report?days=7", "Bearer good")]
    monkeypatch.setenv("SPANGUARD_REVIEW_TOKEN", "good")
    code, out, err = run(capsys, "--endpoint", url, "--days", "7")
    assert code == 0 and "approval fatigue" in out


@pytest.mark.parametrize(
    ("token", "status", "body", "message"),
    [
        ("bad", 200, b"{}", "refused the token (401: unknown or revoked token)"),
        ("good", 500, b'{"detail": "boom"}', "answered 500: boom"),
        ("good", 200, b"<html>", "answered with something that is not JSON"),
        ("good", 200, b'{"days": 7}', "is not a fatigue report: generated_at: Field required"),
        ("good", 200, b"[1, 2]", "is not a fatigue report: (top level)"),
    ],
)
def test_a_refusal_or_a_bad_answer_from_the_service_is_one_line_and_exit_2(
    answers, capsys, token, status, body, message
):
    url, handler = answers
    handler.status, handler.body = status, body
    code, out, err = run(capsys, "--endpoint", url, "--token", token)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_a_report_with_a_bad_value_from_the_service_is_refused(answers, capsys):
    url, handler = answers
    report = build_report([], days=2)
    report["by_day"][0]["requested"] = -5
    handler.body = json.dumps(report).encode()
    code, _, err = run(capsys, "--endpoint", url, "--token", "good")
    assert code == 2 and "by_day.0.requested" in err


@pytest.fixture
def review_service(seeded) -> Iterator[tuple[str, dict[str, str]]]:
    """The real review service on loopback over the seeded store, with a reviewer and an ingest token."""
    config = ServiceConfig(db=seeded)
    store = ReviewStore(seeded, config.policy)
    tokens = {"reviewer": store.create_token("alice", "reviewer"), "ingest": store.create_token("agent", "ingest")}
    server = ReviewServer(config, store, port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", tokens
    finally:
        server.shutdown()
        store.shutdown()


def test_the_report_from_the_real_service(review_service, capsys):
    url, tokens = review_service
    code, out, err = run(capsys, "--endpoint", url, "--token", tokens["reviewer"], "--days", "2", "--json")
    assert code == 0, err
    check_seeded_report(json.loads(out))
    code, out, err = run(capsys, "--endpoint", url, "--token", tokens["reviewer"], "--days", "2")
    assert code == 0 and "issue_refund:\n    tier: yellow\n    when: amount > 500" in out


@pytest.mark.parametrize(("who", "status"), [("nobody", "401"), ("ingest", "403")])
def test_the_real_service_refuses_a_bad_token_or_an_agents_with_exit_2(review_service, capsys, who, status):
    url, tokens = review_service
    code, out, err = run(capsys, "--endpoint", url, "--token", tokens.get(who, "sgr_wrong"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"refused the token ({status}" in err

"""The reviewers' page's approvals view in a real browser (Chromium under Playwright) against a real review service.

One service (SQLite store, uvicorn in a thread, its timers running) for the module; requests are created through the
approvals API with an ingest token, as an agent's gate creates them, and decisions made on the page are checked
through the API. The browser and the per-test tab (fresh context, no page errors, no CSP violation) are the item
view's (test_page.py).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import test_page
from playwright.sync_api import Page, expect
from test_page import IMG, SCRIPT, SVG, Tab, sign_in

from spanguard.instrumentation.gate_digest import argument_digest
from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

browser = test_page.browser  # the item view's fixtures: one Chromium for the module, a fresh context per test
tab = test_page.tab

HOUR = 3600.0


@dataclass
class Service:
    base: str
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)

    def create(
        self,
        action: str,
        arguments: dict[str, Any],
        *,
        tier: str = "yellow",
        approvals: int = 1,
        soft: float = HOUR,
        hard: float = 2 * HOUR,
        reasons: list[str] | None = None,
        state: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An approval request, as an agent's gate posts it."""
        session = f"conv-{uuid.uuid4().hex[:8]}"
        body = {
            "request_key": str(uuid.uuid4()),
            "action": action,
            "tier": tier,
            "approvals_required": approvals,
            "reasons": reasons if reasons is not None else [f"policy tier {tier}"],
            "digest": argument_digest(action, arguments, session),
            "arguments": arguments,
            "session_id": session,
            "trace_id": uuid.uuid4().hex,
            "span_id": uuid.uuid4().hex[:16],
            "state": state if state is not None else {},
            "soft_timeout_s": soft,
            "hard_timeout_s": hard,
            "on_hard_timeout": "deny",
        }
        response = self.call("ingest", "POST", "/v1/approvals", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(self, approval_id: str) -> dict[str, Any]:
        response = self.call("alice", "GET", f"/v1/approvals/{approval_id}")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path_factory.mktemp('approvals-page') / 'review.db'}"
    store = ReviewStore(url)
    store.migrate()
    tokens = {
        "ingest": store.create_token("support-agent", "ingest"),
        "alice": store.create_token("alice", "reviewer"),
        "bob": store.create_token("bob", "reviewer"),
    }
    server = ReviewServer(ServiceConfig(db=url), store, port=0)
    server.start()
    yield Service(f"http://127.0.0.1:{server.port}", tokens)
    server.shutdown()
    store.shutdown()


def refund_state() -> dict[str, Any]:
    """What a support agent's gate captures before a refund: OpenAI chat messages, a tool call, context, models."""
    return {
        "messages": [
            {"role": "system", "content": "You are the support assistant of Acme."},
            {"role": "user", "content": "Order A-1 arrived broken. I'm <PERSON:3f2a9c1b>; refund me please."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": '{"id":"A-1"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "delivered", "total": 250.0}'},
            {
                "role": "assistant",
                "content": "I will refund the whole order.",
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "issue_refund", "arguments": '{"order_id":"A-1","amount":250.0}'},
                    }
                ],
            },
        ],
        "tool_calls": [{"name": "lookup_order", "arguments": {"id": "A-1"}, "result": {"status": "delivered"}}],
        "context": {"customer_tier": "gold", "channel": "chat"},
        "models": ["gpt-4o-2024-08-06"],
    }


def open_approvals(page: Page, service: Service, who: str = "alice") -> None:
    sign_in(page, service, who)
    page.click("#tab-approvals")
    expect(page.locator("#approvals-view")).to_be_visible()
    expect(page.locator("#tab-approvals")).to_have_attribute("aria-current", "page")


def open_request(page: Page, action: str) -> None:
    page.locator("tr.approval-row", has_text=action).first.click()
    expect(page.locator("#approval-view")).to_be_visible()
    expect(page.locator("#approval-title")).to_contain_text(action)
    expect(page.locator("#approval-title")).to_be_focused()


def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    """Until ``check()`` holds (the service's timers run every second; the bound only avoids a hang)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# -- the tests --------------------------------------------------------------------------------------------------------


def test_pending_requests_show_live_countdowns_and_the_escalated_one_on_top(tab: Tab, service: Service) -> None:
    red = service.create("wire_transfer", {"iban": "DE89", "amount": 5000}, tier="red")
    late = service.create("send_newsletter", {"recipients": 120}, soft=1, hard=HOUR)
    wait_for(lambda: service.get(late["id"])["escalated_at"] is not None, "the soft timeout to escalate")
    page = tab.page
    open_approvals(page, service)

    rows = page.locator("tr.approval-row")
    escalated = rows.filter(has_text="send_newsletter")
    calm = rows.filter(has_text="wire_transfer")
    expect(escalated).to_have_class(re.compile(r"\bescalated\b"))
    expect(escalated.locator(".escalated-badge")).to_have_text("escalated")
    expect(escalated.locator(".countdown").first).to_contain_text("escalated")
    expect(calm).to_contain_text("0 of 1 approval")
    expect(calm).to_contain_text("policy tier red")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    first_escalated = next(i for i, t in enumerate(texts) if "send_newsletter" in t)
    first_calm = next(i for i, t in enumerate(texts) if "wire_transfer" in t)
    assert first_escalated < first_calm  # red, and older, but not escalated: below

    # The countdowns tick from the deadlines the service gave, once a second.
    soft, hard = calm.locator(".countdown").nth(0), calm.locator(".countdown").nth(1)
    before = soft.inner_text()
    assert before.startswith("escalates in ") and hard.inner_text().startswith("denied in 1:")
    expect(soft).not_to_have_text(before)
    expect(calm).to_have_attribute("aria-label", "wire_transfer, red, pending")
    assert service.get(red["id"])["status"] == "pending"

    # Keyboard: j/k move, Enter opens, Esc comes back to the list, q goes to the review queue and p back.
    rows.first.focus()
    page.keyboard.press("j")
    expect(page.locator("tr.approval-row.selected")).to_have_count(1)
    page.keyboard.press("k")
    expect(rows.first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#approval-view")).to_be_visible()
    expect(page.locator("#approval-title")).to_contain_text("send_newsletter")
    expect(page.locator("#approval-banner")).to_contain_text("Escalated")
    page.keyboard.press("Escape")
    expect(page.locator("#approvals-view")).to_be_visible()
    expect(rows.first).to_be_focused()
    page.keyboard.press("q")
    expect(page.locator("#queue-view")).to_be_visible()
    page.keyboard.press("p")
    expect(page.locator("#approvals-view")).to_be_visible()


def test_two_reviewers_approve_a_red_request_one_of_two_then_approved(tab: Tab, service: Service) -> None:
    request = service.create("delete_account", {"account_id": "acct-77"}, tier="red", approvals=2, state=refund_state())
    page = tab.page
    open_approvals(page, service, "alice")
    open_request(page, "delete_account")
    expect(page.locator("#approval-progress")).to_have_text("0 of 2 approvals")
    expect(page.locator("#approval-banner")).to_contain_text("2 different reviewers must approve")
    page.keyboard.press("a")
    expect(page.locator("#approval-result")).to_contain_text("1 of 2 approvals: alice")
    expect(page.locator("#approval-progress")).to_have_text("1 of 2 approvals: alice")
    expect(page.locator("#approval-approve")).to_be_disabled()
    expect(page.locator("#approval-banner")).to_contain_text("1 more reviewer must approve")
    # The flash does not cover the title: the result is said in the decision panel, the title keeps the focus.
    expect(page.locator("#flash")).to_be_hidden()
    expect(page.locator("#approval-title")).to_be_focused()
    after_alice = service.get(request["id"])
    assert (after_alice["status"], after_alice["approvers"]) == ("pending", ["alice"])

    page.click("#sign-out")
    open_approvals(page, service, "bob")
    open_request(page, "delete_account")
    page.click("#approval-approve")
    expect(page.locator("#approval-result")).to_contain_text("Approved (2 of 2 approvals: alice, bob)")
    expect(page.locator("#approval-reject")).to_be_disabled()  # the whole decision fieldset is
    expect(page.locator("#approval-history .decision-record")).to_have_count(2)
    done = service.get(request["id"])
    assert (done["status"], done["approvers"]) == ("approved", ["alice", "bob"])
    assert [d["reviewer"] for d in done["decisions"]] == ["alice", "bob"]


def test_modify_shows_the_changes_and_sends_the_edited_arguments(tab: Tab, service: Service) -> None:
    arguments = {"order_id": "A-1", "amount": 250.0, "notify": True, "lines": [{"sku": "X1", "qty": 2}]}
    request = service.create("issue_refund", arguments, reasons=["amount > 100"], state=refund_state())
    page = tab.page
    open_approvals(page, service)
    open_request(page, "issue_refund")

    # The conversation that led here, rendered as the item view renders one.
    thread = page.locator("#approval-thread")
    expect(thread.locator(".turn-system")).to_contain_text("support assistant of Acme")
    expect(thread.locator(".turn-user mark.redacted")).to_have_text("<PERSON:3f2a9c1b>")
    expect(thread.locator(".tool-call .tool-name")).to_have_text(["lookup_order", "issue_refund"])
    expect(thread.locator(".turn-tool")).to_contain_text("result of lookup_order")
    expect(page.locator("#approval-tools")).to_contain_text('"status": "delivered"')
    expect(page.locator("#approval-context")).to_contain_text("customer_tier")
    expect(page.locator("#approval-meta")).to_contain_text("gpt-4o-2024-08-06")
    expect(page.locator("#approval-reasons")).to_have_text("amount > 100")

    # e edits the arguments; a number field that is not a number is refused, naming the field.
    page.locator("#approval-title").focus()
    page.keyboard.press("e")
    expect(page.get_by_label("order_id", exact=True)).to_be_focused()
    amount = page.get_by_label("amount", exact=True)
    amount.fill("12x")
    page.click("#approval-modify")
    expect(page.locator("#approval-error")).to_have_text("amount: enter a number, such as 100 or 12.5.")
    expect(amount).to_be_focused()
    amount.fill("100")
    page.get_by_label("notify", exact=True).select_option("false")
    diff = page.locator("#approval-diff tr")
    expect(diff).to_have_count(2)
    expect(diff.nth(0)).to_have_text("amount250100")
    expect(diff.nth(1)).to_have_text("notifytruefalse")
    expect(page.locator("#approval-edited")).to_have_text("edited: 2 changes")

    # Approving with edits pending is refused: the edits are not lost by a slip.
    page.click("#approval-approve")
    expect(page.locator("#approval-error")).to_contain_text("You edited the arguments")

    # The JSON editor: not an object, not JSON, then a nested edit and a new key, all shown as changes.
    page.click("#approval-json-box summary")
    json_box = page.locator("#approval-json")
    json_box.fill("[1, 2]")
    expect(page.locator("#approval-json-error")).to_contain_text("must be a JSON object")
    page.click("#approval-modify")
    expect(page.locator("#approval-error")).to_contain_text("not a list")
    json_box.fill('{"order_id": "A-1", "amount": 100, ')
    page.click("#approval-modify")
    expect(page.locator("#approval-error")).to_contain_text("not valid JSON")
    edited = {"order_id": "A-1", "amount": 100, "notify": False, "lines": [{"sku": "X1", "qty": 1}], "note": "partial"}
    json_box.fill(
        '{"order_id": "A-1", "amount": 100, "notify": false, "lines": [{"sku": "X1", "qty": 1}], "note": "partial"}'
    )
    expect(diff).to_have_count(4)
    expect(page.locator("#approval-diff .diff-path")).to_have_text(["amount", "notify", "lines[0].qty", "note"])
    expect(diff.nth(3)).to_have_text('note(absent)"partial"')
    expect(page.get_by_label("note", exact=True)).to_have_value("partial")  # the fields follow the JSON

    page.fill("#approval-modify-reason", "Only one unit arrived broken.")
    page.click("#approval-modify")
    expect(page.locator("#approval-result")).to_contain_text("Modified (1 of 1 approval: alice)")
    expect(page.locator("#approval-modified-note")).to_contain_text("alice modified the arguments: amount: 250 → 100")
    expect(amount).to_be_disabled()
    done = service.get(request["id"])
    assert (done["status"], done["decided_arguments"], done["arguments"]) == ("modified", edited, arguments)
    [decision] = done["decisions"]
    assert (decision["reviewer"], decision["outcome"], decision["arguments"]) == ("alice", "modify", edited)
    assert decision["reason"] == "Only one unit arrived broken."


def test_reject_needs_a_reason_and_a_decision_made_elsewhere_shows_at_once(tab: Tab, service: Service) -> None:
    request = service.create("send_email", {"to": "all-customers@example.com", "subject": "Sale"})
    other = service.create("close_ticket", {"ticket": "T-9"})
    page = tab.page
    open_approvals(page, service)
    open_request(page, "send_email")
    page.click("#approval-reject")
    expect(page.locator("#approval-error")).to_have_text("Write the reason for the rejection: the agent is told it.")
    expect(page.locator("#approval-reject-reason")).to_be_focused()
    assert service.get(request["id"])["status"] == "pending"
    reason = "Not to every customer: only the ones who opted in."
    page.fill("#approval-reject-reason", reason)
    page.click("#approval-reject")
    expect(page.locator("#approval-result")).to_contain_text("Rejected")
    expect(page.locator("#approval-banner")).to_have_text(
        "Rejected: Not to every customer: only the ones who opted in."
    )
    done = service.get(request["id"])
    assert (done["status"], done["reason"]) == ("rejected", "Not to every customer: only the ones who opted in.")

    # Another reviewer decides the request this page has open: the page's long poll shows it, read-only.
    page.click("#approval-back")
    open_request(page, "close_ticket")
    response = service.call("bob", "POST", f"/v1/approvals/{other['id']}/decision", json={"outcome": "approve"})
    assert response.status_code == 200, response.text
    expect(page.locator("#approval-banner")).to_have_text("Decided: approved by bob.")
    expect(page.locator("#approval-reject")).to_be_disabled()  # the whole decision fieldset is


def test_request_content_is_shown_as_text_and_never_runs(tab: Tab, service: Service) -> None:
    payload = f"{SCRIPT} {IMG} {SVG}"
    state = {
        "messages": [
            {"role": "user", "parts": [{"type": "text", "content": f"Hi {payload}"}]},
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": IMG, "arguments": {"q": payload}}],
            },
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": payload}]},
            {"role": SCRIPT, "content": payload},
        ],
        "tool_calls": [{"name": SVG, "arguments": {"x": payload}, "result": payload}],
        "context": {IMG: payload},
        "models": [IMG],
    }
    service.create(f"refund{SCRIPT}", {SCRIPT: payload, "amount": 1}, reasons=[IMG, "rule:payment-tool"], state=state)
    page = tab.page
    open_approvals(page, service)
    row = page.locator("tr.approval-row", has_text="window.__pwned")
    expect(row).to_contain_text(f"refund{SCRIPT}")
    expect(row).to_contain_text(IMG)
    open_request(page, f"refund{SCRIPT}")
    expect(page.locator("#approval-thread .turn-user")).to_contain_text(f"Hi {payload}")
    expect(page.locator("#approval-thread .tool-call")).to_contain_text(IMG)
    expect(page.locator("#approval-thread .turn-tool")).to_contain_text(payload)
    expect(page.locator("#approval-thread .turn-other")).to_contain_text(payload)
    expect(page.locator("#approval-tools")).to_contain_text(SVG)
    expect(page.locator("#approval-context")).to_contain_text(IMG)
    expect(page.locator("#approval-reasons li").nth(0)).to_have_text(IMG)
    # A risk code: the page has no rule text to show for it, and says so.
    expect(page.locator("#approval-reasons li").nth(1)).to_contain_text("rule:payment-tool (a risk code")
    expect(page.get_by_label(SCRIPT, exact=True)).to_have_value(payload)
    page.get_by_label(SCRIPT, exact=True).fill(f"{payload}!")
    expect(page.locator("#approval-diff .diff-new")).to_contain_text(f"{SCRIPT}")

    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own app.js
    assert tab.dialogs == []


def test_the_fatigue_chart_shows_interventions_per_day_against_the_budget(tab: Tab, service: Service) -> None:
    service.create("lookup_refund_policy", {"order_id": "A-2"})
    report = service.call("alice", "GET", "/v1/approvals/report", params={"days": 30})
    assert report.status_code == 200, report.text
    days, budget = report.json()["by_day"], report.json()["budget_per_day"]
    page = tab.page
    open_approvals(page, service)
    chart = page.locator("#fatigue-chart svg")
    expect(chart.locator("rect")).to_have_count(len(days))
    expect(chart.locator("line.chart-budget")).to_have_count(1)
    expect(chart.locator(".chart-label-budget")).to_have_text(f"budget {budget}/day")
    today = days[-1]
    expect(chart.locator("rect").last.locator("title")).to_have_text(
        f"{today['date']}: {today['requested']} interventions (budget {budget})"
    )
    expect(page.locator("#fatigue-summary")).to_contain_text(f"over the budget of {budget} a day")

"""The reviewers' page in a real browser (Chromium under Playwright) against a real review service.

One service (SQLite store, uvicorn in a thread) and one browser for the module; a fresh browser context per test,
so each test starts signed out with empty session storage. Decisions made on the page are checked in the store.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # pragma: no cover - depends on the environment
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from spanguard.review.cli import ReviewServer  # noqa: E402
from spanguard.review.config import ServiceConfig  # noqa: E402
from spanguard.review.store import ReviewStore  # noqa: E402

TRACE_URL = "http://127.0.0.1:6006/projects/default/traces/{trace_id}"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
SVG = '"><svg onload=window.__pwned=3>'


# -- realistic traces -------------------------------------------------------------------------------------------------


def _messages(*messages: dict[str, Any]) -> str:
    return json.dumps(list(messages))


def _text(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}], **extra}


def agent_trace(
    user: str,
    answer: str,
    *,
    system: str = "You are the support assistant of Acme. Answer briefly and cite the order data.",
    provider: str = "openai",
    request_model: str = "gpt-4o",
    response_model: str = "gpt-4o-2024-08-06",
    tool: tuple[str, dict[str, Any], Any] | None = None,
    chat_name: str | None = None,
    redacted: tuple[str, ...] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """A trace as the OpenAI instrumentation records it: an agent span, chat spans and (optionally) a tool span."""
    trace_id = uuid.uuid4().hex
    t0 = time.time_ns() - 5_000_000_000
    ms = 1_000_000
    ids = iter(f"{n:016x}" for n in range(1, 100))
    root = f"{0:016x}"

    def span(name: str, start: int, end: int, attributes: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "trace_id": trace_id,
            "span_id": next(ids),
            "parent_span_id": root,
            "name": name,
            "kind": "client",
            "start_time_unix_nano": t0 + start * ms,
            "end_time_unix_nano": t0 + end * ms,
            "status": {"code": "unset", "message": ""},
            "attributes": attributes,
            "resource": {"service.name": "support-agent"},
            "scope": {"name": "spanguard.instrumentation.openai", "version": "0.1.0"},
            **extra,
        }

    def chat(start: int, end: int, inputs: list[dict[str, Any]], output: dict[str, Any], finish: str) -> dict:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.usage.input_tokens": 120 + 40 * len(inputs),
            "gen_ai.usage.output_tokens": 35,
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system}]),
            "gen_ai.input.messages": _messages(*inputs),
            "gen_ai.output.messages": _messages(output),
        }
        if redacted:
            attributes["spanguard.redaction.count"] = len(redacted)
            attributes["spanguard.redaction.entities"] = list(redacted)
        return span(chat_name or f"chat {request_model}", start, end, attributes)

    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
    spans = [{**span("invoke_agent support", 0, 2600, agent), "span_id": root, "parent_span_id": None}]
    spans[0]["kind"] = "internal"
    question = _text("user", user)
    if tool is None:
        spans.append(chat(20, 1400, [question], _text("assistant", answer, finish_reason="stop"), "stop"))
        return trace_id, spans
    name, arguments, result = tool
    request = {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "call_7Qx1", "name": name, "arguments": arguments}],
        "finish_reason": "tool_call",
    }
    response = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_7Qx1", "response": result}]}
    spans.append(chat(20, 900, [question], request, "tool_call"))
    spans.append(
        span(
            f"execute_tool {name}",
            950,
            1100,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": "call_7Qx1",
                "gen_ai.tool.call.arguments": json.dumps(arguments),
                "gen_ai.tool.call.result": json.dumps(result),
            },
            kind="internal",
        )
    )
    spans.append(
        chat(1150, 2550, [question, request, response], _text("assistant", answer, finish_reason="stop"), "stop")
    )
    return trace_id, spans


# -- the service and the browser -------------------------------------------------------------------------------------


@dataclass
class Service:
    store: ReviewStore
    base: str
    tokens: dict[str, str]
    items: dict[str, int] = field(default_factory=dict)
    trace_ids: dict[str, str] = field(default_factory=dict)

    def ingest(self, key: str, tier: str, risk: str, reasons: list[str], trace: tuple[str, list[dict]]) -> int:
        trace_id, spans = trace
        body = {"trace_id": trace_id, "tier": tier, "risk_tier": risk, "reasons": reasons, "spans": spans}
        response = httpx.post(
            f"{self.base}/v1/review-items", json=body, headers={"Authorization": f"Bearer {self.tokens['ingest']}"}
        )
        assert response.status_code == 200, response.text
        self.items[key] = response.json()["items"][0]["id"]
        self.trace_ids[key] = trace_id
        return self.items[key]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, **kwargs)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path_factory.mktemp('review-page') / 'review.db'}"
    store = ReviewStore(url)
    store.migrate()
    tokens = {
        "ingest": store.create_token("exporter", "ingest"),
        "alice": store.create_token("alice", "reviewer"),
        "bob": store.create_token("bob", "reviewer"),
        "carol": store.create_token("carol", "reviewer"),
    }
    server = ReviewServer(ServiceConfig(db=url, trace_url_template=TRACE_URL), store, port=0)
    server.start()
    service = Service(store, f"http://127.0.0.1:{server.port}", tokens)
    service.ingest(
        "refund",
        "spot_check",
        "yellow",
        ["sensitive_topic:financial"],
        agent_trace(
            "What is the refund policy for order 8812? I'm <PERSON:3f2a9c1b>, reach me at <EMAIL_ADDRESS>.",
            "Order 8812 was delivered 12 days ago, so it can still be refunded: returns are accepted for 30 days.",
            tool=("lookup_order", {"order_id": "8812"}, {"status": "delivered", "days_since_delivery": 12}),
            redacted=("EMAIL_ADDRESS", "PERSON"),
        ),
    )
    service.ingest(
        "capital",
        "factual_verification",
        "yellow",
        ["unpinned_model"],
        agent_trace("What is the capital of Australia?", "Sydney is the capital.", response_model="gpt-4o"),
    )
    service.ingest(
        "dual-1",
        "dual_approval",
        "yellow",
        ["sensitive_topic:medical"],
        agent_trace("Can I take ibuprofen with my blood pressure pills?", "Ask your pharmacist; some interact."),
    )
    service.ingest(
        "weather",
        "spot_check",
        "green",
        ["sampled"],
        agent_trace(
            "Will it rain in Lyon tomorrow?",
            "Yes, heavy rain all day in Lyon tomorrow.",
            provider="anthropic",
            request_model="claude-3-5-sonnet-latest",
            response_model="claude-3-5-sonnet-20241022",
            tool=("get_forecast", {"city": "Lyon", "days": 1}, {"rain_probability": 0.2, "summary": "light showers"}),
        ),
    )
    service.ingest(
        "dual-2",
        "dual_approval",
        "green",
        ["sampled"],
        agent_trace("Summarise my last three invoices.", "You were billed 40, 42 and 39 EUR."),
    )
    service.ingest(
        "dual-3",
        "dual_approval",
        "green",
        ["sampled"],
        agent_trace("Cancel my subscription.", "Your subscription is cancelled at the end of the month."),
    )
    yield service
    server.shutdown()
    store.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@dataclass
class Tab:
    page: Page
    console: list[str]
    errors: list[str]
    dialogs: list[str]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    tab = Tab(page, [], [], [])
    page.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield tab
    context.close()
    # Whatever the test did, the page's own code threw nothing and broke no CSP rule.
    assert tab.errors == []
    assert [m for m in tab.console if "Content Security Policy" in m or "Refused to" in m] == []


def sign_in(page: Page, service: Service, who: str = "alice", path: str = "/") -> None:
    page.goto(f"{service.base}{path}")
    page.fill("#token", service.tokens[who])
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#whoami")).to_have_text(f"{who} (reviewer)")


def open_from_queue(page: Page, text: str) -> None:
    page.locator("tr.queue-row", has_text=text).click()
    expect(page.locator("#item-view")).to_be_visible()


def answer_checklist(page: Page) -> None:
    yes = page.locator("#checklist .check-yes input")
    expect(yes.first).to_be_visible()
    for index in range(yes.count()):
        yes.nth(index).check()


def item_title(page: Page, key: str, service: Service) -> None:
    expect(page.locator("#item-title")).to_contain_text(f"Item #{service.items[key]} ")


# -- the tests --------------------------------------------------------------------------------------------------------


def test_approve_with_the_keyboard_records_decision_rating_and_audit(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service)
    expect(page.locator("#queue-view")).to_be_visible()
    row = page.locator("tr.queue-row", has_text="refund policy for order 8812")
    expect(row.locator(".badge")).to_have_text("yellow")
    expect(row).to_contain_text("spot_check")
    expect(row).to_contain_text("sensitive_topic:financial")
    expect(row).to_contain_text("gpt-4o-2024-08-06")
    open_from_queue(page, "refund policy for order 8812")
    item_title(page, "refund", service)

    # The header links the trace; the thread shows every role, the tool call, the model and redactions.
    link = page.locator("#item-title a.trace-link")
    expect(link).to_have_attribute("href", TRACE_URL.replace("{trace_id}", service.trace_ids["refund"]))
    thread = page.locator("#thread")
    expect(thread.locator(".turn-system")).to_contain_text("support assistant of Acme")
    expect(thread.locator(".turn-user")).to_contain_text("refund policy")
    expect(thread.locator("mark.redacted")).to_have_text(["<PERSON:3f2a9c1b>", "<EMAIL_ADDRESS>"])
    expect(thread.locator(".tool-call")).to_contain_text("lookup_order")
    expect(thread.locator(".tool-call pre")).to_contain_text('"order_id": "8812"')
    expect(thread.locator(".turn-tool")).to_contain_text("result of lookup_order")
    expect(thread.locator(".turn-assistant .model").first).to_have_text("gpt-4o-2024-08-06")
    expect(thread.locator(".turn-assistant").last).to_contain_text("finish: stop")
    page.click("#spans-section summary")
    expect(page.locator("#spans .span-row")).to_have_count(4)
    expect(page.locator("#correction")).to_have_value(re.compile("^Order 8812 was delivered"))

    # A decision before the checklist is answered is refused on the page, naming what is missing.
    page.locator("#item-title").focus()
    page.keyboard.press("a")
    expect(page.locator("#decision-error")).to_contain_text("Missing: factual_accuracy, policy_adherence, tone")
    answer_checklist(page)
    page.keyboard.press("4")
    expect(page.locator('input[name="likert"][value="4"]')).to_be_checked()
    page.keyboard.press("a")
    expect(page.locator("#flash")).to_contain_text(f"Item #{service.items['refund']} approved: now done")
    # ... and the page moved on to the next item of the queue.
    expect(page.locator("#item-title")).not_to_contain_text(f"Item #{service.items['refund']} ")

    item_id = service.items["refund"]
    [decision] = service.store.decisions(item_id)
    assert (decision.reviewer, decision.outcome, decision.ratings) == ("alice", "approve", {"likert": 4})
    assert decision.checklist == {"factual_accuracy": True, "policy_adherence": True, "tone": True}
    trail = [(entry.actor, entry.action) for entry in service.store.audit(item_id)]
    assert ("alice", "claim") in trail and ("alice", "decide:approve") in trail
    assert service.store.get(item_id).status == "done"

    # Escape goes back to the queue, giving back the item the page moved on to.
    page.keyboard.press("Escape")
    expect(page.locator("#queue-view")).to_be_visible()
    assert service.store.list(status="claimed") == []


def test_reject_with_a_reason_and_free_text(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service)
    # The date filters: nothing was ingested before 2000, everything after.
    page.fill("#f-until", "2000-01-01")
    expect(page.locator("#queue-empty")).to_be_visible()
    page.fill("#f-since", "2000-01-02")
    expect(page.locator("#queue-error")).to_have_text("The From date is after the To date.")
    page.fill("#f-until", "")
    expect(page.locator("tr.queue-row").first).to_be_visible()
    page.select_option("#f-tier", "factual_verification")
    expect(page.locator("tr.queue-row")).to_have_count(1)
    open_from_queue(page, "capital of Australia")
    item_title(page, "capital", service)
    expect(page.locator("#checklist .check-item")).to_have_count(4)
    answer_checklist(page)
    page.locator("#item-title").focus()
    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.select_option("#reject-reason", "factually_incorrect")
    page.fill("#reject-text", "Canberra is the capital, not Sydney.")
    page.click("#reject")
    expect(page.locator("#flash")).to_contain_text(f"Item #{service.items['capital']} rejected: now done (reject)")
    # The only item of the filtered queue is decided: back to the (now empty) queue.
    expect(page.locator("#queue-view")).to_be_visible()
    expect(page.locator("#queue-empty")).to_be_visible()

    [decision] = service.store.decisions(service.items["capital"])
    assert (decision.reviewer, decision.outcome, decision.reason) == ("alice", "reject", "factually_incorrect")
    assert decision.reason_text == "Canberra is the capital, not Sydney."
    assert decision.correction is None


def test_correct_the_answer_into_a_golden_answer(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service)
    page.select_option("#f-model", "claude-3-5-sonnet-20241022")
    expect(page.locator("tr.queue-row")).to_have_count(1)
    page.click("#filters button[type=submit]")  # Apply keeps the chosen model
    expect(page.locator("#f-model")).to_have_value("claude-3-5-sonnet-20241022")
    expect(page.locator("tr.queue-row")).to_have_count(1)
    open_from_queue(page, "rain in Lyon")
    item_title(page, "weather", service)
    expect(page.locator("#thread .turn-tool")).to_contain_text('"rain_probability": 0.2')
    answer_checklist(page)
    page.locator("#item-title").focus()
    page.keyboard.press("e")
    correction = page.locator("#correction")
    expect(correction).to_be_focused()
    expect(correction).to_have_value("Yes, heavy rain all day in Lyon tomorrow.")
    # Submitting the model's answer unchanged is refused; the edited answer is recorded as the golden answer.
    page.click("#correct")
    expect(page.locator("#decision-error")).to_contain_text("unchanged")
    golden = "Probably not: the forecast gives a 20% chance of light showers in Lyon tomorrow."
    correction.fill(golden)
    page.fill("#comment", "The answer contradicted the tool result.")
    page.click("#correct")
    expect(page.locator("#flash")).to_contain_text(f"Item #{service.items['weather']} corrected: now done")

    item = service.store.get(service.items["weather"])
    assert (item.status, item.outcome, item.golden) == ("done", "correct", golden)
    [decision] = service.store.decisions(item.id)
    assert (decision.outcome, decision.correction, decision.comment) == (
        "correct",
        golden,
        "The answer contradicted the tool result.",
    )


def test_thumbs_rating_is_recorded_and_j_k_move_between_items(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service)
    page.select_option("#f-tier", "dual_approval")
    expect(page.locator("tr.queue-row")).to_have_count(3)
    # In the queue, j/k move the selection and Enter opens it.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("tr.queue-row.selected")).to_contain_text("last three invoices")
    page.keyboard.press("Enter")
    item_title(page, "dual-2", service)
    expect(page.locator("#lease-banner")).to_contain_text("two different reviewers")
    # In an item, j/k open the next/previous item; the one left undecided goes back to the queue.
    page.keyboard.press("j")
    item_title(page, "dual-3", service)
    expect(page.locator("#item-position")).to_have_text("3 of 3")
    page.keyboard.press("k")
    item_title(page, "dual-2", service)
    page.keyboard.press("k")
    item_title(page, "dual-1", service)
    assert service.store.get(service.items["dual-3"]).status == "pending"
    assert service.store.get(service.items["dual-2"]).status == "pending"
    assert ("alice", "release") in [(e.actor, e.action) for e in service.store.audit(service.items["dual-3"])]

    answer_checklist(page)
    page.click("#thumbs-down")
    page.click("#thumbs-up")
    expect(page.locator("#thumbs-up")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#thumbs-down")).to_have_attribute("aria-pressed", "false")
    page.click("#approve")
    expect(page.locator("#flash")).to_contain_text(
        f"Item #{service.items['dual-1']} approved: now pending, 1 of 2 approvals"
    )
    item_title(page, "dual-2", service)
    [decision] = service.store.decisions(service.items["dual-1"])
    assert (decision.reviewer, decision.outcome, decision.ratings) == ("alice", "approve", {"thumbs": "up"})
    assert service.store.get(service.items["dual-1"]).approvals == ["alice"]
    page.keyboard.press("Escape")
    expect(page.locator("#queue-view")).to_be_visible()


def test_span_content_is_shown_as_text_and_never_runs(tab: Tab, service: Service) -> None:
    payload = f"{SCRIPT} {IMG} {SVG}"
    trace = agent_trace(
        f"Hi {payload} there",
        f"Sure! {payload}",
        system=f"System {SCRIPT}",
        response_model=IMG,
        tool=(f"search{SVG}", {"query": payload}, {"html": payload}),
        chat_name=SVG,
    )
    item_id = service.ingest("xss", "spot_check", "red", [SCRIPT, SVG, IMG], trace)
    page = tab.page
    sign_in(page, service)
    row = page.locator("tr.queue-row", has_text="window.__pwned")
    expect(row).to_contain_text(SCRIPT)

    # The reason and model filters offer the values of the open items, with the counts the API gives, as text.
    def choices(status: str) -> dict[str, list[str]]:
        facets = service.call("alice", "GET", "/v1/review-items/facets", params={"status": status}).json()
        return {key: ["any"] + [f"{value} ({n})" for value, n in sorted(facets[key].items())] for key in facets}

    open_items = choices("pending,expired")
    assert f"{SCRIPT} (1)" in open_items["reasons"] and f"{IMG} (1)" in open_items["models"]
    expect(page.locator("#f-reason option")).to_have_text(open_items["reasons"])
    expect(page.locator("#f-model option")).to_have_text(open_items["models"])
    expect(page.locator("#f-reason option", has_text="__pwned=1")).to_have_text(f"{SCRIPT} (1)")
    page.select_option("#f-reason", SCRIPT)
    expect(page.locator("tr.queue-row")).to_have_count(1)
    expect(row).to_be_visible()
    # Another status refreshes the choices, keeping the chosen reason while items of that status still have it ...
    page.select_option("#f-status", "")
    expect(page.locator("#f-reason option")).to_have_text(choices("")["reasons"])
    expect(page.locator("#f-reason")).to_have_value(SCRIPT)
    expect(page.locator("tr.queue-row")).to_have_count(1)
    # ... and going back to "any" when none has it.
    page.select_option("#f-status", "done")
    expect(page.locator("#f-reason option")).to_have_text(choices("done")["reasons"])
    expect(page.locator("#f-reason")).to_have_value("")
    expect(page.locator("tr.queue-row").first).to_contain_text("done: ")
    expect(row).to_have_count(0)
    page.select_option("#f-status", "pending,expired")
    open_from_queue(page, "window.__pwned")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{item_id} ")
    thread = page.locator("#thread")
    expect(thread.locator(".turn-user")).to_contain_text(f"Hi {payload} there")
    expect(thread.locator(".turn-assistant").last).to_contain_text(f"Sure! {payload}")
    expect(thread.locator(".turn-assistant .model").first).to_have_text(IMG)
    expect(thread.locator(".tool-call").first).to_contain_text(f"search{SVG}")
    expect(page.locator("#item-meta")).to_contain_text(SCRIPT)
    page.click("#spans-section summary")
    expect(page.locator("#spans")).to_contain_text(SVG)
    expect(page.locator("#calls")).to_contain_text(IMG)

    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own app.js
    assert page.locator("svg").count() == page.locator("svg.span-bar").count()
    assert tab.dialogs == []
    page.keyboard.press("Escape")
    expect(page.locator("#queue-view")).to_be_visible()


def test_a_wrong_token_is_refused_and_sign_out_forgets_the_token(tab: Tab, service: Service) -> None:
    page = tab.page
    page.goto(f"{service.base}/")
    page.fill("#token", "sgr_not-a-real-token")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("unknown or revoked token")
    assert page.evaluate("() => sessionStorage.length") == 0

    sign_in(page, service, "carol")
    assert page.evaluate("() => sessionStorage.length") == 1
    page.reload()  # the token survives a reload of the tab
    expect(page.locator("#whoami")).to_have_text("carol (reviewer)")
    page.click("#sign-out")
    expect(page.locator("#signin-view")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""

    # A 401 later on (the token was revoked meanwhile) returns to sign-in with a message.
    sign_in(page, service, "carol")
    expect(page.locator("tr.queue-row").first).to_be_visible()  # the queue (and its filter choices) loaded
    assert service.store.revoke_tokens("carol") == 1
    page.click("#refresh")
    expect(page.locator("#signin-view")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("Your session ended")
    assert page.evaluate("() => sessionStorage.length") == 0


def test_an_item_held_by_another_reviewer_opens_read_only(tab: Tab, service: Service) -> None:
    item_id = service.ingest(
        "held",
        "spot_check",
        "green",
        ["sampled"],
        agent_trace("Where is my parcel?", "It is out for delivery."),
    )
    assert service.call("bob", "POST", f"/v1/review-items/{item_id}/claim").status_code == 200
    page = tab.page
    sign_in(page, service, path=f"/#item={item_id}")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{item_id} ")
    expect(page.locator("#lease-banner")).to_contain_text("Read-only: bob is reviewing this item")
    expect(page.locator("#approve")).to_be_disabled()
    expect(page.locator("#correction")).to_be_disabled()
    expect(page.locator("#release")).to_be_hidden()
    page.locator("#item-title").focus()
    page.keyboard.press("a")
    expect(page.locator("#thread .turn-assistant")).to_contain_text("out for delivery")
    assert service.store.decisions(item_id) == []
    assert service.store.get(item_id).lease_owner == "bob"


def reviewer(service: Service, name: str) -> None:
    """A reviewer token of this test's own (earlier tests revoke or hold others)."""
    if name not in service.tokens:
        service.tokens[name] = service.store.create_token(name, "reviewer")


def test_closing_the_tab_on_an_open_item_releases_it_at_once(browser: Browser, service: Service) -> None:
    reviewer(service, "dave")
    item = service.ingest(
        "tab-closed", "spot_check", "yellow", ["unpinned_model"], agent_trace("Tab closing test.", "Noted.")
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, service, "dave")
    open_from_queue(page, "Tab closing test.")
    assert service.call("bob", "GET", f"/v1/review-items/{item}").json()["status"] == "claimed"
    page.close(run_before_unload=True)  # as the browser closes a tab: pagehide runs
    deadline = time.monotonic() + 10
    status = "claimed"
    while time.monotonic() < deadline and status == "claimed":
        status = service.call("bob", "GET", f"/v1/review-items/{item}").json()["status"]
        time.sleep(0.1)
    context.close()
    assert status == "pending"  # given back now, not when the 15-minute lease runs out


def test_reasons_show_what_they_mean_and_checklist_items_what_they_ask(tab: Tab, service: Service) -> None:
    reviewer(service, "erin")
    service.ingest(
        "meanings", "spot_check", "yellow", ["unpinned_model"], agent_trace("Reason meaning test.", "Noted.")
    )
    service.ingest("meanings-2", "spot_check", "yellow", ["unpinned_model"], agent_trace("Second meaning.", "Ok."))
    page = tab.page
    sign_in(page, service, "erin")
    row = page.locator("tr.queue-row", has_text="Reason meaning test.")
    expect(row.locator(".chip", has_text="unpinned_model")).to_have_attribute("title", re.compile(r"\S{10,}"))
    # The REASONS cell is a table cell, not a flex box: the row's borders hold.
    assert row.locator("td.reasons").evaluate("cell => getComputedStyle(cell).display") == "table-cell"
    open_from_queue(page, "Reason meaning test.")
    meaning = page.locator("#item-meta .reason-list li", has_text="unpinned_model").locator(".reason-text")
    expect(meaning).to_be_visible()
    assert len(meaning.inner_text().strip()) > 10
    description = page.locator("#checklist .check-item[data-item=factual_accuracy] .check-description")
    expect(description).to_contain_text("true of the data")
    page.click("#release")
    expect(page.locator("#flash")).to_contain_text("Released item")
    open_from_queue(page, "Second meaning.")  # the next view change takes the message away
    expect(page.locator("#flash")).to_be_hidden()
    page.click("#release")


def test_the_favicon_is_served(service: Service) -> None:
    response = httpx.get(f"{service.base}/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")

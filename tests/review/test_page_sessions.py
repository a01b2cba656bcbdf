"""The reviewers' page with review by session (docs/review.md, "Review by session"), in a real browser (Chromium
under Playwright) against a real service.

One service (SQLite store, uvicorn in a thread) and one browser for the module, a fresh browser context per test
(as tests/review/test_page.py does). Each test ingests its own conversations over the HTTP API, so the tests do not
depend on each other's order; decisions made on the page are checked in the store.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # pragma: no cover - depends on the environment
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

import test_page  # noqa: E402
from sessions_helpers import SECOND, T0  # noqa: E402
from test_page import Tab, sign_in  # noqa: E402

from spanguard.review.cli import ReviewServer  # noqa: E402
from spanguard.review.config import ServiceConfig  # noqa: E402
from spanguard.review.store import ReviewStore  # noqa: E402

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
SVG = '"><svg onload=window.__pwned=3>'
SESSION_CHECKS = ("context_retained", "consistent_with_earlier_answers", "no_repeated_tool_calls")


# -- a conversation's traces ------------------------------------------------------------------------------------------


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def turn_trace(
    conversation: str,
    turn: int,
    history: list[dict[str, Any]],
    question: str,
    answer: str,
    *,
    user: str = "user-7",
    tool: tuple[str, dict[str, Any]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """One user turn of a conversation as a chat app records it: a chat span whose input resends ``history`` (or,
    with ``tool``, a chat span asking for the tool, its tool span, and a chat span answering); ``history`` grows
    by the turn's messages."""
    trace_id = uuid.uuid4().hex
    start = T0 + turn * 10 * SECOND
    common = {"gen_ai.conversation.id": conversation, "user.id": user}
    spans: list[dict[str, Any]] = []

    def span(name: str, offset: int, attributes: dict[str, Any]) -> None:
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": uuid.uuid4().hex[:16],
                "name": name,
                "kind": "client",
                "start_time_unix_nano": start + offset * SECOND // 2,
                "end_time_unix_nano": start + (offset + 1) * SECOND // 2,
                "attributes": {**common, **attributes},
            }
        )

    def chat(offset: int, output: dict[str, Any]) -> None:
        span(
            "chat gpt-4o",
            offset,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.input.messages": json.dumps(history),
                "gen_ai.output.messages": json.dumps([output]),
            },
        )
        history.append({key: value for key, value in output.items() if key != "finish_reason"})

    history.append(_text("user", question))
    if tool is not None:
        name, arguments = tool
        call_id = f"call_{turn}"
        request = {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}
        chat(0, {"role": "assistant", "parts": [request], "finish_reason": "tool_call"})
        span(
            f"execute_tool {name}",
            1,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.call.arguments": json.dumps(arguments),
                "gen_ai.tool.call.result": json.dumps({"ok": True}),
            },
        )
        history.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": "ok"}]})
    chat(2, {**_text("assistant", answer), "finish_reason": "stop"})
    return trace_id, spans


# -- the service and the browser -------------------------------------------------------------------------------------


@dataclass
class Service:
    store: ReviewStore
    base: str
    tokens: dict[str, str]

    def ingest(self, tier: str, risk: str, reasons: list[str], trace: tuple[str, list[dict]]) -> int:
        trace_id, spans = trace
        body = {"trace_id": trace_id, "tier": tier, "risk_tier": risk, "reasons": reasons, "spans": spans}
        response = httpx.post(
            f"{self.base}/v1/review-items", json=body, headers={"Authorization": f"Bearer {self.tokens['ingest']}"}
        )
        assert response.status_code == 200, response.text
        return response.json()["items"][0]["id"]

    def conversation(
        self, conversation: str, turns: list[tuple[str, str]], *, tier: str = "dual_approval", **options: Any
    ) -> list[int]:
        """Ingest one trace per (question, answer), in order; the trace items' ids."""
        history: list[dict[str, Any]] = []
        start = options.pop("start", 0)
        reasons = options.pop("reasons", ["sampled"])
        tools = options.pop("tools", {})
        return [
            self.ingest(
                tier,
                options.get("risk", "yellow"),
                reasons,
                turn_trace(conversation, start + n, history, question, answer, tool=tools.get(n)),
            )
            for n, (question, answer) in enumerate(turns)
        ]

    def session_item(self, trace_item: int) -> int:
        unit = self.store.get(trace_item).session_item_id
        assert unit is not None
        return unit


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path_factory.mktemp('review-page-sessions') / 'review.db'}"
    store = ReviewStore(url)
    store.migrate()
    tokens = {
        "ingest": store.create_token("exporter", "ingest"),
        "alice": store.create_token("alice", "reviewer"),
        "bob": store.create_token("bob", "reviewer"),
    }
    server = ReviewServer(ServiceConfig(db=url), store, port=0)
    server.start()
    yield Service(store, f"http://127.0.0.1:{server.port}", tokens)
    server.shutdown()
    store.shutdown()


browser = test_page.browser  # the item view's fixtures: one Chromium for the module, a fresh context per test
tab = test_page.tab


def mode(page: Page, name: str) -> None:
    page.click(f"#queue-mode button.mode:text-is('{name}')")
    expect(page.locator("#queue-mode button[aria-pressed=true]")).to_have_text(name)


def answer_checklist(page: Page) -> None:
    yes = page.locator("#checklist .check-yes input")
    expect(yes.first).to_be_visible()
    for index in range(yes.count()):
        yes.nth(index).check()


def session_title(page: Page, item_id: int) -> None:
    expect(page.locator("#item-title")).to_contain_text(f"Session item #{item_id} ")


SUPPORT = [
    ("Where is order 8812? I'm <PERSON:3f2a9c1b>.", "Order 8812 ships tomorrow."),
    ("Can I change its address?", "Yes: the address of order 8812 can change until it ships."),
    ("Change it to 4 Elm Street.", "Done: order 8812 goes to 4 Elm Street."),
]


# -- the tests --------------------------------------------------------------------------------------------------------


def test_the_sessions_queue_lists_a_session_once_and_opens_every_turn_in_order(tab: Tab, service: Service) -> None:
    conversation = f"conv-support-{uuid.uuid4().hex[:8]}"
    traces = service.conversation(conversation, SUPPORT, tools={2: ("update_address", {"order_id": "8812"})})
    unit = service.session_item(traces[0])
    assert [service.store.get(t).session_item_id for t in traces] == [unit] * 3
    page = tab.page
    sign_in(page, service)

    # To review (the default): the session item is one row, its traces are not rows of their own.
    expect(page.locator("#queue-mode button[aria-pressed=true]")).to_have_text("To review")
    row = page.locator("tr.queue-row", has_text=conversation)
    expect(row).to_have_count(1)
    expect(row.locator(".kind-session")).to_have_text("session")
    expect(row).to_contain_text("3 traces")

    # Sessions: one row per session item, with its conversation, tier, risk, reasons and traces.
    mode(page, "Sessions")
    expect(page).to_have_url(re.compile("#queue=sessions$"))
    expect(page.locator("tr.queue-row")).to_have_count(len(service.store.list(kind="session", status="pending")))
    expect(page.locator("tr.queue-row:not(.session-row)")).to_have_count(0)
    expect(row).to_have_count(1)
    expect(row.locator(".badge.risk-yellow")).to_have_text("yellow")
    expect(row).to_contain_text("dual_approval")
    expect(row).to_contain_text("sampled")
    expect(row).to_contain_text("3 traces")
    expect(row).to_contain_text("pending")
    # The filters apply to the mode's rows.
    page.select_option("#f-tier", "spot_check")
    expect(row).to_have_count(0)
    page.select_option("#f-tier", "")
    expect(row).to_have_count(1)
    # The mode survives a reload of the tab.
    page.reload()
    expect(page.locator("#queue-mode button[aria-pressed=true]")).to_have_text("Sessions")
    expect(page.locator("tr.queue-row:not(.session-row)")).to_have_count(0)

    # Traces: every trace, each marked with the session item it is reviewed in; opening one opens that item.
    mode(page, "Traces")
    trace_rows = page.locator("tr.queue-row", has_text=conversation)
    expect(trace_rows).to_have_count(3)
    expect(trace_rows.locator(".in-session")).to_have_text([f"in session #{unit}"] * 3)
    trace_rows.nth(1).click()
    session_title(page, unit)
    expect(page.locator("#item-title code.conversation-id")).to_have_text(conversation)

    # The conversation from its first turn, each turn once, under a boundary per trace.
    thread = page.locator("#thread")
    expect(thread.locator(".turn-user .content")).to_have_text([question for question, _ in SUPPORT])
    expect(thread.locator(".turn-assistant .content")).to_have_text([answer for _, answer in SUPPORT])
    expect(thread.locator(".turn-tool")).to_contain_text("result of update_address")
    expect(thread.locator("mark.redacted")).to_have_text(["<PERSON:3f2a9c1b>"])  # as the item view marks them
    boundaries = thread.locator(".trace-boundary")
    expect(boundaries).to_have_count(3)
    expect(boundaries.locator(".boundary-label")).to_have_text([f"Trace {n} of 3" for n in (1, 2, 3)])
    expect(boundaries.first.locator(".tier")).to_have_text("dual_approval")
    expect(boundaries.first.locator(".badge")).to_have_text("yellow")
    expect(boundaries.first).to_contain_text("reviewed here")
    expect(thread.locator(".turn-reviewed")).to_have_count(0)
    # Boundaries sit where the trace changes: before the 1st, 3rd and 5th turn.
    kinds = thread.locator(":scope > *").evaluate_all("nodes => nodes.map(n => n.classList[0])")
    assert kinds == ["trace-boundary", "turn", "turn"] * 2 + ["trace-boundary"] + ["turn"] * 4
    expect(page.locator("#timeline li")).to_have_count(1)
    expect(page.locator("#timeline li")).to_contain_text("Trace 3")
    expect(page.locator("#timeline li")).to_contain_text("update_address")
    expect(page.locator("#item-meta")).to_contain_text("3 reviewed here")
    expect(page.locator("#item-meta")).to_contain_text("user-7")
    expect(page.locator("#earlier-section")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator("#queue-view")).to_be_visible()
    expect(page).to_have_url(re.compile("#queue=traces$"))
    assert service.store.get(unit).status == "pending"  # opened and left undecided: given back


def test_claim_and_decide_a_session_item_with_the_session_checklist(tab: Tab, service: Service) -> None:
    conversation = f"conv-dual-{uuid.uuid4().hex[:8]}"
    traces = service.conversation(conversation, SUPPORT)
    unit = service.session_item(traces[0])
    page = tab.page
    sign_in(page, service, path=f"/#item={unit}")
    session_title(page, unit)
    expect(page.locator("#approve")).to_be_enabled()  # opening it claimed it
    checks = page.locator("#checklist .check-item")
    names = checks.evaluate_all("rows => rows.map(r => r.dataset.item)")
    assert set(SESSION_CHECKS) <= set(names)
    page.click("#approve")
    expect(page.locator("#decision-error")).to_contain_text("context_retained")
    answer_checklist(page)
    page.click("#approve")
    expect(page.locator("#flash")).to_contain_text(f"Session item #{unit} approved: now pending, 1 of 2 approvals")
    [decision] = service.store.decisions(unit)
    assert decision.reviewer == "alice" and all(decision.checklist[name] for name in SESSION_CHECKS)
    assert service.store.get(unit).approvals == ["alice"]

    # The second approval, by another reviewer: the session is done, and every trace with it.
    page.click("#sign-out")
    sign_in(page, service, "bob", path=f"/#item={unit}")
    session_title(page, unit)
    expect(page.locator("#history li")).to_have_count(1)
    answer_checklist(page)
    page.click("#approve")
    expect(page.locator("#flash")).to_contain_text(f"Session item #{unit} approved: now done (approve)")
    assert service.store.get(unit).status == "done"
    assert [(service.store.get(t).status, service.store.get(t).outcome) for t in traces] == [("done", "approve")] * 3
    assert ("bob", "decide:approve") in [(e.actor, e.action) for e in service.store.audit(unit)]

    # A later turn opens a follow-up item: the earlier turns are shown, dimmed, as already reviewed.
    [later] = service.conversation(conversation, [("And the invoice?", "It is attached to your order.")], start=3)
    follow_up = service.session_item(later)
    assert follow_up != unit and service.store.get(follow_up).follows_id == unit
    page.goto(f"{service.base}/#item={follow_up}")
    session_title(page, follow_up)
    thread = page.locator("#thread")
    expect(thread.locator(".trace-boundary")).to_have_count(4)
    expect(thread.locator(".boundary-reviewed")).to_have_count(3)
    expect(thread.locator(".boundary-reviewed").first).to_contain_text(f"already reviewed in session item #{unit}")
    expect(thread.locator(".boundary-reviewed").first).to_contain_text("approved")
    expect(thread.locator(".turn-reviewed")).to_have_count(6)
    expect(thread.locator(".turn:not(.turn-reviewed) .content")).to_have_text(
        ["And the invoice?", "It is attached to your order."]
    )
    expect(page.locator("#item-meta")).to_contain_text("1 reviewed here, 3 already reviewed")
    expect(page.locator("#item-meta")).to_contain_text(f"session item #{unit}")  # Follow-up of
    earlier = page.locator("#earlier li")
    expect(earlier).to_have_count(1)
    expect(earlier).to_contain_text("3 traces")
    expect(earlier).to_contain_text("done: approve")
    earlier.locator("a.item-link").click()
    session_title(page, unit)
    expect(page.locator("#lease-banner")).to_contain_text("Read-only: this item is done")
    assert service.store.get(follow_up).status == "pending"  # the follow-up, left undecided, was given back


def test_a_correction_on_a_session_item_names_the_turn_chosen(tab: Tab, service: Service) -> None:
    conversation = f"conv-fix-{uuid.uuid4().hex[:8]}"
    traces = service.conversation(conversation, SUPPORT, tier="factual_verification")
    unit = service.session_item(traces[0])
    page = tab.page
    sign_in(page, service, path=f"/#item={unit}")
    session_title(page, unit)
    turn = page.locator("#correct-turn")
    expect(turn.locator("option")).to_have_text([f"Trace {n} of 3 · factual_verification · yellow" for n in (1, 2, 3)])
    trace_ids = [service.store.get(t).trace_id for t in traces]
    expect(turn).to_have_value(trace_ids[2])  # the latest by default, with its answer to edit
    expect(page.locator("#correction")).to_have_value(SUPPORT[2][1])
    turn.select_option(trace_ids[1])
    expect(page.locator("#correction")).to_have_value(SUPPORT[1][1])
    answer_checklist(page)
    golden = "Yes, until it ships tomorrow: tell me the new address."
    page.fill("#correction", golden)
    page.click("#correct")
    expect(page.locator("#flash")).to_contain_text(f"Session item #{unit} corrected: now done (correct)")
    [decision] = service.store.decisions(unit)
    assert (decision.outcome, decision.correction, decision.turn) == ("correct", golden, trace_ids[1])
    assert [service.store.get(t).golden for t in traces] == [None, golden, None]


def test_a_trace_item_links_to_its_session(tab: Tab, service: Service) -> None:
    # Spot checks are reviewed trace by trace: the session of their conversation opens read-only.
    conversation = f"conv-spot-{uuid.uuid4().hex[:8]}"
    spot = service.conversation(
        conversation, SUPPORT[:2], tier="spot_check", tools={0: ("lookup_order", {"order_id": "8812"})}
    )
    assert all(service.store.get(t).session_item_id is None for t in spot)
    page = tab.page
    sign_in(page, service, path=f"/#item={spot[1]}")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{spot[1]} ")
    link = page.locator("#item-meta a.session-link")
    expect(link).to_have_text("open the session")
    link.click()
    expect(page.locator("#sessionpage-view")).to_be_visible()
    expect(page.locator("#sessionpage-title code")).to_have_text(conversation)
    assert service.store.get(spot[1]).status == "pending"  # the item left for the session was given back
    thread = page.locator("#sessionpage-thread")
    boundaries = thread.locator(".trace-boundary")
    expect(boundaries).to_have_count(2)
    expect(boundaries.locator(".boundary-label")).to_have_text(["Trace 1 of 2", "Trace 2 of 2"])
    expect(boundaries.last).to_contain_text("reviewed on its own: pending")
    # Each trace as recorded: the second resends the first turn as its history.
    expect(thread.locator(".turn-user .content")).to_have_text([SUPPORT[0][0], SUPPORT[0][0], SUPPORT[1][0]])
    expect(page.locator("#sessionpage-timeline li")).to_contain_text("lookup_order")
    expect(page.locator("#sessionpage-meta")).to_contain_text("user-7")
    page.keyboard.press("Escape")  # back to the item it was opened from
    expect(page.locator("#item-title")).to_contain_text(f"Item #{spot[1]} ")
    link.click()
    page.reload()  # the session view is a link of its own
    expect(page.locator("#sessionpage-title code")).to_have_text(conversation)
    page.keyboard.press("Escape")
    expect(page.locator("#queue-view")).to_be_visible()

    # A conversation id with slashes (the app's own: tenant/chat/42) opens its session.
    slashed = f"tenant/chat/{uuid.uuid4().hex[:8]}"
    [odd] = service.conversation(slashed, SUPPORT[:1], tier="spot_check")
    page.goto(f"{service.base}/#item={odd}")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{odd} ")
    page.locator("#item-meta a.session-link").click()
    expect(page.locator("#sessionpage-title code")).to_have_text(slashed)
    page.keyboard.press("Escape")

    # A session that cannot be opened (the store is down) leaves the item as it was, lease kept.
    page.route(
        "**/v1/sessions/**",
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"detail": "store is down"}'),
    )
    expect(page.locator("#item-title")).to_contain_text(f"Item #{odd} ")
    page.locator("#item-meta a.session-link").click()
    expect(page.locator("#flash")).to_contain_text("store is down")
    page.unroute("**/v1/sessions/**")
    expect(page.locator("#item-view")).to_be_visible()
    expect(page.locator("#approve")).to_be_enabled()
    expect(page).to_have_url(re.compile(f"#item={odd}$"))
    assert service.store.get(odd).lease_owner == "alice"

    # A trace reviewed within a session item links to that item.
    traces = service.conversation(f"conv-in-{uuid.uuid4().hex[:8]}", SUPPORT[:2])
    unit = service.session_item(traces[0])
    page.goto(f"{service.base}/#item={traces[0]}")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{traces[0]} ")
    expect(page.locator("#lease-banner")).to_contain_text(f"reviewed within session item #{unit}")
    page.locator("#item-meta a.item-link").click()
    session_title(page, unit)
    expect(page.locator("#thread .trace-boundary")).to_have_count(2)


def test_session_content_is_shown_as_text_and_never_runs(tab: Tab, service: Service) -> None:
    payload = f"{SCRIPT} {IMG} {SVG}"
    conversation = f"conv-{IMG}"  # no "/": it is a path segment of GET /v1/sessions/{conversation_id}
    history: list[dict[str, Any]] = []
    traces = [
        service.ingest(
            "dual_approval",
            "red",
            [SCRIPT, f"rule:{SVG}"],
            turn_trace(conversation, n, history, f"Hi {payload} {n}", f"Sure! {payload}", user=SVG, tool=tool),
        )
        for n, tool in enumerate([None, (f"search{SVG}", {"query": payload})])
    ]
    unit = service.session_item(traces[0])
    spot = service.ingest(
        "spot_check", "red", [IMG], turn_trace(f"conv-spot-{SVG}", 0, [], f"Hey {payload}", "ok", user=IMG)
    )
    page = tab.page
    sign_in(page, service)
    mode(page, "Sessions")
    row = page.locator("tr.queue-row", has_text=conversation)
    expect(row).to_have_count(1)
    expect(row.locator(".chip", has_text="__pwned=1")).to_have_text(SCRIPT)
    row.click()
    session_title(page, unit)
    expect(page.locator("#item-title code.conversation-id")).to_have_text(conversation)
    thread = page.locator("#thread")
    expect(thread.locator(".turn-user .content")).to_have_text([f"Hi {payload} 0", f"Hi {payload} 1"])
    expect(thread.locator(".trace-boundary").first.locator(".chip")).to_have_text([SCRIPT, f"rule:{SVG}"])
    expect(page.locator("#timeline .tool-name")).to_have_text(f"search{SVG}")
    expect(page.locator("#timeline pre")).to_contain_text(SCRIPT)
    expect(page.locator("#item-meta")).to_contain_text(SVG)  # the user id
    # The turn choice names the traces by their place, never by their content.
    expect(page.locator("#correct-turn option")).to_have_count(2)

    # The spot check's read-only session.
    page.goto(f"{service.base}/#item={spot}")
    page.locator("#item-meta a.session-link").click()
    expect(page.locator("#sessionpage-title code")).to_have_text(f"conv-spot-{SVG}")
    expect(page.locator("#sessionpage-thread .turn-user .content")).to_have_text(f"Hey {payload}")
    expect(page.locator("#sessionpage-meta")).to_contain_text(IMG)

    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own app.js
    assert page.locator("svg").count() == page.locator("svg.span-bar").count()
    assert tab.dialogs == []

"""The reviewers' page's datasets parts in a real browser (Chromium under Playwright) against a real review service.

"Add to a dataset" on a decided item and the Datasets view (docs/review.md, "Datasets view"). One service (SQLite
store, uvicorn in a thread) for the module; items are ingested through the API and decided through it with reviewer
tokens, as a reviewer would on the page; what the page adds is checked through the datasets API. The browser and the
per-test tab (fresh context, no page errors, no CSP violation) are the item view's (test_page.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import test_page
from playwright.sync_api import Page, expect
from test_page import IMG, SCRIPT, Tab, agent_trace, sign_in

from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

browser = test_page.browser  # one Chromium for the module, a fresh context per test
tab = test_page.tab


@dataclass
class Service:
    base: str
    tokens: dict[str, str]
    items: dict[str, int] = field(default_factory=dict)

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)

    def ingest(self, key: str, user: str, answer: str, tier: str = "spot_check") -> int:
        trace_id, spans = agent_trace(user, answer)
        body = {"trace_id": trace_id, "tier": tier, "risk_tier": "yellow", "reasons": ["sampled"], "spans": spans}
        response = self.call("ingest", "POST", "/v1/review-items", json=body)
        assert response.status_code == 200, response.text
        self.items[key] = response.json()["items"][0]["id"]
        return self.items[key]

    def decide(self, key: str, outcome: str, who: str = "alice", **extra: Any) -> None:
        """Claims the item and decides it with every checklist item answered, as the page does."""
        item_id = self.items[key]
        claimed = self.call(who, "POST", f"/v1/review-items/{item_id}/claim")
        assert claimed.status_code == 200, claimed.text
        checklist = {name: True for name in claimed.json()["checklist"]}
        body = {"outcome": outcome, "checklist": checklist, **extra}
        decided = self.call(who, "POST", f"/v1/review-items/{item_id}/decision", json=body)
        assert decided.status_code == 200, decided.text

    def dataset(self, name: str, **params: Any) -> dict[str, Any]:
        response = self.call("alice", "GET", f"/v1/datasets/{name}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def add(self, name: str, key: str, tags: list[str]) -> dict[str, Any]:
        body = {"item_id": self.items[key], "tags": tags}
        response = self.call("bob", "POST", f"/v1/datasets/{name}/cases", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path_factory.mktemp('datasets-page') / 'review.db'}"
    store = ReviewStore(url)
    store.migrate()
    tokens = {
        "ingest": store.create_token("exporter", "ingest"),
        "alice": store.create_token("alice", "reviewer"),
        "bob": store.create_token("bob", "reviewer"),
    }
    server = ReviewServer(ServiceConfig(db=url), store, port=0)
    server.start()
    service = Service(f"http://127.0.0.1:{server.port}", tokens)
    service.ingest("capital", "What is the capital of Australia?", "Sydney is the capital.")
    service.decide("capital", "correct", correction="Canberra is the capital of Australia.")
    service.ingest("weather", "Will it rain in Lyon tomorrow?", "Light showers are likely.")
    service.decide("weather", "approve")
    service.ingest("open", "Where is my parcel?", "It is out for delivery.")
    service.ingest("dual", "Can I take ibuprofen with my pills?", "Ask your pharmacist.", tier="dual_approval")
    service.decide("dual", "approve")  # one approval of two: not reviewed yet
    yield service
    server.shutdown()
    store.shutdown()


def open_item(page: Page, service: Service, key: str) -> None:
    sign_in(page, service, path=f"/#item={service.items[key]}")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{service.items[key]} ")


def add_tag(page: Page, tag: str, key: str = "Enter") -> None:
    page.fill("#dataset-tag", tag)
    page.press("#dataset-tag", key)


# -- the tests --------------------------------------------------------------------------------------------------------


def test_a_decided_item_is_added_with_two_tags_and_adding_it_again_makes_no_duplicate(
    tab: Tab, service: Service
) -> None:
    page = tab.page
    open_item(page, service, "capital")
    expect(page.locator("#lease-banner")).to_contain_text("Read-only: this item is done")
    expect(page.locator("#dataset-add-fields")).to_be_visible()
    expect(page.locator("#dataset-add-closed")).to_be_hidden()

    # The help lists the new keys; `s` goes to the dataset's name.
    page.locator("#item-title").focus()
    page.keyboard.press("?")
    expect(page.locator("#help")).to_contain_text("on a decided item: add it to a dataset")
    expect(page.locator("#help")).to_contain_text("the review queue / the approval requests / the datasets")
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_hidden()
    page.keyboard.press("s")
    expect(page.locator("#dataset-name")).to_be_focused()
    # A name the service would refuse is refused here first, saying the rule.
    page.keyboard.type("Geo Regressions")
    page.click("#dataset-submit")
    expect(page.locator("#dataset-add-error")).to_contain_text('"Geo Regressions" is not a dataset name: use 1 to 64')
    expect(page.locator("#dataset-name")).to_have_attribute("aria-invalid", "true")
    page.fill("#dataset-name", "export")
    page.click("#dataset-submit")
    expect(page.locator("#dataset-add-error")).to_contain_text('"export" is reserved')
    page.fill("#dataset-name", "geo-regressions")

    # Tags are chips: Enter or a comma adds one, a bad or repeated one is refused; its button or Backspace removes one.
    add_tag(page, "geography")
    add_tag(page, "capital:au", ",")
    add_tag(page, "needs review")
    expect(page.locator("#dataset-add-error")).to_contain_text('"needs review" is not a tag')
    expect(page.locator("#dataset-tag")).to_have_value("needs review")
    add_tag(page, "geography")
    expect(page.locator("#dataset-add-error")).to_contain_text('The tag "geography" is already there.')
    add_tag(page, "temporary")
    chips = page.locator("#dataset-tags .tag-chip .tag-text")
    expect(chips).to_have_text(["geography", "capital:au", "temporary"])
    page.click('#dataset-tags button[aria-label="Remove the tag capital:au"]')
    expect(chips).to_have_text(["geography", "temporary"])
    expect(page.locator("#dataset-tag")).to_be_focused()
    page.keyboard.press("Backspace")
    expect(chips).to_have_text(["geography"])
    add_tag(page, "capital:au")
    page.fill("#dataset-tag", "")
    page.press("#dataset-tag", "Enter")  # Enter on an empty tag field submits

    item_id = service.items["capital"]
    result = page.locator("#dataset-add-result")
    expect(result).to_contain_text(f"Added item #{item_id} to geo-regressions as case_")
    expect(result).to_contain_text("Its tags: geography, capital:au.")
    expect(result).to_be_in_viewport()
    expect(page.locator("#dataset-add-error")).to_be_hidden()
    expect(chips).to_have_count(0)
    # The message is in the panel: nothing covers the item's title.
    expect(page.locator("#flash")).not_to_contain_text("geo-regressions")
    [case] = service.dataset("geo-regressions")["cases"]
    assert (case["item_id"], case["tags"], case["added_by"]) == (item_id, ["geography", "capital:au"], "alice")
    assert result.inner_text().count(case["case_id"]) == 1

    # Again, with one more tag: no second case; the tags are merged.
    add_tag(page, "australia")
    page.click("#dataset-submit")
    again = f"Item #{item_id} was already in geo-regressions as {case['case_id']}: not added twice"
    expect(result).to_contain_text(again)
    expect(result).to_contain_text("Its tags: geography, capital:au, australia.")
    listed = service.dataset("geo-regressions")
    assert listed["total"] == 1
    assert listed["cases"][0]["tags"] == ["geography", "capital:au", "australia"]

    # The name field offers the existing datasets on the next item.
    expect(page.locator("#dataset-names option")).to_have_count(1)
    expect(page.locator("#dataset-names option")).to_have_attribute("value", "geo-regressions")


def test_an_undecided_item_offers_no_add_and_s_says_why(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service)
    for key, banner in (("open", None), ("dual", "a second, different reviewer must decide it")):
        page.evaluate("(id) => { location.hash = `#item=${id}`; }", service.items[key])
        expect(page.locator("#item-title")).to_contain_text(f"Item #{service.items[key]} ")
        if banner:
            expect(page.locator("#lease-banner")).to_contain_text(banner)
        expect(page.locator("#dataset-add-fields")).to_be_hidden()
        expect(page.locator("#dataset-add-closed")).to_contain_text("Only a decided item can become a dataset case")
        page.locator("#item-title").focus()
        page.keyboard.press("s")
        expect(page.locator("#dataset-add-error")).to_have_text(
            f"Item #{service.items[key]} is not decided yet: only a decided item can be added to a dataset."
        )
        expect(page.locator("#dataset-add-error")).to_be_in_viewport()
        expect(page.locator("#item-title")).to_be_focused()
        page.keyboard.press("Escape")  # back to the queue, giving the item back
        expect(page.locator("#queue-view")).to_be_visible()
    # The service agrees: an item not reviewed yet is refused.
    refused = service.call("alice", "POST", "/v1/datasets/geo/cases", json={"item_id": service.items["open"]})
    assert refused.status_code == 409, refused.text


def test_the_datasets_view_lists_datasets_cases_and_downloads_jsonl(tab: Tab, service: Service) -> None:
    capital = service.add("regressions", "capital", ["geography", "fixed"])
    weather = service.add("regressions", "weather", [])
    service.add("weather-only", "weather", ["forecast"])
    page = tab.page
    sign_in(page, service)
    expect(page.locator("tr.queue-row").first).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Signed in as alice.")

    # `t` from a list opens the datasets, with their number of cases; the queue's message is gone.
    page.keyboard.press("t")
    expect(page.locator("#datasets-view")).to_be_visible()
    expect(page.locator("#tab-datasets")).to_have_attribute("aria-current", "page")
    expect(page.locator("#flash")).to_be_hidden()
    names = page.locator("tr.dataset-row code.dataset-name")
    counts = page.locator("tr.dataset-row .dataset-cases")
    listed = {d["name"]: d["cases"] for d in service.call("alice", "GET", "/v1/datasets").json()["datasets"]}
    assert listed["regressions"] == 2 and listed["weather-only"] == 1
    expect(names).to_have_text(list(listed))
    expect(counts).to_have_text([str(n) for n in listed.values()])

    # j/k and Enter open one: its cases with their ids, outcomes, tags, first user turn and source item.
    index = list(listed).index("regressions")
    expect(page.locator("tr.dataset-row").first).to_be_focused()
    for _ in range(index):
        page.keyboard.press("j")
    expect(page.locator("tr.dataset-row.selected code")).to_have_text("regressions")
    page.keyboard.press("Enter")
    expect(page.locator("#dataset-view")).to_be_visible()
    expect(page.locator("#dataset-title")).to_have_text("Dataset regressions")
    cases = page.locator("tr.case-row")
    expect(cases).to_have_count(2)
    first = cases.filter(has_text=capital["case_id"])
    expect(first.locator(".case-outcome")).to_have_text("correct")
    expect(first.locator(".tag-chip")).to_have_text(["geography", "fixed"])
    expect(first.locator(".case-preview")).to_contain_text("What is the capital of Australia?")
    expect(first.locator("a.case-source")).to_have_attribute("href", f"#item={service.items['capital']}")
    second = cases.filter(has_text=weather["case_id"])
    expect(second.locator(".case-outcome")).to_have_text("approve")
    expect(page.locator("#dataset-count")).to_have_text("cases 1 to 2 of 2")

    # Each kind downloads as a file fetched with the token: lines that parse and name the cases.
    with page.expect_download() as info:
        page.click("#download-eval")
    download = info.value
    assert download.suggested_filename == "regressions.eval.jsonl"
    lines = [json.loads(line) for line in open(download.path(), encoding="utf-8").read().splitlines() if line]
    assert sorted(line["id"] for line in lines) == sorted([capital["case_id"], weather["case_id"]])
    exported = {line["id"]: line for line in lines}
    assert sorted(exported[capital["case_id"]]["tags"]) == ["fixed", "geography"]
    assert exported[capital["case_id"]]["expected_output"]["content"] == "Canberra is the capital of Australia."
    expect(page.locator("#dataset-result")).to_have_text("Saved regressions.eval.jsonl: 2 lines.")
    with page.expect_download() as info:
        page.click("#download-sft")
    [sft] = [json.loads(line) for line in open(info.value.path(), encoding="utf-8").read().splitlines() if line]
    assert sft["messages"][-1]["content"] == "Canberra is the capital of Australia."
    with page.expect_download() as info:
        page.click("#download-preference")
    assert info.value.suggested_filename == "regressions.preference.jsonl"
    # The token went in a header only: never into a URL or the page's storage besides the session's own.
    assert service.tokens["alice"] not in page.url

    # Esc from a dataset goes back to the datasets; on a case, Enter follows its link to the reviewed item.
    page.keyboard.press("Escape")
    expect(page.locator("#datasets-view")).to_be_visible()
    page.locator("tr.dataset-row").nth(index).click()
    expect(page.locator("#dataset-view")).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(cases.first).to_be_focused()
    expect(page.locator("tr.case-row.selected")).to_contain_text(capital["case_id"])
    page.keyboard.press("Enter")
    expect(page.locator("#item-title")).to_contain_text(f"Item #{service.items['capital']} ")


def test_the_cases_are_paginated(tab: Tab, service: Service) -> None:
    for n in range(52):
        key = f"bulk-{n}"
        service.ingest(key, f"Bulk question number {n}?", f"Bulk answer {n}.")
        service.decide(key, "approve", who="bob")
        service.add("bulk", key, [f"n{n}"])
    page = tab.page
    sign_in(page, service, path="/#dataset=bulk")
    expect(page.locator("#dataset-title")).to_have_text("Dataset bulk")
    expect(page.locator("tr.case-row")).to_have_count(50)
    expect(page.locator("#dataset-count")).to_have_text("cases 1 to 50 of 52")
    expect(page.locator("#cases-prev")).to_be_disabled()
    page.click("#cases-next")
    expect(page.locator("tr.case-row")).to_have_count(2)
    expect(page.locator("#dataset-count")).to_have_text("cases 51 to 52 of 52")
    expect(page.locator("tr.case-row .tag-chip")).to_have_text(["n50", "n51"])
    expect(page.locator("#cases-next")).to_be_disabled()
    page.click("#cases-prev")
    expect(page.locator("tr.case-row")).to_have_count(50)
    expect(page.locator("tr.case-row").first.locator(".tag-chip")).to_have_text("n0")


def test_untrusted_tags_and_span_content_are_shown_as_text(tab: Tab, service: Service) -> None:
    service.ingest("xss", f"Hi {IMG} {SCRIPT} there", f"Sure {IMG}")
    service.decide("xss", "approve")
    service.add("untrusted", "xss", ["plain"])
    page = tab.page
    open_item(page, service, "xss")
    # A tag the service would refuse is refused on the page, and the message shows it as text.
    page.fill("#dataset-name", "untrusted")
    add_tag(page, IMG)
    expect(page.locator("#dataset-add-error")).to_contain_text(f'"{IMG}" is not a tag')
    expect(page.locator("#dataset-tags .tag-chip")).to_have_count(0)
    page.fill("#dataset-tag", "")
    # The service refuses it too (422 naming the field), whatever a client sends.
    body = {"item_id": service.items["xss"], "tags": [IMG]}
    refused = service.call("alice", "POST", "/v1/datasets/untrusted/cases", json=body)
    assert refused.status_code == 422, refused.text
    assert "tags" in refused.text
    page.locator("#item-title").focus()
    page.keyboard.press("Escape")
    page.keyboard.press("t")
    page.locator("tr.dataset-row", has_text="untrusted").click()
    row = page.locator("tr.case-row")
    expect(row.locator(".case-preview")).to_contain_text(f"Hi {IMG} {SCRIPT} there")
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own app.js
    assert tab.dialogs == []


def test_a_refusal_by_the_service_is_said_in_the_panel(tab: Tab, service: Service) -> None:
    service.ingest("full", "How do I reset my password?", "Use the reset link on the sign-in page.")
    service.decide("full", "approve")
    tags = [f"t{n}" for n in range(20)]
    service.add("full-tags", "full", tags)  # the most tags a case may have
    page = tab.page
    open_item(page, service, "full")
    page.fill("#dataset-name", "full-tags")
    add_tag(page, "one-more, another,bad tag")  # pasted: each valid one becomes a chip, the first bad one stays
    expect(page.locator("#dataset-tags .tag-text")).to_have_text(["one-more", "another"])
    expect(page.locator("#dataset-tag")).to_have_value("bad tag")
    expect(page.locator("#dataset-add-error")).to_contain_text('"bad tag" is not a tag')
    page.fill("#dataset-tag", "")
    page.click("#dataset-submit")
    # Each tag is valid, but the merged case would have 22: the service says so, and the page shows it.
    expect(page.locator("#dataset-add-error")).to_contain_text("at most 20 tags")
    expect(page.locator("#dataset-add-result")).to_be_hidden()
    assert service.dataset("full-tags")["cases"][0]["tags"] == tags
    # The chips stay, so the reviewer can remove one and try again.
    expect(page.locator("#dataset-tags .tag-text")).to_have_text(["one-more", "another"])


def test_a_link_to_a_dataset_that_is_not_there_opens_the_list_saying_so(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(page, service, path="/#dataset=no-such-set")
    expect(page.locator("#datasets-view")).to_be_visible()
    expect(page.locator("#datasets-error")).to_contain_text("no dataset no-such-set")
    assert page.url.endswith("#datasets")
    # A name the service refuses is said as the service says it, naming the path.
    page.evaluate("() => { location.hash = '#dataset=Not%20Valid'; }")
    expect(page.locator("#datasets-error")).to_contain_text("path.name")
    assert page.url.endswith("#datasets")

"""The fast screens give the answers of the slow paths they replace (property-based, plus the known edge cases)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanguard.processors.redaction import RedactionConfig, Redactor
from spanguard.processors.redaction.engine import _finditer, _runs_around
from spanguard.processors.redaction.screen import ROOMY, _partition
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.view import EventView, SpanView, with_attributes

# Fragments that trip the triggers, dates the digits trigger skips, and filler: random joins of them reach the edges
# (a run of digits across two values, a date next to a number, a literal split by the separator).
FRAGMENTS = [
    "2024-06-19",
    "06/19/2024",
    "19.06.2024",
    "claude-3-5-sonnet-20240620",
    "555-123-4567",
    "+1 (415) 555-0132",
    "4111 1111 1111 1111",
    "078-05-1121",
    "ada@example.org",
    "@",
    "sk-proj-abcdefghijklmnopqrstuv",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_",
    "GB82 WEST 1234 5698 7654 32",
    "10.0.0.1",
    "fe80::1",
    "12:30:45",
    "https://user:pw@host",
    "Bearer abcdefghijklmnopqrstuvwxyz",
    "SECRET=",
    "api_key",
    "token",
    "eyJhbGciOi",
    "-----BEGIN",
    "ORD-394548",
    "12345",
    "67",
    "-",
    " ",
    "\n",
    "\t",
    "/",
    ".",
    "(",
    "The order ships tomorrow.",
    "héllo",
    "٣٤٥٦٧٨٩١٢",
    '{"a":"b"}',
    "\\u00e9",
]

texts = st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=8).map("".join)


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    # A generous time budget: the properties compare two analyses of the same values, which must not differ because
    # one of them ran out of wall time on a busy machine.
    return Redactor(RedactionConfig(time_budget_ms=60_000))


def _python_triggers(redactor: Redactor, text: str) -> bool:
    lower = text.lower()
    return any(trigger(text, lower) for trigger in redactor._triggers)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_ascii_screen_finds_every_text_a_trigger_finds(redactor: Redactor, text: str) -> None:
    if not text.isascii():
        return
    if _python_triggers(redactor, text):
        assert redactor._screen(text), text


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("eta 2024-06-19, thanks", False),
        ("on 06/19/2024 at noon", False),
        ("call 555-123-4567", True),
        ("2024-06-19 5551234", True),
        ("model claude-3-5-sonnet-20240620", True),
        ("nothing here", False),
        ("mail ada@example.org", True),
    ],
)
def test_ascii_screen_keeps_the_digits_trigger_date_rule(redactor: Redactor, text: str, fires: bool) -> None:
    assert redactor._screen(text) is fires
    assert _python_triggers(redactor, text) is fires


def test_ascii_screen_finds_a_trigger_by_its_literals_and_leaves_its_patterns_to_analysis(redactor: Redactor) -> None:
    # The key trigger also needs "key ... =" or similar; the screen finds the literal, a superset that costs one lookup.
    assert redactor._screen("my Api_Key is") is True
    assert redactor._needs_analysis("my Api_Key is") is True


def _span(values: list[str]) -> SpanView:
    attributes = {f"attr.{i}": value for i, value in enumerate(values[:-1])}
    events = [EventView("e", 1, {"event.text": values[-1]})] if values else []
    return SpanView("0" * 32, "1" * 16, "s", attributes=attributes, events=events)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(texts, min_size=1, max_size=5))
def test_a_span_judged_clean_is_one_that_planning_leaves_unchanged(redactor: Redactor, values: list[str]) -> None:
    span = _span(values)
    planned = redactor._redact_spans_planned([span])[0]
    if redactor._is_clean(span):
        assert planned.attributes == span.attributes
        assert planned.events == span.events
    assert redactor.redact_span(span) == planned


def test_a_clean_span_is_handed_back_as_it_is_and_a_dirty_one_as_a_copy(redactor: Redactor) -> None:
    clean = _span(["The order ships tomorrow.", "eta 2024-06-19"])
    dirty = _span(["write to ada@example.org", "ok"])
    out = redactor.redact_spans([clean, dirty, clean])
    assert out[0] is clean and out[2] is clean
    assert out[1] is not dirty
    assert "ada@example.org" not in str(out[1].attributes)


def test_redaction_counts_the_values_of_clean_spans_too() -> None:
    redactor = Redactor(RedactionConfig())
    redactor.redact_spans([_span(["a", "b", "c"])])
    assert redactor.stats["values"] == 3


def test_always_dropped_keys_are_dropped_even_when_no_value_triggers() -> None:
    redactor = Redactor(RedactionConfig(always_drop=["*password*"]))
    span = SpanView("0" * 32, "1" * 16, "s", attributes={"db.password": "plain", "other": "fine"})
    assert "db.password" not in redactor.redact_span(span).attributes
    assert redactor._is_clean(span) is False


def test_a_dropped_key_inside_json_content_sends_the_span_the_long_way() -> None:
    redactor = Redactor(RedactionConfig(always_drop=["password"]))
    span = SpanView("0" * 32, "1" * 16, "s", attributes={"gen_ai.tool.call.arguments": '{"password":"hunter2"}'})
    assert redactor._is_clean(span) is False
    assert "hunter2" not in redactor.redact_span(span).attributes["gen_ai.tool.call.arguments"]


TOPIC_WORDS = [
    "I need legal advice",
    "my divorce",
    "self-harm",
    "I want to die",
    "want",
    "to",
    "die",
    "tax return",
    "in stock",
    "stock tip",
    "Cancer",
    "LOAN",
    " ",
    "mañana",
    "order",
    "court",
    "myself",
    "kill",
    "reason",
    "live",
    "no",
]


SEPARATORS = st.sampled_from([" ", "_", "-", "\n", "\u00a0", "", "x", "2", '"', "\\", "é"])
TOPIC_VALUES = st.tuples(
    st.lists(st.tuples(st.sampled_from(TOPIC_WORDS), SEPARATORS), max_size=6),
    st.sampled_from(["plain", "json", "json-ascii"]),
)


def _topic_value(parts: list[tuple[str, str]], form: str) -> tuple[str, str]:
    """(the raw attribute value, the text the exact patterns read): plain text, or the text as JSON message content."""
    text = "".join(word + sep for word, sep in parts)
    if form == "plain":
        return text, text
    messages = [{"role": "user", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]
    return json.dumps(messages, ensure_ascii=form == "json-ascii"), text


@settings(max_examples=500, deadline=None)
@given(value=TOPIC_VALUES)
def test_topic_screen_passes_every_category_whose_terms_are_in_the_text(
    value: tuple[list[tuple[str, str]], str],
) -> None:
    # The screen may pass more than the exact patterns find (they decide), never less; and never more than the
    # substring screen (every word of a term somewhere in the lower-cased raw value) it replaces.
    topics = RiskClassifier()._topics
    assert topics is not None
    raw, text = _topic_value(*value)
    lowered = text.lower()
    found = {index for index, (_, _, pattern) in enumerate(topics.categories) if pattern.search(lowered)}
    passed = set(topics._screen(raw))
    assert found <= passed, (raw, found, passed)
    raw_lower = raw.lower()
    substring = set()
    for words, indexes in topics.screen:
        if all(w in raw_lower for w in words):
            substring |= indexes
    assert passed <= substring or (topics.escaped and "\\" in raw)


def test_a_word_inside_an_identifier_does_not_pass_the_topic_screen() -> None:
    topics = RiskClassifier()._topics
    assert topics is not None
    assert not topics._screen('[{"role": "assistant", "finish_reason": "stop", "live": 1, "no": 2, "to": 3}]')
    assert topics._screen("there is no reason to live")


def test_with_attributes_copies_every_other_field() -> None:
    view = SpanView(
        "a" * 32,
        "b" * 16,
        "n",
        parent_span_id="c" * 16,
        kind="CLIENT",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        status_code="ERROR",
        status_message="m",
        attributes={"k": "v"},
        events=[EventView("e", 3, {})],
        resource={"r": 1},
        scope="s",
        source=object(),
    )
    copy = with_attributes(view, {"x": 1})
    expected = dataclasses.replace(view, attributes={"x": 1})
    for field in dataclasses.fields(SpanView):
        assert getattr(copy, field.name) == getattr(expected, field.name), field.name
    assert copy.source is view.source


# Addresses next to what may border them: punctuation, other @s, non-ASCII letters and spaces (NBSP, LINE SEPARATOR).
EMAIL_FRAGMENTS = [*FRAGMENTS, "a.b@c.d", "x@y", "@@", "é@ü.org", "u/ada@x.io", "\u00a0", "\u2028", "_", "'", "-@-"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(EMAIL_FRAGMENTS), min_size=0, max_size=10).map("".join))
def test_email_patterns_run_around_the_at_sign_find_what_they_find_in_the_whole_text(
    redactor: Redactor, text: str
) -> None:
    email = next(r for r in redactor._recognizers if r.entity == "EMAIL_ADDRESS")
    assert email.anchor == "@"
    assert email.patterns
    for compiled, _score in email.patterns:
        around = [m.span() for m in _finditer(compiled, text, _runs_around(text, "@"), time.perf_counter() + 60)]
        assert around == [m.span() for m in compiled.finditer(text)], text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_the_trigger_sets_give_the_ascii_screens_verdict(redactor: Redactor, text: str) -> None:
    # Planning asks the trigger sets whether an ASCII value needs analysis (analysis then reuses their answer).
    if not text.isascii():
        return
    assert redactor._hits_decide
    assert bool(redactor._trigger_sets(text)) is redactor._screen(text), text
    assert redactor._triggered(text) is redactor._screen(text), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_a_screen_split_over_several_re2_sets_answers_as_one_set_would(redactor: Redactor, text: str) -> None:
    # The screens' patterns are spread over a few RE2 sets (a single set's DFA grows too big on unseen text); which
    # set a pattern lands in must never change which patterns are found.
    if not text.isascii():
        return
    for screen in (redactor._span_screen, redactor._screen):
        single = re2.Set.SearchSet(ROOMY)
        for pattern in screen.patterns:
            single.Add(pattern.encode("ascii"))
        single.Compile()
        data = text.encode("ascii")
        assert sorted(screen._set.match(data)) == sorted(single.Match(data) or []), text


def test_the_span_screen_is_split_with_every_pattern_in_one_set(redactor: Redactor) -> None:
    patterns = redactor._span_screen.patterns
    groups = _partition(patterns, [i for i, p in enumerate(patterns) if '[^"\\\\\\n]*' in p])
    assert 1 < len(groups) < len(patterns)
    assert sorted(i for group in groups for i in group) == list(range(len(patterns)))

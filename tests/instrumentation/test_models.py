"""Pinned model versions: the pinned/alias table, the one-time warning and ``require_pinned_models``."""

from __future__ import annotations

import logging

import openai
import pytest
from fake_provider import text

import spanguard
from spanguard.instrumentation.models import ModelRegistry, is_pinned

PINNED = [
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "o3-2025-04-16",
    "gpt-4-0613",
    "gpt-3.5-turbo-0125",
    "claude-sonnet-4-5-20250929",
    "claude-3-5-sonnet-20241022",
    "claude-3-5-sonnet-v2@20241022",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "gemini-1.5-pro-002",
    "openai/gpt-4o-2024-08-06",
    "ft:gpt-4o-mini-2024-07-18:acme::abc123",
]
ALIASES = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o3",
    "claude-sonnet-4-5",
    "claude-3-5-sonnet-latest",
    "chatgpt-4o-latest",
    "gemini-1.5-pro",
    "gemini-pro-latest",
    "text-embedding-3-small",
    "",
]


@pytest.mark.parametrize("model", PINNED)
def test_snapshot_names_are_pinned(model):
    assert is_pinned(model) is True


@pytest.mark.parametrize("model", ALIASES)
def test_alias_names_are_not_pinned(model):
    assert is_pinned(model) is False


def test_pinned_model_is_recorded_true(instrument, openai_client, fake):
    telemetry = instrument()
    openai_client.chat.completions.create(model="gpt-4o-2024-08-06", messages=[{"role": "user", "content": "x"}])
    attributes = telemetry.span().attributes
    assert attributes["spanguard.model.pinned"] is True
    assert attributes["gen_ai.request.model"] == "gpt-4o-2024-08-06"
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"


def test_alias_warns_once_per_model_name(instrument, openai_client, fake, caplog):
    instrument()
    caplog.set_level(logging.WARNING, logger="spanguard")
    for _ in range(3):
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    warnings = [r.getMessage() for r in caplog.records if "alias" in r.getMessage()]
    assert len(warnings) == 2
    assert "'gpt-4o'" in warnings[0] and "'gpt-4o-mini'" in warnings[1]


def test_require_pinned_models_refuses_alias_before_sending(instrument, openai_client, fake):
    telemetry = instrument(require_pinned_models=True)
    with pytest.raises(spanguard.UnpinnedModelError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert "gpt-4o" in str(raised.value)
    assert fake.requests == []  # nothing was sent
    assert telemetry.spans() == []
    # A pinned model still goes through.
    openai_client.chat.completions.create(model="gpt-4o-2024-08-06", messages=[{"role": "user", "content": "x"}])
    assert len(fake.requests) == 1


def test_refusal_names_the_snapshot_the_provider_answered_last(telemetry, openai_client, fake):
    spanguard.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        fake.script(text("hi", model="gpt-4o-2024-11-20"))
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        # Switching the requirement on keeps what the registry learned about the alias.
        from spanguard.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().telemetry().models.require_pinned = True
        with pytest.raises(spanguard.UnpinnedModelError, match="gpt-4o-2024-11-20"):
            openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    finally:
        spanguard.uninstrument()


def test_require_pinned_on_anthropic_stream_helper(instrument, anthropic_client, fake):
    instrument(require_pinned_models=True)
    manager = anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    with pytest.raises(spanguard.UnpinnedModelError):
        with manager:
            pass
    assert fake.requests == []


def test_registry_is_bounded():
    registry = ModelRegistry(max_models=3)
    for index in range(10):
        registry.observe_request(f"model-{index}")
        registry.observe_response(f"model-{index}", f"model-{index}-2024-01-01")
    assert len(registry._pinned) == 3
    assert len(registry._snapshots) == 3


def test_openai_error_type_unchanged_under_require_pinned(instrument, openai_client, fake):
    instrument(require_pinned_models=True)
    with pytest.raises(ValueError):  # UnpinnedModelError is a ValueError, so generic handlers still catch it
        openai_client.chat.completions.create(model="o3", messages=[{"role": "user", "content": "x"}])
    assert not isinstance(spanguard.UnpinnedModelError("m", None), openai.OpenAIError)

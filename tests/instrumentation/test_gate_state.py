"""The state an approval request shows: the session's latest conversation, its earlier tool calls, models, context."""

from __future__ import annotations

import json

import pytest

import spanguard
from spanguard.instrumentation import gate_state


@pytest.fixture(autouse=True)
def _fresh() -> None:
    gate_state.enable_recording()
    yield
    gate_state.enable_recording(False)


def _call(messages_in: list, messages_out: list, model: str) -> None:
    gate_state.record_call(
        {"gen_ai.input.messages": json.dumps(messages_in), "gen_ai.output.messages": json.dumps(messages_out)},
        {"gen_ai.response.model": model},
    )


def test_the_state_holds_the_latest_conversation_its_earlier_tool_results_models_and_context() -> None:
    user = {"role": "user", "parts": [{"type": "text", "content": "refund A-1"}]}
    lookup = {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {}}]}
    result = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"paid": 80}}]}
    refund = {"role": "assistant", "parts": [{"type": "tool_call", "id": "c2", "name": "refund", "arguments": {}}]}
    with spanguard.session("conv-state"):
        _call([user], [lookup], "m-2024-01-01")
        _call([user, lookup, result], [refund], "m-2024-02-02")
        state = gate_state.capture({"tier": "gold"})
    assert state["messages"] == [user, lookup, result, refund]
    assert state["tool_calls"] == [{"id": "c1", "name": "lookup", "arguments": {}, "result": {"paid": 80}}]
    assert state["models"] == ["m-2024-01-01", "m-2024-02-02"]
    assert state["context"] == {"tier": "gold"}


def test_sessions_do_not_see_each_others_conversations_and_garbage_messages_are_ignored() -> None:
    with spanguard.session("conv-a"):
        _call([{"role": "user", "parts": []}], [], "m")
    with spanguard.session("conv-b"):
        gate_state.record_call({"gen_ai.input.messages": "not json"}, {})
        assert gate_state.capture()["messages"] == []
    with spanguard.session("conv-a"):
        assert gate_state.capture()["messages"] == [{"role": "user", "parts": []}]


def test_nothing_is_remembered_when_recording_is_off() -> None:
    gate_state.enable_recording(False)
    assert not gate_state.recording()
    with spanguard.session("conv-off"):
        assert gate_state.capture()["messages"] == []


def test_the_zero_code_instrumentor_records_for_gates_when_a_review_endpoint_is_set(monkeypatch, telemetry) -> None:
    from spanguard.instrumentation.openai import OpenAIInstrumentor

    gate_state.enable_recording(False)
    monkeypatch.setenv("SPANGUARD_REVIEW_ENDPOINT", "http://127.0.0.1:8080")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        assert gate_state.recording()
    finally:
        instrumentor.uninstrument()


def test_a_context_value_that_is_not_json_is_shown_as_text_and_still_redacted() -> None:
    import datetime as dt

    shown = gate_state.redact_for_review(
        {"arguments": {"n": 1}, "state": {"context": {"when": dt.date(2026, 12, 3), "who": "jane.doe@example.com"}}}
    )
    assert shown["arguments"] == {"n": 1}
    assert shown["state"]["context"]["when"] == "2026-12-03"
    assert "jane.doe@example.com" not in json.dumps(shown)

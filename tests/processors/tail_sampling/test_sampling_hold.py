"""The tail sampler's session hold: dropped traces of a session are kept after all when the session turns red."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError
from test_sampling import Clock, sampler, tid, trace

from spanguard.processors.risk import RiskClassifier
from spanguard.processors.sdk import RiskSamplingSpanProcessor
from spanguard.processors.tail_sampling import REASON_SESSION_RED, Decision, SamplingConfig, TailSampler
from spanguard.processors.view import SpanView
from spanguard.semconv import (
    GEN_AI_CONVERSATION_ID,
    SPANGUARD_APPROVAL_GATE,
    SPANGUARD_REVIEW_TIER,
    SPANGUARD_RISK_REASONS,
    SPANGUARD_RISK_TIER,
    SPANGUARD_SAMPLING_RATE,
)


def hold_sampler(clock: Clock, **config: Any) -> TailSampler:
    """Every non-red trace dropped by rate, so only the hold can keep it."""
    return sampler(clock, green_rate=0.0, yellow_rate=0.0, **config)


def turn(s: TailSampler, clock: Clock, spans: list[SpanView]) -> list[Decision]:
    """One turn: its spans arrive, its root grace passes, the sampler is polled."""
    out = s.add(spans)
    clock.advance(2.0)
    return out + s.poll()


def test_a_session_whose_third_turn_calls_a_red_tool_is_kept_whole() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    (first,) = turn(s, clock, trace(tid(1), 2, tier="green", reasons=("g",), session="S"))
    (second,) = turn(s, clock, trace(tid(2), 3, tier="yellow", reasons=("y",), session="S"))
    assert not first.keep and not second.keep and not first.recalled
    assert (s.stats["held_traces"], s.stats["held_spans"]) == (2, 5)

    red, *recalled = turn(s, clock, trace(tid(3), 2, tier="red", reasons=("red_tool",), session="S"))
    assert (red.trace_id, red.keep, red.tier, red.recalled) == (tid(3), True, "red", False)
    assert [d.trace_id for d in recalled] == [tid(1), tid(2)]  # oldest first, out of the call that decided red
    for decision, tier, reason, review, count in (
        (recalled[0], "green", "g", "spot_check", 2),
        (recalled[1], "yellow", "y", "factual_verification", 3),
    ):
        assert (decision.keep, decision.recalled, decision.early, decision.late) == (True, True, False, False)
        assert (decision.tier, decision.reasons, decision.rate) == (tier, (reason, REASON_SESSION_RED), 1.0)
        assert decision.review_tier == review
        assert len(decision.spans) == count
        for span in decision.spans:  # annotated like any kept trace, the classifier's annotation first
            assert span.attributes["test.annotated"] is True
            assert span.attributes[SPANGUARD_RISK_TIER] == tier
            assert span.attributes[SPANGUARD_RISK_REASONS] == (reason, REASON_SESSION_RED)
            assert span.attributes[SPANGUARD_SAMPLING_RATE] == 1.0
            assert span.attributes[SPANGUARD_REVIEW_TIER] == review
        assert [x.span_id for x in decision.spans] == sorted(x.span_id for x in decision.spans)

    (fourth,) = turn(s, clock, trace(tid(4), 1, tier="green", session="S"))
    assert (fourth.keep, fourth.reasons, fourth.recalled) == (True, (REASON_SESSION_RED,), False)
    stats = s.stats
    assert (stats["held_traces"], stats["held_spans"], stats["session_recalled"]) == (0, 0, 2)
    assert stats["session_red_kept"] == 1
    # each trace counted once, at its decision: the recalled ones as dropped
    assert stats["decisions"]["green"] == {"kept": 1, "dropped": 1}
    assert stats["decisions"]["yellow"] == {"kept": 0, "dropped": 1}
    assert stats["review_budget"]["spot_check"]["used"] == 2  # the recall went to review, and turn 4


def test_a_recall_happens_once_for_a_trace_of_several_sessions() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    spans = trace(tid(1), 2, session="A")
    spans[0].attributes[GEN_AI_CONVERSATION_ID] = "B"
    turn(s, clock, spans)
    _, recalled = turn(s, clock, trace(tid(2), tier="red", session="B"))
    assert recalled.trace_id == tid(1) and recalled.recalled
    assert turn(s, clock, trace(tid(3), tier="red", session="A"))[0].trace_id == tid(3)
    assert s.stats["session_recalled"] == 1


def test_held_traces_expire_and_are_then_dropped_for_good() -> None:
    clock = Clock()
    s = hold_sampler(clock, session_hold="10s")
    turn(s, clock, trace(tid(1), session="S"))  # decided at t=2, held until t=12
    clock.advance(9.0)
    assert s.poll() == [] and s.stats["held_traces"] == 1
    clock.advance(1.0)
    assert s.poll() == []  # expiry returns nothing: the trace was dropped already
    assert (s.stats["held_traces"], s.stats["held_spans"], s.stats["session_hold_expired"]) == (0, 0, 1)
    (red,) = turn(s, clock, trace(tid(2), tier="red", session="S"))
    assert red.trace_id == tid(2) and s.stats["session_recalled"] == 0


def test_a_held_trace_past_its_time_is_not_recalled_before_poll_removes_it() -> None:
    clock = Clock()
    s = hold_sampler(clock, session_hold=5)
    s.add(trace(tid(1), session="S"))
    s.flush()  # held from t=0; flush keeps the hold
    assert s.stats["held_traces"] == 1
    clock.advance(5.0)
    s.add(trace(tid(2), tier="red", session="S"))
    (red,) = s.flush()
    assert red.trace_id == tid(2)
    assert (s.stats["held_traces"], s.stats["session_hold_expired"], s.stats["session_recalled"]) == (0, 1, 0)


def test_the_span_bound_evicts_the_oldest_held_traces() -> None:
    clock = Clock()
    s = hold_sampler(clock, session_hold_spans=5)
    for n, session in enumerate(("A", "B", "C"), start=1):
        turn(s, clock, trace(tid(n), 2, session=session))
    assert (s.stats["held_traces"], s.stats["held_spans"], s.stats["session_hold_evicted"]) == (2, 4, 1)
    (red,) = turn(s, clock, trace(tid(10), tier="red", session="A"))  # A's trace was evicted: nothing to recall
    assert red.trace_id == tid(10)
    _, recalled = turn(s, clock, trace(tid(11), tier="red", session="B"))
    assert recalled.trace_id == tid(2) and len(recalled.spans) == 2
    turn(s, clock, trace(tid(20), 6, session="D"))  # larger than the bound on its own: not held
    assert s.stats["session_hold_evicted"] == 2 and s.stats["held_spans"] == 2  # C's trace is still held


def test_a_trace_without_a_conversation_id_is_never_held() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    (dropped,) = turn(s, clock, trace(tid(1), tier="yellow"))
    assert not dropped.keep and s.stats["held_traces"] == 0


def test_session_hold_zero_turns_the_hold_off() -> None:
    clock = Clock()
    s = hold_sampler(clock, session_hold=0)
    turn(s, clock, trace(tid(1), session="S"))
    assert s.stats["held_traces"] == 0
    (red,) = turn(s, clock, trace(tid(2), tier="red", session="S"))
    assert red.trace_id == tid(2)


def test_hold_settings_are_parsed_and_validated() -> None:
    config = SamplingConfig()
    assert (config.session_hold, config.session_hold_spans) == (120.0, 20_000)
    assert SamplingConfig(session_hold="2m").session_hold == 120.0
    assert SamplingConfig(session_hold="0").session_hold == 0.0
    for kwargs in (
        {"session_hold": -1},
        {"session_hold": "10"},
        {"session_hold": True},
        {"session_hold": float("inf")},
        {"session_hold_spans": 0},
        {"session_hold_spans": 1.5},
        {"session_hold_spans": True},
    ):
        with pytest.raises(ValidationError) as info:
            SamplingConfig(**kwargs)
        assert next(iter(kwargs)) in str(info.value)


def test_late_spans_of_a_held_trace_wait_with_it_and_follow_the_recall() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    spans = trace(tid(1), 4, session="S")  # the conversation id on the last span
    turn(s, clock, [spans[0], spans[3]])
    (late,) = s.add([spans[1]])  # still dropped, held with the rest
    assert late.late and not late.keep and s.stats["held_spans"] == 3
    _, recalled = turn(s, clock, trace(tid(2), tier="red", session="S"))
    assert [x.span_id for x in recalled.spans] == [spans[n].span_id for n in (0, 1, 3)]
    (after,) = s.add([spans[2]])  # after the recall: follows the new decision
    assert (after.late, after.keep, after.rate, after.reasons) == (True, True, 1.0, (REASON_SESSION_RED,))
    assert after.spans[0].attributes[SPANGUARD_RISK_REASONS] == (REASON_SESSION_RED,)
    assert s.stats["review_budget"]["spot_check"]["used"] == 1  # late spans take no review budget again


def test_a_late_approval_gate_recalls_its_own_trace_and_its_session() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    turn(s, clock, trace(tid(1), 2, session="S"))
    spans = trace(tid(2), 3, session="S")
    turn(s, clock, [spans[0], spans[2]])
    gate = replace(spans[1], attributes={SPANGUARD_APPROVAL_GATE: True})
    late, own, other = s.add([gate])
    assert (late.trace_id, late.late, late.keep, late.tier, len(late.spans)) == (tid(2), True, True, "red", 1)
    assert (own.trace_id, own.recalled, own.tier, own.reasons, own.rate) == (
        tid(2),
        True,
        "red",
        ("approval_gate",),
        1.0,
    )
    assert [x.span_id for x in own.spans] == [spans[0].span_id, spans[2].span_id]
    assert own.review_tier == late.review_tier == "dual_approval"
    assert (other.trace_id, other.recalled, other.reasons) == (tid(1), True, (REASON_SESSION_RED,))
    assert s.stats["review_budget"]["dual_approval"]["used"] == 1  # the gate's trace went to review once
    assert s.stats["session_recalled"] == 1 and s.stats["late_gate_upgrades"] == 1


def test_shutdown_discards_the_hold() -> None:
    clock = Clock()
    s = hold_sampler(clock)
    turn(s, clock, trace(tid(1), session="S"))
    s.add(trace(tid(2), tier="red", session="S2"))
    (red,) = s.shutdown()
    assert red.trace_id == tid(2)
    assert (s.stats["held_traces"], s.stats["held_spans"]) == (0, 0)


def test_expiry_touches_only_the_due_traces() -> None:
    clock = Clock()
    s = hold_sampler(clock, session_hold=100)
    for n in range(1000):
        s.add(trace(tid(n), 1, session=f"s{n}"))
        s.flush()
        clock.advance(0.01)  # held at 0.00, 0.01, ... 9.99
    clock.now = 104.995  # due: those held up to t=4.995
    s.poll()
    assert s.stats["held_traces"] == 500 and s.stats["session_hold_expired"] == 500
    assert next(iter(s._held.values())).trace_id == tid(500)


# ---------------------------------------------------------------------------------------------------------------------
# In process: the SDK's risk-sampling processor hands the recalled traces on


def test_the_sdk_processor_exports_the_recalled_turns_of_a_red_session() -> None:
    exporter = InMemorySpanExporter()
    sampler_ = TailSampler(SamplingConfig(green_rate=0.0, yellow_rate=0.0), RiskClassifier())
    processor = RiskSamplingSpanProcessor(SimpleSpanProcessor(exporter), sampler_)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    session = {GEN_AI_CONVERSATION_ID: "conv-7"}
    for n in (1, 2):
        with tracer.start_as_current_span(f"invoke_agent turn {n}", attributes=session):
            pass
        assert processor.force_flush()  # decided now: dropped, held
    assert exporter.get_finished_spans() == ()
    with tracer.start_as_current_span("invoke_agent turn 3", attributes=session):
        attributes = {**session, SPANGUARD_APPROVAL_GATE: True}
        with tracer.start_as_current_span("execute_tool refund", attributes=attributes):
            pass
    assert processor.force_flush()
    by_name = {span.name: span.attributes for span in exporter.get_finished_spans()}
    assert sorted(by_name) == [
        "execute_tool refund",
        "invoke_agent turn 1",
        "invoke_agent turn 2",
        "invoke_agent turn 3",
    ]
    for n in (1, 2):
        attributes = by_name[f"invoke_agent turn {n}"]
        assert attributes[SPANGUARD_RISK_REASONS] == (REASON_SESSION_RED,)
        assert attributes[SPANGUARD_SAMPLING_RATE] == 1.0
    assert by_name["invoke_agent turn 3"][SPANGUARD_RISK_TIER] == "red"
    provider.shutdown()

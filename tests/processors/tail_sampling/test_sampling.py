"""Risk-based tail sampling: whole traces, timing, late spans, memory bounds, replicas agreeing, sessions, budget."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import pytest
from pydantic import ValidationError

from spanguard.durations import parse_duration
from spanguard.processors.tail_sampling import (
    Decision,
    SamplingConfig,
    TailSampler,
    sampling_value,
    should_keep,
)
from spanguard.processors.view import SpanView
from spanguard.semconv import (
    GEN_AI_CONVERSATION_ID,
    SPANGUARD_APPROVAL_GATE,
    SPANGUARD_REVIEW_TIER,
    SPANGUARD_RISK_REASONS,
    SPANGUARD_RISK_TIER,
    SPANGUARD_SAMPLING_RATE,
)

DAY0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RANK = {"green": 0, "yellow": 1, "red": 2}


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Risk:
    tier: str
    reasons: tuple[str, ...]


class FakeClassifier:
    """Tier: the highest ``test.tier``; reasons: ``test.reasons`` in span order; red on an approval gate."""

    def __init__(self, *, gate_aware: bool = True) -> None:
        self.gate_aware = gate_aware
        self.calls = 0

    def classify(self, spans: Any) -> Risk:
        self.calls += 1
        tier, reasons = "green", []
        for span in spans:
            span_tier = span.attributes.get("test.tier", "green")
            if RANK[span_tier] > RANK[tier]:
                tier = span_tier
            reasons.extend(span.attributes.get("test.reasons", ()))
        if self.gate_aware and any(s.attributes.get(SPANGUARD_APPROVAL_GATE) is True for s in spans):
            tier = "red"
            reasons.append("approval_gate")
        return Risk(tier, tuple(dict.fromkeys(reasons)))

    def annotate(self, spans: Any, risk: Risk) -> list[SpanView]:
        return [
            replace(
                s,
                attributes={
                    **s.attributes,
                    SPANGUARD_RISK_TIER: risk.tier,
                    SPANGUARD_RISK_REASONS: risk.reasons,
                    "test.annotated": True,
                },
            )
            for s in spans
        ]


class BrokenClassifier:
    def classify(self, spans: Any) -> Any:
        raise RuntimeError("boom")

    def annotate(self, spans: Any, risk: Any) -> list[SpanView]:
        raise AssertionError("not called without a risk")


def tid(n: int) -> str:
    return f"{n:032x}"


def random_ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def trace(
    trace_id: str,
    spans: int = 3,
    *,
    tier: str | None = None,
    reasons: tuple[str, ...] = (),
    session: str | None = None,
    gate: bool | str = False,
    root: bool = True,
) -> list[SpanView]:
    """A trace: a root (unless ``root=False``) and children; tier/reasons on the first span, session on the last."""
    out = []
    for i in range(spans):
        is_root = root and i == 0
        out.append(
            SpanView(
                trace_id=trace_id,
                span_id=f"{i + 1:016x}",
                name=f"span {i}",
                parent_span_id=None if is_root else f"{100 + i:016x}" if not root else f"{1:016x}",
                start_time_unix_nano=1_000 + i,
                end_time_unix_nano=2_000 + i,
            )
        )
    if tier:
        out[0].attributes["test.tier"] = tier
    if reasons:
        out[0].attributes["test.reasons"] = reasons
    if session:
        out[-1].attributes[GEN_AI_CONVERSATION_ID] = session
    if gate:
        out[min(1, spans - 1)].attributes[SPANGUARD_APPROVAL_GATE] = gate
    return out


def sampler(
    clock: Clock | None = None, wall: Clock | None = None, classifier: Any = "fake", **config: Any
) -> TailSampler:
    return TailSampler(
        SamplingConfig(**config),
        FakeClassifier() if classifier == "fake" else classifier,
        clock=clock or Clock(),
        wall_clock=wall or Clock(DAY0 + 3600),
    )


def decide(s: TailSampler, spans: list[SpanView]) -> Decision:
    """Add one trace and flush: its single decision."""
    assert s.add(spans) == []
    decisions = s.flush()
    assert len(decisions) == 1
    return decisions[0]


# ---------------------------------------------------------------------------------------------------------------------
# Configuration and the deterministic hash


def test_config_defaults_and_validation() -> None:
    config = SamplingConfig()
    assert (config.decision_wait, config.root_grace, config.yellow_rate, config.green_rate) == (30.0, 2.0, 0.25, 0.01)
    assert (config.max_traces, config.decided_cache, config.red_session_cache) == (50_000, 100_000, 10_000)
    assert config.review_budget is None
    with pytest.raises(ValidationError):
        config.green_rate = 0.5  # type: ignore[misc]
    bad: list[dict[str, Any]] = [
        {"green_rate": 1.5},
        {"yellow_rate": -0.1},
        {"yellow_rate": True},
        {"max_traces": 0},
        {"decided_cache": -1},
        {"red_session_cache": 1.5},
        {"max_spans_per_trace": True},
        {"decision_wait": 0},
        {"root_grace": -1},
        {"decision_wait": "10"},
        {"decision_wait": "ten seconds"},
        {"decision_wait": True},
        {"decision_wait": float("inf")},
        {"review_budget": {"unknown_tier": 3}},
        {"review_budget": {"spot_check": -1}},
        {"unknown_key": 1},
    ]
    for kwargs in bad:
        with pytest.raises(ValidationError) as info:
            SamplingConfig(**kwargs)
        assert next(iter(kwargs)) in str(info.value)


def test_durations_accept_seconds_and_go_strings() -> None:
    config = SamplingConfig(decision_wait="1m30s", root_grace="500ms")
    assert (config.decision_wait, config.root_grace) == (90.0, 0.5)
    assert SamplingConfig(decision_wait=5).decision_wait == 5.0
    assert parse_duration("0") == 0.0
    assert parse_duration("1h") == 3600.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("250us") == pytest.approx(0.00025)
    for bad in ("", "s", "10", "-1s", "1d", "1s junk"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_sampling_value_is_the_documented_hash() -> None:
    key = "conversation-42"
    digest = hashlib.sha256(b"spanguard-sampling:" + key.encode()).digest()
    assert sampling_value(key) == int.from_bytes(digest[:8], "big") / 2**64
    keys = [f"k{i}" for i in range(2000)]
    assert all(should_keep(k, 1.0) for k in keys)
    assert not any(should_keep(k, 0.0) for k in keys)
    # thresholds nest: kept at a rate means kept at every higher rate
    for k in keys:
        if should_keep(k, 0.01):
            assert should_keep(k, 0.25)
        assert should_keep(k, 0.25) == (sampling_value(k) < 0.25)


# ---------------------------------------------------------------------------------------------------------------------
# Whole traces, tiers and rates


def test_red_trace_is_kept_whole_and_annotated() -> None:
    s = sampler()
    spans = trace(tid(1), 4, tier="red", reasons=("error_status",))
    d = decide(s, spans)
    assert (d.keep, d.tier, d.reasons, d.rate, d.review_tier, d.early, d.late) == (
        True,
        "red",
        ("error_status",),
        1.0,
        "dual_approval",
        False,
        False,
    )
    assert sorted(x.span_id for x in d.spans) == sorted(x.span_id for x in spans)
    for span in d.spans:
        assert span.attributes[SPANGUARD_RISK_TIER] == "red"
        assert span.attributes[SPANGUARD_RISK_REASONS] == ("error_status",)
        assert span.attributes[SPANGUARD_SAMPLING_RATE] == 1.0
        assert span.attributes[SPANGUARD_REVIEW_TIER] == "dual_approval"
        assert span.attributes["test.annotated"] is True  # the classifier's own annotate ran
    # the inputs are never changed
    assert all(SPANGUARD_RISK_TIER not in x.attributes for x in spans)


def test_dropped_trace_is_dropped_whole() -> None:
    s = sampler(green_rate=0.0, yellow_rate=0.0)
    for n, tier in enumerate(("green", "yellow")):
        d = decide(s, trace(tid(n), 5, tier=tier))
        assert (d.keep, d.tier, d.spans, d.review_tier) == (False, tier, (), None)
        assert d.rate == 0.0
    assert s.stats["spans_dropped"] == 10


def test_without_classifier_every_trace_is_green() -> None:
    s = sampler(classifier=None, green_rate=1.0)
    d = decide(s, trace(tid(1), tier="red"))
    assert (d.keep, d.tier, d.reasons, d.rate, d.review_tier) == (True, "green", (), 1.0, "spot_check")
    assert all(x.attributes[SPANGUARD_RISK_TIER] == "green" for x in d.spans)


@pytest.mark.parametrize(("tier", "rate", "tolerance"), [("green", 0.01, 0.003), ("yellow", 0.25, 0.012)])
def test_rates_hold_statistically_and_traces_stay_whole(tier: str, rate: float, tolerance: float) -> None:
    s = sampler(max_traces=100_000)
    ids = random_ids(20_000, seed=len(tier))
    for trace_id in ids:
        s.add(trace(trace_id, 3, tier=tier))
    decisions = s.flush()
    assert len(decisions) == len(ids)
    kept = [d for d in decisions if d.keep]
    assert abs(len(kept) / len(ids) - rate) < tolerance
    assert all(len(d.spans) == 3 and d.rate == rate for d in kept)
    assert all(d.spans == () for d in decisions if not d.keep)
    assert {d.trace_id for d in kept} == {t for t in ids if should_keep(t, rate)}


def test_review_tier_per_risk_tier() -> None:
    s = sampler(green_rate=1.0, yellow_rate=1.0)
    expected = {"green": "spot_check", "yellow": "factual_verification", "red": "dual_approval"}
    for n, tier in enumerate(expected):
        d = decide(s, trace(tid(n), tier=tier))
        assert d.review_tier == expected[tier]
        assert {x.attributes[SPANGUARD_REVIEW_TIER] for x in d.spans} == {expected[tier]}
        assert {x.attributes[SPANGUARD_SAMPLING_RATE] for x in d.spans} == {1.0}


# ---------------------------------------------------------------------------------------------------------------------
# Timing


def test_root_plus_grace_decides_before_decision_wait() -> None:
    clock = Clock()
    s = sampler(clock, decision_wait=30, root_grace=2, green_rate=1.0)
    spans = trace(tid(1), 3)
    assert s.add(spans[1:]) == []  # children first
    clock.advance(1)
    assert s.add(spans[:1]) == []  # the root at t=1
    clock.now = 2.999
    assert s.poll() == []
    clock.now = 3.0
    (d,) = s.poll()
    assert (d.trace_id, d.keep, d.early, d.late, len(d.spans)) == (tid(1), True, False, False, 3)
    assert s.poll() == []


def test_decision_wait_decides_traces_without_root() -> None:
    clock = Clock()
    s = sampler(clock, decision_wait="30s", root_grace="2s", green_rate=1.0)
    s.add(trace(tid(1), 3, root=False))
    clock.advance(10)
    s.add(trace(tid(2), 2, root=False))
    clock.now = 29.99
    assert s.poll() == []
    clock.now = 30.0
    assert [d.trace_id for d in s.poll()] == [tid(1)]
    clock.now = 40.0
    assert [d.trace_id for d in s.poll()] == [tid(2)]
    assert s.stats["buffered_traces"] == 0


def test_a_root_arriving_just_before_the_wait_does_not_extend_it() -> None:
    clock = Clock()
    s = sampler(clock, decision_wait=30, root_grace=2)
    spans = trace(tid(1), 2)
    s.add(spans[1:])
    clock.now = 29
    s.add(spans[:1])
    clock.now = 30
    assert [d.trace_id for d in s.poll()] == [tid(1)]


def test_poll_decides_in_deadline_order() -> None:
    clock = Clock()
    s = sampler(clock, decision_wait=30, root_grace=2, green_rate=1.0)
    s.add(trace(tid(1), 2, root=False))  # due at 30
    clock.now = 5
    s.add(trace(tid(2), 2))  # root: due at 7
    clock.now = 10
    s.add(trace(tid(3), 2, root=False))  # due at 40
    clock.now = 100
    assert [d.trace_id for d in s.poll()] == [tid(2), tid(1), tid(3)]


# ---------------------------------------------------------------------------------------------------------------------
# Late spans


def test_late_spans_of_a_kept_trace_follow_its_decision() -> None:
    clock = Clock()
    s = sampler(clock)
    spans = trace(tid(1), 4, tier="red", reasons=("tool_loop",))
    s.add(spans[:2])
    clock.advance(2)
    (first,) = s.poll()
    assert first.keep and len(first.spans) == 2
    late = s.add([*spans[2:], *trace(tid(2), 1, tier="green")])
    assert len(late) == 1
    (d,) = late
    assert (d.trace_id, d.keep, d.late, d.early) == (tid(1), True, True, False)
    assert (d.tier, d.reasons, d.rate, d.review_tier) == (first.tier, first.reasons, first.rate, first.review_tier)
    assert [x.span_id for x in d.spans] == [spans[2].span_id, spans[3].span_id]
    for span in d.spans:
        assert span.attributes[SPANGUARD_RISK_TIER] == "red"
        assert span.attributes[SPANGUARD_RISK_REASONS] == ("tool_loop",)
        assert span.attributes[SPANGUARD_SAMPLING_RATE] == 1.0
        assert span.attributes[SPANGUARD_REVIEW_TIER] == "dual_approval"
    # late spans do not take review budget again, and are counted
    assert s.stats["review_budget"]["dual_approval"]["used"] == 1
    assert s.stats["late_spans"] == 2
    assert s.stats["late_spans_kept"] == 2
    assert s.stats["buffered_traces"] == 1  # tid(2) is new


def test_late_spans_of_a_dropped_trace_are_dropped() -> None:
    clock = Clock()
    s = sampler(clock, green_rate=0.0)
    spans = trace(tid(1), 3, tier="yellow", reasons=("x",))  # a late span saying yellow does not change a decision
    s.add(spans[:1])
    s.flush()
    (d,) = s.add(spans[1:])
    assert (d.keep, d.late, d.spans, d.review_tier) == (False, True, (), None)
    assert s.stats["late_spans_dropped"] == 2
    assert s.stats["buffered_traces"] == 0


def test_late_span_of_a_forgotten_decision_starts_a_new_buffer() -> None:
    clock = Clock()
    s = sampler(clock, decided_cache=1, green_rate=1.0)
    a = trace(tid(1), 2)
    s.add(a[:1])
    s.add(trace(tid(2), 1))
    assert len(s.flush()) == 2  # tid(1) then tid(2): tid(1) is forgotten
    assert s.add(a[1:]) == []
    assert s.stats["buffered_traces"] == 1
    clock.advance(30)
    (d,) = s.poll()
    assert (d.trace_id, d.late, len(d.spans)) == (tid(1), False, 1)


def test_late_spans_keep_a_decision_remembered() -> None:
    s = sampler(decided_cache=2, green_rate=1.0)
    first = trace(tid(1), 3)
    s.add(first[:1])
    s.flush()
    s.add(trace(tid(2), 1))
    s.flush()
    s.add(first[1:2])  # late: tid(1) becomes the most recently used
    s.add(trace(tid(3), 1))
    s.flush()  # forgets tid(2), not tid(1)
    (d,) = s.add(first[2:])
    assert d.late and d.trace_id == tid(1)


# ---------------------------------------------------------------------------------------------------------------------
# Memory bounds


def test_max_traces_decides_the_oldest_early_and_never_drops_unseen() -> None:
    clock = Clock()
    s = sampler(clock, max_traces=10, green_rate=1.0)
    decisions: list[Decision] = []
    sent: set[tuple[str, str]] = set()
    for n in range(100):
        spans = trace(tid(n), 3)
        sent |= {(x.trace_id, x.span_id) for x in spans}
        decisions += s.add(spans)
        assert s.stats["buffered_traces"] <= 10
        clock.advance(0.01)
    assert [d.trace_id for d in decisions] == [tid(n) for n in range(90)]  # oldest first
    assert all(d.early and not d.late for d in decisions)
    assert s.stats["early_decisions"] == 90
    decisions += s.flush()
    got = [(x.trace_id, x.span_id) for d in decisions for x in d.spans]
    assert len(got) == len(set(got)) and set(got) == sent


def test_max_traces_with_dropping_still_decides_every_trace() -> None:
    s = sampler(max_traces=3, green_rate=0.0)
    decisions: list[Decision] = []
    for n in range(20):
        decisions += s.add(trace(tid(n), 2, tier="red" if n % 5 == 0 else "green"))
    decisions += s.shutdown()
    assert sorted(d.trace_id for d in decisions) == sorted(tid(n) for n in range(20))
    assert all(d.keep == (int(d.trace_id, 16) % 5 == 0) for d in decisions)


def test_spans_of_an_early_decided_trace_follow_as_late() -> None:
    s = sampler(max_traces=1, green_rate=1.0)
    a = trace(tid(1), 3)
    s.add(a[:1])
    (early,) = s.add(trace(tid(2), 1))
    assert early.trace_id == tid(1) and early.early
    (late,) = s.add(a[1:])
    assert (late.trace_id, late.late, len(late.spans)) == (tid(1), True, 2)


def test_max_spans_per_trace() -> None:
    s = sampler(max_spans_per_trace=3, green_rate=1.0)
    decisions = s.add(trace(tid(1), 5))
    assert [(d.early, d.late, len(d.spans)) for d in decisions] == [(True, False, 3), (False, True, 2)]
    assert s.stats["buffered_spans"] == 0


def test_max_spans_bounds_buffered_spans() -> None:
    s = sampler(max_spans=10, green_rate=1.0)
    early: list[Decision] = []
    for n in range(10):
        early += s.add(trace(tid(n), 4))
        assert s.stats["buffered_spans"] <= 10
    assert early and all(d.early for d in early)
    assert [d.trace_id for d in early] == [tid(n) for n in range(len(early))]


def test_deadline_heap_stays_proportional_to_the_buffer() -> None:
    s = sampler(classifier=None, max_traces=5)
    for n in range(20_000):
        s.add(trace(tid(n), 1))
    assert len(s._heap) <= 2 * 5 + 1024 + 1
    assert s.stats["early_decisions"] == 20_000 - 5


# ---------------------------------------------------------------------------------------------------------------------
# Replicas, sessions


def test_two_instances_agree_whatever_the_arrival_order() -> None:
    rng = random.Random(3)
    traces = []
    for n, trace_id in enumerate(random_ids(600, seed=11)):
        tier = rng.choice(["green", "green", "yellow", "red"])
        reasons = tuple(rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)))
        # sessions only on non-red traces: which later traces a red session keeps depends on the order of decisions
        session = f"s{n % 150}" if n % 2 and tier != "red" else None
        spans = trace(trace_id, rng.randint(1, 5), tier=tier, session=session)
        for span, reason in zip(spans, reasons, strict=False):
            span.attributes["test.reasons"] = (reason,)  # reasons spread over spans: order-sensitive classifier
        traces.append(spans)
    config = {"green_rate": 0.2, "review_budget": {"spot_check": 10, "factual_verification": 1000}}
    a = sampler(**config)
    b = sampler(**config)
    for spans in traces:
        a.add(spans)
    shuffled = [span for spans in traces for span in spans]
    rng.shuffle(shuffled)
    b.add(shuffled[:1000])
    b.add(shuffled[1000:])

    def outcome(d: Decision) -> tuple[Any, ...]:
        return (d.keep, d.tier, d.reasons, d.rate, sorted((x.span_id, sorted(x.attributes.items())) for x in d.spans))

    # deciding in a different order changes which traces the small review budget reaches, not keep/drop
    da = {d.trace_id: outcome(d) for d in a.flush()}
    db = {d.trace_id: outcome(d) for d in b.flush()}
    assert len(da) == 600 and da.keys() == db.keys()
    assert {k: v[:4] for k, v in da.items()} == {k: v[:4] for k, v in db.items()}
    assert 0 < sum(v[0] for v in da.values()) < 600


def test_two_instances_agree_on_every_field_given_the_same_inputs() -> None:
    def run() -> list[Decision]:
        clock = Clock()
        s = sampler(clock, review_budget={"factual_verification": 5}, yellow_rate=0.5)
        out: list[Decision] = []
        for n, trace_id in enumerate(random_ids(200, seed=5)):
            out += s.add(trace(trace_id, 2, tier="yellow", reasons=("r",) * (n % 2)))
            clock.advance(0.5)
            out += s.poll()
        return out + s.shutdown()

    assert run() == run()


def test_a_session_is_kept_or_dropped_whole_across_its_traces() -> None:
    s = sampler(max_traces=100_000)
    ids = iter(random_ids(1200, seed=2))
    sessions = [f"conversation-{n}" for n in range(300)]
    session_of: dict[str, str] = {}
    for session in sessions:
        for _ in range(4):
            trace_id = next(ids)
            session_of[trace_id] = session
            s.add(trace(trace_id, 3, tier="yellow", session=session))
    by_session: dict[str, list[bool]] = {}
    for d in s.flush():
        by_session.setdefault(session_of[d.trace_id], []).append(d.keep)
    assert all(keeps in ([True] * 4, [False] * 4) for keeps in by_session.values())
    kept = {k for k, keeps in by_session.items() if keeps[0]}
    assert kept == {x for x in sessions if should_keep(x, 0.25)}
    assert 30 < len(kept) < 120


def test_session_key_is_order_independent_with_several_conversation_ids() -> None:
    keys = [f"k{n}" for n in range(200)]
    a = next(k for k in keys if should_keep(k, 0.25))
    b = next(k for k in keys if not should_keep(k, 0.25) and k > a)
    for order in ((a, b), (b, a)):
        spans = trace(tid(1), 3, tier="yellow")
        spans[1].attributes[GEN_AI_CONVERSATION_ID] = order[0]
        spans[2].attributes[GEN_AI_CONVERSATION_ID] = order[1]
        assert decide(sampler(), spans).keep  # the smallest id (a) decides
    spans = trace(tid(2), 2, tier="yellow", session=b)
    assert not decide(sampler(), spans).keep


def test_a_red_session_keeps_its_later_traces() -> None:
    s = sampler(green_rate=0.0, session_hold=0)  # no hold: the earlier trace is not recalled (test_sampling_hold.py)
    assert not decide(s, trace(tid(1), tier="green", session="S")).keep  # before it turned red: sampled
    red = decide(s, trace(tid(2), tier="red", reasons=("leak",), session="S"))
    assert red.keep and red.tier == "red"
    later = decide(s, trace(tid(3), tier="green", reasons=("a",), session="S"))
    assert (later.keep, later.tier, later.reasons, later.rate, later.review_tier) == (
        True,
        "green",
        ("a", "session_red"),
        1.0,
        "spot_check",
    )
    assert all(x.attributes[SPANGUARD_RISK_REASONS] == ("a", "session_red") for x in later.spans)
    assert not decide(s, trace(tid(4), tier="green", session="other")).keep
    assert s.stats["session_red_kept"] == 1
    assert s.stats["red_sessions"] == 1


def test_a_session_turning_red_while_a_trace_waits_keeps_it() -> None:
    clock = Clock()
    s = sampler(clock, green_rate=0.0)
    s.add(trace(tid(1), 2, tier="green", session="S", root=False))  # waits 30 s
    s.add(trace(tid(2), 2, tier="red", session="S"))  # root: due after 2 s
    clock.advance(2)
    assert [(d.trace_id, d.keep) for d in s.poll()] == [(tid(2), True)]
    clock.advance(30)
    (d,) = s.poll()
    assert (d.trace_id, d.keep, d.reasons) == (tid(1), True, ("session_red",))


def test_red_session_cache_is_bounded() -> None:
    s = sampler(green_rate=0.0, red_session_cache=1)
    decide(s, trace(tid(1), tier="red", session="S1"))
    decide(s, trace(tid(2), tier="red", session="S2"))  # S1 forgotten
    assert s.stats["red_sessions"] == 1
    assert not decide(s, trace(tid(3), session="S1")).keep
    assert decide(s, trace(tid(4), session="S2")).keep


# ---------------------------------------------------------------------------------------------------------------------
# Approval gates


def test_approval_gate_trace_is_red_and_kept_without_a_classifier() -> None:
    s = sampler(classifier=None, green_rate=0.0)
    d = decide(s, trace(tid(1), gate=True))
    assert (d.keep, d.tier, d.reasons, d.rate, d.review_tier) == (True, "red", ("approval_gate",), 1.0, "dual_approval")
    assert decide(s, trace(tid(2), gate="true")).keep  # a string "true" from a non-spanguard source counts


def test_approval_gate_overrides_the_classifier() -> None:
    s = sampler(classifier=FakeClassifier(gate_aware=False), yellow_rate=0.0)
    d = decide(s, trace(tid(1), tier="yellow", reasons=("x",), gate=True))
    assert (d.keep, d.tier, d.reasons) == (True, "red", ("x", "approval_gate"))
    assert all(x.attributes[SPANGUARD_RISK_TIER] == "red" for x in d.spans)
    # a classifier that already says red keeps its own reasons
    d = decide(sampler(), trace(tid(2), gate=True))
    assert (d.tier, d.reasons) == ("red", ("approval_gate",))


def test_approval_gate_survives_memory_pressure() -> None:
    s = sampler(max_traces=1, green_rate=0.0, classifier=None)
    s.add(trace(tid(1), 2, gate=True))
    (early,) = s.add(trace(tid(2), 1))
    assert early.trace_id == tid(1) and early.early and early.keep and early.tier == "red"


def test_a_late_approval_gate_revives_a_dropped_trace() -> None:
    s = sampler(green_rate=0.0)
    spans = trace(tid(1), 4, session="S")
    s.add(spans[:1])
    (dropped,) = s.flush()
    assert not dropped.keep
    gate = replace(spans[1], attributes={SPANGUARD_APPROVAL_GATE: True})
    (d,) = s.add([gate])
    assert (d.keep, d.late, d.tier, d.reasons, d.rate, d.review_tier) == (
        True,
        True,
        "red",
        ("approval_gate",),
        1.0,
        "dual_approval",
    )
    (after,) = s.add(spans[2:])
    assert after.keep and after.tier == "red" and len(after.spans) == 2
    assert s.stats["late_gate_upgrades"] == 1
    assert decide(s, trace(tid(2), session="S")).reasons == ("session_red",)


# ---------------------------------------------------------------------------------------------------------------------
# Review budget


def test_review_budget_per_tier_and_day() -> None:
    wall = Clock(DAY0 + 100)
    s = sampler(wall=wall, green_rate=1.0, review_budget={"spot_check": 3}, review_reserve=0.0)
    decisions = [decide(s, trace(tid(n), 2, tier="green")) for n in range(5)]
    assert [d.review_tier for d in decisions] == ["spot_check"] * 3 + [None] * 2
    assert all(d.keep and len(d.spans) == 2 for d in decisions)  # over budget: still kept for backends
    assert all(SPANGUARD_REVIEW_TIER not in x.attributes for d in decisions[3:] for x in d.spans)
    assert all(x.attributes[SPANGUARD_SAMPLING_RATE] == 1.0 for d in decisions for x in d.spans)
    # the other tiers are unlimited
    assert all(decide(s, trace(tid(10 + n), tier="red")).review_tier == "dual_approval" for n in range(10))
    stats = s.stats["review_budget"]
    assert stats["spot_check"] == {"used": 3, "limit": 3, "denied": 2}
    assert stats["dual_approval"] == {"used": 10, "limit": None, "denied": 0}
    assert s.stats["review_day"] == "2026-01-01"
    wall.now = DAY0 + 86_400 - 0.001  # still the same UTC day
    assert decide(s, trace(tid(30), tier="green")).review_tier is None
    wall.now = DAY0 + 86_400  # the next UTC day: the budget resets
    assert s.stats["review_budget"]["spot_check"] == {"used": 0, "limit": 3, "denied": 0}
    assert decide(s, trace(tid(31), tier="green")).review_tier == "spot_check"
    assert s.stats["review_day"] == "2026-01-02"


def test_zero_budget_never_reviews() -> None:
    s = sampler(yellow_rate=1.0, review_budget={"factual_verification": 0})
    d = decide(s, trace(tid(1), tier="yellow", reasons=("a", "b", "c")))
    assert d.keep and d.review_tier is None


def test_review_budget_reserve_goes_to_the_most_risky() -> None:
    # limit 5, reserve floor(5 * 0.4) = 2: three open slots, then only traces at least as risky as today's mean
    s = sampler(yellow_rate=1.0, review_budget={"factual_verification": 5}, review_reserve=0.4)
    reasons = [("a",), ("a", "b", "c"), ("a",), ("a",), ("a", "b"), ("a", "b", "c"), ("a", "b", "c")]
    got = [decide(s, trace(tid(n), tier="yellow", reasons=r)).review_tier for n, r in enumerate(reasons)]
    #      open      open      open      1 < 6/4   2 >= 8/5  3 >= 11/6  budget spent
    assert got == ["factual_verification"] * 3 + [None] + ["factual_verification"] * 2 + [None]
    assert s.stats["review_budget"]["factual_verification"] == {"used": 5, "limit": 5, "denied": 2}


def test_approval_gates_take_the_reserve_first() -> None:
    # limit 3, reserve 1: two open slots, then the reserve: a gate trace beats a richer-reasoned red trace's mean
    s = sampler(review_budget={"dual_approval": 3}, review_reserve=1 / 3)
    red = [decide(s, trace(tid(n), tier="red", reasons=("a", "b", "c"))).review_tier for n in range(2)]
    assert red == ["dual_approval"] * 2
    assert decide(s, trace(tid(2), tier="red", reasons=("a",))).review_tier is None  # below the mean: held back
    gated = decide(s, trace(tid(3), gate=True))  # one reason, below the mean, but an approval gate
    assert gated.review_tier == "dual_approval"
    over = decide(s, trace(tid(4), gate=True))  # budget spent: kept, red, not reviewed
    assert (over.keep, over.tier, over.review_tier) == (True, "red", None)


def test_an_upstream_review_tier_is_removed_when_the_budget_says_no() -> None:
    s = sampler(green_rate=1.0, review_budget={"spot_check": 0})
    spans = trace(tid(1), 2)
    spans[0].attributes[SPANGUARD_REVIEW_TIER] = "spot_check"
    d = decide(s, spans)
    assert all(SPANGUARD_REVIEW_TIER not in x.attributes for x in d.spans)


# ---------------------------------------------------------------------------------------------------------------------
# Lifecycle, failures, stats


def test_shutdown_without_use_and_idempotent() -> None:
    s = TailSampler()
    assert s.shutdown() == []
    assert s.shutdown() == []
    assert s.poll() == [] and s.flush() == []
    with pytest.raises(RuntimeError):
        s.add([])


def test_shutdown_drains_the_buffer_once() -> None:
    s = sampler(green_rate=1.0)
    s.add(trace(tid(1), 2) + trace(tid(2), 2, root=False))
    assert [d.trace_id for d in s.shutdown()] == [tid(1), tid(2)]
    assert s.shutdown() == []
    with pytest.raises(RuntimeError):
        s.add(trace(tid(3)))


def test_a_failing_classifier_keeps_the_trace_as_red() -> None:
    s = sampler(classifier=BrokenClassifier(), green_rate=0.0)
    d = decide(s, trace(tid(1), 2))
    assert (d.keep, d.tier, d.reasons, d.review_tier) == (True, "red", ("classification_failed",), "dual_approval")
    assert all(x.attributes[SPANGUARD_RISK_TIER] == "red" for x in d.spans)

    class OddTier(FakeClassifier):
        def classify(self, spans: Any) -> Risk:
            return Risk("purple", ())

    assert decide(sampler(classifier=OddTier()), trace(tid(2))).reasons == ("classification_failed",)
    assert s.stats["classifier_errors"] == 1


def test_classifier_sees_each_trace_once_in_start_order() -> None:
    seen: list[list[str]] = []

    class Recording(FakeClassifier):
        def classify(self, spans: Any) -> Risk:
            seen.append([x.span_id for x in spans])
            return super().classify(spans)

    s = sampler(classifier=Recording())
    spans = trace(tid(1), 4)
    s.add(list(reversed(spans)))
    s.flush()
    assert seen == [[x.span_id for x in spans]]


def test_stats() -> None:
    clock = Clock()
    s = sampler(clock, green_rate=0.0, yellow_rate=1.0, max_traces=2, review_budget={"dual_approval": 1})
    s.add(trace(tid(1), 2, tier="red"))
    s.add(trace(tid(2), 3, tier="yellow"))
    stats = s.stats
    assert (stats["buffered_traces"], stats["buffered_spans"]) == (2, 5)
    s.add(trace(tid(3), 1, tier="green"))  # decides tid(1) early
    clock.advance(2)
    s.poll()
    s.add(trace(tid(2), 4, tier="yellow")[3:])  # one late span
    stats = s.stats
    assert stats["buffered_traces"] == 0 and stats["buffered_spans"] == 0
    assert stats["decisions"] == {
        "green": {"kept": 0, "dropped": 1},
        "yellow": {"kept": 1, "dropped": 0},
        "red": {"kept": 1, "dropped": 0},
    }
    assert stats["early_decisions"] == 1
    assert (stats["late_spans"], stats["late_spans_kept"], stats["late_spans_dropped"]) == (1, 1, 0)
    assert (stats["spans_kept"], stats["spans_dropped"]) == (5, 1)
    assert stats["decided_cache"] == 3
    assert stats["review_budget"] == {
        "spot_check": {"used": 0, "limit": None, "denied": 0},
        "factual_verification": {"used": 1, "limit": None, "denied": 0},
        "dual_approval": {"used": 1, "limit": 1, "denied": 0},
    }
    assert Counter(stats) and stats["classifier_errors"] == 0

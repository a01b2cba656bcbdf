"""Risk-based tail sampling: buffer each trace's spans, classify the trace, keep it whole or drop it whole.

Pure logic over :class:`~spanguard.processors.view.SpanView` with injectable clocks, no threads and no I/O; the caller
serialises calls. The behaviour (when a trace is decided, what is kept, red sessions, late spans, memory bounds, the
review budget) is ``docs/sampling.md``.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Final, Protocol

import pydantic
from pydantic import Field, field_validator

from spanguard.durations import parse_duration
from spanguard.processors.view import SpanView, with_attributes
from spanguard.semconv import (
    GEN_AI_CONVERSATION_ID,
    SPANGUARD_APPROVAL_GATE,
    SPANGUARD_REVIEW_TIER,
    SPANGUARD_RISK_REASONS,
    SPANGUARD_RISK_TIER,
    SPANGUARD_SAMPLING_RATE,
    ReviewTier,
    RiskTier,
    SamplingStat,
)

__all__ = [
    "REVIEW_TIERS",
    "Decision",
    "SamplingConfig",
    "TailSampler",
    "TraceClassifier",
    "parse_duration",
    "sampling_value",
    "should_keep",
]

_log = logging.getLogger(__name__)

REVIEW_TIERS: Final[dict[str, str]] = {
    RiskTier.GREEN.value: ReviewTier.SPOT_CHECK.value,
    RiskTier.YELLOW.value: ReviewTier.FACTUAL_VERIFICATION.value,
    RiskTier.RED.value: ReviewTier.DUAL_APPROVAL.value,
}
"""The review tier each risk tier's kept traces go to."""

REASON_APPROVAL_GATE: Final = "approval_gate"
REASON_SESSION_RED: Final = "session_red"
REASON_CLASSIFICATION_FAILED: Final = "classification_failed"

_SALT: Final = b"spanguard-sampling:"
_TWO_64: Final = 1 << 64
_DAY: Final = 86_400


# --------------------------------------------------------------------------------------------------------------------
# Deterministic keep/drop


def _hash64(key: str) -> int:
    return int.from_bytes(hashlib.sha256(_SALT + key.encode("utf-8")).digest()[:8], "big")


def sampling_value(key: str) -> float:
    """The key's position in [0, 1): the first 8 bytes of ``sha256(b"spanguard-sampling:" + key)`` over 2**64."""
    return _hash64(key) / _TWO_64


def should_keep(key: str, rate: float) -> bool:
    """Whether a trace sampled on ``key`` (session id, else trace id) is kept at ``rate``; the same everywhere.

    Thresholds nest: a key kept at some rate is kept at every higher rate. Rate 0 keeps nothing, 1 keeps all.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return _hash64(key) < int(rate * _TWO_64)


# --------------------------------------------------------------------------------------------------------------------
# Configuration


class SamplingConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Tail-sampling settings (the collector's ``processors.tail_sampling`` block has the same keys)."""

    decision_wait: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds after a trace's first span arrived at which it is decided at the latest."""
    root_grace: float = Field(2.0, ge=0, allow_inf_nan=False)
    """Seconds after a trace's root span arrived at which it is decided (children that end after it may be late)."""
    yellow_rate: float = Field(0.25, ge=0, le=1, strict=True, allow_inf_nan=False)
    """Share of yellow traces kept (red ones are all kept), chosen by session id, else by trace id."""
    green_rate: float = Field(0.01, ge=0, le=1, strict=True, allow_inf_nan=False)
    """Share of green traces kept, chosen by session id, else by trace id."""
    max_traces: int = Field(50_000, gt=0, strict=True)
    """Buffered traces at most; at the bound the oldest buffered trace is decided early."""
    max_spans: int = Field(1_000_000, gt=0, strict=True)
    """Buffered spans at most (all traces together); at the bound the oldest buffered traces are decided early."""
    max_spans_per_trace: int = Field(10_000, gt=0, strict=True)
    """Spans one trace may buffer; the trace is decided early when it reaches this, its later spans are late."""
    decided_cache: int = Field(100_000, gt=0, strict=True)
    """Decisions remembered (least recently used forgotten first) so late spans follow them."""
    red_session_cache: int = Field(10_000, gt=0, strict=True)
    """Sessions remembered as red (least recently used forgotten first); their later traces are kept."""
    session_hold: float = Field(120.0, ge=0, allow_inf_nan=False)
    """Seconds a dropped trace of a session is held after its decision, kept if the session turns red; 0: off."""
    session_hold_spans: int = Field(20_000, gt=0, strict=True)
    """Spans held at most (all sessions together); at the bound the oldest held traces are dropped for good."""
    review_budget: dict[ReviewTier, Annotated[int, Field(ge=0, strict=True)]] | None = None
    """Traces per UTC day per review tier that go to review; ``None`` or a tier left out: unlimited."""
    review_reserve: float = Field(0.2, ge=0, le=1, strict=True, allow_inf_nan=False)
    """Share of each review budget held back, once the rest is used, for traces at least as risky as the day's mean."""

    @field_validator("decision_wait", "root_grace", "session_hold", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


# --------------------------------------------------------------------------------------------------------------------
# Public values


class TraceClassifier(Protocol):
    """What the sampler needs from risk classification (``spanguard.processors.risk``)."""

    def classify(self, spans: Sequence[SpanView]) -> Any:
        """The trace's risk: an object with ``.tier`` (green, yellow, red) and ``.reasons`` (tuple of str)."""
        ...

    def annotate(self, spans: Sequence[SpanView], risk: Any) -> list[SpanView]:
        """Copies of ``spans`` carrying ``spanguard.risk.tier`` and ``spanguard.risk.reasons`` from ``risk``."""
        ...


@dataclass(frozen=True)
class Decision:
    """What happened to one trace (with ``late``: to late spans of a decided trace; ``recalled``: kept after all)."""

    trace_id: str
    keep: bool
    tier: str
    reasons: tuple[str, ...]
    rate: float
    """The probability with which the trace is kept (1.0 for red and for traces of red sessions)."""
    review_tier: str | None
    """The review queue the trace goes to; ``None`` when dropped or when the review budget said no."""
    early: bool
    """Decided before its time because a memory bound was reached."""
    late: bool
    """These spans arrived after their trace was decided and follow that decision."""
    spans: tuple[SpanView, ...] = ()
    """Kept: annotated copies of the spans (the inputs are never changed). Dropped: empty."""
    recalled: bool = False
    """These spans were dropped before and held; they are released, kept, because their session turned red."""


# --------------------------------------------------------------------------------------------------------------------
# Internals


class _Buffer:
    __slots__ = ("deadline", "decided", "has_gate", "sessions", "spans", "trace_id")

    def __init__(self, trace_id: str, deadline: float) -> None:
        self.trace_id = trace_id
        self.spans: list[SpanView] = []
        self.deadline = deadline
        self.has_gate = False
        self.sessions: set[str] | None = None
        self.decided = False


@dataclass(slots=True)
class _Record:
    """A remembered decision, for late spans."""

    keep: bool
    tier: str
    reasons: tuple[str, ...]
    rate: float
    review_tier: str | None
    risk: Any


@dataclass(slots=True)
class _Held:
    """A dropped trace of a session, held in case the session turns red."""

    seq: int
    trace_id: str
    spans: list[SpanView]
    sessions: tuple[str, ...]
    tier: str
    reasons: tuple[str, ...]
    risk: Any
    expires: float


@dataclass(slots=True)
class _BudgetDay:
    used: int = 0
    seen: int = 0
    reason_sum: int = 0
    denied: int = 0


def _is_gate(span: SpanView) -> bool:
    value = span.attributes.get(SPANGUARD_APPROVAL_GATE)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _span_order(span: SpanView) -> tuple[int, str]:
    return (span.start_time_unix_nano, span.span_id)


def _risk_of(risk: Any) -> tuple[str, tuple[str, ...]]:
    tier = getattr(risk, "tier", None)
    tier = getattr(tier, "value", tier)  # an Enum tier is fine too
    if tier not in REVIEW_TIERS:
        raise ValueError(f"classifier returned tier {tier!r}, expected one of {', '.join(RiskTier.values())}")
    reasons = tuple(str(r) for r in (getattr(risk, "reasons", ()) or ()))
    return str(tier), reasons


class TailSampler:
    """Risk-based tail sampler; see the module docstring and ``docs/sampling.md``.

    Costs: :meth:`add` is O(1) per span (amortised); :meth:`poll` pops due traces from a deadline heap and never
    scans the buffer; classification and annotation are linear in the spans of the trace being decided.
    """

    def __init__(
        self,
        config: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen, so sharing the default is safe
        classifier: TraceClassifier | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        complete: Callable[[list[SpanView]], list[SpanView]] | None = None,
    ) -> None:
        self._config = config
        self._classifier = classifier
        self._complete = complete  # adds what arrived apart from the spans (their content log records) at decision
        self._clock = clock
        self._wall_clock = wall_clock
        self._budget: dict[str, int] = {str(tier): limit for tier, limit in (config.review_budget or {}).items()}

        self._buffers: OrderedDict[str, _Buffer] = OrderedDict()  # by first arrival: the oldest is first
        self._heap: list[tuple[float, int, _Buffer]] = []  # (deadline, seq, buffer), stale entries skipped lazily
        self._seq = 0
        self._buffered_spans = 0
        self._decided: OrderedDict[str, _Record] = OrderedDict()  # LRU
        self._red_sessions: OrderedDict[str, None] = OrderedDict()  # LRU
        # The session hold: by time of hold, so the first entry expires first (one hold duration, monotonic clock).
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._held_by_session: dict[str, dict[str, None]] = {}
        self._held_spans = 0
        self._held_seq = 0
        self._closed = False

        self._day = -1
        self._budget_days: dict[str, _BudgetDay] = {}
        self._decisions = {tier: {"kept": 0, "dropped": 0} for tier in RiskTier.values()}
        self._counts = {
            SamplingStat.EARLY_DECISIONS: 0,
            "late_spans": 0,
            "late_spans_kept": 0,
            "late_spans_dropped": 0,
            "late_gate_upgrades": 0,
            "spans_kept": 0,
            "spans_dropped": 0,
            "session_red_kept": 0,
            SamplingStat.SESSION_RECALLED: 0,
            "session_hold_evicted": 0,
            "session_hold_expired": 0,
            "classifier_errors": 0,
        }

    # ---------------------------------------------------------------------------------------------------------------
    # Public API

    @property
    def config(self) -> SamplingConfig:
        """The configuration this sampler runs with."""
        return self._config

    def add(self, spans: Iterable[SpanView]) -> list[Decision]:
        """Buffer spans; return the decisions made now: early (memory bounds), late spans' (one per trace), recalled.

        Raises :class:`RuntimeError` after :meth:`shutdown`.
        """
        if self._closed:
            raise RuntimeError("TailSampler is shut down; it takes no more spans")
        config = self._config
        out: list[Decision] = []
        late: dict[str, list[SpanView]] = {}
        now: float | None = None
        for span in spans:
            trace_id = span.trace_id
            buffer = self._buffers.get(trace_id)
            if buffer is None:
                if trace_id in self._decided:
                    late.setdefault(trace_id, []).append(span)
                    continue
                if now is None:
                    now = self._clock()
                if len(self._buffers) >= config.max_traces:
                    self._decide(next(iter(self._buffers.values())), early=True, out=out)
                buffer = _Buffer(trace_id, now + config.decision_wait)
                self._buffers[trace_id] = buffer
                self._push(buffer.deadline, buffer)
            buffer.spans.append(span)
            self._buffered_spans += 1
            attributes = span.attributes
            session = attributes.get(GEN_AI_CONVERSATION_ID)
            if session:
                if buffer.sessions is None:
                    buffer.sessions = {str(session)}
                else:
                    buffer.sessions.add(str(session))
            if _is_gate(span):
                buffer.has_gate = True
            if span.is_root:
                if now is None:
                    now = self._clock()
                due = now + config.root_grace
                if due < buffer.deadline:
                    buffer.deadline = due
                    self._push(due, buffer)
            if len(buffer.spans) >= config.max_spans_per_trace:
                self._decide(buffer, early=True, out=out)
            while self._buffered_spans > config.max_spans and self._buffers:
                self._decide(next(iter(self._buffers.values())), early=True, out=out)
        for trace_id, late_spans in late.items():
            self._follow(trace_id, late_spans, out)
        return out

    def poll(self) -> list[Decision]:
        """Decide every buffered trace that is due now (root arrived + ``root_grace``, or ``decision_wait``).

        Held traces past ``session_hold`` are dropped for good first (they return no decision).
        """
        now = self._clock()
        self._expire_held(now)
        heap = self._heap
        out: list[Decision] = []
        while heap and heap[0][0] <= now:
            _, _, buffer = heapq.heappop(heap)
            if not buffer.decided:
                self._decide(buffer, early=False, out=out)
        return out

    def flush(self) -> list[Decision]:
        """Decide everything buffered now, oldest first (drain); decisions are not marked early.

        The session hold is left as it is: held traces stay held (and a red trace decided now releases its sessions').
        """
        out: list[Decision] = []
        for buffer in list(self._buffers.values()):
            self._decide(buffer, early=False, out=out)
        self._heap.clear()
        return out

    def shutdown(self) -> list[Decision]:
        """Flush, then discard the session hold and refuse further :meth:`add` calls. A second call returns ``[]``."""
        if self._closed:
            return []
        self._closed = True
        out = self.flush()
        # Nothing can turn a held trace's session red any more: what is still held is dropped for good.
        self._held.clear()
        self._held_by_session.clear()
        self._held_spans = 0
        return out

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for metrics: buffer, decisions by tier and keep, early and late, review budget of today."""
        self._roll_day()
        review: dict[str, dict[str, int | None]] = {}
        for tier in REVIEW_TIERS.values():
            day = self._budget_days.get(tier, _BudgetDay())
            review[tier] = {"used": day.used, "limit": self._budget.get(tier), "denied": day.denied}
        return {
            SamplingStat.BUFFERED_TRACES: len(self._buffers),
            "buffered_spans": self._buffered_spans,
            "decisions": {tier: dict(counts) for tier, counts in self._decisions.items()},
            **self._counts,
            "decided_cache": len(self._decided),
            "red_sessions": len(self._red_sessions),
            SamplingStat.HELD_TRACES: len(self._held),
            "held_spans": self._held_spans,
            "review_day": datetime.fromtimestamp(self._day * _DAY, tz=timezone.utc).date().isoformat(),
            SamplingStat.REVIEW_BUDGET: review,
        }

    # ---------------------------------------------------------------------------------------------------------------
    # Deciding

    def _push(self, deadline: float, buffer: _Buffer) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, buffer))
        # Entries of decided traces stay until their deadline; rebuild when they outnumber the live ones, so the heap
        # stays proportional to the buffer (amortised O(1): a rebuild follows at least as many pushes as it costs).
        if len(self._heap) > 2 * len(self._buffers) + 1024:
            self._heap = [(b.deadline, i, b) for i, b in enumerate(self._buffers.values())]
            heapq.heapify(self._heap)
            self._seq = len(self._heap)

    def _classify(self, spans: list[SpanView]) -> tuple[str, tuple[str, ...], Any]:
        if self._classifier is None:
            return RiskTier.GREEN, (), None
        try:
            risk = self._classifier.classify(spans)
            tier, reasons = _risk_of(risk)
        except Exception:
            # Fail towards keeping: a trace the classifier cannot read is treated as red, never dropped unseen.
            _log.exception("risk classification failed for trace %s; keeping it as red", spans[0].trace_id)
            self._counts["classifier_errors"] += 1
            return RiskTier.RED, (REASON_CLASSIFICATION_FAILED,), None
        return tier, reasons, risk

    def _decide(self, buffer: _Buffer, *, early: bool, out: list[Decision]) -> None:
        """Decide a buffered trace; append its decision to ``out``, then the held traces it releases."""
        config = self._config
        trace_id = buffer.trace_id
        del self._buffers[trace_id]
        buffer.decided = True
        self._buffered_spans -= len(buffer.spans)
        spans = sorted(buffer.spans, key=_span_order)  # arrival order must not change the outcome across replicas
        buffer.spans = []
        if self._complete is not None:
            spans = self._complete(spans)

        tier, reasons, risk = self._classify(spans)
        if buffer.has_gate and tier != RiskTier.RED:
            tier, reasons = RiskTier.RED, (*reasons, REASON_APPROVAL_GATE)
        sessions = sorted(buffer.sessions) if buffer.sessions else []

        if tier == RiskTier.RED:
            keep, rate = True, 1.0
        elif any(self._is_red_session(session) for session in sessions):
            keep, rate = True, 1.0
            reasons = (*reasons, REASON_SESSION_RED)
            self._counts["session_red_kept"] += 1
        else:
            rate = config.yellow_rate if tier == RiskTier.YELLOW else config.green_rate
            keep = should_keep(sessions[0] if sessions else trace_id, rate)

        review_tier = self._grant_review(tier, reasons, buffer.has_gate) if keep else None
        record = _Record(keep, tier, reasons, rate, review_tier, risk)
        self._remember(trace_id, record)

        self._decisions[tier]["kept" if keep else "dropped"] += 1
        self._counts["spans_kept" if keep else "spans_dropped"] += len(spans)
        if early:
            self._counts[SamplingStat.EARLY_DECISIONS] += 1
        out_spans = self._annotate(spans, risk, tier, reasons, rate, review_tier) if keep else ()
        out.append(Decision(trace_id, keep, tier, reasons, rate, review_tier, early, False, out_spans))
        if not keep:
            if sessions:
                self._hold(trace_id, spans, sessions, tier, reasons, risk)
            return
        if trace_id in self._held:
            # Spans of this trace that came after its decision was forgotten, decided and held: keep them too.
            self._release_own(trace_id, record, out)
        if tier == RiskTier.RED:
            self._turn_red(sessions, out)

    def _follow(self, trace_id: str, spans: list[SpanView], out: list[Decision]) -> None:
        """Late spans of a decided trace: same decision and annotations (a late approval gate revives a dropped one)."""
        record = self._decided[trace_id]
        self._decided.move_to_end(trace_id)
        spans.sort(key=_span_order)
        gate = any(_is_gate(span) for span in spans)
        if gate and not record.keep:
            # An approval gate ends when a person answers, often long after the rest of its trace was decided.
            # Traces holding one are never dropped: what is still to come of this trace is kept, as red.
            reasons = record.reasons if record.tier == RiskTier.RED else (*record.reasons, REASON_APPROVAL_GATE)
            review_tier = self._grant_review(RiskTier.RED, reasons, True)
            record = _Record(True, RiskTier.RED, reasons, 1.0, review_tier, record.risk)
            self._decided[trace_id] = record
            self._counts["late_gate_upgrades"] += 1
        sessions = sorted({str(s) for span in spans if (s := span.attributes.get(GEN_AI_CONVERSATION_ID))})
        self._counts["late_spans"] += len(spans)
        self._counts["late_spans_kept" if record.keep else "late_spans_dropped"] += len(spans)
        out_spans = (
            self._annotate(spans, record.risk, record.tier, record.reasons, record.rate, record.review_tier)
            if record.keep
            else ()
        )
        out.append(
            Decision(
                trace_id,
                record.keep,
                record.tier,
                record.reasons,
                record.rate,
                record.review_tier,
                False,
                True,
                out_spans,
            )
        )
        held = self._held.get(trace_id)
        if not record.keep:
            if held is not None:
                # Still dropped but held: the late spans wait with the rest, in case the session turns red.
                self._hold_more(held, spans, sessions)
            return
        if held is not None:
            sessions = sorted({*sessions, *held.sessions})  # the gate's trace: its sessions turn red too
            self._release_own(trace_id, record, out)
        if record.tier == RiskTier.RED:
            self._turn_red(sessions, out)

    def _annotate(
        self,
        spans: list[SpanView],
        risk: Any,
        tier: str,
        reasons: tuple[str, ...],
        rate: float,
        review_tier: str | None,
    ) -> tuple[SpanView, ...]:
        base: Sequence[SpanView] = spans
        if self._classifier is not None and risk is not None:
            try:
                base = self._classifier.annotate(spans, risk)
                if len(base) != len(spans):
                    raise ValueError(f"annotate returned {len(base)} spans for {len(spans)}")
            except Exception:
                _log.exception("risk annotation failed for trace %s; annotating without it", spans[0].trace_id)
                self._counts["classifier_errors"] += 1
                base = spans
        out = []
        for original, span in zip(spans, base, strict=True):
            # The classifier's copies are ours to finish; never write into a map the caller may still hold.
            owned = span is not original and span.attributes is not original.attributes
            attributes = span.attributes if owned else dict(span.attributes)
            attributes[SPANGUARD_RISK_TIER] = tier
            attributes[SPANGUARD_RISK_REASONS] = reasons
            attributes[SPANGUARD_SAMPLING_RATE] = rate
            if review_tier is None:
                attributes.pop(SPANGUARD_REVIEW_TIER, None)  # this sampler decides review, not an upstream one
            else:
                attributes[SPANGUARD_REVIEW_TIER] = review_tier
            out.append(span if owned else with_attributes(span, attributes))
        return tuple(out)

    # ---------------------------------------------------------------------------------------------------------------
    # Bounded memories

    def _remember(self, trace_id: str, record: _Record) -> None:
        decided = self._decided
        decided[trace_id] = record
        decided.move_to_end(trace_id)
        if len(decided) > self._config.decided_cache:
            decided.popitem(last=False)

    def _remember_red(self, session: str) -> None:
        red = self._red_sessions
        red[session] = None
        red.move_to_end(session)
        if len(red) > self._config.red_session_cache:
            red.popitem(last=False)

    def _is_red_session(self, session: str) -> bool:
        if session in self._red_sessions:
            self._red_sessions.move_to_end(session)
            return True
        return False

    # ---------------------------------------------------------------------------------------------------------------
    # The session hold

    def _hold(
        self, trace_id: str, spans: list[SpanView], sessions: list[str], tier: str, reasons: tuple[str, ...], risk: Any
    ) -> None:
        """Hold a dropped trace of ``sessions`` for ``session_hold`` seconds; past the span bound the oldest go."""
        config = self._config
        if config.session_hold <= 0:
            return
        previous = self._unhold(trace_id) if trace_id in self._held else None
        if previous is not None:
            # Decided again after its first decision was forgotten: hold both parts together, from now.
            spans = previous.spans + spans
            sessions = sorted({*sessions, *previous.sessions})
        if len(spans) > config.session_hold_spans:
            self._counts["session_hold_evicted"] += 1
            return
        self._held_seq += 1
        entry = _Held(
            self._held_seq, trace_id, spans, tuple(sessions), tier, reasons, risk, self._clock() + config.session_hold
        )
        self._held[trace_id] = entry
        self._held_spans += len(spans)
        for session in sessions:
            self._held_by_session.setdefault(session, {})[trace_id] = None
        self._trim_held()

    def _hold_more(self, entry: _Held, spans: list[SpanView], sessions: list[str]) -> None:
        """Late dropped spans of a held trace join it (its time in the hold is unchanged)."""
        entry.spans.extend(spans)
        self._held_spans += len(spans)
        new = [session for session in sessions if session not in entry.sessions]
        if new:
            entry.sessions = (*entry.sessions, *new)
            for session in new:
                self._held_by_session.setdefault(session, {})[entry.trace_id] = None
        self._trim_held()

    def _trim_held(self) -> None:
        while self._held_spans > self._config.session_hold_spans and self._held:
            self._unhold(next(iter(self._held)))
            self._counts["session_hold_evicted"] += 1

    def _expire_held(self, now: float) -> None:
        """Drop for good the held traces whose time is up: they are first in the hold, so this costs O(due)."""
        held = self._held
        while held:
            entry = next(iter(held.values()))
            if entry.expires > now:
                return
            self._unhold(entry.trace_id)
            self._counts["session_hold_expired"] += 1

    def _unhold(self, trace_id: str) -> _Held:
        entry = self._held.pop(trace_id)
        self._held_spans -= len(entry.spans)
        for session in entry.sessions:
            traces = self._held_by_session.get(session)
            if traces is not None:
                traces.pop(trace_id, None)
                if not traces:
                    del self._held_by_session[session]
        return entry

    def _turn_red(self, sessions: Iterable[str], out: list[Decision]) -> None:
        """Remember ``sessions`` as red and release their held traces as kept (``session_red``), oldest first."""
        found: dict[str, None] = {}
        for session in sessions:
            self._remember_red(session)
            found.update(self._held_by_session.get(session, {}))
        if not found:
            return
        now = self._clock()
        held = self._held
        for trace_id in sorted(found, key=lambda t: held[t].seq):
            entry = self._unhold(trace_id)
            if entry.expires <= now:  # past its time, not yet polled away
                self._counts["session_hold_expired"] += 1
                continue
            reasons = (*entry.reasons, REASON_SESSION_RED)
            review_tier = self._grant_review(entry.tier, reasons, False)
            record = _Record(True, entry.tier, reasons, 1.0, review_tier, entry.risk)
            self._remember(trace_id, record)  # its late spans are kept from now on
            self._counts[SamplingStat.SESSION_RECALLED] += 1
            out.append(self._released(entry, record))

    def _release_own(self, trace_id: str, record: _Record, out: list[Decision]) -> None:
        """Release a held trace under its own new decision (a late gate; a later part decided kept)."""
        entry = self._unhold(trace_id)
        if entry.expires <= self._clock():
            self._counts["session_hold_expired"] += 1
            return
        out.append(self._released(entry, record))

    def _released(self, entry: _Held, record: _Record) -> Decision:
        spans = sorted(entry.spans, key=_span_order)
        out_spans = self._annotate(spans, record.risk, record.tier, record.reasons, record.rate, record.review_tier)
        return Decision(
            entry.trace_id,
            True,
            record.tier,
            record.reasons,
            record.rate,
            record.review_tier,
            False,
            False,
            out_spans,
            recalled=True,
        )

    # ---------------------------------------------------------------------------------------------------------------
    # Review budget

    def _roll_day(self) -> None:
        day = int(self._wall_clock() // _DAY)
        if day != self._day:
            self._day = day
            self._budget_days = {}

    def _grant_review(self, tier: str, reasons: tuple[str, ...], gate: bool) -> str | None:
        """Whether a kept trace goes to review, by its review tier's budget of today (UTC).

        With limit N and reserve R = floor(N * review_reserve): the first N - R traces of the day go to review as they
        come; the last R only for traces whose priority (number of distinct reasons) is at least the mean priority of
        all kept traces of that review tier today (this one included), or that hold an approval gate; after N none.
        """
        review_tier = REVIEW_TIERS[tier]
        self._roll_day()
        day = self._budget_days.get(review_tier)
        if day is None:
            day = self._budget_days[review_tier] = _BudgetDay()
        priority = len(set(reasons))
        day.seen += 1
        day.reason_sum += priority
        limit = self._budget.get(review_tier)
        if limit is None:
            granted = True
        elif day.used >= limit:
            granted = False
        elif day.used < limit - math.floor(limit * self._config.review_reserve):
            granted = True
        else:
            granted = gate or priority * day.seen >= day.reason_sum
        if granted:
            day.used += 1
            return review_tier
        day.denied += 1
        return None

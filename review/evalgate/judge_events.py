"""Judge verdicts as ``gen_ai.evaluation.result`` events, as human verdicts are (review/verdicts.py).

Each judged scorer result of a gate run is one ``llm_judge`` event, sent with
:class:`~spanguard.review.verdicts.VerdictEmitter`. Behaviour: docs/datasets.md ("Judge verdicts as events").
"""

from __future__ import annotations

import re
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from spanguard.review.evalgate.runner import RunResult
from spanguard.review.verdicts import Event, VerdictEmitter, VerdictsConfig
from spanguard.semconv import (
    GEN_AI_EVALUATION_EXPLANATION,
    GEN_AI_EVALUATION_NAME,
    GEN_AI_EVALUATION_SCORE_LABEL,
    GEN_AI_EVALUATION_SCORE_VALUE,
    SPANGUARD_EVAL_CASE_ID,
)

__all__ = ["JUDGE_EVALUATION", "EventsSent", "judge_events", "send_judge_events"]

JUDGE_EVALUATION: Final = "llm_judge"
SERVICE_NAME: Final = "spanguard-gate"
_TRACE_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_LABELS: Final = {True: "pass", False: "fail", None: "abstain"}


def judge_events(run: RunResult) -> list[tuple[Event, str | None]]:
    """Every judged scorer result of ``run`` as (event, the trace id to link it to or None), in case order."""
    sources = {case.id: case.source.trace_id if case.source else None for case in run.dataset.cases}
    out: list[tuple[Event, str | None]] = []
    for case in run.cases:
        trace_id = sources.get(case.id)
        link = trace_id.lower() if isinstance(trace_id, str) and _TRACE_ID.match(trace_id.lower()) else None
        for result in case.scorers:
            if not result.judged or result.error is not None:
                continue
            label = _LABELS[result.passed]
            attributes: dict[str, Any] = {
                GEN_AI_EVALUATION_NAME: JUDGE_EVALUATION,
                GEN_AI_EVALUATION_SCORE_VALUE: float(result.score),
                GEN_AI_EVALUATION_SCORE_LABEL: label,
                GEN_AI_EVALUATION_EXPLANATION: result.reason,
                SPANGUARD_EVAL_CASE_ID: case.id,
            }
            out.append(((attributes, f"{JUDGE_EVALUATION}: {label}"), link))
    return out


def _context(trace_id: str | None) -> Context:
    if trace_id is None or not int(trace_id, 16):
        return trace.set_span_in_context(trace.INVALID_SPAN, Context())
    span = SpanContext(int(trace_id, 16), 0, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(span), Context())


class EventsSent:
    """How many judge events were queued and how many could not be sent."""

    def __init__(self, emitted: int, failed: int) -> None:
        self.emitted, self.failed = emitted, failed

    def as_report(self) -> dict[str, int]:
        """The JSON report's ``judge_events`` section."""
        return {"emitted": self.emitted, "failed": self.failed}


def send_judge_events(run: RunResult, config: VerdictsConfig) -> EventsSent:
    """Send the judge events of ``run`` to ``config``'s endpoint and wait (bounded) for the export; never raises."""
    emitter = VerdictEmitter(config, resource_attributes={"service.name": SERVICE_NAME})
    try:
        for event, link in judge_events(run):
            case_id = event[0][SPANGUARD_EVAL_CASE_ID]
            emitter.emit_events([event], _context(link), about=f"eval case {case_id}")
        emitter.force_flush(int(config.timeout_s * 1000))
    finally:
        emitter.shutdown()
    return EventsSent(emitter.emitted, emitter.failed)

"""People where the judge cannot decide: each pending-human case of a gate run sent to the review queue.

Each case becomes one review item in the service's ingest format, under a trace id derived from the dataset, the case
and the output, so a rerun never duplicates an item; a failure to send never changes the exit code. Behaviour:
docs/datasets.md ("People where the judge cannot decide").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from spanguard._logging import safe_url
from spanguard.instrumentation.content import to_json
from spanguard.instrumentation.openai import chat_input_messages
from spanguard.review.evalgate.runner import CaseOutcome, CaseStatus, RunResult
from spanguard.review.schemas import ItemIn
from spanguard.semconv import (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_CHAT,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    SPANGUARD_EVAL_CASE_ID,
    SPANGUARD_EVAL_DATASET_SHA256,
    SPANGUARD_EVAL_JUDGE_REASONING,
    SPANGUARD_EVAL_SCORER_REASONS,
    SPANGUARD_EVAL_TARGET,
    ReviewTier,
    RiskTier,
)

__all__ = [
    "ENDPOINT_ENV",
    "REASON_PENDING_HUMAN",
    "RISK_TIER",
    "TIER",
    "TOKEN_ENV",
    "Escalation",
    "escalate",
    "review_item",
    "trace_id_for",
]

ENDPOINT_ENV: Final = "SPANGUARD_REVIEW_ENDPOINT"
TOKEN_ENV: Final = "SPANGUARD_REVIEW_TOKEN"
"""An ``ingest`` token of the review service."""
TIER: Final = ReviewTier.FACTUAL_VERIFICATION
RISK_TIER: Final = RiskTier.YELLOW
REASON_PENDING_HUMAN: Final = "eval:pending_human"
_BATCH: Final = 50  # well under the service's max_items_per_request
_DETAIL_MAX: Final = 200


@dataclass
class Escalation:
    """What escalating a run did: items sent (and of those, new to the service), cases not sent, and why not."""

    pending: int = 0
    sent: int = 0
    created: int = 0
    failed: int = 0
    error: str | None = None
    item_ids: dict[str, int] | None = None
    """The review item of each case sent, by case id."""

    def as_report(self) -> dict[str, Any]:
        """The JSON report's ``escalation`` section."""
        return {
            "pending": self.pending,
            "sent": self.sent,
            "created": self.created,
            "failed": self.failed,
            "error": self.error,
            "items": dict(self.item_ids or {}),
        }


def trace_id_for(dataset_sha256: str, case_id: str, output_sha256: str | None) -> str:
    """The review item's trace id: 32 hex digits of a SHA-256 over the dataset, the case and the output."""
    digest = hashlib.sha256(json.dumps(["spanguard.eval", dataset_sha256, case_id, output_sha256]).encode())
    return digest.hexdigest()[:32]


def _span_id(trace_id: str, name: str) -> str:
    return hashlib.sha256(f"{trace_id}/{name}".encode()).hexdigest()[:16]


def _output_messages(output: dict[str, Any] | None) -> list[dict[str, Any]]:
    messages = chat_input_messages([output]) if output else []
    for message in messages:
        message["role"] = "assistant"  # the target's answer, whatever role it claimed
        message.setdefault("finish_reason", "stop")
    return messages


def review_item(run: RunResult, outcome: CaseOutcome) -> dict[str, Any]:
    """The ingest body (``ItemIn``) of one pending-human case of ``run``: KeyError when the case is not in the run."""
    case = next(c for c in run.dataset.cases if c.id == outcome.id)
    trace_id = trace_id_for(run.dataset.sha256, case.id, outcome.output_sha256)
    root, chat = _span_id(trace_id, "root"), _span_id(trace_id, "chat")
    start = int(run.started_at * 1e9)
    end = start + max(1, int(outcome.duration_s * 1e9))
    reasoning = [r.reasoning for r in outcome.scorers if r.reasoning]
    reasons = [f"{r.name}: {r.error or r.reason}" for r in outcome.scorers]
    chat_attributes: dict[str, Any] = {
        GEN_AI_OPERATION_NAME: GEN_AI_OPERATION_CHAT,
        GEN_AI_INPUT_MESSAGES: to_json(chat_input_messages(case.messages())),
        GEN_AI_OUTPUT_MESSAGES: to_json(_output_messages(outcome.output)),
        SPANGUARD_EVAL_SCORER_REASONS: reasons,
    }
    if reasoning:
        chat_attributes[SPANGUARD_EVAL_JUDGE_REASONING] = "\n".join(reasoning)
    # The item goes straight to people, not through the collector: redacted here as the pipeline would.
    from spanguard.processors.redaction import default_redactor

    chat_attributes = default_redactor().redact_attributes(chat_attributes).attributes
    spans = [
        {
            "trace_id": trace_id,
            "span_id": root,
            "name": f"eval_case {case.id}",
            "start_time_unix_nano": start,
            "end_time_unix_nano": end,
            "attributes": {
                SPANGUARD_EVAL_CASE_ID: case.id,
                SPANGUARD_EVAL_DATASET_SHA256: run.dataset.sha256,
                SPANGUARD_EVAL_TARGET: run.target,
            },
            "resource": {"service.name": "spanguard-gate"},
            "scope": {"name": "spanguard.review.evalgate"},
        },
        {
            "trace_id": trace_id,
            "span_id": chat,
            "parent_span_id": root,
            "name": GEN_AI_OPERATION_CHAT,
            "kind": "client",
            "start_time_unix_nano": start,
            "end_time_unix_nano": end,
            "attributes": chat_attributes,
            "resource": {"service.name": "spanguard-gate"},
            "scope": {"name": "spanguard.review.evalgate"},
        },
    ]
    item = {
        "trace_id": trace_id,
        "tier": TIER,
        "risk_tier": RISK_TIER,
        "reasons": [REASON_PENDING_HUMAN],
        "spans": spans,
    }
    # Checked here with the service's own model: a body it would refuse is a bug to see now, not a 422 in CI.
    return ItemIn.model_validate(item).model_dump(mode="json", exclude_defaults=True)


class _SendFailed(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _post(client: Any, url: str, token: str, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    import httpx

    try:
        response = client.post(url, json={"items": list(items)}, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as error:
        raise _SendFailed(f"{type(error).__name__}", retryable=True) from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        message = f"HTTP {response.status_code}" + (
            f": {' '.join(str(detail).split())[:_DETAIL_MAX]}" if detail else ""
        )
        raise _SendFailed(message, retryable=response.status_code in (408, 429) or response.status_code >= 500)
    try:
        results = response.json()["items"]
        if not isinstance(results, list) or len(results) != len(items):
            raise ValueError
        return results
    except (ValueError, KeyError, TypeError):
        raise _SendFailed("the answer is not the service's ingest result", retryable=False) from None


def escalate(
    run: RunResult,
    endpoint: str,
    token: str,
    *,
    timeout_s: float = 10.0,
    retries: int = 2,
    backoff_s: float = 0.5,
) -> Escalation:
    """Send every pending-human case of ``run`` to the review service at ``endpoint``; never raises.

    Sending stops at the first batch that fails after its retries: the cases not sent are counted as failed and the
    reason kept (the service's URL without credentials, never the token or a case's content).
    """
    import httpx

    pending = [case for case in run.cases if case.status is CaseStatus.PENDING_HUMAN]
    result = Escalation(pending=len(pending), item_ids={})
    if not pending:
        return result
    where = safe_url(endpoint)
    try:
        items = [review_item(run, case) for case in pending]
    except Exception as error:  # a case the service would refuse: none is sent, the gate goes on
        result.failed, result.error = len(pending), f"cannot build the review items: {type(error).__name__}"
        return result
    url = endpoint.rstrip("/") + "/v1/review-items"
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for batch_cases, batch in zip(_batches(pending, _BATCH), _batches(items, _BATCH), strict=True):
            for attempt in range(retries + 1):
                try:
                    answers = _post(client, url, token, batch)
                    break
                except _SendFailed as error:
                    if not error.retryable or attempt == retries:
                        result.failed = len(pending) - result.sent
                        result.error = f"{where}: {error}"
                        return result
                    time.sleep(backoff_s * 2**attempt)
            for case, answer in zip(batch_cases, answers, strict=True):
                result.sent += 1
                result.created += bool(answer.get("created"))
                if isinstance(answer.get("id"), int):
                    result.item_ids[case.id] = answer["id"]  # type: ignore[index]
    return result

"""The approvals API's request and response bodies (pydantic), as docs/gates.md ("The approvals API") describes them.

Request bodies forbid unknown fields. Field types and ranges are checked here (a 422 naming the field's path); the
rules across fields and the sizes of the agent's content are the store's (:func:`spanguard.review.approvals.check_new`,
also a 422 naming the field).
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic

from spanguard.instrumentation.gate_policy import HardTimeoutOutcome
from spanguard.review.approvals import (
    MAX_APPROVALS,
    MAX_REASON_CHARS,
    MAX_TIMEOUT_S,
    ApprovalTier,
)
from spanguard.review.schemas import HEX16, HEX32, NO_NUL
from spanguard.semconv import ApprovalOutcome, ApprovalStatus

__all__ = [
    "ApprovalAuditList",
    "ApprovalAuditOut",
    "ApprovalDecisionIn",
    "ApprovalDecisionOut",
    "ApprovalIn",
    "ApprovalList",
    "ApprovalOut",
    "ConsumeIn",
]

HEX64 = r"^[0-9a-f]{64}$"
_Text = Annotated[str, NO_NUL, pydantic.Field(min_length=1, max_length=200)]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class ApprovalIn(_Strict):
    """An approval request, as the app's gate posts it (idempotent by ``request_key``)."""

    request_key: _Text = pydantic.Field(description="a UUID the app picks, so a retried POST makes one request")
    action: _Text
    tier: ApprovalTier
    approvals_required: int = pydantic.Field(1, ge=1, le=MAX_APPROVALS, strict=True)
    reasons: list[Annotated[str, NO_NUL, pydantic.Field(min_length=1, max_length=500)]] = pydantic.Field(
        [], max_length=50
    )
    digest: str = pydantic.Field(pattern=HEX64, description="argument_digest(action, arguments, session_id)")
    arguments: dict[str, Any] = pydantic.Field(description="the call's arguments, redacted")
    session_id: Annotated[str | None, NO_NUL] = pydantic.Field(None, min_length=1, max_length=200)
    trace_id: str | None = pydantic.Field(None, pattern=HEX32)
    span_id: str | None = pydantic.Field(None, pattern=HEX16)
    state: dict[str, Any] = pydantic.Field({}, description="messages, tool_calls, context, models: redacted")
    soft_timeout_s: float = pydantic.Field(900.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    hard_timeout_s: float = pydantic.Field(14_400.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    on_hard_timeout: HardTimeoutOutcome = "deny"


class ApprovalDecisionIn(_Strict):
    """A reviewer's decision on an approval request; the reviewer is the token's name, never the body's."""

    outcome: ApprovalOutcome
    reason: Annotated[str | None, NO_NUL] = pydantic.Field(
        None, max_length=MAX_REASON_CHARS, description="why (needed to reject; the agent tells its model)"
    )
    arguments: dict[str, Any] | None = pydantic.Field(None, description="a modify's edited arguments")


class ConsumeIn(_Strict):
    """The app is about to run the approved call: the digest of that call."""

    digest: str = pydantic.Field(pattern=HEX64)


class ApprovalDecisionOut(pydantic.BaseModel):
    """One recorded decision."""

    reviewer: str
    outcome: str
    reason: str | None
    arguments: dict[str, Any] | None
    at: str


class ApprovalOut(pydantic.BaseModel):
    """An approval request and its state (``schema_version`` 1); times are ISO 8601 UTC with ``Z``."""

    id: str
    schema_version: int
    request_key: str
    action: str
    tier: str
    approvals_required: int
    reasons: list[str]
    digest: str
    arguments: dict[str, Any]
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    state: dict[str, Any]
    soft_timeout_s: float
    hard_timeout_s: float
    on_hard_timeout: str
    status: ApprovalStatus
    approvers: list[str]
    decisions: list[ApprovalDecisionOut]
    reason: str | None
    decided_arguments: dict[str, Any] | None
    escalated_at: str | None
    created_at: str
    soft_deadline: str
    hard_deadline: str
    decided_at: str | None
    consumed_at: str | None


class ApprovalList(pydantic.BaseModel):
    """A page of approval requests: escalated first, then red before yellow, then oldest."""

    items: list[ApprovalOut]


class ApprovalAuditOut(pydantic.BaseModel):
    """One audit entry of an approval request (its decision state before and after, never its arguments)."""

    id: int
    approval_id: str
    actor: str
    action: str
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ApprovalAuditList(pydantic.BaseModel):
    """An approval request's audit trail, oldest first."""

    entries: list[ApprovalAuditOut]

"""The approvals store: approval-gate requests, reviewers' decisions on them, their timers and their audit trail.

An approval request is created idempotently by the app's ``request_key``; reviewers approve (M of N distinct
reviewers), reject or modify it; the app consumes an approved request once, for its digest. Every change is one
write transaction on the review store's engine (rows locked ``FOR UPDATE`` on PostgreSQL, writers taking turns on
SQLite) with its audit entry and, on PostgreSQL, a ``NOTIFY`` so other replicas wake their long polls. Timers are
conditional ``UPDATE``\\ s, so across replicas each fires once. Behaviour: docs/gates.md ("The approvals API").
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, case, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from spanguard.instrumentation.gate_policy import HardTimeoutOutcome
from spanguard.review.store import Base, Conflict, NotFound, ReviewError, ReviewStore, _now, _without_nul, rowcount
from spanguard.semconv import ApprovalOutcome, ApprovalStatus, RiskTier

__all__ = [
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "ApprovalAudit",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalStore",
    "ApprovalTier",
    "NewApproval",
    "Timers",
]

ApprovalTier = Literal["yellow", "red"]
APPROVAL_TIERS: tuple[ApprovalTier, ...] = get_args(ApprovalTier)
HARD_TIMEOUT_OUTCOMES: tuple[HardTimeoutOutcome, ...] = get_args(HardTimeoutOutcome)
SCHEMA_VERSION = 1
NOTIFY_CHANNEL = "spanguard_approvals"
"""The PostgreSQL channel every change is announced on; the payload is the request's id."""

MAX_APPROVALS = 5
MAX_TIMEOUT_S = 30 * 86_400.0  # a request waits at most 30 days
MAX_ARGUMENTS_BYTES = 1024 * 1024
MAX_STATE_BYTES = 8 * 1024 * 1024
MAX_REASONS = 50
MAX_REASON_CHARS = 4000
_TEXT_MAX = 200
_ID = re.compile(r"^apr_[A-Za-z0-9_-]{22}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TRACE = re.compile(r"^[0-9a-f]{32}$")
_SPAN = re.compile(r"^[0-9a-f]{16}$")
_TIMER_BATCH = 100
# Each request is about one call, so the decided statuses are final; "consumable" ones let the app run the call.
_CONSUMABLE = (ApprovalStatus.APPROVED, ApprovalStatus.MODIFIED)


class ApprovalRequest(Base):
    """One gated call waiting for, or having had, a person's decision (versioned by ``schema_version``)."""

    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(200), unique=True)
    schema_version: Mapped[int] = mapped_column(Integer, default=SCHEMA_VERSION)
    action: Mapped[str] = mapped_column(String(200), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    digest: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    span_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ApprovalStatus.PENDING.value)
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # none_as_null: None is SQL NULL (not JSON null), so "was it modified" is an IS NOT NULL on both databases.
    decided_arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    soft_timeout_s: Mapped[float] = mapped_column(Float)
    hard_timeout_s: Mapped[float] = mapped_column(Float)
    soft_deadline: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    hard_deadline: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    on_hard_timeout: Mapped[str] = mapped_column(String(16), default="deny")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    consumed_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApprovalDecision(Base):
    """One reviewer's decision on an approval request."""

    __tablename__ = "approval_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ApprovalAudit(Base):
    """One action on an approval request: who, when, what, and the request's state before and after."""

    __tablename__ = "approval_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


@dataclass(frozen=True)
class NewApproval:
    """An approval request as the app sends it (``POST /v1/approvals``); :meth:`ApprovalStore.create` checks it."""

    request_key: str
    action: str
    tier: str
    digest: str
    arguments: Mapping[str, Any]
    approvals_required: int = 1
    reasons: Sequence[str] = ()
    session_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    state: Mapping[str, Any] | None = None
    soft_timeout_s: float = 900.0
    hard_timeout_s: float = 14_400.0
    on_hard_timeout: str = "deny"


@dataclass(frozen=True)
class Timers:
    """What one :meth:`ApprovalStore.fire_timers` changed: the ids this caller escalated and timed out."""

    escalated: list[str]
    timed_out: list[str]


def _state(request: ApprovalRequest) -> dict[str, Any]:
    # What the audit keeps of a request: its decision state, never its arguments or the agent's state.
    return {
        "status": request.status,
        "approvers": list(request.approvers or []),
        "escalated": request.escalated_at is not None,
        "modified": request.decided_arguments is not None,
        "consumed": request.consumed_at is not None,
    }


def _printable(name: str, value: object, *, optional: bool = False, limit: int = _TEXT_MAX) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ReviewError(f"{name}: must be a string of 1 to {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ReviewError(f"{name}: must not contain control characters (NUL, line breaks, ...)")


def _json_size(name: str, value: object, limit: int) -> None:
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        raise ReviewError(f"{name}: must be a JSON value (finite numbers, string keys)") from None
    if size > limit:
        raise ReviewError(f"{name}: at most {limit} bytes of JSON, not {size}")


def _object(name: str, value: object, limit: int) -> None:
    if not isinstance(value, Mapping):
        raise ReviewError(f"{name}: must be an object, not {type(value).__name__}")
    _json_size(name, value, limit)


def _has_nul(value: object) -> bool:
    return "\\u0000" in json.dumps(value)


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReviewError(f"{name}: must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ReviewError(f"{name}: must be above 0 and at most {MAX_TIMEOUT_S:g} seconds, not {value:g}")
    return float(value)


def check_new(new: NewApproval) -> None:
    """Raise :class:`ReviewError` naming the first field of ``new`` that is wrong."""
    _printable("request_key", new.request_key)
    _printable("action", new.action)
    if new.tier not in APPROVAL_TIERS:
        raise ReviewError(f"tier: must be yellow or red (green never asks), not {new.tier!r}")
    required = new.approvals_required
    if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= MAX_APPROVALS:
        raise ReviewError(f"approvals_required: must be an integer from 1 to {MAX_APPROVALS}, not {required!r}")
    if not isinstance(new.digest, str) or not _DIGEST.fullmatch(new.digest):
        raise ReviewError("digest: must be 64 lowercase hex digits (the SHA-256 of the call)")
    if isinstance(new.reasons, str) or not isinstance(new.reasons, Sequence) or len(new.reasons) > MAX_REASONS:
        raise ReviewError(f"reasons: must be a list of at most {MAX_REASONS} strings")
    for index, reason in enumerate(new.reasons):
        _printable(f"reasons[{index}]", reason, limit=500)
    _object("arguments", new.arguments, MAX_ARGUMENTS_BYTES)
    if new.state is not None:
        _object("state", new.state, MAX_STATE_BYTES)
    _printable("session_id", new.session_id, optional=True)
    for name, value, pattern, digits in (
        ("trace_id", new.trace_id, _TRACE, 32),
        ("span_id", new.span_id, _SPAN, 16),
    ):
        if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise ReviewError(f"{name}: must be {digits} lowercase hex digits or null")
    soft = _seconds("soft_timeout_s", new.soft_timeout_s)
    hard = _seconds("hard_timeout_s", new.hard_timeout_s)
    if soft > hard:
        raise ReviewError(f"soft_timeout_s ({soft:g}) must not be after hard_timeout_s ({hard:g})")
    if new.on_hard_timeout not in HARD_TIMEOUT_OUTCOMES:
        raise ReviewError(f"on_hard_timeout: must be deny or proceed, not {new.on_hard_timeout!r}")
    if new.tier == RiskTier.RED and new.on_hard_timeout == "proceed":
        raise ReviewError("on_hard_timeout: a red request never proceeds without a person (use deny)")


def new_id() -> str:
    """A new approval request id: ``apr_`` and 22 URL-safe characters (128 random bits)."""
    return "apr_" + secrets.token_urlsafe(16)


def is_id(value: str) -> bool:
    """Whether ``value`` has the form of an approval request id."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))


class ApprovalStore:
    """Approval requests on a :class:`ReviewStore`'s database; ``on_change`` hears the ids of changed requests."""

    def __init__(self, store: ReviewStore, on_change: Callable[[Iterable[str]], None] | None = None) -> None:
        self.store = store
        self.dialect = store.dialect
        self.on_change = on_change

    # -- writing ---------------------------------------------------------------------------------------------------

    def _changed(self, session: Session, approval_id: str) -> None:
        # In the transaction: PostgreSQL delivers a NOTIFY on commit only, so no replica wakes before it can read.
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": NOTIFY_CHANNEL, "id": approval_id})

    def _announce(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids and self.on_change is not None:
            self.on_change(ids)

    @staticmethod
    def _audit(
        session: Session, request: ApprovalRequest, actor: str, action: str, before: dict[str, Any] | None
    ) -> None:
        session.add(
            ApprovalAudit(
                approval_id=request.id, actor=actor, action=action, at=_now(), before=before, after=_state(request)
            )
        )

    def _locked(self, session: Session, approval_id: str) -> ApprovalRequest:
        request = session.get(ApprovalRequest, approval_id, with_for_update=True, populate_existing=True)
        if request is None:
            raise NotFound(f"no approval request {approval_id}")
        return request

    def create(self, new: NewApproval, actor: str) -> tuple[ApprovalRequest, bool]:
        """The request for ``new.request_key``, created unless it exists; (request, whether this call created it).

        :class:`ReviewError` naming the field when ``new`` is invalid; :class:`Conflict` when the key is taken by a
        request for another call (another action or digest), so a reused key never answers for a different call.
        """
        check_new(new)
        for attempt in range(3):
            existing = self._by_key(new.request_key)
            if existing is not None:
                if (existing.action, existing.digest) != (new.action, new.digest):
                    raise Conflict(f"request_key is already used by approval request {existing.id} for another call")
                return existing, False
            now = _now()
            request = ApprovalRequest(
                id=new_id(),
                request_key=new.request_key,
                schema_version=SCHEMA_VERSION,
                action=new.action,
                tier=new.tier,
                approvals_required=new.approvals_required,
                reasons=list(new.reasons),
                digest=new.digest,
                # Content from the agent, redacted app-side: kept, with NULs as U+FFFD as span content is.
                arguments=_without_nul(dict(new.arguments)),
                state=_without_nul(dict(new.state or {})),
                session_id=new.session_id,
                trace_id=new.trace_id,
                span_id=new.span_id,
                status=ApprovalStatus.PENDING,
                approvers=[],
                soft_timeout_s=float(new.soft_timeout_s),
                hard_timeout_s=float(new.hard_timeout_s),
                soft_deadline=now + dt.timedelta(seconds=new.soft_timeout_s),
                hard_deadline=now + dt.timedelta(seconds=new.hard_timeout_s),
                on_hard_timeout=new.on_hard_timeout,
                created_at=now,
            )
            try:
                with self.store._writing() as session:
                    session.add(request)
                    session.flush()
                    self._audit(session, request, actor, "create", None)
                    self._changed(session, request.id)
            except IntegrityError:
                # Another replica (or a retried POST) inserted the same key between our read and our insert.
                if attempt == 2:
                    raise
                continue
            self._announce([request.id])
            return request, True
        raise AssertionError("unreachable")

    def decide(
        self,
        approval_id: str,
        reviewer: str,
        outcome: str,
        *,
        reason: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> tuple[ApprovalRequest, ApprovalDecision | None]:
        """Record ``reviewer``'s decision; (the request, the new decision, or None for an idempotent repeat).

        :class:`ReviewError` for a decision that is malformed (a reject without a reason, a modify without object
        arguments), :class:`Conflict` for one the request's state refuses (see docs/gates.md).
        """
        self._check_decision(outcome, reason, arguments)
        self._existing(approval_id)
        with self.store._writing() as session:
            request = self._locked(session, approval_id)
            if request.status != ApprovalStatus.PENDING:
                if self._repeats(session, request, reviewer, outcome, reason, arguments):
                    return request, None
                raise Conflict(f"approval request {approval_id} is {request.status}, no longer pending")
            if outcome == ApprovalOutcome.APPROVE and reviewer in (request.approvers or []):
                raise Conflict(
                    f"{reviewer} already approved approval request {approval_id}; another reviewer must approve it"
                )
            before = _state(request)
            now = _now()
            if outcome == ApprovalOutcome.REJECT:
                request.status, request.reason = ApprovalStatus.REJECTED, reason
            else:
                if outcome == ApprovalOutcome.MODIFY:
                    # The earlier approvals were of other arguments: they no longer count.
                    request.decided_arguments = dict(arguments or {})
                    request.approvers = [reviewer]
                else:
                    request.approvers = [*(request.approvers or []), reviewer]
                if len(request.approvers) >= request.approvals_required:
                    request.status = (
                        ApprovalStatus.APPROVED if request.decided_arguments is None else ApprovalStatus.MODIFIED
                    )
            if request.status != ApprovalStatus.PENDING:
                request.decided_at = now
            record = ApprovalDecision(
                approval_id=request.id,
                reviewer=reviewer,
                outcome=outcome,
                reason=reason,
                arguments=dict(arguments) if arguments is not None else None,
                at=now,
            )
            session.add(record)
            self._audit(session, request, reviewer, f"decide:{outcome}", before)
            self._changed(session, request.id)
        self._announce([approval_id])
        return request, record

    @staticmethod
    def _check_decision(outcome: str, reason: str | None, arguments: Mapping[str, Any] | None) -> None:
        if outcome not in ApprovalOutcome.values():
            raise ReviewError(f"outcome: must be approve, reject or modify, not {outcome!r}")
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS or "\x00" in reason:
                raise ReviewError(f"reason: must be text of at most {MAX_REASON_CHARS} characters, without NUL")
        if outcome == ApprovalOutcome.REJECT and not (reason or "").strip():
            raise ReviewError("reason: a rejection needs a reason (the agent tells its model why)")
        if outcome == ApprovalOutcome.MODIFY:
            if arguments is None:
                raise ReviewError("arguments: a modify needs the edited arguments (an object)")
            _object("arguments", arguments, MAX_ARGUMENTS_BYTES)
            if _has_nul(arguments):  # typed by a reviewer: refused rather than altered
                raise ReviewError("arguments: must not contain a NUL byte (\\u0000)")
        elif arguments is not None:
            raise ReviewError(f"arguments: only a modify has arguments, not {outcome}")

    @staticmethod
    def _repeats(
        session: Session,
        request: ApprovalRequest,
        reviewer: str,
        outcome: str,
        reason: str | None,
        arguments: Mapping[str, Any] | None,
    ) -> bool:
        """Whether ``reviewer``'s latest decision on ``request`` is this one (a retried request changes nothing)."""
        last = session.scalars(
            select(ApprovalDecision)
            .where(ApprovalDecision.approval_id == request.id, ApprovalDecision.reviewer == reviewer)
            .order_by(ApprovalDecision.id.desc())
            .limit(1)
        ).first()
        if last is None or last.outcome != outcome:
            return False
        if outcome == ApprovalOutcome.REJECT and last.reason != reason:
            return False
        return outcome != ApprovalOutcome.MODIFY or last.arguments == dict(arguments or {})

    def consume(self, approval_id: str, digest: str, actor: str) -> ApprovalRequest:
        """Mark the approved call as about to run: once, for the request's digest (:class:`Conflict` otherwise)."""
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ReviewError("digest: must be 64 lowercase hex digits")
        self._existing(approval_id)
        with self.store._writing() as session:
            request = self._locked(session, approval_id)
            if request.consumed_at is not None:
                raise Conflict(f"approval request {approval_id} was already consumed; an approval runs one call once")
            proceeds = request.status == ApprovalStatus.TIMED_OUT and request.on_hard_timeout == "proceed"
            if request.status not in _CONSUMABLE and not proceeds:
                raise Conflict(f"approval request {approval_id} is {request.status}: there is nothing to run")
            if not secrets.compare_digest(digest, request.digest):
                raise Conflict(f"the digest is not approval request {approval_id}'s: it approved another call")
            before = _state(request)
            request.consumed_at, request.consumed_digest = _now(), digest
            self._audit(session, request, actor, "consume", before)
            self._changed(session, request.id)
        self._announce([approval_id])
        return request

    def fire_timers(self, now: dt.datetime | None = None) -> Timers:
        """Escalate pending requests past their soft deadline, time out those past their hard one.

        Each change is a conditional ``UPDATE`` (still pending, not yet escalated), so when several replicas fire at
        once each request changes once: the ids returned are the ones *this* call changed, and only its caller
        sends the escalation's webhook.
        """
        now = now or _now()
        escalated = self._fire(
            (ApprovalRequest.status == ApprovalStatus.PENDING)
            & ApprovalRequest.escalated_at.is_(None)
            & (ApprovalRequest.soft_deadline < now),
            {"escalated_at": now},
            "escalate",
            {"escalated": False},
        )
        timed_out = self._fire(
            (ApprovalRequest.status == ApprovalStatus.PENDING) & (ApprovalRequest.hard_deadline < now),
            {"status": ApprovalStatus.TIMED_OUT.value, "decided_at": now},
            "time_out",
            {"status": ApprovalStatus.PENDING.value},
        )
        return Timers(escalated, timed_out)

    def _fire(self, due: Any, values: dict[str, Any], action: str, was: dict[str, Any]) -> list[str]:
        """Apply ``values`` to each request still ``due`` (one conditional UPDATE each); the ids this call changed."""
        with self.store._sessions() as session:  # the common case, nothing due, needs no write transaction
            candidates = list(
                session.scalars(
                    select(ApprovalRequest.id).where(due).order_by(ApprovalRequest.created_at).limit(_TIMER_BATCH)
                )
            )
        fired: list[str] = []
        for approval_id in candidates:
            with self.store._writing() as session:
                changed = rowcount(
                    session.execute(
                        update(ApprovalRequest)
                        .where(ApprovalRequest.id == approval_id)
                        .where(due)
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
                )
                if changed != 1:
                    continue  # another replica got there first
                request = session.get(ApprovalRequest, approval_id, populate_existing=True)
                assert request is not None
                # The UPDATE's condition says what the request was: still pending (and, to escalate, not escalated).
                self._audit(session, request, "system", action, {**_state(request), **was})
                self._changed(session, approval_id)
            fired.append(approval_id)
        self._announce(fired)
        return fired

    # -- reading ---------------------------------------------------------------------------------------------------

    def _existing(self, approval_id: str) -> None:
        if not is_id(approval_id):
            raise NotFound(f"no approval request {approval_id!r} (ids are apr_ and 22 URL-safe characters)")

    def _by_key(self, request_key: str) -> ApprovalRequest | None:
        with self.store._sessions() as session:
            return session.scalars(
                select(ApprovalRequest).where(ApprovalRequest.request_key == request_key)
            ).one_or_none()

    def get(self, approval_id: str) -> ApprovalRequest:
        """One request; :class:`NotFound` when there is none."""
        self._existing(approval_id)
        with self.store._sessions() as session:
            request = session.get(ApprovalRequest, approval_id)
            if request is None:
                raise NotFound(f"no approval request {approval_id}")
            return request

    def decisions(self, approval_id: str) -> list[ApprovalDecision]:
        """The decisions on a request, oldest first."""
        with self.store._sessions() as session:
            query = select(ApprovalDecision).where(ApprovalDecision.approval_id == approval_id)
            return list(session.scalars(query.order_by(ApprovalDecision.id)))

    def list(
        self, *, status: Sequence[str] | str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApprovalRequest]:
        """Requests (of ``status``): escalated first, then red before yellow, then oldest first."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        for value in statuses:
            if value not in ApprovalStatus.values():
                raise ReviewError(f"status: unknown status {value!r}; known: {', '.join(ApprovalStatus.values())}")
        query = select(ApprovalRequest).order_by(
            case((ApprovalRequest.escalated_at.is_(None), 1), else_=0),
            case((ApprovalRequest.tier == RiskTier.RED, 0), else_=1),
            ApprovalRequest.created_at,
            ApprovalRequest.id,
        )
        if statuses:
            query = query.where(ApprovalRequest.status.in_(statuses))
        with self.store._sessions() as session:
            return list(session.scalars(query.limit(limit).offset(offset)))

    def pending_counts(self) -> dict[tuple[str, bool], int]:
        """How many requests are pending, by (tier, escalated)."""
        escalated = ApprovalRequest.escalated_at.is_not(None)
        query = (
            select(ApprovalRequest.tier, escalated, func.count())
            .where(ApprovalRequest.status == ApprovalStatus.PENDING)
            .group_by(ApprovalRequest.tier, escalated)
        )
        with self.store._sessions() as session:
            return {(tier, bool(flag)): count for tier, flag, count in session.execute(query)}

    def audit(self, approval_id: str, *, limit: int = 1000) -> builtins.list[ApprovalAudit]:
        """The audit trail of one request, oldest first."""
        with self.store._sessions() as session:
            query = select(ApprovalAudit).where(ApprovalAudit.approval_id == approval_id)
            return list(session.scalars(query.order_by(ApprovalAudit.id).limit(limit)))

    def history(
        self, since: dt.datetime | None = None, *, arguments: bool = False, limit: int = 1_000_000
    ) -> builtins.list[dict[str, Any]]:
        """Requests created at or after ``since`` as plain dicts, oldest first: the fatigue report's records.

        With ``arguments`` each also has the call's (redacted) ``arguments``, which the report re-decides the policy
        on."""
        columns = (
            ApprovalRequest.id,
            ApprovalRequest.action,
            ApprovalRequest.tier,
            ApprovalRequest.status,
            ApprovalRequest.approvals_required,
            ApprovalRequest.created_at,
            ApprovalRequest.decided_at,
            ApprovalRequest.escalated_at,
            ApprovalRequest.decided_arguments.is_not(None),
            *((ApprovalRequest.arguments,) if arguments else ()),
        )
        query = select(*columns).order_by(ApprovalRequest.created_at, ApprovalRequest.id).limit(limit)
        if since is not None:
            query = query.where(ApprovalRequest.created_at >= since)
        keys = (
            "id",
            "action",
            "tier",
            "status",
            "approvals_required",
            "created_at",
            "decided_at",
            "escalated_at",
            "modified",
            *(("arguments",) if arguments else ()),
        )
        with self.store._sessions() as session:
            rows = session.execute(query).all()
        return [{**dict(zip(keys, row, strict=True)), "modified": bool(row[8])} for row in rows]

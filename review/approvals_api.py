"""The approvals API's routes (docs/gates.md, "The approvals API"), their metrics, and what runs beside them.

:func:`add_approval_routes` adds the routes to the review service's app with its auth dependency and error handlers,
and returns the :class:`ApprovalsRuntime` the app's lifespan starts and stops: the timers, the PostgreSQL listener
and the escalation webhook. A long poll (``GET /v1/approvals/{id}?wait=N``) is an async route that waits on an
asyncio event, so waiting holds no worker thread; it reads the store in the threadpool only when woken or every
``approvals.reread_interval_s``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from spanguard.review.approval_schemas import (
    ApprovalAuditList,
    ApprovalAuditOut,
    ApprovalDecisionIn,
    ApprovalDecisionOut,
    ApprovalIn,
    ApprovalList,
    ApprovalOut,
    ConsumeIn,
)
from spanguard.review.approvals import ApprovalRequest, ApprovalStore, NewApproval, Timers
from spanguard.review.approvals_live import EscalationWebhook, NotifyListener, TimerThread, Waiters
from spanguard.review.config import ApprovalsConfig
from spanguard.review.gauges import StoreGauge
from spanguard.review.schemas import NO_NUL, ErrorOut
from spanguard.review.store import Principal, ReviewError, ReviewStore, _now
from spanguard.review.verdicts import Verdict, VerdictEmitter
from spanguard.semconv import ApprovalStatus

__all__ = ["ApprovalMetrics", "ApprovalsRuntime", "add_approval_routes"]

logger = logging.getLogger("spanguard.review.approvals")

_MAX_ACTION_LABELS = 200  # an ingest token names actions: past this many, the rest are counted as "other"
_STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such approval request"},
    409: {"model": ErrorOut, "description": "the request's state refuses this (see docs/gates.md)"},
}
_STATUS_HELP = "one or more of " + ",".join(ApprovalStatus.values())
ApprovalIdPath = Annotated[str, PathParam(max_length=64, description="the request's id: apr_ and 22 characters")]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


class ApprovalMetrics:
    """The approvals' Prometheus metrics, on the service's registry."""

    def __init__(self, registry: CollectorRegistry, approvals: ApprovalStore) -> None:
        by_action = ["action", "tier"]
        self.requests = Counter(
            "spanguard_review_approval_requests", "Approval requests created.", by_action, registry=registry
        )
        self.decisions = Counter(
            "spanguard_review_approval_decisions",
            "Reviewers' decisions on approval requests.",
            [*by_action, "outcome"],
            registry=registry,
        )
        self.escalations = Counter(
            "spanguard_review_approval_escalations", "Requests past their soft timeout.", by_action, registry=registry
        )
        self.timeouts = Counter(
            "spanguard_review_approval_timeouts", "Requests past their hard timeout.", by_action, registry=registry
        )
        self.webhook_failures = Counter(
            "spanguard_review_approval_webhook_failures",
            "Escalation webhooks that failed after their retries.",
            registry=registry,
        )
        self.time_to_decision = Histogram(
            "spanguard_review_approval_time_to_decision_seconds",
            "Time from an approval request's creation to the decision that ended it.",
            ["tier"],
            buckets=(5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400),
            registry=registry,
        )
        registry.register(
            StoreGauge(
                "spanguard_review_approvals_pending",
                "Pending approval requests.",
                ["tier", "escalated"],
                lambda: {(tier, str(esc).lower()): n for (tier, esc), n in approvals.pending_counts().items()},
            )
        )
        self._actions: set[str] = set()

    def labels(self, request: ApprovalRequest) -> tuple[str, str]:
        """(action, tier) labels of ``request``, the action bounded in number."""
        action = request.action
        if action not in self._actions:
            if len(self._actions) >= _MAX_ACTION_LABELS:
                return "other", request.tier
            self._actions.add(action)
        return action, request.tier


class ApprovalsRuntime:
    """The approvals' background parts: timers, the PostgreSQL listener, the webhook, and the long polls' waiters."""

    def __init__(self, approvals: ApprovalStore, config: ApprovalsConfig, metrics: ApprovalMetrics) -> None:
        self.approvals, self.config, self.metrics = approvals, config, metrics
        self.waiters = Waiters()
        approvals.on_change = self.waiters.notify
        self.webhook: EscalationWebhook | None = None
        if config.webhook_url:
            self.webhook = EscalationWebhook(
                config.webhook_url,
                page_url=config.page_url,
                timeout_s=config.webhook_timeout_s,
                retries=config.webhook_retries,
                on_failure=metrics.webhook_failures.inc,
            )
        self.timers = TimerThread(approvals, config.timer_interval_s, self._fired)
        self.listener: NotifyListener | None = None
        if approvals.dialect == "postgresql" and config.listen:
            self.listener = NotifyListener(approvals.store.engine.url, self.waiters.notify, self.waiters.notify_all)

    def start(self) -> None:
        """Start the timers and the listener (never raises: a store that is down is retried in the background)."""
        self.timers.start()
        if self.listener is not None:
            self.listener.start()

    def close_waiters(self) -> None:
        """Answer every long poll now (the server is about to stop and would otherwise wait for them)."""
        self.waiters.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop everything, each part bounded (idempotent)."""
        self.close_waiters()
        self.timers.stop(timeout)
        if self.listener is not None:
            self.listener.stop(timeout)
        if self.webhook is not None:
            self.webhook.shutdown(timeout)

    def _fired(self, fired: Timers) -> None:
        now = _now()
        for approval_id, escalated in [*((i, True) for i in fired.escalated), *((i, False) for i in fired.timed_out)]:
            try:  # one request that cannot be read again must not cost the others their webhook
                request = self.approvals.get(approval_id)
            except Exception as error:
                logger.warning("approvals: %s changed but was not read back (%s)", approval_id, type(error).__name__)
                continue
            counter = self.metrics.escalations if escalated else self.metrics.timeouts
            counter.labels(*self.metrics.labels(request)).inc()
            if escalated and self.webhook is not None:
                self.webhook.send(request, now)


def add_approval_routes(
    app: FastAPI,
    store: ReviewStore,
    *,
    config: ApprovalsConfig,
    caller: Callable[..., Callable[..., Principal]],
    registry: CollectorRegistry,
    emitter: VerdictEmitter | None = None,
) -> ApprovalsRuntime:
    """Add the approvals routes to ``app`` (``caller(*roles)`` is its auth dependency); the runtime to start."""
    approvals = ApprovalStore(store)
    metrics = ApprovalMetrics(registry, approvals)
    runtime = ApprovalsRuntime(approvals, config, metrics)
    ingester = Depends(caller("ingest", "admin"))
    reviewer = Depends(caller("reviewer", "admin"))
    anyone = Depends(caller("ingest", "reviewer", "admin"))

    def answer(request: ApprovalRequest) -> ApprovalOut:
        return _out(request, approvals)

    @app.post(
        "/v1/approvals",
        tags=["approvals"],
        summary="Create an approval request (idempotent by request_key: 201 created, 200 the existing one).",
        status_code=201,
        responses={200: {"model": ApprovalOut, "description": "the request this key made before"}, **_STATE_ERRORS},
    )
    def create(body: ApprovalIn, response: Response, principal: Principal = ingester) -> ApprovalOut:
        request, created = approvals.create(NewApproval(**body.model_dump()), principal.name)
        if created:
            metrics.requests.labels(*metrics.labels(request)).inc()
        else:
            response.status_code = 200
        return answer(request)

    @app.get(
        "/v1/approvals",
        tags=["approvals"],
        summary="Approval requests: escalated first, then red before yellow, then oldest.",
    )
    def list_approvals(
        _: Principal = reviewer,
        status: Annotated[str | None, Query(description=_STATUS_HELP), NO_NUL] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> ApprovalList:
        statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
        try:
            requests = approvals.list(status=statuses, limit=limit, offset=offset)
        except ReviewError as error:
            raise ReviewError(f"query.{error}") from None
        return ApprovalList(items=[answer(request) for request in requests])

    @app.get(
        "/v1/approvals/report",
        tags=["approvals"],
        summary="The approval-fatigue report: counts per action, tier and day, budget share, suggestions.",
    )
    def report(_: Principal = reviewer, days: Annotated[int, Query(ge=1, le=366)] = 30) -> JSONResponse:
        from spanguard.review.fatigue import build_report, window_start

        now = _now()
        records = approvals.history(window_start(now, days), arguments=True)
        budget = config.policy.budget_per_day if config.policy is not None else 10
        try:
            built = build_report(records, budget_per_day=budget, policy=config.policy, now=now, days=days)
        except ValueError as error:
            raise ReviewError(str(error)) from None
        return JSONResponse(built)

    @app.get(
        "/v1/approvals/{approval_id}",
        tags=["approvals"],
        summary="One approval request; with wait (0 to 60 s), answered once it is no longer pending or wait passed.",
        responses=_STATE_ERRORS,
    )
    async def get_approval(
        approval_id: ApprovalIdPath,
        _: Principal = anyone,
        wait: Annotated[float, Query(ge=0, le=60, allow_inf_nan=False, description="seconds to wait")] = 0,
    ) -> ApprovalOut:
        def read() -> ApprovalOut:
            return answer(approvals.get(approval_id))

        deadline = time.monotonic() + wait
        waiters = runtime.waiters
        with waiters.watch(approval_id) as watch:  # watching before reading: a change in between still wakes it
            current = await run_in_threadpool(read)
            while current.status == ApprovalStatus.PENDING and not waiters.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await watch.wait(min(left, config.reread_interval_s))
                current = await run_in_threadpool(read)
        return current

    @app.post(
        "/v1/approvals/{approval_id}/decision",
        tags=["approvals"],
        summary="Approve, reject (with a reason) or modify (with arguments); the approver is the token's name.",
        responses=_STATE_ERRORS,
    )
    def decide(approval_id: ApprovalIdPath, body: ApprovalDecisionIn, principal: Principal = reviewer) -> ApprovalOut:
        request, record = approvals.decide(
            approval_id, principal.name, body.outcome, reason=body.reason, arguments=body.arguments
        )
        if record is not None:  # not an idempotent repeat
            metrics.decisions.labels(*metrics.labels(request), body.outcome).inc()
            if request.decided_at is not None:
                seconds = (request.decided_at - request.created_at).total_seconds()
                metrics.time_to_decision.labels(request.tier).observe(max(0.0, seconds))
            if emitter is not None:
                emitter.emit(_verdict(request, principal.name, body.outcome))
        return answer(request)

    @app.post(
        "/v1/approvals/{approval_id}/consume",
        tags=["approvals"],
        summary="The app is about to run the approved call: succeeds once, for the request's digest.",
        responses=_STATE_ERRORS,
    )
    def consume(approval_id: ApprovalIdPath, body: ConsumeIn, principal: Principal = ingester) -> ApprovalOut:
        return answer(approvals.consume(approval_id, body.digest, principal.name))

    @app.get(
        "/v1/approvals/{approval_id}/audit",
        tags=["approvals"],
        summary="The request's audit trail, oldest first.",
        responses=_STATE_ERRORS,
    )
    def audit(approval_id: ApprovalIdPath, _: Principal = reviewer) -> ApprovalAuditList:
        approvals.get(approval_id)  # 404 for an unknown request rather than an empty trail
        return ApprovalAuditList(
            entries=[
                ApprovalAuditOut(
                    id=e.id,
                    approval_id=e.approval_id,
                    actor=e.actor,
                    action=e.action,
                    at=_iso(e.at) or "",
                    before=e.before,
                    after=e.after,
                )
                for e in approvals.audit(approval_id)
            ]
        )

    return runtime


def _out(request: ApprovalRequest, approvals: ApprovalStore) -> ApprovalOut:
    return ApprovalOut(
        id=request.id,
        schema_version=request.schema_version,
        request_key=request.request_key,
        action=request.action,
        tier=request.tier,
        approvals_required=request.approvals_required,
        reasons=list(request.reasons or []),
        digest=request.digest,
        arguments=dict(request.arguments or {}),
        session_id=request.session_id,
        trace_id=request.trace_id,
        span_id=request.span_id,
        state=dict(request.state or {}),
        soft_timeout_s=request.soft_timeout_s,
        hard_timeout_s=request.hard_timeout_s,
        on_hard_timeout=request.on_hard_timeout,
        status=request.status,
        approvers=list(request.approvers or []),
        decisions=[
            ApprovalDecisionOut(
                reviewer=d.reviewer, outcome=d.outcome, reason=d.reason, arguments=d.arguments, at=_iso(d.at) or ""
            )
            for d in approvals.decisions(request.id)
        ],
        reason=request.reason,
        decided_arguments=request.decided_arguments,
        escalated_at=_iso(request.escalated_at),
        created_at=_iso(request.created_at) or "",
        soft_deadline=_iso(request.soft_deadline) or "",
        hard_deadline=_iso(request.hard_deadline) or "",
        decided_at=_iso(request.decided_at),
        consumed_at=_iso(request.consumed_at),
    )


def _verdict(request: ApprovalRequest, reviewer: str, outcome: str) -> Verdict:
    # The reason is the reviewer's free text (it may quote the call): it stays in the store, out of the event.
    return Verdict(
        trace_id=request.trace_id,
        span_id=request.span_id,
        item_id=None,
        reviewer=reviewer,
        outcome=outcome,
        approval_id=request.id,
    )

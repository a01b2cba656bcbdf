"""The review service's HTTP API (FastAPI on Starlette): ingest, queue, claims, decisions, audit, health and metrics.

Every route but ``/healthz`` (and the page shell, its static files and the OpenAPI document, which hold no data)
needs a bearer token; the caller's identity in decisions and the audit log is the token's name. Errors are JSON
``{"detail": "..."}`` naming what was wrong; nothing a request carries is logged, since span content may hold PII.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spanguard import __version__
from spanguard.review.approvals_api import add_approval_routes
from spanguard.review.config import ServiceConfig
from spanguard.review.conversation import assemble, session_conversation
from spanguard.review.datasets_api import add_dataset_routes
from spanguard.review.gauges import StoreGauge
from spanguard.review.schemas import (
    ITEM_ID,
    NO_NUL,
    AuditList,
    AuditOut,
    DecisionIn,
    DecisionOut,
    ErrorOut,
    Facets,
    IngestResult,
    IngestResults,
    ItemDetail,
    ItemIn,
    ItemList,
    ItemsIn,
    ItemSummary,
    Me,
    SessionContext,
    SessionTurn,
    naive_utc,
)
from spanguard.review.sessions import SessionStore
from spanguard.review.sessions_api import add_session_routes
from spanguard.review.store import (
    ITEM_ID_MAX,
    Conflict,
    Decision,
    DecisionRecord,
    IngestItem,
    ItemKind,
    ItemStatus,
    NotFound,
    Principal,
    ReviewError,
    ReviewItem,
    ReviewStore,
)
from spanguard.review.verdicts import Verdict, VerdictEmitter
from spanguard.semconv import GEN_AI_OPERATION_EXECUTE_TOOL, GEN_AI_OPERATION_NAME, GEN_AI_RESPONSE_ID, ReviewTier

__all__ = [
    "ApiError",
    "ReviewMetrics",
    "create_app",
]

logger = logging.getLogger("spanguard.review")
STATIC = Path(__file__).with_name("static")
_TIER_PATTERN = f"^({'|'.join(ReviewTier.values())})$"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """An error answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z") if value is not None else None


# -- metrics ----------------------------------------------------------------------------------------------------------


class ReviewMetrics:
    """The service's Prometheus registry: requests, ingestion, decisions, claim-to-decision time, queue sizes."""

    def __init__(self, store: ReviewStore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "spanguard_review_requests", "HTTP requests by route and status.", ["route", "code"], registry=self.registry
        )
        self.ingested = Counter(
            "spanguard_review_ingested_traces",
            "Traces ingested, by result (created a new item or merged into one).",
            ["result"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "spanguard_review_decisions", "Decisions by tier and outcome.", ["tier", "outcome"], registry=self.registry
        )
        self.decision_seconds = Histogram(
            "spanguard_review_claim_to_decision_seconds",
            "Time from claiming an item to deciding it.",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.registry.register(
            StoreGauge("spanguard_review_items", "Review items by tier and status.", ["tier", "status"], store.counts)
        )


# -- middleware -------------------------------------------------------------------------------------------------------


class _Edge:
    """What every request passes first: the body limit (413, before reading when the length is declared), JSON-only
    bodies on the API (415), the security headers on every response, and the request counter by route and status."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: ReviewMetrics) -> None:
        self.app, self.limit, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def answer(code: int, message: str) -> None:
            nonlocal status
            status = code
            await _send_error(send, code, message)

        try:
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                await answer(413, f"request body exceeds the limit of {self.limit} bytes")
                return
            has_body = (length.isdigit() and length != b"0") or b"transfer-encoding" in headers
            media = headers.get(b"content-type", b"").partition(b";")[0].strip().lower().decode("latin-1")
            if has_body and scope["path"].startswith("/v1/") and media != "application/json":
                await answer(415, f"the body must be application/json, not {media or 'untyped'}")
                return
            seen = 0
            started = False

            async def limited_receive() -> Message:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > self.limit:
                        raise _TooLarge
                return message

            async def secured_send(message: Message) -> None:
                nonlocal started, status
                if message["type"] == "http.response.start":
                    started, status = True, message["status"]
                    message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
                await send(message)

            try:
                await self.app(scope, limited_receive, secured_send)
            except _TooLarge:
                if not started:
                    await answer(413, f"request body exceeds the limit of {self.limit} bytes")
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(getattr(route, "path", "other"), str(status)).inc()


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", _CSP.encode()),
    (b"cache-control", b"no-store"),
]


class _TooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing passes it on instead of turning it into a 400.
    def __init__(self) -> None:
        super().__init__(413, "request body exceeds the size limit")


async def _send_error(send: Send, status: int, message: str) -> None:
    body = JSONResponse({"detail": message}).body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


# -- the app ----------------------------------------------------------------------------------------------------------


_ITEM_STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such item"},
    409: {
        "model": ErrorOut,
        "description": "the item is held by someone else, decided, its lease expired, or (dual approval) the caller "
        "already approved it",
    },
}
# Every route's item id: validated as a 64-bit id before it reaches the store (422 naming it, not a database error).
ItemIdPath = Annotated[int, PathParam(ge=1, le=ITEM_ID_MAX, description="the item's id, 1 to 2^63-1"), ITEM_ID]
_bearer = HTTPBearer(auto_error=False, description="a token made by `spanguard review token create`")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "the body is not valid JSON"),
        (401, "no token, or an unknown token"),
        (403, "the token's role may not do this"),
        (413, "the body is too large"),
        (415, "the body is not application/json"),
        (422, "the body or a parameter is invalid (the message names it)"),
    )
}


def create_app(config: ServiceConfig, store: ReviewStore, *, emitter: VerdictEmitter | None = None) -> FastAPI:
    """The review service's ASGI app on ``store`` (already migrated); ``emitter`` sends verdicts over OTLP."""
    metrics = ReviewMetrics(store)
    policy = store.policy

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The approvals' timers and PostgreSQL listener run while the app serves (ReviewServer runs the lifespan).
        app.state.approvals.start()
        try:
            yield
        finally:
            app.state.approvals.stop()

    app = FastAPI(
        title="spanguard review service",
        version=__version__,
        description="The human review queue of spanguard: traces selected by risk sampling, reviewed by people.",
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,
        lifespan=lifespan,
    )
    app.state.store, app.state.metrics, app.state.config = store, metrics, config

    def caller(*roles: str) -> Callable[..., Principal]:
        def authenticate(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Principal:
            challenge = {"WWW-Authenticate": "Bearer"}
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise ApiError(401, "this route needs an Authorization: Bearer <token> header", challenge)
            principal = store.authenticate(credentials.credentials)
            if principal is None:
                raise ApiError(401, "unknown or revoked token", challenge)
            if principal.role not in roles:
                raise ApiError(403, f"a {principal.role} token may not do this; it needs: {', '.join(roles)}")
            return principal

        return authenticate

    ingester = Depends(caller("ingest", "admin"))
    reviewer = Depends(caller("reviewer", "admin"))
    anyone = Depends(caller("ingest", "reviewer", "admin"))

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, error: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(ReviewError)
    async def _invalid(_: Request, error: ReviewError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def _store_down(_: Request, error: DBAPIError) -> JSONResponse:
        # A store that does not answer is the service being unavailable, not the request being wrong: 503 tells the
        # exporter and the page to retry, and nothing already accepted is lost (transactions roll back whole).
        logger.error("review store error: %s", type(error.orig).__name__ if error.orig is not None else "unknown")
        headers = {"Retry-After": "5"}
        return JSONResponse(
            {"detail": "the review store is unavailable; retry later"}, status_code=503, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
        parts = []
        for problem in problems[:10]:
            where = ".".join(str(p) for p in problem.get("loc", ()))
            parts.append(f"{where}: {problem.get('msg', 'invalid')}")
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        return JSONResponse({"detail": "; ".join(parts) + more}, status_code=422)

    # -- routes -------------------------------------------------------------------------------------------------------

    @app.get("/healthz", tags=["service"], summary="Health: 200 when the store answers, 503 when it does not.")
    def healthz() -> JSONResponse:
        ok = store.ping()
        return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (any token).", response_class=Response)
    def prometheus(_: Principal = anyone) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/me", tags=["review"], summary="Who the token belongs to, and the review policy.")
    def me(principal: Principal = anyone) -> Me:
        return Me(
            name=principal.name,
            role=principal.role,
            reject_reasons=list(policy.reject_reasons),
            checklists={tier: policy.checklist(tier) for tier in ReviewTier},
            session_checklist=list(policy.session_checklist),
            units=dict(policy.units),
        )

    @app.post(
        "/v1/review-items",
        tags=["review"],
        summary="Ingest traces as review items (idempotent by trace id; later spans merge in).",
        status_code=200,
    )
    def ingest(body: ItemIn | ItemsIn, principal: Principal = ingester) -> IngestResults:
        items = body.items if isinstance(body, ItemsIn) else [body]
        if len(items) > config.max_items_per_request:
            raise ApiError(413, f"at most {config.max_items_per_request} items per request, not {len(items)}")
        results = store.ingest_many(
            [
                IngestItem(
                    item.trace_id,
                    item.tier,
                    item.risk_tier,
                    item.reasons,
                    [span.model_dump() for span in item.spans],
                )
                for item in items
            ],
            actor=principal.name,
        )
        for _, created in results:
            metrics.ingested.labels("created" if created else "merged").inc()
        return IngestResults(
            items=[
                IngestResult(id=item_id, trace_id=item.trace_id, created=created)
                for item, (item_id, created) in zip(items, results, strict=True)
            ]
        )

    @app.get("/v1/review-items", tags=["review"], summary="The queue: by risk (red first), then age (oldest first).")
    def list_items(
        _: Principal = reviewer,
        status: Annotated[str | None, Query(description="one or more of pending,claimed,done,expired"), NO_NUL] = None,
        tier: Annotated[str | None, Query(pattern=_TIER_PATTERN), NO_NUL] = None,
        reason: Annotated[str | None, Query(max_length=200), NO_NUL] = None,
        model: Annotated[str | None, Query(max_length=200), NO_NUL] = None,
        since: Annotated[dt.datetime | None, Query(description="created at or after (ISO 8601)"), NO_NUL] = None,
        until: Annotated[dt.datetime | None, Query(description="created before (ISO 8601)"), NO_NUL] = None,
        kind: Annotated[
            str | None,
            Query(
                pattern="^(trace|session)$",
                description="trace: every trace, also those reviewed within a session; session: session items; "
                "none: what is reviewed (session items and traces reviewed on their own)",
            ),
            NO_NUL,
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> ItemList:
        items = store.list(
            kind=ItemKind(kind) if kind in ItemKind.values() else None,
            status=_statuses(status),
            tier=tier,
            reason=reason,
            model=model,
            since=naive_utc(since),
            until=naive_utc(until),
            limit=limit,
            offset=offset,
        )
        counts = store.member_counts([item.id for item in items if item.kind == ItemKind.SESSION])
        return ItemList(items=[_summary(item, config, counts) for item in items])

    @app.post(
        "/v1/review-items/claim-next",
        tags=["review"],
        summary="Claim the riskiest, oldest claimable item (of a tier); 204 when the queue is empty.",
        responses={200: {"model": ItemDetail}, 204: {"description": "nothing to claim"}},
        response_model=None,
    )
    def claim_next(
        principal: Principal = reviewer,
        tier: Annotated[str | None, Query(pattern=_TIER_PATTERN), NO_NUL] = None,
    ) -> ItemDetail | Response:
        item_id = store.claim_next(principal.name, tier=tier)
        if item_id is None:
            return Response(status_code=204)
        # Serialised by pydantic here: with response_model=None FastAPI would walk the model in Python instead.
        detail = _detail(store, store.get(item_id), config)
        return Response(detail.model_dump_json(), media_type="application/json")

    @app.get(
        "/v1/review-items/facets",
        tags=["review"],
        summary="The values the queue can be filtered by (tiers, risk tiers, reasons, models), with item counts.",
    )
    def facets(
        _: Principal = reviewer,
        status: Annotated[str | None, Query(description="one or more of pending,claimed,done,expired"), NO_NUL] = None,
    ) -> Facets:
        return Facets(**store.facets(status=_statuses(status)))

    @app.get("/v1/review-items/{item_id}", tags=["review"], summary="One item, with its conversation.")
    def get_item(item_id: ItemIdPath, _: Principal = reviewer) -> ItemDetail:
        return _detail(store, store.get(item_id), config)

    @app.post(
        "/v1/review-items/{item_id}/claim",
        tags=["review"],
        summary="Lease the item to the caller; 409 when someone else holds it or it is done.",
        responses=_ITEM_STATE_ERRORS,
    )
    def claim(item_id: ItemIdPath, principal: Principal = reviewer) -> ItemDetail:
        if not store.claim(item_id, principal.name):
            item = store.get(item_id)
            if item.status == ItemStatus.CLAIMED and item.lease_owner == principal.name:
                return _detail(store, item, config)  # claiming again what one holds is not an error
            held = (
                "is done"
                if item.status == ItemStatus.DONE
                else f"is claimed by {item.lease_owner} until {_iso(item.lease_expires_at)}"
            )
            raise ApiError(409, f"review item {item_id} {held}")
        return _detail(store, store.get(item_id), config)

    @app.post(
        "/v1/review-items/{item_id}/release",
        tags=["review"],
        summary="Give a claimed item back to the queue.",
        responses=_ITEM_STATE_ERRORS,
    )
    def release(item_id: ItemIdPath, principal: Principal = reviewer) -> ItemSummary:
        item = store.release(item_id, principal.name)
        return _summary(item, config, store.member_counts([item.id] if item.kind == ItemKind.SESSION else []))

    @app.post(
        "/v1/review-items/{item_id}/decision",
        tags=["review"],
        summary="Decide a claimed item: approve, reject with a reason, or correct; with ratings, checklist, comment.",
        responses=_ITEM_STATE_ERRORS,
    )
    def decide(item_id: ItemIdPath, body: DecisionIn, principal: Principal = reviewer) -> ItemDetail:
        decision = Decision(
            outcome=body.outcome,
            reason=body.reason,
            reason_text=body.reason_text,
            correction=body.correction,
            ratings=body.ratings.model_dump(exclude_none=True),
            checklist=dict(body.checklist),
            comment=body.comment,
            turn=body.turn,
        )
        item = store.decide(item_id, principal.name, decision)
        record = store.decisions(item_id)[-1]
        metrics.decisions.labels(item.tier, body.outcome).inc()
        if record.claimed_at is not None:
            metrics.decision_seconds.observe(max(0.0, (record.at - record.claimed_at).total_seconds()))
        if emitter is not None:
            # A session item's verdict is about each of its traces: one evaluation event on each.
            for evaluated in store.members(item.id) if item.kind == ItemKind.SESSION else [item]:
                emitter.emit(_verdict(evaluated, record, item_id=item.id))
        return _detail(store, item, config)

    @app.get("/v1/audit", tags=["review"], summary="The audit trail of an item (or of all items), oldest first.")
    def audit(
        _: Principal = reviewer,
        item: Annotated[int | None, Query(ge=1, le=ITEM_ID_MAX, description="the item's id"), ITEM_ID] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> AuditList:
        if item is not None:
            store.get(item)  # 404 for an unknown item rather than an empty trail
        return AuditList(
            entries=[
                AuditOut(
                    id=e.id,
                    item_id=e.item_id,
                    actor=e.actor,
                    action=e.action,
                    at=_iso(e.at) or "",
                    before=e.before,
                    after=e.after,
                )
                for e in store.audit(item, limit=limit)
            ]
        )

    app.state.approvals = add_approval_routes(
        app, store, config=config.approvals, caller=caller, registry=metrics.registry, emitter=emitter
    )
    add_dataset_routes(app, store, caller=caller)
    add_session_routes(app, store, caller=caller)

    # -- the page -----------------------------------------------------------------------------------------------------

    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        if not index.exists():
            return JSONResponse({"detail": "the reviewers' page is not installed"}, status_code=404)
        return FileResponse(index, media_type="text/html")

    favicon = STATIC / "favicon.svg"

    @app.get("/favicon.ico", include_in_schema=False)
    def icon() -> Response:
        # Browsers ask for /favicon.ico on every load whatever the page links: answer it instead of a 404 per load.
        if not favicon.exists():
            return Response(status_code=204)
        return FileResponse(favicon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if config.cors_origins:
        # Only the listed origins, only with the Authorization header (no cookies): still CSRF-safe.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
        )
    app.add_middleware(_Edge, max_body_bytes=config.max_body_bytes, metrics=metrics)
    return app


def _statuses(status: str | None) -> list[str] | None:
    """``pending,expired`` as a list of statuses; :class:`ApiError` naming an unknown one."""
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    for value in statuses or []:
        if value not in ItemStatus.values():
            raise ApiError(422, f"query.status: unknown status {value!r}; known: {', '.join(ItemStatus.values())}")
    return statuses


def _summary(item: ReviewItem, config: ServiceConfig, counts: dict[int, int] | None = None) -> ItemSummary:
    return ItemSummary(**_summary_fields(item, config, counts))


def _summary_fields(item: ReviewItem, config: ServiceConfig, counts: dict[int, int] | None = None) -> dict[str, Any]:
    """The item's summary; ``counts`` (of :meth:`ReviewStore.member_counts`) gives a session item its traces."""
    return {
        "id": item.id,
        "trace_id": item.trace_id,
        "tier": item.tier,
        "risk_tier": item.risk_tier,
        "reasons": list(item.reasons or []),
        "status": item.status,
        "lease_owner": item.lease_owner,
        "lease_expires_at": _iso(item.lease_expires_at),
        "approvals": list(item.approvals or []),
        "outcome": item.outcome,
        "models": list(item.models or []),
        "preview": item.preview or "",
        "spans": len(item.spans or []),
        "created_at": _iso(item.created_at) or "",
        "updated_at": _iso(item.updated_at) or "",
        "trace_url": config.trace_url_template.replace("{trace_id}", item.trace_id)
        if config.trace_url_template and item.kind == ItemKind.TRACE
        else None,
        "kind": item.kind or ItemKind.TRACE,
        "conversation_id": item.conversation_id,
        "user_id": item.user_id,
        "session_item_id": item.session_item_id,
        "follows_id": item.follows_id,
        "traces": counts.get(item.id, 0) if counts is not None and item.kind == ItemKind.SESSION else None,
        "reason_texts": {reason: config.risk_rules.explain(reason) for reason in item.reasons or []},
    }


def _detail(store: ReviewStore, item: ReviewItem, config: ServiceConfig) -> ItemDetail:
    conversation, context = assemble(item.spans or []), None
    if item.kind == ItemKind.SESSION and item.conversation_id is not None:
        traces, earlier = SessionStore(store).review_context(item)
        earlier_counts = store.member_counts([e.id for e in earlier])
        conversation = session_conversation([(t.trace_id, t.spans or []) for t in traces])
        context = SessionContext(
            conversation_id=item.conversation_id,
            traces=[
                SessionTurn(
                    item_id=t.item_id,
                    trace_id=t.trace_id,
                    tier=t.tier,
                    risk_tier=t.risk_tier,
                    reasons=t.reasons,
                    status=t.status,
                    outcome=t.outcome,
                    started_unix_nano=t.started_unix_nano,
                    member=t.session_item_id == item.id,
                    reviewed_in=t.session_item_id,
                )
                for t in traces
            ],
            earlier=[_summary(e, config, earlier_counts) for e in earlier],
        )
    counts = {item.id: sum(t.member for t in context.traces)} if context is not None else None
    checklist = store.policy.checklist(item.tier, "session" if item.kind == ItemKind.SESSION else "trace")
    return ItemDetail(
        **_summary_fields(item, config, counts),
        conversation=conversation,
        decisions=[_decision(record) for record in store.decisions(item.id)],
        golden=item.golden,
        checklist=checklist,
        checklist_descriptions={k: v for k, v in store.policy.checklist_descriptions.items() if k in checklist},
        reject_reasons=list(store.policy.reject_reasons),
        session=context,
    )


def _decision(record: DecisionRecord) -> DecisionOut:
    return DecisionOut(
        id=record.id,
        reviewer=record.reviewer,
        outcome=record.outcome,
        reason=record.reason,
        reason_text=record.reason_text,
        correction=record.correction,
        ratings=dict(record.ratings or {}),
        checklist=dict(record.checklist or {}),
        comment=record.comment,
        at=_iso(record.at) or "",
        turn=record.turn,
    )


def _evaluated_span(spans: Sequence[dict[str, Any]]) -> str | None:
    """The span a verdict is about: the last LLM call (its output is what was judged), else the trace's root."""
    llm = [
        s
        for s in spans
        if (s.get("attributes") or {}).get(GEN_AI_OPERATION_NAME) not in (None, GEN_AI_OPERATION_EXECUTE_TOOL)
    ]
    if llm:
        return max(llm, key=lambda s: s.get("end_time_unix_nano") or 0).get("span_id")
    roots = [s for s in spans if not s.get("parent_span_id")]
    return (roots or list(spans) or [{}])[0].get("span_id")


def _verdict(item: ReviewItem, record: DecisionRecord, *, item_id: int | None = None) -> Verdict:
    spans = item.spans or []
    evaluated = _evaluated_span(spans)
    response_id = next(
        (
            (s.get("attributes") or {}).get(GEN_AI_RESPONSE_ID)
            for s in spans
            if s.get("span_id") == evaluated and (s.get("attributes") or {}).get(GEN_AI_RESPONSE_ID)
        ),
        None,
    )
    return Verdict(
        trace_id=item.trace_id,
        span_id=evaluated,
        item_id=item.id if item_id is None else item_id,
        reviewer=record.reviewer,
        outcome=record.outcome,
        reason=record.reason,
        ratings=dict(record.ratings or {}),
        checklist=dict(record.checklist or {}),
        comment=record.comment,
        response_id=response_id if isinstance(response_id, str) else None,
    )

"""The sessions routes of the review service (docs/review.md, "Sessions"): list sessions, open one.

:func:`add_session_routes` adds them to the review app with its auth dependency (the reviewer role, as for items).
The store's errors are answered by the app's handlers: :class:`~spanguard.review.store.ReviewError` as 422,
:class:`~spanguard.review.store.NotFound` as 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
from fastapi import Depends, FastAPI, Query
from fastapi import Path as PathParam
from starlette.convertors import Convertor, register_url_convertor

from spanguard.review.conversation import assemble
from spanguard.review.schemas import NO_NUL, ErrorOut, naive_utc
from spanguard.review.sessions import SessionDetail, SessionStore, SessionSummary, SessionTrace, check_session_id
from spanguard.review.store import SESSION_ID_MAX, ItemStatus, Principal, ReviewError, ReviewStore


class _SessionId(Convertor[str]):
    """A path segment that may hold anything, slashes and control characters too: conversation ids are the app's own
    (``tenant/chat/42``, a URL), and an id that is no id must reach :func:`check_session_id` for its 422, not miss the
    route for a 404."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("session_id", _SessionId())

__all__ = ["ReviewOut", "SessionList", "SessionOut", "SessionPage", "TraceOut", "add_session_routes"]


class TraceOut(pydantic.BaseModel):
    """One trace (turn) of a session: its item, tiers, reasons and status; in an opened session, its conversation."""

    item_id: int
    trace_id: str
    tier: str
    risk_tier: str
    reasons: list[str]
    status: str
    outcome: str | None
    models: list[str]
    preview: str
    created_at: str
    updated_at: str
    started_unix_nano: int | None = None
    ended_unix_nano: int | None = None
    conversation: dict[str, Any] | None = None
    session_item_id: int | None = pydantic.Field(None, description="the session item it is reviewed within")


class ReviewOut(pydantic.BaseModel):
    """A session item of the session (docs/review.md, "Review by session")."""

    item_id: int
    tier: str
    status: str
    outcome: str | None


class SessionOut(pydantic.BaseModel):
    """A session: the traces of one conversation (or one trace without a conversation id)."""

    key: str
    conversation_id: str | None
    user_id: str | None
    tier: str
    risk_tier: str
    reasons: list[str]
    models: list[str]
    statuses: dict[str, int]
    turns: int
    first_at: str
    last_at: str
    preview: str
    traces: list[TraceOut]
    reviews: list[ReviewOut] = pydantic.Field(description="its session items, oldest first")


class SessionPage(SessionOut):
    """An opened session: every trace in time order with its conversation, and the session's duration."""

    started_unix_nano: int | None
    ended_unix_nano: int | None
    duration_s: float | None


class SessionList(pydantic.BaseModel):
    """A page of sessions, by highest risk, then latest activity."""

    sessions: list[SessionOut]


def _iso(value: dt.datetime) -> str:
    return value.isoformat() + "Z"


def _trace(trace: SessionTrace) -> TraceOut:
    return TraceOut(
        item_id=trace.item_id,
        trace_id=trace.trace_id,
        tier=trace.tier,
        risk_tier=trace.risk_tier,
        reasons=trace.reasons,
        status=trace.status,
        outcome=trace.outcome,
        models=trace.models,
        preview=trace.preview,
        created_at=_iso(trace.created_at),
        updated_at=_iso(trace.updated_at),
        started_unix_nano=trace.started_unix_nano,
        ended_unix_nano=trace.ended_unix_nano,
        conversation=assemble(trace.spans) if trace.spans is not None else None,
        session_item_id=trace.session_item_id,
    )


def _fields(summary: SessionSummary) -> dict[str, Any]:
    return {
        "key": summary.key,
        "conversation_id": summary.conversation_id,
        "user_id": summary.user_id,
        "tier": summary.tier,
        "risk_tier": summary.risk_tier,
        "reasons": summary.reasons,
        "models": summary.models,
        "statuses": summary.statuses,
        "turns": summary.turns,
        "first_at": _iso(summary.first_at),
        "last_at": _iso(summary.last_at),
        "preview": summary.preview,
        "traces": [_trace(trace) for trace in summary.traces],
        "reviews": [ReviewOut(**vars(review)) for review in summary.reviews],
    }


def _page(detail: SessionDetail) -> SessionPage:
    return SessionPage(
        **_fields(detail),
        started_unix_nano=detail.started_unix_nano,
        ended_unix_nano=detail.ended_unix_nano,
        duration_s=detail.duration_s,
    )


def _located(where: str, error: ReviewError) -> ReviewError:
    """The store's message with the parameter's path in front, as FastAPI's own 422s have it."""
    return ReviewError(f"{where}.{error}")


def add_session_routes(app: FastAPI, store: ReviewStore, *, caller: Callable[..., Callable[..., Principal]]) -> None:
    """Add the sessions routes to ``app``; ``caller(*roles)`` makes the auth dependency, as for the app's own routes."""
    sessions = SessionStore(store)
    reviewer = Depends(caller("reviewer", "admin"))

    @app.get(
        "/v1/sessions",
        tags=["sessions"],
        summary="Sessions (the traces of one conversation): by highest risk, then latest activity.",
    )
    def list_sessions(
        _: Principal = reviewer,
        user: Annotated[
            str | None, Query(max_length=SESSION_ID_MAX, description="a trace has this user.id"), NO_NUL
        ] = None,
        since: Annotated[dt.datetime | None, Query(description="active at or after (ISO 8601)"), NO_NUL] = None,
        until: Annotated[dt.datetime | None, Query(description="started before (ISO 8601)"), NO_NUL] = None,
        tier: Annotated[str | None, Query(pattern="^(spot_check|factual_verification|dual_approval)$"), NO_NUL] = None,
        status: Annotated[
            str | None, Query(description=f"a trace has one of: {','.join(ItemStatus.values())}"), NO_NUL
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> SessionList:
        statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
        try:
            found = sessions.list(
                user=user,
                since=naive_utc(since),
                until=naive_utc(until),
                tier=tier,
                status=statuses,
                limit=limit,
                offset=offset,
            )
        except ReviewError as error:
            raise _located("query", error) from None
        return SessionList(sessions=[SessionOut(**_fields(summary)) for summary in found])

    @app.get(
        "/v1/sessions/{conversation_id:session_id}",
        tags=["sessions"],
        summary="One session: every trace in time order, with its tiers, reasons, status and conversation.",
        responses={404: {"model": ErrorOut, "description": "no session has that id"}},
    )
    def get_session(
        conversation_id: Annotated[
            str, PathParam(max_length=SESSION_ID_MAX, description="the conversation id, or a trace id")
        ],
        _: Principal = reviewer,
    ) -> SessionPage:
        try:
            check_session_id(conversation_id, "conversation_id")
        except ReviewError as error:
            raise _located("path", error) from None
        return _page(sessions.get(conversation_id))

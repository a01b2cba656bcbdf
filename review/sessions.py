"""Sessions in the review store: the traces of one conversation, listed and opened together.

Each review item carries its trace's conversation id and user id (read from the spans' ``gen_ai.conversation.id`` and
``user.id`` at ingestion, see :func:`~spanguard.review.store.session_ids`) and a session key: the conversation id, or
the item's own trace id when it has none (a session of one trace). :class:`SessionStore` lists sessions (one grouped
query for the page of keys, one for their items) and opens one (one query). Behaviour: docs/review.md ("Sessions").
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import aliased

from spanguard.review.store import (
    _RISK_RANK,
    _TIER_RANK,
    ItemKind,
    ItemStatus,
    NotFound,
    ReviewError,
    ReviewItem,
    ReviewStore,
    _no_nul,
    is_session_id,
    started,
)

__all__ = ["SessionDetail", "SessionReview", "SessionStore", "SessionSummary", "SessionTrace", "check_session_id"]

_TIERS_BY_RANK = {rank: tier for tier, rank in _TIER_RANK.items()}
_RISKS_BY_RANK = {rank: risk for risk, rank in _RISK_RANK.items()}
# Everything a listing shows of a trace: the spans (the heavy column) are read only when a session is opened.
_LIGHT = (
    ReviewItem.id,
    ReviewItem.trace_id,
    ReviewItem.session_key,
    ReviewItem.conversation_id,
    ReviewItem.user_id,
    ReviewItem.tier,
    ReviewItem.risk_tier,
    ReviewItem.reasons,
    ReviewItem.status,
    ReviewItem.outcome,
    ReviewItem.models,
    ReviewItem.preview,
    ReviewItem.created_at,
    ReviewItem.updated_at,
    ReviewItem.session_item_id,
)
_REVIEW = (ReviewItem.id, ReviewItem.conversation_id, ReviewItem.tier, ReviewItem.status, ReviewItem.outcome)


def check_session_id(value: object, field: str = "conversation_id") -> str:
    """``value`` when it can be a session key; :class:`ReviewError` naming ``field`` and what one must be otherwise."""
    if isinstance(value, str) and "\x00" in value:
        raise ReviewError(f"{field} must not contain a NUL byte (\\x00)")
    if not is_session_id(value):
        raise ReviewError(f"{field}: a session id is 1 to 200 characters, none of them a control character")
    return value


@dataclass(frozen=True)
class SessionTrace:
    """One trace of a session, with its own review tier, risk tier, reasons and status."""

    item_id: int
    trace_id: str
    tier: str
    risk_tier: str
    reasons: list[str]
    status: str
    outcome: str | None
    models: list[str]
    preview: str
    created_at: dt.datetime
    updated_at: dt.datetime
    spans: list[dict[str, Any]] | None = None  # only when the session is opened
    started_unix_nano: int | None = None  # its first span's start (opened sessions)
    ended_unix_nano: int | None = None  # its last span's end (opened sessions)
    session_item_id: int | None = None  # the session item it is reviewed within, if any


@dataclass(frozen=True)
class SessionReview:
    """A session item of a session: the unit its traces are reviewed in (docs/review.md, "Review by session")."""

    item_id: int
    tier: str
    status: str
    outcome: str | None


@dataclass(frozen=True)
class SessionSummary:
    """A session: its key, ids, highest tiers, every reason and model, statuses and turns (one trace a turn)."""

    key: str
    conversation_id: str | None  # None: a single trace without a conversation id, keyed by its trace id
    user_id: str | None
    tier: str
    risk_tier: str
    reasons: list[str]
    models: list[str]
    statuses: dict[str, int]
    turns: int
    first_at: dt.datetime
    last_at: dt.datetime
    preview: str
    traces: list[SessionTrace]
    reviews: list[SessionReview]


@dataclass(frozen=True)
class SessionDetail(SessionSummary):
    """An opened session: its traces in time order with their spans, and its duration (first start to last end)."""

    started_unix_nano: int | None = None
    ended_unix_nano: int | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from the first span's start to the last span's end, or None when the spans carry no times."""
        if self.started_unix_nano is None or self.ended_unix_nano is None:
            return None
        return max(0, self.ended_unix_nano - self.started_unix_nano) / 1e9


def _trace(row: Any, spans: list[dict[str, Any]] | None = None) -> SessionTrace:
    ends = [t for s in spans or [] if isinstance(t := s.get("end_time_unix_nano"), int) and t > 0]
    return SessionTrace(
        item_id=row.id,
        trace_id=row.trace_id,
        tier=row.tier,
        risk_tier=row.risk_tier,
        reasons=list(row.reasons or []),
        status=row.status,
        outcome=row.outcome,
        models=list(row.models or []),
        preview=row.preview or "",
        created_at=row.created_at,
        updated_at=row.updated_at,
        spans=spans,
        started_unix_nano=started(spans),
        ended_unix_nano=max(ends) if ends else None,
        session_item_id=row.session_item_id,
    )


def _union(lists: Iterable[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(value for values in lists for value in values))


def _fields(key: str, rows: Sequence[Any], traces: list[SessionTrace], reviews: list[Any]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for trace in traces:
        statuses[trace.status] = statuses.get(trace.status, 0) + 1
    return {
        "key": key,
        "conversation_id": next((r.conversation_id for r in rows if r.conversation_id), None),
        "user_id": next((r.user_id for r in rows if r.user_id), None),
        "tier": _TIERS_BY_RANK[max(_TIER_RANK.get(t.tier, 0) for t in traces)],
        "risk_tier": _RISKS_BY_RANK[max(_RISK_RANK.get(t.risk_tier, 0) for t in traces)],
        "reasons": _union(t.reasons for t in traces),
        "models": _union(t.models for t in traces),
        "statuses": statuses,
        "turns": len(traces),
        "first_at": min(t.created_at for t in traces),
        "last_at": max(t.updated_at for t in traces),
        "preview": next((t.preview for t in traces if t.preview), ""),
        "traces": traces,
        "reviews": [SessionReview(r.id, r.tier, r.status, r.outcome) for r in reviews],
    }


def _reviews(session: Any, keys: Sequence[str]) -> dict[str, list[Any]]:
    """The session items of each key, oldest first (one query)."""
    rows = session.execute(
        select(*_REVIEW)
        .where(ReviewItem.kind == ItemKind.SESSION, ReviewItem.conversation_id.in_(list(keys)))
        .order_by(ReviewItem.id)
    ).all()
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row.conversation_id, []).append(row)
    return found


class SessionStore:
    """Sessions over a :class:`~spanguard.review.store.ReviewStore`'s items (same engine, same schema)."""

    def __init__(self, store: ReviewStore) -> None:
        self.store = store

    def list(
        self,
        *,
        user: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        tier: str | None = None,
        status: Sequence[str] | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionSummary]:
        """Sessions by highest risk, then latest activity (newest first), filtered (docs/review.md, "Sessions").

        ``user``: a trace of the session has that user id; ``since``/``until`` (naive UTC): the session was active in
        the window (its last change at or after ``since``, its first trace before ``until``); ``tier``: the session's
        highest review tier; ``status``: a trace or a session item of the session has one of these statuses.
        """
        statuses = [status] if isinstance(status, str) else list(status or [])
        _no_nul({"user": user, "tier": tier, "status": ",".join(statuses)})
        for value in statuses:
            if value not in ItemStatus.values():
                raise ReviewError(f"status: unknown status {value!r}; known: {', '.join(ItemStatus.values())}")
        if tier is not None and tier not in _TIER_RANK:
            raise ReviewError(f"tier: unknown tier {tier!r}; known: {', '.join(_TIER_RANK)}")
        if user is not None:
            check_session_id(user, "user")
        if statuses:
            self.store.expire_leases()  # "expired" is a status the filter must see as it is now
        key = ReviewItem.session_key
        risk = func.max(ReviewItem.risk_rank)
        last = func.max(ReviewItem.updated_at)
        # Session items hold no session key: only traces are grouped.
        query = select(key).where(key.is_not(None)).group_by(key).order_by(risk.desc(), last.desc(), key)
        # The user filter picks sessions by its index first; the rest reads the covering index of the store's model.
        if user is not None:
            query = query.where(key.in_(select(ReviewItem.session_key).where(ReviewItem.user_id == user)))
        if statuses:
            # A trace reviewed within a session item has that item's status, not its own (which waits on it). Looked
            # up per session by its conversation id: session items are small rows, traces' rows are not.
            unit = aliased(ReviewItem)
            reviewed = (
                select(unit.id)
                .where(unit.conversation_id == key, unit.kind == ItemKind.SESSION, unit.status.in_(statuses))
                .exists()
            )
            alone = ReviewItem.status.in_(statuses) & ReviewItem.session_item_id.is_(None)
            query = query.having(or_(func.max(case((alone, 1), else_=0)) == 1, reviewed))
        if tier is not None:
            rank = case(_TIER_RANK, value=ReviewItem.tier, else_=0)
            query = query.having(func.max(rank) == _TIER_RANK[tier])
        if since is not None:
            query = query.having(last >= since)
        if until is not None:
            query = query.having(func.min(ReviewItem.created_at) < until)
        with self.store._sessions() as session:
            # The query's WHERE keeps only rows with a session key (None is only the column's type).
            keys = [k for k in session.scalars(query.limit(limit).offset(offset)) if k is not None]
            if not keys:
                return []
            rows = session.execute(
                select(*_LIGHT).where(key.in_(keys)).order_by(ReviewItem.created_at, ReviewItem.id)
            ).all()
            reviews = _reviews(session, keys)
        by_key: dict[str, list[Any]] = {k: [] for k in keys}
        for row in rows:
            by_key[row.session_key].append(row)
        return [
            SessionSummary(**_fields(k, by_key[k], [_trace(r) for r in by_key[k]], reviews.get(k, [])))
            for k in keys
            if by_key[k]
        ]

    def get(self, key: str) -> SessionDetail:
        """One session with every trace (and its spans) in time order; :class:`NotFound` when no item has that key."""
        check_session_id(key)
        with self.store._sessions() as session:
            rows = session.execute(select(*_LIGHT, ReviewItem.spans).where(ReviewItem.session_key == key)).all()
            reviews = _reviews(session, [key]).get(key, [])
        if not rows:
            raise NotFound(f"no session {key}")
        traces = [_trace(row, list(row.spans or [])) for row in rows]
        # Time order is the spans' own (the traces of a turn may be ingested late, or merged out of order).
        traces.sort(key=lambda t: (t.started_unix_nano or 0, t.created_at, t.item_id))
        order = {t.item_id: i for i, t in enumerate(traces)}
        rows = sorted(rows, key=lambda row: order[row.id])
        starts = [t.started_unix_nano for t in traces if t.started_unix_nano is not None]
        ends = [t.ended_unix_nano for t in traces if t.ended_unix_nano is not None]
        return SessionDetail(
            **_fields(key, rows, traces, reviews),
            started_unix_nano=min(starts) if starts else None,
            ended_unix_nano=max(ends) if ends else None,
        )

    def review_context(self, item: ReviewItem) -> tuple[builtins.list[SessionTrace], builtins.list[ReviewItem]]:
        """A session item's session: its traces (with spans) in time order up to its latest member, and the
        session's earlier session items, oldest first (docs/review.md, "Review by session")."""
        if item.kind != ItemKind.SESSION or item.conversation_id is None:
            return [], []
        try:
            traces = self.get(item.conversation_id).traces
        except NotFound:
            traces = []
        members = [i for i, t in enumerate(traces) if t.session_item_id == item.id]
        traces = traces[: members[-1] + 1] if members else []
        with self.store._sessions() as session:
            earlier = list(
                session.scalars(
                    select(ReviewItem)
                    .where(
                        ReviewItem.kind == ItemKind.SESSION,
                        ReviewItem.conversation_id == item.conversation_id,
                        ReviewItem.id < item.id,
                    )
                    .order_by(ReviewItem.id)
                )
            )
        return traces, earlier

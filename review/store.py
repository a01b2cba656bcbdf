"""The review store: review items, leases, decisions and the audit log, in SQLite (default) or PostgreSQL.

A review item is one trace, ingested idempotently by trace id (later spans of the trace merge in). Reviewers claim an
item for a lease; a claim is one conditional ``UPDATE`` (pending, or claimed with an expired lease), which both
SQLite and PostgreSQL apply atomically, so two reviewers never hold the same item. ``claim_next`` picks the riskiest,
oldest claimable item of a tier: with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent reviewers skip each
other's rows instead of queueing on them. Every change writes an audit entry (who, when, what, before, after) in the
same transaction.

Work in progress (issue 5): the HTTP API, tokens, Alembic migrations and the web page build on this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

Status = Literal["pending", "claimed", "done", "expired"]
ReviewTier = Literal["spot_check", "factual_verification", "dual_approval"]
Outcome = Literal["approve", "reject", "correct"]
_RISK_RANK = {"green": 0, "yellow": 1, "red": 2}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """The review store's tables."""


class ReviewItem(Base):
    """One trace waiting for, or having had, human review."""

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    tier: Mapped[str] = mapped_column(String(32), index=True)
    risk_tier: Mapped[str] = mapped_column(String(16))
    risk_rank: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    spans: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    approvals: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AuditEntry(Base):
    """One action on a review item: who, when, what, and the item's state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ReviewError(Exception):
    """A request the store refuses: unknown item, not the lease holder, a decision that does not fit the item."""


@dataclass(frozen=True)
class Decision:
    """A reviewer's verdict on an item (the reviewer comes from the caller's token, never from the request body)."""

    outcome: Outcome
    reason: str | None = None
    correction: str | None = None


def _state(item: ReviewItem) -> dict[str, Any]:
    return {
        "status": item.status,
        "lease_owner": item.lease_owner,
        "approvals": list(item.approvals or []),
        "outcome": item.outcome,
        "spans": len(item.spans or []),
    }


class ReviewStore:
    """Review items in a SQL database (``sqlite:///...`` or ``postgresql+psycopg://...``)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, future=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        Base.metadata.create_all(self.engine)

    def shutdown(self) -> None:
        """Close the connection pool (idempotent)."""
        self.engine.dispose()

    def _audit(
        self, session: Session, item: ReviewItem, actor: str, action: str, before: dict[str, Any] | None
    ) -> None:
        session.add(AuditEntry(item_id=item.id, actor=actor, action=action, before=before, after=_state(item)))

    def ingest(
        self,
        trace_id: str,
        *,
        tier: ReviewTier,
        risk_tier: str,
        reasons: Sequence[str],
        spans: Sequence[dict[str, Any]],
        actor: str,
    ) -> int:
        """Add a trace as an item, or merge spans not seen yet into its item; returns the item's id."""
        with self._sessions.begin() as session:
            item = session.scalars(select(ReviewItem).where(ReviewItem.trace_id == trace_id)).one_or_none()
            if item is None:
                item = ReviewItem(
                    trace_id=trace_id,
                    tier=tier,
                    risk_tier=risk_tier,
                    risk_rank=_RISK_RANK.get(risk_tier, 0),
                    reasons=list(dict.fromkeys(reasons)),
                    spans=list(spans),
                    status="pending",
                    approvals=[],
                )
                session.add(item)
                session.flush()
                self._audit(session, item, actor, "ingest", None)
                return item.id
            known = {span.get("span_id") for span in item.spans or []}
            new = [span for span in spans if span.get("span_id") not in known]
            if not new and set(reasons) <= set(item.reasons or []):
                return item.id
            before = _state(item)
            item.spans = [*(item.spans or []), *new]
            item.reasons = list(dict.fromkeys([*(item.reasons or []), *reasons]))
            item.updated_at = _now()
            self._audit(session, item, actor, "merge", before)
            return item.id

    def get(self, item_id: int) -> ReviewItem:
        """One item; :class:`ReviewError` when there is none."""
        with self._sessions() as session:
            item = session.get(ReviewItem, item_id)
            if item is None:
                raise ReviewError(f"no review item {item_id}")
            return item

    def list(
        self, *, status: Status | None = None, tier: ReviewTier | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        """Items by risk (highest first), then age (oldest first)."""
        query = select(ReviewItem).order_by(ReviewItem.risk_rank.desc(), ReviewItem.created_at, ReviewItem.id)
        if status is not None:
            query = query.where(ReviewItem.status == status)
        if tier is not None:
            query = query.where(ReviewItem.tier == tier)
        with self._sessions() as session:
            return list(session.scalars(query.limit(limit)))

    def claim(self, item_id: int, reviewer: str, *, lease_s: float = 900.0) -> bool:
        """Lease an item to ``reviewer``: True when it was pending (or its lease had expired) and is now theirs."""
        now = _now()
        with self._sessions.begin() as session:
            claimed = session.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id)
                .where(
                    (ReviewItem.status == "pending")
                    | ((ReviewItem.status == "claimed") & (ReviewItem.lease_expires_at < now))
                )
                .values(
                    status="claimed",
                    lease_owner=reviewer,
                    lease_expires_at=now + dt.timedelta(seconds=lease_s),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                return False
            item = session.get(ReviewItem, item_id)
            assert item is not None
            self._audit(session, item, reviewer, "claim", None)
            return True

    def claim_next(self, reviewer: str, *, tier: ReviewTier | None = None, lease_s: float = 900.0) -> int | None:
        """Claim the riskiest, oldest claimable item (of ``tier``); its id, or None when there is none."""
        for _ in range(20):  # another reviewer may take a candidate between reading and claiming
            now = _now()
            query = (
                select(ReviewItem.id)
                .where(
                    (ReviewItem.status == "pending")
                    | ((ReviewItem.status == "claimed") & (ReviewItem.lease_expires_at < now))
                )
                .order_by(ReviewItem.risk_rank.desc(), ReviewItem.created_at, ReviewItem.id)
                .limit(1)
            )
            if tier is not None:
                query = query.where(ReviewItem.tier == tier)
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            with self._sessions() as session:
                candidate = session.scalars(query).first()
                if candidate is None:
                    return None
                if self.dialect != "postgresql":
                    session.close()
                    if self.claim(candidate, reviewer, lease_s=lease_s):
                        return candidate
                    continue
                # PostgreSQL: the row is locked by this transaction; claim it inside it.
                item = session.get(ReviewItem, candidate)
                assert item is not None
                item.status, item.lease_owner = "claimed", reviewer
                item.lease_expires_at = now + dt.timedelta(seconds=lease_s)
                item.updated_at = now
                self._audit(session, item, reviewer, "claim", None)
                session.commit()
                return candidate
        return None

    def release(self, item_id: int, reviewer: str) -> None:
        """Give a claimed item back to the queue (only its lease holder can)."""
        with self._sessions.begin() as session:
            item = self._held(session, item_id, reviewer)
            before = _state(item)
            item.status, item.lease_owner, item.lease_expires_at = "pending", None, None
            item.updated_at = _now()
            self._audit(session, item, reviewer, "release", before)

    def decide(self, item_id: int, reviewer: str, decision: Decision) -> ReviewItem:
        """Record a verdict by the item's lease holder; ``dual_approval`` items need two different approvers."""
        if decision.outcome == "reject" and not decision.reason:
            raise ReviewError("a rejection needs a reason")
        if decision.outcome == "correct" and not decision.correction:
            raise ReviewError("a correction needs the corrected output")
        with self._sessions.begin() as session:
            item = self._held(session, item_id, reviewer)
            before = _state(item)
            item.updated_at = _now()
            item.lease_owner, item.lease_expires_at = None, None
            if decision.outcome == "approve" and item.tier == "dual_approval":
                approvals = list(item.approvals or [])
                if reviewer in approvals:
                    raise ReviewError("this reviewer already approved the item; a second reviewer must")
                approvals.append(reviewer)
                item.approvals = approvals
                item.status = "done" if len(approvals) >= 2 else "pending"
                item.outcome = "approve" if len(approvals) >= 2 else None
            else:
                item.status, item.outcome = "done", decision.outcome
            self._audit(session, item, reviewer, f"decide:{decision.outcome}", before)
            return item

    def audit(self, item_id: int) -> list[AuditEntry]:
        """The item's audit trail, oldest first."""
        with self._sessions() as session:
            query = select(AuditEntry).where(AuditEntry.item_id == item_id).order_by(AuditEntry.id)
            return list(session.scalars(query))

    @staticmethod
    def _held(session: Session, item_id: int, reviewer: str) -> ReviewItem:
        item = session.get(ReviewItem, item_id, with_for_update=True)
        if item is None:
            raise ReviewError(f"no review item {item_id}")
        if item.status != "claimed" or item.lease_owner != reviewer:
            raise ReviewError(f"review item {item_id} is not claimed by {reviewer}")
        if item.lease_expires_at is not None and item.lease_expires_at < _now():
            raise ReviewError(f"the lease on review item {item_id} has expired")
        return item


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets reviewers read while the exporter writes; a busy timeout instead of "database is locked" errors.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()

"""The review store: review items, leases, decisions, tokens and the audit log, in SQLite (default) or PostgreSQL.

Claims are single conditional ``UPDATE``s (``FOR UPDATE SKIP LOCKED`` for ``claim_next`` on PostgreSQL), and every
change writes its audit entry in the same transaction; the schema is managed by Alembic (:meth:`ReviewStore.migrate`).
The behaviour (items, session items, leases, decisions, replicas) is docs/review.md.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, TypeGuard, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from spanguard.review.config import ReviewPolicy
from spanguard.review.conversation import assemble
from spanguard.semconv import GEN_AI_CONVERSATION_ID, USER_ID, ReviewOutcome, ReviewTier, RiskTier, StrEnum

__all__ = [
    "ITEM_ID_MAX",
    "MIGRATIONS",
    "ROLES",
    "SESSION_ID_MAX",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Conflict",
    "Decision",
    "DecisionRecord",
    "IngestItem",
    "ItemKind",
    "ItemStatus",
    "NotFound",
    "Principal",
    "ReviewError",
    "ReviewItem",
    "ReviewStore",
    "Role",
    "TokenInfo",
    "hash_token",
    "in_time_order",
    "is_session_id",
    "rowcount",
    "session_ids",
    "session_trace_id",
    "started",
]


class ItemStatus(StrEnum):
    """Where a review item is: waiting, held by a reviewer's lease, decided, or waiting again after a lease ran out."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    EXPIRED = "expired"


class ItemKind(StrEnum):
    """What a review item reviews: one trace, or a session's traces as one (docs/review.md, "Review by session")."""

    TRACE = "trace"
    SESSION = "session"


Role = Literal["ingest", "reviewer", "admin"]
ROLES: tuple[Role, ...] = ("ingest", "reviewer", "admin")
_RISK_RANK: Final[dict[str, int]] = {tier.value: rank for rank, tier in enumerate(RiskTier)}
_TIER_RANK: Final[dict[str, int]] = {tier.value: rank for rank, tier in enumerate(ReviewTier)}
_CLAIMABLE: Final = (ItemStatus.PENDING, ItemStatus.EXPIRED)
_PREVIEW = 280
_TOKEN_PREFIX = "sgr_"
ITEM_ID_MAX = 2**63 - 1  # ids are positive 64-bit signed integers
# The largest id each database's id column holds (INTEGER: 64-bit on SQLite, 32-bit on PostgreSQL).
_COLUMN_ID_MAX = {"sqlite": ITEM_ID_MAX, "postgresql": 2**31 - 1}
MIGRATIONS = Path(__file__).with_name("migrations")
# A redaction marker standing for the whole value (processors/redaction.py): the value itself is gone.
_REMOVED = re.compile(r"<[A-Z][A-Z0-9_]*>")
SESSION_ID_MAX = 200
"""The longest conversation id (and user id) an item keeps in its indexed columns."""


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (``Session.execute`` is typed as returning any ``Result``)."""
    return cast("CursorResult[Any]", result).rowcount


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _index(values: Sequence[str]) -> str:
    # "|a|b|": a portable LIKE '%|a|%' filter on both databases, without JSON operators that differ between them.
    return "|" + "|".join(v.replace("|", "/") for v in values) + "|" if values else ""


class Base(DeclarativeBase):
    """The review store's tables."""


class ReviewItem(Base):
    """One trace waiting for, or having had, human review."""

    __tablename__ = "review_items"
    __table_args__ = (
        # Covers the sessions listing (review/sessions.py): grouping by session reads this index, not the rows.
        Index(
            "ix_review_items_session_activity",
            "session_key",
            "risk_rank",
            "updated_at",
            "created_at",
            "tier",
            "status",
            "session_item_id",
        ),
        # A conversation's session items (grouping at ingestion, the sessions listing's status filter).
        Index("ix_review_items_session_review", "conversation_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    tier: Mapped[str] = mapped_column(String(32), index=True)
    risk_tier: Mapped[str] = mapped_column(String(16))
    risk_rank: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    spans: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ItemStatus.PENDING.value)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    approvals: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasons_index: Mapped[str] = mapped_column(String(4000), default="")
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    models_index: Mapped[str] = mapped_column(String(2000), default="")
    preview: Mapped[str] = mapped_column(String(400), default="")
    golden: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The trace's session (docs/review.md, "Sessions"): its conversation id, or its own trace id when it has none.
    conversation_id: Mapped[str | None] = mapped_column(String(SESSION_ID_MAX), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(String(SESSION_ID_MAX), nullable=True, index=True)
    session_key: Mapped[str | None] = mapped_column(String(SESSION_ID_MAX), nullable=True, index=True)
    # Review by session (docs/review.md, "Review by session"): a session item has kind "session", no spans and no
    # session_key (its conversation id says which session it reviews); a trace reviewed within one points to it.
    kind: Mapped[str] = mapped_column(String(16), default="trace", server_default="trace")
    session_item_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    follows_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DecisionRecord(Base):
    """One reviewer's decision on an item, with ratings, checklist answers and comment."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    correction: Mapped[str | None] = mapped_column(Text, nullable=True)
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checklist: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    turn: Mapped[str | None] = mapped_column(String(32), nullable=True)  # a session item's corrected trace


class ApiToken(Base):
    """A bearer token: its name (the reviewer's identity), role, and SHA-256 hash (never the token itself)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class TokenInfo:
    """What ``token list`` shows of a token: never the token, nor its hash."""

    name: str
    role: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked: bool


_LAST_USED_EVERY: Final = dt.timedelta(minutes=1)  # a write per request would be a write per page poll


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
    """A request the store refuses: a decision that does not fit the item, or an item in the wrong state."""


class NotFound(ReviewError):
    """No review item has that id."""


class Conflict(ReviewError):
    """The item is not in a state that allows the action (held by someone else, already decided, lease expired)."""


@dataclass(frozen=True)
class Decision:
    """A reviewer's verdict on an item (the reviewer comes from the caller's token, never from the request body)."""

    outcome: ReviewOutcome
    reason: str | None = None
    reason_text: str | None = None
    correction: str | None = None
    ratings: Mapping[str, Any] = field(default_factory=dict)
    checklist: Mapping[str, bool] = field(default_factory=dict)
    comment: str | None = None
    turn: str | None = None
    """On a session item: the trace id of the turn a correction is for (default: its latest trace)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role."""

    name: str
    role: Role


@dataclass(frozen=True)
class IngestItem:
    """One trace to ingest: its review tier, risk tier and reasons, and spans (ReviewSpan dicts)."""

    trace_id: str
    tier: ReviewTier
    risk_tier: str
    reasons: Sequence[str]
    spans: Sequence[dict[str, Any]]


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (tokens are 256 random bits, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _state(item: ReviewItem) -> dict[str, Any]:
    return {
        "status": item.status,
        "lease_owner": item.lease_owner,
        "approvals": list(item.approvals or []),
        "outcome": item.outcome,
        "tier": item.tier,
        "spans": len(item.spans or []),
        **({"session_item_id": item.session_item_id} if item.session_item_id is not None else {}),
    }


def started(spans: Sequence[Mapping[str, Any]] | None) -> int | None:
    """The earliest start (Unix ns) among a trace's spans, or None when none carries one."""
    starts = [s.get("start_time_unix_nano") for s in spans or [] if isinstance(s, Mapping)]
    valid = [t for t in starts if isinstance(t, int) and not isinstance(t, bool) and t > 0]
    return min(valid) if valid else None


def in_time_order(items: Iterable[ReviewItem]) -> list[ReviewItem]:
    """Trace items by their first span's start, then arrival: the order of the turns, whatever order they came in
    (a sampler that keeps a session's earlier traces once it turns red sends them after the red one)."""
    return sorted(items, key=lambda item: (started(item.spans) or 0, item.created_at, item.id))


def session_trace_id(conversation_id: str, round_: int) -> str:
    """The key a session item holds in ``trace_id``: 32 hex digits from its conversation and round (no trace has it)."""
    digest = hashlib.sha256(f"spanguard.session\x00{conversation_id}\x00{round_}".encode()).hexdigest()
    return digest[:32]


def _no_nul(filters: Mapping[str, str | None]) -> None:
    """:class:`ReviewError` naming a filter or field with a NUL byte: SQLite's LIKE stops reading a pattern at one (the
    filter matched every item), PostgreSQL refuses one in text."""
    for name, value in filters.items():
        if value and "\x00" in value:
            raise ReviewError(f"{name} must not contain a NUL byte (\\x00)")


def _without_nul(value: Any) -> Any:
    """``value`` with every NUL (``\\x00``) in its strings replaced by U+FFFD, dict keys included, at any depth.

    Span content comes from telemetry and must not be lost, but PostgreSQL text cannot hold a NUL: ingested items pass
    through this, so both databases store (and answer with) the same thing. ``value`` itself is not changed.
    """
    nested: list[Any] = []  # copies whose members are still to be cleaned: a loop, since values nest without bound

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            return item.replace("\x00", "\ufffd")
        if isinstance(item, (Mapping, list, tuple)):
            item = dict(item) if isinstance(item, Mapping) else list(item)
            nested.append(item)
        return item

    result = clean(value)
    while nested:
        container = nested.pop()
        if isinstance(container, dict):
            pairs = [(clean(key), clean(item)) for key, item in container.items()]
            container.clear()
            container.update(pairs)
        else:
            container[:] = [clean(item) for item in container]
    return result


def _summary(spans: Sequence[dict[str, Any]]) -> tuple[list[str], str]:
    """The models an item's spans used, and a preview (its first user turn, cut)."""
    conversation = assemble(spans)
    preview = next((t["content"] for t in conversation["turns"] if t["role"] == "user" and t["content"]), "")
    preview = " ".join(preview.split())
    if len(preview) > _PREVIEW:
        preview = preview[: _PREVIEW - 1] + "…"
    # Read from the JSON text of message attributes, where an escaped \u0000 decodes to a NUL again.
    return _without_nul(list(conversation["models"])[:20]), _without_nul(preview)


def is_session_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can be a conversation or user id: 1 to 200 characters, none of them a control character."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= SESSION_ID_MAX
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)
    )


def session_ids(spans: Sequence[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The conversation id and user id of a trace: the first valid value of each among its spans' attributes.

    A value that is not an id (:func:`is_session_id`: too long, control characters) counts as absent; the span still
    holds it, only the item is not grouped by it. So does a value redaction replaced whole (``<USER_ID>``): every
    user's would be the same; a pseudonym (the ``hash`` operator's ``<USER_ID:3f2a9c1b>``) is an id.
    """
    found: dict[str, str | None] = {GEN_AI_CONVERSATION_ID: None, USER_ID: None}
    for span in spans:
        attributes = span.get("attributes") or {}
        for name, value in found.items():
            candidate = attributes.get(name)
            if value is None and is_session_id(candidate) and not _REMOVED.fullmatch(candidate):
                found[name] = candidate
        if None not in found.values():
            break
    return found[GEN_AI_CONVERSATION_ID], found[USER_ID]


class ReviewStore:
    """Review items in a SQL database (``sqlite:///...`` or ``postgresql+psycopg://...``)."""

    def __init__(self, url: str, policy: ReviewPolicy | None = None) -> None:
        self.url = url
        self.policy = policy or ReviewPolicy()
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite takes one writer at a time and makes the others poll with sleeps of up to 100 ms (its busy handler),
        # which gave reviewers second-long tails under 8 concurrent claims; a lock in the process queues writers
        # instead. PostgreSQL locks rows, so writers there need no such lock.
        self._write_lock: threading.Lock | None = threading.Lock() if self.dialect == "sqlite" else None

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction (committed on success), one at a time on SQLite."""
        with self._write_lock or nullcontext(), self._sessions.begin() as session:
            yield session

    # -- schema ----------------------------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with the Alembic migrations (replicas starting together take turns)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Several replicas may start at once: one migrates, the others wait and then find nothing to do.
                connection.execute(text("SELECT pg_advisory_xact_lock(7410285)"))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def revision(self) -> str | None:
        """The schema's current Alembic revision (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def create_schema(self) -> None:
        """Bring the schema up to date (an alias of :meth:`migrate`)."""
        self.migrate()

    def shutdown(self) -> None:
        """Close the connection pool (idempotent)."""
        self.engine.dispose()

    # -- tokens ----------------------------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role) -> str:
        """A new token for ``name`` with ``role``; only its hash is stored, so this is the one time it is seen."""
        if role not in ROLES:
            raise ReviewError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        if not name.strip() or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ReviewError("a token needs a name of 1 to 200 printable characters")
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._writing() as session:
            session.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
        return token

    def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token stands for, or None when it is unknown or revoked."""
        if not token.startswith(_TOKEN_PREFIX) or len(token) > 200:
            return None
        with self._sessions() as session:
            row = session.scalars(
                select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
            ).first()
            if row is None:
                return None
            principal = Principal(row.name, row.role)  # type: ignore[arg-type]
            stale = row.last_used_at is None or _now() - row.last_used_at >= _LAST_USED_EVERY
            token_id = row.id
        if stale:
            with self._writing() as session:
                session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=_now()))
        return principal

    def tokens(self) -> list[TokenInfo]:
        """Every token, oldest first: name, role, created, last used (to the minute), revoked."""
        with self._sessions() as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
            return [TokenInfo(r.name, r.role, r.created_at, r.last_used_at, r.revoked) for r in rows]

    def revoke_tokens(self, name: str) -> int:
        """Revoke every token of ``name``; how many were revoked."""
        with self._writing() as session:
            return rowcount(
                session.execute(
                    update(ApiToken).where(ApiToken.name == name, ApiToken.revoked.is_(False)).values(revoked=True)
                )
            )

    # -- ingestion -------------------------------------------------------------------------------------------------

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
        return self.ingest_many([IngestItem(trace_id, tier, risk_tier, reasons, spans)], actor=actor)[0][0]

    def ingest_many(self, items: Sequence[IngestItem], *, actor: str) -> list[tuple[int, bool]]:
        """Ingest several traces in one transaction; ``(item id, created)`` for each, in order.

        NUL bytes in the spans and reasons are stored as U+FFFD (:func:`_without_nul`).
        """
        items = [replace(item, reasons=_without_nul(item.reasons), spans=_without_nul(item.spans)) for item in items]
        for attempt in range(3):
            try:
                with self._writing() as session:
                    return [self._ingest_one(session, item, actor) for item in items]
            except IntegrityError:
                # Another replica inserted the same trace between our read and our insert: read it again and merge.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _ingest_one(self, session: Session, new: IngestItem, actor: str) -> tuple[int, bool]:
        item = session.scalars(
            select(ReviewItem).where(ReviewItem.trace_id == new.trace_id).with_for_update()
        ).one_or_none()
        reasons = list(dict.fromkeys(new.reasons))
        if item is not None and item.kind != ItemKind.TRACE:
            raise ReviewError(f"trace id {new.trace_id} is a session item's key, not a trace")
        if item is None:
            spans = list({span.get("span_id"): span for span in reversed(new.spans)}.values())[::-1]
            models, preview = _summary(spans)
            conversation_id, user_id = session_ids(spans)
            item = ReviewItem(
                trace_id=new.trace_id,
                tier=new.tier,
                risk_tier=new.risk_tier,
                risk_rank=_RISK_RANK.get(new.risk_tier, 0),
                reasons=reasons,
                reasons_index=_index(reasons),
                spans=spans,
                models=models,
                models_index=_index(models),
                preview=preview,
                status=ItemStatus.PENDING,
                approvals=[],
                conversation_id=conversation_id,
                user_id=user_id,
                session_key=conversation_id or new.trace_id,
            )
            session.add(item)
            session.flush()
            self._audit(session, item, actor, "ingest", None)
            self._group(session, item, actor)
            return item.id, True
        known = {span.get("span_id") for span in item.spans or []}
        fresh = [span for span in new.spans if span.get("span_id") not in known]
        fresh = list({span.get("span_id"): span for span in reversed(fresh)}.values())[::-1]
        upgrade = item.status != ItemStatus.DONE and _TIER_RANK.get(new.tier, 0) > _TIER_RANK.get(item.tier, 0)
        riskier = _RISK_RANK.get(new.risk_tier, 0) > item.risk_rank
        if not fresh and set(reasons) <= set(item.reasons or []) and not upgrade and not riskier:
            return item.id, False
        before = _state(item)
        item.spans = [*(item.spans or []), *fresh]
        item.reasons = list(dict.fromkeys([*(item.reasons or []), *reasons]))
        item.reasons_index = _index(item.reasons)
        if upgrade:
            item.tier = new.tier
        if riskier:
            item.risk_tier, item.risk_rank = new.risk_tier, _RISK_RANK[new.risk_tier]
        item.models, item.preview = _summary(item.spans)
        item.models_index = _index(item.models)
        # Later spans may bring the ids (the root span often ends, and arrives, last): the trace then joins its session.
        conversation_id, user_id = session_ids(fresh)
        if item.conversation_id is None and conversation_id is not None:
            item.conversation_id = item.session_key = conversation_id
        item.user_id = item.user_id or user_id
        item.updated_at = _now()
        self._audit(session, item, actor, "merge", before)
        self._group(session, item, actor)
        return item.id, False

    # -- review by session -----------------------------------------------------------------------------------------

    def _group(self, session: Session, item: ReviewItem, actor: str) -> None:
        """Put a trace item into its session's open session item when its session is reviewed as one (see module)."""
        if item.kind != ItemKind.TRACE or item.conversation_id is None:
            return
        if item.session_item_id is not None:
            parent = session.get(ReviewItem, item.session_item_id, with_for_update=True)
            if parent is not None and parent.status != ItemStatus.DONE:
                before = _state(parent)
                if self._fold(parent, [item]):
                    self._audit(session, parent, actor, "merge", before)
            return
        if item.status not in _CLAIMABLE or item.approvals:
            return  # claimed or decided on its own: it stays a trace item
        key = item.conversation_id
        reviews = list(
            session.scalars(
                select(ReviewItem)
                .where(ReviewItem.kind == ItemKind.SESSION, ReviewItem.conversation_id == key)
                .order_by(ReviewItem.id.desc())
                .with_for_update()
            )
        )
        if not reviews and self.policy.unit(item.tier) != "session":
            return
        # Open: nobody holds it and nobody has approved it yet, so whoever decides it sees this trace too.
        parent = next((r for r in reviews if r.status in _CLAIMABLE and not r.approvals), None)
        members = [item]
        if parent is None:
            parent = ReviewItem(
                kind=ItemKind.SESSION,
                trace_id=session_trace_id(key, len(reviews) + 1),
                tier=item.tier,
                risk_tier=item.risk_tier,
                risk_rank=item.risk_rank,
                reasons=[],
                reasons_index="",
                spans=[],
                models=[],
                models_index="",
                preview="",
                status=ItemStatus.PENDING,
                approvals=[],
                conversation_id=key,
                user_id=item.user_id,
                session_key=None,
                follows_id=reviews[0].id if reviews else None,
            )
            session.add(parent)
            session.flush()
            self._audit(session, parent, actor, "ingest", None)
            if not reviews:
                # The session's first review takes in its earlier traces still waiting on their own.
                members = list(
                    session.scalars(
                        select(ReviewItem)
                        .where(
                            ReviewItem.kind == ItemKind.TRACE,
                            ReviewItem.session_key == key,
                            ReviewItem.session_item_id.is_(None),
                            ReviewItem.status.in_(_CLAIMABLE),
                        )
                        .order_by(ReviewItem.created_at, ReviewItem.id)
                        # A trace another transaction holds is being ingested now: waiting for it while it waits
                        # for this new session item's key would deadlock; it joins the item itself when it retries.
                        .with_for_update(skip_locked=True)
                    )
                )
                members = [m for m in members if not m.approvals] or [item]
                if item not in members:
                    members.append(item)
        before = _state(parent)
        members = in_time_order(members)
        self._fold(parent, members)
        for member in members:
            member_before = _state(member)
            member.session_item_id = parent.id
            self._audit(session, member, actor, "group", member_before)
        self._audit(session, parent, actor, "merge", before)

    @staticmethod
    def _fold(parent: ReviewItem, members: Sequence[ReviewItem]) -> bool:
        """Raise the session item's tiers and add its members' reasons and models; whether anything changed."""
        tier_rank = max([_TIER_RANK.get(parent.tier, 0), *(_TIER_RANK.get(m.tier, 0) for m in members)])
        tier = next(t for t, r in _TIER_RANK.items() if r == tier_rank)
        risky = max([parent, *members], key=lambda m: m.risk_rank)
        reasons = list(dict.fromkeys([*(parent.reasons or []), *(r for m in members for r in m.reasons or [])]))
        models = list(dict.fromkeys([*(parent.models or []), *(x for m in members for x in m.models or [])]))[:20]
        preview = parent.preview or next((m.preview for m in members if m.preview), "")
        changed = (tier, risky.risk_rank, reasons, models, preview) != (
            parent.tier,
            parent.risk_rank,
            parent.reasons,
            parent.models,
            parent.preview,
        )
        parent.tier, parent.risk_tier, parent.risk_rank = tier, risky.risk_tier, risky.risk_rank
        parent.reasons, parent.reasons_index = reasons, _index(reasons)
        parent.models, parent.models_index = models, _index(models)
        parent.preview = preview
        parent.updated_at = _now()
        return changed

    def members(self, item_id: int) -> list[ReviewItem]:
        """The traces a session item reviews, in time order (their first span's start; none for a trace item)."""
        if not self._stored(item_id):
            return []
        with self._sessions() as session:
            query = (
                select(ReviewItem)
                .where(ReviewItem.session_item_id == item_id)
                .order_by(ReviewItem.created_at, ReviewItem.id)
            )
            return in_time_order(session.scalars(query))

    def member_counts(self, item_ids: Sequence[int]) -> dict[int, int]:
        """How many traces each of these session items reviews (an item with none is left out)."""
        ids = [i for i in item_ids if self._stored(i)]
        if not ids:
            return {}
        with self._sessions() as session:
            query = (
                select(ReviewItem.session_item_id, func.count())
                .where(ReviewItem.session_item_id.in_(ids))
                .group_by(ReviewItem.session_item_id)
            )
            return {item_id: count for item_id, count in session.execute(query) if item_id is not None}

    # -- reading ---------------------------------------------------------------------------------------------------

    def _stored(self, item_id: int) -> bool:
        """Whether ``item_id`` fits the id column: :class:`ReviewError` when it is no 64-bit id at all, False when it
        is one the column cannot hold (so no item has it), True when the database can be asked."""
        if isinstance(item_id, bool) or not isinstance(item_id, int) or not 1 <= item_id <= ITEM_ID_MAX:
            raise ReviewError(f"not a review item id: {item_id!r} (ids are integers from 1 to {ITEM_ID_MAX})")
        # Asking would fail, not miss: SQLite cannot bind an int beyond 64 bits, PostgreSQL refuses one beyond its
        # column's range (its id column is 32-bit) with an error the API would answer as the store being down.
        return item_id <= _COLUMN_ID_MAX.get(self.dialect, ITEM_ID_MAX)

    def _existing(self, item_id: int) -> None:
        """:class:`NotFound` before asking, for an id no row can have (see :meth:`_stored`)."""
        if not self._stored(item_id):
            raise NotFound(f"no review item {item_id}")

    def get(self, item_id: int) -> ReviewItem:
        """One item; :class:`NotFound` when there is none."""
        self._existing(item_id)
        self.expire_leases()
        with self._sessions() as session:
            item = session.get(ReviewItem, item_id)
            if item is None:
                raise NotFound(f"no review item {item_id}")
            return item

    def decisions(self, item_id: int) -> list[DecisionRecord]:
        """The decisions recorded on an item, oldest first."""
        if not self._stored(item_id):
            return []
        with self._sessions() as session:
            query = select(DecisionRecord).where(DecisionRecord.item_id == item_id).order_by(DecisionRecord.id)
            return list(session.scalars(query))

    def list(
        self,
        *,
        status: Sequence[str] | str | None = None,
        tier: str | None = None,
        reason: str | None = None,
        model: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        kind: ItemKind | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ReviewItem]:
        """Items by risk (highest first), then age (oldest first), filtered by status, tier, reason, model and age.

        ``kind`` ``trace``: every trace item, those reviewed within a session included; ``session``: session items;
        None: what is reviewed, session items and the trace items not reviewed within one.
        """
        if isinstance(status, str):
            status = [status]
        _no_nul({"status": ",".join(status or []), "tier": tier, "reason": reason, "model": model})
        self.expire_leases()
        query = select(ReviewItem).order_by(ReviewItem.risk_rank.desc(), ReviewItem.created_at, ReviewItem.id)
        if status:
            query = query.where(ReviewItem.status.in_(list(status)))
        if tier is not None:
            query = query.where(ReviewItem.tier == tier)
        if reason:
            query = query.where(ReviewItem.reasons_index.contains(_index([reason]), autoescape=True))
        if model:
            query = query.where(ReviewItem.models_index.contains(_index([model]), autoescape=True))
        if since is not None:
            query = query.where(ReviewItem.created_at >= since)
        if until is not None:
            query = query.where(ReviewItem.created_at < until)
        if kind is None:
            query = query.where(ReviewItem.session_item_id.is_(None))
        elif kind in ItemKind.values():
            query = query.where(ReviewItem.kind == kind)
        else:
            raise ReviewError(f"kind must be one of {', '.join(ItemKind.values())}, not {kind!r}")
        with self._sessions() as session:
            return list(session.scalars(query.limit(limit).offset(offset)))

    def counts(self) -> dict[tuple[str, str], int]:
        """How many items there are by (tier, status): what is reviewed, a session item once and not its traces."""
        with self._sessions() as session:
            rows = session.execute(
                select(ReviewItem.tier, ReviewItem.status, func.count())
                .where(ReviewItem.session_item_id.is_(None))
                .group_by(ReviewItem.tier, ReviewItem.status)
            )
            return {(tier, status): count for tier, status, count in rows}

    def facets(self, *, status: Sequence[str] | None = None, limit: int = 10_000) -> dict[str, dict[str, int]]:
        """How many items (of ``status``) have each tier, risk tier, reason and model: the queue's filter values.

        Counted over what is reviewed (as :meth:`list` without ``kind``): a session item, not its traces again.
        """
        _no_nul({"status": ",".join(status or [])})
        query = select(ReviewItem.tier, ReviewItem.risk_tier, ReviewItem.reasons, ReviewItem.models).where(
            ReviewItem.session_item_id.is_(None)
        )
        if status:
            query = query.where(ReviewItem.status.in_(list(status)))
        counts: dict[str, dict[str, int]] = {"tiers": {}, "risk_tiers": {}, "reasons": {}, "models": {}}
        with self._sessions() as session:
            for tier, risk_tier, reasons, models in session.execute(query.limit(limit)):
                for facet, values in (
                    ("tiers", [tier]),
                    ("risk_tiers", [risk_tier]),
                    ("reasons", reasons or []),
                    ("models", models or []),
                ):
                    for value in values:
                        counts[facet][value] = counts[facet].get(value, 0) + 1
        return {facet: dict(sorted(values.items())) for facet, values in counts.items()}

    def audit(self, item_id: int | None = None, *, limit: int = 1000) -> builtins.list[AuditEntry]:
        """The audit trail (of one item, or of all), oldest first."""
        if item_id is not None and not self._stored(item_id):
            return []
        query = select(AuditEntry).order_by(AuditEntry.id).limit(limit)
        if item_id is not None:
            query = query.where(AuditEntry.item_id == item_id)
        with self._sessions() as session:
            return list(session.scalars(query))

    # -- leases ----------------------------------------------------------------------------------------------------

    def expire_leases(self) -> int:
        """Return items whose lease ran out to the queue as ``expired`` (audited); how many."""
        now = _now()
        expired_lease = (ReviewItem.status == ItemStatus.CLAIMED) & (ReviewItem.lease_expires_at < now)
        with self._sessions() as session:  # the common case, nothing expired, needs no write transaction
            if session.execute(select(ReviewItem.id).where(expired_lease).limit(1)).first() is None:
                return 0
        with self._writing() as session:
            query = select(ReviewItem).where(expired_lease)
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            expired = list(session.scalars(query))
            for item in expired:
                before = _state(item)
                item.status, item.lease_owner, item.lease_expires_at = ItemStatus.EXPIRED, None, None
                item.updated_at = now
                self._audit(session, item, "system", "expire", before)
            return len(expired)

    def _lease(self, lease_s: float | None) -> dt.timedelta:
        return dt.timedelta(seconds=self.policy.lease_s if lease_s is None else lease_s)

    def _claimable(self, now: dt.datetime) -> Any:
        # A trace reviewed within a session item is claimed through that item, never on its own.
        return ReviewItem.session_item_id.is_(None) & (
            ReviewItem.status.in_(_CLAIMABLE)
            | ((ReviewItem.status == ItemStatus.CLAIMED) & (ReviewItem.lease_expires_at < now))
        )

    def _lease_to(self, session: Session, item_id: int, reviewer: str, lease_s: float | None, now: dt.datetime) -> bool:
        """One conditional UPDATE (atomic on both databases): True when the item was claimable and is now leased."""
        claimed = rowcount(
            session.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id)
                .where(self._claimable(now))
                .values(
                    status=ItemStatus.CLAIMED,
                    lease_owner=reviewer,
                    lease_expires_at=now + self._lease(lease_s),
                    claimed_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        )
        if claimed == 1:
            # populate_existing: the UPDATE bypassed the session, which may hold the row as it was before.
            item = session.get(ReviewItem, item_id, populate_existing=True)
            assert item is not None
            self._audit(session, item, reviewer, "claim", None)
        return claimed == 1

    def claim(self, item_id: int, reviewer: str, *, lease_s: float | None = None) -> bool:
        """Lease an item to ``reviewer``: True when it was claimable (or its lease had expired) and is now theirs.

        :class:`Conflict` when ``reviewer`` already approved this ``dual_approval`` item: holding it would only keep
        it from the second, different reviewer it waits for (``claim_next`` skips such items for the same reason).
        """
        self._existing(item_id)
        with self._writing() as session:
            # Locked on PostgreSQL (SQLite writers take turns), so the approvals read are those the claim applies to.
            item = session.get(ReviewItem, item_id, with_for_update=True)
            if item is None:
                raise NotFound(f"no review item {item_id}")
            if item.session_item_id is not None:
                raise Conflict(f"review item {item_id} is reviewed within session item {item.session_item_id}")
            if item.status != ItemStatus.DONE and reviewer in (item.approvals or []):
                raise Conflict(
                    f"{reviewer} already approved review item {item_id}; a second, different reviewer must decide it"
                )
            return self._lease_to(session, item_id, reviewer, lease_s, _now())

    def claim_next(self, reviewer: str, *, tier: str | None = None, lease_s: float | None = None) -> int | None:
        """Claim the riskiest, oldest claimable item (of ``tier``) this reviewer may decide; its id, or None.

        The pick and the claim are one write transaction: on PostgreSQL the candidate row is locked ``FOR UPDATE SKIP
        LOCKED`` (concurrent reviewers take the next rows instead of waiting), on SQLite writers take turns, so
        reviewers asking at once do not all race for the same first item.
        """
        passed: list[int] = []  # dual-approval items this reviewer already approved: a second reviewer must
        for _ in range(50):
            now = _now()
            query = (
                select(ReviewItem.id, ReviewItem.approvals)
                .where(self._claimable(now))
                .order_by(ReviewItem.risk_rank.desc(), ReviewItem.created_at, ReviewItem.id)
                .limit(1)
            )
            if tier is not None:
                query = query.where(ReviewItem.tier == tier)
            if passed:
                query = query.where(ReviewItem.id.not_in(passed))
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            with self._writing() as session:
                row = session.execute(query).first()
                if row is None:
                    return None
                candidate, approvals = row
                if reviewer in (approvals or []):
                    passed.append(candidate)
                    continue
                if self._lease_to(session, candidate, reviewer, lease_s, now):
                    return candidate
        return None

    def release(self, item_id: int, reviewer: str) -> ReviewItem:
        """Give a claimed item back to the queue (only its lease holder can)."""
        self._existing(item_id)
        with self._writing() as session:
            item = self._held(session, item_id, reviewer)
            before = _state(item)
            item.status, item.lease_owner, item.lease_expires_at = ItemStatus.PENDING, None, None
            item.updated_at = _now()
            self._audit(session, item, reviewer, "release", before)
            return item

    # -- decisions -------------------------------------------------------------------------------------------------

    def check(self, tier: str, decision: Decision, kind: ItemKind = ItemKind.TRACE) -> None:
        """Raise :class:`ReviewError` naming what is wrong when ``decision`` does not fit an item of ``tier``."""
        policy = self.policy
        # Typed by a reviewer, not telemetry: refused rather than altered (PostgreSQL text cannot hold a NUL).
        _no_nul(
            {
                "reason": decision.reason,
                "reason_text": decision.reason_text,
                "correction": decision.correction,
                "comment": decision.comment,
                "checklist": "".join(decision.checklist),
            }
        )
        if decision.outcome not in ReviewOutcome.values():
            raise ReviewError(f"outcome must be approve, reject or correct, not {decision.outcome!r}")
        if decision.outcome == ReviewOutcome.REJECT and not decision.reason:
            raise ReviewError(f"a rejection needs a reason, one of: {', '.join(policy.reject_reasons)}")
        if decision.reason is not None and decision.reason not in policy.reject_reasons:
            raise ReviewError(f"unknown reason {decision.reason!r}; known: {', '.join(policy.reject_reasons)}")
        if decision.outcome == ReviewOutcome.CORRECT and not (decision.correction or "").strip():
            raise ReviewError("a correction needs the corrected output")
        if decision.outcome != ReviewOutcome.CORRECT and decision.correction is not None:
            raise ReviewError("correction is only for the outcome 'correct'")
        if decision.turn is not None and (kind != ItemKind.SESSION or decision.outcome != ReviewOutcome.CORRECT):
            raise ReviewError("turn is only for a correction of a session item")
        expected = policy.checklist(tier, kind)
        answered = set(decision.checklist)
        if answered - set(expected):
            unknown = ", ".join(sorted(answered - set(expected)))
            raise ReviewError(f"checklist has items the {tier} checklist does not: {unknown}")
        if expected and set(expected) - answered:
            missing = ", ".join(item for item in expected if item not in answered)
            raise ReviewError(f"checklist must answer every item of the {tier} checklist; missing: {missing}")

    def decide(self, item_id: int, reviewer: str, decision: Decision) -> ReviewItem:
        """Record a verdict by the item's lease holder; ``dual_approval`` items need two different approvers."""
        self._existing(item_id)
        with self._writing() as session:
            item = self._held(session, item_id, reviewer)
            self.check(item.tier, decision, ItemKind.SESSION if item.kind == ItemKind.SESSION else ItemKind.TRACE)
            members = self._members_for(session, item, decision)
            before = _state(item)
            now = _now()
            claimed_at = item.claimed_at
            item.updated_at = now
            item.lease_owner, item.lease_expires_at = None, None
            if decision.outcome == ReviewOutcome.APPROVE and item.tier == ReviewTier.DUAL_APPROVAL:
                approvals = list(item.approvals or [])
                if reviewer in approvals:
                    raise Conflict("this reviewer already approved the item; a second reviewer must")
                approvals.append(reviewer)
                item.approvals = approvals
                item.status = ItemStatus.DONE if len(approvals) >= 2 else ItemStatus.PENDING
                item.outcome = ReviewOutcome.APPROVE if len(approvals) >= 2 else None
            else:
                item.status, item.outcome = ItemStatus.DONE, decision.outcome
            if decision.outcome == ReviewOutcome.CORRECT:
                item.golden = decision.correction
            if item.status == ItemStatus.DONE:
                item.decided_at = now
                self._decide_members(session, item, members, decision, reviewer, now)
            session.add(
                DecisionRecord(
                    item_id=item.id,
                    reviewer=reviewer,
                    outcome=decision.outcome,
                    reason=decision.reason,
                    reason_text=decision.reason_text,
                    correction=decision.correction,
                    ratings=dict(decision.ratings),
                    checklist=dict(decision.checklist),
                    comment=decision.comment,
                    at=now,
                    claimed_at=claimed_at,
                    turn=self._corrected_turn(members, decision),
                )
            )
            self._audit(session, item, reviewer, f"decide:{decision.outcome}", before)
            return item

    @staticmethod
    def _members_for(session: Session, item: ReviewItem, decision: Decision) -> builtins.list[ReviewItem]:
        """A session item's members, locked; :class:`ReviewError` when a correction names a turn not among them."""
        if item.kind != ItemKind.SESSION:
            return []
        members = list(
            session.scalars(
                select(ReviewItem)
                .where(ReviewItem.session_item_id == item.id)
                .order_by(ReviewItem.created_at, ReviewItem.id)
                .with_for_update()
            )
        )
        if decision.turn is not None and decision.turn not in {m.trace_id for m in members}:
            raise ReviewError(f"turn {decision.turn!r} is not a trace of session item {item.id}")
        return in_time_order(members)

    @staticmethod
    def _corrected_turn(members: Sequence[ReviewItem], decision: Decision) -> str | None:
        if decision.outcome != ReviewOutcome.CORRECT or not members:
            return None
        return decision.turn or members[-1].trace_id

    def _decide_members(
        self,
        session: Session,
        item: ReviewItem,
        members: Sequence[ReviewItem],
        decision: Decision,
        reviewer: str,
        now: dt.datetime,
    ) -> None:
        """A decided session item's verdict applied to each of its traces (audited on each); a correction's golden
        answer goes to the corrected turn."""
        if not members:
            return
        corrected = self._corrected_turn(members, decision)
        for member in members:
            before = _state(member)
            member.status, member.outcome, member.decided_at, member.updated_at = (
                ItemStatus.DONE,
                item.outcome,
                now,
                now,
            )
            if decision.outcome == ReviewOutcome.CORRECT and member.trace_id == corrected:
                member.golden = decision.correction
            self._audit(session, member, reviewer, f"decide:{item.outcome}", before)

    @staticmethod
    def _held(session: Session, item_id: int, reviewer: str) -> ReviewItem:
        item = session.get(ReviewItem, item_id, with_for_update=True)
        if item is None:
            raise NotFound(f"no review item {item_id}")
        if item.status != ItemStatus.CLAIMED or item.lease_owner != reviewer:
            raise Conflict(f"review item {item_id} is not claimed by {reviewer}")
        if item.lease_expires_at is not None and item.lease_expires_at < _now():
            raise Conflict(f"the lease on review item {item_id} has expired")
        return item

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets reviewers read while the exporter writes; a busy timeout instead of "database is locked" errors.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()

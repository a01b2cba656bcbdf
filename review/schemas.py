"""The review API's request and response bodies (pydantic): validated at the edge, documented in the OpenAPI document.

Request bodies forbid unknown fields, so a misspelt field is an error naming it rather than a silently lost value.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import pydantic

from spanguard.review.store import ITEM_ID_MAX, ItemKind
from spanguard.semconv import ReviewOutcome, ReviewTier, RiskTier

__all__ = [
    "AuditList",
    "AuditOut",
    "DecisionIn",
    "DecisionOut",
    "ErrorOut",
    "Facets",
    "IngestResult",
    "IngestResults",
    "ItemDetail",
    "ItemIn",
    "ItemList",
    "ItemSummary",
    "ItemsIn",
    "Me",
    "Ratings",
    "ReviewSpan",
    "SessionContext",
    "SessionTurn",
    "SpanEvent",
    "SpanScope",
    "SpanStatus",
    "naive_utc",
]

HEX32 = r"^[0-9a-f]{32}$"
HEX16 = r"^[0-9a-f]{16}$"
_KEY = r"^[a-z][a-z0-9_]{0,63}$"
_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _item_id(value: object) -> object:
    # Checked on the text as the request gave it: int() would also read "+5", " 5" and "1_000", and a number beyond
    # 64 bits would reach the database (an overflow on SQLite, an out-of-range error on PostgreSQL).
    if isinstance(value, str) and (not _DECIMAL.fullmatch(value) or not 1 <= int(value) <= ITEM_ID_MAX):
        raise ValueError(f"not a review item id: ids are decimal integers from 1 to {ITEM_ID_MAX}")
    return value


# Last in an item id parameter's Annotated[int, ...]: anything but 1..2^63-1 written in decimal is a 422 naming it.
ITEM_ID = pydantic.BeforeValidator(_item_id)


def _no_nul(value: object) -> object:
    # SQLite reads a LIKE pattern only up to a NUL (the filter then matched every item) and PostgreSQL refuses NUL in
    # text outright: refused here, before either sees it. A dict is checked by its keys (the checklist's items).
    texts = value if isinstance(value, dict) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("must not contain a NUL byte (\\x00)")
    return value


# Last in a string query parameter's Annotated[...] (after its Query), or in a field a person types: a NUL byte in it
# is a 422 naming it. Span content is not refused but stored with U+FFFD instead (ReviewStore.ingest_many).
NO_NUL = pydantic.BeforeValidator(_no_nul)


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A query's time as the store keeps times: UTC without a zone (a time given without one is taken as UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class SpanStatus(_Strict):
    """A span's status: code and (for errors) a message."""

    code: Literal["unset", "ok", "error"] = "unset"
    message: str = pydantic.Field("", max_length=4096)


class SpanEvent(_Strict):
    """An event recorded on a span."""

    name: str = pydantic.Field(max_length=1024)
    time_unix_nano: int = pydantic.Field(0, ge=0)
    attributes: dict[str, Any] = {}


class SpanScope(_Strict):
    """The instrumentation scope that made a span."""

    name: str = pydantic.Field("", max_length=1024)
    version: str = pydantic.Field("", max_length=256)


class ReviewSpan(_Strict):
    """One span of the reviewed trace, in the flat JSON form the review exporter posts."""

    trace_id: str | None = pydantic.Field(None, pattern=HEX32)
    span_id: str = pydantic.Field(pattern=HEX16)
    parent_span_id: str | None = pydantic.Field(None, pattern=HEX16)
    name: str = pydantic.Field(max_length=1024)
    kind: Literal["internal", "server", "client", "producer", "consumer", "unspecified"] = "internal"
    start_time_unix_nano: int = pydantic.Field(0, ge=0)
    end_time_unix_nano: int = pydantic.Field(0, ge=0)
    status: SpanStatus = SpanStatus()
    attributes: dict[str, Any] = {}
    events: list[SpanEvent] = pydantic.Field([], max_length=10_000)
    resource: dict[str, Any] = {}
    scope: SpanScope = SpanScope()


class ItemIn(_Strict):
    """One trace to review: ingested idempotently by ``trace_id``."""

    trace_id: str = pydantic.Field(pattern=HEX32, description="the trace's id, 32 lowercase hex digits")
    tier: ReviewTier
    risk_tier: RiskTier = RiskTier.GREEN
    reasons: list[str] = pydantic.Field([], max_length=200)
    spans: list[ReviewSpan] = pydantic.Field(min_length=1, max_length=20_000)

    @pydantic.model_validator(mode="after")
    def _one_trace(self) -> ItemIn:
        for index, span in enumerate(self.spans):
            if span.trace_id is not None and span.trace_id != self.trace_id:
                raise ValueError(f"spans[{index}] belongs to trace {span.trace_id}, not {self.trace_id}")
        for reason in self.reasons:
            if not reason or len(reason) > 200:
                raise ValueError("reasons must be 1 to 200 characters each")
        return self


class ItemsIn(_Strict):
    """Several traces at once (the review exporter's batches)."""

    items: list[ItemIn] = pydantic.Field(min_length=1)


class IngestResult(pydantic.BaseModel):
    """Where one ingested trace went: its item and whether this request created it."""

    id: int
    trace_id: str
    created: bool


class IngestResults(pydantic.BaseModel):
    """The results of an ingest request, in the order of its items."""

    items: list[IngestResult]


class Ratings(_Strict):
    """Ratings of the reviewed output: thumbs up/down and a Likert score from 1 (poor) to 5 (excellent)."""

    thumbs: Literal["up", "down"] | None = None
    likert: int | None = pydantic.Field(None, ge=1, le=5)


class DecisionIn(_Strict):
    """A reviewer's decision; who decided comes from the bearer token."""

    outcome: ReviewOutcome
    reason: Annotated[str | None, NO_NUL] = pydantic.Field(
        None, pattern=_KEY, description="one of the configured rejection reasons"
    )
    reason_text: Annotated[str | None, NO_NUL] = pydantic.Field(
        None, max_length=4000, description="free text beside the reason"
    )
    correction: Annotated[str | None, NO_NUL] = pydantic.Field(
        None, max_length=200_000, description="the golden answer"
    )
    ratings: Ratings = Ratings()
    checklist: Annotated[dict[str, bool], NO_NUL] = pydantic.Field(
        {}, description="every item of the tier's checklist, answered"
    )
    comment: Annotated[str | None, NO_NUL] = pydantic.Field(None, max_length=20_000)
    turn: str | None = pydantic.Field(
        None, pattern=HEX32, description="on a session item's correction: the trace id of the corrected turn"
    )


class DecisionOut(pydantic.BaseModel):
    """A recorded decision."""

    id: int
    reviewer: str
    outcome: str
    reason: str | None
    reason_text: str | None
    correction: str | None
    ratings: dict[str, Any]
    checklist: dict[str, bool]
    comment: str | None
    at: str
    turn: str | None = None


class ItemSummary(pydantic.BaseModel):
    """A review item in the queue list."""

    id: int
    trace_id: str
    tier: str
    risk_tier: str
    reasons: list[str]
    status: str
    lease_owner: str | None
    lease_expires_at: str | None
    approvals: list[str]
    outcome: str | None
    models: list[str]
    preview: str
    spans: int
    created_at: str
    updated_at: str
    trace_url: str | None = None
    kind: ItemKind = ItemKind.TRACE
    conversation_id: str | None = None
    user_id: str | None = None
    session_item_id: int | None = pydantic.Field(None, description="the session item this trace is reviewed within")
    follows_id: int | None = pydantic.Field(None, description="a follow-up session item: the one it follows")
    traces: int | None = pydantic.Field(None, description="a session item: how many traces it reviews")
    reason_texts: dict[str, str] = pydantic.Field(
        {}, description="what each risk reason code means: the rule's reason, the detector's explanation"
    )


class SessionTurn(pydantic.BaseModel):
    """One trace of a session item's session: its own item, tiers, reasons and status, and how it is reviewed."""

    item_id: int
    trace_id: str
    tier: str
    risk_tier: str
    reasons: list[str]
    status: str
    outcome: str | None
    started_unix_nano: int | None
    member: bool = pydantic.Field(description="reviewed by this session item")
    reviewed_in: int | None = pydantic.Field(description="the session item it is reviewed in (None: on its own)")


class SessionContext(pydantic.BaseModel):
    """What a session item shows: the session's traces up to its latest member, and the items that came before."""

    conversation_id: str
    traces: list[SessionTurn]
    earlier: list[ItemSummary] = pydantic.Field(description="this session's earlier session items, oldest first")


class ItemDetail(ItemSummary):
    """A review item with its conversation, its decisions, and what a decision on it must contain."""

    conversation: dict[str, Any]
    decisions: list[DecisionOut]
    golden: str | None
    checklist: list[str]
    checklist_descriptions: dict[str, str] = pydantic.Field({}, description="what each checklist item asks")
    reject_reasons: list[str]
    session: SessionContext | None = None


class ItemList(pydantic.BaseModel):
    """A page of the queue."""

    items: list[ItemSummary]


class Facets(pydantic.BaseModel):
    """The queue's filter values and how many items have each: tiers, risk tiers, reasons, models."""

    tiers: dict[str, int]
    risk_tiers: dict[str, int]
    reasons: dict[str, int]
    models: dict[str, int]


class AuditOut(pydantic.BaseModel):
    """One audit entry: who did what to which item, when, and the item's state before and after."""

    id: int
    item_id: int
    actor: str
    action: str
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(pydantic.BaseModel):
    """An audit trail, oldest first."""

    entries: list[AuditOut]


class Me(pydantic.BaseModel):
    """The caller, as its token says, and the review policy the page needs."""

    name: str
    role: str
    reject_reasons: list[str]
    checklists: dict[str, list[str]]
    session_checklist: list[str] = []
    units: dict[str, str] = {}


class ErrorOut(pydantic.BaseModel):
    """An error: what was wrong with the request."""

    detail: str

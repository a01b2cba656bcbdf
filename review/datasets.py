"""Datasets in the review store: named sets of reviewed items and rejected approval requests, with tags; and the
export's reader, which streams reviewed sources with their decisions and tags in batches.

:func:`export_rows` converts each source with :mod:`spanguard.exporters.datasets` and yields the lines to write.
Behaviour: docs/datasets.md ("Datasets in the review service", "Export", "Multi-turn cases from sessions").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from spanguard.exporters.datasets import (
    ExportKind,
    RejectedApproval,
    ReviewDecision,
    ReviewedItem,
    approval_case,
    case_id,
    item_case,
    row,
)
from spanguard.review.approvals import ApprovalDecision, ApprovalRequest, is_id
from spanguard.review.store import (
    Base,
    Conflict,
    DecisionRecord,
    ItemKind,
    ItemStatus,
    NotFound,
    ReviewError,
    ReviewItem,
    ReviewStore,
    _index,
    _now,
    started,
)
from spanguard.semconv import ApprovalOutcome, ReviewOutcome, ReviewTier, RiskTier

__all__ = [
    "BATCH",
    "UNITS",
    "DatasetCase",
    "DatasetStore",
    "ExportFilter",
    "check_name",
    "check_tags",
    "count_sources",
    "export_rows",
    "parse_filter",
]

BATCH: Final = 1000
"""Items read per batch by the export."""
MAX_TAGS: Final = 20
UNITS: Final[tuple[str, ...]] = ItemKind.values()
"""The export's ``unit`` filter: ``session`` (session items only) or ``trace`` (every trace item, those reviewed
within a session item included); without it, what was reviewed: session items and the traces not in one."""
RESERVED_NAMES: Final = frozenset({"export"})  # a route of its own under /v1/datasets/
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
_TAG: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")


class DatasetCase(Base):
    """One source (a reviewed item or a rejected approval request) in one dataset, with its tags."""

    __tablename__ = "dataset_cases"
    __table_args__ = (
        # NULLs are distinct in a UNIQUE constraint on both databases: an approval's row (item_id NULL) never
        # collides with an item's, and each kind of source is unique per dataset.
        UniqueConstraint("dataset", "item_id", name="uq_dataset_cases_item"),
        UniqueConstraint("dataset", "approval_id", name="uq_dataset_cases_approval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"), nullable=True, index=True)
    approval_id: Mapped[str | None] = mapped_column(ForeignKey("approval_requests.id"), nullable=True, index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags_index: Mapped[str] = mapped_column(String(1400), default="")
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


def check_name(name: object, field: str = "name") -> str:
    """``name`` when it is a dataset name; :class:`ReviewError` naming ``field`` and what a name must be otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ReviewError(
            f"{field}: a dataset name is 1 to 64 characters of a-z, 0-9, '_', '-', '.', starting with a letter or digit"
        )
    if name in RESERVED_NAMES:
        raise ReviewError(f"{field}: {name!r} is reserved")
    return name


def check_tags(tags: object) -> list[str]:
    """``tags`` deduplicated, in order; :class:`ReviewError` naming the first bad one."""
    if not isinstance(tags, (list, tuple)) or len(tags) > MAX_TAGS:
        raise ReviewError(f"tags: a list of at most {MAX_TAGS} tags")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ReviewError(
                f"tags[{index}]: 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.', ':', starting with a letter "
                "or digit"
            )
    return list(dict.fromkeys(tags))


# --- filters --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    """Which reviewed sources an export holds; every field optional, all combined (docs/datasets.md)."""

    tiers: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    since: dt.datetime | None = None  # naive UTC
    dataset: str | None = None
    tag: str | None = None
    unit: str | None = None  # one of UNITS, or None: what was reviewed (a session's traces only through it)


def _list(name: str, value: str | Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...]:
    values = value.split(",") if isinstance(value, str) else list(value or [])
    values = [v.strip() for v in values if v.strip()]
    for v in values:
        if v not in known:
            raise ReviewError(f"{name}: unknown value {v!r}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(values))


def parse_since(value: str | dt.datetime | None) -> dt.datetime | None:
    """An ISO 8601 date or time as naive UTC (a time without a zone is UTC); :class:`ReviewError` when it is none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ReviewError(f"since: not an ISO 8601 date or time: {text[:40]!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def parse_filter(
    *,
    tier: str | Sequence[str] | None = None,
    outcome: str | Sequence[str] | None = None,
    since: str | dt.datetime | None = None,
    dataset: str | None = None,
    tag: str | None = None,
    unit: str | None = None,
) -> ExportFilter:
    """An :class:`ExportFilter` from the values a person typed; :class:`ReviewError` naming the first bad one."""
    if unit is not None and unit != "" and unit not in UNITS:
        raise ReviewError(f"unit: unknown value {str(unit)[:40]!r}; known: {', '.join(UNITS)}")
    return ExportFilter(
        tiers=_list("tier", tier, (*ReviewTier.values(), *RiskTier.values())),
        outcomes=_list("outcome", outcome, ReviewOutcome.values()),
        since=parse_since(since),
        dataset=check_name(dataset, "dataset") if dataset else None,
        tag=_tag(tag) if tag else None,
        unit=unit or None,
    )


def _tag(tag: str) -> str:
    try:
        return check_tags([tag])[0]
    except ReviewError:
        raise ReviewError("tag: 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.', ':'") from None


# --- the store ------------------------------------------------------------------------------------------------------


class DatasetStore:
    """Dataset membership on a :class:`ReviewStore`'s database."""

    def __init__(self, store: ReviewStore) -> None:
        self.store = store

    def add(
        self,
        name: str,
        *,
        item_id: int | None = None,
        approval_id: str | None = None,
        tags: Sequence[str] = (),
        actor: str,
    ) -> tuple[DatasetCase, bool]:
        """Add a reviewed item or a rejected approval request to dataset ``name``; (its case, whether it is new).

        Adding a source that is in the dataset already merges ``tags`` into its case. :class:`NotFound` for an
        unknown source; :class:`Conflict` for an item not reviewed yet or a request that was not rejected.
        """
        check_name(name)
        tags = check_tags(list(tags))
        if (item_id is None) == (approval_id is None):
            raise ReviewError("give exactly one of item_id and approval_id")
        for attempt in range(3):
            try:
                with self.store._writing() as session:
                    return self._add(session, name, item_id, approval_id, tags, actor)
            except IntegrityError:
                # Someone added the same source between our read and our insert: read it again and merge.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add(
        self, session: Session, name: str, item_id: int | None, approval_id: str | None, tags: list[str], actor: str
    ) -> tuple[DatasetCase, bool]:
        if item_id is not None:
            self.store._existing(item_id)
            item = session.get(ReviewItem, item_id)
            if item is None:
                raise NotFound(f"no review item {item_id}")
            if item.session_item_id is not None:
                # Its session item's case holds it (the conversation up to the judged turn): one failure, one case.
                raise Conflict(
                    f"review item {item_id} is reviewed within session item {item.session_item_id}: add that item"
                )
            if item.status != ItemStatus.DONE or item.outcome is None:
                raise Conflict(f"review item {item_id} is not reviewed yet (status {item.status})")
            where = DatasetCase.item_id == item_id
        else:
            if not is_id(approval_id or ""):
                raise NotFound(f"no approval request {approval_id}")
            request = session.get(ApprovalRequest, approval_id)
            if request is None:
                raise NotFound(f"no approval request {approval_id}")
            if request.status != "rejected":
                raise Conflict(f"approval request {approval_id} is {request.status}; only rejected requests are cases")
            where = DatasetCase.approval_id == approval_id
        existing = session.scalars(
            select(DatasetCase).where(DatasetCase.dataset == name, where).with_for_update()
        ).one_or_none()
        if existing is not None:
            merged = list(dict.fromkeys([*(existing.tags or []), *tags]))
            if len(merged) > MAX_TAGS:
                raise ReviewError(f"tags: a case has at most {MAX_TAGS} tags")
            if merged != existing.tags:
                existing.tags, existing.tags_index = merged, _index(merged)
            return existing, False
        case = DatasetCase(
            dataset=name,
            item_id=item_id,
            approval_id=approval_id,
            tags=tags,
            tags_index=_index(tags),
            added_by=actor,
            added_at=_now(),
        )
        session.add(case)
        session.flush()
        return case, True

    def remove(self, name: str, case: int) -> None:
        """Remove case ``case`` (its row id) from dataset ``name``; :class:`NotFound` when it is not there."""
        check_name(name)
        with self.store._writing() as session:
            row = session.get(DatasetCase, case) if 1 <= case <= 2**31 - 1 else None
            if row is None or row.dataset != name:
                raise NotFound(f"dataset {name} has no case {case}")
            session.delete(row)

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset: ``{"name", "cases", "updated_at"}``, by name."""
        query = (
            select(DatasetCase.dataset, func.count(), func.max(DatasetCase.added_at))
            .group_by(DatasetCase.dataset)
            .order_by(DatasetCase.dataset)
        )
        with self.store._sessions() as session:
            return [{"name": n, "cases": c, "updated_at": at} for n, c, at in session.execute(query)]

    def cases(self, name: str, *, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """(how many cases dataset ``name`` has, a page of them oldest first, each with its source's summary)."""
        check_name(name)
        with self.store._sessions() as session:
            total = session.scalar(select(func.count()).where(DatasetCase.dataset == name)) or 0
            query = _cases_query(name).order_by(DatasetCase.added_at, DatasetCase.id).limit(limit).offset(offset)
            return total, [_case_row(*row) for row in session.execute(query)]

    def case(self, name: str, case: int) -> dict[str, Any]:
        """One case of dataset ``name`` by its row id, with its source's summary; :class:`NotFound` if not there."""
        with self.store._sessions() as session:
            found = session.execute(_cases_query(name).where(DatasetCase.id == case)).first()
        if found is None:
            raise NotFound(f"dataset {name} has no case {case}")
        return _case_row(*found)


def _cases_query(name: str) -> Any:
    return (
        select(
            DatasetCase,
            ReviewItem.trace_id,
            ReviewItem.outcome,
            ReviewItem.tier,
            ReviewItem.risk_tier,
            ReviewItem.preview,
            ApprovalRequest.trace_id,
            ApprovalRequest.tier,
            ApprovalRequest.action,
        )
        .outerjoin(ReviewItem, ReviewItem.id == DatasetCase.item_id)
        .outerjoin(ApprovalRequest, ApprovalRequest.id == DatasetCase.approval_id)
        .where(DatasetCase.dataset == name)
    )


def _case_row(
    case: DatasetCase,
    trace: str | None,
    outcome: str | None,
    tier: str | None,
    risk: str | None,
    preview: str | None,
    approval_trace: str | None,
    approval_tier: str | None,
    action: str | None,
) -> dict[str, Any]:
    item = case.item_id is not None
    return {
        "id": case.id,
        "case_id": case_id(f"review_item:{trace}" if item else f"approval:{case.approval_id}"),
        "item_id": case.item_id,
        "approval_id": case.approval_id,
        "trace_id": trace if item else approval_trace,
        "tags": list(case.tags or []),
        "added_by": case.added_by,
        "added_at": case.added_at,
        "outcome": outcome if item else ReviewOutcome.REJECT,
        "tier": tier if item else None,
        "risk_tier": risk if item else approval_tier,
        "preview": (preview or "") if item else f"rejected action {action}",
    }


# --- the export's reader --------------------------------------------------------------------------------------------


def _item_query(filters: ExportFilter) -> Any:
    query = select(
        ReviewItem.id,
        ReviewItem.trace_id,
        ReviewItem.tier,
        ReviewItem.risk_tier,
        ReviewItem.outcome,
        ReviewItem.golden,
        ReviewItem.decided_at,
        ReviewItem.updated_at,
        ReviewItem.spans,
        ReviewItem.kind,
        ReviewItem.conversation_id,
    ).where(ReviewItem.status == ItemStatus.DONE, ReviewItem.outcome.is_not(None))
    if filters.unit is None:
        # A trace reviewed within a session item is in that item's case already: exported once, as a session case.
        query = query.where(ReviewItem.session_item_id.is_(None))
    else:
        query = query.where(ReviewItem.kind == filters.unit)
    review_tiers = [t for t in filters.tiers if t in ReviewTier.values()]
    risk_tiers = [t for t in filters.tiers if t in RiskTier.values()]
    if review_tiers and risk_tiers:
        query = query.where(ReviewItem.tier.in_(review_tiers) | ReviewItem.risk_tier.in_(risk_tiers))
    elif review_tiers:
        query = query.where(ReviewItem.tier.in_(review_tiers))
    elif risk_tiers:
        query = query.where(ReviewItem.risk_tier.in_(risk_tiers))
    if filters.outcomes:
        query = query.where(ReviewItem.outcome.in_(list(filters.outcomes)))
    if filters.since is not None:
        query = query.where(ReviewItem.decided_at >= filters.since)
    membership = _membership(filters)
    if membership is not None:
        query = query.where(ReviewItem.id.in_(select(DatasetCase.item_id).where(membership)))
    return query


def _membership(filters: ExportFilter) -> Any:
    """The condition on ``dataset_cases`` rows the filters ask for, or None when membership does not matter."""
    condition = None
    if filters.dataset is not None:
        condition = DatasetCase.dataset == filters.dataset
    if filters.tag is not None:
        tagged = DatasetCase.tags_index.contains(_index([filters.tag]), autoescape=True)
        condition = tagged if condition is None else condition & tagged
    return condition


def _approval_query(filters: ExportFilter) -> Any | None:
    if filters.outcomes and ReviewOutcome.REJECT not in filters.outcomes:
        return None
    if filters.tiers:
        risk_tiers = [t for t in filters.tiers if t in RiskTier.values()]
        if not risk_tiers:
            return None  # approval requests have no review tier
    query = select(
        ApprovalRequest.id,
        ApprovalRequest.action,
        ApprovalRequest.tier,
        ApprovalRequest.arguments,
        ApprovalRequest.state,
        ApprovalRequest.reason,
        ApprovalRequest.trace_id,
        ApprovalRequest.decided_at,
    ).where(ApprovalRequest.status == "rejected")
    if filters.tiers:
        query = query.where(ApprovalRequest.tier.in_(risk_tiers))
    if filters.since is not None:
        query = query.where(ApprovalRequest.decided_at >= filters.since)
    membership = _membership(filters)
    if membership is not None:
        query = query.where(ApprovalRequest.id.in_(select(DatasetCase.approval_id).where(membership)))
    return query


def _tags(session: Session, column: Any, ids: list[Any], filters: ExportFilter) -> dict[Any, list[str]]:
    query = select(column, DatasetCase.tags).where(column.in_(ids))
    if filters.dataset is not None:
        query = query.where(DatasetCase.dataset == filters.dataset)
    tags: dict[Any, list[str]] = {}
    for source, values in session.execute(query):
        tags.setdefault(source, []).extend(values or [])
    return tags


def _items(store: ReviewStore, filters: ExportFilter, batch: int) -> Iterator[ReviewedItem]:
    base = _item_query(filters)
    after = 0
    while True:
        with store._sessions() as session:
            rows = session.execute(base.where(ReviewItem.id > after).order_by(ReviewItem.id).limit(batch)).all()
            if not rows:
                return
            ids = [r.id for r in rows]
            decisions: dict[int, list[ReviewDecision]] = {}
            query = (
                select(
                    DecisionRecord.item_id,
                    DecisionRecord.reviewer,
                    DecisionRecord.outcome,
                    DecisionRecord.reason,
                    DecisionRecord.reason_text,
                    DecisionRecord.correction,
                    DecisionRecord.ratings,
                    DecisionRecord.checklist,
                    DecisionRecord.at,
                    DecisionRecord.turn,
                )
                .where(DecisionRecord.item_id.in_(ids))
                .order_by(DecisionRecord.id)
            )
            for d in session.execute(query):
                decisions.setdefault(d.item_id, []).append(
                    ReviewDecision(
                        d.reviewer,
                        d.outcome,
                        d.reason,
                        d.reason_text,
                        d.correction,
                        d.ratings or {},
                        d.checklist or {},
                        d.at,
                        d.turn,
                    )
                )
            tags = _tags(session, DatasetCase.item_id, ids, filters)
            traces = _session_traces(session, rows)
        for r in rows:
            yield ReviewedItem(
                item_id=r.id,
                trace_id=r.trace_id,
                tier=r.tier,
                risk_tier=r.risk_tier,
                outcome=r.outcome,
                spans=r.spans or [],
                decisions=decisions.get(r.id, []),
                golden=r.golden,
                decided_at=r.decided_at or r.updated_at,
                tags=tags.get(r.id, []),
                kind=r.kind,
                conversation_id=r.conversation_id,
                traces=traces.get(r.id, ()),
            )
        after = ids[-1]


def _session_traces(session: Session, rows: Sequence[Any]) -> dict[int, list[tuple[str, list[dict[str, Any]]]]]:
    """Each session item's session as ``(trace id, spans)`` in time order, from the session's first trace up to the
    item's latest member (as the page shows it): one query for every session item of the batch, none without one."""
    items = [r for r in rows if r.kind == ItemKind.SESSION and r.conversation_id is not None]
    if not items:
        return {}
    keys = list(dict.fromkeys(r.conversation_id for r in items))
    query = select(
        ReviewItem.id,
        ReviewItem.trace_id,
        ReviewItem.session_key,
        ReviewItem.session_item_id,
        ReviewItem.created_at,
        ReviewItem.spans,
    ).where(ReviewItem.kind == ItemKind.TRACE, ReviewItem.session_key.in_(keys))
    by_key: dict[str, list[tuple[tuple[int, dt.datetime, int], Any]]] = {}
    for trace in session.execute(query):
        order = (started(trace.spans) or 0, trace.created_at, trace.id)
        by_key.setdefault(trace.session_key, []).append((order, trace))
    for traces in by_key.values():
        # The order of SessionStore.get: the spans' own start, then ingestion (a turn may be ingested late).
        traces.sort(key=lambda entry: entry[0])
    found: dict[int, list[tuple[str, list[dict[str, Any]]]]] = {}
    for item in items:
        ordered = [trace for _, trace in by_key.get(item.conversation_id, [])]
        members = [i for i, trace in enumerate(ordered) if trace.session_item_id == item.id]
        if members:
            found[item.id] = [(t.trace_id, t.spans or []) for t in ordered[: members[-1] + 1]]
    return found


def _approvals(store: ReviewStore, filters: ExportFilter, batch: int) -> Iterator[RejectedApproval]:
    base = _approval_query(filters)
    if base is None:
        return
    after = ""
    while True:
        with store._sessions() as session:
            rows = session.execute(
                base.where(ApprovalRequest.id > after).order_by(ApprovalRequest.id).limit(batch)
            ).all()
            if not rows:
                return
            ids = [r.id for r in rows]
            reviewers: dict[str, list[str]] = {}
            query = (
                select(ApprovalDecision.approval_id, ApprovalDecision.reviewer)
                .where(ApprovalDecision.approval_id.in_(ids), ApprovalDecision.outcome == ApprovalOutcome.REJECT)
                .order_by(ApprovalDecision.id)
            )
            for approval_id, reviewer in session.execute(query):
                reviewers.setdefault(approval_id, []).append(reviewer)
            tags = _tags(session, DatasetCase.approval_id, ids, filters)
        for r in rows:
            yield RejectedApproval(
                approval_id=r.id,
                action=r.action,
                tier=r.tier,
                arguments=r.arguments or {},
                state=r.state or {},
                reason=r.reason,
                reviewers=reviewers.get(r.id, []),
                trace_id=r.trace_id,
                decided_at=r.decided_at,
                tags=tags.get(r.id, []),
            )
        after = ids[-1]


def _narrowed(filters: ExportFilter, kind: ExportKind, include_approved: bool) -> ExportFilter | None:
    """``filters`` keeping only the outcomes that can give a ``kind`` line, or None when none can.

    Only corrected items (and approved ones, for sft with ``include_approved``) give sft and preference rows: narrowed
    in the query, so the others are neither read nor converted for nothing (approval requests give neither).
    """
    corrected: tuple[str, ...] = (ReviewOutcome.CORRECT,)
    sft = (*corrected, ReviewOutcome.APPROVE) if include_approved else corrected
    wanted = {"eval": ReviewOutcome.values(), "sft": sft}
    outcomes = tuple(o for o in (filters.outcomes or ReviewOutcome.values()) if o in wanted.get(kind, corrected))
    return replace(filters, outcomes=outcomes) if outcomes else None


def count_sources(
    store: ReviewStore, filters: ExportFilter, kind: ExportKind = "eval", *, include_approved: bool = False
) -> int:
    """How many reviewed items and rejected approval requests :func:`export_rows` reads (for a progress bar)."""
    narrowed = _narrowed(filters, kind, include_approved)
    if narrowed is None:
        return 0
    with store._sessions() as session:
        total = session.scalar(select(func.count()).select_from(_item_query(narrowed).subquery())) or 0
        approvals = _approval_query(narrowed)
        if approvals is not None:
            total += session.scalar(select(func.count()).select_from(approvals.subquery())) or 0
    return total


def export_rows(
    store: ReviewStore,
    kind: ExportKind = "eval",
    filters: ExportFilter = ExportFilter(),
    *,
    include_approved: bool = False,
    batch: int = BATCH,
) -> Iterator[tuple[dict[str, Any] | None, int]]:
    """Each source's exported line (None when ``kind`` has none for it) and how many sources were read so far:
    reviewed items by id, then rejected approval requests by id, so the same store exports the same file."""
    narrowed = _narrowed(filters, kind, include_approved)
    if narrowed is None:
        return
    filters = narrowed
    redact = reviewer_text_redactor()
    read = 0
    for item in _items(store, filters, batch):
        read += 1
        yield row(item_case(item, redact), kind, include_approved=include_approved), read
    for request in _approvals(store, filters, batch):
        read += 1
        yield row(approval_case(request, redact), kind, include_approved=include_approved), read


def reviewer_text_redactor() -> Callable[[str], str]:
    """Redaction of what reviewers typed (corrections, reasons): the store redacted only telemetry, and a correction
    may repeat an address the model leaked. A text whose redaction fails is dropped, never kept."""
    from spanguard.processors.redaction import default_redactor

    redactor = default_redactor()

    def redact(text: str) -> str:
        return redactor.redact_text(text).text

    return redact

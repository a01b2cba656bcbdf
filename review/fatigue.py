"""The approval-fatigue report: how often the gates asked people, how they answered, and a policy that asks less.

Pure: plain approval records (as the approvals store's ``history(since)`` returns them) in, a JSON-able report out.
The counts, the suggestion rules and their thresholds are docs/gates.md ("Approval fatigue").
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from spanguard.instrumentation.gate_policy import GatePolicy, decide
from spanguard.review.approvals import APPROVAL_TIERS, ApprovalTier
from spanguard.semconv import ApprovalStatus, RiskTier

__all__ = [
    "APPROVE_SHARE",
    "FIX_SHARE",
    "MIN_REQUESTS",
    "FatigueReport",
    "RecordError",
    "build_report",
    "percent",
    "percentile",
    "suggested_policy",
    "window_start",
]

MIN_REQUESTS: Final = 20  # ended requests an action needs before the report suggests anything for it
APPROVE_SHARE: Final = 0.95  # approved unchanged at least this often: ask less (green, or a higher threshold)
FIX_SHARE: Final = 0.20  # rejected or modified at least this often: a prompt or policy to fix
SKIPPED_LISTED: Final = 100  # skipped records named one by one in the report (all are counted)
MAX_DAYS: Final = 366

RecordTier = ApprovalTier
_TIERS: Final = APPROVAL_TIERS
_STATUSES: Final = ApprovalStatus.values()
# A person decided (a time-out is not a decision); of those, the decisions that say the call was not right as asked.
_DECIDED: Final = frozenset({ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.MODIFIED})
_TROUBLED: Final = (ApprovalStatus.REJECTED, ApprovalStatus.MODIFIED)
_FEATURE_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")  # usable in a condition (no leading _)


# --------------------------------------------------------------------------------------------------------------------
# The report's shape: one definition for the service's answer and for the CLI reading it back (untrusted JSON).
# Unknown keys are ignored rather than refused, so a CLI can read the report of a newer service.


class Counts(BaseModel, extra="ignore"):
    """How many requests were made and how each ended (``approved`` is approved unchanged)."""

    requested: int = Field(0, ge=0)
    approved: int = Field(0, ge=0)
    modified: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)
    timed_out: int = Field(0, ge=0)
    pending: int = Field(0, ge=0)
    escalated: int = Field(0, ge=0)


class Timed(Counts):
    """Counts with the time from request to a person's decision (None when no person decided)."""

    median_decision_s: float | None = Field(None, ge=0)
    p95_decision_s: float | None = Field(None, ge=0)


class ActionRow(Timed):
    """One action's counts over the window; ``tier`` is red when any of its requests was red."""

    action: str
    tier: RecordTier
    approved_unchanged_share: float | None = Field(None, ge=0, le=1)


class TierRow(Timed):
    """One tier's counts over the window."""

    tier: RecordTier


class DayRow(Counts):
    """One UTC day: its counts, the share of the daily budget they used, and what the suggested policy would ask."""

    date: dt.date
    budget_share: float = Field(ge=0)
    suggested_interventions: int = Field(0, ge=0)


class Cell(Counts):
    """The finest grain: one day, action and tier."""

    date: dt.date
    action: str
    tier: RecordTier


class Suggestion(BaseModel, extra="ignore"):
    """One change the report suggests, with the evidence behind it."""

    action: str
    kind: Literal["green", "raise_threshold", "fix_prompt_or_policy", "list_red"]
    tier: RecordTier
    reason: str
    condition: str | None = None
    requests: int = Field(ge=0)
    approved_unchanged_share: float | None = Field(None, ge=0, le=1)
    rejected_or_modified_share: float | None = Field(None, ge=0, le=1)


class Projection(BaseModel, extra="ignore"):
    """Interventions a day as recorded and as the suggested policy would have asked on the same calls."""

    days: int = Field(ge=0)
    recorded_per_day: float = Field(ge=0)
    suggested_per_day: float = Field(ge=0)
    suggested_max_day: int = Field(ge=0)
    red_asked: int = Field(ge=0)
    unasked_rejected_or_modified: int = Field(ge=0)
    within_budget: bool


class Skipped(BaseModel, extra="ignore"):
    """A record left out of the report and why."""

    index: int = Field(ge=0)
    id: str | None = None
    reason: str


class FatigueReport(BaseModel, extra="ignore"):
    """The whole report (``build_report`` returns its JSON form)."""

    schema_version: Literal[1] = 1
    generated_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    days: int = Field(ge=1, le=MAX_DAYS)
    budget_per_day: int = Field(ge=1)
    totals: Timed
    by_action: list[ActionRow]
    by_tier: list[TierRow]
    by_day: list[DayRow]
    cells: list[Cell]
    suggestions: list[Suggestion]
    suggested_policy: dict[str, Any]
    projection: Projection
    outside_window: int = Field(0, ge=0)
    skipped_count: int = Field(0, ge=0)
    skipped: list[Skipped] = []

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values (datetimes as ISO 8601 UTC with ``Z``)."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------------------------------------
# Records


class RecordError(ValueError):
    """A record that cannot be counted; the message says which field and why."""


@dataclass(frozen=True)
class _Record:
    id: str
    action: str
    tier: RecordTier
    outcome: str  # the status, with an approval of edited arguments counted as modified
    approvals_required: int
    created_at: dt.datetime
    decided_at: dt.datetime | None
    escalated: bool
    arguments: Mapping[str, Any] | None

    @property
    def decision_s(self) -> float | None:
        if self.outcome not in _DECIDED or self.decided_at is None:
            return None
        return (self.decided_at - self.created_at).total_seconds()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _utc(value: Any, field: str, *, required: bool) -> dt.datetime | None:
    """A UTC naive datetime from a datetime (naive means UTC) or an ISO 8601 string."""
    if value is None:
        if required:
            raise RecordError(f"{field} is missing")
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise RecordError(f"{field} is not an ISO 8601 time: {_short(value)}") from None
    if not isinstance(value, dt.datetime):
        raise RecordError(f"{field} is not a time but {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _record(raw: Any) -> _Record:
    """One validated record, or :class:`RecordError` naming the first field that is wrong."""
    if not isinstance(raw, Mapping):
        raise RecordError(f"the record is not an object but {type(raw).__name__}")
    for field in ("id", "action", "tier", "status", "created_at"):
        if raw.get(field) is None:
            raise RecordError(f"{field} is missing")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident or len(ident) > 200:
        raise RecordError(f"id must be a non-empty string, not {_short(ident)}")
    action = raw.get("action")
    if not isinstance(action, str) or not action or len(action) > 200:
        raise RecordError(f"action must be a non-empty string of at most 200 characters, not {_short(action)}")
    tier = raw.get("tier")
    if tier not in _TIERS:
        raise RecordError(f"tier must be yellow or red, not {_short(tier)}")
    status = raw.get("status")
    if status not in _STATUSES:
        raise RecordError(f"status must be one of {', '.join(_STATUSES)}, not {_short(status)}")
    required = raw.get("approvals_required", 1)
    if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= 5:
        raise RecordError(f"approvals_required must be an integer from 1 to 5, not {_short(required)}")
    modified = raw.get("modified", False)
    if not isinstance(modified, bool):
        raise RecordError(f"modified must be true or false, not {_short(modified)}")
    arguments = raw.get("arguments")
    if arguments is not None and not isinstance(arguments, Mapping):
        raise RecordError(f"arguments must be an object, not {type(arguments).__name__}")
    created = _utc(raw.get("created_at"), "created_at", required=True)
    assert created is not None
    decided = _utc(raw.get("decided_at"), "decided_at", required=status in _DECIDED)
    escalated = _utc(raw.get("escalated_at"), "escalated_at", required=False)
    if decided is not None and decided < created:
        raise RecordError("decided_at is before created_at")
    # With two approvers a modify resets the approvals and the request may end "approved": still an edit.
    outcome = ApprovalStatus.MODIFIED if status == ApprovalStatus.APPROVED and modified else status
    return _Record(ident, action, tier, outcome, required, created, decided, escalated is not None, arguments)


# --------------------------------------------------------------------------------------------------------------------
# Counting


class _Tally:
    __slots__ = ("counts", "durations")

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.durations: list[float] = []

    def add(self, record: _Record) -> None:
        self.counts["requested"] += 1
        self.counts[record.outcome] += 1
        if record.escalated:
            self.counts["escalated"] += 1
        seconds = record.decision_s
        if seconds is not None:
            self.durations.append(seconds)

    def values(self, *, timed: bool = True) -> dict[str, Any]:
        fields = ("requested", "approved", "modified", "rejected", "timed_out", "pending", "escalated")
        out: dict[str, Any] = {name: self.counts.get(name, 0) for name in fields}
        if timed:
            out["median_decision_s"] = statistics.median(self.durations) if self.durations else None
            out["p95_decision_s"] = percentile(self.durations, 0.95)
        return out

    @property
    def ended(self) -> int:
        return self.counts["requested"] - self.counts.get("pending", 0)


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def window_start(now: dt.datetime, days: int) -> dt.datetime:
    """The start (UTC midnight, naive) of the report's window: the last ``days`` UTC days, today included."""
    today = (_utc(now, "now", required=True) or now).date()
    return dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time())


# --------------------------------------------------------------------------------------------------------------------
# Suggestions


def _features(arguments: Mapping[str, Any] | None) -> dict[str, float]:
    """The numbers a condition could compare: top-level numeric arguments and the lengths of top-level lists."""
    found: dict[str, float] = {}
    if arguments is None:
        return found
    for key, value in arguments.items():
        if not isinstance(key, str) or not _FEATURE_NAME.match(key):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[key] = float(value)
        elif isinstance(value, list):
            found[f"len({key})"] = float(len(value))
    return found


def _nice_below(value: float) -> float | None:
    """The largest of 0, 1, 2, 5, 10, 20, 50, ... strictly below ``value`` (None when ``value`` is 0 or less)."""
    if value <= 0:
        return None
    best = 0.0
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            candidate = mantissa * 10.0**exponent
            if candidate >= value:
                return best
            best = candidate
        exponent += 1


def percent(share: float) -> str:
    """A share as a percentage with one decimal where it matters: 99.7 % is not shown as 100 %."""
    text = f"{share:.1%}"
    return text.replace(".0%", "%")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


@dataclass(frozen=True)
class _Threshold:
    feature: str
    value: float
    spared: int  # ended requests at or below the threshold: those the new condition would not have asked


def _separating_threshold(records: list[_Record]) -> _Threshold | None:
    """A numeric argument under which no request was rejected or modified, and the round threshold that spares the
    most requests while still asking for every rejected or modified one (None when no argument does)."""
    ended = [r for r in records if r.outcome != ApprovalStatus.PENDING]
    bad = [r.outcome in _TROUBLED for r in ended]
    if not any(bad):
        return None
    features = [_features(r.arguments) for r in ended]
    common = set(features[0])
    for found in features[1:]:
        common &= set(found)
    best: _Threshold | None = None
    for name in sorted(common):
        threshold = _nice_below(min(found[name] for found, is_bad in zip(features, bad, strict=True) if is_bad))
        if threshold is None:
            continue
        spared = sum(1 for found in features if found[name] <= threshold)
        if spared and (best is None or spared > best.spared):
            best = _Threshold(name, threshold, spared)
    return best


def _condition(old: str | None, threshold: _Threshold) -> str:
    new = f"{threshold.feature} > {_number(threshold.value)}"
    if old is None:
        return new
    # "amount > 100" raised to "amount > 500" reads better than "(amount > 100) and amount > 500".
    same = re.fullmatch(rf"\s*{re.escape(threshold.feature)}\s*>=?\s*(-?\d+(?:\.\d+)?)\s*", old)
    if same is not None and float(same.group(1)) <= threshold.value:
        return new
    return f"({old}) and {new}"


def _suggest(
    policy: GatePolicy, by_action: dict[str, list[_Record]], tallies: dict[str, _Tally]
) -> tuple[list[Suggestion], GatePolicy]:
    suggestions: list[Suggestion] = []
    actions = {name: entry.model_dump(mode="json", exclude_defaults=True) for name, entry in policy.actions.items()}
    for action in sorted(by_action):
        records = by_action[action]
        tally = tallies[action]
        listed = policy.actions.get(action)
        red = any(r.tier == RiskTier.RED for r in records) or (listed is not None and listed.tier == RiskTier.RED)
        ended = tally.ended
        counts = tally.counts
        unchanged = counts.get("approved", 0) / ended if ended else None
        troubled = (counts.get("rejected", 0) + counts.get("modified", 0)) / ended if ended else None
        tier: RecordTier = "red" if red else "yellow"
        if red and (listed is None or listed.tier != RiskTier.RED):
            approvals = max(r.approvals_required for r in records if r.tier == RiskTier.RED)
            actions[action] = {"tier": "red", "approvals": approvals} if approvals > 1 else {"tier": "red"}
            suggestions.append(
                Suggestion(
                    action=action,
                    kind="list_red",
                    tier="red",
                    reason="requested as red although the policy does not list it red (a tier set on the gate): "
                    "listing it keeps it red if the gate's override goes",
                    requests=counts["requested"],
                )
            )
        if ended < MIN_REQUESTS:
            continue
        assert unchanged is not None and troubled is not None
        if troubled >= FIX_SHARE:
            suggestions.append(
                Suggestion(
                    action=action,
                    kind="fix_prompt_or_policy",
                    tier=tier,
                    reason=f"rejected or modified in {percent(troubled)} of {ended} requests (at least "
                    f"{percent(FIX_SHARE)}): the agent proposes it wrongly often; fix its prompt or the policy",
                    requests=ended,
                    approved_unchanged_share=unchanged,
                    rejected_or_modified_share=troubled,
                )
            )
        if red or unchanged < APPROVE_SHARE:
            continue  # red always asks: never suggested lower
        threshold = _separating_threshold(records)
        if threshold is not None:
            condition = _condition(listed.when if listed is not None else None, threshold)
            actions[action] = {"tier": "yellow", "when": condition}
            suggestions.append(
                Suggestion(
                    action=action,
                    kind="raise_threshold",
                    tier="yellow",
                    condition=condition,
                    reason=f"approved unchanged in {percent(unchanged)} of {ended} requests; every rejection or "
                    f"modification had {threshold.feature} above {_number(threshold.value)}, and "
                    f"{threshold.spared} requests were at or below it",
                    requests=ended,
                    approved_unchanged_share=unchanged,
                    rejected_or_modified_share=troubled,
                )
            )
        else:
            actions[action] = {"tier": "green"}
            if not troubled:
                why = "never rejected or modified"
            elif all(r.arguments is None for r in records):
                why = "the records carry no arguments to find a threshold in"
            else:
                why = "no numeric argument separates the few rejected or modified ones"
            suggestions.append(
                Suggestion(
                    action=action,
                    kind="green",
                    tier="yellow",
                    reason=f"approved unchanged in {percent(unchanged)} of {ended} requests ({why})",
                    requests=ended,
                    approved_unchanged_share=unchanged,
                    rejected_or_modified_share=troubled,
                )
            )
    data = policy.model_dump(mode="json")
    data["actions"] = actions
    return suggestions, GatePolicy.model_validate(data)


# --------------------------------------------------------------------------------------------------------------------
# The report


def build_report(
    records: Iterable[Any],
    *,
    budget_per_day: int = 10,
    policy: GatePolicy | None = None,
    now: dt.datetime | None = None,
    days: int = 30,
) -> dict[str, Any]:
    """The fatigue report over the last ``days`` UTC days of ``records`` (approval-request dicts), as JSON values.

    ``policy`` is the policy in force (default: the default policy), the base of the suggested one. Records that
    cannot be counted are skipped, each with its reason in ``skipped``; records outside the window are counted in
    ``outside_window``. Raises ValueError for a ``days`` or ``budget_per_day`` out of range."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer from 1 to {MAX_DAYS}, not {days!r}")
    if isinstance(budget_per_day, bool) or not isinstance(budget_per_day, int) or budget_per_day < 1:
        raise ValueError(f"budget_per_day must be a positive integer, not {budget_per_day!r}")
    policy = policy if policy is not None else GatePolicy()
    end = _utc(now, "now", required=False) or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = window_start(end, days)

    kept: list[_Record] = []
    skipped: list[Skipped] = []
    skipped_count = outside = 0
    for index, raw in enumerate(records):
        try:
            record = _record(raw)
        except RecordError as error:
            skipped_count += 1
            if len(skipped) < SKIPPED_LISTED:
                ident = raw.get("id") if isinstance(raw, Mapping) else None
                skipped.append(Skipped(index=index, id=ident if isinstance(ident, str) else None, reason=str(error)))
            continue
        if not start <= record.created_at <= end:
            outside += 1
            continue
        kept.append(record)

    totals, by_tier = _Tally(), {tier: _Tally() for tier in _TIERS}
    by_action: dict[str, list[_Record]] = defaultdict(list)
    action_tallies: dict[str, _Tally] = defaultdict(_Tally)
    by_day: dict[dt.date, _Tally] = defaultdict(_Tally)
    cells: dict[tuple[dt.date, str, str], _Tally] = defaultdict(_Tally)
    for record in kept:
        day = record.created_at.date()
        for tally in (
            totals,
            by_tier[record.tier],
            action_tallies[record.action],
            by_day[day],
            cells[(day, record.action, record.tier)],
        ):
            tally.add(record)
        by_action[record.action].append(record)

    suggestions, suggested = _suggest(policy, by_action, action_tallies)

    asked_by_day: dict[dt.date, int] = defaultdict(int)
    red_asked = unasked_bad = 0
    for record in kept:
        # A red request was red on the gate (or in the policy): it asks under any policy.
        asks = record.tier == RiskTier.RED or decide(suggested, record.action, record.arguments).asks
        if asks:
            asked_by_day[record.created_at.date()] += 1
            red_asked += record.tier == RiskTier.RED
        elif record.outcome in _TROUBLED:
            unasked_bad += 1

    first = min((r.created_at.date() for r in kept), default=end.date())
    all_days = [start.date() + dt.timedelta(days=n) for n in range(days)]
    covered = [day for day in all_days if day >= first]
    day_rows = [
        DayRow(
            date=day,
            budget_share=by_day[day].counts["requested"] / budget_per_day if day in by_day else 0.0,
            suggested_interventions=asked_by_day.get(day, 0),
            **(by_day[day].values(timed=False) if day in by_day else {}),
        )
        for day in all_days
    ]
    action_rows = [
        ActionRow(
            action=action,
            tier="red" if any(r.tier == RiskTier.RED for r in by_action[action]) else "yellow",
            approved_unchanged_share=(tally.counts.get("approved", 0) / tally.ended) if tally.ended else None,
            **tally.values(),
        )
        for action, tally in sorted(action_tallies.items(), key=lambda item: (-item[1].counts["requested"], item[0]))
    ]
    suggested_total = sum(asked_by_day.values())
    utc = dt.timezone.utc
    report = FatigueReport(
        generated_at=end.replace(tzinfo=utc),
        window_start=start.replace(tzinfo=utc),
        window_end=end.replace(tzinfo=utc),
        days=days,
        budget_per_day=budget_per_day,
        totals=Timed(**totals.values()),
        by_action=action_rows,
        by_tier=[TierRow(tier=tier, **by_tier[tier].values()) for tier in _TIERS],
        by_day=day_rows,
        cells=[
            Cell(date=day, action=action, tier=tier, **tally.values(timed=False))
            for (day, action, tier), tally in sorted(cells.items())
        ],
        suggestions=suggestions,
        suggested_policy=_policy_json(suggested),
        projection=Projection(
            days=len(covered),
            recorded_per_day=len(kept) / len(covered) if covered else 0.0,
            suggested_per_day=suggested_total / len(covered) if covered else 0.0,
            suggested_max_day=max(asked_by_day.values(), default=0),
            red_asked=red_asked,
            unasked_rejected_or_modified=unasked_bad,
            within_budget=max(asked_by_day.values(), default=0) <= budget_per_day,
        ),
        outside_window=outside,
        skipped_count=skipped_count,
        skipped=skipped,
    )
    return report.to_json()


def _policy_json(policy: GatePolicy) -> dict[str, Any]:
    """The policy as a file would hold it: only what differs from the defaults, with its version."""
    data = policy.model_dump(mode="json", exclude_defaults=True)
    data["actions"] = {
        name: entry.model_dump(mode="json", exclude_defaults=True) for name, entry in policy.actions.items()
    }
    return {"version": policy.version, **data}


def suggested_policy(report: Mapping[str, Any]) -> GatePolicy:
    """The suggested policy of a report (its JSON form), validated."""
    return GatePolicy.model_validate(report["suggested_policy"])

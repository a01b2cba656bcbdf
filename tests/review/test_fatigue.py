"""The approval-fatigue report: counts, timings, the budget, suggestions, the suggested policy's interventions, and
records that cannot be counted."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from spanguard.instrumentation.gate_policy import GatePolicy, decide
from spanguard.review.fatigue import FatigueReport, build_report, percentile, suggested_policy, window_start

NOW = dt.datetime(2026, 3, 10, 18, 0)
_ids = itertools.count()


def record(
    action="issue_refund",
    *,
    tier="yellow",
    status="approved",
    at=NOW - dt.timedelta(hours=1),
    after=60.0,
    modified=False,
    escalated=False,
    arguments=None,
    approvals=1,
    **extra,
):
    """One record as the approvals store's history() gives it."""
    decided = None if status == "pending" else at + dt.timedelta(seconds=after)
    return {
        "id": f"apr_{next(_ids):022d}",
        "action": action,
        "tier": tier,
        "status": status,
        "approvals_required": approvals,
        "created_at": at,
        "decided_at": decided,
        "escalated_at": at + dt.timedelta(minutes=15) if escalated else None,
        "modified": modified,
        **({"arguments": arguments} if arguments is not None else {}),
        **extra,
    }


def report(records, **kwargs):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("days", 7)
    return build_report(records, **kwargs)


def by(rows, key, value):
    (row,) = [r for r in rows if r[key] == value]
    return row


def test_counts_per_action_tier_and_day():
    yesterday = NOW - dt.timedelta(days=1)
    records = [
        record("issue_refund", status="approved"),
        record("issue_refund", status="approved", modified=True),  # two approvers, one of them edited: modified
        record("issue_refund", status="rejected", at=yesterday),
        record("send_email", status="modified", escalated=True),
        record("send_email", status="timed_out", after=4 * 3600),
        record("delete_account", tier="red", status="pending"),
        record("delete_account", tier="red", status="approved", approvals=2, at=yesterday),
    ]
    out = report(records)
    assert out["totals"] | {"median_decision_s": None, "p95_decision_s": None} == {
        "requested": 7,
        "approved": 2,
        "modified": 2,
        "rejected": 1,
        "timed_out": 1,
        "pending": 1,
        "escalated": 1,
        "median_decision_s": None,
        "p95_decision_s": None,
    }
    refund = by(out["by_action"], "action", "issue_refund")
    assert (refund["requested"], refund["approved"], refund["modified"], refund["rejected"]) == (3, 1, 1, 1)
    assert refund["tier"] == "yellow" and refund["approved_unchanged_share"] == pytest.approx(1 / 3)
    assert by(out["by_action"], "action", "delete_account")["tier"] == "red"
    assert by(out["by_tier"], "tier", "red")["requested"] == 2
    assert by(out["by_tier"], "tier", "yellow")["requested"] == 5
    days = {row["date"]: row["requested"] for row in out["by_day"]}
    assert len(days) == 7 and days["2026-03-10"] == 5 and days["2026-03-09"] == 2 and days["2026-03-04"] == 0
    cell = by(
        [c for c in out["cells"] if c["date"] == "2026-03-09"], "action", "delete_account"
    )  # the finest grain: a day, an action, a tier
    assert (cell["tier"], cell["requested"], cell["approved"]) == ("red", 1, 1)
    # The first action is the one asked most.
    assert out["by_action"][0]["action"] == "issue_refund"


def test_median_and_p95_time_to_decision_count_only_a_persons_decisions():
    records = [record(after=float(seconds)) for seconds in range(1, 101)]  # 1 s .. 100 s
    records.append(record(status="timed_out", after=14_400))  # no person decided: not a decision time
    records.append(record(status="pending"))
    totals = report(records)["totals"]
    assert totals["median_decision_s"] == pytest.approx(50.5)
    assert totals["p95_decision_s"] == pytest.approx(95.0)  # nearest rank: the 95th of 100
    assert percentile([], 0.95) is None
    assert percentile([7.0], 0.95) == 7.0
    assert report([record(status="pending")])["totals"]["median_decision_s"] is None


def test_budget_share_is_each_days_requests_over_the_budget():
    records = [record() for _ in range(15)] + [record(at=NOW - dt.timedelta(days=2)) for _ in range(3)]
    out = report(records, budget_per_day=10)
    shares = {row["date"]: row["budget_share"] for row in out["by_day"]}
    assert shares["2026-03-10"] == pytest.approx(1.5)
    assert shares["2026-03-08"] == pytest.approx(0.3)
    assert shares["2026-03-09"] == 0.0
    assert report(records, budget_per_day=30)["by_day"][-1]["budget_share"] == pytest.approx(0.5)
    assert out["budget_per_day"] == 10


def test_an_action_always_approved_unchanged_without_a_numeric_argument_is_suggested_green():
    records = [record("lookup_order", arguments={"order_id": f"A-{n}"}) for n in range(25)]
    out = report(records)
    (suggestion,) = out["suggestions"]
    assert suggestion["kind"] == "green" and suggestion["action"] == "lookup_order"
    assert "never rejected or modified" in suggestion["reason"]
    assert out["suggested_policy"]["actions"]["lookup_order"] == {"tier": "green"}
    assert out["projection"]["suggested_per_day"] == 0.0
    assert out["projection"]["recorded_per_day"] == 25.0  # all on one day: the days before had no record


def test_a_numeric_argument_that_separates_the_rejections_gives_a_round_threshold():
    records = [record(arguments={"amount": 5.0 + n * 7, "order_id": "A"}) for n in range(60)]  # 5 .. 418
    records += [
        record(status="rejected", arguments={"amount": 730.0}),
        record(status="modified", arguments={"amount": 512.5}),
    ]
    out = report(records)
    (suggestion,) = out["suggestions"]
    assert suggestion["kind"] == "raise_threshold"
    assert suggestion["condition"] == "amount > 500"  # the round number just below the smallest troubled amount
    assert out["suggested_policy"]["actions"]["issue_refund"] == {"tier": "yellow", "when": "amount > 500"}
    projection = out["projection"]
    assert projection["suggested_max_day"] == 2  # the two troubled ones are still asked
    assert projection["unasked_rejected_or_modified"] == 0


def test_list_lengths_are_arguments_too():
    records = [record("send_email", arguments={"recipients": ["a"] * (1 + n % 9)}) for n in range(40)]
    records.append(record("send_email", status="rejected", arguments={"recipients": ["a"] * 80}))
    (suggestion,) = report(records)["suggestions"]
    assert suggestion["condition"] == "len(recipients) > 50"


def test_a_raised_threshold_replaces_the_policys_own_and_joins_any_other_condition():
    policy = GatePolicy.model_validate({"actions": {"issue_refund": {"tier": "yellow", "when": "amount > 100"}}})
    records = [record(arguments={"amount": 101.0 + n}) for n in range(30)]
    records.append(record(status="rejected", arguments={"amount": 900.0}))
    assert report(records, policy=policy)["suggestions"][0]["condition"] == "amount > 500"
    policy = GatePolicy.model_validate({"actions": {"issue_refund": {"tier": "yellow", "when": "currency != 'EUR'"}}})
    condition = report(records, policy=policy)["suggestions"][0]["condition"]
    assert condition == "(currency != 'EUR') and amount > 500"


def test_an_action_often_rejected_or_modified_is_named_for_a_prompt_or_policy_fix():
    records = [record("send_email") for _ in range(16)]
    records += [record("send_email", status="rejected") for _ in range(3)]
    records += [record("send_email", status="modified") for _ in range(2)]
    out = report(records)
    (suggestion,) = out["suggestions"]
    assert suggestion["kind"] == "fix_prompt_or_policy"
    assert suggestion["rejected_or_modified_share"] == pytest.approx(5 / 21)
    assert "send_email" not in out["suggested_policy"].get("actions", {})  # a fix, not a policy change


def test_fewer_than_twenty_ended_requests_get_no_suggestion():
    records = [record("lookup_order") for _ in range(19)] + [record("lookup_order", status="pending")]
    assert report(records)["suggestions"] == []


def test_time_outs_count_against_nearly_always_approved():
    records = [record("lookup_order") for _ in range(19)] + [record("lookup_order", status="timed_out")] * 2
    assert report(records)["suggestions"] == []  # 19 of 21 ended approved: below 95 %
    assert report(records[:-1])["suggestions"][0]["kind"] == "green"  # 19 of 20: 95 %


def test_a_red_action_is_never_suggested_below_red_and_always_counts_as_asking():
    records = [record("delete_account", tier="red", approvals=2, arguments={"count": 1}) for _ in range(50)]
    out = report(records)
    assert [s["kind"] for s in out["suggestions"]] == ["list_red"]  # red on the gate: made explicit, not lowered
    assert out["suggested_policy"]["actions"]["delete_account"] == {"tier": "red", "approvals": 2}
    assert out["projection"]["red_asked"] == 50 and out["projection"]["suggested_per_day"] == 50.0
    assert not out["projection"]["within_budget"]
    policy = suggested_policy(out)
    assert decide(policy, "delete_account", {"count": 1}).asks


def test_a_policy_red_action_recorded_yellow_stays_red():
    policy = GatePolicy.model_validate({"actions": {"pay_new_payee": "red"}})
    records = [record("pay_new_payee") for _ in range(30)]
    out = report(records, policy=policy)
    assert out["suggestions"] == []
    assert out["suggested_policy"]["actions"]["pay_new_payee"] == {"tier": "red"}
    assert out["projection"]["suggested_per_day"] == 30.0


def test_suggested_policy_interventions_are_decide_rerun_on_each_record():
    refunds = [record(arguments={"amount": float(n)}, at=NOW - dt.timedelta(days=n % 3)) for n in range(1, 91)]
    refunds.append(record(status="modified", arguments={"amount": 75.0}))
    without_arguments = [record("send_email") for _ in range(5)]  # few requests: no suggestion, still asks
    out = report(refunds + without_arguments)
    policy = suggested_policy(out)
    assert out["suggested_policy"]["actions"]["issue_refund"]["when"] == "amount > 50"
    asked = {}
    for r in refunds + without_arguments:
        if decide(policy, r["action"], r.get("arguments")).asks:
            day = r["created_at"].date().isoformat()
            asked[day] = asked.get(day, 0) + 1
    assert {row["date"]: row["suggested_interventions"] for row in out["by_day"] if row["requested"]} == {
        day: asked.get(day, 0) for day in ("2026-03-08", "2026-03-09", "2026-03-10")
    }
    assert out["projection"]["suggested_per_day"] == pytest.approx(sum(asked.values()) / 3)
    assert out["projection"]["suggested_max_day"] == max(asked.values())


def test_a_green_suggestion_that_lets_a_rejection_through_says_so():
    records = [record("lookup_order", arguments={"q": "x"}) for _ in range(99)]
    records.append(record("lookup_order", status="rejected", arguments={"q": "y"}))
    out = report(records)
    (suggestion,) = out["suggestions"]
    assert suggestion["kind"] == "green" and "no numeric argument separates" in suggestion["reason"]
    assert out["projection"]["unasked_rejected_or_modified"] == 1
    bare = [{k: v for k, v in r.items() if k != "arguments"} for r in records]
    assert "the records carry no arguments" in report(bare)["suggestions"][0]["reason"]


def test_an_empty_history_gives_an_empty_report_with_every_day():
    out = report([], days=30)
    assert out["totals"]["requested"] == 0 and out["totals"]["median_decision_s"] is None
    assert len(out["by_day"]) == 30 and all(row["requested"] == 0 for row in out["by_day"])
    assert out["by_action"] == [] and out["cells"] == [] and out["suggestions"] == []
    assert out["projection"]["suggested_per_day"] == 0.0 and out["projection"]["within_budget"]
    assert out["suggested_policy"] == {"version": 1, "actions": {}}
    assert FatigueReport.model_validate(out).to_json() == out  # the CLI reads the service's answer back


def test_the_window_is_whole_utc_days_and_times_with_offsets_are_converted():
    assert window_start(NOW, 7) == dt.datetime(2026, 3, 4)
    assert window_start(dt.datetime(2026, 3, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=3))), 1) == dt.datetime(
        2026, 3, 9
    )
    plus_two = dt.timezone(dt.timedelta(hours=2))
    records = [
        record(at=dt.datetime(2026, 3, 10, 1, 30, tzinfo=plus_two)),  # 23:30 UTC on the 9th
        record(at=dt.datetime(2026, 3, 10, 8)) | {"created_at": "2026-03-10T08:00:00Z"},  # ISO strings are read too
        record(at=dt.datetime(2026, 3, 3, 23, 59)),  # before the window
        record(at=NOW + dt.timedelta(hours=1)),  # after it
    ]
    out = report(records)
    assert {row["date"]: row["requested"] for row in out["by_day"] if row["requested"]} == {
        "2026-03-09": 1,
        "2026-03-10": 1,
    }
    assert out["outside_window"] == 2
    assert out["window_start"] == "2026-03-04T00:00:00Z" and out["window_end"] == "2026-03-10T18:00:00Z"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "id is missing"),
        ({"id": 7}, "id must be a non-empty string"),
        ({"action": ""}, "action must be a non-empty string"),
        ({"tier": "green"}, "tier must be yellow or red, not 'green'"),
        ({"status": "claimed"}, "status must be one of pending, approved, rejected, modified, timed_out"),
        ({"approvals_required": 9}, "approvals_required must be an integer from 1 to 5"),
        ({"approvals_required": True}, "approvals_required must be an integer from 1 to 5"),
        ({"modified": "yes"}, "modified must be true or false"),
        ({"arguments": ["amount", 5]}, "arguments must be an object, not list"),
        ({"created_at": "yesterday"}, "created_at is not an ISO 8601 time: 'yesterday'"),
        ({"created_at": 1741600000}, "created_at is not a time but int"),
        ({"decided_at": None}, "decided_at is missing"),
        ({"decided_at": NOW - dt.timedelta(days=3)}, "decided_at is before created_at"),
    ],
)
def test_a_record_with_a_missing_or_odd_field_is_skipped_with_its_reason(change, reason):
    bad = record() | change
    out = report([record(), bad, "not a record"])
    assert out["totals"]["requested"] == 1
    assert out["skipped_count"] == 2
    first, second = out["skipped"]
    assert first["index"] == 1 and reason in first["reason"]
    assert first["id"] == (bad["id"] if isinstance(bad["id"], str) else None)
    assert second == {"index": 2, "id": None, "reason": "the record is not an object but str"}


def test_optional_fields_may_be_absent():
    minimal = {"id": "apr_1", "action": "a", "tier": "red", "status": "pending", "created_at": NOW}
    out = report([minimal])
    assert out["skipped_count"] == 0 and out["totals"]["pending"] == 1


def test_skipped_records_are_all_counted_but_only_the_first_hundred_named():
    out = report([{"junk": n} for n in range(250)])
    assert out["skipped_count"] == 250 and len(out["skipped"]) == 100


def test_arguments_never_reach_the_report_but_through_the_threshold():
    secret = "4111 1111 1111 1111"
    records = [record(arguments={"amount": 1.0, "card": secret}) for _ in range(30)]
    assert secret not in str(report(records))


@pytest.mark.parametrize(("kwargs", "message"), [({"days": 0}, "days"), ({"budget_per_day": 0}, "budget_per_day")])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_report([], **kwargs)

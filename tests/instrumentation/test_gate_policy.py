"""Approval-gate policies: which calls ask a person, validated when built, deciding fail closed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from spanguard.instrumentation.gate_policy import GatePolicy, decide

POLICY = GatePolicy.model_validate(
    {
        "default_tier": "yellow",
        "budget_per_day": 10,
        "tiers": {
            "yellow": {"soft_timeout": "10m", "hard_timeout": "1h", "on_hard_timeout": "proceed"},
            "red": {"soft_timeout": 900, "hard_timeout": "4h"},
        },
        "actions": {
            "issue_refund": {"tier": "yellow", "when": "amount > 100"},
            "send_email": {"tier": "yellow", "when": "len(recipients) > 50"},
            "delete_account": {"tier": "red", "approvals": 2},
            "lookup_order": "green",
        },
    }
)


@pytest.mark.parametrize(
    ("action", "arguments", "tier", "asks"),
    [
        ("issue_refund", {"amount": 50}, "yellow", False),
        ("issue_refund", {"amount": 500}, "yellow", True),
        ("send_email", {"recipients": ["a"] * 10}, "yellow", False),
        ("send_email", {"recipients": ["a"] * 51}, "yellow", True),
        ("delete_account", {"user": "u-1"}, "red", True),
        ("lookup_order", {"order_id": "A-1"}, "green", False),
        ("export_data", {}, "yellow", True),  # not listed: the default tier, no condition: asks
    ],
)
def test_a_call_asks_by_its_tier_and_condition(action: str, arguments: dict, tier: str, asks: bool) -> None:
    decision = decide(POLICY, action, arguments)
    assert (decision.tier, decision.asks) == (tier, asks)


@pytest.mark.parametrize("arguments", [{"amt": 500}, {"amount": "a lot"}, "not an object", None, [1, 2]])
def test_arguments_the_condition_cannot_judge_ask_a_person(arguments: Any) -> None:
    decision = decide(POLICY, "issue_refund", arguments)
    assert decision.asks
    assert any("could not be told" in reason or "not an object" in reason for reason in decision.reasons)


def test_a_red_action_needs_its_approvers_and_never_proceeds_at_the_hard_timeout() -> None:
    decision = decide(POLICY, "delete_account", {})
    assert (decision.approvals, decision.on_hard_timeout) == (2, "deny")
    assert (decision.soft_timeout_s, decision.hard_timeout_s) == (900.0, 14400.0)
    yellow = decide(POLICY, "issue_refund", {"amount": 500})
    assert (yellow.approvals, yellow.on_hard_timeout, yellow.soft_timeout_s) == (1, "proceed", 600.0)


def test_the_gate_s_tier_overrides_the_policy() -> None:
    decision = decide(POLICY, "lookup_order", {}, tier="red")
    assert (decision.tier, decision.asks, decision.on_hard_timeout) == ("red", True, "deny")
    assert decision.reasons == ("tier red set on the gate",)
    # An override to yellow ignores the action's condition: the gate asked to be asked.
    assert decide(POLICY, "issue_refund", {"amount": 1}, tier="yellow").asks


def test_the_defaults_are_the_seed_s() -> None:
    policy = GatePolicy()
    decision = decide(policy, "anything", {})
    assert (decision.tier, decision.asks) == ("yellow", True)
    assert (decision.soft_timeout_s, decision.hard_timeout_s, decision.on_hard_timeout) == (900.0, 14400.0, "deny")
    assert policy.budget_per_day == 10


@pytest.mark.parametrize(
    ("policy", "where"),
    [
        ({"actions": {"issue_refund": {"tier": "yellow", "when": "open('x')"}}}, ("actions", "issue_refund", "when")),
        ({"actions": {"issue_refund": {"tier": "purple"}}}, ("actions", "issue_refund", "tier")),
        ({"actions": {"issue_refund": "purple"}}, ("actions", "issue_refund", "tier")),
        ({"actions": {"issue_refund": {"tier": "red", "when": "amount > 1"}}}, ("actions", "issue_refund")),
        ({"actions": {"issue_refund": {"tier": "yellow", "approvals": 2}}}, ("actions", "issue_refund")),
        ({"actions": {"issue_refund": {"tier": "red", "approvals": 0}}}, ("actions", "issue_refund", "approvals")),
        ({"actions": {"issue_refund": {"tier": "red", "condition": "x"}}}, ("actions", "issue_refund", "condition")),
        ({"tiers": {"red": {"on_hard_timeout": "proceed"}}}, ("tiers",)),
        ({"tiers": {"yellow": {"soft_timeout": "2h", "hard_timeout": "1h"}}}, ("tiers", "yellow")),
        ({"tiers": {"yellow": {"soft_timeout": "soon"}}}, ("tiers", "yellow", "soft_timeout")),
        ({"tiers": {"green": {}}}, ("tiers", "green", "[key]")),
        ({"budget_per_day": 0}, ("budget_per_day",)),
        ({"version": 2}, ("version",)),
        ({"unknown": 1}, ("unknown",)),
    ],
)
def test_a_bad_policy_is_refused_with_the_path_of_what_is_wrong(policy: dict, where: tuple) -> None:
    with pytest.raises(ValidationError) as info:
        GatePolicy.model_validate(policy)
    assert any(tuple(error["loc"])[: len(where)] == where for error in info.value.errors()), info.value.errors()

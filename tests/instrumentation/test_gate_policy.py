"""Approval-gate policies: which calls ask a person, validated when built, deciding fail closed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from spanguard.instrumentation.gate_policy import (
    POLICY_ENV,
    GatePolicy,
    decide,
    load_policy,
    policy_from_env,
    policy_from_mapping,
    policy_from_text,
)
from spanguard.yamlconfig import ConfigError

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


# --------------------------------------------------------------------------------------------------------------------
# Policy files (through spanguard.yamlconfig)

POLICY_FILE = """\
version: 1
default_tier: yellow
tiers:
  yellow: {soft_timeout: 10m, hard_timeout: 1h, on_hard_timeout: proceed}
actions:
  issue_refund:
    tier: yellow
    when: "amount > ${env:REFUND_LIMIT:-100}"
  delete_account: {tier: red, approvals: 2}
  lookup_order: green
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    return caught.value


def test_a_policy_file_loads_and_decides(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY_FILE), environ={})
    assert decide(policy, "issue_refund", {"amount": 150}).asks
    assert not decide(policy, "issue_refund", {"amount": 50}).asks
    assert decide(policy, "delete_account", {}).approvals == 2
    assert decide(policy, "issue_refund", {"amount": 150}).soft_timeout_s == 600.0
    assert not decide(policy, "lookup_order", {}).asks
    raised = load_policy(write(tmp_path, POLICY_FILE), environ={"REFUND_LIMIT": "500"})
    assert not decide(raised, "issue_refund", {"amount": 150}).asks


def test_an_empty_policy_file_is_the_default_policy(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "")) == GatePolicy()


def test_a_bad_condition_is_reported_at_its_file_line_column_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY_FILE.replace('"amount > ${env:REFUND_LIMIT:-100}"', "'amount >'"))
    error = refused(path)
    (problem,) = error.problems
    assert (problem.path, problem.line, problem.column) == ("actions.issue_refund.when", 8, 5)
    assert str(error).startswith(f"{path}:8:5: actions.issue_refund.when: condition 'amount >' ")


def test_an_unknown_key_in_a_policy_file_names_the_keys_it_takes(tmp_path: Path) -> None:
    error = refused(
        write(tmp_path, POLICY_FILE.replace("  lookup_order: green", "  lookup_order: {tier: green, if: x}"))
    )
    assert error.errors == [("actions.lookup_order.if", "unknown key 'if'; known keys: tier, when, approvals")]
    assert error.problems[0].line == 10


def test_a_red_tier_that_would_proceed_unapproved_is_refused(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "tiers:\n  red: {hard_timeout: 1h, on_hard_timeout: proceed}\n"))
    (problem,) = error.problems
    assert (problem.path, problem.line) == ("tiers", 1)
    assert "tiers.red.on_hard_timeout must be 'deny'" in problem.message


def test_every_problem_of_a_policy_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = "version: 2\nbudget_per_day: 0\nactions:\n  a: {tier: purple}\n  a: green\n"
    error = refused(write(tmp_path, text))
    assert [(p.line, p.path) for p in error.problems] == [
        (1, "version"),
        (2, "budget_per_day"),
        (4, "actions.a.tier"),
        (5, "actions.a"),
    ]
    assert "duplicate key 'a' (first defined at line 4, column 3)" in error.problems[3].message


def test_a_policy_file_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    error = refused(tmp_path / "missing.yaml")
    assert str(error).startswith(f"{tmp_path / 'missing.yaml'}: cannot read the gate policy")


def test_policy_text_and_mappings_are_refused_with_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^p\.yaml:1:29: actions\.x\.when: condition"):
        policy_from_text("actions: {x: {tier: yellow, when: 'open(1)'}}", source="p.yaml")
    with pytest.raises(ConfigError) as caught:
        policy_from_mapping({"actions": {"x": {"tier": "red", "approvals": 9}}})
    assert caught.value.errors[0][0] == "actions.x.approvals"
    assert policy_from_mapping({"actions": {"x": "green"}}).actions["x"].tier == "green"


def test_the_environment_names_the_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY_FILE)
    assert policy_from_env({POLICY_ENV: str(path)}).actions["delete_account"].approvals == 2
    assert policy_from_env({}) == GatePolicy()
    assert policy_from_env({POLICY_ENV: "  "}) == GatePolicy()


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "cannot read the gate policy"), ("actions: [a\n", "YAML syntax error"), ("tiers: {red: x}\n", "tiers.red")],
)
def test_a_policy_the_environment_names_but_that_cannot_be_used_raises_never_the_default(
    tmp_path: Path, text: str | None, expected: str
) -> None:
    path = tmp_path / "policy.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        policy_from_env({POLICY_ENV: str(path)})

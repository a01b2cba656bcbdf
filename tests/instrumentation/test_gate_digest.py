"""The argument digest an approval is bound to: the same call gives the same digest, any change another one."""

from __future__ import annotations

import pytest

from spanguard.instrumentation.gate_digest import DigestError, argument_digest

REFUND = {"order_id": "A-1002", "amount": 42.5, "items": [{"sku": "X1", "qty": 2}], "note": "caf\u00e9"}


def test_the_digest_does_not_depend_on_key_order_or_number_spelling() -> None:
    reordered = {"note": "caf\u00e9", "items": [{"qty": 2, "sku": "X1"}], "amount": 42.50, "order_id": "A-1002"}
    assert argument_digest("issue_refund", REFUND, "conv-1") == argument_digest("issue_refund", reordered, "conv-1")
    assert argument_digest("a", {"n": 1}) == argument_digest("a", {"n": 1.0})  # one JSON number
    assert argument_digest("a", {"xs": (1, 2)}) == argument_digest("a", {"xs": [1, 2]})


@pytest.mark.parametrize(
    ("action", "arguments", "session"),
    [
        ("issue_refund", {**REFUND, "amount": 42.51}, "conv-1"),
        ("issue_refund", {**REFUND, "items": [{"sku": "X1", "qty": 3}]}, "conv-1"),
        ("issue_refund", {**REFUND, "extra": None}, "conv-1"),
        ("send_email", REFUND, "conv-1"),
        ("issue_refund", REFUND, "conv-2"),
        ("issue_refund", REFUND, None),
    ],
)
def test_another_action_argument_or_session_gives_another_digest(action, arguments, session) -> None:
    assert argument_digest(action, arguments, session) != argument_digest("issue_refund", REFUND, "conv-1")


@pytest.mark.parametrize(
    "arguments",
    [
        {"amount": float("nan")},
        {"amount": float("inf")},
        {"big": 2**60},
        {1: "not a string key"},
        {"when": object()},
        {"deep": __import__("functools").reduce(lambda acc, _: [acc], range(5000), [])},
    ],
)
def test_arguments_that_are_not_json_values_have_no_digest(arguments) -> None:
    with pytest.raises(DigestError):
        argument_digest("issue_refund", arguments)


def test_the_action_and_arguments_are_checked() -> None:
    with pytest.raises(DigestError):
        argument_digest("", {})
    with pytest.raises(DigestError):
        argument_digest("issue_refund", ["not", "an", "object"])  # type: ignore[arg-type]

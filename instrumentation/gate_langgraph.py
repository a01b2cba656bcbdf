"""Approval gates for LangGraph (``pip install spanguard[langgraph]``): a gate is LangGraph's own ``interrupt``.

:func:`gate_interrupt` interrupts the graph with the approval request's id; :func:`decision_command` and
:func:`resume_command` resume it, and the decision is always checked with the review service, never taken from the
resume value. Behaviour: docs/gates.md ("Framework adapters").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from spanguard.instrumentation import gate
from spanguard.instrumentation.gate import (
    ApprovalUnavailable,
    Granted,
    Pending,
    await_approval,
    resume,
    submit,
    wait,
)
from spanguard.instrumentation.gate_digest import DigestError, argument_digest
from spanguard.instrumentation.gate_policy import Tier
from spanguard.instrumentation.gate_state import redact_for_review
from spanguard.instrumentation.session import current_session
from spanguard.semconv import APPROVAL_FINAL_STATUSES, GEN_AI_CONVERSATION_ID

try:
    from langgraph.config import get_config
    from langgraph.types import Command, Interrupt, interrupt
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "spanguard.instrumentation.gate_langgraph needs LangGraph: pip install 'spanguard[langgraph]'"
    ) from error

__all__ = [
    "APPROVAL_ID_KEY",
    "DecisionPending",
    "agate_interrupt",
    "decision_command",
    "gate_interrupt",
    "resume_command",
]

APPROVAL_ID_KEY: Final = "spanguard_approval_id"
"""The key of the approval id in a gate's interrupt value and in its resume value."""


class DecisionPending(Exception):
    """:func:`decision_command` found the request still waiting for a person (``wait=False``, or past its wait)."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"approval {approval_id} is still waiting for a person's decision")
        self.approval_id = approval_id


def _where() -> tuple[str, str]:
    """The running task's thread id and checkpoint namespace (which names the node and its task in this step)."""
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:
        raise RuntimeError("gate_interrupt must be called inside a LangGraph node or tool") from None
    return str(configurable.get("thread_id") or ""), str(configurable.get("checkpoint_ns") or "")


def _request_key(action: str, arguments: Mapping[str, Any], thread_id: str, namespace: str, key: str | None) -> str:
    """One key per gated call of one task of one thread: the node's re-run on resume finds the same request."""
    try:
        digest = argument_digest(action, arguments, current_session().get(GEN_AI_CONVERSATION_ID))
    except DigestError:
        digest = ""  # submit refuses these arguments itself, with the reason
    material = json.dumps(["langgraph", thread_id, namespace, digest, key or ""]).encode()
    return f"langgraph:{hashlib.sha256(material).hexdigest()}"


def _interrupt_value(pending: Pending) -> dict[str, Any]:
    """What the graph's caller sees: the request's id and what it asks, the arguments redacted as reviewers see them."""
    shown: Any = pending.arguments
    if gate.redacting():  # SPANGUARD_REDACT=false shows reviewers the arguments as they are: here too
        try:
            shown = redact_for_review({"arguments": pending.arguments}).get("arguments")
        except Exception:  # the value is kept in the checkpointer and shown to the graph's caller: nothing unredacted
            shown = None
    return {
        APPROVAL_ID_KEY: pending.approval_id,
        "action": pending.action,
        "arguments": shown if isinstance(shown, dict) else {},
        "tier": pending.decision.tier,
        "reasons": list(pending.decision.reasons),
        "approvals_required": pending.decision.approvals,
    }


def _checked(pending: Pending, resumed_with: Any) -> None:
    """The resume value must name this gate's request; what it says of the decision is not trusted."""
    named = resumed_with.get(APPROVAL_ID_KEY) if isinstance(resumed_with, Mapping) else None
    if named != pending.approval_id:
        raise ApprovalUnavailable(
            f"the graph was resumed with a value that is not spanguard's decision on {pending.approval_id}; resume "
            "it with decision_command()",
            approval_id=pending.approval_id,
            action=pending.action,
        )


def _submit(action: str, arguments: Mapping[str, Any], tier: Tier | None, key: str | None) -> Pending | Granted:
    thread_id, namespace = _where()
    return submit(
        action,
        arguments,
        tier=tier,
        context={"framework": "langgraph", "thread_id": thread_id, "checkpoint_ns": namespace},
        app_state={"kind": "langgraph", "thread_id": thread_id, "checkpoint_ns": namespace},
        request_key=_request_key(action, arguments, thread_id, namespace, key),
    )


def gate_interrupt(
    action: str, arguments: Mapping[str, Any], *, tier: Tier | None = None, key: str | None = None
) -> Granted:
    """Gate a call inside a LangGraph node or tool: the grant to run it, or the :class:`ApprovalError` of its outcome.

    When a person must decide, this interrupts the graph (``{"spanguard_approval_id": ..., "action": ...,
    "arguments": <redacted>, "tier": ...}``) and returns only after it is resumed, once the review service confirms
    the decision; resumed before a decision, it waits for it. ``key`` tells apart two gates of the same call in one
    node.
    """
    outcome = _submit(action, arguments, tier, key)
    if isinstance(outcome, Granted):
        return outcome
    _checked(outcome, interrupt(_interrupt_value(outcome)))
    return wait(outcome)


async def agate_interrupt(
    action: str, arguments: Mapping[str, Any], *, tier: Tier | None = None, key: str | None = None
) -> Granted:
    """:func:`gate_interrupt` for async nodes and tools (the request and the wait off the event loop)."""
    outcome = await asyncio.to_thread(_submit, action, arguments, tier, key)
    if isinstance(outcome, Granted):
        return outcome
    _checked(outcome, interrupt(_interrupt_value(outcome)))
    return await await_approval(outcome)


def _resume_value(approval_id: str, *, wait: bool) -> dict[str, Any]:
    status = resume(approval_id, wait=wait).outcome
    if status not in APPROVAL_FINAL_STATUSES:
        raise DecisionPending(approval_id)
    return {APPROVAL_ID_KEY: approval_id, "status": status}


def decision_command(approval_id: str, *, wait: bool = True, interrupt_id: str | None = None) -> Command:
    """``Command(resume=...)`` carrying the decision on ``approval_id``, waiting for it (long poll) with ``wait``.

    ``interrupt_id`` addresses one interrupt when several are pending in the thread; :class:`DecisionPending` when
    there is no decision yet.
    """
    value = _resume_value(approval_id, wait=wait)
    return Command(resume={interrupt_id: value} if interrupt_id else value)


def resume_command(interrupts: Iterable[Interrupt], *, wait: bool = True) -> Command:
    """``Command(resume={interrupt id: decision})`` for every spanguard gate among ``interrupts`` (a result's
    ``__interrupt__``), waiting for each decision with ``wait``; ValueError when none of them is a spanguard gate."""
    answers: dict[str, Any] = {}
    for pending in interrupts:
        value = getattr(pending, "value", None)
        approval_id = value.get(APPROVAL_ID_KEY) if isinstance(value, Mapping) else None
        if isinstance(approval_id, str):
            answers[pending.id] = _resume_value(approval_id, wait=wait)
    if not answers:
        raise ValueError("none of these interrupts is a spanguard approval gate")
    return Command(resume=answers)

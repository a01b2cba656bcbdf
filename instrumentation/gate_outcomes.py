"""What a gated call ends in: the grant to run it, the request it is waiting on, or the error that stopped it.

Every error carries ``message_for_model``, the words an agent passes to its model. Behaviour: docs/gates.md
("In the app").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spanguard.instrumentation.gate_policy import GateDecision, Tier
from spanguard.semconv import GateOutcome

__all__ = ["ApprovalError", "ApprovalRejected", "ApprovalTimeout", "ApprovalUnavailable", "Granted", "Pending"]


class ApprovalError(Exception):
    """The gate did not let the call run; ``message_for_model`` says why in words an agent can pass to its model."""

    def __init__(self, message: str, *, approval_id: str | None = None, action: str | None = None) -> None:
        super().__init__(message)
        self.approval_id, self.action = approval_id, action

    @property
    def message_for_model(self) -> str:
        """What the agent tells its model: the call did not run, and why."""
        return f"The call {self.action or ''} did not run: {self}".replace("  ", " ")


class ApprovalRejected(ApprovalError):
    """A person rejected the call; ``reason`` is theirs, ``reviewer`` is who."""

    def __init__(self, action: str, approval_id: str, reason: str, reviewer: str | None) -> None:
        super().__init__(f"{reviewer or 'a reviewer'} rejected it: {reason}", approval_id=approval_id, action=action)
        self.reason, self.reviewer = reason, reviewer

    @property
    def message_for_model(self) -> str:
        """What the agent tells its model: rejected, by whom and why, and that it did not run."""
        return (
            f"A person reviewed the call {self.action} and rejected it, so it did not run. Their reason: {self.reason}"
        )


class ApprovalTimeout(ApprovalError):
    """No person decided in time: not a rejection, and the call did not run."""

    def __init__(self, action: str, approval_id: str, waited_s: float) -> None:
        super().__init__(f"no person decided within {waited_s:.0f} s", approval_id=approval_id, action=action)
        self.waited_s = waited_s

    @property
    def message_for_model(self) -> str:
        """What the agent tells its model: nobody decided, which is not a rejection."""
        return (
            f"The call {self.action} needed a person's approval and no one decided in time, so it did not run. "
            "Nobody rejected it: it was not reviewed yet."
        )


class ApprovalUnavailable(ApprovalError):
    """No decision could be reached (the review service, its token or the policy failed); the call did not run."""


@dataclass(frozen=True)
class Granted:
    """The call may run with ``arguments``: unasked, approved, modified by a reviewer, or proceeding at a timeout."""

    action: str
    arguments: dict[str, Any]
    outcome: GateOutcome
    tier: Tier
    digest: str | None
    approval_id: str | None = None
    approvers: tuple[str, ...] = ()
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def message_for_model(self) -> str | None:
        """What the agent tells its model when the call did not run as asked (a reviewer's edits), else None."""
        if self.outcome == GateOutcome.MODIFIED and self.changes:
            changed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in self.changes.items())
            return f"A reviewer changed the arguments of {self.action} before it ran ({changed})."
        if self.outcome == GateOutcome.PROCEEDED:
            return f"No person decided on {self.action} in time; the policy let it run unreviewed."
        return None


@dataclass(frozen=True)
class Pending:
    """An approval request waiting for a person: what :func:`wait` or :func:`resume` is given."""

    approval_id: str
    action: str
    arguments: dict[str, Any]
    digest: str
    session_id: str | None
    decision: GateDecision

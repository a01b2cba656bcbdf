"""One gated call from the policy's decision to its outcome: the request, the long poll, the consume, the span.

:class:`GatedCall` holds a call's state and ends its ``gate {action}`` span exactly once; the public API in
``gate.py`` drives it, blocking or awaiting. Behaviour: docs/gates.md ("In the app").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from spanguard import __version__
from spanguard.instrumentation.gate_client import ApprovalsClient, AsyncApprovalsClient, ServiceError
from spanguard.instrumentation.gate_digest import DigestError, argument_digest
from spanguard.instrumentation.gate_outcomes import (
    ApprovalError,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Granted,
    Pending,
)
from spanguard.instrumentation.gate_policy import GateDecision, GatePolicy, Tier, decide
from spanguard.instrumentation.gate_state import (
    ENDPOINT_ENV,
    TOKEN_ENV,
    LocalRecord,
    LocalRecords,
    capture,
    redact_for_review,
)
from spanguard.instrumentation.session import current_session
from spanguard.semconv import (
    APPROVAL_FINAL_STATUSES,
    ERROR_TYPE,
    GEN_AI_CONVERSATION_ID,
    SPANGUARD_APPROVAL_GATE,
    SPANGUARD_GATE_ACTION,
    SPANGUARD_GATE_APPROVAL_ID,
    SPANGUARD_GATE_APPROVALS_REQUIRED,
    SPANGUARD_GATE_APPROVERS,
    SPANGUARD_GATE_ARGUMENT_DIGEST,
    SPANGUARD_GATE_ASKED,
    SPANGUARD_GATE_ESCALATED,
    SPANGUARD_GATE_OUTCOME,
    SPANGUARD_GATE_POLL_FAILED,
    SPANGUARD_GATE_REASONS,
    SPANGUARD_GATE_RECORD_NOT_SAVED,
    SPANGUARD_GATE_TIER,
    SPANGUARD_GATE_WAIT_DURATION,
    ApprovalOutcome,
    ApprovalStatus,
    GateOutcome,
    RiskTier,
)

__all__ = [
    "GateSettings",
    "GatedCall",
]

POLL_S: Final = 30.0  # one long poll's wait; re-issued until a decision or the hard timeout
MIN_POLL_S: Final = 1.0  # the least time between two polls, whatever the service does with ``wait``
GRACE_S: Final = 30.0  # past the hard timeout, how long the app still waits for the service's own time-out


@dataclass(frozen=True)
class GateSettings:
    """Where gates ask, by which policy, where the app keeps its records, and how it polls."""

    endpoint: str | None
    token: str | None
    policy: GatePolicy | None
    policy_error: str | None
    records: LocalRecords
    poll_s: float
    redact: bool


# -- one gated call -----------------------------------------------------------------------------------------------


def _tracer() -> trace.Tracer:
    from spanguard._instrument import current_tracer_provider

    return trace.get_tracer("spanguard", __version__, tracer_provider=current_tracer_provider())


class GatedCall:
    """One gated call from the policy's decision to its outcome, with its span; I/O is left to the callers."""

    def __init__(
        self,
        action: str,
        arguments: Mapping[str, Any],
        settings: GateSettings,
        *,
        tier: Tier | None = None,
        session_id: str | None = None,
        span: Span | None = None,
    ) -> None:
        if not isinstance(action, str) or not action:
            raise ValueError("a gate needs an action name (a non-empty string)")
        self.action = action
        self.settings = settings
        self.arguments = dict(arguments) if isinstance(arguments, Mapping) else arguments
        self.session_id = session_id if session_id is not None else current_session().get(GEN_AI_CONVERSATION_ID)
        self.started = time.monotonic()
        self.span = span or _tracer().start_span(f"gate {action}", attributes={SPANGUARD_GATE_ACTION: action})
        self.approval_id: str | None = None
        self.shown_arguments: dict[str, Any] = {}
        self.digest: str | None = None
        self.decision: GateDecision | None = None
        self._tier_override = tier
        self._until: float | None = None

    @classmethod
    def resumed(cls, record: Mapping[str, Any], arguments: Mapping[str, Any], settings: GateSettings) -> GatedCall:
        call = cls(str(record.get("action")), arguments, settings, session_id=record.get("session_id") or "")
        call.session_id = record.get("session_id")
        call.approval_id = str(record.get("id"))
        call.shown_arguments = dict(record.get("arguments") or {})
        call.digest = call._digest()
        call.span.set_attribute(SPANGUARD_GATE_APPROVAL_ID, call.approval_id)
        if call.digest != record.get("digest"):
            raise call.fail(
                ApprovalUnavailable(
                    f"approval {call.approval_id} was asked for other arguments (or another action or session); "
                    "it cannot run this call",
                    approval_id=call.approval_id,
                    action=call.action,
                ),
                GateOutcome.UNAVAILABLE,
            )
        tier = RiskTier.YELLOW if record.get("tier") == RiskTier.YELLOW else RiskTier.RED
        call.decision = GateDecision(
            action=call.action,
            tier=tier,
            asks=True,
            approvals=int(record.get("approvals_required") or 1),
            reasons=tuple(str(r) for r in record.get("reasons") or ()),
            soft_timeout_s=float(record.get("soft_timeout_s") or 0),
            hard_timeout_s=float(record.get("hard_timeout_s") or 0),
            on_hard_timeout="proceed"
            if record.get("on_hard_timeout") == "proceed" and tier == RiskTier.YELLOW
            else "deny",
        )
        call._describe()
        call.note_deadline(record)
        return call

    # -- deciding -----------------------------------------------------------------------------------------------------

    def _digest(self) -> str:
        try:
            return argument_digest(self.action, self.arguments, self.session_id)
        except DigestError as error:
            raise self.fail(
                ApprovalUnavailable(f"no approval can be bound to these arguments: {error}", action=self.action),
                GateOutcome.UNAVAILABLE,
            ) from None

    def _describe(self) -> None:
        decision = self.decision
        assert decision is not None
        self.span.set_attributes(
            {
                SPANGUARD_GATE_TIER: decision.tier,
                SPANGUARD_GATE_REASONS: list(decision.reasons),
                SPANGUARD_GATE_ASKED: decision.asks,
                SPANGUARD_GATE_APPROVALS_REQUIRED: decision.approvals,
            }
        )
        if self.digest is not None:
            self.span.set_attribute(SPANGUARD_GATE_ARGUMENT_DIGEST, self.digest)
        if decision.asks:
            # Only a gate that asks makes its trace red: a green or unasked gate must not flood the review queue.
            self.span.set_attribute(SPANGUARD_APPROVAL_GATE, True)

    def decide(self) -> Granted | None:
        """The policy's decision: a :class:`Granted` when no person is needed, None when the call must ask."""
        settings = self.settings
        if settings.policy is None:
            raise self.fail(ApprovalUnavailable(settings.policy_error or "no gate policy", action=self.action))
        self.digest = self._digest()
        self.decision = decide(settings.policy, self.action, self.arguments, tier=self._tier_override)
        self._describe()
        if not self.decision.asks:
            return self.grant(GateOutcome.NOT_REQUIRED, dict(self.arguments))
        if not settings.endpoint or not settings.token:
            missing = ENDPOINT_ENV if not settings.endpoint else TOKEN_ENV
            raise self.fail(
                ApprovalUnavailable(
                    f"{self.action} needs a person's approval, but no review service is set ({missing})",
                    action=self.action,
                )
            )
        return None

    def request_body(self, context: Mapping[str, Any] | None, request_key: str | None) -> dict[str, Any]:
        """The approval request, its arguments and state redacted as spans are."""
        decision = self.decision
        assert decision is not None and self.digest is not None
        state = capture(context)
        shown: dict[str, Any] = {"arguments": self.arguments, "state": state}
        if self.settings.redact:
            try:
                shown = redact_for_review(shown)
            except Exception as error:  # redaction that fails drops the values: nothing unredacted leaves
                shown = {"arguments": None, "state": None}
                self.span.set_attribute(ERROR_TYPE, type(error).__name__)
        self.shown_arguments = shown["arguments"] if isinstance(shown["arguments"], dict) else {}
        span_context = self.span.get_span_context()
        return {
            "request_key": request_key or str(uuid.uuid4()),
            "action": self.action,
            "tier": decision.tier,
            "approvals_required": decision.approvals,
            "reasons": list(decision.reasons),
            "digest": self.digest,
            "arguments": self.shown_arguments,
            "state": shown["state"] if isinstance(shown["state"], dict) else {"dropped": "redaction failed"},
            "session_id": self.session_id,
            "trace_id": f"{span_context.trace_id:032x}" if span_context.is_valid else None,
            "span_id": f"{span_context.span_id:016x}" if span_context.is_valid else None,
            "soft_timeout_s": decision.soft_timeout_s,
            "hard_timeout_s": decision.hard_timeout_s,
            "on_hard_timeout": decision.on_hard_timeout,
        }

    def created(self, record: Mapping[str, Any], app_state: Any) -> Pending:
        """Note the created request (and keep the original call on local disk, for :func:`resume`)."""
        self.approval_id = str(record.get("id"))
        self.span.set_attribute(SPANGUARD_GATE_APPROVAL_ID, self.approval_id)
        assert self.digest is not None and self.decision is not None
        try:
            self.settings.records.save(
                LocalRecord(
                    self.approval_id, self.action, dict(self.arguments), self.digest, self.session_id, app_state
                )
            )
        except (OSError, ValueError, TypeError):
            # Without it only a resume in another process is lost; the wait itself goes on.
            self.span.add_event(SPANGUARD_GATE_RECORD_NOT_SAVED)
        return Pending(self.approval_id, self.action, dict(self.arguments), self.digest, self.session_id, self.decision)

    def note_deadline(self, record: Mapping[str, Any]) -> None:
        """Take the hard deadline from the service's record (a resumed request's clock started long ago)."""
        deadline = _wall(record.get("hard_deadline"))
        if deadline is not None:
            self._until = time.monotonic() + max(0.0, deadline - time.time()) + GRACE_S

    def deadline(self) -> float:
        """When, on this process's monotonic clock, the app stops waiting for the service's own hard timeout."""
        assert self.decision is not None
        return self._until if self._until is not None else self.started + self.decision.hard_timeout_s + GRACE_S

    # -- settling -----------------------------------------------------------------------------------------------------

    def settled(self, record: Mapping[str, Any]) -> ApprovalStatus | None:
        """``record``'s final status, or None while it is pending; an unknown status is a failure."""
        status = record.get("status")
        if status == ApprovalStatus.PENDING:
            return None
        if status in APPROVAL_FINAL_STATUSES:
            return ApprovalStatus(status)
        raise self.fail(
            ApprovalUnavailable(f"the review service answered an unknown status {status!r}", action=self.action)
        )

    def refusal(self, record: Mapping[str, Any], status: ApprovalStatus) -> ApprovalError | None:
        """The error of a rejected or (denying) timed-out request; None when the call may run."""
        approval_id = self.approval_id or ""
        if status == ApprovalStatus.REJECTED:
            deciders = [d for d in record.get("decisions") or [] if isinstance(d, Mapping)]
            reviewer = next(
                (d.get("reviewer") for d in reversed(deciders) if d.get("outcome") == ApprovalOutcome.REJECT), None
            )
            reason = record.get("reason") or "no reason given"
            rejected = ApprovalRejected(self.action, approval_id, str(reason), reviewer)
            return self.fail(rejected, GateOutcome.REJECTED, record)
        if status == ApprovalStatus.TIMED_OUT and record.get("on_hard_timeout") != "proceed":
            timeout = ApprovalTimeout(self.action, approval_id, time.monotonic() - self.started)
            return self.fail(timeout, GateOutcome.TIMED_OUT, record)
        return None

    def arguments_to_run(
        self, record: Mapping[str, Any], status: ApprovalStatus
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arguments the call runs with, and what a reviewer changed (``{key: (shown, new)}``).

        A reviewer edits the arguments as shown (redacted): a field left as shown keeps the app's original value, a
        changed one takes the reviewer's, a removed one is removed. Fields are compared at the top level.
        """
        original = dict(self.arguments)
        edited = record.get("decided_arguments")
        if status != ApprovalStatus.MODIFIED and not (
            status == ApprovalStatus.APPROVED and isinstance(edited, Mapping)
        ):
            return original, {}
        if not isinstance(edited, Mapping):
            raise self.fail(ApprovalUnavailable("a modified approval came without its arguments", action=self.action))
        shown = self.shown_arguments or dict(record.get("arguments") or {})
        result: dict[str, Any] = {}
        changes: dict[str, tuple[Any, Any]] = {}
        for key, value in edited.items():
            if key in shown and shown[key] == value and key in original:
                result[key] = original[key]
            else:
                result[key] = value
                changes[key] = (shown.get(key), value)
        for key in original:
            if key not in edited:
                changes[key] = (shown.get(key), None)
        return result, changes

    def grant(
        self,
        outcome: GateOutcome,
        arguments: dict[str, Any],
        record: Mapping[str, Any] | None = None,
        changes: dict[str, tuple[Any, Any]] | None = None,
    ) -> Granted:
        """End the span with ``outcome``: the call may run."""
        assert self.decision is not None
        approvers = tuple(str(a) for a in (record or {}).get("approvers") or ())
        self._finish(outcome, record)
        if self.approval_id is not None:
            self.settings.records.remove(self.approval_id)
        return Granted(
            action=self.action,
            arguments=arguments,
            outcome=outcome,
            tier=self.decision.tier,
            digest=self.digest,
            approval_id=self.approval_id,
            approvers=approvers,
            changes=changes or {},
        )

    def fail(
        self,
        error: ApprovalError,
        outcome: GateOutcome = GateOutcome.UNAVAILABLE,
        record: Mapping[str, Any] | None = None,
    ) -> ApprovalError:
        """End the span with ``outcome`` and the error's type; the error, for the caller to raise."""
        error.action = error.action or self.action
        error.approval_id = error.approval_id or self.approval_id
        self.span.set_attribute(ERROR_TYPE, f"spanguard.{type(error).__name__}")
        self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._finish(outcome, record)
        return error

    def leave_pending(self) -> None:
        """End the span of a request left waiting (``submit`` without waiting)."""
        self._finish(GateOutcome.PENDING, None)

    def _finish(self, outcome: GateOutcome, record: Mapping[str, Any] | None) -> None:
        if not self.span.is_recording():
            return
        attributes: dict[str, Any] = {
            SPANGUARD_GATE_OUTCOME: outcome.value,
            SPANGUARD_GATE_WAIT_DURATION: time.monotonic() - self.started,
        }
        if record is not None:
            attributes[SPANGUARD_GATE_APPROVERS] = [str(a) for a in record.get("approvers") or ()]
            attributes[SPANGUARD_GATE_ESCALATED] = bool(record.get("escalated_at"))
        self.span.set_attributes(attributes)
        self.span.end()

    def settle_blocking(self, record: Mapping[str, Any]) -> Granted:
        """Wait (long poll, re-issued) from ``record`` until the request is decided, then consume or raise."""
        client = _client(self.settings, self)
        try:
            while True:
                status = self.settled(record)
                if status is not None:
                    return self._conclude(record, status, client.consume)
                remaining = self.deadline() - time.monotonic()
                if remaining <= 0:
                    raise self._no_decision()
                asked = time.monotonic()
                try:
                    record = client.get(self.approval_id or "", wait_s=min(self.settings.poll_s, remaining))
                except ServiceError as error:
                    self._outage(error)
                    time.sleep(min(self.settings.poll_s, max(0.1, remaining), 2.0))
                else:
                    time.sleep(_early(record, asked))
        finally:
            client.close()

    async def settle_async(self, record: Mapping[str, Any]) -> Granted:
        """:meth:`settle_blocking`, awaiting instead of blocking."""
        client = _async_client(self.settings, self)
        try:
            while True:
                status = self.settled(record)
                if status is not None:
                    return await self._conclude_async(record, status, client.consume)
                remaining = self.deadline() - time.monotonic()
                if remaining <= 0:
                    raise self._no_decision()
                asked = time.monotonic()
                try:
                    record = await client.get(self.approval_id or "", wait_s=min(self.settings.poll_s, remaining))
                except ServiceError as error:
                    self._outage(error)
                    await asyncio.sleep(min(self.settings.poll_s, max(0.1, remaining), 2.0))
                else:
                    await asyncio.sleep(_early(record, asked))
        finally:
            await client.aclose()

    def _outage(self, error: ServiceError) -> None:
        """A failed poll: transient failures are waited out (to the deadline), a refused token or lost request not."""
        if error.kind in ("unreachable", "unavailable"):
            self.span.add_event(SPANGUARD_GATE_POLL_FAILED, {ERROR_TYPE: error.kind})
            return
        raise self.fail(ApprovalUnavailable(str(error), action=self.action)) from None

    def _no_decision(self) -> ApprovalError:
        return self.fail(
            ApprovalTimeout(self.action, self.approval_id or "", time.monotonic() - self.started),
            GateOutcome.TIMED_OUT,
        )

    def _after_consume(self, record: Mapping[str, Any], status: ApprovalStatus) -> Granted:
        arguments, changes = self.arguments_to_run(record, status)
        outcome = {
            ApprovalStatus.APPROVED: GateOutcome.MODIFIED if changes else GateOutcome.APPROVED,
            ApprovalStatus.MODIFIED: GateOutcome.MODIFIED,
            ApprovalStatus.TIMED_OUT: GateOutcome.PROCEEDED,
        }[status]
        return self.grant(outcome, arguments, record, changes)

    def _consume_failed(self, error: ServiceError) -> ApprovalError:
        if error.kind == "conflict":
            return self.fail(
                ApprovalUnavailable(f"approval {self.approval_id} cannot run this call: {error}", action=self.action)
            )
        return self.fail(ApprovalUnavailable(str(error), action=self.action))

    def _conclude(self, record: Mapping[str, Any], status: ApprovalStatus, consume: Callable[..., Any]) -> Granted:
        refusal = self.refusal(record, status)
        if refusal is not None:
            raise refusal
        try:
            record = consume(self.approval_id or "", self.digest or "")
        except ServiceError as error:
            raise self._consume_failed(error) from None
        return self._after_consume(record, status)

    async def _conclude_async(
        self, record: Mapping[str, Any], status: ApprovalStatus, consume: Callable[..., Any]
    ) -> Granted:
        refusal = self.refusal(record, status)
        if refusal is not None:
            raise refusal
        try:
            record = await consume(self.approval_id or "", self.digest or "")
        except ServiceError as error:
            raise self._consume_failed(error) from None
        return self._after_consume(record, status)


def _early(record: Mapping[str, Any], asked: float) -> float:
    """How long to pause before the next poll: a long poll that came back pending at once (a proxy that drops the
    query, a service that does not wait) must not turn into a busy poll."""
    if record.get("status") != ApprovalStatus.PENDING:
        return 0.0
    return max(0.0, MIN_POLL_S - (time.monotonic() - asked))


def _client(settings: GateSettings, call: GatedCall) -> ApprovalsClient:
    try:
        return ApprovalsClient(settings.endpoint or "", settings.token or "")
    except ServiceError as error:
        raise call.fail(ApprovalUnavailable(str(error), action=call.action)) from None


def _async_client(settings: GateSettings, call: GatedCall) -> AsyncApprovalsClient:
    try:
        return AsyncApprovalsClient(settings.endpoint or "", settings.token or "")
    except ServiceError as error:
        raise call.fail(ApprovalUnavailable(str(error), action=call.action)) from None


def _create_blocking(call: GatedCall, context: Any, app_state: Any, request_key: str | None) -> tuple[Pending, dict]:
    client = _client(call.settings, call)
    try:
        record = client.create(call.request_body(_context(context), request_key))
    except ServiceError as error:
        raise call.fail(ApprovalUnavailable(str(error), action=call.action)) from None
    finally:
        client.close()
    return call.created(record, app_state), record


async def _create_async(call: GatedCall, context: Any, app_state: Any, request_key: str | None) -> tuple[Pending, dict]:
    client = _async_client(call.settings, call)
    try:
        record = await client.create(call.request_body(_context(context), request_key))
    except ServiceError as error:
        raise call.fail(ApprovalUnavailable(str(error), action=call.action)) from None
    finally:
        await client.aclose()
    return call.created(record, app_state), record


def _wall(value: Any) -> float | None:
    """An ISO 8601 UTC time from the service as a POSIX timestamp (None when absent or not a time)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()


def _context(context: Any) -> dict[str, Any]:
    value = context() if callable(context) else context
    return dict(value) if isinstance(value, Mapping) else {}

"""Approval gates in the app: an agent's risky call waits for a person, and only the call approved runs.

``@gate(action=...)`` guards a tool function (sync or async), ``with approval(action=..., arguments=...)`` guards a
block; both ask the policy (``SPANGUARD_GATE_POLICY``), and when it asks, create an approval request in the review
service (``SPANGUARD_REVIEW_ENDPOINT``, ``SPANGUARD_REVIEW_TOKEN``) and wait by long poll. ``submit``/``wait``/
``resume`` are the parts, for framework adapters and for agents that resume after a restart. Everything that cannot
reach a decision denies. Behaviour: docs/gates.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from spanguard.instrumentation import gate_state
from spanguard.instrumentation.gate_call import (
    GRACE_S,
    POLL_S,
    GatedCall,
    GateSettings,
    _create_async,
    _create_blocking,
    _wall,
)
from spanguard.instrumentation.gate_client import ApprovalsClient, ServiceError
from spanguard.instrumentation.gate_outcomes import (
    ApprovalError,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Granted,
    Pending,
)
from spanguard.instrumentation.gate_policy import POLICY_ENV, GatePolicy, Tier, load_policy
from spanguard.instrumentation.gate_state import ENDPOINT_ENV, TOKEN_ENV, LocalRecords
from spanguard.semconv import ApprovalStatus

__all__ = [
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Granted",
    "Pending",
    "Resumed",
    "approval",
    "await_approval",
    "configure",
    "current_policy",
    "gate",
    "last_grant",
    "redacting",
    "resume",
    "submit",
    "wait",
]

F = TypeVar("F", bound=Callable[..., Any])

RECORDS_ENV: Final = "SPANGUARD_GATE_DIR"
DEFAULT_RECORDS_DIR: Final = ".spanguard/approvals"
_SKIPPED_PARAMETERS: Final = frozenset({"self", "cls"})
_last_grant: contextvars.ContextVar[Granted | None] = contextvars.ContextVar("spanguard_last_grant", default=None)


# -- settings ---------------------------------------------------------------------------------------------------------


_configured: dict[str, Any] = {}
_settings_lock = threading.Lock()
_cached: tuple[tuple[Any, ...], GateSettings] | None = None


def configure(
    *,
    endpoint: str | None = None,
    token: str | None = None,
    policy: GatePolicy | str | Path | None = None,
    records_dir: str | Path | None = None,
    poll_s: float | None = None,
    redact: bool | None = None,
) -> None:
    """Set where gates ask and by which policy, over the environment (``instrument()`` passes its arguments here)."""
    global _cached
    if poll_s is not None and not (0 < poll_s <= 60):
        raise ValueError("poll_s must be above 0 and at most 60 seconds")
    with _settings_lock:
        for key, value in (
            ("endpoint", endpoint),
            ("token", token),
            ("policy", policy),
            ("records_dir", records_dir),
            ("poll_s", poll_s),
            ("redact", redact),
        ):
            if value is not None:
                _configured[key] = value
        _cached = None
    if endpoint:
        gate_state.enable_recording()


def reset_configuration() -> None:
    """Forget what :func:`configure` set (tests, and ``uninstrument()``)."""
    global _cached
    with _settings_lock:
        _configured.clear()
        _cached = None


def _load_policy(source: GatePolicy | str | Path | None) -> tuple[GatePolicy | None, str | None]:
    if isinstance(source, GatePolicy):
        return source, None
    try:
        return (load_policy(source) if source else GatePolicy()), None
    except Exception as error:  # any failure to load is a gate that cannot decide: it denies, saying why
        return None, f"the gate policy does not load: {error}"


def _settings() -> GateSettings:
    global _cached
    with _settings_lock:
        configured = dict(_configured)
        cached = _cached
    endpoint = configured.get("endpoint") or os.environ.get(ENDPOINT_ENV) or None
    token = configured.get("token") or os.environ.get(TOKEN_ENV) or None
    policy = configured.get("policy") or os.environ.get(POLICY_ENV) or None
    records = configured.get("records_dir") or os.environ.get(RECORDS_ENV) or DEFAULT_RECORDS_DIR
    redact = configured.get("redact")
    if redact is None:
        redact = os.environ.get("SPANGUARD_REDACT", "true").strip().lower() not in ("false", "0", "no", "off")
    key = (endpoint, token, policy if not isinstance(policy, GatePolicy) else id(policy), str(records), redact)
    if cached is not None and cached[0] == key:
        return cached[1]
    loaded, error = _load_policy(policy)
    settings = GateSettings(
        endpoint=endpoint,
        token=token,
        policy=loaded,
        policy_error=error,
        records=LocalRecords(records),
        poll_s=float(configured.get("poll_s") or POLL_S),
        redact=bool(redact),
    )
    with _settings_lock:
        _cached = (key, settings)
    return settings


def current_policy() -> GatePolicy | None:
    """The gate policy in effect (``configure()`` over ``SPANGUARD_GATE_POLICY``); None when it does not load."""
    return _settings().policy


def redacting() -> bool:
    """Whether approval requests are redacted before they leave the process."""
    return _settings().redact


# -- results ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    """What :func:`resume` found: the request's outcome, its call and the app's saved state."""

    approval_id: str
    outcome: str
    action: str
    arguments: dict[str, Any] | None
    state: dict[str, Any]
    app_state: Any
    record: dict[str, Any]

    def approval(self) -> Granted:
        """The grant to run the call (used once), or the :class:`ApprovalError` of its outcome."""
        if self.arguments is None:
            raise ApprovalUnavailable(
                f"the original arguments of {self.approval_id} are not on this machine; pass them to "
                "spanguard.approval(..., approval_id=...)",
                approval_id=self.approval_id,
                action=self.action,
            )
        call = GatedCall.resumed(self.record, self.arguments, _settings())
        return call.settle_blocking(self.record)


def _start(action: str, arguments: Mapping[str, Any], tier: Tier | None) -> tuple[GatedCall, Granted | None]:
    settings = _settings()
    call = GatedCall(action, arguments, settings, tier=tier)
    if not isinstance(arguments, Mapping):
        raise call.fail(
            ApprovalUnavailable(f"the arguments must be an object, got {type(arguments).__name__}", action=action)
        )
    return call, call.decide()


# -- the public API ---------------------------------------------------------------------------------------------------


def submit(
    action: str,
    arguments: Mapping[str, Any],
    *,
    tier: Tier | None = None,
    context: Mapping[str, Any] | None = None,
    app_state: Any = None,
    request_key: str | None = None,
) -> Pending | Granted:
    """Decide with the policy and, when a person must approve, create the request without waiting for it."""
    call, granted = _start(action, arguments, tier)
    if granted is not None:
        return granted
    pending, _ = _create_blocking(call, context, app_state, request_key)
    call.leave_pending()
    return pending


def wait(approval: Pending | str, *, arguments: Mapping[str, Any] | None = None) -> Granted:
    """Wait for the decision on a request made by :func:`submit` (or by an earlier process) and use it once."""
    resumed = resume(approval.approval_id if isinstance(approval, Pending) else approval, wait=False)
    if arguments is None and isinstance(approval, Pending):
        arguments = approval.arguments
    call = GatedCall.resumed(resumed.record, arguments if arguments is not None else _known(resumed), _settings())
    return call.settle_blocking(resumed.record)


async def await_approval(approval: Pending | str, *, arguments: Mapping[str, Any] | None = None) -> Granted:
    """:func:`wait`, awaiting instead of blocking."""
    approval_id = approval.approval_id if isinstance(approval, Pending) else approval
    resumed = await asyncio.to_thread(resume, approval_id, wait=False)
    if arguments is None and isinstance(approval, Pending):
        arguments = approval.arguments
    call = GatedCall.resumed(resumed.record, arguments if arguments is not None else _known(resumed), _settings())
    return await call.settle_async(resumed.record)


def _known(resumed: Resumed) -> dict[str, Any]:
    if resumed.arguments is None:
        raise ApprovalUnavailable(
            f"the original arguments of {resumed.approval_id} are not on this machine; pass them as arguments=",
            approval_id=resumed.approval_id,
            action=resumed.action,
        )
    return resumed.arguments


def resume(approval_id: str, *, wait: bool = True) -> Resumed:
    """The outcome of an approval request made earlier (waiting for it with ``wait``) and the app's saved state."""
    settings = _settings()
    if not settings.endpoint or not settings.token:
        raise ApprovalUnavailable(f"resuming {approval_id} needs the review service ({ENDPOINT_ENV}, {TOKEN_ENV})")
    try:
        local = settings.records.load(approval_id)
    except ValueError as error:
        raise ApprovalUnavailable(str(error), approval_id=approval_id) from None
    client = ApprovalsClient(settings.endpoint, settings.token)
    try:
        record = client.get(approval_id)
        hard_deadline = _wall(record.get("hard_deadline"))
        left = hard_deadline - time.time() if hard_deadline is not None else float(record.get("hard_timeout_s") or 0)
        deadline = time.monotonic() + max(0.0, left) + GRACE_S
        while wait and record.get("status") == ApprovalStatus.PENDING and time.monotonic() < deadline:
            try:
                record = client.get(approval_id, wait_s=min(settings.poll_s, deadline - time.monotonic()))
            except ServiceError as error:
                if error.kind not in ("unreachable", "unavailable"):
                    raise
                time.sleep(1.0)
    except ServiceError as error:
        raise ApprovalUnavailable(str(error), approval_id=approval_id) from None
    finally:
        client.close()
    return Resumed(
        approval_id=approval_id,
        outcome=str(record.get("status")),
        action=str(record.get("action")),
        arguments=dict(local.arguments) if local is not None else None,
        state=dict(record.get("state") or {}),
        app_state=local.app_state if local is not None else None,
        record=record,
    )


class approval:
    """``with approval(action=..., arguments=...) as granted:``: the block runs only when the call is granted.

    ``granted.arguments`` holds what may run; ``approval_id`` continues a request made earlier (by this process or
    one that died) instead of asking again, for these exact arguments only.
    """

    def __init__(
        self,
        action: str,
        arguments: Mapping[str, Any],
        *,
        tier: Tier | None = None,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        app_state: Any = None,
        approval_id: str | None = None,
    ) -> None:
        self.action, self.arguments, self.tier = action, arguments, tier
        self.context, self.app_state, self.approval_id = context, app_state, approval_id
        self.granted: Granted | None = None

    def __enter__(self) -> Granted:
        if self.approval_id is not None:
            self.granted = wait(self.approval_id, arguments=self.arguments)
            return self.granted
        call, granted = _start(self.action, self.arguments, self.tier)
        if granted is None:
            _, record = _create_blocking(call, self.context, self.app_state, None)
            granted = call.settle_blocking(record)
        self.granted = granted
        return granted

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aenter__(self) -> Granted:
        if self.approval_id is not None:
            self.granted = await await_approval(self.approval_id, arguments=self.arguments)
            return self.granted
        call, granted = _start(self.action, self.arguments, self.tier)
        if granted is None:
            _, record = await _create_async(call, self.context, self.app_state, None)
            granted = await call.settle_async(record)
        self.granted = granted
        return granted

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        return None


def last_grant() -> Granted | None:
    """The grant of the latest gated call in this context (after ``@gate``: tell the model what a reviewer changed)."""
    return _last_grant.get()


def gate(
    action: str | None = None,
    *,
    tier: Tier | None = None,
    context: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Guard a tool function (sync or async): it runs only when granted, with the granted arguments."""

    def decorate(fn: F) -> F:
        name = action or fn.__name__
        signature = inspect.signature(fn)

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[inspect.BoundArguments, dict[str, Any]]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return bound, {k: v for k, v in bound.arguments.items() if k not in _SKIPPED_PARAMETERS}

        def call_with(bound: inspect.BoundArguments, granted: Granted) -> tuple[tuple[Any, ...], dict[str, Any]]:
            for key in list(bound.arguments):
                if key not in _SKIPPED_PARAMETERS:
                    if key in granted.arguments:
                        bound.arguments[key] = granted.arguments[key]
                    else:
                        del bound.arguments[key]
            return bound.args, bound.kwargs

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                bound, arguments = bind(args, kwargs)
                _last_grant.set(None)
                async with approval(name, arguments, tier=tier, context=context) as granted:
                    _last_grant.set(granted)
                    new_args, new_kwargs = call_with(bound, granted)
                    return await fn(*new_args, **new_kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            bound, arguments = bind(args, kwargs)
            _last_grant.set(None)
            with approval(name, arguments, tier=tier, context=context) as granted:
                _last_grant.set(granted)
                new_args, new_kwargs = call_with(bound, granted)
                return fn(*new_args, **new_kwargs)

        return run  # type: ignore[return-value]

    return decorate

"""Approval gates for the OpenAI Agents SDK (``pip install spanguard[openai-agents]``): the SDK's own approval pause,
decided by spanguard's policy and by the people in the review service.

:func:`run_with_approvals` asks one approval per interruption of a run and continues it, :func:`resume_run` continues
a run that died while waiting, :func:`gated_tool` runs a reviewer's edited arguments. Behaviour: docs/gates.md
("Framework adapters").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from spanguard.instrumentation import gate
from spanguard.instrumentation.gate import (
    ApprovalError,
    ApprovalUnavailable,
    Granted,
    Pending,
    Resumed,
    resume,
    submit,
)
from spanguard.instrumentation.gate_policy import Tier, decide
from spanguard.instrumentation.session import current_session, session
from spanguard.semconv import GEN_AI_CONVERSATION_ID, GateOutcome

try:
    from agents import Agent, FunctionTool, RunContextWrapper, Runner, RunResult, RunState, ToolApprovalItem
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "spanguard.instrumentation.gate_agents needs the OpenAI Agents SDK: pip install 'spanguard[openai-agents]'"
    ) from error

__all__ = [
    "APP_STATE_KIND",
    "gated_tool",
    "needs_approval",
    "resume_run",
    "resume_run_sync",
    "run_with_approvals",
    "run_with_approvals_sync",
]

APP_STATE_KIND: Final = "openai-agents.run_state"
"""``app_state["kind"]`` of the approvals this module asks: the serialised run they belong to."""
_ACTION_ATTR: Final = "spanguard_action"
_TIER_ATTR: Final = "spanguard_tier"
_GATED_ATTR: Final = "spanguard_gated_tool"
_GRANTS_KEPT: Final = 1024  # grants waiting for their tool call to run; an abandoned run's are dropped oldest first


# -- the policy as the SDK's needs_approval ---------------------------------------------------------------------------


def needs_approval(
    action: str, *, tier: Tier | None = None
) -> Callable[[RunContextWrapper[Any], dict[str, Any], str], Awaitable[bool]]:
    """A ``needs_approval`` callable that pauses the run when spanguard's policy asks a person for ``action``.

    A policy that does not load asks: the approval then fails closed, saying why.
    """
    if not isinstance(action, str) or not action:
        raise ValueError("needs_approval needs an action name (a non-empty string)")

    async def asks(_context: RunContextWrapper[Any], arguments: dict[str, Any], _call_id: str) -> bool:
        return _asks(action, arguments, tier)

    setattr(asks, _ACTION_ATTR, action)
    setattr(asks, _TIER_ATTR, tier)
    return asks


def _asks(action: str, arguments: Any, tier: Tier | None) -> bool:
    policy = gate.current_policy()  # what submit() will decide with: configure() over SPANGUARD_GATE_POLICY
    if policy is None:
        return True
    return decide(policy, action, arguments, tier=tier).asks


def gated_tool(tool: FunctionTool, *, action: str | None = None, tier: Tier | None = None) -> FunctionTool:
    """A copy of ``tool`` gated by spanguard: it pauses when the policy asks, and runs only what a person granted.

    The copy runs a reviewer's edited arguments (a modify) in place of the model's, says so to the model before a
    text result, and refuses a call that the policy would gate but no spanguard approval covers (a run resumed with
    ``state.approve`` by hand).
    """
    if not isinstance(tool, FunctionTool):
        raise TypeError(f"gated_tool takes a FunctionTool (from @function_tool), not {type(tool).__name__}")
    name = action or tool.name
    invoke = tool.on_invoke_tool

    async def invoke_granted(context: Any, raw_arguments: str) -> Any:
        call_id = str(getattr(context, "tool_call_id", "") or "")
        arguments = _parse(raw_arguments)
        granted = _grants.take(call_id, arguments)
        if granted is None:
            if _asks(name, arguments, tier):
                return (
                    f"The call {name} did not run: it needs a person's approval through spanguard, and none was "
                    "given for this call."
                )
            return await invoke(context, raw_arguments)
        output = await invoke(context, json.dumps(granted.arguments))
        note = granted.message_for_model
        return f"{note}\n{output}" if note and isinstance(output, str) else output

    gated = dataclasses.replace(tool, needs_approval=needs_approval(name, tier=tier), on_invoke_tool=invoke_granted)
    setattr(gated, _GATED_ATTR, True)
    return gated


def _parse(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class _Grants:
    """Grants consumed for a tool call that the resumed run is about to make: one use each, for that call only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_call: OrderedDict[str, tuple[Any, Granted]] = OrderedDict()

    def put(self, call_id: str, asked: Any, granted: Granted) -> None:
        with self._lock:
            self._by_call[call_id] = (asked, granted)
            while len(self._by_call) > _GRANTS_KEPT:
                self._by_call.popitem(last=False)

    def take(self, call_id: str, arguments: Any) -> Granted | None:
        with self._lock:
            found = self._by_call.pop(call_id, None)
        if found is None or found[0] != arguments:
            return None  # no grant, or one for other arguments: never runs another call
        return found[1]


_grants = _Grants()


# -- running with approvals -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Gated:
    """One interruption: its SDK item, the gate's action and tier, and the arguments the model asked for."""

    item: ToolApprovalItem
    action: str
    tier: Tier | None
    arguments: Any
    applies_edits: bool


def _tool_of(item: ToolApprovalItem) -> Any:
    agent = getattr(item, "agent", None)
    for tool in getattr(agent, "tools", None) or ():
        if getattr(tool, "name", None) == item.tool_name:
            return tool
    return None


def _gated(item: ToolApprovalItem) -> _Gated:
    tool = _tool_of(item)
    setting = getattr(tool, "needs_approval", None)
    action = getattr(setting, _ACTION_ATTR, None) or item.tool_name or item.name or "unknown_tool"
    return _Gated(
        item=item,
        action=str(action),
        tier=getattr(setting, _TIER_ATTR, None),
        arguments=_parse(item.arguments),
        applies_edits=bool(getattr(tool, _GATED_ATTR, False)),
    )


def _request_key(run_id: str, call_id: str | None) -> str:
    """The same key for the same call of the same run, so asking again after a crash finds the first request."""
    material = json.dumps(["openai-agents", run_id, call_id or ""]).encode()
    return f"openai-agents:{hashlib.sha256(material).hexdigest()}"


def _serialise(state: RunState[Any, Any], serializer: Any) -> Any:
    try:
        return state.to_json(context_serializer=serializer) if serializer else state.to_json()
    except Exception:  # a state that cannot be kept loses only the resume after a crash; the wait goes on
        return None


def _changed(record: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    shown = dict(record.get("arguments") or {})
    edited = dict(record.get("decided_arguments") or {})
    changes = {key: (shown.get(key), value) for key, value in edited.items() if shown.get(key) != value}
    changes.update({key: (shown[key], None) for key in shown if key not in edited})
    return changes


def _edit_message(action: str, record: Mapping[str, Any]) -> str:
    changes = "; ".join(
        f"{key}: {old!r} -> {'removed' if new is None else repr(new)}" for key, (old, new) in _changed(record).items()
    )
    return (
        f"A person reviewed the call {action} and approved it only with changed arguments ({changes}), so it did "
        f"not run as asked. If it is still needed, call {action} again with those changes."
    )


def _decide_one(gated: _Gated, pending: Pending) -> Granted | str:
    """Wait for one request's decision: the grant (consumed), or the message for the model of a call not run."""
    try:
        resumed = resume(pending.approval_id, wait=True)
        if resumed.outcome == GateOutcome.MODIFIED and not gated.applies_edits:
            # The SDK runs a call with the model's arguments only: an edit it cannot apply is not run, and the model
            # is told what the reviewer changed. The approval is left unconsumed.
            return _edit_message(gated.action, resumed.record)
        return resumed.approval()
    except ApprovalError as error:
        return error.message_for_model


def _ask_one(gated: _Gated, run_id: str, app_state: Any) -> Pending | Granted | str:
    """Create (or find again) one request: its Pending, a Granted when no person is needed, or a refusal message."""
    if not isinstance(gated.arguments, dict):
        return (
            f"The call {gated.action} did not run: its arguments are not a JSON object, so no approval can be asked "
            "for them."
        )
    try:
        return submit(
            gated.action,
            gated.arguments,
            tier=gated.tier,
            context={"framework": "openai-agents", "agent": getattr(gated.item.agent, "name", None)},
            app_state=app_state,
            request_key=_request_key(run_id, gated.item.call_id),
        )
    except ApprovalError as error:
        return error.message_for_model


def _resolve(state: RunState[Any, Any], run_id: str, serializer: Any) -> list[str]:
    """Ask, wait for and apply the decision on every interruption of ``state``; the approval ids asked."""
    items = [_gated(item) for item in state.get_interruptions()]
    app_state = {"kind": APP_STATE_KIND, "run_id": run_id, "run_state": _serialise(state, serializer)}
    asked: list[tuple[_Gated, Pending]] = []
    for gated in items:
        outcome = _ask_one(gated, run_id, app_state)
        if isinstance(outcome, Pending):
            asked.append((gated, outcome))
        elif isinstance(outcome, Granted):
            state.approve(gated.item)
        else:
            state.reject(gated.item, rejection_message=outcome)
    # Every request exists before the first wait, so reviewers see the whole batch at once.
    for gated, pending in asked:
        value = _decide_one(gated, pending)
        if isinstance(value, Granted):
            if gated.applies_edits:
                _grants.put(str(gated.item.call_id or ""), gated.arguments, value)
            state.approve(gated.item)
        else:
            state.reject(gated.item, rejection_message=str(value))
    return [pending.approval_id for _, pending in asked]


async def _drive(agent: Agent[Any], start: Any, run_id: str, serializer: Any, run_kwargs: dict[str, Any]) -> RunResult:
    result = await Runner.run(agent, start, **run_kwargs)
    while result.interruptions:
        state = result.to_state()
        # Submits and long polls block: off the event loop, in this context (its spanguard session included).
        await asyncio.to_thread(_resolve, state, run_id, serializer)
        result = await Runner.run(agent, state, **run_kwargs)
    return result


async def run_with_approvals(
    agent: Agent[Any],
    input: Any,
    *,
    context_serializer: Callable[[Any], Mapping[str, Any]] | None = None,
    **run_kwargs: Any,
) -> RunResult:
    """``Runner.run`` that answers the run's approval interruptions with spanguard's decisions, until it finishes.

    Each interruption becomes one approval request (created for the whole batch before waiting), with the serialised
    ``RunState`` kept locally as its ``app_state`` for :func:`resume_run`. Approve and modify run the call; a
    rejection, a time-out or an outage sends the model ``message_for_model`` instead. ``run_kwargs`` go to
    ``Runner.run`` on every leg (``context``, ``max_turns``, ``run_config``, ...).
    """
    return await _drive(agent, input, uuid.uuid4().hex, context_serializer, run_kwargs)


def run_with_approvals_sync(agent: Agent[Any], input: Any, **kwargs: Any) -> RunResult:
    """:func:`run_with_approvals` from code without an event loop."""
    return asyncio.run(run_with_approvals(agent, input, **kwargs))


async def resume_run(
    approval_id: str,
    agent: Agent[Any],
    *,
    context_deserializer: Callable[[Mapping[str, Any]], Any] | None = None,
    context_serializer: Callable[[Any], Mapping[str, Any]] | None = None,
    **run_kwargs: Any,
) -> RunResult:
    """Continue the run that asked ``approval_id`` (in a process that died while waiting) from its saved ``RunState``.

    ``agent`` is the run's top-level agent. The requests of the interrupted step are found again by their keys, not
    asked twice; their decisions (waited for when not made yet) are applied and the run goes on as
    :func:`run_with_approvals`.
    """
    resumed = await asyncio.to_thread(resume, approval_id, wait=False)
    run_id, saved = _saved_run(resumed)
    state_kwargs = {"context_deserializer": context_deserializer} if context_deserializer else {}
    try:
        state = await RunState.from_json(agent, saved, **state_kwargs)
    except Exception as error:
        raise ApprovalUnavailable(
            f"the run state saved with {approval_id} does not load for this agent ({type(error).__name__})",
            approval_id=approval_id,
            action=resumed.action,
        ) from None
    with _session_of(resumed):
        asked = await asyncio.to_thread(_resolve, state, run_id, context_serializer)
        if approval_id not in asked:
            raise ApprovalUnavailable(
                f"the run state saved with {approval_id} no longer waits for it", approval_id=approval_id
            )
        return await _drive(agent, state, run_id, context_serializer, run_kwargs)


def resume_run_sync(approval_id: str, agent: Agent[Any], **kwargs: Any) -> RunResult:
    """:func:`resume_run` from code without an event loop."""
    return asyncio.run(resume_run(approval_id, agent, **kwargs))


def _saved_run(resumed: Resumed) -> tuple[str, dict[str, Any]]:
    saved = resumed.app_state
    if not isinstance(saved, Mapping) or saved.get("kind") != APP_STATE_KIND:
        raise ApprovalUnavailable(
            f"approval {resumed.approval_id} has no OpenAI Agents run saved on this machine",
            approval_id=resumed.approval_id,
            action=resumed.action,
        )
    run_state, run_id = saved.get("run_state"), saved.get("run_id")
    if not isinstance(run_state, dict) or not isinstance(run_id, str):
        raise ApprovalUnavailable(
            f"the run state of approval {resumed.approval_id} could not be saved when it was asked",
            approval_id=resumed.approval_id,
            action=resumed.action,
        )
    return run_id, run_state


def _session_of(resumed: Resumed) -> AbstractContextManager[Any]:
    """The asking run's session: the digests that bind its approvals include it."""
    asked_in = resumed.record.get("session_id")
    if isinstance(asked_in, str) and asked_in and current_session().get(GEN_AI_CONVERSATION_ID) != asked_in:
        return session(asked_in)
    return nullcontext()

"""One trace's ReviewSpans assembled into what a reviewer reads: the conversation, its LLM and tool calls, timing.

Pure: plain dicts in, plain JSON-able dicts out. Spans come from any holder of an ``ingest`` token, so nothing here
trusts them: :func:`assemble` never raises on span content; what it cannot read it skips or degrades, and it records
a short note saying so (never the content itself, which may be exactly what redaction removed elsewhere).
"""

from __future__ import annotations

import bisect
import copy
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_SYSTEM

from spanguard.semconv import (
    ERROR_TYPE,
    GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_CHAT,
    GEN_AI_OPERATION_EMBEDDINGS,
    GEN_AI_OPERATION_EXECUTE_TOOL,
    GEN_AI_OPERATION_GENERATE_CONTENT,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OPERATION_TEXT_COMPLETION,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    SPANGUARD_REDACTION_COUNT,
    SPANGUARD_REDACTION_ENTITIES,
)
from spanguard.semconv.redaction import FAILED_MARKER

__all__ = [
    "CONTENT_LIMIT",
    "LLM_OPERATIONS",
    "TRUNCATED",
    "assemble",
    "placeholders",
    "session_conversation",
    "session_spans",
    "thread",
]

CONTENT_LIMIT: Final = 20_000
"""The most characters of one content (a turn, a tool call's arguments or result) put on the page."""
TRUNCATED: Final = "…[truncated]"
"""Appended to a content cut at :data:`CONTENT_LIMIT`."""
LLM_OPERATIONS: Final = frozenset(
    {
        GEN_AI_OPERATION_CHAT,
        GEN_AI_OPERATION_TEXT_COMPLETION,
        GEN_AI_OPERATION_GENERATE_CONTENT,
        GEN_AI_OPERATION_EMBEDDINGS,
    }
)
"""The ``gen_ai.operation.name`` values of spans that are one call to a model."""

# Redaction's replace and hash operators (processors/redaction/operators.py): <EMAIL_ADDRESS>, <PERSON:3f2a9c1b>, and
# its own markers <DROPPED_KEY>, <REDACTION_FAILED>. Masked values (****1111) carry no type, so they cannot be listed.
_PLACEHOLDER: Final = re.compile(r"<([A-Z][A-Z0-9_]*)(?::[0-9a-f]{8})?>")
_SHORT_LIMIT: Final = 1_000  # names, ids and models: anything longer is not one, but must not bloat the page either
_ID_LIMIT: Final = 128
_NOTES_LIMIT: Final = 50
_ROLES: Final = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
# Reasoning is the model's scratchpad, not its reply; it is left out quietly, unlike media, which a note mentions.
_SILENT_PART_TYPES: Final = frozenset({"reasoning", "thinking", "redacted_thinking"})
_STATUS_CODES: Final = {"unset": "unset", "ok": "ok", "error": "error", "0": "unset", "1": "ok", "2": "error"}
_SAFE_WORD: Final = re.compile(r"[A-Za-z0-9_.\-]{1,40}")


def placeholders(text: str) -> list[str]:
    """The distinct entity types of the redaction placeholders in ``text``, sorted."""
    return sorted(set(_PLACEHOLDER.findall(text)))


def assemble(spans: Sequence[Mapping[str, Any]], *, content_limit: int | None = CONTENT_LIMIT) -> dict[str, Any]:
    """Assemble the ReviewSpans of one trace (any order, duplicates and malformed spans allowed) for review.

    ``content_limit`` caps each content for the page; ``None`` keeps contents whole (dataset export).
    """
    notes = _Notes(content_limit)
    read = _read_spans(spans, notes)
    calls, executions, requests = _calls(read, notes)
    starts = [s.start for s in read if s.start is not None]
    ends = [s.end for s in read if s.end is not None]
    started = min(starts) if starts else None
    ended = max(ends) if ends else None
    return {
        "trace_id": _trace_id(read, notes),
        "started_at_unix_nano": started,
        "duration_ms": _ms(started, ended),
        "turns": _thread(calls, executions),
        "llm_calls": [_llm_call(call) for call in calls],
        "tool_calls": _tool_calls(executions, requests, calls),
        "models": _distinct(call.model for call in calls),
        "providers": _distinct(call.provider for call in calls),
        "redaction": _redaction(read),
        "errors": [
            {"span_id": s.span_id, "name": s.name, "error_type": s.error_type}
            for s in sorted(read, key=_by_start)
            if s.status == "error"
        ],
        "spans": _timing_tree(read, notes),
        "notes": notes.items,
    }


def session_spans(
    traces: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
) -> tuple[list[Mapping[str, Any]], dict[Any, str]]:
    """The spans of several traces as one list, and which trace each span id came from (the first, on a clash)."""
    owner: dict[Any, str] = {}
    spans: list[Mapping[str, Any]] = []
    for trace_id, trace_spans in traces:
        for span in trace_spans:
            if isinstance(span, Mapping):
                owner.setdefault(span.get("span_id"), trace_id)
                spans.append(span)
    return spans, owner


def session_conversation(
    traces: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, content_limit: int | None = CONTENT_LIMIT
) -> dict[str, Any]:
    """Several traces of one session, as ``(trace id, spans)`` in time order, assembled as one conversation.

    Each model call adds what its input holds beyond the thread so far, across traces as within one, so the history
    a later turn resends is shown once. Every turn, tool call and LLM call carries the ``trace_id`` of the trace it
    came from (the page marks trace boundaries by it); ``trace_ids`` lists the traces in order.
    """
    spans, owner = session_spans(traces)
    conversation = assemble(spans, content_limit=content_limit)
    conversation["trace_id"] = None
    conversation["trace_ids"] = [trace_id for trace_id, _ in traces]
    conversation["notes"] = [note for note in conversation["notes"] if not note.startswith("the spans belong to ")]
    for view in ("turns", "tool_calls", "llm_calls"):
        for row in conversation[view]:
            row["trace_id"] = owner.get(row.get("span_id"))
    return conversation


def thread(
    spans: Sequence[Mapping[str, Any]], *, content_limit: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Only what :func:`assemble` gives as ``turns`` and ``models``, contents whole by default: the dataset export
    reads thousands of traces a second and needs none of the page's other views."""
    notes = _Notes(content_limit)
    calls, executions, _ = _calls(_read_spans(spans, notes), notes)
    return _thread(calls, executions), _distinct(call.model for call in calls)


def _calls(read: list[_Span], notes: _Notes) -> tuple[list[_Call], list[_Execution], list[_Request]]:
    """The model calls read, by start, and the tool spans tied to the calls' requests."""
    llm_spans = sorted((s for s in read if s.is_llm), key=_by_start)
    tool_spans = sorted((s for s in read if s.operation == GEN_AI_OPERATION_EXECUTE_TOOL), key=_by_start)
    calls = [_read_llm(span, notes) for span in llm_spans]
    if calls and not any(call.has_content for call in calls):
        notes.add("no message content was recorded (content capture is off)")
    executions, requests = _match_tools(tool_spans, calls, notes)
    return calls, executions, requests


# --- reading spans ----------------------------------------------------------------------------------------------


class _Notes:
    """Short, deduplicated notes about what could not be read; bounded so hostile input cannot flood them."""

    def __init__(self, content_limit: int | None = CONTENT_LIMIT) -> None:
        # Carried by the notes because every reader of content already takes them.
        self.content_limit = content_limit
        self.items: list[str] = []
        self._seen: set[str] = set()
        self._dropped = 0

    def add(self, note: str) -> None:
        if note in self._seen:
            return
        self._seen.add(note)
        if len(self.items) < _NOTES_LIMIT - 1:
            self.items.append(note)
            return
        self._dropped += 1
        self.items[_NOTES_LIMIT - 1 :] = [f"... and {self._dropped} more notes"]


@dataclass
class _Span:
    index: int
    span_id: str
    trace_id: str | None
    parent_id: str | None
    name: str
    start: int | None
    end: int | None
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]

    @property
    def operation(self) -> str | None:
        return _short(self.attributes.get(GEN_AI_OPERATION_NAME))

    @property
    def is_llm(self) -> bool:
        operation = self.operation
        if operation is not None:
            return operation in LLM_OPERATIONS
        # Some instrumentations name no operation; a span carrying messages is still a model call.
        return GEN_AI_INPUT_MESSAGES in self.attributes or GEN_AI_OUTPUT_MESSAGES in self.attributes

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.start, self.end)

    @property
    def error_type(self) -> str | None:
        return _short(self.attributes.get(ERROR_TYPE)) or (self.status_message if self.status == "error" else None)

    def content(self, key: str) -> Any:
        """A content attribute: from the span's attributes first, else from its events (event capture mode)."""
        if key in self.attributes:
            return self.attributes[key]
        fallback = None
        for name, attributes in self.events:
            if key in attributes:
                if name == GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS:
                    return attributes[key]
                if fallback is None:
                    fallback = attributes[key]
        return fallback


def _read_spans(spans: Any, notes: _Notes) -> list[_Span]:
    if isinstance(spans, (str, bytes, bytearray, Mapping)) or not isinstance(spans, Iterable):
        notes.add("the spans are not a list; nothing to assemble")
        return []
    read: list[_Span] = []
    seen: set[str] = set()
    duplicates = 0
    for index, raw in enumerate(spans):
        if not isinstance(raw, Mapping):
            notes.add(f"span #{index} is not an object; skipped")
            continue
        span_id = _id(raw.get("span_id"))
        if span_id is None:
            notes.add(f"span #{index} has no usable span_id; skipped")
            continue
        if span_id in seen:
            duplicates += 1
            continue
        seen.add(span_id)
        parent = raw.get("parent_span_id")
        parent_id = _id(parent)
        if parent_id is None and parent not in (None, ""):
            notes.add(f"span {span_id}: parent_span_id is not an id; read as a root")
        status = raw.get("status")
        status = status if isinstance(status, Mapping) else {}
        attributes = raw.get("attributes")
        if not isinstance(attributes, Mapping):
            if attributes is not None:
                notes.add(f"span {span_id}: attributes are not an object; ignored")
            attributes = {}
        read.append(
            _Span(
                index=index,
                span_id=span_id,
                trace_id=_id(raw.get("trace_id")),
                parent_id=parent_id,
                name=_short(raw.get("name")) or "",
                start=_int(raw.get("start_time_unix_nano")),
                end=_int(raw.get("end_time_unix_nano")),
                status=_status_code(status.get("code")),
                status_message=_short(status.get("message")) or None,
                attributes={k: v for k, v in attributes.items() if isinstance(k, str)},
                events=_events(raw.get("events")),
            )
        )
    if duplicates:
        notes.add(f"{duplicates} duplicate span(s) ignored (the first of each span_id is kept)")
    return read


def _events(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes, bytearray)):
        return []
    events = []
    for event in raw:
        if isinstance(event, Mapping) and isinstance(attributes := event.get("attributes"), Mapping):
            events.append(
                (_short(event.get("name")) or "", {k: v for k, v in attributes.items() if isinstance(k, str)})
            )
    return events


def _trace_id(spans: list[_Span], notes: _Notes) -> str | None:
    ids = _distinct(s.trace_id for s in spans)
    if len(ids) > 1:
        notes.add(f"the spans belong to {len(ids)} traces; shown together under the first")
    return ids[0] if ids else None


# --- LLM calls and their messages -------------------------------------------------------------------------------


@dataclass
class _Call:
    span: _Span
    system: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    has_content: bool = False

    @property
    def model(self) -> str | None:
        attributes = self.span.attributes
        return _short(attributes.get(GEN_AI_RESPONSE_MODEL)) or _short(attributes.get(GEN_AI_REQUEST_MODEL))

    @property
    def provider(self) -> str | None:
        attributes = self.span.attributes
        return _short(attributes.get(GEN_AI_PROVIDER_NAME)) or _short(attributes.get(GEN_AI_SYSTEM))

    @property
    def responses(self) -> list[dict[str, Any]]:
        """The tool results this call's input carries (tool turns)."""
        return [turn for turn in self.inputs if turn["role"] == "tool"]


def _read_llm(span: _Span, notes: _Notes) -> _Call:
    call = _Call(span)
    start = span.start
    end = span.end if span.end is not None else span.start
    response_model = _short(span.attributes.get(GEN_AI_RESPONSE_MODEL))
    system = _json_content(span, GEN_AI_SYSTEM_INSTRUCTIONS, notes, plain_text_ok=True)
    if system is not None:
        call.has_content = True
        # The conventions record system instructions as a list of parts, not of messages.
        parts = system if isinstance(system, list) else [system]
        call.system = _turns_of({"role": "system", "parts": parts}, "system", span, start, notes)
    for key, role, when in ((GEN_AI_INPUT_MESSAGES, "user", start), (GEN_AI_OUTPUT_MESSAGES, "assistant", end)):
        messages = _json_content(span, key, notes)
        if messages is None:
            continue
        call.has_content = True
        if isinstance(messages, Mapping):
            messages = [messages]
        if not isinstance(messages, list):
            notes.add(f"span {span.span_id}: {key} is not a list of messages; skipped")
            continue
        turns = call.inputs if key == GEN_AI_INPUT_MESSAGES else call.outputs
        for message in messages:
            if not isinstance(message, Mapping):
                notes.add(f"span {span.span_id}: a message of {key} is not an object; skipped")
                continue
            for turn in _turns_of(message, role, span, when, notes):
                if key == GEN_AI_OUTPUT_MESSAGES and turn["role"] == "assistant":
                    turn["model"] = response_model
                    turn["finish_reason"] = _short(message.get("finish_reason"))
                turns.append(turn)
    return call


def _json_content(span: _Span, key: str, notes: _Notes, *, plain_text_ok: bool = False) -> Any:
    """A JSON content attribute parsed (``None`` when absent or unreadable, with a note for the latter)."""
    raw = span.content(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw == FAILED_MARKER:
            notes.add(f"span {span.span_id}: {key} failed redaction and was withheld")
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            if plain_text_ok:
                # Some instrumentations record system instructions as the bare prompt: read it as one text part.
                return raw
            notes.add(f"span {span.span_id}: {key} is not valid JSON; skipped")
            return None
    if isinstance(raw, (list, tuple, Mapping)):
        return list(raw) if isinstance(raw, tuple) else raw
    notes.add(f"span {span.span_id}: {key} is not JSON text; skipped")
    return None


def _turns_of(
    message: Mapping[str, Any], default_role: str, span: _Span, time: int | None, notes: _Notes
) -> list[dict[str, Any]]:
    """One message as turns: its text and tool calls as one turn, each tool result as a tool turn of its own."""
    role = _role(message.get("role"), default_role, span, notes)
    parts = message.get("parts")
    if parts is None and "content" in message:
        parts = [message.get("content")]  # a message in the pre-parts shape: {"role", "content"}
    if isinstance(parts, (str, Mapping)):
        parts = [parts]
    if not isinstance(parts, Sequence) or isinstance(parts, (bytes, bytearray)):
        if parts is not None:
            notes.add(f"span {span.span_id}: a message's parts are not a list; read as empty")
        parts = []
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            if part is not None:
                notes.add(f"span {span.span_id}: a message part that is not an object was skipped")
            continue
        kind = part.get("type", "text" if "content" in part else None)
        if kind == "text":
            content = part.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif content is not None:
                notes.add(f"span {span.span_id}: a text part's content is not a string; shown as JSON")
                texts.append(_render(content))
        elif kind == "tool_call":
            tool_calls.append(
                {
                    "id": _id(part.get("id")),
                    "name": _short(part.get("name")) or "",
                    "arguments": _plain(part.get("arguments"), span, notes),
                }
            )
        elif kind == "tool_call_response":
            content = _cap(_render(part.get("response")), span, notes)
            turns.append(_turn("tool", content, span, time, tool_call_id=_id(part.get("id"))))
        elif not isinstance(kind, str) or kind not in _SILENT_PART_TYPES:
            shown = kind if isinstance(kind, str) and _SAFE_WORD.fullmatch(kind) else "unknown"
            notes.add(f"span {span.span_id}: a part of type {shown} is not shown")
    if texts or tool_calls or not turns:
        content = _cap("\n".join(texts), span, notes)
        tool_call_id = _id(message.get("tool_call_id")) if role == "tool" else None
        main = _turn(role, content, span, time, tool_call_id=tool_call_id)
        if role == "assistant":
            main["tool_calls"] = tool_calls
            main["redacted"] = sorted(set(main["redacted"]) | _argument_placeholders(tool_calls))
        elif tool_calls:
            notes.add(f"span {span.span_id}: tool calls in a {role} message are not shown")
        if _text_before_responses(parts):
            turns.insert(0, main)
        else:
            turns.append(main)
    return turns


def _text_before_responses(parts: Sequence[Any]) -> bool:
    # Turns keep the order of the message's parts: a reply may come before or after the tool results it sends.
    for part in parts:
        if isinstance(part, Mapping) and part.get("type") == "tool_call_response":
            return False
        if isinstance(part, (str, Mapping)):
            return True
    return True


def _role(raw: Any, default: str, span: _Span, notes: _Notes) -> str:
    if raw is None:
        return default
    role = _ROLES.get(raw.lower()) if isinstance(raw, str) else None
    if role is None:
        notes.add(f"span {span.span_id}: a message with an unknown role was read as {default}")
        return default
    return role


def _turn(role: str, content: str, span: _Span, time: int | None, *, tool_call_id: str | None = None) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "span_id": span.span_id,
        "time_unix_nano": time,
        "model": None,
        "tool_calls": [],
        "tool_call_id": tool_call_id,
        "finish_reason": None,
        "redacted": placeholders(content),
    }


def _argument_placeholders(tool_calls: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for call in tool_calls:
        if call["arguments"] is not None:
            found.update(placeholders(_render(call["arguments"])))
    return found


def _llm_call(call: _Call) -> dict[str, Any]:
    span, attributes = call.span, call.span.attributes
    return {
        "span_id": span.span_id,
        "name": span.name,
        "operation": span.operation,
        "provider": call.provider,
        "request_model": _short(attributes.get(GEN_AI_REQUEST_MODEL)),
        "response_model": _short(attributes.get(GEN_AI_RESPONSE_MODEL)),
        "response_id": _short(attributes.get(GEN_AI_RESPONSE_ID)),
        "input_tokens": _int(attributes.get(GEN_AI_USAGE_INPUT_TOKENS)),
        "output_tokens": _int(attributes.get(GEN_AI_USAGE_OUTPUT_TOKENS)),
        "finish_reasons": _strings(attributes.get(GEN_AI_RESPONSE_FINISH_REASONS)),
        "duration_ms": span.duration_ms,
        "status": span.status,
        "error_type": span.error_type,
    }


# --- tools --------------------------------------------------------------------------------------------------------


@dataclass
class _Request:
    """A tool call the model asked for (a ``tool_call`` of an output turn), and the tool span that ran it if any."""

    call: _Call
    tool_call: dict[str, Any]
    execution: _Execution | None = None


@dataclass
class _Execution:
    """A tool span as read, with the request it ran (which lends it the call id ``@spanguard.tool`` cannot know)."""

    span: _Span
    id: str | None
    name: str
    arguments: Any
    has_result: bool
    result: Any
    result_text: str
    request: _Request | None = None


def _match_tools(tool_spans: list[_Span], calls: list[_Call], notes: _Notes) -> tuple[list[_Execution], list[_Request]]:
    """Each tool span read and tied to the request it ran: by call id, else by name and arguments, else by name.

    ``@spanguard.tool`` records no call id (the function does not know it), so name and arguments must do.
    """
    requests = [
        _Request(call, tool_call) for call in calls for turn in call.outputs for tool_call in turn["tool_calls"]
    ]
    by_id: dict[Any, deque[_Request]] = {}
    by_call: dict[Any, deque[_Request]] = {}
    by_name: dict[Any, deque[_Request]] = {}
    for request in requests:  # in the order the model asked, so each queue's head is the oldest open request
        tool_call = request.tool_call
        if tool_call["id"] is not None:
            by_id.setdefault(tool_call["id"], deque()).append(request)
        by_call.setdefault((tool_call["name"], _canonical(tool_call["arguments"])), deque()).append(request)
        by_name.setdefault(tool_call["name"], deque()).append(request)
    executions = []
    for span in tool_spans:
        attributes = span.attributes
        name = _short(attributes.get(GEN_AI_TOOL_NAME)) or span.name.removeprefix(f"{GEN_AI_OPERATION_EXECUTE_TOOL} ")
        arguments = _tool_json(span, GEN_AI_TOOL_CALL_ARGUMENTS, notes, note_plain_text=True)
        raw_result = span.content(GEN_AI_TOOL_CALL_RESULT)
        result = _tool_json(span, GEN_AI_TOOL_CALL_RESULT, notes, note_plain_text=False)
        text = _cap(raw_result if isinstance(raw_result, str) else _render(result), span, notes)
        tool_call_id = _id(attributes.get(GEN_AI_TOOL_CALL_ID))
        execution = _Execution(span, tool_call_id, name, arguments, raw_result is not None, result, text)
        if tool_call_id is not None:
            matched = _open(by_id.get(tool_call_id), span)
        else:
            matched = _open(by_call.get((name, _canonical(arguments))), span) or _open(by_name.get(name), span)
        if matched is not None:
            matched.execution, execution.request = execution, matched
            execution.id = execution.id or matched.tool_call["id"]
            execution.name = execution.name or request.tool_call["name"]
            if execution.arguments is None:
                execution.arguments = copy.deepcopy(request.tool_call["arguments"])
        executions.append(execution)
    return executions, requests


def _open(queue: deque[_Request] | None, tool: _Span) -> _Request | None:
    """The oldest request of ``queue`` not run yet, if the model asked for it before the tool span started."""
    if not queue:
        return None
    while queue and queue[0].execution is not None:
        queue.popleft()
    return queue[0] if queue and _before(queue[0].call.span, tool) else None


def _before(llm: _Span, tool: _Span) -> bool:
    return llm.start is None or tool.start is None or llm.start <= tool.start


def _tool_json(span: _Span, key: str, notes: _Notes, *, note_plain_text: bool) -> Any:
    raw = span.content(key)
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            # A tool may well return plain text; arguments, though, are recorded as a JSON object.
            if note_plain_text:
                notes.add(f"span {span.span_id}: {key} is not valid JSON; shown as text")
            value = raw
        return _plain(value, span, notes)
    return _plain(raw, span, notes)


def _tool_calls(executions: list[_Execution], requests: list[_Request], calls: list[_Call]) -> list[dict[str, Any]]:
    """Every tool span, and every tool call the model asked for that no tool span ran, by time."""
    responses = {turn["tool_call_id"]: turn for call in calls for turn in call.responses if turn["tool_call_id"]}
    rows: list[tuple[tuple[bool, int, int], dict[str, Any]]] = []
    for execution in executions:
        span = execution.span
        result = execution.result
        if not execution.has_result and execution.id in responses:
            result = responses[execution.id]["content"]  # recorded by the next model call, not by the tool span
        row = {
            "span_id": span.span_id,
            "id": execution.id,
            "name": execution.name,
            "arguments": execution.arguments,
            "result": result,
            "duration_ms": span.duration_ms,
            "status": span.status,
            "executed": True,
        }
        rows.append(((span.start is None, span.start or 0, len(rows)), row))
    for request in requests:
        if request.execution is not None:
            continue
        tool_call = request.tool_call
        # Run without a tool span (an uninstrumented tool) the result may still be in a later model call's input.
        response = responses.get(tool_call["id"]) if tool_call["id"] else None
        row = {
            "span_id": None,
            "id": tool_call["id"],
            "name": tool_call["name"],
            "arguments": copy.deepcopy(tool_call["arguments"]),  # the turn holds the same value: no shared object
            "result": response["content"] if response else None,
            "duration_ms": None,
            "status": "unset",
            "executed": False,
        }
        span = request.call.span
        time = span.end if span.end is not None else span.start
        rows.append(((time is None, time or 0, len(rows)), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


# --- the thread -----------------------------------------------------------------------------------------------------


def _key(turn: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two turns the same message: role, text and tool-call ids (arguments may be re-serialized)."""
    calls = tuple((c["id"], c["name"]) for c in turn["tool_calls"])
    return (turn["role"], turn["content"], calls, turn["tool_call_id"])


def _thread(calls: list[_Call], executions: list[_Execution]) -> list[dict[str, Any]]:
    """The conversation: each model call adds what its input holds beyond the thread so far, then its output."""
    timeline: list[tuple[tuple[bool, int, int, int], _Call | _Execution]] = []
    for call in calls:
        timeline.append(((call.span.start is None, call.span.start or 0, 0, call.span.index), call))
    for execution in executions:
        span = execution.span
        timeline.append(((span.start is None, span.start or 0, 1, span.index), execution))
    timeline.sort(key=lambda item: item[0])
    carried = _Carried([item for _, item in timeline])
    thread = _Thread()
    last_system: list[tuple[Any, ...]] | None = None
    for position, (_, item) in enumerate(timeline):
        if isinstance(item, _Call):
            system = [_key(turn) for turn in item.system]
            if system and system != last_system:
                thread.extend(item.system)
                last_system = system
            thread.extend(thread.new(item.inputs))
            thread.extend(item.outputs)
        elif item.has_result and not carried.after(item, position):
            span = item.span
            time = span.end if span.end is not None else span.start
            thread.extend([_turn("tool", item.result_text, span, time, tool_call_id=item.id)])
    return thread.turns


class _Thread:
    """The turns so far, indexed by key, so finding a call's history costs a lookup per turn, not a scan."""

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self._positions: dict[tuple[Any, ...], list[int]] = {}

    def extend(self, turns: list[dict[str, Any]]) -> None:
        for turn in turns:
            self._positions.setdefault(_key(turn), []).append(len(self.turns))
            self.turns.append(turn)

    def new(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The input turns not yet in the thread: those after the longest prefix found, in order, in the thread.

        In order rather than as an exact prefix, so that history the app trimmed, extra choices, or tool results
        the thread took from tool spans do not make the whole history look new.
        """
        at = 0
        for index, turn in enumerate(inputs):
            positions = self._positions.get(_key(turn), ())
            found = bisect.bisect_left(positions, at)
            if found == len(positions):
                return inputs[index:]
            at = positions[found] + 1
        return []


class _Carried:
    """Where in the timeline model calls last carried each tool result, by call id and by content."""

    def __init__(self, timeline: list[_Call | _Execution]) -> None:
        self._ids: dict[str, int] = {}
        self._contents: dict[str, int] = {}
        for position, item in enumerate(timeline):
            if isinstance(item, _Call):
                for turn in item.responses:
                    if turn["tool_call_id"] is not None:
                        self._ids[turn["tool_call_id"]] = position
                    if (canonical := _canonical(_parsed(turn["content"]))) is not None:
                        self._contents[canonical] = position

    def after(self, execution: _Execution, position: int) -> bool:
        """Whether a model call after ``position`` carries this tool span's result, so it must not be shown twice."""
        if execution.id is not None:
            return self._ids.get(execution.id, -1) > position
        # Without a call id, the result itself, compared as JSON: the app may have re-serialized it.
        canonical = _canonical(execution.result)
        return canonical is not None and self._contents.get(canonical, -1) > position


# --- redaction, timing --------------------------------------------------------------------------------------------


def _redaction(spans: list[_Span]) -> dict[str, Any]:
    count = 0
    entities: set[str] = set()
    for span in spans:
        value = _int(span.attributes.get(SPANGUARD_REDACTION_COUNT))
        if value is not None and value > 0:
            count += value
        entities.update(_strings(span.attributes.get(SPANGUARD_REDACTION_ENTITIES)))
    return {"count": count, "entities": sorted(entities)}


def _timing_tree(spans: list[_Span], notes: _Notes) -> list[dict[str, Any]]:
    """Spans in pre-order, children by start time; a span whose parent is not in the trace is a root."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[_Span]] = {}
    roots: list[_Span] = []
    for span in spans:
        if span.parent_id is not None and span.parent_id in by_id and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    rows: list[dict[str, Any]] = []
    visited: set[str] = set()

    def walk(root: _Span) -> None:
        # Iterative: a hostile chain of thousands of nested spans must not hit the recursion limit.
        stack = [(root, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in visited:
                continue
            visited.add(span.span_id)
            rows.append(
                {
                    "span_id": span.span_id,
                    "parent_span_id": span.parent_id,
                    "name": span.name,
                    "start_time_unix_nano": span.start,
                    "duration_ms": span.duration_ms,
                    "status": span.status,
                    "depth": depth,
                }
            )
            for child in sorted(children.get(span.span_id, ()), key=_by_start, reverse=True):
                stack.append((child, depth + 1))

    for root in sorted(roots, key=_by_start):
        walk(root)
    if len(visited) < len(spans):
        # Spans whose parents form a cycle are reachable from no root: each cycle is shown from its earliest span.
        notes.add("some spans' parents form a cycle; they are shown as roots")
        for span in sorted(spans, key=_by_start):
            if span.span_id not in visited:
                walk(span)
    return rows


# --- plain values -------------------------------------------------------------------------------------------------


def _by_start(span: _Span) -> tuple[bool, int, int]:
    return (span.start is None, span.start or 0, span.index)


def _ms(start: int | None, end: int | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start) / 1e6


def _int(value: Any) -> int | None:
    """An integer, also from the decimal string OTLP JSON writes 64-bit integers as; anything else is ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _clean(text: str) -> str:
    """``text`` without lone surrogates, which JSON decoding lets through but no UTF-8 response can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _short(value: Any) -> str | None:
    """A name-like string, or ``None`` for anything else (empty included)."""
    if not isinstance(value, str) or not value:
        return None
    return _clean(value if len(value) <= _SHORT_LIMIT else value[:_SHORT_LIMIT] + "…")


def _id(value: Any) -> str | None:
    return _clean(value) if isinstance(value, str) and 0 < len(value) <= _ID_LIMIT else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [text for item in value if (text := _short(item)) is not None]


def _distinct(values: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value is not None:
            seen.setdefault(value, None)
    return list(seen)


def _status_code(code: Any) -> str:
    if isinstance(code, bool):
        return "unset"
    text = str(code).lower().removeprefix("status_code_") if isinstance(code, (str, int)) else ""
    return _STATUS_CODES.get(text, "unset")


def _render(value: Any) -> str:
    """A value as the text a reviewer reads: strings as they are, lines of strings joined, else JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return "\n".join(value)  # Anthropic tool results: a list of text blocks
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return "[unreadable value]"


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _canonical(value: Any) -> str | None:
    """One spelling of a JSON value (keys sorted, compact), so equal values written differently compare equal."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return None


def _cap(text: str, span: _Span, notes: _Notes) -> str:
    limit = notes.content_limit
    if limit is not None and len(text) > limit:
        notes.add(f"span {span.span_id}: a content over {limit} characters was truncated")
        text = text[:limit] + TRUNCATED
    return _clean(text)


def _plain(value: Any, span: _Span, notes: _Notes) -> Any:
    """A JSON value as a plain, strictly JSON-able copy; one too large to show becomes its truncated JSON text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return _cap(value, span, notes)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        # NaN, non-JSON objects or absurd nesting: shown as text, so the page's own JSON encoding cannot fail.
        return _cap(_render(value), span, notes)
    if notes.content_limit is not None and len(text) > notes.content_limit:
        return _cap(text, span, notes)
    return json.loads(_clean(text))

"""What an approval request shows a person, and what the app keeps to resume: the agent's state at the gate.

The instrumentation hands every finished LLM call's messages to :func:`record_call`, which keeps the latest
conversation of each session (bounded); :func:`capture` assembles a gate's state from it (messages, tool calls and
results, models, the app's context), and :func:`redact_for_review` redacts it as spans are before it leaves the
process. :class:`LocalRecords` keeps the unredacted original call on local disk, versioned, so a process that died
while waiting can resume. Behaviour: docs/gates.md ("State", "Resume").
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from opentelemetry import trace

from spanguard.instrumentation.session import current_session
from spanguard.semconv import (
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_RESPONSE_MODEL,
)

logger = logging.getLogger("spanguard.gate")

__all__ = [
    "LocalRecord",
    "LocalRecords",
    "capture",
    "enable_recording",
    "record_call",
    "recording",
    "redact_for_review",
]

ENDPOINT_ENV: Final = "SPANGUARD_REVIEW_ENDPOINT"  # set: gates ask there, so calls are remembered for them
TOKEN_ENV: Final = "SPANGUARD_REVIEW_TOKEN"  # the ingest token gates ask with
RECORD_SCHEMA_VERSION: Final = 1
_SESSIONS: Final = 256  # conversations remembered per process
_MESSAGES: Final = 200  # messages kept per conversation (the latest)
_MODELS: Final = 20

_lock = threading.Lock()
_recent: OrderedDict[str, _Conversation] = OrderedDict()
_recording = False


def recording() -> bool:
    """Whether LLM calls are remembered for approval requests (once a review service is set for gates)."""
    return _recording


def enable_recording(on: bool = True) -> None:
    """Remember (or stop remembering) each session's latest conversation for approval requests."""
    global _recording
    _recording = on
    if not on:
        forget_all()


@dataclass
class _Conversation:
    messages: list[Any]
    models: list[str]


def _key() -> str | None:
    """The conversation a call belongs to: its session id, else its trace (an agent loop without a session)."""
    session_id = current_session().get(GEN_AI_CONVERSATION_ID)
    if session_id:
        return f"session:{session_id}"
    context = trace.get_current_span().get_span_context()
    return f"trace:{context.trace_id:032x}" if context.is_valid else None


def _messages(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, list) else []


def record_call(captured: Mapping[str, Any], response: Mapping[str, Any]) -> None:
    """Remember one finished LLM call's input and output messages and model as its conversation's latest state."""
    key = _key()
    if key is None:
        return
    messages = _messages(captured.get(GEN_AI_INPUT_MESSAGES)) + _messages(captured.get(GEN_AI_OUTPUT_MESSAGES))
    model = response.get(GEN_AI_RESPONSE_MODEL)
    with _lock:
        known = _recent.pop(key, None) or _Conversation([], [])
        if messages:
            known.messages = messages[-_MESSAGES:]
        if isinstance(model, str) and model not in known.models:
            known.models = [*known.models, model][-_MODELS:]
        _recent[key] = known
        while len(_recent) > _SESSIONS:
            _recent.popitem(last=False)


def forget_all() -> None:
    """Forget every remembered conversation (tests, and ``uninstrument()``)."""
    with _lock:
        _recent.clear()


def _tool_calls(messages: list[Any]) -> list[dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for message in messages:
        parts = message.get("parts") if isinstance(message, Mapping) else None
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, Mapping):
                continue
            call_id = str(part.get("id") or f"#{len(order)}")
            if part.get("type") == "tool_call":
                if call_id not in calls:
                    order.append(call_id)
                calls[call_id] = {"id": call_id, "name": part.get("name"), "arguments": part.get("arguments")}
            elif part.get("type") == "tool_call_response":
                if call_id not in calls:
                    order.append(call_id)
                    calls[call_id] = {"id": call_id, "name": None, "arguments": None}
                calls[call_id]["result"] = part.get("response")
    # Earlier calls with their results: a call without one yet is the pending call itself (or one beside it).
    return [calls[call_id] for call_id in order if "result" in calls[call_id]]


def capture(context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The current conversation's state for an approval request: messages, tool calls, models and ``context``."""
    key = _key()
    with _lock:
        known = _recent.get(key) if key is not None else None
        messages = list(known.messages) if known is not None else []
        models = list(known.models) if known is not None else []
    return {
        "messages": messages,
        "tool_calls": _tool_calls(messages),
        "context": dict(context or {}),
        "models": models,
    }


def _shared_redactor() -> Any:
    """The redactor of in-process span redaction when there is one (its settings), else the process-wide default."""
    from spanguard.instrumentation import _base
    from spanguard.processors.redaction import default_redactor

    with _base._processor_lock:
        for _, redactor, _count in _base._redaction.values():
            return redactor
    return default_redactor()


def redact_for_review(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` redacted as span attributes are (a value that is not JSON, such as a date, as its text); a value that
    fails redaction is dropped (None)."""
    encoded = {key: json.dumps(v, ensure_ascii=False, allow_nan=False, default=str) for key, v in values.items()}
    redacted = _shared_redactor().redact_attributes(encoded).attributes
    out: dict[str, Any] = {}
    for key in values:
        text = redacted.get(key)
        try:
            out[key] = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            out[key] = None  # redaction replaced the whole value (it failed, or the value was one secret): dropped
    return out


@dataclass(frozen=True)
class LocalRecord:
    """The app's own record of one approval request: the original (unredacted) call and the app's state."""

    approval_id: str
    action: str
    arguments: dict[str, Any]
    digest: str
    session_id: str | None
    app_state: Any = None
    schema_version: int = RECORD_SCHEMA_VERSION


class LocalRecords:
    """Approval records on local disk, one JSON file each (written atomically, readable only by the owner)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, approval_id: str) -> Path:
        if not approval_id or not all(c.isalnum() or c in "_-" for c in approval_id):
            raise ValueError(f"not an approval id: {approval_id!r}")
        return self.directory / f"{approval_id}.json"

    def save(self, record: LocalRecord) -> None:
        """Write ``record`` (replacing an earlier one of the same id)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps(
            {
                "schema_version": record.schema_version,
                "approval_id": record.approval_id,
                "action": record.action,
                "arguments": record.arguments,
                "digest": record.digest,
                "session_id": record.session_id,
                "app_state": record.app_state,
            },
            ensure_ascii=False,
        )
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
            os.replace(temporary, self._path(record.approval_id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self, approval_id: str) -> LocalRecord | None:
        """The record of ``approval_id``, or None when there is none; ValueError when it cannot be read."""
        path = self._path(approval_id)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ValueError(f"the local approval record {path} cannot be read: {type(error).__name__}") from None
        return _from_json(raw, path)

    def remove(self, approval_id: str) -> None:
        """Forget the record of ``approval_id`` (after its call ran)."""
        self._path(approval_id).unlink(missing_ok=True)


def _from_json(raw: Any, path: Path) -> LocalRecord:
    """A record from any schema version this code knows (1 today; a newer one is refused, not guessed)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"the local approval record {path} is not a JSON object")
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or version < 1 or version > RECORD_SCHEMA_VERSION:
        raise ValueError(f"the local approval record {path} has schema version {version!r}; this spanguard reads 1")
    try:
        arguments = raw["arguments"]
        if not isinstance(arguments, dict):
            raise TypeError("arguments")
        return LocalRecord(
            approval_id=str(raw["approval_id"]),
            action=str(raw["action"]),
            arguments=arguments,
            digest=str(raw["digest"]),
            session_id=raw.get("session_id") if isinstance(raw.get("session_id"), str) else None,
            app_state=raw.get("app_state"),
            schema_version=version,
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"the local approval record {path} lacks {error}") from None

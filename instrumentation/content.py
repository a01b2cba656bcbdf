"""Message-content capture: the on/off setting and the conventions' JSON "parts" format.

Content is off by default. ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` takes the conventions' values
(``NO_CONTENT``, ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``) or ``true``/``false``; ``true`` means
``SPAN_ONLY``, because span attributes are where every backend reads content.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "CAPTURE_ENV",
    "CaptureMode",
    "as_mapping",
    "capture_mode",
    "messages_of",
    "parse_arguments",
    "parse_capture_mode",
    "text_of",
    "text_part",
    "to_json",
    "tool_call_part",
    "tool_definition",
    "tool_definitions",
    "tool_response_part",
]

CAPTURE_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

logger = logging.getLogger("spanguard.instrumentation")


class CaptureMode(enum.Enum):
    """Where message content goes: nowhere, span attributes, a span event, or both."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_span(self) -> bool:
        """Whether content is recorded as span attributes."""
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        """Whether content is recorded on the ``gen_ai.client.inference.operation.details`` span event."""
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        """Whether any content is recorded."""
        return self is not CaptureMode.NO_CONTENT


def parse_capture_mode(value: str | None) -> CaptureMode:
    """Parse a capture setting; unknown values fall back to no content with a warning naming the value."""
    if value is None or not value.strip():
        return CaptureMode.NO_CONTENT
    text = value.strip()
    lowered = text.lower()
    if lowered == "true":
        return CaptureMode.SPAN_ONLY
    if lowered == "false":
        return CaptureMode.NO_CONTENT
    try:
        return CaptureMode(text.upper())
    except ValueError:
        logger.warning(
            "%s=%r is not one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true, false; "
            "message content is not captured",
            CAPTURE_ENV,
            text,
        )
        return CaptureMode.NO_CONTENT


def capture_mode(capture_content: bool | str | CaptureMode | None) -> CaptureMode:
    """Resolve ``instrument(capture_content=...)``: an explicit argument wins, else the environment decides."""
    if isinstance(capture_content, CaptureMode):
        return capture_content
    if isinstance(capture_content, bool):
        return CaptureMode.SPAN_ONLY if capture_content else CaptureMode.NO_CONTENT
    if isinstance(capture_content, str):
        return parse_capture_mode(capture_content)
    return parse_capture_mode(os.environ.get(CAPTURE_ENV))


def to_json(value: Any) -> str:
    """Serialize captured content compactly; objects JSON does not know become their ``str``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON string, else unchanged."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def text_part(content: str) -> dict[str, Any]:
    """A ``text`` part."""
    return {"type": "text", "content": content}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A ``tool_call`` part, its arguments parsed from JSON when they are a string."""
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": parse_arguments(arguments)}


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    """A ``tool_call_response`` part."""
    return {"type": "tool_call_response", "id": call_id, "response": response}


def tool_definitions(tools: Any) -> str | None:
    """``gen_ai.tool.definitions``: the request's tools in the conventions' shape (``type`` and ``name`` on top)."""
    if not isinstance(tools, Sequence) or isinstance(tools, str) or not tools:
        return None
    return to_json([tool_definition(tool) for tool in tools])


def tool_definition(tool: Any) -> dict[str, Any]:
    """One tool in the conventions' shape, from any provider's wire shape.

    OpenAI chat's ``{"type": "function", "function": {...}}`` is lifted to the top; Anthropic's ``{"name",
    "description", "input_schema"}`` becomes a ``function`` with ``parameters``; a built-in tool without a name
    (``{"type": "web_search"}``) is named by its type.
    """
    item = as_mapping(tool)
    if item is None:
        return {"type": "function", "name": str(tool)}
    out = dict(item)
    kind = out.get("type")
    nested = out.get(kind) if isinstance(kind, str) else None
    if isinstance(kind, str) and isinstance(nested, Mapping):
        del out[kind]
        out.update(nested)
    elif kind in (None, "custom") and "input_schema" in out:
        out["parameters"] = out.pop("input_schema")
        out["type"] = "function"
    out.setdefault("type", "function")
    if not isinstance(out.get("name"), str):
        out["name"] = str(out["type"])
    return out


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """A request/response item as a mapping: dicts as they are, pydantic models dumped, else ``None``."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(exclude_none=True)
        except Exception:
            return None
    return None


def messages_of(messages: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each message of a request's message list as (role, mapping); non-messages are skipped."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return
    for raw in messages:
        message = as_mapping(raw)
        if message is not None:
            yield str(message.get("role", "user")), message


def text_of(content: Any) -> list[dict[str, Any]]:
    """Parts for a message ``content`` that is a string or a list of typed blocks (text, images, ...)."""
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable):
        for block in content:
            item = as_mapping(block)
            if item is None:
                continue
            kind = item.get("type")
            if kind in ("text", "input_text", "output_text"):
                parts.append(text_part(str(item.get("text", ""))))
            elif kind is not None:
                # Media and other blocks are recorded by type only: their payload can be megabytes.
                parts.append({"type": str(kind)})
    return parts

"""The pure mapping of other instrumentations' GenAI span shapes onto the latest GenAI conventions.

Each source (OpenInference, OpenLLMetry, the older official conventions, the Vercel AI SDK) is a :class:`Source` in
:data:`SOURCES`, a registry in the manner of Presidio's: it says whether a span is its shape and what the conventions'
attributes are. What each maps: docs/instrumentation.md ("Spans from other instrumentations").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from spanguard import semconv
from spanguard.processors.view import EventView
from spanguard.semconv import sources as src

__all__ = ["SOURCES", "Mapped", "Source", "normalize_attributes"]

Parts = list[dict[str, Any]]
Message = dict[str, Any]


@dataclass
class Mapped:
    """What a source read from a span: the conventions' attributes, and the original keys and events it used."""

    attributes: dict[str, Any] = field(default_factory=dict)
    used_keys: set[str] = field(default_factory=set)
    used_events: set[int] = field(default_factory=set)
    """Indexes of the span's events folded into the attributes."""


@dataclass(frozen=True)
class Source:
    """One instrumentation's shape: ``detect`` says whether a span has it, ``read`` maps it."""

    name: str
    detect: Callable[[Mapping[str, Any], Sequence[EventView]], bool]
    read: Callable[[Mapping[str, Any], Sequence[EventView]], Mapped]


# --------------------------------------------------------------------------------------------------------- helpers


def _json(value: Any) -> Any:
    """A JSON string parsed (anything else, or JSON that does not parse, as it is)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text_parts(content: Any) -> Parts:
    """Parts of a message ``content``: a string, or a list of OpenAI/Vercel/Anthropic-style content blocks."""
    if isinstance(content, str):
        # A string is text unless it is a JSON list of content blocks: a tool's JSON result stays the text it is.
        blocks = _json(content) if content.startswith("[") else None
        if not isinstance(blocks, list):
            return [{"type": "text", "content": content}] if content else []
        content = blocks
    if content is None or content == "":
        return []
    if isinstance(content, Mapping):
        content = [content]
    parts: Parts = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, Mapping):
                parts.append(_block_part(block))
    else:
        parts.append({"type": "text", "content": str(content)})
    return parts


def _block_part(block: Mapping[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text") or (kind is None and "text" in block):
        return {"type": "text", "content": block.get("text", block.get("content", ""))}
    if kind in ("tool-call", "tool_use", "function_call"):
        return _tool_call(
            block.get("toolCallId", block.get("id")),
            block.get("toolName", block.get("name")),
            block.get("args", block.get("input", block.get("arguments"))),
        )
    if kind in ("tool-result", "tool_result", "function_call_output"):
        return {
            "type": "tool_call_response",
            "id": block.get("toolCallId", block.get("tool_use_id", block.get("call_id"))),
            "response": block.get("result", block.get("output", block.get("content"))),
        }
    return {"type": kind or "unknown", **{k: v for k, v in block.items() if k != "type"}}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call", "name": name if isinstance(name, str) else str(name or "")}
    if call_id:
        part["id"] = str(call_id)
    if arguments is not None:
        part["arguments"] = _json(arguments)
    return part


def _openai_message(message: Mapping[str, Any]) -> Message:
    """An OpenAI chat message (as OpenLLMetry and the older official events record them) in the parts format."""
    role = str(message.get("role") or "user")
    parts = _text_parts(message.get("content"))
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping):
            inner = call.get("function")
            function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else call
            parts.append(_tool_call(call.get("id"), function.get("name"), function.get("arguments")))
    if role == "tool" and message.get("tool_call_id"):
        text = " ".join(p.get("content", "") for p in parts if p.get("type") == "text")
        parts = [{"type": "tool_call_response", "id": str(message["tool_call_id"]), "response": text}]
    return {"role": role, "parts": parts}


def _indexed(attributes: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``prefix.N.rest`` keys grouped by ``N``: {N: {rest: value}}."""
    start = prefix + "."
    cut = len(start)
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(start):
            index, _, rest = key[cut:].partition(".")
            if rest and index.isdigit():
                grouped.setdefault(int(index), {})[rest] = value
    return dict(sorted(grouped.items()))


def _keys_with(attributes: Mapping[str, Any], prefix: str) -> set[str]:
    return {key for key in attributes if key.startswith(prefix + ".")}


def _set(mapped: Mapped, key: str, value: Any) -> None:
    if value is not None and value != "" and value != []:
        mapped.attributes[key] = value


def _set_messages(mapped: Mapped, inputs: list[Message], outputs: list[Message]) -> None:
    """The input and output messages, as the conventions' JSON, where there are any."""
    if inputs:
        _set(mapped, semconv.GEN_AI_INPUT_MESSAGES, dumps(inputs))
    if outputs:
        _set(mapped, semconv.GEN_AI_OUTPUT_MESSAGES, dumps(outputs))


def _provider(value: Any) -> str | None:
    """A provider as the conventions name it (``openai``, ``anthropic``, ``aws.bedrock``, ...)."""
    if not isinstance(value, str) or not value:
        return None
    name = value.lower().split(".")[0]  # Vercel: "openai.chat", "anthropic.messages"
    return {
        "bedrock": "aws.bedrock",
        "vertexai": "gcp.vertex_ai",
        "vertex": "gcp.vertex_ai",
        "azure": "azure.ai.openai",
        "google": "gcp.gen_ai",
        "mistral": "mistral_ai",
    }.get(name, name)


# -------------------------------------------------------------------------------------------------- OpenInference


def _oi_messages(attributes: Mapping[str, Any], prefix: str) -> list[Message]:
    messages = []
    for fields in _indexed(attributes, prefix).values():
        role = str(fields.get("message.role") or "user")
        parts: Parts = []
        if fields.get("message.content") not in (None, ""):
            parts += _text_parts(fields["message.content"])
        for content in _indexed(fields, "message.contents").values():
            if content.get("message_content.type", "text") == "text":
                parts.append({"type": "text", "content": content.get("message_content.text", "")})
        for call in _indexed(fields, "message.tool_calls").values():
            parts.append(
                _tool_call(
                    call.get("tool_call.id"),
                    call.get("tool_call.function.name"),
                    call.get("tool_call.function.arguments"),
                )
            )
        if role == "tool" and fields.get("message.tool_call_id"):
            text = " ".join(p.get("content", "") for p in parts if p.get("type") == "text")
            parts = [{"type": "tool_call_response", "id": str(fields["message.tool_call_id"]), "response": text}]
        messages.append({"role": role, "parts": parts})
    return messages


def _oi_read(attributes: Mapping[str, Any], events: Sequence[EventView]) -> Mapped:
    mapped = Mapped()
    kind = str(attributes.get(src.OI_SPAN_KIND, "")).upper()
    _set(mapped, semconv.GEN_AI_OPERATION_NAME, src.OI_KINDS.get(kind))
    model = attributes.get(src.OI_MODEL_NAME)
    _set(mapped, semconv.GEN_AI_REQUEST_MODEL, model)
    _set(mapped, semconv.GEN_AI_RESPONSE_MODEL, model)
    _set(
        mapped,
        semconv.GEN_AI_PROVIDER_NAME,
        _provider(attributes.get(src.OI_PROVIDER) or attributes.get(src.OI_SYSTEM)),
    )
    _set(mapped, semconv.GEN_AI_USAGE_INPUT_TOKENS, _int(attributes.get(src.OI_PROMPT_TOKENS)))
    _set(mapped, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, _int(attributes.get(src.OI_COMPLETION_TOKENS)))
    _set(mapped, semconv.GEN_AI_CONVERSATION_ID, attributes.get(src.OI_SESSION_ID))
    _set(mapped, semconv.GEN_AI_AGENT_NAME, attributes.get(src.OI_AGENT_NAME) if kind == "AGENT" else None)
    inputs = _oi_messages(attributes, src.OI_INPUT_MESSAGES)
    outputs = _oi_messages(attributes, src.OI_OUTPUT_MESSAGES)
    _set_messages(mapped, inputs, outputs)
    tools = [_json(t.get("tool.json_schema")) for t in _indexed(attributes, src.OI_TOOLS).values()]
    if tools:
        _set(mapped, semconv.GEN_AI_TOOL_DEFINITIONS, dumps(tools))
    params = _json(attributes.get(src.OI_INVOCATION_PARAMETERS))
    if isinstance(params, Mapping):
        _set(mapped, semconv.GEN_AI_REQUEST_TEMPERATURE, params.get("temperature"))
        _set(mapped, semconv.GEN_AI_REQUEST_MAX_TOKENS, _int(params.get("max_tokens")))
    if kind == "TOOL":
        _set(mapped, semconv.GEN_AI_TOOL_NAME, attributes.get(src.OI_TOOL_NAME))
        _set(mapped, semconv.GEN_AI_TOOL_DESCRIPTION, attributes.get(src.OI_TOOL_DESCRIPTION))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_ID, attributes.get(src.OI_TOOL_CALL_ID))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, attributes.get(src.OI_INPUT_VALUE))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_RESULT, attributes.get(src.OI_OUTPUT_VALUE))
    mapped.used_keys = {
        key
        for key in attributes
        if key.startswith(("llm.", "openinference.", "tool.", "tool_call.")) or key == src.OI_SESSION_ID
    }
    return mapped


# --------------------------------------------------------------------------------------------------- OpenLLMetry


def _tl_messages(attributes: Mapping[str, Any], prefix: str) -> list[Message]:
    messages = []
    for fields in _indexed(attributes, prefix).values():
        message: dict[str, Any] = {
            "role": fields.get("role") or ("assistant" if prefix == src.TL_COMPLETION else "user")
        }
        message["content"] = fields.get("content")
        calls = _indexed(fields, "tool_calls")
        message["tool_calls"] = [
            {"id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("arguments")}}
            for c in calls.values()
        ]
        if fields.get("tool_call_id"):
            message["tool_call_id"] = fields["tool_call_id"]
        converted = _openai_message(message)
        if fields.get("finish_reason"):
            converted["finish_reason"] = fields["finish_reason"]
        messages.append(converted)
    return messages


def _tl_read(attributes: Mapping[str, Any], events: Sequence[EventView]) -> Mapped:
    mapped = Mapped()
    kind = attributes.get(src.TL_SPAN_KIND)
    operation = src.TL_REQUEST_TYPES.get(str(attributes.get(src.TL_REQUEST_TYPE, ""))) or src.TL_KINDS.get(str(kind))
    _set(mapped, semconv.GEN_AI_OPERATION_NAME, operation)
    _set(mapped, semconv.GEN_AI_PROVIDER_NAME, _provider(attributes.get(src.GEN_AI_SYSTEM)))
    _set(mapped, semconv.GEN_AI_USAGE_INPUT_TOKENS, _int(attributes.get(src.TL_PROMPT_TOKENS)))
    _set(mapped, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, _int(attributes.get(src.TL_COMPLETION_TOKENS)))
    _set(mapped, semconv.GEN_AI_CONVERSATION_ID, attributes.get(src.TL_SESSION_ID))
    inputs = _tl_messages(attributes, src.TL_PROMPT)
    outputs = _tl_messages(attributes, src.TL_COMPLETION)
    _set_messages(mapped, inputs, outputs)
    functions = [
        {
            "type": "function",
            "name": f.get("name"),
            "description": f.get("description"),
            "parameters": _json(f.get("parameters")),
        }
        for f in _indexed(attributes, src.TL_FUNCTIONS).values()
    ]
    if functions:
        _set(mapped, semconv.GEN_AI_TOOL_DEFINITIONS, dumps(functions))
    if kind == "tool":
        _set(mapped, semconv.GEN_AI_TOOL_NAME, attributes.get(src.TL_ENTITY_NAME))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, attributes.get(src.TL_ENTITY_INPUT))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_RESULT, attributes.get(src.TL_ENTITY_OUTPUT))
    elif kind == "agent":
        _set(mapped, semconv.GEN_AI_AGENT_NAME, attributes.get(src.TL_ENTITY_NAME))
    mapped.used_keys = (
        _keys_with(attributes, src.TL_PROMPT)
        | _keys_with(attributes, src.TL_COMPLETION)
        | _keys_with(attributes, src.TL_FUNCTIONS)
        | {
            k
            for k in (src.TL_PROMPT_TOKENS, src.TL_COMPLETION_TOKENS, src.TL_REQUEST_TYPE, src.GEN_AI_SYSTEM)
            if k in attributes
        }
        | {k for k in attributes if k.startswith("traceloop.")}
    )
    return mapped


# ----------------------------------------------------------------------------------- the older official conventions


def _old_read(attributes: Mapping[str, Any], events: Sequence[EventView]) -> Mapped:
    mapped = Mapped()
    _set(mapped, semconv.GEN_AI_PROVIDER_NAME, _provider(attributes.get(src.GEN_AI_SYSTEM)))
    _set(mapped, semconv.GEN_AI_USAGE_INPUT_TOKENS, _int(attributes.get(src.TL_PROMPT_TOKENS)))
    _set(mapped, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, _int(attributes.get(src.TL_COMPLETION_TOKENS)))
    mapped.used_keys = {
        k for k in (src.GEN_AI_SYSTEM, src.TL_PROMPT_TOKENS, src.TL_COMPLETION_TOKENS) if k in attributes
    }
    inputs: list[Message] = []
    outputs: list[Message] = []
    for index, event in enumerate(events):
        fields = event.attributes
        if event.name in src.OLD_MESSAGE_EVENTS:
            message = {
                "role": fields.get("role") or src.OLD_MESSAGE_EVENTS[event.name],
                "content": fields.get("content"),
                "tool_calls": _json(fields.get("tool_calls")) or [],
                "tool_call_id": fields.get("id"),
            }
            inputs.append(_openai_message(message))
        elif event.name == src.OLD_CHOICE_EVENT:
            body = _json(fields.get("message")) or {}
            body = dict(body) if isinstance(body, Mapping) else {"content": body}
            body.setdefault("role", "assistant")
            if "content" in fields and "content" not in body:
                body["content"] = fields["content"]
            if "tool_calls" in fields and "tool_calls" not in body:
                body["tool_calls"] = _json(fields["tool_calls"])
            message = _openai_message(body)
            if fields.get("finish_reason"):
                message["finish_reason"] = fields["finish_reason"]
            outputs.append(message)
        elif event.name == src.OLD_PROMPT_EVENT:
            prompt = _json(fields.get(src.TL_PROMPT))
            inputs += (
                [_openai_message(m) for m in prompt if isinstance(m, Mapping)]
                if isinstance(prompt, list)
                else [{"role": "user", "parts": _text_parts(prompt)}]
            )
        elif event.name == src.OLD_COMPLETION_EVENT:
            completion = _json(fields.get(src.TL_COMPLETION))
            if isinstance(completion, list):
                outputs += [_openai_message({"role": "assistant", **m}) for m in completion if isinstance(m, Mapping)]
            else:
                outputs.append({"role": "assistant", "parts": _text_parts(completion)})
        else:
            continue
        mapped.used_events.add(index)
    _set_messages(mapped, inputs, outputs)
    return mapped


def _old_detect(attributes: Mapping[str, Any], events: Sequence[EventView]) -> bool:
    names = set(src.OLD_MESSAGE_EVENTS) | {src.OLD_CHOICE_EVENT, src.OLD_PROMPT_EVENT, src.OLD_COMPLETION_EVENT}
    return src.GEN_AI_SYSTEM in attributes or any(event.name in names for event in events)


# ------------------------------------------------------------------------------------------------- Vercel AI SDK


def _first(attributes: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in attributes:
            return attributes[key]
    return None


def _ai_read(attributes: Mapping[str, Any], events: Sequence[EventView]) -> Mapped:
    mapped = Mapped()
    operation_id = str(attributes.get(src.AI_OPERATION_ID) or attributes.get("operation.name") or "").split(" ")[0]
    _set(mapped, semconv.GEN_AI_OPERATION_NAME, src.AI_OPERATIONS.get(operation_id))
    _set(mapped, semconv.GEN_AI_REQUEST_MODEL, attributes.get(src.AI_MODEL_ID))
    _set(mapped, semconv.GEN_AI_RESPONSE_MODEL, attributes.get(src.AI_RESPONSE_MODEL) or None)
    _set(mapped, semconv.GEN_AI_PROVIDER_NAME, _provider(attributes.get(src.AI_MODEL_PROVIDER)))
    _set(mapped, semconv.GEN_AI_USAGE_INPUT_TOKENS, _int(_first(attributes, src.AI_USAGE_INPUT)))
    _set(mapped, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, _int(_first(attributes, src.AI_USAGE_OUTPUT)))
    _set(mapped, semconv.GEN_AI_CONVERSATION_ID, _first(attributes, src.AI_SESSION_ID))
    prompt = _json(attributes.get(src.AI_PROMPT_MESSAGES))
    if not isinstance(prompt, list):
        whole = _json(attributes.get(src.AI_PROMPT))
        prompt = []
        if isinstance(whole, Mapping):
            if whole.get("system"):
                _set(mapped, semconv.GEN_AI_SYSTEM_INSTRUCTIONS, dumps(_text_parts(whole["system"])))
            prompt = whole.get("messages") or (
                [{"role": "user", "content": whole["prompt"]}] if whole.get("prompt") else []
            )
    inputs = [
        {"role": str(m.get("role") or "user"), "parts": _text_parts(m.get("content"))}
        for m in prompt
        if isinstance(m, Mapping)
    ]
    if inputs:
        _set(mapped, semconv.GEN_AI_INPUT_MESSAGES, dumps(inputs))
    parts = _text_parts(attributes.get(src.AI_RESPONSE_TEXT))
    calls = _json(attributes.get(src.AI_RESPONSE_TOOL_CALLS))
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, Mapping):
            parts.append(_tool_call(call.get("toolCallId"), call.get("toolName"), call.get("args", call.get("input"))))
    if parts:
        output: Message = {"role": "assistant", "parts": parts}
        if attributes.get(src.AI_RESPONSE_FINISH_REASON):
            output["finish_reason"] = attributes[src.AI_RESPONSE_FINISH_REASON]
        _set(mapped, semconv.GEN_AI_OUTPUT_MESSAGES, dumps([output]))
    if operation_id == "ai.toolCall":
        _set(mapped, semconv.GEN_AI_TOOL_NAME, attributes.get(src.AI_TOOL_CALL_NAME))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_ID, attributes.get(src.AI_TOOL_CALL_ID))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, _first(attributes, src.AI_TOOL_CALL_ARGS))
        _set(mapped, semconv.GEN_AI_TOOL_CALL_RESULT, _first(attributes, src.AI_TOOL_CALL_RESULT))
    mapped.used_keys = {key for key in attributes if key.startswith("ai.")}
    return mapped


SOURCES: Final[tuple[Source, ...]] = (
    Source("openinference", lambda a, e: src.OI_SPAN_KIND in a or src.OI_MODEL_NAME in a, _oi_read),
    Source(
        "openllmetry",
        lambda a, e: (
            any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "traceloop.")) for k in a)
            or src.TL_REQUEST_TYPE in a
        ),
        _tl_read,
    ),
    Source("vercel_ai", lambda a, e: src.AI_OPERATION_ID in a or src.AI_MODEL_ID in a, _ai_read),
    Source("official_legacy", _old_detect, _old_read),
)
"""The sources, tried in order: the first whose ``detect`` says yes maps the span."""


def normalize_attributes(
    attributes: Mapping[str, Any],
    events: Sequence[EventView],
    *,
    sources: Sequence[Source] = SOURCES,
    drop_original: bool = False,
) -> tuple[dict[str, Any], list[EventView], str] | None:
    """The span's attributes and events with the conventions' attributes added (never overwriting one the span
    already has), and the source's name; ``None`` when no source recognises the span or nothing would change.
    With ``drop_original`` the source's own keys and the events folded in are removed."""
    for source in sources:
        if not source.detect(attributes, events):
            continue
        mapped = source.read(attributes, events)
        added = {key: value for key, value in mapped.attributes.items() if key not in attributes}
        if not added and not (drop_original and (mapped.used_keys or mapped.used_events)):
            return None
        out = dict(attributes)
        kept_events = list(events)
        if drop_original:
            for key in mapped.used_keys:
                out.pop(key, None)
            kept_events = [event for index, event in enumerate(events) if index not in mapped.used_events]
        out.update(added)
        return out, kept_events, source.name
    return None

"""Anthropic SDK: ``messages`` and ``beta.messages`` ``create``/``parse`` (sync, async, ``stream=True``, raw and
streaming responses) and the ``stream(...)`` helpers.

Anthropic SDKs from 2.x emit a span of their own per request (scope ``com.anthropic.sdk.python``). spanguard leaves
that span out for the requests it instruments and emits its own, so one call gives exactly one span, named and
shaped like every other provider's by the GenAI conventions; the SDK's other requests keep theirs, and
``uninstrument()`` gives the SDK all of them back. Call paths: docs/instrumentation.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.util.types import AttributeValue

from spanguard.instrumentation._base import SpanguardInstrumentor, Target
from spanguard.instrumentation._core import (
    IN_INSTRUMENTED_CALL,
    Telemetry,
    log_internal_error,
    put,
    put_float,
    put_nonzero,
    put_strings,
    with_extra_body,
)
from spanguard.instrumentation._stream import AsyncStreamProxy, SyncStreamProxy
from spanguard.instrumentation._wrap import TelemetryGetter, async_wrapper, begin, fail, sync_wrapper
from spanguard.instrumentation.content import (
    as_mapping,
    messages_of,
    text_of,
    text_part,
    to_json,
    tool_call_part,
    tool_definitions,
    tool_response_part,
)
from spanguard.instrumentation.models import UnpinnedModelError
from spanguard.semconv import (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_CHAT,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_TOP_K,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)

__all__ = [
    "AnthropicInstrumentor",
]

PROVIDER = "anthropic"
Attributes = dict[str, AttributeValue]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_attributes(attributes: Attributes, usage: Any) -> None:
    """Token usage; ``input_tokens`` includes cache reads and writes, as the GenAI conventions define it."""
    if usage is None:
        return
    uncached = getattr(usage, "input_tokens", None)
    cache_read = getattr(usage, "cache_read_input_tokens", None)
    cache_write = getattr(usage, "cache_creation_input_tokens", None)
    if isinstance(uncached, int):
        attributes[GEN_AI_USAGE_INPUT_TOKENS] = _int(uncached) + _int(cache_read) + _int(cache_write)
    put_nonzero(attributes, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
    put_nonzero(attributes, GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write)
    put(attributes, GEN_AI_USAGE_OUTPUT_TOKENS, getattr(usage, "output_tokens", None), int)
    details = getattr(usage, "output_tokens_details", None)
    thinking = (
        details.get("thinking_tokens") if isinstance(details, Mapping) else getattr(details, "thinking_tokens", None)
    )
    put(attributes, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, thinking, int)


def input_messages(messages: Any) -> list[dict[str, Any]]:
    """Anthropic ``messages`` in the conventions' parts format; ``tool_result`` blocks become tool messages."""
    converted: list[dict[str, Any]] = []
    for role, message in messages_of(messages):
        content = message.get("content")
        if isinstance(content, str):
            converted.append({"role": role, "parts": [text_part(content)]})
            continue
        parts: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for raw_block in content or ():
            block = as_mapping(raw_block) or {}
            kind = block.get("type")
            if kind == "tool_use":
                parts.append(tool_call_part(block.get("id"), block.get("name"), block.get("input")))
            elif kind == "tool_result":
                result = block.get("content")
                response = result if isinstance(result, str) else [p.get("content") for p in text_of(result)]
                results.append(tool_response_part(block.get("tool_use_id"), response))
            else:
                parts.extend(text_of([block]))
        if results:
            converted.append({"role": "tool", "parts": results})
        if parts or not results:
            converted.append({"role": role, "parts": parts})
    return converted


def output_parts(blocks: Any) -> list[dict[str, Any]]:
    """Output content blocks (text, tool use, thinking) as parts."""
    parts: list[dict[str, Any]] = []
    for block in blocks or ():
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(text_part(block.text))
        elif kind == "tool_use":
            parts.append(tool_call_part(block.id, block.name, block.input))
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": getattr(block, "thinking", "")})
    return parts


def _output_type(sent: Mapping[str, Any]) -> str | None:
    """``json`` when the request asks for structured output (``output_format``, ``output_config.format``, or the
    type ``messages.parse`` is given), ``text`` for a text format."""
    config = as_mapping(sent.get("output_config")) or {}
    for fmt in (sent.get("output_format"), config.get("format")):
        if isinstance(fmt, type):
            return "json"
        kind = (as_mapping(fmt) or {}).get("type")
        if kind in ("json_schema", "json"):
            return "json"
        if kind == "text":
            return "text"
    return None


def _system(system: Any) -> str | None:
    if isinstance(system, str):
        return to_json([text_part(system)])
    if isinstance(system, Sequence):
        return to_json(text_of(system))
    return None


class MessagesEndpoint:
    """``messages.create`` and the request half of ``messages.stream``."""

    operation = GEN_AI_OPERATION_CHAT

    def request(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Request attributes of a Messages API call (``extra_body`` parameters included: they are what is sent)."""
        attributes: Attributes = {GEN_AI_OPERATION_NAME: self.operation, GEN_AI_PROVIDER_NAME: PROVIDER}
        sent = with_extra_body(kwargs)
        put(attributes, GEN_AI_REQUEST_MODEL, sent.get("model"), str)
        put(attributes, GEN_AI_REQUEST_MAX_TOKENS, sent.get("max_tokens"), int)
        put_float(attributes, GEN_AI_REQUEST_TEMPERATURE, sent.get("temperature"))
        put_float(attributes, GEN_AI_REQUEST_TOP_P, sent.get("top_p"))
        put_float(attributes, GEN_AI_REQUEST_TOP_K, sent.get("top_k"))
        put_strings(attributes, GEN_AI_REQUEST_STOP_SEQUENCES, sent.get("stop_sequences"))
        put(attributes, GEN_AI_OUTPUT_TYPE, _output_type(sent), str)
        if kwargs.get("stream") is True:
            attributes[GEN_AI_REQUEST_STREAM] = True
        return attributes

    def response(self, result: Any) -> Attributes:
        """Response attributes of a ``Message``."""
        attributes: Attributes = {}
        put(attributes, GEN_AI_RESPONSE_ID, getattr(result, "id", None), str)
        put(attributes, GEN_AI_RESPONSE_MODEL, getattr(result, "model", None), str)
        reason = getattr(result, "stop_reason", None)
        if isinstance(reason, str):
            attributes[GEN_AI_RESPONSE_FINISH_REASONS] = (reason,)
        usage_attributes(attributes, getattr(result, "usage", None))
        return attributes

    def input_content(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Captured input: messages, system prompt and tool definitions."""
        attributes: Attributes = {GEN_AI_INPUT_MESSAGES: to_json(input_messages(kwargs.get("messages")))}
        put(attributes, GEN_AI_SYSTEM_INSTRUCTIONS, _system(kwargs.get("system")), str)
        put(attributes, GEN_AI_TOOL_DEFINITIONS, tool_definitions(kwargs.get("tools")), str)
        return attributes

    def output_content(self, result: Any) -> Attributes:
        """Captured output: the assistant message."""
        message = {
            "role": "assistant",
            "parts": output_parts(getattr(result, "content", None)),
            "finish_reason": getattr(result, "stop_reason", None),
        }
        return {GEN_AI_OUTPUT_MESSAGES: to_json([message])}

    def is_stream(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether ``stream=True`` was asked for."""
        return kwargs.get("stream") is True

    def accumulator(self) -> MessagesStreamAccumulator:
        """A fresh accumulator for raw message stream events."""
        return MessagesStreamAccumulator()


class MessagesStreamAccumulator:
    """Rebuilds id, model, stop reason, usage and content blocks from raw ``message_*``/``content_block_*`` events."""

    __slots__ = ("_blocks", "_id", "_model", "_stop", "_usage")

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._stop: str | None = None
        self._usage: dict[str, int] = {}
        self._blocks: dict[int, dict[str, Any]] = {}

    def _take_usage(self, usage: Any) -> None:
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = getattr(usage, key, None)
            if isinstance(value, int):
                self._usage[key] = value
        thinking = getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None)
        if isinstance(thinking, int):
            self._usage["output_tokens_details"] = {"thinking_tokens": thinking}  # type: ignore[assignment]

    def add(self, event: Any) -> None:
        """Take one raw stream event."""
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self._id, self._model = message.id, message.model
            self._take_usage(message.usage)
        elif kind == "content_block_start":
            block = event.content_block
            self._blocks[event.index] = {
                "type": block.type,
                "text": [],
                "id": getattr(block, "id", None),
                "name": getattr(block, "name", None),
            }
        elif kind == "content_block_delta":
            state = self._blocks.get(event.index)
            if state is not None:
                delta = event.delta
                piece = (
                    getattr(delta, "text", None)
                    or getattr(delta, "partial_json", None)
                    or getattr(delta, "thinking", None)
                )
                if piece:
                    state["text"].append(piece)
        elif kind == "message_delta":
            reason = getattr(event.delta, "stop_reason", None)
            if reason:
                self._stop = reason
            self._take_usage(getattr(event, "usage", None))

    def response(self) -> Attributes:
        """Response attributes of the stream so far."""
        attributes: Attributes = {}
        put(attributes, GEN_AI_RESPONSE_ID, self._id, str)
        put(attributes, GEN_AI_RESPONSE_MODEL, self._model, str)
        if self._stop:
            attributes[GEN_AI_RESPONSE_FINISH_REASONS] = (self._stop,)
        if self._usage:
            usage_attributes(attributes, _Usage(self._usage))
        return attributes

    def content(self) -> Attributes:
        """The assistant message streamed so far."""
        parts: list[dict[str, Any]] = []
        for _, block in sorted(self._blocks.items()):
            text = "".join(block["text"])
            if block["type"] == "text":
                parts.append(text_part(text))
            elif block["type"] == "tool_use":
                parts.append(tool_call_part(block["id"], block["name"], text or "{}"))
            elif block["type"] == "thinking":
                parts.append({"type": "reasoning", "content": text})
        message = {"role": "assistant", "parts": parts, "finish_reason": self._stop}
        return {GEN_AI_OUTPUT_MESSAGES: to_json([message])}


class _Usage:
    def __init__(self, values: dict[str, int]) -> None:
        self.__dict__.update(values)


_MESSAGES = MessagesEndpoint()


def _api_request_attribute(manager: Any) -> str:
    """The (name-mangled) attribute a stream manager keeps its pending request in
    (``_MessageStreamManager__api_request``, ``_BetaAsyncMessageStreamManager__api_request``, ...)."""
    for name in vars(manager):
        if name.endswith("__api_request"):
            return name
    raise AttributeError(f"{type(manager).__name__} has no pending request")


def stream_helper_wrapper(get: TelemetryGetter, is_async: bool) -> Any:
    """Wrap ``messages.stream(...)``: the request is sent when its manager is entered, so the span starts there."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        telemetry = get()
        if telemetry is None or not is_instrumentation_enabled():
            return manager
        try:
            attribute = _api_request_attribute(manager)
            original = getattr(manager, attribute)
            hooked = (
                _async_request(telemetry, instance, kwargs, original)
                if is_async
                else _sync_request(telemetry, instance, kwargs, original)
            )
            setattr(manager, attribute, hooked)
        except Exception:
            log_internal_error("messages.stream")
        return manager

    return wrapper


def _input(kwargs: Mapping[str, Any]) -> Any:
    return lambda: _MESSAGES.input_content(kwargs)


def _sync_request(telemetry: Telemetry, instance: Any, kwargs: dict[str, Any], original: Any) -> Any:
    def request() -> Any:
        call = begin(telemetry, _MESSAGES, instance, {**kwargs, "stream": True})
        if call is None:
            return original()
        token = IN_INSTRUMENTED_CALL.set(True)
        try:
            raw = original()
        except BaseException as error:
            fail(call, _MESSAGES, kwargs, error)
            raise
        finally:
            IN_INSTRUMENTED_CALL.reset(token)
        call.detach()
        return SyncStreamProxy(raw, call, MessagesStreamAccumulator(), _input(kwargs))

    return request


def _async_request(telemetry: Telemetry, instance: Any, kwargs: dict[str, Any], original: Any) -> Any:
    async def request() -> Any:
        try:
            call = begin(telemetry, _MESSAGES, instance, {**kwargs, "stream": True})
        except UnpinnedModelError:
            original.close()  # the request coroutine is never sent: close it instead of leaking a warning
            raise
        if call is None:
            return await original
        token = IN_INSTRUMENTED_CALL.set(True)
        try:
            raw = await original
        except BaseException as error:
            fail(call, _MESSAGES, kwargs, error)
            raise
        finally:
            IN_INSTRUMENTED_CALL.reset(token)
        call.detach()
        return AsyncStreamProxy(raw, call, MessagesStreamAccumulator(), _input(kwargs))

    return request()


class AnthropicInstrumentor(SpanguardInstrumentor):
    """Instruments the ``anthropic`` SDK's Messages API, and silences the SDK's own duplicate span."""

    scope: ClassVar[str] = "spanguard.instrumentation.anthropic"
    requirement: ClassVar[str] = "anthropic >= 0.40"
    library: ClassVar[str] = "anthropic"
    _sdk_tracer: Any = None

    def targets(self) -> list[Target]:
        """The wrapped methods, sync and async."""
        targets = []
        for module in ("anthropic.resources.messages", "anthropic.resources.beta.messages"):
            targets += [
                Target(module, "Messages.create", lambda g: sync_wrapper(g, _MESSAGES)),
                Target(module, "AsyncMessages.create", lambda g: async_wrapper(g, _MESSAGES)),
                Target(module, "Messages.parse", lambda g: sync_wrapper(g, _MESSAGES)),
                Target(module, "AsyncMessages.parse", lambda g: async_wrapper(g, _MESSAGES)),
                Target(module, "Messages.stream", lambda g: stream_helper_wrapper(g, False)),
                Target(module, "AsyncMessages.stream", lambda g: stream_helper_wrapper(g, True)),
            ]
        return targets

    def before_wrap(self) -> None:
        """Switch off the SDK's own span (SDK 2.x) for the calls spanguard instruments, so each has one span; the
        SDK's spans of its other requests stay."""
        try:
            from anthropic._base_client import BaseClient
        except ImportError:
            return
        original = BaseClient.__dict__.get("_tracer")
        if isinstance(original, property) and original.fget is not None:
            AnthropicInstrumentor._sdk_tracer = original
            sdk_tracer = original.fget

            def scoped(client: Any) -> Any:
                return None if IN_INSTRUMENTED_CALL.get() else sdk_tracer(client)

            BaseClient._tracer = property(scoped)  # type: ignore[assignment]

    def after_unwrap(self) -> None:
        """Give the SDK its own span back."""
        original = AnthropicInstrumentor._sdk_tracer
        if original is not None:
            from anthropic._base_client import BaseClient

            BaseClient._tracer = original  # type: ignore[method-assign]
            AnthropicInstrumentor._sdk_tracer = None


#: SDK methods (``module.Class.method`` under ``anthropic.resources``, ``Async`` dropped) that get no span, and why.
NOT_INSTRUMENTED: tuple[tuple[str, str], ...] = (
    ("beta.messages.messages.Messages.tool_runner", "a loop over beta.messages create/stream: each call has its span"),
    ("beta.messages.messages.Messages.thread", "sends nothing; its turns go through beta.messages, with their spans"),
    ("*.batches.Batches.*", "batch jobs: the responses arrive later, not in the call"),
    ("beta.agents.*", "managed agents: the model runs on Anthropic's side, events arrive later"),
    ("beta.sessions.*", "managed agent sessions: the model runs on Anthropic's side, events arrive later"),
    ("beta.bedrock.*", "managed agents on Bedrock: the model runs on the provider's side"),
    ("beta.deployments.*", "managed deployments: the model runs on Anthropic's side"),
    ("beta.dreams.*", "managed background work: the model runs on Anthropic's side"),
    ("beta.environments.*", "managed environments and their workers: no model response in the call"),
    ("beta.compliance.*", "compliance review: no model call"),
    ("organization.*", "organization administration: no model call"),
    ("beta.organization.*", "organization administration: no model call"),
    ("user_profiles.*", "user profiles: no model call"),
    ("beta.user_profiles.*", "user profiles: no model call"),
    ("skills.*", "stored skills: no model call"),
    ("beta.skills.*", "stored skills: no model call"),
    ("beta.memory_stores.*", "stored memories: no model call"),
    ("beta.vaults.*", "stored credentials: no model call"),
    ("beta.tunnels.*", "network tunnels: no model call"),
)

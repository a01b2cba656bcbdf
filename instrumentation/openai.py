"""OpenAI SDK: ``chat.completions.create``, ``responses.create`` (sync, async, streamed) and ``embeddings.create``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from opentelemetry.util.types import AttributeValue

from spanguard.instrumentation._base import SpanguardInstrumentor, Target
from spanguard.instrumentation._core import is_given, put, put_float, put_nonzero, put_strings, with_extra_body
from spanguard.instrumentation._wrap import async_wrapper, sync_wrapper
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
from spanguard.semconv import (
    GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_CHAT,
    GEN_AI_OPERATION_EMBEDDINGS,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_CHOICE_COUNT,
    GEN_AI_REQUEST_ENCODING_FORMATS,
    GEN_AI_REQUEST_FREQUENCY_PENALTY,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_PRESENCE_PENALTY,
    GEN_AI_REQUEST_SEED,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    OPENAI_REQUEST_SERVICE_TIER,
    OPENAI_RESPONSE_SERVICE_TIER,
    OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
    SPANGUARD_RESPONSE_LOGPROB_MEAN,
)

__all__ = [
    "OpenAIInstrumentor",
]

PROVIDER = "openai"
Attributes = dict[str, AttributeValue]


def _common_request(kwargs: Mapping[str, Any], operation: str) -> Attributes:
    attributes: Attributes = {GEN_AI_OPERATION_NAME: operation, GEN_AI_PROVIDER_NAME: PROVIDER}
    put(attributes, GEN_AI_REQUEST_MODEL, kwargs.get("model"), str)
    put_float(attributes, GEN_AI_REQUEST_TEMPERATURE, kwargs.get("temperature"))
    put_float(attributes, GEN_AI_REQUEST_TOP_P, kwargs.get("top_p"))
    put(attributes, OPENAI_REQUEST_SERVICE_TIER, kwargs.get("service_tier"), str)
    if kwargs.get("stream") is True:
        attributes[GEN_AI_REQUEST_STREAM] = True
    return attributes


def _usage(attributes: Attributes, usage: Any, input_key: str, output_key: str) -> None:
    if usage is None:
        return
    put(attributes, GEN_AI_USAGE_INPUT_TOKENS, getattr(usage, input_key, None), int)
    put(attributes, GEN_AI_USAGE_OUTPUT_TOKENS, getattr(usage, output_key, None), int)
    # Zero cache and reasoning counts say nothing, and every attribute costs on the hot path.
    input_details = getattr(usage, "prompt_tokens_details", None) or getattr(usage, "input_tokens_details", None)
    put_nonzero(attributes, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, getattr(input_details, "cached_tokens", None))
    output_details = getattr(usage, "completion_tokens_details", None) or getattr(usage, "output_tokens_details", None)
    put_nonzero(attributes, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, getattr(output_details, "reasoning_tokens", None))


def _base64_floats(vector: str) -> int:
    """How many float32 values a base64 embedding (``encoding_format="base64"``) holds: its bytes over four."""
    padding = len(vector) - len(vector.rstrip("="))
    return (len(vector) * 3 // 4 - padding) // 4


def _output_type(response_format: Any) -> str | None:
    kind = (as_mapping(response_format) or {}).get("type")
    if kind in ("json_schema", "json_object"):
        return "json"
    return "text" if kind == "text" else None


def _logprob_tokens(choice: Any) -> Sequence[Any]:
    """The per-token logprobs of a choice (or a streamed choice delta), empty when none were asked for."""
    logprobs = getattr(choice, "logprobs", None)
    return (getattr(logprobs, "content", None) or ()) if logprobs is not None else ()


# --- chat.completions -------------------------------------------------------------------------------------


def chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat ``messages`` in the conventions' parts format, tool calls and tool results included."""
    converted: list[dict[str, Any]] = []
    for role, message in messages_of(messages):
        if role == "tool":
            parts = [tool_response_part(message.get("tool_call_id"), message.get("content"))]
        else:
            parts = text_of(message.get("content")) if message.get("content") is not None else []
            for call in message.get("tool_calls") or ():
                call_map = as_mapping(call) or {}
                function = as_mapping(call_map.get("function")) or {}
                parts.append(tool_call_part(call_map.get("id"), function.get("name"), function.get("arguments")))
        converted.append({"role": "system" if role == "developer" else role, "parts": parts})
    return converted


class ChatEndpoint:
    """``chat.completions.create``."""

    operation = GEN_AI_OPERATION_CHAT

    def request(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Request attributes of a chat completion."""
        kwargs = with_extra_body(kwargs)
        attributes = _common_request(kwargs, self.operation)
        max_tokens = kwargs.get("max_completion_tokens")
        if not is_given(max_tokens):
            max_tokens = kwargs.get("max_tokens")
        put(attributes, GEN_AI_REQUEST_MAX_TOKENS, max_tokens, int)
        put_float(attributes, GEN_AI_REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"))
        put_float(attributes, GEN_AI_REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"))
        put(attributes, GEN_AI_REQUEST_SEED, kwargs.get("seed"), int)
        choices = kwargs.get("n")
        if isinstance(choices, int) and choices != 1:
            attributes[GEN_AI_REQUEST_CHOICE_COUNT] = choices
        put_strings(attributes, GEN_AI_REQUEST_STOP_SEQUENCES, kwargs.get("stop"))
        if is_given(kwargs.get("response_format")):
            put(attributes, GEN_AI_OUTPUT_TYPE, _output_type(kwargs["response_format"]), str)
        return attributes

    def response(self, result: Any) -> Attributes:
        """Response attributes of a ``ChatCompletion``."""
        attributes: Attributes = {}
        put(attributes, GEN_AI_RESPONSE_ID, getattr(result, "id", None), str)
        put(attributes, GEN_AI_RESPONSE_MODEL, getattr(result, "model", None), str)
        choices = getattr(result, "choices", None) or ()
        reasons = tuple(str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None))
        if reasons:
            attributes[GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        logprobs = [token.logprob for c in choices for token in _logprob_tokens(c)]
        if logprobs:
            attributes[SPANGUARD_RESPONSE_LOGPROB_MEAN] = sum(logprobs) / len(logprobs)
        _usage(attributes, getattr(result, "usage", None), "prompt_tokens", "completion_tokens")
        put(attributes, OPENAI_RESPONSE_SYSTEM_FINGERPRINT, getattr(result, "system_fingerprint", None), str)
        put(attributes, OPENAI_RESPONSE_SERVICE_TIER, getattr(result, "service_tier", None), str)
        return attributes

    def input_content(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Captured chat input: the messages and the tool definitions."""
        attributes: Attributes = {GEN_AI_INPUT_MESSAGES: to_json(chat_input_messages(kwargs.get("messages")))}
        put(attributes, GEN_AI_TOOL_DEFINITIONS, tool_definitions(kwargs.get("tools")), str)
        return attributes

    def output_content(self, result: Any) -> Attributes:
        """Captured chat output: one assistant message per choice."""
        messages = []
        for choice in getattr(result, "choices", None) or ():
            message = getattr(choice, "message", None)
            parts: list[dict[str, Any]] = []
            content = getattr(message, "content", None)
            if content:
                parts.append(text_part(content))
            for call in getattr(message, "tool_calls", None) or ():
                function = getattr(call, "function", None)
                parts.append(
                    tool_call_part(
                        getattr(call, "id", None), getattr(function, "name", None), getattr(function, "arguments", None)
                    )
                )
            messages.append({"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason})
        return {GEN_AI_OUTPUT_MESSAGES: to_json(messages)}

    def is_stream(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether ``stream=True`` was asked for."""
        return kwargs.get("stream") is True

    def accumulator(self) -> ChatStreamAccumulator:
        """A fresh accumulator for ``chat.completion.chunk`` events."""
        return ChatStreamAccumulator()


class ChatStreamAccumulator:
    """Gathers ids, finish reasons, usage, text and tool-call fragments from ``chat.completion.chunk`` events."""

    __slots__ = ("_choices", "_fingerprint", "_id", "_logprob_count", "_logprob_sum", "_model", "_tier", "_usage")

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._fingerprint: str | None = None
        self._tier: str | None = None
        self._choices: dict[int, dict[str, Any]] = {}
        self._logprob_sum = 0.0
        self._logprob_count = 0

    def add(self, chunk: Any) -> None:
        """Take one chunk."""
        if self._id is None:
            self._id = getattr(chunk, "id", None)
            self._model = getattr(chunk, "model", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        fingerprint = getattr(chunk, "system_fingerprint", None)
        if fingerprint:
            self._fingerprint = fingerprint
        tier = getattr(chunk, "service_tier", None)
        if tier:
            self._tier = tier
        for choice in getattr(chunk, "choices", None) or ():
            state = self._choices.get(choice.index)
            if state is None:
                state = self._choices[choice.index] = {"text": [], "tools": {}, "finish": None}
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    state["text"].append(delta.content)
                for call in delta.tool_calls or ():
                    tool = state["tools"].setdefault(call.index, {"id": None, "name": None, "arguments": []})
                    if call.id:
                        tool["id"] = call.id
                    function = call.function
                    if function is not None:
                        if function.name:
                            tool["name"] = function.name
                        if function.arguments:
                            tool["arguments"].append(function.arguments)
            if choice.finish_reason:
                state["finish"] = choice.finish_reason
            for token in _logprob_tokens(choice):
                self._logprob_sum += token.logprob
                self._logprob_count += 1

    def response(self) -> Attributes:
        """Response attributes of the stream so far."""
        attributes: Attributes = {}
        put(attributes, GEN_AI_RESPONSE_ID, self._id, str)
        put(attributes, GEN_AI_RESPONSE_MODEL, self._model, str)
        reasons = tuple(str(s["finish"]) for _, s in sorted(self._choices.items()) if s["finish"])
        if reasons:
            attributes[GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        if self._logprob_count:
            attributes[SPANGUARD_RESPONSE_LOGPROB_MEAN] = self._logprob_sum / self._logprob_count
        _usage(attributes, self._usage, "prompt_tokens", "completion_tokens")
        put(attributes, OPENAI_RESPONSE_SYSTEM_FINGERPRINT, self._fingerprint, str)
        put(attributes, OPENAI_RESPONSE_SERVICE_TIER, self._tier, str)
        return attributes

    def content(self) -> Attributes:
        """The assistant messages streamed so far."""
        messages = []
        for _, state in sorted(self._choices.items()):
            parts: list[dict[str, Any]] = []
            if state["text"]:
                parts.append(text_part("".join(state["text"])))
            for _, tool in sorted(state["tools"].items()):
                parts.append(tool_call_part(tool["id"], tool["name"], "".join(tool["arguments"])))
            messages.append({"role": "assistant", "parts": parts, "finish_reason": state["finish"]})
        return {GEN_AI_OUTPUT_MESSAGES: to_json(messages)}


# --- responses ----------------------------------------------------------------------------------------------


def responses_input_messages(given: Any) -> list[dict[str, Any]]:
    """Responses API ``input`` (a string or a list of items) in the conventions' parts format."""
    if isinstance(given, str):
        return [{"role": "user", "parts": [text_part(given)]}]
    converted: list[dict[str, Any]] = []
    if not isinstance(given, Sequence):
        return converted
    for raw in given:
        item = as_mapping(raw)
        if item is None:
            continue
        kind = item.get("type", "message")
        if kind == "function_call":
            part = tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"))
            converted.append({"role": "assistant", "parts": [part]})
        elif kind == "function_call_output":
            converted.append({"role": "tool", "parts": [tool_response_part(item.get("call_id"), item.get("output"))]})
        elif kind == "message":
            role = str(item.get("role", "user"))
            converted.append({"role": "system" if role == "developer" else role, "parts": text_of(item.get("content"))})
    return converted


def _responses_finish(response: Any) -> str | None:
    status = getattr(response, "status", None)
    if status == "completed":
        output = getattr(response, "output", None) or ()
        return "tool_calls" if any(getattr(o, "type", None) == "function_call" for o in output) else "stop"
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        return getattr(details, "reason", None) or "incomplete"
    if status == "failed":
        return "error"
    return None


def _responses_attributes(response: Any) -> Attributes:
    attributes: Attributes = {}
    put(attributes, GEN_AI_RESPONSE_ID, getattr(response, "id", None), str)
    put(attributes, GEN_AI_RESPONSE_MODEL, getattr(response, "model", None), str)
    finish = _responses_finish(response)
    if finish:
        attributes[GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
    _usage(attributes, getattr(response, "usage", None), "input_tokens", "output_tokens")
    put(attributes, OPENAI_RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None), str)
    return attributes


def _responses_output(response: Any) -> Attributes:
    parts: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            for block in getattr(item, "content", None) or ():
                if getattr(block, "type", None) == "output_text":
                    parts.append(text_part(block.text))
        elif kind == "function_call":
            parts.append(tool_call_part(item.call_id, item.name, item.arguments))
    message = {"role": "assistant", "parts": parts, "finish_reason": _responses_finish(response)}
    return {GEN_AI_OUTPUT_MESSAGES: to_json([message])}


class ResponsesEndpoint:
    """``responses.create``."""

    operation = GEN_AI_OPERATION_CHAT

    def request(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Request attributes of a Responses API call."""
        attributes = _common_request(kwargs, self.operation)
        put(attributes, GEN_AI_REQUEST_MAX_TOKENS, kwargs.get("max_output_tokens"), int)
        text = as_mapping(kwargs.get("text")) if is_given(kwargs.get("text")) else None
        if text:
            put(attributes, GEN_AI_OUTPUT_TYPE, _output_type(text.get("format")), str)
        return attributes

    def response(self, result: Any) -> Attributes:
        """Response attributes of a ``Response``."""
        return _responses_attributes(result)

    def input_content(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Captured input: the input items, instructions and tool definitions."""
        attributes: Attributes = {GEN_AI_INPUT_MESSAGES: to_json(responses_input_messages(kwargs.get("input")))}
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            attributes[GEN_AI_SYSTEM_INSTRUCTIONS] = to_json([text_part(instructions)])
        put(attributes, GEN_AI_TOOL_DEFINITIONS, tool_definitions(kwargs.get("tools")), str)
        return attributes

    def output_content(self, result: Any) -> Attributes:
        """Captured output: text and function calls of the response."""
        return _responses_output(result)

    def is_stream(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether ``stream=True`` was asked for."""
        return kwargs.get("stream") is True

    def accumulator(self) -> ResponsesStreamAccumulator:
        """A fresh accumulator for Responses API stream events."""
        return ResponsesStreamAccumulator()


class ResponsesStreamAccumulator:
    """Keeps the latest ``response`` snapshot the event stream carried (``response.completed`` has it whole)."""

    __slots__ = ("_response",)

    def __init__(self) -> None:
        self._response: Any = None

    def add(self, event: Any) -> None:
        """Take one event."""
        response = getattr(event, "response", None)
        if response is not None:
            self._response = response

    def response(self) -> Attributes:
        """Response attributes of the last snapshot."""
        return _responses_attributes(self._response) if self._response is not None else {}

    def content(self) -> Attributes:
        """Output content of the last snapshot."""
        return _responses_output(self._response) if self._response is not None else {}


# --- embeddings ---------------------------------------------------------------------------------------------


class EmbeddingsEndpoint:
    """``embeddings.create``."""

    operation = GEN_AI_OPERATION_EMBEDDINGS

    def request(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Request attributes of an embeddings call."""
        attributes: Attributes = {GEN_AI_OPERATION_NAME: self.operation, GEN_AI_PROVIDER_NAME: PROVIDER}
        put(attributes, GEN_AI_REQUEST_MODEL, kwargs.get("model"), str)
        encoding = kwargs.get("encoding_format")
        if isinstance(encoding, str):
            attributes[GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding,)
        put(attributes, GEN_AI_EMBEDDINGS_DIMENSION_COUNT, kwargs.get("dimensions"), int)
        return attributes

    def response(self, result: Any) -> Attributes:
        """Response attributes of a ``CreateEmbeddingResponse``."""
        attributes: Attributes = {}
        put(attributes, GEN_AI_RESPONSE_MODEL, getattr(result, "model", None), str)
        usage = getattr(result, "usage", None)
        put(attributes, GEN_AI_USAGE_INPUT_TOKENS, getattr(usage, "prompt_tokens", None), int)
        data = getattr(result, "data", None)
        if data:
            vector = getattr(data[0], "embedding", None)
            if isinstance(vector, list):
                attributes[GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(vector)
            elif isinstance(vector, str):
                attributes[GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = _base64_floats(vector)
        return attributes

    def input_content(self, kwargs: Mapping[str, Any]) -> Attributes:
        """Embedding inputs are not messages: nothing is captured."""
        return {}

    def output_content(self, result: Any) -> Attributes:
        """Vectors are not captured."""
        return {}

    def is_stream(self, kwargs: Mapping[str, Any]) -> bool:
        """Embeddings never stream."""
        return False

    def accumulator(self) -> ChatStreamAccumulator:
        """Unused: embeddings never stream."""
        raise NotImplementedError


_CHAT, _RESPONSES, _EMBEDDINGS = ChatEndpoint(), ResponsesEndpoint(), EmbeddingsEndpoint()


class OpenAIInstrumentor(SpanguardInstrumentor):
    """Instruments the ``openai`` SDK's chat completions, Responses API and embeddings."""

    scope: ClassVar[str] = "spanguard.instrumentation.openai"
    requirement: ClassVar[str] = "openai >= 1.40"
    library: ClassVar[str] = "openai"

    def targets(self) -> list[Target]:
        """The wrapped methods, sync and async."""
        return [
            Target("openai.resources.chat.completions", "Completions.create", lambda g: sync_wrapper(g, _CHAT)),
            Target("openai.resources.chat.completions", "AsyncCompletions.create", lambda g: async_wrapper(g, _CHAT)),
            Target("openai.resources.responses", "Responses.create", lambda g: sync_wrapper(g, _RESPONSES)),
            Target("openai.resources.responses", "AsyncResponses.create", lambda g: async_wrapper(g, _RESPONSES)),
            Target("openai.resources.beta.responses", "Responses.create", lambda g: sync_wrapper(g, _RESPONSES)),
            Target("openai.resources.beta.responses", "AsyncResponses.create", lambda g: async_wrapper(g, _RESPONSES)),
            Target("openai.resources.chat.completions", "Completions.parse", lambda g: sync_wrapper(g, _CHAT)),
            Target("openai.resources.chat.completions", "AsyncCompletions.parse", lambda g: async_wrapper(g, _CHAT)),
            Target("openai.resources.responses", "Responses.parse", lambda g: sync_wrapper(g, _RESPONSES)),
            Target("openai.resources.responses", "AsyncResponses.parse", lambda g: async_wrapper(g, _RESPONSES)),
            Target("openai.resources.embeddings", "Embeddings.create", lambda g: sync_wrapper(g, _EMBEDDINGS)),
            Target("openai.resources.embeddings", "AsyncEmbeddings.create", lambda g: async_wrapper(g, _EMBEDDINGS)),
        ]


#: SDK methods (``module.Class.method`` under ``openai.resources``, ``Async`` dropped) that get no span, and why.
NOT_INSTRUMENTED: tuple[tuple[str, str], ...] = (
    ("chat.completions.completions.Completions.stream", "built on create(stream=True): that call's span"),
    ("responses.responses.Responses.stream", "built on create(stream=True): that call's span"),
    ("*.Responses.compact", "compacts a conversation's stored input; no model output reaches the app"),
    ("completions.Completions.create", "the legacy text completions API"),
    ("audio.*", "speech, transcription and voices: not a chat or embeddings operation spanguard records yet"),
    ("images.*", "image generation: not a chat or embeddings operation spanguard records yet"),
    ("videos.*", "video generation: not a chat or embeddings operation spanguard records yet"),
    ("moderations.*", "moderation: a classifier, not a chat or embeddings operation"),
    ("batches.*", "batch jobs: the responses arrive later, as files, not in the call"),
    ("beta.assistants.*", "the Assistants API, which OpenAI replaced with Responses"),
    ("beta.threads.*", "the Assistants API, which OpenAI replaced with Responses"),
    ("beta.agents.*", "hosted agents: the model runs on OpenAI's side, events arrive later"),
    ("beta.chatkit.*", "ChatKit sessions: the model runs on OpenAI's side"),
    ("beta.realtime.*", "realtime sessions over WebSocket or WebRTC, not one request and response"),
    ("realtime.*", "realtime sessions over WebSocket or WebRTC, not one request and response"),
    ("live.*", "live sessions over WebSocket or WebRTC, not one request and response"),
    ("admin.*", "organization administration: no model call"),
    ("containers.*", "stored objects: no model call"),
    ("conversations.*", "stored conversation items: no model call"),
    ("files.*", "stored files: no model call"),
    ("uploads.*", "uploads: no model call"),
    ("vector_stores.*", "vector stores (search embeds on OpenAI's side): no model response to record"),
    ("skills.*", "stored skills: no model call"),
    ("webhooks.*", "webhook administration: no model call"),
    ("evals.*", "evaluation jobs: run on OpenAI's side, results arrive later"),
    ("fine_tuning.*", "fine-tuning jobs and graders: run on OpenAI's side"),
    ("content_provenance_checks.*", "content provenance checks: no model response"),
    ("decisions.*", "stored decisions: no model call"),
)

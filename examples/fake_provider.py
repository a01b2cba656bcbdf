"""A local fake LLM provider that speaks the OpenAI and Anthropic wire formats.

`FakeProvider` is a real HTTP/1.1 server (stdlib only, one daemon thread per
connection, keep-alive) that answers like the hosted APIs do, so the unmodified
``openai`` and ``anthropic`` SDK clients can be pointed at it with ``base_url``::

    import openai, anthropic
    from fake_provider import FakeProvider, text, tool_call, error

    with FakeProvider() as fake:
        fake.script(text("Paris."), tool_call("get_weather", {"city": "Paris"}), error(429))
        oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        ant = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
        ant.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])
        assert fake.requests[0].body["model"] == "gpt-4o"

Endpoints (all ``POST``):

* ``/v1/chat/completions`` -- ``chat.completion`` objects, or ``chat.completion.chunk`` SSE when
  ``stream`` is true (``stream_options.include_usage`` adds the usage chunk); honours ``n`` and
  ``logprobs``/``top_logprobs``.
* ``/v1/responses`` -- Responses API ``response`` objects, or the typed SSE event sequence.
* ``/v1/embeddings`` -- deterministic unit vectors (``dimensions``, default 8), as floats or as
  base64 little-endian float32 (the openai SDK asks for base64 unless told otherwise).
* ``/v1/messages`` -- Anthropic ``message`` objects, or the Anthropic SSE event sequence.

Replies are provider-neutral: ``text(...)`` renders as a chat completion, a Responses API
response or an Anthropic message depending on the endpoint hit.  Each request to one of the
four endpoints above consumes one scripted reply (FIFO, shared by all endpoints); when the
queue is empty the default reply is ``text("Hello from the fake provider.")``.  Requests to
unknown paths (404) and requests whose body is not a JSON object (400) are recorded but do not
consume a reply.  Every request is recorded, before its reply is chosen, in ``requests``.

Token accounting: ``input_tokens`` is the whole prompt, ``cached_tokens`` the part of it read
from cache.  OpenAI reports ``prompt_tokens = input_tokens`` with ``cached_tokens`` as a detail;
Anthropic reports ``input_tokens = input_tokens - cached_tokens`` and
``cache_read_input_tokens = cached_tokens``, as the real APIs do.  ``output_tokens`` is per
choice (chat ``n`` multiplies it) and includes ``reasoning_tokens``.

Finish reasons are translated between providers (``stop``/``end_turn``, ``length``/
``max_tokens``, ``tool_calls``/``tool_use``, ``content_filter``/``refusal``); other values are
passed through verbatim.  On the Responses API ``length`` and ``content_filter`` produce an
``incomplete`` response.

Waiting (``delay``, ``chunk_delay``, ``hang``) never blocks other connections; it ends early
when the client disconnects or when ``shutdown()`` is called.  Streams are sent with chunked
transfer encoding on a keep-alive connection; without ``chunk_delay`` a whole answer is
written with one ``send``, so a request costs roughly 0.1-0.4 ms of server time.

Run ``python examples/fake_provider.py [PORT]`` to serve on a fixed port (default 8000).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import re
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_TEXT",
    "MODEL_SNAPSHOTS",
    "FakeProvider",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "error",
    "hang",
    "text",
    "tool_call",
    "tool_calls",
]

DEFAULT_TEXT = "Hello from the fake provider."

#: Aliases answered with a dated snapshot, as the real APIs do; other models are echoed back.
MODEL_SNAPSHOTS: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "text-embedding-3-small": "text-embedding-3-small",
}

_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_INCOMPLETE_REASONS = {
    "length": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "max_output_tokens": "max_output_tokens",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}

_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    402: "Your credit balance is too low.",
    403: "You do not have permission to perform this request.",
    404: "The requested resource was not found.",
    408: "Request timed out.",
    409: "Conflict.",
    413: "Request exceeds the maximum allowed size.",
    422: "Unprocessable entity.",
    429: "Rate limit reached. Please try again later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    504: "The request timed out.",
    529: "Overloaded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}

_TOKEN_RE = re.compile(r"\s*\S+|\s+")
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_POLL = 0.02  # seconds between checks for a disconnected client while waiting


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ToolCall:
    """One tool call requested by the model: a tool name, its arguments, an optional call id."""

    name: str
    arguments: dict[str, Any] | str
    call_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A provider-neutral scripted answer; build it with `text`, `tool_call`, `error` or `hang`."""

    kind: str  # "text" | "tool_calls" | "error" | "hang"
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None
    finish_reason: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    delay: float = 0.0
    chunk_delay: float = 0.0
    status: int = 200
    message: str | None = None
    retry_after: float | None = None
    error_type: str | None = None


def text(
    content: str,
    *,
    model: str | None = None,
    finish_reason: str | None = None,
    input_tokens: int = 12,
    output_tokens: int = 7,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
) -> Reply:
    """A text answer; `delay` waits before answering, `chunk_delay` between streamed chunks."""
    return Reply(
        kind="text",
        content=content,
        model=model,
        finish_reason=finish_reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        delay=delay,
        chunk_delay=chunk_delay,
    )


def tool_call(
    name: str,
    arguments: dict[str, Any] | str,
    *,
    call_id: str | None = None,
    text: str | None = None,
    model: str | None = None,
    delay: float = 0.0,
    input_tokens: int = 12,
    output_tokens: int = 7,
    chunk_delay: float = 0.0,
) -> Reply:
    """An answer asking the client to call one tool (arguments as a dict, or a raw JSON string)."""
    return tool_calls(
        [ToolCall(name, arguments, call_id)],
        text=text,
        model=model,
        delay=delay,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        chunk_delay=chunk_delay,
    )


def tool_calls(
    calls: list[ToolCall | tuple[Any, ...] | dict[str, Any]],
    *,
    text: str | None = None,
    model: str | None = None,
    delay: float = 0.0,
    input_tokens: int = 12,
    output_tokens: int = 7,
    chunk_delay: float = 0.0,
) -> Reply:
    """An answer asking for several tool calls, given as `ToolCall`s, (name, args[, id]) or dicts."""
    parsed: list[ToolCall] = []
    for call in calls:
        if isinstance(call, ToolCall):
            parsed.append(call)
        elif isinstance(call, dict):
            parsed.append(ToolCall(call["name"], call.get("arguments", {}), call.get("call_id")))
        else:
            parsed.append(ToolCall(*call))
    if not parsed:
        raise ValueError("tool_calls() needs at least one call")
    return Reply(
        kind="tool_calls",
        content=text,
        tool_calls=tuple(parsed),
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        delay=delay,
        chunk_delay=chunk_delay,
    )


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    error_type: str | None = None,
) -> Reply:
    """An HTTP error in the provider's error JSON shape, with a Retry-After header when given."""
    if not 400 <= status <= 599:
        raise ValueError(f"error status must be 4xx or 5xx, got {status}")
    return Reply(
        kind="error",
        status=status,
        message=message if message is not None else _DEFAULT_MESSAGES.get(status, f"Error {status}."),
        retry_after=retry_after,
        error_type=error_type,
    )


def hang(seconds: float) -> Reply:
    """Wait `seconds` before answering the default text (long enough for the client to time out)."""
    return Reply(kind="hang", delay=seconds)


_DEFAULT_REPLY = text(DEFAULT_TEXT)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: method, path (no query), lower-cased headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""
    raw_body: bytes = field(default=b"", repr=False)
    received_at: float = 0.0


# --------------------------------------------------------------------------- helpers


def _rand(n: int) -> str:
    return "".join(random.choices(_ALPHABET, k=n))


def _hex(n: int) -> str:
    return "%0*x" % (n, random.getrandbits(4 * n))  # noqa: UP031 - fastest fixed-width hex


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _tokens(content: str | None) -> list[str]:
    """Split text into whitespace-led tokens that join back to the original string."""
    return _TOKEN_RE.findall(content) if content else []


def _pieces(s: str, size: int = 12) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def _response_model(reply: Reply, body: dict[str, Any]) -> str:
    if reply.model:
        return reply.model
    requested = body.get("model")
    if not isinstance(requested, str):
        return "unknown"
    return MODEL_SNAPSHOTS.get(requested, requested)


def _args_json(call: ToolCall, *, compact: bool = True) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return json.dumps(call.arguments, separators=(",", ":") if compact else None, ensure_ascii=False)


def _args_object(call: ToolCall) -> dict[str, Any]:
    if isinstance(call.arguments, dict):
        return call.arguments
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _openai_finish(reply: Reply) -> str:
    if reply.finish_reason:
        return _TO_OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)
    return "tool_calls" if reply.tool_calls else "stop"


def _anthropic_stop(reply: Reply) -> str:
    if reply.finish_reason:
        return _TO_ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)
    return "tool_use" if reply.tool_calls else "end_turn"


def _logprob_entry(token: str, top: int) -> dict[str, Any]:
    tops = [{"token": token, "logprob": -0.1, "bytes": list(token.encode())}]
    tops += [{"token": f" alt{i}", "logprob": -2.5 - i, "bytes": list(f" alt{i}".encode())} for i in range(1, top)]
    return {"token": token, "logprob": -0.1, "bytes": list(token.encode()), "top_logprobs": tops[:top]}


def _int(value: Any, default: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(lo, min(hi, value))


# --------------------------------------------------------------------------- OpenAI chat


def _chat_usage(reply: Reply, n: int) -> dict[str, Any]:
    out = reply.output_tokens * n
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": out,
        "total_tokens": reply.input_tokens + out,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_calls(reply: Reply) -> list[tuple[str, ToolCall]]:
    return [(c.call_id or f"call_{_rand(24)}", c) for c in reply.tool_calls]


def _chat_head(body: dict[str, Any], reply: Reply, obj: str) -> dict[str, Any]:
    model = _response_model(reply, body)
    return {
        "id": f"chatcmpl-{_rand(29)}",
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_" + hashlib.md5(model.encode()).hexdigest()[:10],
    }


def _chat_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    n = _int(body.get("n"), 1, 1, 128)
    want_logprobs = body.get("logprobs") is True
    top = _int(body.get("top_logprobs"), 0, 0, 20)
    finish = _openai_finish(reply)
    choices = []
    for i in range(n):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": c.name, "arguments": _args_json(c)}}
                for cid, c in _chat_calls(reply)
            ]
        logprobs = None
        if want_logprobs:
            logprobs = {"content": [_logprob_entry(t, top) for t in _tokens(reply.content)], "refusal": None}
        choices.append({"index": i, "message": message, "logprobs": logprobs, "finish_reason": finish})
    result = _chat_head(body, reply, "chat.completion")
    result["choices"] = choices
    result["usage"] = _chat_usage(reply, n)
    return result


def _chat_stream(body: dict[str, Any], reply: Reply) -> list[bytes]:
    n = _int(body.get("n"), 1, 1, 128)
    want_logprobs = body.get("logprobs") is True
    top = _int(body.get("top_logprobs"), 0, 0, 20)
    opts = body.get("stream_options")
    include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    head = _chat_head(body, reply, "chat.completion.chunk")
    frames: list[bytes] = []

    def emit(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> None:
        chunk = dict(head)
        chunk["choices"] = [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]
        if include_usage:
            chunk["usage"] = None
        frames.append(b"data: " + _dumps(chunk) + b"\n\n")

    for i in range(n):
        calls = _chat_calls(reply)
        first: dict[str, Any] = {"role": "assistant", "content": "" if reply.content is not None else None}
        first["refusal"] = None
        if reply.content is None and calls:
            cid, c = calls[0]
            first["tool_calls"] = [
                {"index": 0, "id": cid, "type": "function", "function": {"name": c.name, "arguments": ""}}
            ]
        emit(i, first, logprobs={"content": [], "refusal": None} if want_logprobs else None)
        for token in _tokens(reply.content):
            lp = {"content": [_logprob_entry(token, top)], "refusal": None} if want_logprobs else None
            emit(i, {"content": token}, logprobs=lp)
        for k, (cid, c) in enumerate(calls):
            if k > 0 or reply.content is not None:
                function = {"name": c.name, "arguments": ""}
                header = {"index": k, "id": cid, "type": "function", "function": function}
                emit(i, {"tool_calls": [header]})
            for piece in _pieces(_args_json(c)):
                emit(i, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
        emit(i, {}, _openai_finish(reply))
    if include_usage:
        chunk = dict(head)
        chunk["choices"] = []
        chunk["usage"] = _chat_usage(reply, n)
        frames.append(b"data: " + _dumps(chunk) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


# --------------------------------------------------------------------------- OpenAI responses


def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _responses_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.content is not None:
        part = {"type": "output_text", "text": reply.content, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": f"msg_{_hex(48)}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for call in reply.tool_calls:
        items.append(
            {
                "id": f"fc_{_hex(48)}",
                "type": "function_call",
                "status": "completed",
                "arguments": _args_json(call),
                "call_id": call.call_id or f"call_{_rand(24)}",
                "name": call.name,
            }
        )
    return items


def _responses_object(body: dict[str, Any], reply: Reply, items: list[dict[str, Any]]) -> dict[str, Any]:
    now = int(time.time())
    incomplete = _INCOMPLETE_REASONS.get(reply.finish_reason or "")

    def echo(key: str, default: Any) -> Any:
        value = body.get(key)
        return default if value is None else value

    return {
        "id": f"resp_{_hex(48)}",
        "object": "response",
        "created_at": now,
        "status": "incomplete" if incomplete else "completed",
        "background": False,
        "completed_at": None if incomplete else now,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": _response_model(reply, body),
        "output": items,
        "parallel_tool_calls": echo("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": echo("reasoning", {"effort": None, "summary": None}),
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": echo("store", True),
        "temperature": echo("temperature", 1.0),
        "text": echo("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": echo("tool_choice", "auto"),
        "tools": echo("tools", []),
        "top_logprobs": echo("top_logprobs", 0),
        "top_p": echo("top_p", 1.0),
        "truncation": echo("truncation", "disabled"),
        "usage": _responses_usage(reply),
        "user": body.get("user"),
        "metadata": echo("metadata", {}),
    }


def _responses_response(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return _responses_object(body, reply, _responses_items(reply))


def _responses_stream(body: dict[str, Any], reply: Reply) -> list[bytes]:
    items = _responses_items(reply)
    final = _responses_object(body, reply, items)
    frames: list[bytes] = []
    seq = 0

    def emit(event: dict[str, Any]) -> None:
        nonlocal seq
        event["sequence_number"] = seq
        seq += 1
        frames.append(b"event: " + event["type"].encode() + b"\ndata: " + _dumps(event) + b"\n\n")

    pending = dict(final, status="in_progress", output=[], usage=None, completed_at=None)
    pending["incomplete_details"] = None
    emit({"type": "response.created", "response": pending})
    emit({"type": "response.in_progress", "response": pending})
    for index, item in enumerate(items):
        if item["type"] == "message":
            part = item["content"][0]
            emit(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": dict(item, status="in_progress", content=[]),
                }
            )
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            emit({"type": "response.content_part.added", **where, "part": dict(part, text="")})
            for token in _tokens(part["text"]):
                emit({"type": "response.output_text.delta", **where, "delta": token, "logprobs": []})
            emit({"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []})
            emit({"type": "response.content_part.done", **where, "part": part})
        else:
            emit(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": dict(item, status="in_progress", arguments=""),
                }
            )
            where = {"item_id": item["id"], "output_index": index}
            for piece in _pieces(item["arguments"]):
                emit({"type": "response.function_call_arguments.delta", **where, "delta": piece})
            emit(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        emit({"type": "response.output_item.done", "output_index": index, "item": item})
    done = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    emit({"type": done, "response": final})
    return frames


# --------------------------------------------------------------------------- OpenAI embeddings


def _embedding_vector(key: str, dims: int) -> list[float]:
    rng = random.Random(hashlib.blake2b(key.encode(), digest_size=8).digest())
    vec = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    # round-trip through float32 so float and base64 answers carry the same numbers
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *(v / norm for v in vec))))


def _embeddings(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    raw = body.get("input")
    if isinstance(raw, list) and raw and not all(isinstance(x, int) for x in raw):
        inputs = raw
    else:
        inputs = [raw]
    dims = _int(body.get("dimensions"), 8, 1, 8192)
    b64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vec = _embedding_vector(item if isinstance(item, str) else json.dumps(item), dims)
        value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if b64 else vec
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": _response_model(reply, body),
        "usage": {"prompt_tokens": reply.input_tokens, "total_tokens": reply.input_tokens},
    }


# --------------------------------------------------------------------------- Anthropic


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": max(reply.input_tokens - reply.cached_tokens, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": reply.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if reply.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
    return usage


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.content is not None:
        blocks.append({"type": "text", "text": reply.content})
    for call in reply.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.call_id or f"toolu_01{_rand(22)}",
                "name": call.name,
                "input": _args_object(call),
            }
        )
    return blocks


def _anthropic_stop_sequence(body: dict[str, Any], stop: str) -> str | None:
    seqs = body.get("stop_sequences")
    if stop == "stop_sequence" and isinstance(seqs, list) and seqs and isinstance(seqs[0], str):
        return seqs[0]
    return None


def _anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    stop = _anthropic_stop(reply)
    return {
        "id": f"msg_01{_rand(22)}",
        "type": "message",
        "role": "assistant",
        "model": _response_model(reply, body),
        "content": _anthropic_blocks(reply),
        "stop_reason": stop,
        "stop_sequence": _anthropic_stop_sequence(body, stop),
        "usage": _anthropic_usage(reply, reply.output_tokens),
    }


def _anthropic_stream(body: dict[str, Any], reply: Reply) -> list[bytes]:
    message = _anthropic_message(body, reply)
    frames: list[bytes] = []

    def emit(event: dict[str, Any]) -> None:
        frames.append(b"event: " + event["type"].encode() + b"\ndata: " + _dumps(event) + b"\n\n")

    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = _anthropic_usage(reply, 1)
    start["usage"].pop("output_tokens_details", None)
    emit({"type": "message_start", "message": start})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            emit({"type": "content_block_start", "index": index, "content_block": dict(block, text="")})
            if index == 0:
                frames.append(b'event: ping\ndata: {"type": "ping"}\n\n')
            for token in _tokens(block["text"]):
                delta = {"type": "text_delta", "text": token}
                emit({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            emit({"type": "content_block_start", "index": index, "content_block": dict(block, input={})})
            if index == 0:
                frames.append(b'event: ping\ndata: {"type": "ping"}\n\n')
            raw = json.dumps(block["input"], ensure_ascii=False)
            for piece in ["", *_pieces(raw)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                emit({"type": "content_block_delta", "index": index, "delta": delta})
        emit({"type": "content_block_stop", "index": index})
    usage: dict[str, Any] = {"output_tokens": reply.output_tokens}
    if reply.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    emit({"type": "message_delta", "delta": delta, "usage": usage})
    emit({"type": "message_stop"})
    return frames


# --------------------------------------------------------------------------- errors


def _openai_error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    default_type = "invalid_request_error"
    if status == 429:
        default_type = "requests"
    elif status >= 500:
        default_type = "server_error"
    return {
        "error": {
            "message": message,
            "type": error_type or default_type,
            "param": None,
            "code": _OPENAI_ERROR_CODES.get(status),
        }
    }


def _anthropic_error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    default_type = _ANTHROPIC_ERROR_TYPES.get(status, fallback)
    return {
        "type": "error",
        "error": {"type": error_type or default_type, "message": message},
        "request_id": f"req_011{_rand(21)}",
    }


# --------------------------------------------------------------------------- routing

_Render = Callable[[dict[str, Any], Reply], Any]


@dataclass(frozen=True)
class _Route:
    provider: str  # "openai" | "anthropic"
    render: _Render
    render_stream: _Render | None


_ROUTES: dict[str, _Route] = {
    "/v1/chat/completions": _Route("openai", _chat_completion, _chat_stream),
    "/v1/responses": _Route("openai", _responses_response, _responses_stream),
    "/v1/embeddings": _Route("openai", _embeddings, None),
    "/v1/messages": _Route("anthropic", _anthropic_message, _anthropic_stream),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeProvider) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: client disconnects are normal and the handler reports its own failures."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1.0"
    sys_version = ""
    server: _Server

    # ---- connection bookkeeping

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer unparsable HTTP (bad request line, oversized headers) with a JSON error, then close."""
        self.close_connection = True
        try:
            self._send_json(code, _openai_error_body(code, message or HTTPStatus(code).phrase))
        except (OSError, ValueError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    # ---- HTTP verbs

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    # ---- request handling

    def _serve(self) -> None:
        fake = self.server.fake
        self._head_sent = False
        try:
            path, _, query = self.path.partition("?")
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            raw = self._read_body(headers)
            if raw is None:
                return
            body: Any = None
            parse_ok = False
            if raw.strip():
                try:
                    body = json.loads(raw)
                    parse_ok = True
                except ValueError:
                    body = None
            route = _ROUTES.get(path) if self.command == "POST" else None
            valid = route is not None and parse_ok and isinstance(body, dict)
            record = RecordedRequest(self.command, path, headers, body, query, raw, time.time())
            reply = fake._record_and_pop(record, consume=valid)

            if route is None:
                message = f"Invalid URL ({self.command} {path})"
                self._send_json(404, _openai_error_body(404, message))
                return
            if not valid:
                message = "We could not parse the JSON body of your request. Expected a JSON object."
                self._send_error(route.provider, 400, message)
                return
            assert reply is not None
            if reply.kind == "hang":
                if not self._wait(reply.delay):
                    self.close_connection = True
                    return
                reply = _DEFAULT_REPLY
            if reply.delay and not self._wait(reply.delay):
                self.close_connection = True
                return
            if reply.kind == "error":
                self._send_error(route.provider, reply.status, reply.message or "", reply.error_type, reply.retry_after)
                return
            if body.get("stream") is True and route.render_stream is not None:
                self._send_stream(route.provider, route.render_stream(body, reply), reply.chunk_delay)
            else:
                self._send_json(200, route.render(body, reply), route.provider)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as exc:  # never let a bug kill the connection thread silently
            self.close_connection = True
            if not self._head_sent:
                try:
                    self._send_json(500, _openai_error_body(500, f"fake provider error: {exc!r}"))
                except OSError:
                    pass

    def _read_body(self, headers: dict[str, str]) -> bytes | None:
        """Read the request body (Content-Length or chunked); None when the request was rejected."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._send_json(400, _openai_error_body(400, "Malformed chunked request body."))
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            raw = b"".join(parts)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._send_json(400, _openai_error_body(400, "Invalid Content-Length header."))
                return None
            raw = self.rfile.read(length) if length else b""
        encoding = headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
        except (OSError, zlib.error):
            raw = b"\x00"  # undecodable: answered as malformed JSON
        return raw

    def _wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; False if the server is stopping or the client went away first."""
        stop = self.server.fake._stop
        deadline = time.monotonic() + seconds
        watch_client = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(min(remaining, _POLL)):
                return False
            if watch_client:
                peeked = self._peek()
                if peeked == b"":
                    return False  # the client closed the connection (e.g. it timed out)
                if peeked:
                    watch_client = False  # pipelined bytes: cannot tell, just keep waiting

    def _peek(self) -> bytes | None:
        """Peek at the socket without blocking: b"" if the client hung up, None if nothing to read."""
        conn = self.connection
        try:
            if hasattr(socket, "MSG_DONTWAIT"):
                return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if not select.select([conn], [], [], 0)[0]:
                return None
            return conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return None
        except (OSError, ValueError):
            return b""

    # ---- response writing

    def _head(self, status: int, headers: list[tuple[str, str]], provider: str) -> bytes:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Overloaded" if status == 529 else "Error"
        if provider == "anthropic":
            headers.append(("request-id", f"req_011{_rand(21)}"))
        else:
            headers.append(("x-request-id", f"req_{_hex(32)}"))
            headers.append(("openai-processing-ms", "1"))
            headers.append(("openai-version", "2020-10-01"))
        headers.append(("Date", formatdate(usegmt=True)))
        headers.append(("Server", self.server_version))
        if self.close_connection or self.request_version == "HTTP/1.0":
            self.close_connection = True
            headers.append(("Connection", "close"))
        else:
            headers.append(("Connection", "keep-alive"))
        lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_json(
        self,
        status: int,
        payload: Any,
        provider: str = "openai",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        data = _dumps(payload)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        headers += extra or []
        head = self._head(status, headers, provider)
        self._head_sent = True
        self.wfile.write(head if self.command == "HEAD" else head + data)

    def _send_error(
        self,
        provider: str,
        status: int,
        message: str,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        if provider == "anthropic":
            payload = _anthropic_error_body(status, message, error_type)
        else:
            payload = _openai_error_body(status, message, error_type)
        extra = []
        if retry_after is not None:
            extra.append(("retry-after", f"{retry_after:g}"))
            extra.append(("retry-after-ms", str(round(retry_after * 1000))))
        self._send_json(status, payload, provider, extra)

    def _send_stream(self, provider: str, frames: list[bytes], chunk_delay: float) -> None:
        chunked = self.request_version != "HTTP/1.0"
        headers = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            self.close_connection = True
        head = self._head(200, headers, provider)
        self._head_sent = True

        def frame(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

        tail = b"0\r\n\r\n" if chunked else b""
        if chunk_delay <= 0:
            self.wfile.write(head + b"".join(frame(f) for f in frames) + tail)
            return
        self.wfile.write(head + frame(frames[0]))
        for data in frames[1:]:
            if not self._wait(chunk_delay):
                self.close_connection = True
                return
            self.wfile.write(frame(data))
        self.wfile.write(tail)


# --------------------------------------------------------------------------- the provider


class FakeProvider:
    """A local HTTP server answering in the OpenAI and Anthropic wire formats with scripted replies.

    Attributes: ``url`` (``http://host:port``), ``openai_base_url`` (``url + "/v1"``),
    ``anthropic_base_url`` (``url``; the SDK appends ``/v1/messages``), ``host``, ``port``, and
    ``requests``, every `RecordedRequest` received, in arrival order.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind the listening socket (port 0 picks a free port); call `start()` to serve."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue: list[Reply] = []
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.requests: list[RecordedRequest] = []
        self._server = _Server((host, port), self)
        bound_host, bound_port = self._server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        self.host: str = str(bound_host)
        self.port: int = int(bound_port)
        self.url: str = f"http://{shown}:{self.port}"
        self.openai_base_url: str = self.url + "/v1"
        self.anthropic_base_url: str = self.url

    # ---- lifecycle

    def start(self) -> FakeProvider:
        """Start serving in a daemon thread and return self (a no-op if already serving)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("FakeProvider was shut down; create a new one")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"fake-provider:{self.port}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop serving, abort waiting replies and close open connections (idempotent, bounded)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        deadline = time.monotonic() + timeout
        self._stop.set()
        if thread is not None:
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [*threads, *([thread] if thread else [])]:
            if t is not threading.current_thread():
                t.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> FakeProvider:
        """Start serving (see `start`)."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Shut down (see `shutdown`)."""
        self.shutdown()

    def __repr__(self) -> str:
        return f"<FakeProvider {self.url} pending={self.pending} requests={len(self.requests)}>"

    # ---- scripting

    def script(self, *replies: Reply) -> None:
        """Append replies to the FIFO queue; each request to a model endpoint consumes one."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"script() takes Reply objects, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Clear the reply queue and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._queue)

    # ---- used by the handler threads

    def _record_and_pop(self, record: RecordedRequest, *, consume: bool) -> Reply | None:
        with self._lock:
            self.requests.append(record)
            if not consume:
                return None
            return self._queue.pop(0) if self._queue else _DEFAULT_REPLY

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                if self._stop.is_set():  # accepted while shutting down: hang up at once
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self._connections.add(conn)
                self._threads.add(threading.current_thread())
            else:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())


def _main(argv: list[str]) -> int:
    """``[PORT]``: serve until Ctrl-C; ``--run PROGRAM [ARGS...]``: serve on a free port while PROGRAM runs with the
    OpenAI and Anthropic SDKs pointed here (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, test keys); its exit code."""
    import os
    import subprocess
    import sys

    if argv[:1] == ["--run"]:
        if len(argv) < 2:
            print("usage: python examples/fake_provider.py --run PROGRAM [ARGS...]", file=sys.stderr)
            return 2
        with FakeProvider() as fake:
            env = {
                **os.environ,
                "OPENAI_BASE_URL": fake.openai_base_url,
                "OPENAI_API_KEY": "sk-fake",
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": "sk-ant-fake",
            }
            return subprocess.call([sys.executable, *argv[1:]], env=env)
    with FakeProvider(port=int(argv[0]) if argv else 8000) as fake:
        print(f"fake provider on {fake.url} (OpenAI: {fake.openai_base_url}); Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover - manual use, see _main
    import sys

    sys.exit(_main(sys.argv[1:]))

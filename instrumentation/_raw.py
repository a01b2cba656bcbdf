"""The raw and streaming response wrappers of the SDKs (``with_raw_response``, ``with_streaming_response``).

Both SDKs return, for those forms, an ``APIResponse`` whose ``parse()`` gives the object ``create`` would have
returned. A body already read is parsed here once (the SDK keeps the parsed object, so the app's own ``parse()``
returns the same one); a body not read yet is watched: the span ends when the app parses it (a stream's span when
the stream ends), closes it, or drops it. See docs/instrumentation.md ("Call paths").
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import wrapt

from spanguard.instrumentation._core import LLMCall, log_internal_error
from spanguard.instrumentation._stream import AsyncStreamProxy, SyncStreamProxy

if TYPE_CHECKING:
    from spanguard.instrumentation._wrap import Endpoint


_RAW_TYPES: dict[type, bool] = {}  # per result type: a pydantic model's missing attribute costs an exception


def is_raw_response(result: Any) -> bool:
    """Whether an SDK method returned its raw response wrapper rather than the parsed object."""
    kind = type(result)
    raw = _RAW_TYPES.get(kind)
    if raw is None:
        raw = any(base.__name__ in _RAW_TYPE_NAMES for base in kind.__mro__) and callable(getattr(kind, "parse", None))
        if len(_RAW_TYPES) < 1024:
            _RAW_TYPES[kind] = raw
    return raw


# The SDKs' raw response classes (openai and anthropic both): ``LegacyAPIResponse`` and ``BaseAPIResponse``'s kin.
_RAW_TYPE_NAMES = frozenset({"LegacyAPIResponse", "BaseAPIResponse", "APIResponse", "AsyncAPIResponse"})


def observe_raw(call: LLMCall, endpoint: Endpoint, kwargs: Mapping[str, Any], raw: Any) -> Any:
    """End the span from a raw response already read, or hand back a proxy that ends it when the app reads it."""
    http = getattr(raw, "http_response", None)
    parse = raw.parse
    if (
        not endpoint.is_stream(kwargs)
        and getattr(http, "is_stream_consumed", False)
        and not inspect.iscoroutinefunction(parse)
    ):
        parsed = parse()
        _end(call, endpoint, kwargs, parsed)
        return raw
    call.detach()
    return RawResponseProxy(raw, call, endpoint, kwargs)


def _end(call: LLMCall, endpoint: Endpoint, kwargs: Mapping[str, Any], parsed: Any) -> None:
    call.end(
        endpoint.response(parsed),
        None,
        lambda: {**endpoint.input_content(kwargs), **endpoint.output_content(parsed)},
    )


def _end_unless_given(call: LLMCall, seen: list[tuple[Any, Any]]) -> None:
    if not seen:
        call.end()


class RawResponseProxy(wrapt.ObjectProxy):
    """An SDK ``APIResponse`` unchanged to the app, whose ``parse()`` and ``close()`` end the call's span."""

    def __init__(self, wrapped: Any, call: LLMCall, endpoint: Endpoint, kwargs: Mapping[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_endpoint = endpoint
        self._self_kwargs = kwargs
        self._self_seen: list[tuple[Any, Any]] = []  # (what the SDK parsed, what the app was given)
        # Dropped unread: the span ends. Once parsed, what the app was given (a stream's proxy) ends it.
        weakref.finalize(self, _end_unless_given, call, self._self_seen)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``parse()``; a stream comes back wrapped so its span ends with it."""
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if inspect.isawaitable(parsed):

            async def later() -> Any:
                return self._self_given(await parsed)

            return later()
        return self._self_given(parsed)

    def _self_given(self, parsed: Any) -> Any:
        for seen, given in self._self_seen:
            if seen is parsed:
                return given  # the SDK's cached object: the app gets what it got the first time
        given = parsed
        call, endpoint, kwargs = self._self_call, self._self_endpoint, self._self_kwargs
        try:
            if endpoint.is_stream(kwargs) and hasattr(parsed, "__aiter__"):
                given = AsyncStreamProxy(parsed, call, endpoint.accumulator(), lambda: endpoint.input_content(kwargs))
            elif endpoint.is_stream(kwargs) and hasattr(parsed, "__next__"):
                given = SyncStreamProxy(parsed, call, endpoint.accumulator(), lambda: endpoint.input_content(kwargs))
            else:
                _end(call, endpoint, kwargs, parsed)
        except Exception:
            log_internal_error(f"reading a raw {endpoint.operation} response")
            call.end()
        self._self_seen.append((parsed, given))
        return given

    def close(self) -> Any:
        """Close the response; a span still open ends (with what is known)."""
        try:
            closed = self.__wrapped__.close()
        finally:
            if not self._self_seen:
                self._self_call.end(None, None, lambda: self._self_endpoint.input_content(self._self_kwargs))
        return closed

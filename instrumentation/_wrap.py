"""The ``wrapt`` wrappers every instrumented SDK method shares, sync and async.

The wrapped method is called exactly once, outside any spanguard ``try``: what it returns or raises reaches
the app unchanged. Only ``UnpinnedModelError`` (asked for with ``require_pinned_models``) comes from spanguard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.util.types import AttributeValue

from spanguard.instrumentation._core import IN_INSTRUMENTED_CALL, LLMCall, Telemetry, log_internal_error
from spanguard.instrumentation._raw import is_raw_response, observe_raw
from spanguard.instrumentation._stream import Accumulator, AsyncStreamProxy, SyncStreamProxy
from spanguard.instrumentation.models import UnpinnedModelError
from spanguard.semconv import SERVER_ADDRESS, SERVER_PORT

TelemetryGetter = Callable[[], "Telemetry | None"]


class Endpoint(Protocol):
    """How one SDK method's requests and responses map onto GenAI attributes."""

    operation: str

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
        """Request attributes (model, parameters) from the method's keyword arguments."""

    def response(self, result: Any) -> Mapping[str, AttributeValue]:
        """Response attributes (id, model, finish reasons, usage) from a non-streamed result."""

    def input_content(self, kwargs: Mapping[str, Any]) -> Mapping[str, AttributeValue]:
        """Captured input content (messages, system instructions, tool definitions)."""

    def output_content(self, result: Any) -> Mapping[str, AttributeValue]:
        """Captured output content of a non-streamed result."""

    def is_stream(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether the call returns a stream."""

    def accumulator(self) -> Accumulator:
        """A new accumulator for one streamed response."""


_servers: dict[int, tuple[Any, dict[str, AttributeValue]]] = {}


def server_attributes(instance: Any) -> dict[str, AttributeValue]:
    """``server.address``/``server.port`` of the client behind an SDK resource, cached per base-URL object."""
    url = getattr(getattr(instance, "_client", None), "base_url", None)
    # Keyed by identity: turning the SDK's URL object into a string on every call costs more than the lookup.
    cached = _servers.get(id(url))
    if cached is not None and cached[0] is url:
        return cached[1]
    base_url = str(url or "")
    attributes: dict[str, AttributeValue] = {}
    try:
        parts = urlsplit(base_url)
        if parts.hostname:
            attributes[SERVER_ADDRESS] = parts.hostname
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
            if port:
                attributes[SERVER_PORT] = port
    except ValueError:
        pass
    if len(_servers) >= 256:
        _servers.clear()
    _servers[id(url)] = (url, attributes)
    return attributes


def begin(telemetry: Telemetry, endpoint: Endpoint, instance: Any, kwargs: Mapping[str, Any]) -> LLMCall | None:
    """Start the call's span, or return ``None`` when instrumentation must stay out of the way."""
    try:
        attributes = endpoint.request(kwargs)
        attributes.update(server_attributes(instance))
        return telemetry.start(endpoint.operation, attributes)
    except UnpinnedModelError:
        raise
    except Exception:
        log_internal_error(f"starting {endpoint.operation}")
        return None


def complete(call: LLMCall, endpoint: Endpoint, kwargs: Mapping[str, Any], result: Any, proxy: type[Any]) -> Any:
    """End the span of a plain result, or hand back the stream wrapped so its span ends when it does."""
    try:
        if is_raw_response(result):
            return observe_raw(call, endpoint, kwargs, result)
        if endpoint.is_stream(kwargs):
            call.detach()
            return proxy(result, call, endpoint.accumulator(), lambda: endpoint.input_content(kwargs))
        call.end(
            endpoint.response(result),
            None,
            lambda: {**endpoint.input_content(kwargs), **endpoint.output_content(result)},
        )
    except Exception:
        log_internal_error(f"finishing {endpoint.operation}")
        call.end()
    return result


def fail(call: LLMCall, endpoint: Endpoint, kwargs: Mapping[str, Any], error: BaseException) -> None:
    """End the span of a call the SDK raised from, recording ``error.type``."""
    call.end(None, error, lambda: endpoint.input_content(kwargs))


def sync_wrapper(get: TelemetryGetter, endpoint: Endpoint) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a synchronous SDK method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        telemetry = get()
        if telemetry is None or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = begin(telemetry, endpoint, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = IN_INSTRUMENTED_CALL.set(True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            fail(call, endpoint, kwargs, error)
            raise
        finally:
            IN_INSTRUMENTED_CALL.reset(token)
        return complete(call, endpoint, kwargs, result, SyncStreamProxy)

    return wrapper


def async_wrapper(get: TelemetryGetter, endpoint: Endpoint) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for an ``async def`` SDK method."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        telemetry = get()
        if telemetry is None or not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        call = begin(telemetry, endpoint, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = IN_INSTRUMENTED_CALL.set(True)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            fail(call, endpoint, kwargs, error)
            raise
        finally:
            IN_INSTRUMENTED_CALL.reset(token)
        return complete(call, endpoint, kwargs, result, AsyncStreamProxy)

    return wrapper

"""Stream proxies: the SDK's stream, unchanged to the app, whose span ends exactly once.

A span ends when the stream is read to the end, fails, is closed, leaves its ``with`` block, or is garbage
collected unread. Each chunk goes to an accumulator that the provider module supplies.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import wrapt
from opentelemetry.util.types import AttributeValue

from spanguard.instrumentation._core import LLMCall, log_internal_error


class Accumulator(Protocol):
    """Collects what a provider's stream chunks say, and turns it into response attributes at the end."""

    def add(self, chunk: Any) -> None:
        """Take one chunk."""

    def response(self) -> Mapping[str, AttributeValue]:
        """The response attributes (id, model, finish reasons, usage) gathered so far."""

    def content(self) -> Mapping[str, AttributeValue]:
        """The captured output content gathered so far (only called when content capture is on)."""


class _StreamState:
    """What a proxy and its garbage-collection finalizer share; holds no reference to the proxy itself."""

    __slots__ = ("accumulator", "call", "input_content")

    def __init__(self, call: LLMCall, accumulator: Accumulator, input_content: Callable[[], Mapping[str, Any]]) -> None:
        self.call = call
        self.accumulator = accumulator
        self.input_content = input_content

    def observe(self, chunk: Any) -> None:
        self.call.chunk_received()
        try:
            self.accumulator.add(chunk)
        except Exception:
            log_internal_error("stream chunk")

    def content(self) -> Mapping[str, Any]:
        return {**self.input_content(), **self.accumulator.content()}

    def finish(self, error: BaseException | None = None) -> None:
        try:
            response = self.accumulator.response()
        except Exception:
            log_internal_error("stream response")
            response = {}
        self.call.end(response, error, self.content)


class SyncStreamProxy(wrapt.ObjectProxy):
    """Wraps a synchronous SDK stream; iteration, ``with`` and ``close()`` behave exactly as the SDK's."""

    def __init__(
        self,
        wrapped: Any,
        call: LLMCall,
        accumulator: Accumulator,
        input_content: Callable[[], Mapping[str, Any]],
    ) -> None:
        super().__init__(wrapped)
        state = _StreamState(call, accumulator, input_content)
        self._self_state = state
        weakref.finalize(self, state.finish)

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_state.finish()
            raise
        except BaseException as error:
            self._self_state.finish(error)
            raise
        self._self_state.observe(chunk)
        return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            self._self_state.finish()

    def close(self) -> None:
        """Close the SDK stream and end the span."""
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish()


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Wraps an asynchronous SDK stream; ``async for``, ``async with`` and ``close()`` behave as the SDK's."""

    def __init__(
        self,
        wrapped: Any,
        call: LLMCall,
        accumulator: Accumulator,
        input_content: Callable[[], Mapping[str, Any]],
    ) -> None:
        super().__init__(wrapped)
        state = _StreamState(call, accumulator, input_content)
        self._self_state = state
        weakref.finalize(self, state.finish)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.finish()
            raise
        except BaseException as error:
            self._self_state.finish(error)
            raise
        self._self_state.observe(chunk)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc)
        finally:
            self._self_state.finish()

    async def close(self) -> None:
        """Close the SDK stream and end the span."""
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish()

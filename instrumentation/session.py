"""Sessions, agents and tools: grouping spans into conversations and agent loops.

``session()`` puts the conversation id into OpenTelemetry baggage (which lives in ``contextvars``, so it follows
threads' and tasks' contexts and crosses services with the W3C ``baggage`` header) and the user id into the context
only, so it never leaves the app unless asked (``propagate_user=True``); :class:`SessionSpanProcessor` stamps both
on every span started inside. What crosses service boundaries: docs/instrumentation.md ("Sessions").
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TypeVar, overload

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanguard import __version__
from spanguard.semconv import (
    ERROR_TYPE,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_EXECUTE_TOOL,
    GEN_AI_OPERATION_INVOKE_AGENT,
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    USER_ID,
)

__all__ = [
    "SessionSpanProcessor",
    "agent",
    "current_session",
    "session",
    "tool",
]

logger = logging.getLogger("spanguard")

SCOPE: Final = "spanguard"
_SESSION_KEYS: Final = (GEN_AI_CONVERSATION_ID, USER_ID)
_LOCAL_USER_ID: Final = otel_context.create_key("spanguard.session.user_id")  # in the context, never in baggage

F = TypeVar("F", bound=Callable[..., Any])


class session:
    """Group every span started inside into one conversation (``gen_ai.conversation.id``) of one user."""

    def __init__(self, id: str, user_id: str | None = None, *, propagate_user: bool = False) -> None:
        """``propagate_user``: also send the user id to other services in the W3C ``baggage`` header."""
        if not isinstance(id, str) or not id:
            raise ValueError("spanguard.session(id=...) needs a non-empty string id")
        if user_id is not None and not isinstance(user_id, str):
            raise ValueError("spanguard.session(user_id=...) must be a string")
        self.id = id
        self.user_id = user_id
        self.propagate_user = bool(propagate_user)
        self._tokens: list[object] = []

    def _enter(self) -> session:
        ctx = baggage.set_baggage(GEN_AI_CONVERSATION_ID, self.id)
        if self.user_id is not None:
            # A user id is personal data: in baggage, every outgoing HTTP request would carry it, to any host.
            ctx = otel_context.set_value(_LOCAL_USER_ID, self.user_id, ctx)
            if self.propagate_user:
                ctx = baggage.set_baggage(USER_ID, self.user_id, context=ctx)
            else:
                ctx = baggage.remove_baggage(USER_ID, context=ctx)
        self._tokens.append(otel_context.attach(ctx))
        return self

    def _exit(self) -> None:
        if self._tokens:
            otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __enter__(self) -> session:
        return self._enter()

    def __exit__(self, *exc: object) -> None:
        self._exit()

    async def __aenter__(self) -> session:
        return self._enter()

    async def __aexit__(self, *exc: object) -> None:
        self._exit()


def current_session(context: Context | None = None) -> dict[str, str]:
    """The session attributes (conversation and user id) carried by ``context`` or the current context."""
    entries = baggage.get_all(context)
    local = otel_context.get_value(_LOCAL_USER_ID, context)
    if not entries and local is None:
        return {}  # the common case, on every span: no session
    out = {key: value for key in _SESSION_KEYS if isinstance(value := entries.get(key), str)}
    if isinstance(local, str):
        out[USER_ID] = local
    return out


class SessionSpanProcessor(SpanProcessor):
    """Stamps the session's conversation and user id (from baggage) on every span as it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the session attributes from the parent context's baggage onto the starting span."""
        try:
            for key, value in current_session(parent_context).items():
                span.set_attribute(key, value)
        except Exception:
            logger.debug("spanguard: could not stamp session attributes", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered, so flushing always succeeds."""
        return True


def _tracer() -> trace.Tracer:
    from spanguard._instrument import current_tracer_provider

    return trace.get_tracer(SCOPE, __version__, tracer_provider=current_tracer_provider())


class agent:
    """Open an ``invoke_agent {name}`` span around an agent loop (sync or async ``with``)."""

    def __init__(self, name: str, *, attributes: dict[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("spanguard.agent(name) needs a non-empty string name")
        self.name = name
        self._attributes = attributes or {}
        self._stack: list[tuple[trace.Span, object]] = []

    def _enter(self) -> trace.Span:
        span = _tracer().start_span(
            f"{GEN_AI_OPERATION_INVOKE_AGENT} {self.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                **self._attributes,
                GEN_AI_OPERATION_NAME: GEN_AI_OPERATION_INVOKE_AGENT,
                GEN_AI_AGENT_NAME: self.name,
            },
        )
        self._stack.append((span, otel_context.attach(trace.set_span_in_context(span))))
        return span

    def _exit(self, error: BaseException | None) -> None:
        span, token = self._stack.pop()
        otel_context.detach(token)  # type: ignore[arg-type]
        _end_with(span, error)

    def __enter__(self) -> trace.Span:
        return self._enter()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self._exit(exc)

    async def __aenter__(self) -> trace.Span:
        return self._enter()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any):
        self._exit(exc)


def _end_with(span: trace.Span, error: BaseException | None) -> None:
    if error is not None:
        from spanguard.instrumentation._core import error_type_of

        error_type = error_type_of(error)
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()


@overload
def tool(func: F, /) -> F: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...
def tool(func: Any = None, /, *, name: str | None = None, description: str | None = None) -> Any:
    """Decorate a function (sync or async) so each call is an ``execute_tool {name}`` span."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or fn.__name__
        signature = inspect.signature(fn)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[trace.Span, object]:
            attributes: dict[str, Any] = {
                GEN_AI_OPERATION_NAME: GEN_AI_OPERATION_EXECUTE_TOOL,
                GEN_AI_TOOL_NAME: tool_name,
                GEN_AI_TOOL_TYPE: "function",
            }
            doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
            if doc:
                attributes[GEN_AI_TOOL_DESCRIPTION] = doc
            if _capture_enabled():
                attributes[GEN_AI_TOOL_CALL_ARGUMENTS] = _bound_arguments(signature, args, kwargs)
            span = _tracer().start_span(
                f"{GEN_AI_OPERATION_EXECUTE_TOOL} {tool_name}", kind=SpanKind.INTERNAL, attributes=attributes
            )
            return span, otel_context.attach(trace.set_span_in_context(span))

        def finish(span: trace.Span, token: object, result: Any, error: BaseException | None) -> None:
            otel_context.detach(token)  # type: ignore[arg-type]
            if error is None and _capture_enabled():
                from spanguard.instrumentation.content import to_json

                span.set_attribute(GEN_AI_TOOL_CALL_RESULT, result if isinstance(result, str) else to_json(result))
            _end_with(span, error)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                span, token = start(args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    finish(span, token, None, error)
                    raise
                finish(span, token, result, None)
                return result

            return run_async

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            span, token = start(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                finish(span, token, None, error)
                raise
            finish(span, token, result, None)
            return result

        return run

    if func is not None:
        return decorate(func)
    return decorate


def _bound_arguments(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    from spanguard.instrumentation.content import to_json

    try:
        bound = signature.bind_partial(*args, **kwargs)
        return to_json(dict(bound.arguments))
    except TypeError:
        return to_json({"args": list(args), "kwargs": kwargs})


def _capture_enabled() -> bool:
    from spanguard._instrument import current_options

    options = current_options()
    return options is not None and options.capture.enabled

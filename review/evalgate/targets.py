"""Targets: what the gate runs on each case, a Python function or an OpenAI-compatible endpoint.

:class:`Caller` runs a target under a concurrency limit, a per-call timeout and retries; a call that still fails is
:class:`TargetFailed`. Behaviour: docs/datasets.md ("Targets").
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import random
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import pydantic

from spanguard._logging import safe_url
from spanguard.review.evalgate.dataset import Message, error_path

__all__ = [
    "API_KEY_ENV",
    "Caller",
    "EndpointTarget",
    "NotCalled",
    "PythonTarget",
    "Target",
    "TargetError",
    "TargetFailed",
    "as_output",
    "call_with_retries",
    "load_target",
]

API_KEY_ENV: Final = "OPENAI_API_KEY"
_DETAIL_MAX: Final = 200
T = TypeVar("T")


class TargetError(ValueError):
    """A target that cannot be used at all (a bad ``--target``): a usage error, before any case runs."""


class TargetFailed(Exception):
    """A call that failed on every attempt (timeouts, errors, an answer that is not an output)."""

    def __init__(self, what: str, attempts: int, detail: str) -> None:
        self.what = what
        self.attempts = attempts
        self.detail = detail
        super().__init__(f"{what} failed after {attempts} attempt{'s' if attempts != 1 else ''}: {detail}")


class NotCalled(Exception):
    """The call was not made: an earlier case's target failed on every attempt, so the run stops."""


class Target(Protocol):
    """Something that answers one case's input messages with an assistant message."""

    description: str
    """What the target is, for reports (a URL without credentials, or ``module:function``)."""

    async def __call__(self, messages: list[dict[str, Any]]) -> Message:
        """One answer to ``messages``."""
        ...


class _NotAnOutput(Exception):
    """The target answered something that is not an output: its bug, not a fault worth retrying."""


def as_output(value: Any) -> Message:
    """A target's answer as an assistant :class:`Message`: text, a message dict, or an object with ``model_dump``."""
    if isinstance(value, str):
        return Message(role="assistant", content=value)
    if hasattr(value, "model_dump") and not isinstance(value, Message):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, Message):
        data = value.model_dump(exclude_none=True)
    elif isinstance(value, dict):
        data = {key: item for key, item in value.items() if item is not None}
    else:
        raise _NotAnOutput(f"the target returned {type(value).__name__}, not text or a message")
    data.setdefault("role", "assistant")
    # The SDK's message carries keys the chat format has but a case does not (refusal, audio, annotations).
    data = {key: data[key] for key in ("role", "content", "tool_calls", "name") if key in data}
    if data.get("tool_calls") == []:
        data.pop("tool_calls")
    try:
        message = Message.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = ", ".join(sorted({error_path(err["loc"]) or "message" for err in exc.errors()}))
        raise _NotAnOutput(f"the target returned a message that is not valid ({fields})") from None
    if message.role != "assistant":
        raise _NotAnOutput(f"the target returned a {message.role!r} message, not an assistant one")
    return message


def _describe(error: BaseException) -> str:
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    text = " ".join(str(error).split())
    if len(text) > _DETAIL_MAX:
        text = text[: _DETAIL_MAX - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout: float,
    retries: int,
    backoff: float,
    retryable: Callable[[BaseException], bool] = lambda error: True,
) -> T:
    """``call()`` under ``timeout`` seconds per attempt, retried ``retries`` times after a timeout or a retryable
    error, ``backoff * 2**n`` seconds apart (with jitter); :class:`TargetFailed` when no attempt succeeded."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await asyncio.wait_for(call(), timeout)
        except asyncio.CancelledError:
            raise
        except _NotAnOutput as error:
            raise TargetFailed(what, attempt, str(error)) from None
        except Exception as error:
            if attempt > retries or not (isinstance(error, (TimeoutError, asyncio.TimeoutError)) or retryable(error)):
                raise TargetFailed(what, attempt, _describe(error)) from None
        await asyncio.sleep(backoff * 2 ** (attempt - 1) * random.uniform(0.75, 1.25))


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # timed out and cancelled: the late answer is dropped
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def _in_daemon_thread(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a thread of its own. A thread cannot be cancelled: after a timeout the call goes on in
    the background, so it is a daemon thread, which neither the event loop's end nor the interpreter's waits for
    (``asyncio.to_thread`` would hold the command until a hung target returned)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        try:
            value, error = function(*args), None
        except Exception as exc:
            value, error = None, exc
        except BaseException as exc:  # sys.exit() in a target is its failure, not the gate's end
            value, error = None, RuntimeError(f"the target raised {type(exc).__name__}")
        try:
            loop.call_soon_threadsafe(_settle, future, value, error)
        except RuntimeError:  # the loop has closed: nobody waits for this answer any more
            pass

    threading.Thread(target=work, name="spanguard-gate-target", daemon=True).start()
    return await future


class PythonTarget:
    """A Python function, sync or async, called with the messages; a sync one runs in a worker thread."""

    def __init__(self, function: Callable[..., Any], description: str) -> None:
        self.function = function
        self.description = description
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004 - an async callable object
        )

    async def __call__(self, messages: list[dict[str, Any]]) -> Message:
        if self._is_async:
            try:
                value = await self.function(messages)
            except SystemExit:
                raise RuntimeError("the target raised SystemExit") from None
        else:
            value = await _in_daemon_thread(self.function, messages)
        if inspect.isawaitable(value):
            value = await value
        return as_output(value)

    @classmethod
    def load(cls, spec: str) -> PythonTarget:
        """The function named by ``module:function`` or ``path/to/file.py:function``; :class:`TargetError` when it
        cannot be imported or is not callable."""
        module_name, sep, attribute = spec.rpartition(":")
        if not sep or not module_name or not attribute:
            raise TargetError(f"--target {spec!r}: expected module:function, path/to/file.py:function or a URL")
        try:
            if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
                module = _import_file(Path(module_name))
            else:
                # As `python -m` and pytest do: modules in the working directory can be named.
                if os.getcwd() not in sys.path and "" not in sys.path:
                    sys.path.insert(0, os.getcwd())
                module = importlib.import_module(module_name)
        except TargetError:
            raise
        except Exception as error:
            raise TargetError(f"--target {spec!r}: cannot import {module_name}: {_describe(error)}") from None
        function: Any = module
        for part in attribute.split("."):
            function = getattr(function, part, None)
            if function is None:
                raise TargetError(f"--target {spec!r}: {module_name} has no {attribute!r}")
        if not callable(function):
            raise TargetError(f"--target {spec!r}: {attribute!r} is not callable")
        return cls(function, spec)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    name = f"spanguard_gate_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class EndpointTarget:
    """An OpenAI-compatible chat completions endpoint (``base_url``, e.g. ``http://host:8000/v1``), called with the
    openai SDK; the SDK's own retries are off, :class:`Caller` retries."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0) -> None:
        import openai

        self.model = model
        self.description = f"{safe_url(base_url)} ({model})"
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get(API_KEY_ENV) or "unused",
            max_retries=0,
            timeout=timeout,
        )

    async def __call__(self, messages: list[dict[str, Any]]) -> Message:
        completion = await self._client.chat.completions.create(model=self.model, messages=messages)  # type: ignore[arg-type]
        if not completion.choices:
            raise _NotAnOutput("the endpoint answered with no choices")
        return as_output(completion.choices[0].message)

    async def close(self) -> None:
        """Close the SDK's connections."""
        await self._client.close()

    @staticmethod
    def retryable(error: BaseException) -> bool:
        """Timeouts, lost connections, 408, 409, 429 and 5xx are worth another attempt; other 4xx are not."""
        import openai

        if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
            return True
        if isinstance(error, openai.APIStatusError):
            return error.status_code in (408, 409, 429) or error.status_code >= 500
        return not isinstance(error, openai.OpenAIError)


def load_target(spec: str, *, model: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> Target:
    """The target ``spec`` names: a URL (needs ``model``) or a Python function; :class:`TargetError` otherwise."""
    if spec.startswith(("http://", "https://")):
        if not model:
            raise TargetError("--target URL needs --model: the model the endpoint is asked for")
        return EndpointTarget(spec, model, api_key=api_key, timeout=timeout)
    if model:
        raise TargetError("--model applies to a URL target only")
    return PythonTarget.load(spec)


class Caller:
    """Calls a target for many cases at once: at most ``concurrency`` calls in flight, each attempt under
    ``timeout`` seconds, ``retries`` more attempts after a failure."""

    def __init__(
        self, target: Target, *, concurrency: int = 4, timeout: float = 60.0, retries: int = 2, backoff: float = 0.5
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.calls = 0
        """Attempts made so far (each retry counts)."""
        self.failure: TargetFailed | None = None
        """The first call that failed on every attempt; later calls are :class:`NotCalled`."""
        self.stopped: str | None = None
        """Why the run stopped making calls, when something other than the target stopped it."""
        self._limit = asyncio.Semaphore(concurrency)
        self._retryable = getattr(target, "retryable", lambda error: True)

    async def __call__(self, case_id: str, messages: list[dict[str, Any]]) -> Message:
        """The target's answer for one case; :class:`TargetFailed` when every attempt failed, :class:`NotCalled`
        once another call has."""

        async def attempt() -> Message:
            self.calls += 1
            return await self.target(messages)

        async with self._limit:
            if self.failure is not None or self.stopped is not None:
                raise NotCalled(case_id)
            try:
                return await call_with_retries(
                    attempt,
                    what=f"the target on {case_id}",
                    timeout=self.timeout,
                    retries=self.retries,
                    backoff=self.backoff,
                    retryable=self._retryable,
                )
            except TargetFailed as error:
                self.failure = self.failure or error
                raise

    def stop(self, reason: str) -> None:
        """Make no more calls (the judge's endpoint is down: every case would fail the same way)."""
        self.stopped = self.stopped or reason

    async def close(self) -> None:
        """Release the target's resources (an endpoint's connections)."""
        close = getattr(self.target, "close", None)
        if close is not None:
            await close()

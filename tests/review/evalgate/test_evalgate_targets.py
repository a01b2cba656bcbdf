"""Targets in process: the answers a target may give, retries with backoff, and what a bad target spec says."""

from __future__ import annotations

import asyncio
import re

import pytest
from fake_provider import text, tool_call

from spanguard.review.evalgate.dataset import Message
from spanguard.review.evalgate.targets import (
    Caller,
    EndpointTarget,
    PythonTarget,
    TargetError,
    TargetFailed,
    as_output,
    call_with_retries,
    load_target,
)


def test_text_a_dict_and_an_sdk_message_are_outputs():
    assert as_output("hi") == Message(role="assistant", content="hi")
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    out = as_output({"content": None, "tool_calls": [call]})
    assert out.role == "assistant" and out.tool_calls[0].function.name == "f"
    assert as_output({"role": "assistant", "content": "x", "tool_calls": []}).tool_calls is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "returned int"),
        ({"role": "user", "content": "x"}, "a 'user' message"),
        ({"content": 5}, "not valid (content)"),
        (None, "returned NoneType"),
    ],
)
def test_an_answer_that_is_not_an_output_fails_without_retries(value, message):
    target = PythonTarget(lambda messages: value, "t")
    caller = Caller(target, retries=3, backoff=0)
    with pytest.raises(TargetFailed, match=re.escape(message)) as caught:
        asyncio.run(caller("c", [{"role": "user", "content": "q"}]))
    assert caught.value.attempts == 1 and caller.calls == 1


def test_retries_back_off_and_then_succeed():
    attempts = []

    async def call():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return "ok"

    assert asyncio.run(call_with_retries(call, what="x", timeout=5, retries=2, backoff=0)) == "ok"
    assert len(attempts) == 3


def test_a_non_retryable_error_is_not_retried():
    attempts = []

    async def call():
        attempts.append(1)
        raise PermissionError("no")

    with pytest.raises(TargetFailed, match="PermissionError: no"):
        asyncio.run(call_with_retries(call, what="x", timeout=5, retries=5, backoff=0, retryable=lambda e: False))
    assert len(attempts) == 1


def test_an_async_target_that_hangs_is_cancelled_on_timeout():
    cancelled = []

    async def hang(messages):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(TargetFailed, match="timed out"):
        asyncio.run(Caller(PythonTarget(hang, "t"), timeout=0.05, retries=1, backoff=0)("c", []))
    assert cancelled == [True, True]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "expected module:function"),
        (":fn", "expected module:function"),
        ("json:no_such_function", "json has no 'no_such_function'"),
        ("json:__doc__", "is not callable"),
        ("spanguard_no_such_module:fn", "cannot import spanguard_no_such_module"),
    ],
)
def test_a_bad_target_spec_is_a_usage_error(spec, message):
    with pytest.raises(TargetError, match=message):
        load_target(spec)


def test_a_target_file_with_an_error_is_a_usage_error(tmp_path):
    broken = tmp_path / "agent.py"
    broken.write_text("raise RuntimeError('import-time failure')\n")
    with pytest.raises(TargetError, match="RuntimeError: import-time failure"):
        load_target(f"{broken}:answer")


def test_model_applies_to_a_url_target_only():
    with pytest.raises(TargetError, match="--model applies to a URL target only"):
        load_target("json:dumps", model="m")


def test_an_endpoint_target_returns_the_assistant_message_with_its_tool_calls(fake):
    fake.script(tool_call("issue_refund", {"amount": 5}), text("plain"))
    target = EndpointTarget(fake.openai_base_url, "gpt-4o", api_key="k")

    async def go():
        first = await target([{"role": "user", "content": "refund"}])
        second = await target([{"role": "user", "content": "hi"}])
        await target.close()
        return first, second

    first, second = asyncio.run(go())
    assert first.tool_calls[0].function.name == "issue_refund"
    assert first.tool_calls[0].function.arguments == '{"amount":5}'
    assert second.content == "plain" and second.tool_calls is None
    assert fake.requests[0].headers["authorization"] == "Bearer k"
    assert "k" not in target.description and fake.openai_base_url in target.description

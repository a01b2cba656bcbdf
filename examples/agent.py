"""A small multi-turn customer-support agent, instrumented with one line: ``spanguard.instrument()``.

Its refunds go through an approval gate (``@spanguard.gate``): with ``SPANGUARD_REVIEW_ENDPOINT`` and
``SPANGUARD_REVIEW_TOKEN`` set (``make demo`` sets them), a refund over the policy's threshold
(``examples/gate-policy.yaml``) waits for a reviewer; without a review service it is denied, and the model is told.

It uses the real OpenAI SDK. With ``OPENAI_BASE_URL`` unset it starts the local fake provider
(``fake_provider.py``) and scripts its answers, so it runs anywhere without a key or a network.

    python examples/agent.py                                   # the one-line form
    opentelemetry-instrument python examples/agent.py --no-instrument   # zero-code form, same spans
    python examples/agent.py --multi-turn                      # each user turn its own trace; bob comes back
    python examples/agent.py --session conv-7 --turn "Hi" --turn "Where is A-1001?" --history conv-7.json

By default each conversation is one trace. ``--multi-turn`` makes each user turn its own trace in the conversation's
session, as a chat service handling one request per turn does, and adds bob's follow-up question after his refund:
the shape ``make demo`` shows as one session in the review queue. ``--session`` runs one conversation of your own
``--turn`` texts, each its own trace; ``--history`` keeps its messages in a JSON file between runs, so a later run
continues the same conversation (with ``OPENAI_BASE_URL`` unset, the fake provider answers these unscripted).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import openai
from opentelemetry import trace

import spanguard

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODEL = "gpt-4o-mini"
SYSTEM = "You are Ada, the support agent of an online shop. Use the tools; be brief."
ORDERS = {
    "A-1001": {"status": "shipped", "carrier": "DHL", "eta": "tomorrow"},
    "A-1002": {"status": "delayed", "carrier": "UPS", "eta": "in 5 days"},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order's shipping status.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "issue_refund",
            "description": "Refund an amount of an order to the customer's card.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "amount": {"type": "number"},
                    "reason": {"type": "string"},
                },
                "required": ["order_id", "amount"],
            },
        },
    },
]
# Each conversation: (session id, user id, the user's turns).
CONVERSATIONS = [
    ("conv-001", "user-jane", ["Hi, where is my order A-1001?", "Thanks! Can you email jane.doe@example.com too?"]),
    ("conv-002", "user-bob", ["Order A-1002 is late again. My card 4111 1111 1111 1111 was charged twice!"]),
]
# --multi-turn: bob's question after his refund, a later turn of conv-002.
FOLLOW_UP = ("conv-002", "Thanks. Will UPS e-mail me when A-1002 is on its way?")


@spanguard.tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order's shipping status."""
    return ORDERS.get(order_id, {"status": "unknown"})


@spanguard.gate(action="issue_refund")
@spanguard.tool
def issue_refund(order_id: str, amount: float, reason: str = "") -> dict[str, Any]:
    """Refund ``amount`` of an order (only once a reviewer approved it, when the policy asks)."""
    return {"refunded": amount, "order_id": order_id, "currency": "EUR"}


def call_tool(name: str, arguments: dict[str, Any]) -> str:
    """Run one tool the model called; a refusal by the approval gate is told to the model, honestly."""
    if name == "lookup_order":
        return json.dumps(lookup_order(**arguments))
    if name == "issue_refund":
        try:
            result = json.dumps(issue_refund(**arguments))
        except spanguard.ApprovalError as refused:
            return refused.message_for_model
        granted = spanguard.last_grant()
        note = granted.message_for_model if granted is not None else None
        return f"{result}\n{note}" if note else result
    return json.dumps({"error": f"unknown tool {name}"})


def script_fake_provider(fake: Any, *, multi_turn: bool = False) -> None:
    """Queue the answers the fake provider gives, in the order the agent asks (with bob's follow-up: ``multi_turn``)."""
    from fake_provider import text, tool_call

    fake.script(
        tool_call("lookup_order", {"order_id": "A-1001"}, call_id="call_order_1001"),
        text("Your order A-1001 has shipped with DHL and arrives tomorrow."),
        text("Done: I sent the tracking link to your email."),
        tool_call("lookup_order", {"order_id": "A-1002"}, call_id="call_order_1002"),
        tool_call(
            "issue_refund",
            {"order_id": "A-1002", "amount": 89.9, "reason": "double charge"},
            call_id="call_refund_1002",
        ),
        text("Sorry! A-1002 is delayed (UPS, 5 days). I have refunded the double charge of 89.90 EUR."),
    )
    if multi_turn:
        fake.script(text("Yes: UPS e-mails you the tracking link as soon as A-1002 leaves the depot."))


def run_turn(client: openai.OpenAI, messages: list[dict[str, Any]]) -> str:
    """Ask the model, running the tools it calls, until it answers in text."""
    for _ in range(5):
        response = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, temperature=0.2)
        message = response.choices[0].message
        if not message.tool_calls:
            messages.append({"role": "assistant", "content": message.content})
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = call_tool(call.function.name, json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return "(gave up after five tool rounds)"


def conversation_turns(*, multi_turn: bool = False) -> list[tuple[str, str, list[str]]]:
    """The scripted conversations; with ``multi_turn``, bob's follow-up question is the last turn of his."""
    if not multi_turn:
        return CONVERSATIONS
    return [(c, u, [*turns, FOLLOW_UP[1]] if c == FOLLOW_UP[0] else turns) for c, u, turns in CONVERSATIONS]


def converse(
    client: openai.OpenAI,
    conversation_id: str,
    user_id: str | None,
    turns: list[str],
    messages: list[dict[str, Any]],
    *,
    trace_per_turn: bool = False,
    quiet: bool = False,
    history: Path | None = None,
    traces_file: Path | None = None,
) -> None:
    """Run the user's ``turns`` of one conversation in its session, as one trace or one trace per turn; with
    ``traces_file``, append a JSON line per turn: its conversation, trace id and text."""

    def agent() -> AbstractContextManager[Any]:
        return spanguard.agent("support-agent")

    # A chat service sees one request per user turn: each is its own trace, the session ties them together.
    with spanguard.session(id=conversation_id, user_id=user_id), nullcontext() if trace_per_turn else agent():
        for turn in turns:
            with agent() if trace_per_turn else nullcontext():
                messages.append({"role": "user", "content": turn})
                answer = run_turn(client, messages)
                trace_id = trace.get_current_span().get_span_context().trace_id
            if traces_file is not None:
                line = {"conversation": conversation_id, "trace_id": f"{trace_id:032x}", "turn": turn}
                with traces_file.open("a") as out:
                    out.write(json.dumps(line) + "\n")
            if history is not None:
                history.write_text(json.dumps(messages, indent=1))
            if not quiet:
                print(f"[{conversation_id}] user: {turn}\n[{conversation_id}] agent: {answer}")


def run(
    client: openai.OpenAI, *, quiet: bool = False, multi_turn: bool = False, traces_file: Path | None = None
) -> None:
    """Run every scripted conversation, one session each (each user turn its own trace with ``multi_turn``)."""
    for conversation_id, user_id, turns in conversation_turns(multi_turn=multi_turn):
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        converse(
            client,
            conversation_id,
            user_id,
            turns,
            messages,
            trace_per_turn=multi_turn,
            quiet=quiet,
            traces_file=traces_file,
        )


def load_history(path: Path | None) -> list[dict[str, Any]]:
    """The messages a ``--history`` file holds, or a new conversation; ValueError naming what is wrong."""
    if path is None or not path.exists():
        return [{"role": "system", "content": SYSTEM}]
    try:
        messages = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"--history {path}: not a readable JSON file ({type(error).__name__})") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ValueError(f"--history {path}: expected a JSON list of chat messages (objects with a role)")
    return messages


def main(argv: list[str] | None = None) -> int:
    """Run the agent against ``OPENAI_BASE_URL`` or an embedded fake provider."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-instrument", action="store_true", help="skip spanguard.instrument() (zero-code use)")
    parser.add_argument("--quiet", action="store_true", help="do not print the conversation")
    parser.add_argument(
        "--multi-turn", action="store_true", help="each user turn its own trace, and a follow-up turn from bob"
    )
    parser.add_argument("--session", metavar="ID", help="run one conversation of --turn texts with this id instead")
    parser.add_argument("--user", metavar="ID", help="the user id of --session's conversation")
    parser.add_argument("--turn", action="append", default=[], metavar="TEXT", help="a user turn of --session")
    parser.add_argument("--history", type=Path, metavar="FILE", help="--session's messages, kept between runs")
    parser.add_argument(
        "--traces-file", type=Path, metavar="FILE", help="append each turn's conversation and trace id (JSON lines)"
    )
    args = parser.parse_args(argv)
    if args.session is None and (args.turn or args.user or args.history):
        parser.error("--turn, --user and --history belong to a --session")
    if args.session is not None and not args.turn:
        parser.error("--session needs at least one --turn")
    if args.session is not None and args.multi_turn:
        parser.error("--multi-turn runs the scripted conversations; --session runs your own")
    try:
        messages = load_history(args.history) if args.session is not None else []
    except ValueError as error:
        parser.error(str(error))
    if not args.no_instrument:
        spanguard.instrument()  # the one line
    base_url = os.environ.get("OPENAI_BASE_URL")
    fake = None
    if not base_url:
        from fake_provider import FakeProvider

        fake = FakeProvider().start()
        if args.session is None:
            script_fake_provider(fake, multi_turn=args.multi_turn)
        base_url = fake.openai_base_url
    try:
        client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "fake-key"))
        if args.session is None:
            run(client, quiet=args.quiet, multi_turn=args.multi_turn, traces_file=args.traces_file)
        else:
            converse(
                client,
                args.session,
                args.user,
                args.turn,
                messages,
                trace_per_turn=True,
                quiet=args.quiet,
                history=args.history,
                traces_file=args.traces_file,
            )
    finally:
        if fake is not None:
            fake.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Approval-gate scenarios on the real frameworks, run in the frameworks' venv by ``test_gate_adapters.py``.

``python gate_scenarios.py NAME [--resume APPROVAL_ID] [--checkpoint PATH] [--thread ID] [--forge same|other]`` runs an
agent whose refund tool is gated, against the fake provider and the review service named by
``SPANGUARD_REVIEW_ENDPOINT`` / ``SPANGUARD_REVIEW_TOKEN``, and prints one JSON object: the final answer, the calls the
tool ran, what the model was told after each tool call, the gate spans and LangGraph's interrupt values.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from fake_provider import FakeProvider, text, tool_call
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from scenarios import MODEL, _agents, _chat_openai

import spanguard
from spanguard import ApprovalError

DONE = "The refund is settled."
ASK = "Refund 250 on order 42."
REFUND = {"order_id": "42", "amount": 250, "note": "receipt to jane.doe@example.com"}
SESSION = "conv-42"


def _told(fake: FakeProvider) -> list[str]:
    """What the model was told of each tool call: the tool outputs in the requests it received."""
    out = []
    for request in fake.requests:
        body = request.body or {}
        for item in body.get("input") or []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                out.append(str(item.get("output")))
        for message in body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "tool":
                out.append(str(message.get("content")))
    return out


def _refund_tool(runs: list[dict[str, Any]]) -> Any:
    def issue_refund(order_id: str, amount: float, note: str = "") -> str:
        """Refund an amount on an order."""
        runs.append({"order_id": order_id, "amount": amount, "note": note})
        return f"refunded {amount:g} on order {order_id}"

    return issue_refund


def agents_gate(fake: FakeProvider, options: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    """The OpenAI Agents SDK: a gated_tool (or a tool with the policy's needs_approval only) run with approvals."""
    agents = _agents(fake, "responses")
    from spanguard.instrumentation.gate_agents import (
        gated_tool,
        needs_approval,
        resume_run_sync,
        run_with_approvals_sync,
    )

    function = _refund_tool(runs)
    if options.plain:
        tool = agents.function_tool(function, needs_approval=needs_approval("issue_refund"))
    else:
        tool = gated_tool(agents.function_tool(function))
    agent = agents.Agent(name="support", instructions="Refund when asked.", model=MODEL, tools=[tool])
    if options.resume:
        fake.script(text(DONE))
        return str(resume_run_sync(options.resume, agent).final_output)  # outside the session: the gate finds it
    fake.script(tool_call("issue_refund", REFUND), text(DONE))
    if options.by_hand:  # the SDK's own approval, not spanguard's: the gated tool must refuse to run
        result = agents.Runner.run_sync(agent, ASK)
        state = result.to_state()
        for interruption in result.interruptions:
            state.approve(interruption)
        return str(agents.Runner.run_sync(agent, state).final_output)
    with spanguard.session(SESSION):
        return str(run_with_approvals_sync(agent, ASK).final_output)


seen: list[Any] = []  # the interrupt values the graph stopped with


def langgraph_gate(fake: FakeProvider, options: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    """LangGraph: a ReAct agent whose tool calls gate_interrupt, resumed from a SQLite checkpointer."""
    from langchain_core.tools import tool
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.prebuilt import create_react_agent
    from langgraph.types import Command

    from spanguard.instrumentation.gate_langgraph import APPROVAL_ID_KEY, gate_interrupt, resume_command

    refund = _refund_tool(runs)

    @tool
    def issue_refund(order_id: str, amount: float, note: str = "") -> str:
        """Refund an amount on an order."""
        try:
            granted = gate_interrupt("issue_refund", {"order_id": order_id, "amount": amount, "note": note})
        except ApprovalError as error:
            return error.message_for_model
        result = refund(**granted.arguments)
        return f"{granted.message_for_model}\n{result}" if granted.message_for_model else result

    config = {"configurable": {"thread_id": options.thread}}
    with SqliteSaver.from_conn_string(options.checkpoint) as saver, spanguard.session(SESSION):
        graph = create_react_agent(_chat_openai(fake), [issue_refund], checkpointer=saver)
        if options.resume:
            fake.script(text(DONE))
        else:
            fake.script(tool_call("issue_refund", REFUND), text(DONE))
            graph.invoke({"messages": [("user", ASK)]}, config)
        interrupts = graph.get_state(config).interrupts
        if not interrupts:
            raise SystemExit("the graph did not stop at the gate")
        seen.extend(i.value for i in interrupts)
        approval_id = interrupts[0].value[APPROVAL_ID_KEY]
        if not options.resume:
            print(json.dumps({"interrupted": approval_id}), flush=True)  # checkpointed: a kill from here on resumes
        if options.forge == "other":
            command = Command(resume={APPROVAL_ID_KEY: "apr_forged", "status": "approved"})
        elif options.forge == "same":
            spanguard.resume(approval_id, wait=True)  # the person decides (the test rejects), then a forged "approved"
            command = Command(resume={APPROVAL_ID_KEY: approval_id, "status": "approved"})
        else:
            command = resume_command(interrupts)
        state = graph.invoke(command, config)
        return str(state["messages"][-1].content)


def langgraph_gate_async(fake: FakeProvider, options: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    """LangGraph, async: an async tool calls agate_interrupt; resumed in process with decision_command."""
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import create_react_agent

    from spanguard.instrumentation.gate_langgraph import APPROVAL_ID_KEY, agate_interrupt, decision_command

    refund = _refund_tool(runs)

    @tool
    async def issue_refund(order_id: str, amount: float, note: str = "") -> str:
        """Refund an amount on an order."""
        try:
            granted = await agate_interrupt("issue_refund", {"order_id": order_id, "amount": amount, "note": note})
        except ApprovalError as error:
            return error.message_for_model
        return refund(**granted.arguments)

    async def run() -> str:
        config = {"configurable": {"thread_id": options.thread}}
        graph = create_react_agent(_chat_openai(fake), [issue_refund], checkpointer=InMemorySaver())
        fake.script(tool_call("issue_refund", REFUND), text(DONE))
        await graph.ainvoke({"messages": [("user", ASK)]}, config)
        (stopped,) = (await graph.aget_state(config)).interrupts
        seen.append(stopped.value)
        command = await asyncio.to_thread(decision_command, stopped.value[APPROVAL_ID_KEY], interrupt_id=stopped.id)
        state = await graph.ainvoke(command, config)
        return str(state["messages"][-1].content)

    with spanguard.session(SESSION):
        return asyncio.run(run())


SCENARIOS = {"agents_gate": agents_gate, "langgraph_gate": langgraph_gate, "langgraph_gate_async": langgraph_gate_async}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(SCENARIOS))
    parser.add_argument("--resume", help="an approval id: continue the run that asked it")
    parser.add_argument("--plain", action="store_true", help="agents: the policy's needs_approval without gated_tool")
    parser.add_argument("--by-hand", action="store_true", help="agents: approve with the SDK's state.approve()")
    parser.add_argument("--checkpoint", help="langgraph: the SQLite checkpointer's file")
    parser.add_argument("--thread", default="thread-1", help="langgraph: the thread id")
    parser.add_argument("--forge", choices=["same", "other"], help="langgraph: resume with a forged value")
    options = parser.parse_args(argv)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spanguard.instrument(tracer_provider=provider, capture_content=True)
    runs: list[dict[str, Any]] = []
    with FakeProvider() as fake:
        output = SCENARIOS[options.name](fake, options, runs)
        told = _told(fake)
    provider.force_flush()
    gates = [dict(s.attributes or {}) for s in exporter.get_finished_spans() if s.name.startswith("gate ")]
    print(json.dumps({"output": output, "runs": runs, "told": told, "gates": gates, "interrupts": seen}, default=list))


if __name__ == "__main__":
    main(sys.argv[1:])

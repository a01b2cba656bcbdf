"""Approval gates end to end: agents on the real OpenAI SDK (fake provider) whose risky tools wait for a person in a
real review service on loopback, sync and async; every outcome, the faults, and the gate's span."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_provider import text, tool_call
from gate_harness import Service, join_reviewer, reviewer, start_service, start_webhook

import spanguard
from spanguard.instrumentation import gate as gate_module
from spanguard.instrumentation import gate_call
from spanguard.instrumentation.gate_digest import argument_digest
from spanguard.instrumentation.gate_policy import GatePolicy
from spanguard.semconv import (
    SPANGUARD_APPROVAL_GATE,
    SPANGUARD_GATE_APPROVAL_ID,
    SPANGUARD_GATE_APPROVERS,
    SPANGUARD_GATE_ARGUMENT_DIGEST,
    SPANGUARD_GATE_ASKED,
    SPANGUARD_GATE_ESCALATED,
    SPANGUARD_GATE_OUTCOME,
    SPANGUARD_GATE_REASONS,
    SPANGUARD_GATE_TIER,
    SPANGUARD_GATE_WAIT_DURATION,
)

MODEL = "gpt-4o-mini-2024-07-18"
POLICY = {
    "default_tier": "yellow",
    "actions": {
        "issue_refund": {"tier": "yellow", "when": "amount > 100"},
        "delete_account": {"tier": "red", "approvals": 2},
        "lookup_order": "green",
    },
}
REFUND_TOOL = {
    "type": "function",
    "function": {
        "name": "issue_refund",
        "description": "Refund an order.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["order_id", "amount"],
        },
    },
}


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    running = start_service(f"sqlite:///{tmp_path_factory.mktemp('gates') / 'review.db'}", timer_interval_s=0.2)
    yield running
    running.shutdown()


@pytest.fixture
def gates(service: Service, instrument, tmp_path) -> Iterator[Any]:
    """Instrumented with content capture, gates pointed at the service with the test policy."""
    telemetry = instrument(
        capture_content=True,
        review_endpoint=service.base,
        review_token=service.tokens["agent"],
        gate_policy=GatePolicy.model_validate(POLICY),
    )
    gate_module.configure(records_dir=tmp_path / "approvals", poll_s=2.0)
    yield telemetry
    gate_module.reset_configuration()


refunds: list[dict[str, Any]] = []


@spanguard.gate(action="issue_refund")
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    refunds.append({"order_id": order_id, "amount": amount})
    return {"refunded": amount, "order_id": order_id}


@spanguard.gate(action="issue_refund")
async def issue_refund_async(order_id: str, amount: float) -> dict[str, Any]:
    refunds.append({"order_id": order_id, "amount": amount})
    return {"refunded": amount, "order_id": order_id}


def support_agent(client: Any, question: str, refund: Any = issue_refund) -> str:
    """A tool-calling loop: the model asks for a refund, the gated tool runs or the model is told why not."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(4):
        response = client.chat.completions.create(model=MODEL, messages=messages, tools=[REFUND_TOOL])
        message = response.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            try:
                result = json.dumps(refund(**json.loads(call.function.arguments)))
                granted = spanguard.last_grant()
                if granted is not None and granted.message_for_model:
                    result += "\n" + granted.message_for_model
            except spanguard.ApprovalError as error:
                result = error.message_for_model
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    raise AssertionError("the agent did not finish")


async def async_support_agent(client: Any, question: str) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(4):
        response = await client.chat.completions.create(model=MODEL, messages=messages, tools=[REFUND_TOOL])
        message = response.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            try:
                result = json.dumps(await issue_refund_async(**json.loads(call.function.arguments)))
            except spanguard.ApprovalError as error:
                result = error.message_for_model
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    raise AssertionError("the agent did not finish")


def gate_span(telemetry: Any) -> Any:
    spans = [s for s in telemetry.spans() if s.name.startswith("gate ")]
    assert spans, [s.name for s in telemetry.spans()]
    return spans[-1]


def tool_messages(fake: Any) -> list[str]:
    last = fake.requests[-1].body["messages"]
    return [m["content"] for m in last if m.get("role") == "tool"]


@pytest.fixture(autouse=True)
def _no_refunds() -> None:
    refunds.clear()


# -- outcomes -----------------------------------------------------------------------------------------------------


def test_an_approved_refund_runs_after_the_reviewer_approves_and_the_span_records_the_wait(
    gates, service, fake, openai_client
) -> None:
    fake.script(tool_call("issue_refund", {"order_id": "A-1", "amount": 250.0}), text("Refunded 250."))
    thread = reviewer(service, "issue_refund", lambda a: service.decide("alice", a["id"], "approve"))
    with spanguard.session("conv-approve", user_id="jane"):
        answer = support_agent(openai_client, "Refund order A-1 please, 250 EUR.")
    join_reviewer(thread)
    assert answer == "Refunded 250."
    assert refunds == [{"order_id": "A-1", "amount": 250.0}]
    span = gate_span(gates)
    attributes = dict(span.attributes)
    assert attributes[SPANGUARD_GATE_OUTCOME] == "approved"
    assert attributes[SPANGUARD_GATE_TIER] == "yellow"
    assert attributes[SPANGUARD_GATE_ASKED] is True
    assert attributes[SPANGUARD_APPROVAL_GATE] is True
    assert attributes[SPANGUARD_GATE_APPROVERS] == ("alice",)
    assert attributes[SPANGUARD_GATE_WAIT_DURATION] > 0
    assert "condition 'amount > 100' holds" in attributes[SPANGUARD_GATE_REASONS]
    assert attributes[SPANGUARD_GATE_ARGUMENT_DIGEST] == argument_digest(
        "issue_refund", {"order_id": "A-1", "amount": 250.0}, "conv-approve"
    )
    record = service.call("alice", "GET", f"/v1/approvals/{attributes[SPANGUARD_GATE_APPROVAL_ID]}").json()
    assert record["status"] == "approved" and record["consumed_at"]
    assert record["session_id"] == "conv-approve"
    assert record["trace_id"] == f"{span.context.trace_id:032x}"
    # The reviewer saw what led there: the conversation so far, with the pending tool call in it.
    last = record["state"]["messages"][-1]
    assert any(part.get("name") == "issue_refund" for part in last["parts"] if part["type"] == "tool_call")
    assert record["state"]["tool_calls"] == []  # no earlier call had a result yet: the pending one is not "earlier"
    assert record["state"]["models"]


def test_a_rejected_refund_does_not_run_and_the_model_is_told_the_reason(gates, service, fake, openai_client) -> None:
    fake.script(tool_call("issue_refund", {"order_id": "A-2", "amount": 900.0}), text("I cannot refund that."))
    thread = reviewer(
        service,
        "issue_refund",
        lambda a: service.decide("alice", a["id"], "reject", reason="order already refunded in March"),
    )
    answer = support_agent(openai_client, "Refund A-2, 900 EUR.")
    join_reviewer(thread)
    assert refunds == []
    assert answer == "I cannot refund that."
    (told,) = tool_messages(fake)
    assert "rejected" in told and "order already refunded in March" in told and "did not run" in told
    span = gate_span(gates)
    assert span.attributes[SPANGUARD_GATE_OUTCOME] == "rejected"
    assert span.attributes["error.type"] == "spanguard.ApprovalRejected"


def test_a_modified_refund_runs_with_the_reviewers_arguments_and_the_model_is_told_what_changed(
    gates, service, fake, openai_client
) -> None:
    fake.script(tool_call("issue_refund", {"order_id": "A-3", "amount": 400.0}), text("Refunded 150."))
    thread = reviewer(
        service,
        "issue_refund",
        lambda a: service.decide("alice", a["id"], "modify", arguments={**a["arguments"], "amount": 150.0}),
    )
    support_agent(openai_client, "Refund A-3, 400 EUR.")
    join_reviewer(thread)
    assert refunds == [{"order_id": "A-3", "amount": 150.0}]
    (told,) = tool_messages(fake)
    assert "changed the arguments" in told and "400.0 -> 150.0" in told
    assert gate_span(gates).attributes[SPANGUARD_GATE_OUTCOME] == "modified"


def test_a_refund_under_the_threshold_runs_without_asking_and_one_over_it_asks(gates, service) -> None:
    before = len(service.approvals())
    assert issue_refund("A-4", 40.0) == {"refunded": 40.0, "order_id": "A-4"}
    assert len(service.approvals()) == before
    span = gate_span(gates)
    assert span.attributes[SPANGUARD_GATE_OUTCOME] == "not_required"
    assert span.attributes[SPANGUARD_GATE_ASKED] is False
    assert SPANGUARD_APPROVAL_GATE not in span.attributes  # an unasked gate does not turn its trace red
    thread = reviewer(service, "issue_refund", lambda a: service.decide("bob", a["id"], "approve"))
    issue_refund("A-4", 101.0)
    join_reviewer(thread)
    assert len(service.approvals()) == before + 1
    assert refunds == [{"order_id": "A-4", "amount": 40.0}, {"order_id": "A-4", "amount": 101.0}]


def test_async_agent_waits_by_awaiting_and_runs_the_approved_refund(gates, service, fake, async_openai_client) -> None:
    fake.script(tool_call("issue_refund", {"order_id": "A-5", "amount": 300.0}), text("Done."))
    thread = reviewer(service, "issue_refund", lambda a: service.decide("alice", a["id"], "approve"))

    async def main() -> str:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        try:
            return await async_support_agent(async_openai_client, "Refund A-5.")
        finally:
            beat.cancel()
            assert ticks > 0  # the event loop kept running while the gate waited

    assert asyncio.run(main()) == "Done."
    join_reviewer(thread)
    assert refunds == [{"order_id": "A-5", "amount": 300.0}]


def test_async_agent_is_told_the_rejection(gates, service, fake, async_openai_client) -> None:
    fake.script(tool_call("issue_refund", {"order_id": "A-6", "amount": 300.0}), text("Not refunded."))
    thread = reviewer(service, "issue_refund", lambda a: service.decide("bob", a["id"], "reject", reason="fraud"))
    assert asyncio.run(async_support_agent(async_openai_client, "Refund A-6.")) == "Not refunded."
    join_reviewer(thread)
    assert refunds == []
    assert "fraud" in tool_messages(fake)[0]


def test_a_red_action_needs_two_distinct_reviewers_and_the_same_one_twice_is_refused(gates, service) -> None:
    deleted: list[str] = []

    @spanguard.gate(action="delete_account")
    def delete_account(account_id: str) -> None:
        deleted.append(account_id)

    def decide(request: dict[str, Any]) -> None:
        assert service.decide("alice", request["id"], "approve").status_code == 200
        again = service.decide("alice", request["id"], "approve")
        assert again.status_code == 409, again.text
        time.sleep(0.3)
        assert deleted == []  # one approval of two: still waiting
        assert service.decide("bob", request["id"], "approve").status_code == 200

    thread = reviewer(service, "delete_account", decide)
    delete_account("acct-9")
    join_reviewer(thread)
    assert deleted == ["acct-9"]
    span = gate_span(gates)
    assert span.attributes[SPANGUARD_GATE_TIER] == "red"
    assert span.attributes[SPANGUARD_GATE_APPROVERS] == ("alice", "bob")


def test_the_with_form_grants_the_block_and_tier_red_overrides_the_policy(gates, service) -> None:
    thread = reviewer(service, "export_report", lambda a: service.decide("alice", a["id"], "approve"))
    ran = []
    with spanguard.approval(action="export_report", arguments={"rows": 10}, tier="red") as granted:
        ran.append(granted.arguments)
    join_reviewer(thread)
    assert ran == [{"rows": 10}]
    assert granted.tier == "red" and granted.outcome == "approved"


# -- identity and replay ------------------------------------------------------------------------------------------


def test_a_replayed_approval_is_refused_for_other_arguments(gates, service) -> None:
    pending = gate_module.submit("issue_refund", {"order_id": "A-7", "amount": 500.0})
    assert isinstance(pending, gate_module.Pending)
    assert service.decide("alice", pending.approval_id, "approve").status_code == 200
    with pytest.raises(spanguard.ApprovalError, match="other arguments"):
        with spanguard.approval("issue_refund", {"order_id": "A-7", "amount": 5000.0}, approval_id=pending.approval_id):
            raise AssertionError("must not run")
    other = service.call("agent", "POST", f"/v1/approvals/{pending.approval_id}/consume", json={"digest": "0" * 64})
    assert other.status_code == 409
    granted = gate_module.wait(pending)
    assert granted.arguments == {"order_id": "A-7", "amount": 500.0}
    with pytest.raises(spanguard.ApprovalError):  # used once: a second run of the same approval is refused
        gate_module.wait(pending)


def test_the_request_shows_redacted_arguments_and_an_unchanged_field_keeps_its_original_value(gates, service) -> None:
    sent: list[dict[str, Any]] = []

    @spanguard.gate(action="send_receipt")
    def send_receipt(to: str, amount: float) -> None:
        sent.append({"to": to, "amount": amount})

    def decide(request: dict[str, Any]) -> None:
        assert "jane.doe@example.com" not in json.dumps(request)
        shown = request["arguments"]
        assert shown["to"] != "jane.doe@example.com"
        service.decide("alice", request["id"], "modify", arguments={**shown, "amount": 12.5})

    thread = reviewer(service, "send_receipt", decide)
    send_receipt("jane.doe@example.com", 20.0)
    join_reviewer(thread)
    assert sent == [{"to": "jane.doe@example.com", "amount": 12.5}]


# -- timeouts ---------------------------------------------------------------------------------------------------


def test_soft_timeout_escalates_and_notifies_then_hard_timeout_denies(instrument, tmp_path) -> None:
    hook = start_webhook()
    service = start_service(f"sqlite:///{tmp_path / 'review.db'}", timer_interval_s=0.1, webhook_url=hook.url)
    try:
        telemetry = instrument(
            review_endpoint=service.base,
            review_token=service.tokens["agent"],
            gate_policy=GatePolicy.model_validate(
                {"tiers": {"red": {"soft_timeout": "0.5s", "hard_timeout": "2s"}}, "actions": {"wire": "red"}}
            ),
        )
        gate_module.configure(records_dir=tmp_path / "approvals", poll_s=1.0)
        with pytest.raises(spanguard.ApprovalTimeout) as raised:
            with spanguard.approval("wire", {"iban": "DE00", "amount": 10}):
                raise AssertionError("must not run")
        assert "not a rejection" in raised.value.message_for_model.lower() or "nobody rejected" in (
            raised.value.message_for_model.lower()
        )
        (request,) = service.approvals()
        assert request["status"] == "timed_out" and request["escalated_at"]
        deadline = time.monotonic() + 10
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hook.received) == 1 and "text" in hook.received[0]
        assert "DE00" not in json.dumps(hook.received)  # arguments never go to the webhook
        span = gate_span(telemetry)
        assert span.attributes[SPANGUARD_GATE_OUTCOME] == "timed_out"
        assert span.attributes[SPANGUARD_GATE_ESCALATED] is True
    finally:
        gate_module.reset_configuration()
        service.shutdown()
        hook.close()


def test_a_yellow_action_may_proceed_at_its_hard_timeout_when_the_policy_says_so(instrument, tmp_path) -> None:
    service = start_service(f"sqlite:///{tmp_path / 'review.db'}", timer_interval_s=0.1)
    try:
        instrument(
            review_endpoint=service.base,
            review_token=service.tokens["agent"],
            gate_policy=GatePolicy.model_validate(
                {"tiers": {"yellow": {"soft_timeout": "0.2s", "hard_timeout": "0.6s", "on_hard_timeout": "proceed"}}}
            ),
        )
        gate_module.configure(records_dir=tmp_path / "approvals", poll_s=1.0)
        with spanguard.approval("tag_ticket", {"ticket": 7}) as granted:
            assert granted.outcome == "proceeded"
            assert "unreviewed" in (granted.message_for_model or "")
    finally:
        gate_module.reset_configuration()
        service.shutdown()


# -- faults: fail closed ------------------------------------------------------------------------------------------


def test_the_service_down_fails_closed_saying_it_is_unreachable(instrument, tmp_path) -> None:
    instrument(
        review_endpoint="http://127.0.0.1:9", review_token="sgr_x", gate_policy=GatePolicy.model_validate(POLICY)
    )
    gate_module.configure(records_dir=tmp_path)
    try:
        with pytest.raises(spanguard.ApprovalUnavailable, match="unreachable"):
            issue_refund("A-8", 500.0)
        assert refunds == []
        assert issue_refund("A-8", 5.0)  # under the threshold, no person is needed: the service is not asked
    finally:
        gate_module.reset_configuration()


def test_a_bad_token_fails_closed_saying_the_token_was_refused(service, instrument, tmp_path) -> None:
    instrument(review_endpoint=service.base, review_token="sgr_wrong", gate_policy=GatePolicy.model_validate(POLICY))
    gate_module.configure(records_dir=tmp_path)
    try:
        with pytest.raises(spanguard.ApprovalUnavailable, match="refused the token"):
            issue_refund("A-9", 500.0)
        with pytest.raises(spanguard.ApprovalUnavailable, match="role"):
            gate_module.configure(token=service.tokens["alice"])  # a reviewer's token may not ask
            issue_refund("A-9", 500.0)
        assert refunds == []
    finally:
        gate_module.reset_configuration()


def test_a_policy_that_does_not_load_fails_closed_naming_the_file(service, instrument, tmp_path, monkeypatch) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("actions:\n  issue_refund: {tier: yellow, when: 'amount >'}\n")
    monkeypatch.setenv("SPANGUARD_GATE_POLICY", str(bad))
    instrument(review_endpoint=service.base, review_token=service.tokens["agent"])
    try:
        with pytest.raises(spanguard.ApprovalUnavailable, match=r"policy\.yaml"):
            issue_refund("A-10", 1.0)  # even a call the policy would not ask for: the policy is unknown
        assert refunds == []
    finally:
        gate_module.reset_configuration()


def test_no_review_service_configured_fails_closed_for_a_call_that_asks(instrument, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SPANGUARD_REVIEW_ENDPOINT", raising=False)
    instrument(gate_policy=GatePolicy.model_validate(POLICY))
    gate_module.configure(records_dir=tmp_path)
    try:
        with pytest.raises(spanguard.ApprovalUnavailable, match="SPANGUARD_REVIEW_ENDPOINT"):
            issue_refund("A-11", 500.0)
    finally:
        gate_module.reset_configuration()


def test_arguments_that_are_not_json_are_denied(gates) -> None:
    with pytest.raises(spanguard.ApprovalUnavailable, match="no approval can be bound"):
        issue_refund("A-12", float("nan"))
    assert refunds == []


# -- resume after a crash -----------------------------------------------------------------------------------------


AGENT = textwrap.dedent(
    """
    import sys
    import spanguard
    from spanguard.instrumentation import gate
    spanguard.instrument()
    gate.configure(poll_s=1.0)
    pending = gate.submit("delete_account", {"account_id": "acct-1"}, tier="red", app_state={"step": 3})
    print(pending.approval_id, flush=True)
    gate.wait(pending)          # killed while waiting here
    print("ran before the kill", flush=True)
    """
)
RESUMER = textwrap.dedent(
    """
    import json, sys
    import spanguard
    spanguard.instrument()
    resumed = spanguard.resume(sys.argv[1])
    granted = resumed.approval()
    print(json.dumps({"outcome": resumed.outcome, "app_state": resumed.app_state, "arguments": granted.arguments}))
    """
)


def test_an_agent_killed_while_waiting_resumes_with_the_decision_without_asking_twice(service, tmp_path) -> None:
    env = {
        **os.environ,
        "SPANGUARD_REVIEW_ENDPOINT": service.base,
        "SPANGUARD_REVIEW_TOKEN": service.tokens["agent"],
        "SPANGUARD_GATE_DIR": str(tmp_path / "approvals"),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    before = len(service.approvals())
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        approval_id = agent.stdout.readline().strip()
        assert approval_id.startswith("apr_"), agent.stderr.read()
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert service.decide("alice", approval_id, "approve").status_code == 200
    assert (tmp_path / "approvals" / f"{approval_id}.json").exists()  # the durable local record
    done = subprocess.run(
        [sys.executable, "-c", RESUMER, approval_id], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"outcome": "approved", "app_state": {"step": 3}, "arguments": {"account_id": "acct-1"}}
    assert len(service.approvals()) == before + 1  # asked once
    assert not (tmp_path / "approvals" / f"{approval_id}.json").exists()  # used, so forgotten


def test_a_local_record_of_a_newer_schema_is_refused_not_guessed(service, tmp_path) -> None:
    records = tmp_path / "approvals"
    records.mkdir()
    (records / "apr_future.json").write_text(json.dumps({"schema_version": 99, "approval_id": "apr_future"}))
    gate_module.configure(
        endpoint=service.base, token=service.tokens["agent"], records_dir=records, policy=GatePolicy()
    )
    try:
        with pytest.raises(spanguard.ApprovalUnavailable, match="schema version 99"):
            spanguard.resume("apr_future")
    finally:
        gate_module.reset_configuration()


def test_an_old_local_record_without_a_version_is_read(tmp_path: Path) -> None:
    from spanguard.instrumentation.gate_state import LocalRecords

    (tmp_path / "apr_old.json").write_text(
        json.dumps({"approval_id": "apr_old", "action": "a", "arguments": {}, "digest": "d"})
    )
    record = LocalRecords(tmp_path).load("apr_old")
    assert record is not None and record.schema_version == 1 and record.action == "a"


# -- the decorator's arguments ------------------------------------------------------------------------------------


def test_the_decorator_binds_defaults_leaves_self_out_and_calls_with_the_granted_arguments(gates) -> None:
    class Shop:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        @spanguard.gate(action="lookup_order")
        def lookup(self, order_id: str, *, verbose: bool = False, **extra: Any) -> str:
            self.calls.append((order_id, verbose, extra))
            return order_id

    shop = Shop()
    assert shop.lookup("A-20", note="x") == "A-20"
    assert shop.calls == [("A-20", False, {"note": "x"})]
    span = gate_span(gates)
    assert span.attributes[SPANGUARD_GATE_OUTCOME] == "not_required"
    assert span.attributes[SPANGUARD_GATE_ARGUMENT_DIGEST] == argument_digest(
        "lookup_order", {"order_id": "A-20", "verbose": False, "extra": {"note": "x"}}, None
    )


def test_an_async_gate_the_policy_does_not_ask_for_runs_at_once(gates, service) -> None:
    before = len(service.approvals())
    assert asyncio.run(issue_refund_async("A-21", 10.0)) == {"refunded": 10.0, "order_id": "A-21"}
    assert len(service.approvals()) == before


def test_a_gate_without_an_action_name_is_refused(gates) -> None:
    with pytest.raises(ValueError, match="action"):
        with spanguard.approval("", {}):
            pass


def test_a_service_that_answers_pending_at_once_is_not_busy_polled(instrument, tmp_path, monkeypatch) -> None:
    """A proxy that drops ``?wait=`` (or a service that ignores it) answers at once: the gate still paces its polls."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    polls: list[str] = []
    record = {"id": "apr_impatient", "status": "pending", "hard_deadline": None, "on_hard_timeout": "deny"}

    class Impatient(BaseHTTPRequestHandler):
        def _answer(self, status: int) -> None:
            body = json.dumps(record).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._answer(201)

        def do_GET(self) -> None:
            polls.append(self.path)
            self._answer(200)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Impatient)
    Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(gate_call, "GRACE_S", 0.0)
    try:
        instrument(
            review_endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            review_token="sgr_x",
            gate_policy=GatePolicy.model_validate({"tiers": {"yellow": {"soft_timeout": "1s", "hard_timeout": "3s"}}}),
        )
        gate_module.configure(records_dir=tmp_path)
        with pytest.raises(spanguard.ApprovalTimeout):
            with spanguard.approval("tag_ticket", {"ticket": 1}):
                raise AssertionError("must not run")
        assert 1 <= len(polls) <= 6, len(polls)  # paced at one a second, not thousands
    finally:
        gate_module.reset_configuration()
        server.shutdown()
        server.server_close()

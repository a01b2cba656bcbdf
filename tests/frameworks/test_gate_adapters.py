"""The approval gates' framework adapters end to end: the real OpenAI Agents SDK and LangGraph (in their venv, as
subprocesses), the fake provider, and a real review service on loopback where the test decides as a reviewer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "instrumentation"))
from gate_harness import Service, start_service

SCENARIOS = Path(__file__).with_name("gate_scenarios.py")
RUN_S = 180  # a bound against hangs only
NOTE = "receipt to jane.doe@example.com"
RAN = {"order_id": "42", "amount": 250, "note": NOTE}


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    running = start_service(f"sqlite:///{tmp_path / 'review.db'}")
    try:
        yield running
    finally:
        running.shutdown()


@pytest.fixture
def env(service, tmp_path) -> dict[str, str]:
    """The scenario's environment: the service, an ingest token and a records directory shared by its processes."""
    out = {key: value for key, value in os.environ.items() if not key.startswith("SPANGUARD_")}
    out.update(
        SPANGUARD_REVIEW_ENDPOINT=service.base,
        SPANGUARD_REVIEW_TOKEN=service.tokens["agent"],
        SPANGUARD_GATE_DIR=str(tmp_path / "records"),
        OPENAI_AGENTS_DISABLE_TRACING="1",
    )
    return out


def start(python: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(python), str(SCENARIOS), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=RUN_S)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def run(python: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    return finish(start(python, env, *args))


def every_request(service: Service) -> list[dict[str, Any]]:
    return service.approvals("pending,approved,rejected,modified,timed_out")


def approve_when_asked(
    service: Service, process: subprocess.Popen[str], outcome: str = "approve", *, amount: float | None = None, **body
) -> dict[str, Any]:
    """Decide the refund's request once the scenario asked it (as a person would, later); the request as asked.

    ``amount``: modify the amount, leaving the other fields as the reviewer sees them (redacted)."""
    try:
        asked = service.wait_for_pending("issue_refund", timeout=120)
    except AssertionError:
        process.kill()
        raise AssertionError(process.communicate()[1][-3000:]) from None
    if amount is not None:
        body["arguments"] = {**asked["arguments"], "amount": amount}
    response = service.decide("alice", asked["id"], outcome, **body)
    assert response.status_code == 200, response.text
    return asked


# -- OpenAI Agents SDK ------------------------------------------------------------------------------------------------


def test_agents_a_gated_tool_runs_once_after_a_person_approves(framework_python, service, env):
    process = start(framework_python, env, "agents_gate")
    asked = approve_when_asked(service, process)
    result = finish(process)
    assert result["runs"] == [RAN]
    assert result["output"] == "The refund is settled."
    assert result["told"] == ["refunded 250 on order 42"]
    (request,) = every_request(service)
    assert request["id"] == asked["id"] and request["consumed_at"]
    assert asked["arguments"]["amount"] == 250 and "jane.doe@example.com" not in json.dumps(asked)
    assert asked["session_id"] == "conv-42" and asked["state"]["context"]["framework"] == "openai-agents"
    assert [g["spanguard.gate.outcome"] for g in result["gates"]] == ["pending", "approved"]


def test_agents_a_rejected_call_does_not_run_and_the_model_is_told_why(framework_python, service, env):
    process = start(framework_python, env, "agents_gate")
    approve_when_asked(service, process, "reject", reason="over the refund limit")
    result = finish(process)
    assert result["runs"] == []
    (told,) = result["told"]
    assert "rejected" in told and "over the refund limit" in told and "did not run" in told


def test_agents_a_modified_call_runs_with_the_reviewers_arguments_and_says_so(framework_python, service, env):
    process = start(framework_python, env, "agents_gate")
    approve_when_asked(service, process, "modify", amount=100)
    result = finish(process)
    assert result["runs"] == [{**RAN, "amount": 100}]  # the note the reviewer saw redacted runs as the model wrote it
    (told,) = result["told"]
    assert "changed" in told and "250" in told and "100" in told and told.endswith("refunded 100 on order 42")
    assert every_request(service)[0]["consumed_at"]


def test_agents_a_modify_the_sdk_cannot_apply_is_not_run_and_the_model_is_told_the_changes(
    framework_python, service, env
):
    process = start(framework_python, env, "agents_gate", "--plain")
    approve_when_asked(service, process, "modify", amount=100)
    result = finish(process)
    assert result["runs"] == []
    (told,) = result["told"]
    assert "amount: 250 -> 100" in told and "did not run" in told and "call issue_refund again" in told
    assert every_request(service)[0]["consumed_at"] is None  # not run, so not used


def test_agents_a_call_the_policy_lets_through_runs_without_a_request(framework_python, service, env, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nactions:\n  issue_refund: {tier: yellow, when: 'amount > 500'}\n")
    result = run(framework_python, {**env, "SPANGUARD_GATE_POLICY": str(policy)}, "agents_gate")
    assert result["runs"] == [RAN]
    assert every_request(service) == []


def test_agents_no_decision_in_time_does_not_run_and_the_model_is_told_nobody_decided(
    framework_python, service, env, tmp_path
):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ntiers:\n  yellow: {soft_timeout: 1s, hard_timeout: 2s}\n")
    result = run(framework_python, {**env, "SPANGUARD_GATE_POLICY": str(policy)}, "agents_gate")
    assert result["runs"] == []
    (told,) = result["told"]
    assert "no one decided" in told and "Nobody rejected it" in told
    assert every_request(service)[0]["status"] == "timed_out"


def test_agents_a_gated_tool_approved_by_hand_instead_of_through_spanguard_does_not_run(framework_python, service, env):
    result = run(framework_python, env, "agents_gate", "--by-hand")
    assert result["runs"] == []
    (told,) = result["told"]
    assert "did not run" in told and "approval through spanguard" in told
    assert every_request(service) == []


def test_agents_a_service_that_is_down_denies_and_the_model_is_told(framework_python, service, env):
    result = run(framework_python, {**env, "SPANGUARD_REVIEW_ENDPOINT": "http://127.0.0.1:9"}, "agents_gate")
    assert result["runs"] == []
    (told,) = result["told"]
    assert "did not run" in told and "unreachable" in told


def test_agents_a_run_killed_while_waiting_resumes_from_its_saved_state_without_asking_twice(
    framework_python, service, env
):
    process = start(framework_python, env, "agents_gate")
    asked = service.wait_for_pending("issue_refund", timeout=120)
    # The request is visible before the app has written its local record (the saved run): kill only after that.
    record = Path(env["SPANGUARD_GATE_DIR"]) / f"{asked['id']}.json"
    deadline = time.monotonic() + 60
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=RUN_S)
    assert service.decide("alice", asked["id"], "approve").status_code == 200
    result = run(framework_python, env, "agents_gate", "--resume", asked["id"])
    assert result["runs"] == [RAN]
    assert result["output"] == "The refund is settled."
    (request,) = every_request(service)
    assert request["id"] == asked["id"] and request["consumed_at"]


def test_agents_resuming_an_approval_with_no_saved_run_fails_with_the_reason(framework_python, service, env):
    done = subprocess.run(
        [str(framework_python), str(SCENARIOS), "agents_gate", "--resume", "apr_unknown"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_S,
        check=False,
    )
    assert done.returncode != 0
    assert "ApprovalUnavailable" in done.stderr and "apr_unknown" in done.stderr


# -- LangGraph --------------------------------------------------------------------------------------------------------


def graph_args(tmp_path: Path, *more: str) -> list[str]:
    return ["langgraph_gate", "--checkpoint", str(tmp_path / "checkpoints.sqlite"), *more]


def test_langgraph_a_gate_interrupts_and_the_tool_runs_after_approval_with_one_request(
    framework_python, service, env, tmp_path
):
    process = start(framework_python, env, *graph_args(tmp_path))
    asked = approve_when_asked(service, process)
    result = finish(process)
    assert result["runs"] == [RAN]
    assert result["output"] == "The refund is settled."
    (request,) = every_request(service)  # the tool ran again from its start on resume and found the same request
    assert request["id"] == asked["id"] and request["consumed_at"]
    assert asked["state"]["context"]["framework"] == "langgraph" and asked["state"]["context"]["thread_id"]
    (stopped_with,) = result["interrupts"]
    assert stopped_with["spanguard_approval_id"] == asked["id"] and stopped_with["action"] == "issue_refund"
    assert stopped_with["arguments"] == asked["arguments"]  # redacted, as the reviewer sees them
    assert "jane.doe@example.com" not in json.dumps(stopped_with)


def test_langgraph_an_async_gate_interrupts_and_runs_after_approval_resumed_by_decision_command(
    framework_python, service, env
):
    process = start(framework_python, env, "langgraph_gate_async")
    asked = approve_when_asked(service, process)
    result = finish(process)
    assert result["runs"] == [RAN]
    assert result["output"] == "The refund is settled."
    (request,) = every_request(service)
    assert request["id"] == asked["id"] and request["consumed_at"]
    assert result["interrupts"][0]["spanguard_approval_id"] == asked["id"]


def test_langgraph_a_rejected_gate_does_not_run_the_tool_and_the_model_is_told(
    framework_python, service, env, tmp_path
):
    process = start(framework_python, env, *graph_args(tmp_path))
    approve_when_asked(service, process, "reject", reason="customer already refunded")
    result = finish(process)
    assert result["runs"] == []
    (told,) = result["told"]
    assert "customer already refunded" in told and "did not run" in told


def test_langgraph_a_modified_gate_runs_the_reviewers_arguments(framework_python, service, env, tmp_path):
    process = start(framework_python, env, *graph_args(tmp_path))
    approve_when_asked(service, process, "modify", amount=100)
    result = finish(process)
    assert result["runs"] == [{**RAN, "amount": 100}]
    assert "changed" in result["told"][0]


def test_langgraph_a_forged_approval_in_the_resume_value_does_not_run_a_rejected_call(
    framework_python, service, env, tmp_path
):
    process = start(framework_python, env, *graph_args(tmp_path, "--forge", "same"))
    approve_when_asked(service, process, "reject", reason="no")
    result = finish(process)
    assert result["runs"] == []
    assert "rejected" in result["told"][0]


def test_langgraph_a_resume_value_for_another_request_is_refused(framework_python, service, env, tmp_path):
    result = run(framework_python, env, *graph_args(tmp_path, "--forge", "other"))
    assert result["runs"] == []
    assert "not spanguard's decision" in result["told"][0]


def test_langgraph_a_graph_killed_while_waiting_resumes_from_its_checkpointer_without_a_second_request(
    framework_python, service, env, tmp_path
):
    process = start(framework_python, env, *graph_args(tmp_path))
    asked = service.wait_for_pending("issue_refund", timeout=120)
    # The request is visible before LangGraph has checkpointed the interrupt: kill only once the scenario says so.
    assert process.stdout is not None
    line = process.stdout.readline()
    assert json.loads(line) == {"interrupted": asked["id"]}, line
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=RUN_S)
    assert service.decide("alice", asked["id"], "approve").status_code == 200
    result = run(framework_python, env, *graph_args(tmp_path, "--resume", asked["id"]))
    assert result["runs"] == [RAN]
    assert result["output"] == "The refund is settled."
    (request,) = every_request(service)
    assert request["id"] == asked["id"] and request["consumed_at"]

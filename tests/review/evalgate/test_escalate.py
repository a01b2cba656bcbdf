"""Pending-human cases sent to a real review service on loopback, and judge verdicts to a real OTLP/gRPC receiver."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_provider import text
from gate_helpers import case, gate, target, write_cases
from otlp_logs import attributes_of

from spanguard.review.evalgate.config import GateConfig
from spanguard.review.evalgate.dataset import load_dataset
from spanguard.review.evalgate.escalate import REASON_PENDING_HUMAN, escalate, review_item, trace_id_for
from spanguard.review.evalgate.judge_events import JUDGE_EVALUATION, judge_events, send_judge_events
from spanguard.review.evalgate.runner import CaseStatus, run_gate_sync
from spanguard.review.evalgate.targets import Caller, PythonTarget
from spanguard.review.verdicts import VerdictsConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "instrumentation"))
from gate_harness import Service, start_service

ANSWER = "Canberra is the capital of Australia."
SOURCE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
JUDGED = case(
    "case_judged",
    "What is the capital of Australia?",
    assertions=[{"type": "judge"}],
    source={"kind": "review_item", "trace_id": SOURCE_TRACE},
)
CHECKED = case(
    "case_checked", "What is the capital of Australia?", assertions=[{"type": "contains", "value": "Canberra"}]
)


def unsure(reasoning: str = "The answer names Canberra but I cannot verify it.") -> Any:
    return text(json.dumps({"verdict": "pass", "confidence": 0.3, "reasoning": reasoning}))


def judge_settings(fake) -> dict[str, Any]:
    return {"model": "judge-model", "base_url": fake.openai_base_url, "api_key": "k", "backoff_s": 0.01}


def pending_run(tmp_path: Path, fake, *cases: dict[str, Any]):
    fake.script(unsure())
    config = GateConfig.model_validate({"cache": None, "scorers": {"judge": judge_settings(fake)}})
    dataset = load_dataset(write_cases(tmp_path / "cases.jsonl", *(cases or (JUDGED, CHECKED))))
    return run_gate_sync(dataset, Caller(PythonTarget(lambda messages: ANSWER, "test:answer")), config)


@pytest.fixture
def service(tmp_path) -> Service:
    running = start_service(f"sqlite:///{tmp_path / 'review.db'}")
    yield running
    running.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def queue(service: Service) -> list[dict[str, Any]]:
    response = service.call("alice", "GET", "/v1/review-items")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_pending_human_case_becomes_one_review_item_and_a_rerun_adds_none(tmp_path, fake, service):
    run = pending_run(tmp_path, fake)
    assert [c.status for c in run.cases] == [CaseStatus.PENDING_HUMAN, CaseStatus.PASSED]
    first = escalate(run, service.base, service.tokens["agent"])
    assert (first.pending, first.sent, first.created, first.failed, first.error) == (1, 1, 1, 0, None)
    again = escalate(run, service.base, service.tokens["agent"])
    assert (again.sent, again.created, again.failed) == (1, 0, 0)
    assert again.item_ids == first.item_ids
    items = queue(service)
    assert len(items) == 1
    assert items[0]["tier"] == "factual_verification" and items[0]["risk_tier"] == "yellow"
    assert items[0]["reasons"] == [REASON_PENDING_HUMAN]


def test_the_item_shows_the_case_input_the_output_and_the_judges_reasoning(tmp_path, fake, service):
    run = pending_run(tmp_path, fake)
    sent = escalate(run, service.base, service.tokens["agent"])
    response = service.call("alice", "GET", f"/v1/review-items/{sent.item_ids['case_judged']}")
    assert response.status_code == 200, response.text
    conversation = response.json()["conversation"]
    turns = [(turn["role"], turn["content"]) for turn in conversation["turns"]]
    assert turns == [("user", "What is the capital of Australia?"), ("assistant", ANSWER)]
    assert conversation["notes"] == []
    item = review_item(run, run.cases[0])
    root, chat = item["spans"]
    assert root["name"] == "eval_case case_judged" and chat["parent_span_id"] == root["span_id"]
    assert chat["attributes"]["spanguard.eval.judge.reasoning"] == "The answer names Canberra but I cannot verify it."
    assert any("pending human" in reason for reason in chat["attributes"]["spanguard.eval.scorer_reasons"])


def test_the_trace_id_is_the_dataset_the_case_and_the_output():
    one = trace_id_for("d" * 64, "case_a", "o" * 64)
    assert one == trace_id_for("d" * 64, "case_a", "o" * 64)
    assert len(one) == 32 and int(one, 16)
    assert len({one, trace_id_for("e" * 64, "case_a", "o" * 64), trace_id_for("d" * 64, "case_a", "p" * 64)}) == 3


def test_a_refused_token_is_counted_not_raised(tmp_path, fake, service):
    run = pending_run(tmp_path, fake)
    sent = escalate(run, service.base, service.tokens["alice"], backoff_s=0.01)  # a reviewer token may not ingest
    assert (sent.sent, sent.failed) == (0, 1)
    assert "HTTP 403" in sent.error and service.tokens["alice"] not in sent.error
    sent = escalate(run, service.base, "not-a-token", backoff_s=0.01)
    assert (sent.sent, sent.failed) == (0, 1) and "HTTP 401" in sent.error
    assert queue(service) == []


def test_a_service_that_is_down_is_retried_then_counted(tmp_path, fake):
    run = pending_run(tmp_path, fake)
    sent = escalate(run, f"http://127.0.0.1:{closed_port()}", "t", timeout_s=2, retries=1, backoff_s=0.01)
    assert (sent.sent, sent.failed) == (0, 1)
    assert "ConnectError" in sent.error


def test_a_run_without_pending_cases_sends_nothing(tmp_path, fake):
    run = pending_run(tmp_path, fake, CHECKED)
    sent = escalate(run, f"http://127.0.0.1:{closed_port()}", "t")
    assert (sent.pending, sent.sent, sent.failed, sent.error) == (0, 0, 0, None)


# --- the command line -------------------------------------------------------------------------------------------


def gate_config(tmp_path: Path, fake) -> Path:
    evaluation = tmp_path / "judge-eval.json"
    confusion = {"tp": 20, "fp": 0, "tn": 20, "fn": 0}
    evaluation.write_text(json.dumps({"model": "judge-model", "metrics": {"confusion": confusion}}), "utf-8")
    config = tmp_path / "gate.yaml"
    settings = judge_settings(fake)
    lines = ["scorers:", "  judge:", *(f"    {key}: {value}" for key, value in settings.items())]
    config.write_text("\n".join([*lines, f"    evaluation: {evaluation}", ""]), "utf-8")
    return config


def run_cli(tmp_path: Path, fake, *extra: str):
    fake.script(unsure())
    cases = write_cases(tmp_path / "cases.jsonl", JUDGED, CHECKED)
    report = tmp_path / "report.json"
    config = gate_config(tmp_path, fake)
    args = ("--dataset", str(cases), "--target", target("fixed"), "--config", str(config), "--report", str(report))
    result = gate(*args, "--quiet", *extra, cwd=tmp_path)
    return result, json.loads(report.read_text("utf-8")) if report.exists() else None


def test_the_gate_escalates_and_a_bad_service_is_one_line_and_the_same_exit_code(tmp_path, fake, service):
    plain, _ = run_cli(tmp_path, fake)
    assert plain.returncode == 0, plain.stderr  # a pending-human case does not fail the gate
    good, report = run_cli(tmp_path, fake, "--review-endpoint", service.base, "--review-token", service.tokens["agent"])
    assert good.returncode == plain.returncode, good.stderr
    assert report["escalation"]["sent"] == 1 and report["escalation"]["failed"] == 0
    assert len(queue(service)) == 1
    down = f"http://127.0.0.1:{closed_port()}"
    bad, report = run_cli(tmp_path, fake, "--review-endpoint", down, "--review-token", "secret-token")
    assert bad.returncode == plain.returncode
    lines = [line for line in bad.stderr.splitlines() if "not sent to review" in line]
    assert len(lines) == 1 and "secret-token" not in bad.stderr
    assert report["escalation"]["failed"] == 1


def test_a_review_endpoint_without_a_token_is_a_usage_error(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("SPANGUARD_REVIEW_TOKEN", raising=False)
    result, _ = run_cli(tmp_path, fake, "--review-endpoint", "http://127.0.0.1:9", "--review-token", "")
    assert result.returncode == 2
    assert "needs an ingest token" in result.stderr


# --- judge verdicts as events -----------------------------------------------------------------------------------


def test_each_judged_result_is_an_evaluation_event_linked_to_the_source_trace(tmp_path, fake, grpc_receiver):
    endpoint, received = grpc_receiver
    run = pending_run(tmp_path, fake)
    assert len(judge_events(run)) == 1  # the contains check of the other case is not a judge verdict
    sent = send_judge_events(run, VerdictsConfig(endpoint=endpoint, timeout_s=10))
    assert (sent.emitted, sent.failed) == (1, 0)
    [(resource, _, record)] = received.records()
    attributes = attributes_of(record)
    assert record.event_name == "gen_ai.evaluation.result"
    assert attributes["gen_ai.evaluation.name"] == JUDGE_EVALUATION
    assert attributes["gen_ai.evaluation.score.label"] == "abstain"
    assert attributes["gen_ai.evaluation.score.value"] == 1.0
    assert attributes["spanguard.eval.case_id"] == "case_judged"
    assert "pending human" in attributes["gen_ai.evaluation.explanation"]
    assert "cannot verify" not in json.dumps(attributes)  # the judge's free text stays out of telemetry
    assert record.trace_id.hex() == SOURCE_TRACE
    assert resource["service.name"] == "spanguard-gate"


def test_a_case_without_a_source_trace_is_linked_to_no_trace(tmp_path, fake, grpc_receiver):
    endpoint, received = grpc_receiver
    unlinked = {key: value for key, value in JUDGED.items() if key != "source"}
    run = pending_run(tmp_path, fake, unlinked)
    send_judge_events(run, VerdictsConfig(endpoint=endpoint, timeout_s=10))
    [(_, _, record)] = received.records()
    assert record.trace_id == b""


def test_an_unreachable_receiver_is_counted_not_raised(tmp_path, fake):
    run = pending_run(tmp_path, fake)
    sent = send_judge_events(run, VerdictsConfig(endpoint=f"127.0.0.1:{closed_port()}", timeout_s=1))
    assert sent.failed == 1


def test_the_gate_sends_judge_verdicts_with_verdicts_endpoint(tmp_path, fake, grpc_receiver):
    endpoint, received = grpc_receiver
    result, report = run_cli(tmp_path, fake, "--verdicts-endpoint", endpoint)
    assert result.returncode == 0, result.stderr
    assert report["judge_events"] == {"emitted": 1, "failed": 0}
    assert [attributes_of(r)["spanguard.eval.case_id"] for _, _, r in received.records()] == ["case_judged"]


def test_a_bad_verdicts_endpoint_is_a_usage_error(tmp_path, fake):
    result, _ = run_cli(tmp_path, fake, "--verdicts-endpoint", "no port here")
    assert result.returncode == 2 and "--verdicts-endpoint" in result.stderr


def test_an_escalated_case_is_redacted_before_it_reaches_people(tmp_path, fake, service):
    """Escalated items skip the collector, so the gate redacts them: a target that echoes an address leaks nothing."""
    leaky = case("case_leaky", "Mail jane.doe@example.com the receipt", assertions=[{"type": "judge"}])
    fake.script(unsure("It mailed jane.doe@example.com as asked."))
    config = GateConfig.model_validate({"cache": None, "scorers": {"judge": judge_settings(fake)}})
    dataset = load_dataset(write_cases(tmp_path / "cases.jsonl", leaky))
    target = PythonTarget(lambda messages: "Sent to jane.doe@example.com.", "test:echo")
    run = run_gate_sync(dataset, Caller(target), config)
    sent = escalate(run, service.base, service.tokens["agent"])
    assert sent.sent == 1
    stored = json.dumps(service.store.get(sent.item_ids["case_leaky"]).spans)
    assert "jane.doe@example.com" not in stored
    assert "EMAIL_ADDRESS" in stored


def test_the_judges_calibrated_threshold_from_judge_eval_applies_unless_the_config_sets_one(tmp_path, fake):
    """judge-eval calibrated 0.95: a verdict at confidence 0.9 is left to people; a config's own threshold wins."""
    evaluation = tmp_path / "judge-eval.json"
    report = {"model": "judge-model", "metrics": {"confusion": {"tp": 20, "fp": 0, "tn": 20, "fn": 0}}}
    evaluation.write_text(json.dumps({**report, "calibration": {"threshold": 0.95}}), "utf-8")
    cases = write_cases(tmp_path / "cases.jsonl", JUDGED)
    settings = judge_settings(fake)

    def run_with(*extra_lines: str) -> dict[str, Any]:
        config = tmp_path / "gate.yaml"
        lines = ["scorers:", "  judge:", *(f"    {key}: {value}" for key, value in settings.items()), *extra_lines]
        config.write_text("\n".join([*lines, f"    evaluation: {evaluation}", ""]), "utf-8")
        fake.script(text(json.dumps({"verdict": "pass", "confidence": 0.9, "reasoning": "Canberra is right."})))
        out = tmp_path / "report.json"
        args = ("--dataset", str(cases), "--target", target("fixed"), "--config", str(config), "--report", str(out))
        result = gate(*args, "--quiet", "--no-cache", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text("utf-8"))

    assert [c["status"] for c in run_with()["cases"]] == ["pending_human"]
    assert [c["status"] for c in run_with("    confidence_threshold: 0.5")["cases"]] == ["passed"]

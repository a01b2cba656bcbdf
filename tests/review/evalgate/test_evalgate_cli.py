"""``spanguard gate`` through the real command line in a subprocess: exit codes 0/1/2/3, Python and URL targets,
timeouts and retries, JUnit read back, the baseline rule, the cache on a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_provider import error, hang, text
from gate_helpers import CAPITAL, SUM, calls, case, gate, target, write_cases
from junit_check import parse_junit


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    return write_cases(tmp_path / "cases.jsonl", CAPITAL, SUM)


def fast_config(tmp_path: Path, **extra: object) -> Path:
    """A gate.yaml with a short backoff, so retries do not slow the test."""
    lines = ["backoff: 0.01", *(f"{key}: {json.dumps(value)}" for key, value in extra.items())]
    path = tmp_path / "gate.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_a_fixed_target_passes_with_exit_0(tmp_path, cases):
    result = gate("--dataset", str(cases), "--target", target("fixed"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate passed" in result.stdout
    assert "case_capital" in result.stdout and "case_sum" in result.stdout


def test_an_async_target_returning_a_message_dict_passes(tmp_path, cases):
    result = gate("--dataset", str(cases), "--target", target("fixed_async"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_target_named_as_a_module_in_the_working_directory(tmp_path, cases):
    (tmp_path / "my_agent.py").write_text("def answer(messages):\n    return 'Canberra is the capital of Australia.'\n")
    only = write_cases(tmp_path / "one.jsonl", CAPITAL)
    result = gate("--dataset", str(only), "--target", "my_agent:answer", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cases.exists()


def test_a_regressed_target_fails_with_exit_1_and_junit_names_the_failing_cases(tmp_path, cases):
    junit = tmp_path / "out" / "junit.xml"
    result = gate("--dataset", str(cases), "--target", target("regressed"), "--junit", str(junit), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    tests = parse_junit(junit)
    assert tests["case_capital"][0] == "failure" and tests["case_capital"][1] == "failed"
    assert tests["case_sum"][0] == "failure"
    assert "gate failed (exit 1)" in result.stdout


def test_junit_report_and_summary_of_a_passing_run(tmp_path, cases):
    junit, report, summary = tmp_path / "j.xml", tmp_path / "r.json", tmp_path / "s.md"
    args = ["--junit", str(junit), "--report", str(report), "--summary", str(summary)]
    result = gate("--dataset", str(cases), "--target", target("fixed"), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(parse_junit(junit).values()) == {("passed", "", "")}
    data = json.loads(report.read_text())
    assert data["schema_version"] == 1 and data["gate"] == {
        "passed": True,
        "exit_code": 0,
        "reasons": [],
        "baseline": None,
        "regressions": [],
        "missing": [],
    }
    assert [c["id"] for c in data["cases"]] == ["case_capital", "case_sum"]
    assert {c["status"] for c in data["cases"]} == {"passed"}
    assert data["counts"]["passed"] == 2
    text_ = summary.read_text()
    assert text_.startswith("### ✅ spanguard gate passed")
    # Nothing a case holds (its messages) or the target said reaches the outputs.
    for out in (junit, report, summary):
        assert "What is the capital" not in out.read_text()
        assert "Canberra is the capital" not in out.read_text()


def test_a_bad_dataset_line_exits_2_with_its_line_number_and_field_before_any_call(tmp_path):
    path = tmp_path / "cases.jsonl"
    good = json.dumps(CAPITAL)
    bad = json.dumps({**SUM, "input": {"messages": [{"role": "robot", "content": "hi"}]}})
    path.write_text(f"{good}\n\n{bad}\n{{not json\n", "utf-8")
    log = tmp_path / "calls.log"
    result = gate("--dataset", str(path), "--target", target("fixed"), cwd=tmp_path, calls=log)
    assert result.returncode == 2
    assert f"{path}:3: input.messages[0].role:" in result.stderr
    assert f"{path}:4: not valid JSON" in result.stderr
    assert "robot" not in result.stderr  # values from the file are never repeated
    assert calls(log, "fixed") == 0


def test_duplicate_ids_exit_2_naming_both_lines(tmp_path):
    path = write_cases(tmp_path / "cases.jsonl", CAPITAL, SUM, CAPITAL)
    result = gate("--dataset", str(path), "--target", target("fixed"), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:3: id: duplicate id 'case_capital' (first on line 1)" in result.stderr


def test_an_unknown_key_in_a_case_exits_2(tmp_path):
    path = write_cases(tmp_path / "cases.jsonl", {**CAPITAL, "expected": "x"})
    result = gate("--dataset", str(path), "--target", target("fixed"), cwd=tmp_path)
    assert result.returncode == 2 and f"{path}:1: expected: unknown key" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "no_such_module_xyz:fn"], "cannot import no_such_module_xyz"),
        (["--target", "gate_targets_missing.py:fn"], "no such file"),
        (["--target", "just-a-name"], "expected module:function"),
        (["--target", "http://127.0.0.1:9/v1"], "--target URL needs --model"),
        ([], "no target"),
        (["--target", "x:y", "--concurrency", "0"], "--concurrency"),
        (["--target", "x:y", "--trials", "0"], "--trials"),
    ],
)
def test_usage_errors_exit_2_with_one_message(tmp_path, cases, args, message):
    result = gate("--dataset", str(cases), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_dataset_and_a_bad_config_exit_2(tmp_path, cases):
    missing = gate("--dataset", str(tmp_path / "nope.jsonl"), "--target", target("fixed"), cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read the dataset" in missing.stderr
    config = tmp_path / "gate.yaml"
    config.write_text("threshold: 0.5\nconcurency: 3\n")
    bad = gate("--dataset", str(cases), "--target", target("fixed"), "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 2
    assert f"{config}:2:1: concurency: unknown key" in bad.stderr


def test_argparse_usage_errors_exit_2(tmp_path):
    result = gate("--target", target("fixed"), cwd=tmp_path)
    assert result.returncode == 2 and "--dataset" in result.stderr


def test_a_failing_target_is_retried_then_exits_3(tmp_path):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    log, junit = tmp_path / "calls.log", tmp_path / "junit.xml"
    result = gate(
        "--dataset", str(only), "--target", target("broken"), "--retries", "2",
        "--config", str(fast_config(tmp_path)), "--junit", str(junit), cwd=tmp_path, calls=log,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert calls(log, "broken") == 3
    status, kind, message = parse_junit(junit)["case_capital"]
    assert (status, kind) == ("error", "target_failed")
    assert "failed after 3 attempts: ConnectionError: the model server is down" in message


def test_a_hanging_target_times_out_on_each_attempt_then_exits_3(tmp_path):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    log, report = tmp_path / "calls.log", tmp_path / "r.json"
    result = gate(
        "--dataset", str(only), "--target", target("hanging"), "--timeout", "0.3", "--retries", "1",
        "--config", str(fast_config(tmp_path)), "--report", str(report), cwd=tmp_path, calls=log, timeout=25,
    )  # fmt: skip
    assert result.returncode == 3
    assert calls(log, "hanging") == 2
    (data,) = json.loads(report.read_text())["cases"]
    assert data["status"] == "target_failed" and "failed after 2 attempts: timed out" in data["reason"]


def test_a_target_that_fails_once_passes_after_a_retry(tmp_path):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    log = tmp_path / "calls.log"
    config = str(fast_config(tmp_path))
    result = gate("--dataset", str(only), "--target", target("flaky"), "--config", config, cwd=tmp_path, calls=log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls(log, "flaky") == 2


def test_a_target_answering_something_else_than_an_output_exits_3_without_retries(tmp_path):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    result = gate("--dataset", str(only), "--target", target("wrong_type"), "--quiet", cwd=tmp_path)
    assert result.returncode == 3
    assert "failed after 1 attempt: the target returned int, not text or a message" in result.stdout


def test_after_the_target_fails_the_cases_not_started_are_not_run(tmp_path):
    many = write_cases(tmp_path / "cases.jsonl", *(case(f"case_{n}", "hello") for n in range(6)))
    log, report = tmp_path / "calls.log", tmp_path / "r.json"
    result = gate(
        "--dataset", str(many), "--target", target("broken"), "--concurrency", "1", "--retries", "0",
        "--report", str(report), cwd=tmp_path, calls=log,
    )  # fmt: skip
    assert result.returncode == 3
    statuses = [c["status"] for c in json.loads(report.read_text())["cases"]]
    assert statuses == ["target_failed"] + ["not_run"] * 5
    assert calls(log, "broken") == 1


def test_a_url_target_is_called_through_the_openai_sdk(tmp_path, fake):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    fake.script(text("Canberra is the capital of Australia."))
    result = gate("--dataset", str(only), "--target", fake.openai_base_url, "--model", "gpt-4o-mini", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == CAPITAL["input"]["messages"]
    assert request.headers["user-agent"].startswith("AsyncOpenAI/Python")


def test_a_url_target_answering_a_wrong_answer_fails_with_exit_1(tmp_path, fake):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    fake.script(text("Sydney is the capital."))
    result = gate("--dataset", str(only), "--target", fake.openai_base_url, "--model", "m", cwd=tmp_path)
    assert result.returncode == 1


def test_a_url_target_failing_with_5xx_is_retried_then_exits_3(tmp_path, fake):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    fake.script(error(500), error(503), error(500))
    config = str(fast_config(tmp_path))
    args = ["--model", "m", "--retries", "2", "--config", config, "--quiet"]
    result = gate("--dataset", str(only), "--target", fake.openai_base_url, *args, cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(fake.requests) == 3
    assert "InternalServerError" in result.stdout


def test_a_url_target_refusing_with_4xx_is_not_retried(tmp_path, fake):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    fake.script(error(401))
    args = ["--model", "m", "--retries", "2", "--config", str(fast_config(tmp_path))]
    result = gate("--dataset", str(only), "--target", fake.openai_base_url, *args, cwd=tmp_path)
    assert result.returncode == 3
    assert len(fake.requests) == 1


def test_a_url_target_that_hangs_times_out_then_exits_3(tmp_path, fake):
    only = write_cases(tmp_path / "cases.jsonl", CAPITAL)
    fake.script(hang(20), hang(20))
    args = ["--model", "m", "--timeout", "0.5", "--retries", "1", "--config", str(fast_config(tmp_path))]
    result = gate("--dataset", str(only), "--target", fake.openai_base_url, *args, cwd=tmp_path, timeout=40)
    assert result.returncode == 3
    assert len(fake.requests) == 2


def test_a_case_that_passed_in_the_baseline_and_fails_now_is_a_regression(tmp_path, cases):
    baseline, junit, report = tmp_path / "baseline.json", tmp_path / "j.xml", tmp_path / "r.json"
    first = gate("--dataset", str(cases), "--target", target("fixed"), "--write-baseline", str(baseline), cwd=tmp_path)
    assert first.returncode == 0 and baseline.exists()
    args = ["--baseline", str(baseline), "--junit", str(junit), "--report", str(report)]
    second = gate("--dataset", str(cases), "--target", target("regressed"), *args, cwd=tmp_path)
    assert second.returncode == 1
    data = json.loads(report.read_text())
    assert data["gate"]["regressions"] == ["case_capital", "case_sum"]
    assert "passed in the baseline" in " ".join(data["gate"]["reasons"])
    status, kind, message = parse_junit(junit)["case_capital"]
    assert (status, kind) == ("failure", "regression") and message.startswith("passed in the baseline")


def test_a_baseline_case_missing_from_the_dataset_fails_the_gate(tmp_path, cases):
    baseline, junit = tmp_path / "baseline.json", tmp_path / "j.xml"
    assert (
        gate(
            "--dataset", str(cases), "--target", target("fixed"), "--write-baseline", str(baseline), cwd=tmp_path
        ).returncode
        == 0
    )
    fewer = write_cases(tmp_path / "fewer.jsonl", CAPITAL)
    args = ["--baseline", str(baseline), "--junit", str(junit)]
    result = gate("--dataset", str(fewer), "--target", target("fixed"), *args, cwd=tmp_path)
    assert result.returncode == 1
    assert "1 baseline case missing from the dataset: case_sum" in result.stdout
    assert parse_junit(junit)["case_sum"][:2] == ("failure", "missing")


def test_write_baseline_is_refused_on_a_failing_run(tmp_path, cases):
    baseline = tmp_path / "baseline.json"
    result = gate(
        "--dataset", str(cases), "--target", target("regressed"), "--write-baseline", str(baseline), cwd=tmp_path
    )
    assert result.returncode == 1
    assert not baseline.exists()
    assert "a failing run never becomes the baseline" in result.stderr


def test_a_failing_runs_report_cannot_be_a_baseline(tmp_path, cases):
    report = tmp_path / "r.json"
    assert (
        gate("--dataset", str(cases), "--target", target("regressed"), "--report", str(report), cwd=tmp_path).returncode
        == 1
    )
    result = gate("--dataset", str(cases), "--target", target("fixed"), "--baseline", str(report), cwd=tmp_path)
    assert result.returncode == 2 and "the report of a failing run cannot be a baseline" in result.stderr


def test_a_baseline_that_is_not_a_report_exits_2(tmp_path, cases):
    bad = tmp_path / "baseline.json"
    bad.write_text('{"cases": []}')
    result = gate("--dataset", str(cases), "--target", target("fixed"), "--baseline", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and "not a gate report" in result.stderr


def test_a_rerun_of_unchanged_cases_takes_every_score_from_the_cache(tmp_path, cases):
    cache, log = tmp_path / "cache.json", tmp_path / "calls.log"
    reports = [tmp_path / "r1.json", tmp_path / "r2.json"]
    for report in reports:
        result = gate(
            "--dataset", str(cases), "--target", target("fixed"), "--cache", str(cache), "--report", str(report),
            cwd=tmp_path, calls=log,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    first, second = (json.loads(r.read_text())["cost"] for r in reports)
    assert first["scorer_calls"] > 0 and first["cache_hits"] == 0
    assert second == {"target_calls": 2, "scorer_calls": 0, "cache_hits": first["scorer_calls"]}
    assert calls(log, "fixed") == 4  # the target runs each time: its output is what is checked
    # A changed output is scored again.
    third = gate(
        "--dataset",
        str(cases),
        "--target",
        target("regressed"),
        "--cache",
        str(cache),
        "--report",
        str(reports[0]),
        cwd=tmp_path,
    )
    assert third.returncode == 1
    assert json.loads(reports[0].read_text())["cost"]["cache_hits"] == 0


def test_a_corrupt_cache_is_started_afresh_with_a_warning(tmp_path, cases):
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    result = gate("--dataset", str(cases), "--target", target("fixed"), "--cache", str(cache), cwd=tmp_path)
    assert result.returncode == 0
    assert "cannot read the score cache" in result.stderr
    assert json.loads(cache.read_text())["schema_version"] == 1


def test_the_gate_and_the_gates_report_are_both_commands(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "spanguard.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert " gate " in out.stdout and " gates " in out.stdout


def test_a_judge_never_measured_against_people_may_not_gate(tmp_path, cases):
    config = tmp_path / "gate.yaml"
    config.write_text("scorers:\n  judge:\n    model: judge-model\n    base_url: http://127.0.0.1:9/v1\n")
    log = tmp_path / "calls.log"
    result = gate(
        "--dataset", str(cases), "--target", target("fixed"), "--config", str(config), cwd=tmp_path, calls=log
    )
    assert result.returncode == 2
    assert "the judge may not gate: the judge has not been measured against people" in result.stderr
    assert calls(log, "fixed") == 0

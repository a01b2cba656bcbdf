"""The pytest plugin in a pytest of its own (a subprocess, loaded by its pytest11 entry point): one test per case,
failures named, pending cases skipped, inert without its options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gate_helpers import CAPITAL, SUM, case, write_cases

AGENT = "def answer(messages):\n    return 'Canberra is the capital of Australia.'\n"


def pytest_in(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args]
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=180)


def test_a_dataset_runs_as_one_test_per_case_with_failures_named(tmp_path):
    (tmp_path / "agent.py").write_text(AGENT)
    pending = case("case_unsettled", "Tell me a joke.")  # no outcome and no assertion: nothing can settle it
    write_cases(tmp_path / "cases.jsonl", CAPITAL, SUM, pending)
    junit = tmp_path / "junit.xml"
    result = pytest_in(
        tmp_path,
        "--spanguard-dataset", "cases.jsonl", "--spanguard-target", "agent.py:answer",
        "--spanguard-config", str(write_config(tmp_path)), f"--junitxml={junit}",
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 1 passed, 1 skipped" in out
    assert "PASSED cases.jsonl::case_capital" in out
    assert "FAILED cases.jsonl::case_sum - case case_sum failed: contains" in out
    assert "SKIPPED" in out and "pending human" in out
    names = {
        tc.get("name"): [child.tag for child in tc if child.tag != "properties"]
        for tc in ET.parse(junit).getroot().iter("testcase")
    }
    assert names == {"case_capital": [], "case_sum": ["failure"], "case_unsettled": ["skipped"]}
    assert json.loads((tmp_path / "cache.json").read_text())["entries"]  # the gate's cache, saved at the end


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(f"cache: {tmp_path / 'cache.json'}\nbackoff: 0.01\n")
    return path


def test_a_target_that_fails_is_a_failing_test_naming_the_error(tmp_path):
    (tmp_path / "agent.py").write_text("def answer(messages):\n    raise ConnectionError('model down')\n")
    write_cases(tmp_path / "cases.jsonl", CAPITAL)
    result = pytest_in(
        tmp_path,
        "--spanguard-dataset", "cases.jsonl", "--spanguard-target", "agent.py:answer",
        "--spanguard-config", str(write_config(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 1
    assert "case case_capital target_failed" in result.stdout
    assert "ConnectionError: model down" in result.stdout


def test_the_plugin_is_inert_without_its_options(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert True\n")
    write_cases(tmp_path / "cases.jsonl", CAPITAL)
    result = pytest_in(tmp_path)
    assert result.returncode == 0 and "1 passed" in result.stdout
    assert "spanguard" not in result.stdout
    help_ = pytest_in(tmp_path, "--help")
    assert "--spanguard-dataset" in help_.stdout and "--spanguard-target" in help_.stdout


def test_a_dataset_without_a_target_or_with_a_bad_line_is_a_usage_error(tmp_path):
    write_cases(tmp_path / "cases.jsonl", CAPITAL)
    no_target = pytest_in(tmp_path, "--spanguard-dataset", "cases.jsonl")
    assert no_target.returncode == 4
    assert "--spanguard-dataset needs --spanguard-target" in no_target.stderr
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "bad.jsonl").write_text(json.dumps(CAPITAL) + "\n{broken\n")
    bad = pytest_in(tmp_path, "--spanguard-dataset", "bad.jsonl", "--spanguard-target", "agent.py:answer")
    assert bad.returncode == 4
    assert "bad.jsonl:2: not valid JSON" in bad.stderr

"""examples/ci: the example target passes its dataset, its regressed version fails with the cases named, and the
workflow runs the gate on files that exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from junit_check import parse_junit

ROOT = Path(__file__).resolve().parents[3]
CI = ROOT / "examples" / "ci"
ARGS = [
    "--dataset",
    str(CI / "cases.jsonl"),
    "--target",
    f"{CI / 'target.py'}:answer",
    "--config",
    str(CI / "gate.yaml"),
]


def run(tmp_path: Path, *extra: str, regress: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPANGUARD_EXAMPLE_REGRESS": "1" if regress else "0"}
    command = [sys.executable, "-m", "spanguard.cli", "gate", *ARGS, "--cache", str(tmp_path / "cache.json"), *extra]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_the_example_target_passes_and_its_regression_fails_with_the_cases_named(tmp_path):
    baseline, junit = tmp_path / "baseline.json", tmp_path / "junit.xml"
    good = run(tmp_path, "--write-baseline", str(baseline))
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run(tmp_path, "--baseline", str(baseline), "--junit", str(junit), regress=True)
    assert bad.returncode == 1
    failed = {name for name, (status, _, _) in parse_junit(junit).items() if status == "failure"}
    assert failed == {"case_capital_australia", "case_refund_refused", "case_capital_mentions_canberra", "aggregate"}
    assert parse_junit(junit)["case_refund_refused"][1] == "regression"


def test_the_workflow_runs_the_gate_on_the_example_files():
    workflow = yaml.safe_load((CI / "gate.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    (gate,) = [step for step in steps if step.get("name") == "Run the gate"]
    script = gate["run"]
    assert "spanguard gate" in script
    for name in ("cases.jsonl", "target.py", "gate.yaml"):
        assert f"examples/ci/{name}" in script and (CI / name).exists()
    for option in ("--junit", "--report", "--summary", "--write-baseline", "--baseline"):
        assert option in script

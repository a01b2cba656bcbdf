"""Every YAML spanguard reads goes through the one loader: one error type (``spanguard.yamlconfig.ConfigError``) with
``file:line:column: path``, and the files a config names found next to it and read once per load."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationInfo, field_validator

from spanguard.collector.config import load_config as load_collector_config
from spanguard.instrumentation.gate_policy import load_policy
from spanguard.processors.risk import load_risk_config
from spanguard.review.config import load_config as load_review_config
from spanguard.review.evalgate.config import load_config as load_gate_config
from spanguard.review.evalgate.judge_eval import calibrated_threshold, evaluation_report, judge_gate_check
from spanguard.yamlconfig import ConfigError, load_file, load_once


def collector_yaml(**processors: str) -> str:
    """A collector config whose one pipeline runs ``processors`` (name -> its settings, in flow style)."""
    return "\n".join(
        [
            "receivers:",
            '  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}',
            "processors:",
            *(f"  {name}: {settings}" for name, settings in processors.items()),
            "exporters:",
            "  debug: {}",
            "service:",
            "  pipelines:",
            f"    traces: {{receivers: [otlp], processors: [{', '.join(processors)}], exporters: [debug]}}",
            "",
        ]
    )


# name, loader, file text, the problem's expected start: every one of them a plain ConfigError
BAD_FILES: list[tuple[str, Callable[[Path], Any], str, str]] = [
    ("collector.yaml", load_collector_config, collector_yaml(batch="{sendbatch_size: 5}"), "4:11: processors.batch"),
    ("risk.yaml", load_risk_config, "rules:\n  - name: r\n    reason: R\n    tier: purple\n", "4:5: rules[0].tier"),
    ("review.yaml", load_review_config, "policy:\n  lease_s: -1\n", "2:3: policy.lease_s"),
    ("gate.yaml", load_gate_config, "threshold: 0.5\nretries: many\n", "2:1: retries"),
    ("gates.yaml", load_policy, "actions:\n  refund: {tier: red, when: 'amount > 1'}\n", "2:3: actions.refund"),
]


@pytest.mark.parametrize(("name", "load", "text", "where"), BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_every_yaml_is_refused_with_the_one_error_type_naming_file_line_column_and_path(
    tmp_path: Path, name: str, load: Callable[[Path], Any], text: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert type(caught.value) is ConfigError
    assert f"{path}:{where}" in str(caught.value)
    assert caught.value.source == str(path)


def test_a_collector_and_a_gate_config_say_what_they_are_in_a_heading(tmp_path: Path) -> None:
    (tmp_path / "gate.yaml").write_text("retries: many\n")
    with pytest.raises(ConfigError) as caught:
        load_gate_config(tmp_path / "gate.yaml")
    assert caught.value.label == "gate config"
    assert str(caught.value).startswith(f"{tmp_path / 'gate.yaml'}: invalid gate config (1 problem):\n  ")
    (tmp_path / "c.yaml").write_text("receivers: []\n")
    with pytest.raises(ConfigError) as caught:
        load_collector_config(tmp_path / "c.yaml")
    assert caught.value.label == "collector config"


# --------------------------------------------------------------------------------------------------------------------
# Files a config names: next to the config, read once


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder, with the working directory somewhere else."""
    config_dir, cwd = tmp_path / "conf", tmp_path / "cwd"
    config_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return config_dir


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each file was read (the loader reads files as bytes), by file name."""
    counted: dict[str, int] = {}
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        counted[self.name] = counted.get(self.name, 0) + 1
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return counted


RULES = "rules:\n  - {name: refunds, tier: red, reason: Refunds, match: {tool_name: issue_refund}}\n"


def test_a_rules_file_named_twice_is_found_next_to_the_collector_config_and_read_once(
    elsewhere: Path, reads: dict[str, int]
) -> None:
    (elsewhere / "risk.yaml").write_text(RULES)
    config = elsewhere / "collector.yaml"
    config.write_text(collector_yaml(**{"risk/a": "{rules_file: risk.yaml}", "risk/b": "{rules_file: risk.yaml}"}))
    loaded = load_collector_config(config)
    first, second = (loaded.processors[name].config.risk_config() for name in ("risk/a", "risk/b"))
    assert first is second and [rule.name for rule in first.rules] == ["refunds"]
    assert reads == {"collector.yaml": 1, "risk.yaml": 1}


def test_a_bad_rules_file_named_twice_is_reported_once_at_its_own_lines(elsewhere: Path) -> None:
    (elsewhere / "risk.yaml").write_text("rules:\n  - {name: r, reason: R, tier: purple}\n")
    config = elsewhere / "collector.yaml"
    config.write_text(collector_yaml(**{"risk/a": "{rules_file: risk.yaml}", "risk/b": "{rules_file: risk.yaml}"}))
    with pytest.raises(ConfigError) as caught:
        load_collector_config(config)
    ours = [(p.line, p.path) for p in caught.value.problems if p.source == str(elsewhere / "risk.yaml")]
    assert ours == [(2, "rules[0].match"), (2, "rules[0].tier")]


def test_the_review_config_names_the_gates_policy_file_next_to_it(elsewhere: Path, reads: dict[str, int]) -> None:
    (elsewhere / "gates.yaml").write_text("budget_per_day: 3\nactions: {issue_refund: red}\n")
    (elsewhere / "review.yaml").write_text("approvals:\n  policy: gates.yaml\n")
    config = load_review_config(elsewhere / "review.yaml")
    assert config.approvals.policy is not None and config.approvals.policy.budget_per_day == 3
    assert config.approvals.policy.actions["issue_refund"].tier == "red"
    assert reads == {"review.yaml": 1, "gates.yaml": 1}


def test_a_bad_policy_file_named_by_the_review_config_is_reported_at_its_own_lines(elsewhere: Path) -> None:
    (elsewhere / "gates.yaml").write_text("budget_per_day: 3\nactions:\n  refund: {tier: purple}\n")
    (elsewhere / "review.yaml").write_text("approvals:\n  policy: gates.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_review_config(elsewhere / "review.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{elsewhere / 'gates.yaml'}:3:12: actions.refund.tier: ")
    (elsewhere / "review.yaml").write_text("approvals:\n  policy: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"review\.yaml:2:3: approvals\.policy: .*missing\.yaml: cannot read"):
        load_review_config(elsewhere / "review.yaml")


def test_the_judges_evaluation_is_found_next_to_the_gate_config_and_read_once(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = {"model": "m", "metrics": {"confusion": {"tp": 5, "fp": 0, "tn": 5, "fn": 0}}}
    report["calibration"] = {"threshold": 0.7}
    (elsewhere / "judge.json").write_text(json.dumps(report))
    (elsewhere / "gate.yaml").write_text("scorers:\n  judge: {model: m, evaluation: judge.json}\n")
    judge = load_gate_config(elsewhere / "gate.yaml").scorers.judge
    read = evaluation_report(judge)
    os.remove(elsewhere / "judge.json")  # what the gate decides comes from the one read
    assert judge_gate_check(judge, read)[0] is True
    assert calibrated_threshold(judge, read) == 0.7
    assert judge_gate_check(judge)[0] is False  # read again: it is gone


class Part(BaseModel, extra="forbid"):
    name: str


def load_part(path: Path) -> Part:
    return load_file(path, Part)


class Whole(BaseModel, extra="forbid"):
    first: Part | None = None
    second: Part | None = None

    @field_validator("first", "second", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Any:
        return load_once(value, info.context, load_part) if isinstance(value, str) else value


def test_load_once_reads_a_file_named_twice_once_per_load(elsewhere: Path, reads: dict[str, int]) -> None:
    (elsewhere / "part.yaml").write_text("name: p\n")
    (elsewhere / "whole.yaml").write_text("first: part.yaml\nsecond: part.yaml\n")
    whole = load_file(elsewhere / "whole.yaml", Whole)
    assert whole.first is whole.second and whole.first is not None and whole.first.name == "p"
    assert reads == {"whole.yaml": 1, "part.yaml": 1}
    load_file(elsewhere / "whole.yaml", Whole)  # another load reads it again: it may have changed
    assert reads == {"whole.yaml": 2, "part.yaml": 2}


def test_tls_files_are_found_next_to_the_collector_config(elsewhere: Path) -> None:
    for name in ("server.pem", "server.key", "ca.pem"):
        (elsewhere / name).write_text("not checked at load\n")
    text = collector_yaml(batch="{}")
    text = text.replace(
        '{grpc: {endpoint: "127.0.0.1:0"}}',
        '{grpc: {endpoint: "127.0.0.1:0", tls: {cert_file: server.pem, key_file: server.key}}}',
    )
    text = text.replace("  debug: {}", '  otlp: {endpoint: "backend:4317", tls: {ca_file: ca.pem}}').replace(
        "[debug]", "[otlp]"
    )
    (elsewhere / "collector.yaml").write_text(text)
    loaded = load_collector_config(elsewhere / "collector.yaml")
    server = loaded.receivers["otlp"].config.protocols.grpc.tls
    assert (server.cert_file, server.key_file) == (str(elsewhere / "server.pem"), str(elsewhere / "server.key"))
    assert loaded.exporters["otlp"].config.tls.ca_file == str(elsewhere / "ca.pem")
    (elsewhere / "server.pem").unlink()
    with pytest.raises(ConfigError, match=r"protocols\.grpc\.tls\.cert_file: file not found: 'server\.pem'"):
        load_collector_config(elsewhere / "collector.yaml")

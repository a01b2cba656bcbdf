"""``processors.risk`` in the collector's config: the rules file next to the config, read once, and its problems
reported at their own lines; inline rules checked with their paths in the collector's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanguard.collector.config import load_config
from spanguard.yamlconfig import ConfigError

SERVICE = """\
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}
exporters: {debug: {}}
service: {pipelines: {traces: {receivers: [otlp], processors: [risk], exporters: [debug]}}}
"""
RULE = "rules:\n  - {name: payments, tier: red, reason: Payments ask a person, match: {tool_name: pay}}\n"


def write_config(directory: Path, risk: str) -> Path:
    path = directory / "collector.yaml"
    path.write_text(f"processors:\n  risk: {risk}\n{SERVICE}")
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def test_a_relative_rules_file_is_found_next_to_the_config_not_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "risk.yaml").write_text(RULE)
    config_path = write_config(tmp_path / "conf", "{rules_file: risk.yaml}")
    monkeypatch.chdir(tmp_path)  # a risk.yaml here would be the wrong one
    (tmp_path / "risk.yaml").write_text("rules: []\n")
    risk = load_config(config_path).processors["risk"].config
    assert [rule.name for rule in risk.risk_config().rules] == ["payments"]


def test_the_rules_file_is_read_once_when_the_config_loads(tmp_path):
    (tmp_path / "risk.yaml").write_text(RULE)
    risk = load_config(write_config(tmp_path, "{rules_file: risk.yaml}")).processors["risk"].config
    (tmp_path / "risk.yaml").unlink()
    assert risk.risk_config() is risk.risk_config()
    assert risk.risk_config().rules[0].name == "payments"


def test_a_bad_rules_file_is_reported_at_its_own_file_line_and_path(tmp_path):
    (tmp_path / "risk.yaml").write_text("rules:\n  - {name: a, tier: orange, reason: r, match: {status: OK}}\n")
    error = refused(write_config(tmp_path, "{rules_file: risk.yaml}"))
    (problem,) = error.problems
    assert (
        str(problem)
        == f"{tmp_path / 'risk.yaml'}:2:15: rules[0].tier: unknown tier 'orange' (expected green, yellow or red)"
    )


def test_a_missing_rules_file_is_reported_where_the_config_names_it(tmp_path):
    path = write_config(tmp_path, "{rules_file: nowhere.yaml}")
    (problem,) = refused(path).problems
    assert (problem.source, problem.line, problem.path) == (str(path), 2, "processors.risk")
    assert f"{tmp_path / 'nowhere.yaml'}: cannot read the risk configuration" in problem.message


def test_inline_rules_are_checked_with_their_paths_and_lines_in_the_collector_config(tmp_path):
    inline = (
        "\n    rules:\n"
        "      - {name: a, tier: red, reason: r, match: {attributes: {gen_ai.x: {gt: high}}}}\n"
        "    detectors: {loop: {}}"
    )
    error = refused(write_config(tmp_path, inline))
    assert [(p.line, p.path) for p in error.problems] == [
        (4, 'processors.risk.rules[0].match.attributes["gen_ai.x"].gt'),
        (5, "processors.risk.detectors.loop"),
    ]
    assert "should be a finite number, got 'high'" in error.problems[0].message


def test_inline_rules_with_one_name_twice_are_refused_at_the_second(tmp_path):
    rule = "{name: a, tier: red, reason: r, match: {status: OK}}"
    error = refused(write_config(tmp_path, f"\n    rules:\n      - {rule}\n      - {rule}"))
    assert error.errors == [("processors.risk.rules[1].name", "duplicate rule name 'a' (also rules[0])")]


def test_a_rules_file_and_inline_rules_together_are_refused(tmp_path):
    (tmp_path / "risk.yaml").write_text(RULE)
    error = refused(write_config(tmp_path, "{rules_file: risk.yaml, rules: []}"))
    assert error.errors == [("processors.risk", "give either rules_file or inline rules/detectors, not both")]

"""Every YAML snippet of README.md and docs/ validates as the config it is, as written: collector configs (whole, or a
fragment completed around it), risk rules, review service configs, gate policies and CI gate configs.

A fragment is completed, never changed: a collector snippet without a pipeline gets one through its components, and
components a snippet's pipelines name but does not define get a minimal config of their type. A snippet that names
``risk.yaml`` finds the shipped examples/risk.yaml next to it (``gates.yaml``: examples/gate-policy.yaml). A snippet
that opens with ``# OpenTelemetry Collector`` configures that collector, not spanguard's: it only has to parse.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from spanguard.collector.config import load_config_text
from spanguard.collector.config import parse_component_id as component
from spanguard.instrumentation.gate_policy import policy_from_text
from spanguard.processors.risk.engine import load_risk_config_text
from spanguard.review.config import load_config as load_review_config
from spanguard.review.evalgate.config import load_config as load_gate_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SECTIONS = ("receivers", "processors", "exporters", "extensions")
PIPELINE = re.compile(r"^(traces|logs|metrics)(/.+)?$")
# A minimal config for a component a snippet names without defining it.
STUBS: dict[tuple[str, str], Any] = {
    ("receivers", "otlp"): {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}},
    ("exporters", "otlp"): {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}},
    ("exporters", "otlphttp"): {"endpoint": "http://127.0.0.1:4318"},
    ("exporters", "review"): {"endpoint": "http://127.0.0.1:8080", "token": "sgr_example"},
    ("exporters", "file"): {"path": "traces.jsonl"},
}


def yaml_blocks() -> list[Any]:
    blocks = []
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 2
            blocks.append(pytest.param(match.group(1), id=f"{path.relative_to(ROOT)}:{line}"))
    return blocks


def kind_of(data: Any) -> str:
    if isinstance(data, list):
        return "risk"  # a list of rules
    keys = set(data)
    if keys & {*SECTIONS, "service"} or (keys and all(PIPELINE.match(str(key)) for key in keys)):
        return "collector"
    if keys & {"rules", "detectors"}:
        return "risk"
    if keys & {"actions", "tiers", "default_tier"}:
        return "gate_policy"
    if keys & {"db", "policy", "verdicts", "approvals", "trace_url_template"}:
        return "review"
    if keys & {"target", "scorers", "threshold"}:
        return "gate"
    raise AssertionError(f"a YAML snippet of no known kind (keys {sorted(keys)}): say what it configures")


def completed_collector(data: dict[str, Any]) -> dict[str, Any]:
    if data and all(PIPELINE.match(str(key)) for key in data):
        data = {"service": {"pipelines": data}}
    config = {section: dict(data.get(section) or {}) for section in SECTIONS}
    service = dict(data.get("service") or {})
    if "pipelines" not in service:
        processors = list(config["processors"])
        service["pipelines"] = {
            "traces": {
                "receivers": list(config["receivers"]) or ["otlp"],
                "processors": [p for p in processors if component(p)[0] not in ("memory_limiter",)] or [],
                "exporters": list(config["exporters"]) or ["debug"],
            }
        }
        if "memory_limiter" in processors:
            service["pipelines"]["traces"]["processors"].insert(0, "memory_limiter")
    for pipeline in service["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            for cid in pipeline.get(section) or ():
                if cid not in config[section]:
                    config[section][cid] = STUBS.get((section, component(cid)[0]), {})
    return {**{k: v for k, v in config.items() if v}, "service": service}


@pytest.mark.parametrize("text", yaml_blocks())
def test_every_yaml_snippet_validates_as_written(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "examples" / "risk.yaml", tmp_path / "risk.yaml")
    shutil.copy(ROOT / "examples" / "gate-policy.yaml", tmp_path / "gates.yaml")
    data = yaml.safe_load(text)
    if text.lstrip().startswith("# OpenTelemetry Collector"):
        return
    kind = kind_of(data)
    # Variables the snippet needs (those without a :-default), set as a user would set them.
    environ = {name: "sgr_example" for name in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", text)}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if kind == "collector":
        load_config_text(yaml.safe_dump(completed_collector(data)), environ=environ, config_dir=tmp_path)
    elif kind == "risk":
        load_risk_config_text(yaml.safe_dump({"rules": data} if isinstance(data, list) else data))
    elif kind == "gate_policy":
        policy_from_text(text, environ=environ)
    elif kind == "review":
        (tmp_path / "review.yaml").write_text(text)
        load_review_config(tmp_path / "review.yaml")
    else:
        (tmp_path / "gate.yaml").write_text(text)
        load_gate_config(tmp_path / "gate.yaml")

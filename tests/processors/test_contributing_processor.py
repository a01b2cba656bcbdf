"""docs/contributing.md's worked example of a processor, run as written: its two modules, as a package of
``spanguard.processors``, registered and built by a collector from its config, stamp the spans of a pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from contributing_examples import add_to_package, example_modules
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

import spanguard.processors
from spanguard.collector.component import TraceBatch
from spanguard.collector.components import register_builtins
from spanguard.collector.config import CollectorConfig, Registry, load_config_text
from spanguard.collector.service import Collector
from spanguard.yamlconfig import ConfigError


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """``spanguard.processors.stamp`` importable from the example's text, in a registry beside the built-ins."""
    modules = example_modules("A processor", "processors/stamp")
    assert set(modules) == {"config.py", "factory.py"}
    add_to_package(spanguard.processors, modules, tmp_path, monkeypatch, "stamp")
    from spanguard.processors.stamp.factory import new_factory

    registry = Registry()
    register_builtins(registry)
    registry.register(new_factory())
    yield registry


def collector_config(registry: Registry, out: Path, stamp: str) -> CollectorConfig:
    return load_config_text(
        f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
processors: {{stamp: {stamp}, batch: {{}}}}
exporters: {{file: {{path: "{out}"}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines: {{traces: {{receivers: [otlp], processors: [stamp, batch], exporters: [file]}}}}
""",
        registry=registry,
    )


def test_the_worked_example_stamps_spans_in_a_collectors_pipeline(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    collector = Collector(collector_config(registry, out, "{key: deployment.environment, value: staging}"))
    assert len(collector.stages) == 2
    collector.start()
    try:
        kept = KeyValue(key="deployment.environment", value=AnyValue(string_value="prod"))
        spans = [
            Span(name="a", trace_id=b"\x01" * 16, span_id=b"\x01" * 8),
            Span(name="b", trace_id=b"\x01" * 16, span_id=b"\x02" * 8, attributes=[kept]),
        ]
        collector.stages[0].consume(TraceBatch([ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]))
    finally:
        collector.shutdown(5.0)
    (line,) = out.read_text().splitlines()
    written = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    values = {span["name"]: [a["value"]["stringValue"] for a in span["attributes"]] for span in written}
    assert values == {"a": ["staging"], "b": ["prod"]}  # inserted where missing, an existing value kept


def test_the_worked_examples_settings_are_checked_when_the_config_loads(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"processors\.stamp\.colour: unknown key"):
        collector_config(registry, tmp_path / "x.jsonl", "{key: k, value: v, colour: red}")

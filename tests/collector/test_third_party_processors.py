"""Processors registered by a third party (docs/collector-config.md, "For component authors"): one whose factory has a
``create`` runs in its pipeline; one without is a start-up error, never a step silently left out of the pipeline."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ConfigDict
from spanguard.collector.cli import main
from spanguard.collector.component import TraceBatch
from spanguard.collector.config import ConfigError, Factory, load_config_text, register
from spanguard.collector.service import build_chain, unbuildable


class StampConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str = "seen"


class Stamp:
    """Sets ``stamp`` on every span, then hands the batch on."""

    def __init__(self, config: StampConfig, next_consumer, telemetry) -> None:
        self.value, self.next = config.value, next_consumer

    def consume(self, batch: TraceBatch) -> None:
        for resource in batch.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attribute = span.attributes.add()
                    attribute.key, attribute.value.string_value = "stamp", self.value
        self.next.consume(batch)


register(Factory("processor", "test_stamp", StampConfig, create=Stamp))
register(Factory("processor", "test_uncreatable", StampConfig))  # no create: nothing can build it


class Sink:
    def __init__(self) -> None:
        self.batches: list[TraceBatch] = []

    def consume(self, batch: TraceBatch) -> None:
        self.batches.append(batch)


def config(processor: str):
    return load_config_text(
        f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
processors:
  {processor}: {{value: hello}}
  batch: {{}}
exporters: {{debug: {{}}}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [{processor}, batch], exporters: [debug]}}
"""
    )


def one_span() -> TraceBatch:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("chat"):
        pass
    return TraceBatch.of(encode_spans(exporter.get_finished_spans()).resource_spans)


def test_a_processor_registered_with_create_runs_in_its_pipeline_once():
    loaded = config("test_stamp")
    assert unbuildable(loaded) == []
    sink = Sink()
    chain = build_chain(loaded, loaded.pipelines["traces"], sink, None, only=("test_stamp",))
    assert len(chain.stages) == 1  # its predecessor is not listed twice
    chain.entry.consume(one_span())
    [span] = [s for b in sink.batches for r in b.resource_spans for sc in r.scope_spans for s in sc.spans]
    assert [(a.key, a.value.string_value) for a in span.attributes] == [("stamp", "hello")]


def test_a_processor_nothing_can_build_stops_the_collector_at_start_naming_it(tmp_path, capsys):
    loaded = config("test_uncreatable")
    [problem] = unbuildable(loaded)
    assert problem.startswith("processors.test_uncreatable: type 'test_uncreatable' has no create function")
    with pytest.raises(ConfigError, match=r"processors\.test_uncreatable"):
        build_chain(loaded, loaded.pipelines["traces"], Sink(), None)
    path = tmp_path / "collector.yaml"
    path.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}}\n"
        "processors: {test_uncreatable: {}}\nexporters: {debug: {}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], processors: [test_uncreatable], exporters: [debug]}}}\n"
    )
    for action in ("validate", "run"):
        assert main([action, "--config", str(path)]) == 2
        assert "processors.test_uncreatable" in capsys.readouterr().err


def test_an_exporter_type_registered_elsewhere_is_refused_at_validation_not_at_start(tmp_path, capsys):
    register(Factory("exporter", "test_elsewhere", StampConfig))
    path = tmp_path / "collector.yaml"
    path.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}}\n"
        "exporters: {test_elsewhere: {}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], exporters: [test_elsewhere]}}}\n"
    )
    assert main(["validate", "--config", str(path)]) == 2
    assert "exporters.test_elsewhere: type 'test_elsewhere' cannot be built" in capsys.readouterr().err

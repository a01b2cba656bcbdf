"""Components registered by a third party exactly as docs/collector-config.md ("For component authors") says: a
processor and an exporter whose factories have a ``create`` run in a real collector's pipeline; one without ``create``
is a start-up error naming it, never a step silently left out of the pipeline."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pydantic import BaseModel, ConfigDict

from spanguard.collector.cli import main
from spanguard.collector.component import Consumer, Settings, TraceBatch
from spanguard.collector.config import Factory, load_config_text, register
from spanguard.collector.service import Collector, unbuildable
from spanguard.yamlconfig import ConfigError


class StampConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str = "seen"


class Stamp:
    """Sets ``stamp`` on every span, then hands the batch on."""

    def __init__(self, value: str, next_consumer: Consumer) -> None:
        self.value, self.next = value, next_consumer

    def consume(self, batch: TraceBatch) -> None:
        for resource in batch.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attribute = span.attributes.add()
                    attribute.key, attribute.value.string_value = "stamp", self.value
        self.next.consume(batch)

    def start(self) -> None:
        pass

    def shutdown(self, timeout: float = 10.0) -> None:
        pass


def make_stamp(settings: Settings, next_consumer: Consumer, telemetry: object) -> Stamp:
    return Stamp(settings.config.value, next_consumer)


class ListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListExporter:
    """A plain class with consume/start/shutdown: all an exporter needs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, list[tuple[str, str]]]] = []
        self.arrived = threading.Event()
        self.started = self.stopped = False

    def consume(self, batch: TraceBatch) -> None:
        for resource in batch.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append((span.name, [(a.key, a.value.string_value) for a in span.attributes]))
        self.arrived.set()

    def start(self) -> None:
        self.started = True

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stopped = True


EXPORTERS: dict[str, ListExporter] = {}


def make_list_exporter(settings: Settings, next_consumer: None, telemetry: object) -> ListExporter:
    exporter = EXPORTERS[settings.id] = ListExporter()
    return exporter


register(Factory("processor", "test_stamp", StampConfig, create=make_stamp))
register(Factory("exporter", "test_list", ListConfig, create=make_list_exporter))
register(Factory("processor", "test_uncreatable", StampConfig))  # no create: nothing can build it
register(Factory("exporter", "test_uncreatable", ListConfig))


def config(processor: str = "test_stamp", exporter: str = "test_list/mine"):
    return load_config_text(
        f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
processors:
  {processor}: {{value: hello}}
  batch: {{}}
exporters: {{{exporter}: {{}}}}
service:
  telemetry: {{metrics: {{address: null}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [{processor}, batch], exporters: [{exporter}]}}
"""
    )


def test_a_third_party_processor_and_exporter_run_in_a_collector():
    collector = Collector(config())
    assert len(collector.stages) == 2  # test_stamp and batch, each once
    collector.start()
    try:
        exporter = EXPORTERS["test_list/mine"]
        assert exporter.started
        provider = TracerProvider()
        otlp = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.receivers[0].grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(otlp))
        with provider.get_tracer("t").start_as_current_span("chat"):
            pass
        provider.shutdown()
        assert exporter.arrived.wait(10)
        assert exporter.spans == [("chat", [("stamp", "hello")])]
    finally:
        collector.shutdown(5.0)
    assert exporter.stopped


@pytest.mark.parametrize(
    ("processor", "exporter", "refused"),
    [
        ("test_uncreatable", "test_list", "processors.test_uncreatable"),
        ("test_stamp", "test_uncreatable", "exporters.test_uncreatable"),
    ],
)
def test_a_component_nothing_can_build_stops_the_collector_at_start_naming_it(
    tmp_path, capsys, processor, exporter, refused
):
    loaded = config(processor, exporter)
    [problem] = unbuildable(loaded)
    kind = refused.partition(".")[0]
    assert problem.startswith(f"{refused}: type 'test_uncreatable' has no create function"), kind
    with pytest.raises(ConfigError, match=refused.replace(".", r"\.")):
        Collector(loaded)
    path = tmp_path / "collector.yaml"
    path.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}}\n"
        f"processors: {{{processor}: {{}}}}\nexporters: {{{exporter}: {{}}}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], "
        f"processors: [{processor}], exporters: [{exporter}]}}}}}}\n"
    )
    for action in ("validate", "run"):
        assert main([action, "--config", str(path)]) == 2
        assert refused in capsys.readouterr().err

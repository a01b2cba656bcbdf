"""Shared fixtures: the fake provider, real SDK clients pointed at it, and in-memory telemetry."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import fake_provider  # noqa: E402

import spanguard  # noqa: E402


class Telemetry:
    """In-memory spans and metrics for one test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in end order."""
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        """The only finished span."""
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metric_points(self, name: str) -> list[Any]:
        """Every data point of the metric called ``name``."""
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture(scope="session")
def fake_server() -> Iterator[fake_provider.FakeProvider]:
    with fake_provider.FakeProvider() as server:
        yield server


@pytest.fixture
def fake(fake_server: fake_provider.FakeProvider) -> fake_provider.FakeProvider:
    fake_server.reset()
    return fake_server


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., Telemetry]]:
    """Call ``spanguard.instrument`` with the test's providers; always uninstrumented afterwards."""

    def run(**options: Any) -> Telemetry:
        spanguard.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, **options
        )
        return telemetry

    yield run
    spanguard.uninstrument()


@pytest.fixture
def openai_client(fake: fake_provider.FakeProvider) -> Any:
    import openai

    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_openai_client(fake: fake_provider.FakeProvider) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def anthropic_client(fake: fake_provider.FakeProvider) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_anthropic_client(fake: fake_provider.FakeProvider) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test-key", max_retries=0)

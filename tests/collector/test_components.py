"""The built-in components, listed once in collector/components.py, and the chain the service wires from them."""

from __future__ import annotations

from spanguard.collector.component import KINDS, Admission
from spanguard.collector.components import builtin_factories
from spanguard.collector.config import default_registry, load_config_text
from spanguard.collector.service import build_chain
from spanguard.collector.telemetry import CollectorMetrics
from spanguard.processors.batch.factory import BatchStage
from spanguard.processors.memory_limiter.limiter import MemoryLimiter
from spanguard.processors.redaction.factory import RedactionStage
from spanguard.processors.tail_sampling.factory import TailSamplingStage

CONFIG = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
processors:
  memory_limiter: {limit_mib: 100000}
  redaction: {}
  risk: {rules: [{name: gate, tier: red, reason: r, match: {span_name: {equals: gate}}}]}
  tail_sampling: {}
  batch: {}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [memory_limiter, redaction, risk, tail_sampling, batch], exporters: [debug]}
"""


class Sink:
    def consume(self, batch) -> None:
        pass


def test_every_built_in_component_has_a_factory_with_create_in_the_default_registry():
    factories = builtin_factories()
    assert len({(f.kind, f.type) for f in factories}) == len(factories)
    assert all(f.create is not None for f in factories)
    registered = {(kind, type_) for kind in KINDS for type_ in default_registry().factories(kind)}
    assert {(f.kind, f.type) for f in factories} <= registered


def test_the_chain_is_built_by_the_factories_in_pipeline_order():
    config = load_config_text(CONFIG)
    metrics = CollectorMetrics()
    chain = build_chain(config, config.pipelines["traces"], Sink(), metrics)
    # risk steps aside: tail sampling classifies whole traces with its rules
    assert [type(stage) for stage in chain.stages] == [MemoryLimiter, RedactionStage, TailSamplingStage, BatchStage]
    assert chain.entry is chain.stages[0]
    assert chain.admissions == [chain.stages[0]] and isinstance(chain.stages[0], Admission)
    assert chain.stages[2]._sampler._classifier is not None
    text = metrics.render().decode()
    assert 'spanguard_redaction_failed_total{processor="traces/redaction"} 0.0' in text
    assert 'spanguard_sampling_buffered_traces{processor="traces/tail_sampling"} 0.0' in text
    for stage in chain.stages:
        stage.shutdown(1.0)


def test_a_pipeline_with_workers_keeps_the_memory_limiter_in_the_collector_process():
    config = load_config_text(CONFIG)
    here = build_chain(config, config.pipelines["traces"], Sink(), None, in_workers=False)
    assert [type(stage) for stage in here.stages] == [MemoryLimiter]
    there = build_chain(config, config.pipelines["traces"], Sink(), None, in_workers=True)
    assert [type(stage) for stage in there.stages] == [RedactionStage, TailSamplingStage, BatchStage]
    assert there.admissions == []
    for stage in there.stages:
        stage.shutdown(1.0)

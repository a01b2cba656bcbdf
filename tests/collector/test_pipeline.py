"""Pipeline stages under backpressure: nothing held twice, nothing held without bound."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanguard.collector.component import Backpressure, TraceBatch
from spanguard.processors.batch.config import BatchProcessorConfig
from spanguard.processors.batch.factory import BatchStage
from spanguard.processors.tail_sampling.config import TailSamplingProcessorConfig
from spanguard.processors.tail_sampling.factory import TailSamplingStage


class Downstream:
    """Takes batches until ``room`` spans are taken, then refuses."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.span_ids: list[bytes] = []

    def consume(self, batch: TraceBatch) -> None:
        if batch.span_count > self.room:
            raise Backpressure("full")
        self.room -= batch.span_count
        self.span_ids += [s.span_id for r in batch.resource_spans for sc in r.scope_spans for s in sc.spans]


def red_traces(count: int) -> TraceBatch:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for index in range(count):
        with provider.get_tracer("t").start_as_current_span(
            f"gate {index}", attributes={"spanguard.approval.gate": True}
        ):
            pass
    return TraceBatch.of(encode_spans(exporter.get_finished_spans()).resource_spans)


def test_batch_split_refused_midway_hands_back_only_the_rest():
    downstream = Downstream(room=4)
    stage = BatchStage(BatchProcessorConfig(send_batch_max_size=3), downstream)
    with pytest.raises(Backpressure) as refused:
        stage.consume(red_traces(7))
    assert len(downstream.span_ids) == 3
    assert refused.value.remaining is not None and refused.value.remaining.span_count == 4


def test_tail_sampling_refuses_new_data_while_decided_traces_wait_and_sends_each_once():
    downstream = Downstream(room=0)
    config = TailSamplingProcessorConfig(decision_wait=0.01, root_grace=0.0, poll_interval=0.01)
    stage = TailSamplingStage(config, None, downstream)
    stage.consume(red_traces(3))  # accepted and buffered
    stage._tick()  # decided, but downstream is full: held
    with pytest.raises(Backpressure):
        stage.consume(red_traces(1))  # pushed back to the client instead of growing the backlog
    downstream.room = 100
    stage._tick()
    assert len(downstream.span_ids) == 3 == len(set(downstream.span_ids))
    stage.consume(red_traces(1))  # accepted again
    stage.shutdown(timeout=1)
    assert len(downstream.span_ids) == 4


def test_risk_stage_annotates_every_span_of_each_trace_in_place():
    from spanguard.processors.risk import RiskClassifier
    from spanguard.processors.risk.factory import RiskStage

    downstream = Downstream(room=100)
    batch = red_traces(2)
    RiskStage(RiskClassifier(), downstream).consume(batch)
    for resource in batch.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                attributes = {kv.key: kv.value for kv in span.attributes}
                assert attributes["spanguard.risk.tier"].string_value == "red"
                assert [kv.key for kv in span.attributes].count("spanguard.risk.tier") == 1
    assert len(downstream.span_ids) == 2


def test_redaction_stage_hands_on_redacted_views():
    from spanguard.processors.redaction import Redactor
    from spanguard.processors.redaction.factory import RedactionStage

    seen: list[TraceBatch] = []

    class Keep:
        def consume(self, batch: TraceBatch) -> None:
            seen.append(batch)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", attributes={"note": "mail jane.doe@example.com"}):
        pass
    batch = TraceBatch.of(encode_spans(exporter.get_finished_spans()).resource_spans)
    RedactionStage(Redactor(), Keep()).consume(batch)
    (passed,) = seen
    assert passed.views is not None and passed.views[0].attributes["note"] == "mail <EMAIL_ADDRESS>"
    proto = passed.resource_spans[0].scope_spans[0].spans[0]
    assert {kv.key: kv.value.string_value for kv in proto.attributes}["note"] == "mail <EMAIL_ADDRESS>"

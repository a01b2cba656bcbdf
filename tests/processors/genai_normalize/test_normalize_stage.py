"""The collector stage: OpenInference protobuf spans rewritten in place, in a pipeline built from config."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from spanguard.collector.component import TraceBatch
from spanguard.collector.config import load_config_text
from spanguard.processors import otlp
from spanguard.processors.genai_normalize import Normalizer
from spanguard.processors.genai_normalize.factory import NormalizeStage


class Keep:
    def __init__(self) -> None:
        self.batches: list[TraceBatch] = []

    def consume(self, batch: TraceBatch) -> None:
        self.batches.append(batch)


def test_stage_rewrites_recognised_spans_in_place_and_passes_others_unchanged() -> None:
    resource = ResourceSpans()
    span = resource.scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="refund")
    span.attributes.extend(
        [
            KeyValue(key="openinference.span.kind", value=AnyValue(string_value="TOOL")),
            KeyValue(key="tool.name", value=AnyValue(string_value="refund")),
        ]
    )
    plain = resource.scope_spans[0].spans.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, name="other")
    keep = Keep()
    NormalizeStage(Normalizer(), keep).consume(TraceBatch([resource]))
    (view, other) = otlp.views_of(keep.batches[0].resource_spans)
    assert (
        view.attributes["gen_ai.operation.name"] == "execute_tool" and view.attributes["gen_ai.tool.name"] == "refund"
    )
    assert other.attributes == {} and plain.name == "other"


def test_genai_normalize_is_a_traces_processor_in_config() -> None:
    text = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
processors: {genai_normalize: {drop_original: true}}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [genai_normalize], exporters: [debug]}
"""
    assert load_config_text(text, environ={}).processors["genai_normalize"].config.drop_original is True

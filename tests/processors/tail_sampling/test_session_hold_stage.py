"""The collector's tail-sampling stage passes recalled traces on, and its decision metric counts each trace once."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from spanguard.collector.component import TraceBatch
from spanguard.collector.telemetry import sampling_families
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.tail_sampling.config import TailSamplingProcessorConfig
from spanguard.processors.tail_sampling.factory import TailSamplingStage


class Sink:
    def __init__(self) -> None:
        self.batches: list[TraceBatch] = []

    def consume(self, batch: TraceBatch) -> None:
        self.batches.append(batch)


class Tally:
    def __init__(self) -> None:
        self.decisions: list = []

    def decided(self, decision) -> None:
        self.decisions.append(decision)


def turn(n: int, *, gate: bool = False) -> list[ResourceSpans]:
    resource = ResourceSpans()
    resource.resource.attributes.add(key="service.name").value.string_value = "support"
    scope = resource.scope_spans.add()
    trace_id = n.to_bytes(16, "big")
    root = scope.spans.add(name=f"invoke_agent turn {n}", trace_id=trace_id, span_id=(n * 10).to_bytes(8, "big"))
    root.attributes.add(key="gen_ai.conversation.id").value.string_value = "conv-9"
    root.start_time_unix_nano, root.end_time_unix_nano = 1, 2
    if gate:
        tool = scope.spans.add(name="execute_tool refund", trace_id=trace_id, span_id=(n * 10 + 1).to_bytes(8, "big"))
        tool.parent_span_id = root.span_id
        tool.attributes.add(key="gen_ai.conversation.id").value.string_value = "conv-9"
        tool.attributes.add(key="spanguard.approval.gate").value.bool_value = True
        tool.start_time_unix_nano, tool.end_time_unix_nano = 1, 2
    return [resource]


def test_recalled_turns_reach_the_next_stage_and_are_not_counted_as_decisions_again() -> None:
    # max_traces 1: each new turn decides the one before it, so turns 1 and 2 are dropped (rate 0) and held
    config = TailSamplingProcessorConfig(green_rate=0.0, yellow_rate=0.0, max_traces=1)
    sink, tally = Sink(), Tally()
    stage = TailSamplingStage(config, RiskClassifier(), sink, telemetry=tally)
    for n in (1, 2):
        stage.consume(TraceBatch(turn(n)))
    stage.consume(TraceBatch(turn(3, gate=True)))
    assert sink.batches == [] and stage.stats["held_traces"] == 2
    stage.shutdown(timeout=1)  # decides turn 3: red, and the session's held turns come with it

    names = sorted(s.name for b in sink.batches for r in b.resource_spans for sc in r.scope_spans for s in sc.spans)
    assert names == ["execute_tool refund", "invoke_agent turn 1", "invoke_agent turn 2", "invoke_agent turn 3"]
    assert [(d.tier, d.keep) for d in tally.decisions] == [("green", False), ("green", False), ("red", True)]
    assert stage.stats["session_recalled"] == 2
    families = {family.name: family for family in sampling_families({"tail_sampling": stage})()}
    assert [x.value for x in families["spanguard_sampling_session_recalled"].samples] == [2]
    assert [x.value for x in families["spanguard_sampling_held_traces"].samples] == [0]  # discarded at shutdown

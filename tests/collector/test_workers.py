"""Pipeline workers: processors in several processes, traces kept whole, nothing acknowledged lost."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from sink import OtlpSink
from test_service import EMAIL, red_and_green, running_collector, send

from spanguard.collector.component import Backpressure, TraceBatch
from spanguard.collector.config import load_config_text
from spanguard.collector.workers import PipelineWorkers, _decode, merge_stats, shard_of, split, worker_config
from spanguard.yamlconfig import ConfigError


def _resource_spans(traces: int, spans_per_trace: int = 3, *, service: str = "shop") -> list[ResourceSpans]:
    resource = ResourceSpans()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    scope = resource.scope_spans.add()
    scope.scope.name = "test"
    for t in range(traces):
        trace_id = (t + 1).to_bytes(16, "big")
        for s in range(spans_per_trace):
            span = scope.spans.add(
                name=f"span {t}/{s}", trace_id=trace_id, span_id=(t * 100 + s + 1).to_bytes(8, "big")
            )
            span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
            if s:
                span.parent_span_id = (t * 100 + 1).to_bytes(8, "big")
    return [resource]


def _ids(resource_spans: list[ResourceSpans]) -> list[tuple[bytes, bytes]]:
    return [(s.trace_id, s.span_id) for r in resource_spans for sc in r.scope_spans for s in sc.spans]


def test_split_sends_every_span_once_and_every_trace_to_one_worker():
    original = _resource_spans(traces=25)
    shards = [_decode(part) for part in split(original, 3)]
    seen = [ids for shard in shards for ids in _ids(shard)]
    assert sorted(seen) == sorted(_ids(original))
    for index, shard in enumerate(shards):
        for trace_id, _ in _ids(shard):
            assert shard_of(trace_id, 3) == index
        for resource in shard:
            assert resource.resource == original[0].resource
            assert [s.scope.name for s in resource.scope_spans] == ["test"]


def test_merge_stats_sums_numbers_and_merges_maps():
    merged = merge_stats({}, {"a": 1, "m": {"x": 2}, "s": "first", "flag": True})
    merge_stats(merged, {"a": 2, "m": {"x": 3, "y": 1}, "s": "second", "flag": False})
    assert merged == {"a": 3, "m": {"x": 5, "y": 1}, "s": "first", "flag": True}


def _config(sink: OtlpSink, tmp_path, *, workers: int = 2, extra: str = "", green_rate: float = 0.0) -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  redaction: {{}}
  risk: {{}}
  tail_sampling:
    decision_wait: 0.3s
    root_grace: 0.05s
    green_rate: {green_rate}
    yellow_rate: 0.0
    poll_interval: 0.05
    max_traces: 1001
    review_budget: {{dual_approval: 5, spot_check: 2}}
  batch: {{}}
exporters:
  otlp/sink:
    endpoint: "{sink.grpc_endpoint}"
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 0.05s}}
    {extra}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction, risk, tail_sampling, batch]
      exporters: [otlp/sink]
      workers: {workers}
"""


def test_worker_config_shares_budgets_and_bounds_out(tmp_path):
    with OtlpSink() as sink:
        config = load_config_text(_config(sink, tmp_path, workers=3))
    shares = [worker_config(config, "traces", i, 3).processors["tail_sampling"].config for i in range(3)]
    assert sum(s.max_traces for s in shares) == 1001
    assert sum(s.session_hold_spans for s in shares) == 20_000  # the default, shared out like the other bounds
    assert sum(s.review_budget["dual_approval"] for s in shares) == 5
    assert sum(s.review_budget["spot_check"] for s in shares) == 2
    assert config.processors["tail_sampling"].config.max_traces == 1001  # the collector's own config is unchanged


@pytest.mark.parametrize("value", ["0", "65", "two", "1.5"])
def test_workers_setting_is_validated_with_its_path(tmp_path, value):
    with OtlpSink() as sink:
        text = _config(sink, tmp_path).replace("workers: 2", f"workers: {value}")
    with pytest.raises(ConfigError) as error:
        load_config_text(text)
    assert "service.pipelines.traces.workers" in str(error.value)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("workers")
    with running_collector(lambda sink: _config(sink, tmp_path), timeout=10) as started:
        yield started


def test_traces_are_decided_whole_and_redacted_across_workers(running):
    collector, sink = running
    for _ in range(4):  # several traces, so both workers get some
        send(collector, red_and_green)
    sink.wait_for_spans(12, timeout=20)
    time.sleep(0.5)
    spans = sink.spans()
    assert len(spans) == 12
    by_trace: dict[bytes, list[str]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span.name)
        attributes = {kv.key: kv.value for kv in span.attributes}
        assert attributes["spanguard.risk.tier"].string_value == "red"
    assert len(by_trace) == 4
    for names in by_trace.values():
        assert sorted(names) == ["chat gpt-4o", "execute_tool refund", "invoke_agent refunds"]
    assert EMAIL not in str(spans)
    assert {shard_of(trace_id, 2) for trace_id in by_trace} <= {0, 1}


def test_workers_report_health_decisions_and_redactions(running):
    collector, _ = running
    send(collector, red_and_green)
    time.sleep(1.0)
    assert collector.healthy()
    port = collector.telemetry_servers[0].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'spanguard_redaction_redacted_total{entity="EMAIL_ADDRESS",processor="traces/redaction"}' in text
    assert 'spanguard_sampling_decisions_total{early="false",kept="true",tier="red"}' in text
    assert 'spanguard_sampling_decisions_total{early="false",kept="false",tier="green"}' in text
    assert 'spanguard_review_budget_limit{processor="traces/tail_sampling",tier="dual_approval"} 5.0' in text


class _Gate:
    """A next consumer that refuses until opened, then records what it takes."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.taken: list[tuple[bytes, bytes]] = []
        self.lock = threading.Lock()

    def consume(self, batch: TraceBatch) -> None:
        if not self.open.is_set():
            raise Backpressure("test: closed", retry_after=0.05)
        with self.lock:
            self.taken.extend(_ids(batch.resource_spans))


def test_backpressure_reaches_the_sender_and_nothing_acknowledged_is_lost(tmp_path):
    with OtlpSink() as sink:
        config = load_config_text(_config(sink, tmp_path, green_rate=1.0))
    gate = _Gate()
    workers = PipelineWorkers(config, "traces", gate)
    workers.start()
    try:
        acknowledged: list[tuple[bytes, bytes]] = []
        refused = 0
        for round_ in range(30):
            batch = _resource_spans(traces=10)
            for resource in batch:  # unique ids per round
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        span.trace_id = round_.to_bytes(8, "big") + span.trace_id[8:]
            ids = _ids(batch)
            try:
                workers.consume(TraceBatch(batch))
                acknowledged.extend(ids)
            except Backpressure as error:
                assert error.retry_after > 0
                refused += 1
            time.sleep(0.05)
        assert refused > 0, "the closed exporters never pushed back"
        gate.open.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(set(gate.taken)) < len(acknowledged):
            time.sleep(0.1)
    finally:
        workers.shutdown(timeout=10)
    assert set(acknowledged) <= set(gate.taken)
    assert len(gate.taken) == len(set(gate.taken)), "a span was delivered twice"


def test_a_dead_worker_makes_the_collector_unhealthy_and_its_traces_refused(tmp_path):
    with OtlpSink() as sink:
        config = load_config_text(_config(sink, tmp_path, green_rate=1.0))
    gate = _Gate()
    gate.open.set()
    workers = PipelineWorkers(config, "traces", gate)
    workers.start()
    try:
        assert workers.healthy()
        workers._workers[1].process.kill()
        workers._workers[1].process.join(5)
        assert not workers.healthy()
        only_dead = _decode(split(_resource_spans(traces=8), 2)[1])  # the traces worker 1 owns: nobody else takes them
        with pytest.raises(Backpressure):
            workers.consume(TraceBatch(only_dead))
    finally:
        workers.shutdown(timeout=5)


def test_shutdown_without_start(tmp_path):
    with OtlpSink() as sink:
        config = load_config_text(_config(sink, tmp_path))
    workers = PipelineWorkers(config, "traces", _Gate())
    workers.shutdown(timeout=1)
    workers.shutdown(timeout=1)
    with pytest.raises(Backpressure):
        workers.consume(TraceBatch(_resource_spans(1)))


def test_shutdown_passes_on_the_traces_the_workers_still_hold(tmp_path):
    with OtlpSink() as sink:
        config = load_config_text(
            _config(sink, tmp_path, green_rate=1.0).replace("decision_wait: 0.3s", "decision_wait: 60s")
        )
    gate = _Gate()
    gate.open.set()
    workers = PipelineWorkers(config, "traces", gate)
    workers.start()
    batch = _resource_spans(traces=6)
    ids = _ids(batch)
    workers.consume(TraceBatch(batch))
    workers.shutdown(timeout=10)
    assert sorted(gate.taken) == sorted(ids)

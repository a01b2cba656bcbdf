"""The SDK span processors: redaction before export, in-process risk sampling, and provider wrapping."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanguard.processors.redaction import Redactor
from spanguard.processors.risk import RiskClassifier
from spanguard.processors.sdk import (
    LazyRedactor,
    RedactingSpanProcessor,
    RiskSamplingSpanProcessor,
    unwrap_redaction,
    wrap_with_redaction,
)
from spanguard.processors.tail_sampling import SamplingConfig, TailSampler

EMAIL = "jane.doe@example.com"


def pipeline(processor_factory):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = processor_factory(SimpleSpanProcessor(exporter))
    provider.add_span_processor(processor)
    return provider, processor, exporter


def test_redacting_processor_hands_on_a_redacted_copy():
    provider, _, exporter = pipeline(lambda nxt: RedactingSpanProcessor(nxt, Redactor()))
    content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"write to {EMAIL}"}]}])
    with provider.get_tracer("t").start_as_current_span("chat m", attributes={"gen_ai.input.messages": content}):
        pass
    (span,) = exporter.get_finished_spans()
    assert EMAIL not in span.attributes["gen_ai.input.messages"]
    assert json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "write to <EMAIL_ADDRESS>"
    assert span.attributes["spanguard.redaction.count"] == 1
    assert span.attributes["spanguard.redaction.entities"] == ("EMAIL_ADDRESS",)


def test_clean_span_is_passed_on_unchanged():
    provider, _, exporter = pipeline(lambda nxt: RedactingSpanProcessor(nxt, Redactor()))
    with provider.get_tracer("t").start_as_current_span("chat m", attributes={"gen_ai.request.model": "m"}):
        pass
    (span,) = exporter.get_finished_spans()
    assert "spanguard.redaction.count" not in span.attributes


def test_a_redactor_still_loading_makes_the_first_span_wait_for_it_not_pass_unredacted():
    import threading

    release = threading.Event()

    def slow_build() -> Redactor:
        release.wait(10)
        return Redactor()

    lazy = LazyRedactor(slow_build)
    lazy.warm()
    provider, _, exporter = pipeline(lambda nxt: RedactingSpanProcessor(nxt, lazy))
    ended = threading.Thread(
        target=lambda: provider.get_tracer("t").start_span("chat m", attributes={"x": f"to {EMAIL}"}).end()
    )
    ended.start()
    ended.join(0.3)
    assert ended.is_alive() and exporter.get_finished_spans() == ()  # waiting for the redactor, nothing sent
    release.set()
    ended.join(10)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["x"] == "to <EMAIL_ADDRESS>"


def test_a_redactor_that_cannot_load_drops_the_spans():
    def broken() -> Redactor:
        raise OSError("presidio is not installed")

    provider, _, exporter = pipeline(lambda nxt: RedactingSpanProcessor(nxt, LazyRedactor(broken)))
    with provider.get_tracer("t").start_as_current_span("chat m", attributes={"x": EMAIL}):
        pass
    assert exporter.get_finished_spans() == ()


def test_span_that_cannot_be_redacted_is_dropped_not_passed_on():
    class Broken(Redactor):
        def redact_span(self, span):
            raise RuntimeError("bug")

    provider, _, exporter = pipeline(lambda nxt: RedactingSpanProcessor(nxt, Broken()))
    with provider.get_tracer("t").start_as_current_span("chat m", attributes={"x": EMAIL}):
        pass
    assert exporter.get_finished_spans() == ()


def test_redacting_processor_shutdown_without_start_is_idempotent():
    processor = RedactingSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter()), Redactor())
    processor.shutdown()
    processor.shutdown()
    assert processor.force_flush() is True


def test_wrap_with_redaction_covers_existing_and_later_processors():
    provider = TracerProvider()
    early, late = InMemorySpanExporter(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(early))
    assert wrap_with_redaction(provider, Redactor()) == 1
    provider.add_span_processor(SimpleSpanProcessor(late))
    with provider.get_tracer("t").start_as_current_span("s", attributes={"note": f"mail {EMAIL}"}):
        pass
    for exporter in (early, late):
        (span,) = exporter.get_finished_spans()
        assert span.attributes["note"] == "mail <EMAIL_ADDRESS>"
    unwrap_redaction(provider)
    early.clear()
    with provider.get_tracer("t").start_as_current_span("s", attributes={"note": f"mail {EMAIL}"}):
        pass
    assert early.get_finished_spans()[0].attributes["note"] == f"mail {EMAIL}"


def make_sampler(**config):
    return TailSampler(SamplingConfig(green_rate=0.0, yellow_rate=0.0, **config), RiskClassifier())


def test_risk_sampling_processor_keeps_red_traces_whole_and_drops_green():
    provider, processor, exporter = pipeline(lambda nxt: RiskSamplingSpanProcessor(nxt, make_sampler()))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("invoke_agent pay"):
        with tracer.start_as_current_span("execute_tool charge_card", attributes={"spanguard.approval.gate": True}):
            pass
    with tracer.start_as_current_span("invoke_agent chat"):
        with tracer.start_as_current_span("chat m", attributes={"spanguard.model.pinned": True}):
            pass
    assert processor.force_flush()
    kept = exporter.get_finished_spans()
    assert sorted(s.name for s in kept) == ["execute_tool charge_card", "invoke_agent pay"]
    for span in kept:
        assert span.attributes["spanguard.risk.tier"] == "red"
        assert span.attributes["spanguard.sampling.rate"] == 1.0
        assert span.attributes["spanguard.review.tier"] == "dual_approval"
    provider.shutdown()


def test_risk_sampling_processor_decides_in_background_after_decision_wait():
    provider, _, exporter = pipeline(
        lambda nxt: RiskSamplingSpanProcessor(nxt, make_sampler(decision_wait=0.05, root_grace=0.0), poll_interval=0.02)
    )
    with provider.get_tracer("t").start_as_current_span("gate", attributes={"spanguard.approval.gate": True}):
        pass
    import time

    deadline = time.monotonic() + 5
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()


def test_risk_sampling_processor_shutdown_without_start_is_idempotent():
    processor = RiskSamplingSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter()), make_sampler())
    processor.shutdown()
    processor.shutdown()


class _Recorder:
    """An app's span processor registered before ``instrument()``: records what it sees on start and on end."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict]] = []
        self.ended: list[tuple[str, dict]] = []
        self.resources: list[dict] = []

    def on_start(self, span, parent_context=None) -> None:
        self.started.append((span.name, dict(span.attributes or {})))
        self.resources.append(dict(span.resource.attributes))

    def on_end(self, span) -> None:
        self.ended.append((span.name, dict(span.attributes or {})))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_processor_registered_before_wrapping_sees_redacted_starts_and_ends():
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "owner.email": EMAIL}))
    recorder = _Recorder()
    provider.add_span_processor(recorder)  # type: ignore[arg-type]
    wrap_with_redaction(provider, Redactor())
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(
        f"lookup {EMAIL}", attributes={"app.note": f"mail {EMAIL}", "user.email": "x", "db.password": "hunter2"}
    ):
        pass
    ((start_name, start_attrs),) = recorder.started
    ((end_name, end_attrs),) = recorder.ended
    for name, attrs in ((start_name, start_attrs), (end_name, end_attrs)):
        assert EMAIL not in name and EMAIL not in repr(attrs)
        assert "hunter2" not in repr(attrs) and "db.password" not in attrs
        assert attrs["user.email"] == "<EMAIL_ADDRESS>"
    assert start_name == "lookup <EMAIL_ADDRESS>"
    assert recorder.resources[0]["owner.email"] == "<EMAIL_ADDRESS>"
    # Redacted at start and not again at the end: each redaction is counted once.
    assert end_attrs["spanguard.redaction.count"] == 5  # name, note, user.email, dropped password, resource


def test_exporting_processors_are_not_redacted_on_start():
    exporter = InMemorySpanExporter()
    processor = RedactingSpanProcessor(SimpleSpanProcessor(exporter), Redactor())
    assert processor._redacts_on_start is False
    assert RedactingSpanProcessor(_Recorder(), Redactor())._redacts_on_start is True  # type: ignore[arg-type]

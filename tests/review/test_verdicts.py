"""Human verdicts as ``gen_ai.evaluation.result`` events: the pure mapping, and end to end over real OTLP.

The end-to-end tests run a real OTLP/gRPC ``LogsService`` server and a real OTLP/HTTP server on 127.0.0.1 and
assert on the ``ExportLogsServiceRequest`` protobufs they receive from the official SDK exporters.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk.trace import TracerProvider
from otlp_logs import Received, attributes_of

from spanguard.review import verdicts as verdicts_module
from spanguard.review.verdicts import (
    OUTCOME_SCORES,
    Verdict,
    VerdictEmitter,
    VerdictsConfig,
    evaluation_events,
    parent_context,
)
from spanguard.semconv import declared_attribute_names

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
PII = "John Smith, 4111 1111 1111 1111, john@example.com"


def verdict(**changes: Any) -> Verdict:
    fields: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "item_id": 7,
        "reviewer": "alice",
        "outcome": "approve",
        "reason": None,
        "ratings": {},
        "checklist": {},
        "comment": None,
        "response_id": None,
    }
    fields.update(changes)
    return Verdict(**fields)


def by_name(events: list[tuple[dict[str, Any], str | None]]) -> dict[str, dict[str, Any]]:
    return {attributes["gen_ai.evaluation.name"]: attributes for attributes, _ in events}


# --- the pure mapping ----------------------------------------------------------------------------------------------


def test_approve_is_one_human_review_event_scored_1():
    events = evaluation_events(verdict(outcome="approve"))
    assert events == [
        (
            {
                "gen_ai.evaluation.name": "human_review",
                "gen_ai.evaluation.score.label": "approve",
                "gen_ai.evaluation.score.value": 1.0,
                "spanguard.review.reviewer": "alice",
                "spanguard.review.item_id": 7,
            },
            "human_review: approve",
        )
    ]


def test_reject_scores_0_and_its_explanation_is_the_reason_code():
    [(attributes, body)] = evaluation_events(verdict(outcome="reject", reason="factually_incorrect"))
    assert attributes["gen_ai.evaluation.score.label"] == "reject"
    assert attributes["gen_ai.evaluation.score.value"] == 0.0
    assert attributes["gen_ai.evaluation.explanation"] == "factually_incorrect"
    assert body == "human_review: reject"


def test_correct_scores_half_way():
    [(attributes, _)] = evaluation_events(verdict(outcome="correct", reason="other"))
    assert attributes["gen_ai.evaluation.score.label"] == "correct"
    assert attributes["gen_ai.evaluation.score.value"] == 0.5
    assert OUTCOME_SCORES == {"approve": 1.0, "reject": 0.0, "correct": 0.5}


def test_unknown_outcome_is_refused_by_the_mapping():
    with pytest.raises(ValueError, match="unknown outcome"):
        evaluation_events(verdict(outcome="maybe"))


@pytest.mark.parametrize(("thumbs", "value"), [("up", 1.0), ("down", 0.0)])
def test_thumbs_rating_is_a_human_thumbs_event(thumbs, value):
    events = by_name(evaluation_events(verdict(ratings={"thumbs": thumbs})))
    assert events["human_thumbs"]["gen_ai.evaluation.score.label"] == thumbs
    assert events["human_thumbs"]["gen_ai.evaluation.score.value"] == value
    assert events["human_thumbs"]["spanguard.review.reviewer"] == "alice"
    assert events["human_thumbs"]["spanguard.review.item_id"] == 7


@pytest.mark.parametrize("likert", [1, 3, 5])
def test_likert_rating_is_a_human_likert_event_labelled_with_the_number(likert):
    events = by_name(evaluation_events(verdict(ratings={"likert": likert})))
    assert events["human_likert"]["gen_ai.evaluation.score.value"] == float(likert)
    assert events["human_likert"]["gen_ai.evaluation.score.label"] == str(likert)


def test_both_ratings_give_one_event_each_after_the_decision():
    events = evaluation_events(verdict(ratings={"thumbs": "up", "likert": 4}))
    assert [a["gen_ai.evaluation.name"] for a, _ in events] == ["human_review", "human_thumbs", "human_likert"]


@pytest.mark.parametrize(
    "ratings",
    [{"thumbs": "sideways"}, {"thumbs": 1}, {"likert": 0}, {"likert": 6}, {"likert": True}, {"likert": "4"}],
)
def test_invalid_rating_values_are_left_out_without_raising(ratings):
    assert [a["gen_ai.evaluation.name"] for a, _ in evaluation_events(verdict(ratings=ratings))] == ["human_review"]


def test_unknown_rating_is_left_out_and_its_key_not_logged(caplog):
    with caplog.at_level(logging.INFO, logger="spanguard.review.verdicts"):
        events = evaluation_events(verdict(ratings={PII: 3}))
    assert len(events) == 1
    assert PII not in caplog.text


def test_checklist_entries_are_pass_fail_events():
    events = by_name(evaluation_events(verdict(checklist={"factual_accuracy": True, "tone": False})))
    assert events["human_checklist.factual_accuracy"]["gen_ai.evaluation.score.label"] == "pass"
    assert events["human_checklist.factual_accuracy"]["gen_ai.evaluation.score.value"] == 1.0
    assert events["human_checklist.tone"]["gen_ai.evaluation.score.label"] == "fail"
    assert events["human_checklist.tone"]["gen_ai.evaluation.score.value"] == 0.0


def test_checklist_entries_that_are_not_code_to_bool_are_left_out():
    events = evaluation_events(verdict(checklist={"tone": "yes", PII: True, "safety": True}))
    assert [a["gen_ai.evaluation.name"] for a, _ in events] == ["human_review", "human_checklist.safety"]


def test_response_id_goes_on_every_event():
    events = evaluation_events(verdict(ratings={"thumbs": "up"}, checklist={"tone": True}, response_id="chatcmpl-1"))
    assert len(events) == 3
    assert all(attributes["gen_ai.response.id"] == "chatcmpl-1" for attributes, _ in events)


def test_explanations_never_carry_free_text_nor_the_comment(caplog):
    with caplog.at_level(logging.INFO, logger="spanguard.review.verdicts"):
        events = evaluation_events(
            verdict(
                outcome="reject",
                reason=f"the answer leaked {PII}",
                comment=PII,
                ratings={"thumbs": "down", "likert": 1},
                checklist={"factual_accuracy": False},
            )
        )
    assert "gen_ai.evaluation.explanation" not in events[0][0]
    for attributes, body in events:
        assert all(PII not in str(value) and "leaked" not in str(value) for value in attributes.values())
        assert body is not None and PII not in body
    assert "not a reason code" in caplog.text
    assert PII not in caplog.text


def test_every_event_attribute_is_declared():
    events = evaluation_events(
        verdict(
            outcome="reject",
            reason="pii_leak",
            ratings={"thumbs": "down", "likert": 2},
            checklist={"tone": True},
            response_id="r",
        )
    )
    emitted = {name for attributes, _ in events for name in attributes}
    assert emitted <= declared_attribute_names()


# --- the trace link ------------------------------------------------------------------------------------------------


def test_parent_context_is_the_reviewed_span_sampled():
    span_context = trace.get_current_span(parent_context(verdict())).get_span_context()
    assert span_context.trace_id == int(TRACE_ID, 16)
    assert span_context.span_id == int(SPAN_ID, 16)
    assert span_context.trace_flags.sampled


def test_missing_span_id_links_to_the_trace_alone():
    span_context = trace.get_current_span(parent_context(verdict(span_id=None))).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TRACE_ID, 16), 0)


@pytest.mark.parametrize("trace_id", ["xyz", TRACE_ID[:-1], TRACE_ID + "0", "0" * 32, "g" * 32, ""])
def test_invalid_trace_id_gives_no_parent_and_a_note(trace_id, caplog):
    with caplog.at_level(logging.WARNING, logger="spanguard.review.verdicts"):
        context = parent_context(verdict(trace_id=trace_id))
    assert not trace.get_current_span(context).get_span_context().is_valid
    assert trace.get_current_span(context).get_span_context().trace_id == 0
    assert "invalid trace id" in caplog.text


@pytest.mark.parametrize("span_id", ["xyz", SPAN_ID + "00", "0" * 16])
def test_invalid_span_id_links_to_the_trace_alone_with_a_note(span_id, caplog):
    with caplog.at_level(logging.WARNING, logger="spanguard.review.verdicts"):
        span_context = trace.get_current_span(parent_context(verdict(span_id=span_id))).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TRACE_ID, 16), 0)
    assert "invalid span id" in caplog.text


# --- configuration -------------------------------------------------------------------------------------------------


def test_config_defaults_send_to_the_collector_at_the_otlp_default_address():
    config = VerdictsConfig()
    assert (config.endpoint, config.protocol, config.headers, config.insecure, config.timeout_s) == (
        "auto",
        "grpc",
        {},
        True,
        10,
    )
    assert config.target == "127.0.0.1:4317" and config.auto
    http = VerdictsConfig(protocol="http/protobuf")
    assert (http.target, http.logs_url) == ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/logs")
    assert VerdictsConfig(endpoint=None).target is None


def test_auto_sends_while_a_collector_listens_at_the_default_address(monkeypatch, grpc_receiver):
    endpoint, received = grpc_receiver
    monkeypatch.setattr(verdicts_module, "DEFAULT_GRPC_ENDPOINT", endpoint)
    emitter = VerdictEmitter(VerdictsConfig(timeout_s=5))
    try:
        emitter.emit(verdict())
        assert emitter.force_flush() is True
        assert received.records()
        assert (emitter.skipped, emitter.failed) == (0, 0)
    finally:
        emitter.shutdown()


def test_auto_skips_quietly_while_nothing_listens_at_the_default_address(monkeypatch, caplog):
    monkeypatch.setattr(verdicts_module, "DEFAULT_GRPC_ENDPOINT", f"127.0.0.1:{closed_port()}")
    caplog.set_level(logging.INFO, logger="spanguard.review.verdicts")
    emitter = VerdictEmitter(VerdictsConfig(timeout_s=1))
    try:
        emitter.emit(verdict())
        emitter.emit(verdict())
        assert emitter.force_flush() is True
        assert emitter.skipped >= 2 and emitter.failed == 0  # nobody asked for them: not failures, not retried
        assert caplog.text.count("no collector listens at") == 1
    finally:
        emitter.shutdown()


@pytest.mark.parametrize(
    "fields",
    [
        {"endpont": "127.0.0.1:4317"},
        {"endpoint": "127.0.0.1:4317", "protocol": "http/json"},
        {"endpoint": "127.0.0.1:4317", "timeout_s": 0},
        {"endpoint": "127.0.0.1:4317", "timeout_s": -1},
        {"endpoint": "127.0.0.1:4317", "timeout_s": float("inf")},
        {"endpoint": "127.0.0.1:4318", "protocol": "http/protobuf"},
        {"endpoint": "ftp://collector:4317"},
        {"endpoint": "collector"},
        {"endpoint": " "},
        {"endpoint": "127.0.0.1:4317", "headers": {"bad header": "x"}},
        {"endpoint": "127.0.0.1:4317", "headers": {"x-token": "a\nb"}},
    ],
)
def test_config_validation_errors(fields):
    with pytest.raises(pydantic.ValidationError):
        VerdictsConfig(**fields)


def test_config_is_frozen():
    config = VerdictsConfig(endpoint="127.0.0.1:4317")
    with pytest.raises(pydantic.ValidationError):
        config.endpoint = "elsewhere:4317"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/logs"),
        ("http://collector:4318/", "http://collector:4318/v1/logs"),
        ("https://collector/otlp", "https://collector/otlp/v1/logs"),
        ("http://collector:4318/v1/logs", "http://collector:4318/v1/logs"),
    ],
)
def test_http_endpoint_is_the_base_url(endpoint, url):
    assert VerdictsConfig(endpoint=endpoint, protocol="http/protobuf").logs_url == url


# --- real OTLP receivers -------------------------------------------------------------------------------------------


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            assert self.headers.get("Content-Type") == "application/x-protobuf"
            request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
            received.take(request, {k.lower(): v for k, v in self.headers.items()}, self.path)
            reply = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


FULL = {
    "outcome": "reject",
    "reason": "factually_incorrect",
    "ratings": {"thumbs": "down", "likert": 2},
    "checklist": {"factual_accuracy": False, "tone": True},
    "comment": PII,
    "response_id": "chatcmpl-42",
}


def assert_verdict_events_arrived(received: Received) -> None:
    records = received.records()
    assert len(records) == 5
    for resource, scope, record in records:
        assert record.event_name == "gen_ai.evaluation.result"
        assert record.trace_id == bytes.fromhex(TRACE_ID)
        assert record.span_id == bytes.fromhex(SPAN_ID)
        assert record.flags & 0x01  # sampled
        assert resource["service.name"] == "spanguard-review"
        assert scope == "spanguard.review"
        attributes = attributes_of(record)
        assert "event.name" not in attributes  # the name is LogRecord.event_name, not an attribute
        assert attributes["spanguard.review.reviewer"] == "alice"
        assert attributes["spanguard.review.item_id"] == 7
        assert attributes["gen_ai.response.id"] == "chatcmpl-42"
        assert PII not in str(record)
    events = {attributes_of(r)["gen_ai.evaluation.name"]: attributes_of(r) for _, _, r in records}
    assert set(events) == {
        "human_review",
        "human_thumbs",
        "human_likert",
        "human_checklist.factual_accuracy",
        "human_checklist.tone",
    }
    decision = events["human_review"]
    assert decision["gen_ai.evaluation.score.label"] == "reject"
    assert decision["gen_ai.evaluation.score.value"] == 0.0
    assert decision["gen_ai.evaluation.explanation"] == "factually_incorrect"
    assert events["human_likert"]["gen_ai.evaluation.score.value"] == 2.0
    assert events["human_likert"]["gen_ai.evaluation.score.label"] == "2"
    assert events["human_checklist.tone"]["gen_ai.evaluation.score.label"] == "pass"
    bodies = {r.body.string_value for _, _, r in records}
    assert "human_review: reject" in bodies


@pytest.mark.timeout(60)
def test_end_to_end_over_otlp_grpc(grpc_receiver):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, headers={"X-Tenant": "acme"}, timeout_s=5))
    try:
        emitter.emit(verdict(**FULL))
        assert emitter.force_flush()
    finally:
        emitter.shutdown()
    assert_verdict_events_arrived(received)
    assert received.headers[0]["x-tenant"] == "acme"
    assert (emitter.emitted, emitter.failed) == (5, 0)


@pytest.mark.timeout(60)
def test_end_to_end_over_otlp_http(http_receiver):
    endpoint, received = http_receiver
    config = VerdictsConfig(
        endpoint=endpoint, protocol="http/protobuf", headers={"Authorization": "Bearer t"}, timeout_s=5
    )
    emitter = VerdictEmitter(config)
    try:
        emitter.emit(verdict(**FULL))
        assert emitter.force_flush()
    finally:
        emitter.shutdown()
    assert_verdict_events_arrived(received)
    assert received.paths == ["/v1/logs"]
    assert received.headers[0]["authorization"] == "Bearer t"


@pytest.mark.timeout(60)
def test_shutdown_exports_what_is_still_queued(grpc_receiver):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    emitter.emit(verdict())
    emitter.shutdown()
    assert [attributes_of(r)["gen_ai.evaluation.name"] for _, _, r in received.records()] == ["human_review"]


@pytest.mark.timeout(60)
def test_resource_attributes_are_added_and_may_rename_the_service(grpc_receiver):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(
        VerdictsConfig(endpoint=endpoint, timeout_s=5),
        resource_attributes={"service.name": "review-eu", "deployment.environment.name": "prod"},
    )
    emitter.emit(verdict())
    assert emitter.force_flush()
    emitter.shutdown()
    [(resource, _, _)] = received.records()
    assert resource["service.name"] == "review-eu"
    assert resource["deployment.environment.name"] == "prod"


@pytest.mark.timeout(60)
def test_invalid_ids_emit_without_a_parent_not_the_callers_span(grpc_receiver, caplog):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    tracer = TracerProvider().get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="spanguard.review.verdicts"), tracer.start_as_current_span("api"):
        emitter.emit(verdict(trace_id="not-a-trace-id", span_id="nope"))
    assert emitter.force_flush()
    emitter.shutdown()
    [(_, _, record)] = received.records()
    assert record.event_name == "gen_ai.evaluation.result"
    assert (record.trace_id, record.span_id) == (b"", b"")
    assert "invalid trace id" in caplog.text


@pytest.mark.timeout(60)
def test_span_id_missing_links_the_record_to_the_trace(grpc_receiver):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    emitter.emit(verdict(span_id=None))
    assert emitter.force_flush()
    emitter.shutdown()
    [(_, _, record)] = received.records()
    assert (record.trace_id, record.span_id) == (bytes.fromhex(TRACE_ID), b"")


@pytest.mark.timeout(60)
def test_emit_never_raises_on_a_bad_verdict_and_counts_it(grpc_receiver, caplog):
    endpoint, received = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    with caplog.at_level(logging.WARNING, logger="spanguard.review.verdicts"):
        emitter.emit(verdict(outcome=PII, comment=PII))
        emitter.emit(None)  # type: ignore[arg-type]
    assert emitter.force_flush()
    emitter.shutdown()
    assert emitter.failed == 2
    assert received.records() == []
    assert PII not in caplog.text


# --- an endpoint that is down, or does not answer ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_endpoint_down_emit_and_shutdown_do_not_raise_and_failures_are_counted(protocol):
    port = closed_port()
    endpoint = f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, protocol=protocol, timeout_s=1))
    emitter.emit(verdict(ratings={"thumbs": "up"}))
    assert emitter.force_flush(timeout_millis=20_000) is False
    assert emitter.failed == 2
    emitter.emit(verdict())
    emitter.shutdown()  # returns: bounded by the export timeout (and by the shutdown bound)


@pytest.mark.timeout(30)
def test_shutdown_is_bounded_when_the_endpoint_never_answers():
    with socket.socket() as black_hole:  # accepts connections (backlog) and never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        endpoint = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
        emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, protocol="http/protobuf", timeout_s=120))
        emitter.emit(verdict())
        emitter.shutdown(timeout_millis=1000)  # far below the export timeout: must still return
        emitter.emit(verdict())  # after shutdown: dropped, counted, no raise
        assert emitter.failed >= 1


# --- lifecycle -----------------------------------------------------------------------------------------------------


def test_disabled_emitter_does_nothing():
    emitter = VerdictEmitter(VerdictsConfig(endpoint=None))
    assert not emitter.enabled
    emitter.emit(verdict())
    assert emitter.force_flush() is True
    emitter.shutdown()
    emitter.shutdown()
    assert (emitter.emitted, emitter.failed) == (0, 0)


@pytest.mark.timeout(30)
def test_shutdown_without_any_emit():
    emitter = VerdictEmitter(VerdictsConfig(endpoint=f"127.0.0.1:{closed_port()}", timeout_s=1))
    assert emitter.enabled
    emitter.shutdown()
    assert emitter.failed == 0


@pytest.mark.timeout(30)
def test_shutdown_twice_and_flush_after_shutdown(grpc_receiver):
    endpoint, _ = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    emitter.emit(verdict())
    emitter.shutdown()
    emitter.shutdown()
    assert emitter.force_flush() is False
    emitter.emit(verdict())
    assert emitter.failed == 1


def test_the_global_logger_provider_is_left_alone(grpc_receiver):
    from opentelemetry import _logs

    before = _logs.get_logger_provider()
    endpoint, _ = grpc_receiver
    emitter = VerdictEmitter(VerdictsConfig(endpoint=endpoint, timeout_s=5))
    emitter.shutdown()
    assert _logs.get_logger_provider() is before

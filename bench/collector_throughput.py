"""Collector throughput benchmark: spanguard's collector against the floor of any Python OTLP hop, in one run.

What runs (see bench/README.md for the details and how to read the table):

* **floor**: in this process, for the same pre-built OTLP batches the load generator sends, parse
  ``ExportTraceServiceRequest`` from bytes, read the key and value of every resource, scope, span and event
  attribute, and serialize the request back. No Python OTLP hop can do less per span.
* **(a)** the collector (``python -m spanguard.collector --config <tmp>.yaml``, a subprocess) with no processors,
  exporting over OTLP/gRPC to a sink in this process that counts spans and answers success; fed by a load generator
  in another subprocess (this file, ``--generator``) that sends the pre-serialized batches over gRPC as raw bytes
  from several threads, retrying ``UNAVAILABLE`` after the ``RetryInfo`` delay. Spans/s are counted at the sink.
* **(b)** the same with ``redaction``, ``risk``, ``tail_sampling`` (rates 1.0: every trace is kept) and ``batch``.
* **overload (a)** and **overload (b)**: the same pipelines with a sending queue of 4 batches and a sink that sleeps
  on every request (0.1 s + 0.8 ms per span), so the collector has to push back, and a ``memory_limiter``
  (``limit_mib`` 320): peak RSS against that configured limit (and, for reference, what the configuration would allow
  without it: :func:`memory_bound`), and the ``UNAVAILABLE`` answers the generator got. Afterwards the sink is made fast
  again and everything the collector acknowledged must arrive, once.

The collector's peak RSS (``VmHWM`` of ``/proc/<pid>/status``) is reported for every run. Loopback only; always
exits 0: a benchmark reports, it does not assert.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import pickle
import random
import signal
import socket
import statistics
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240806
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
RETRY_INFO_TRAILER = "google.rpc.retryinfo-bin"
STATUS_DETAILS_TRAILER = "grpc-status-details-bin"
MIB = 1024 * 1024
RECEIVER_WORKERS = 16  # the gRPC receiver's worker threads (spanguard.collector.receivers.otlp.receiver._WORKERS)
SLACK_MIB = 64  # allowance in the memory estimate for gRPC buffers, thread stacks and allocator fragmentation
OVERLOAD_LIMIT_MIB = 320  # the overload runs' memory_limiter.limit_mib: their peak RSS must stay under it
OVERLOAD_SPIKE_MIB = 96  # ... and spike_limit_mib: refusing starts at 224 MiB, leaving room for requests in flight
RSS_CAP_MIB = 3072  # a run whose collector passes this is stopped (protects the machine, reported as such)
SPANS_PER_TRACE = 5
WORKERS = os.cpu_count() or 1  # (b) runs the processors in one worker process per core
PII_SHARE = 0.10
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
OVERLOAD_DELAY = 0.1  # the slow sink: seconds per request ...
OVERLOAD_DELAY_PER_SPAN = 0.0008  # ... plus per span (0.5 s for 500 spans: at most 2 000 spans/s per sending worker)

# ---------------------------------------------------------------------------------------------------------------------
# Corpus: realistic GenAI traces (invoke_agent -> chat, execute_tool, execute_tool, chat), 10 % of spans with PII

FIRST = "james mary robert patricia john jennifer michael linda david elizabeth william barbara richard susan".split()
LAST = "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez wilson".split()
MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "acme-corp.com", "example.org")
from corpus import ANSWERS, CARRIERS, PRODUCTS, QUESTIONS, SYSTEM_PROMPTS  # noqa: E402
from corpus import fill as _fill  # noqa: E402

TOOLS_READ = ("search_orders", "get_order_status", "lookup_customer", "check_inventory", "get_shipment_tracking")
TOOLS_RED = ("send_email", "refund_order")


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    style = rng.randrange(3)
    if style == 0:
        return text
    sep = " " if style == 1 else "-"
    return sep.join(text[i : i + 4] for i in range(0, 16, 4))


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


def _pii_sentence(rng: random.Random) -> tuple[str, str]:
    """A sentence carrying one PII value, and the value."""
    kind = rng.randrange(3)
    if kind == 0:
        value = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(100)}@{rng.choice(MAIL_DOMAINS)}"
        return f" You can reach me at {value} if anything is unclear.", value
    if kind == 1:
        value = _luhn_card(rng)
        return f" Please charge the card {value} again, it should work now.", value
    value = "sk-proj-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(48))
    return f" Our integration uses the key {value} for the order API.", value


@dataclass
class Batch:
    """One pre-serialized export request and where each trace's id sits in its bytes."""

    data: bytes
    spans: int
    trace_offsets: list[list[int]]


@dataclass
class Corpus:
    batches: list[Batch]
    spans: int
    pii_spans: int
    bytes: int


def _any_value(value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    if isinstance(value, dict):
        from opentelemetry.proto.common.v1.common_pb2 import KeyValueList

        return AnyValue(kvlist_value=KeyValueList(values=_attrs(value)))
    return AnyValue(string_value=str(value))


def _attrs(mapping: dict[str, Any]) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return [KeyValue(key=k, value=_any_value(v)) for k, v in mapping.items()]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _TraceWriter:
    """Adds one agent trace (invoke_agent -> chat, execute_tool, execute_tool, chat) to a ``ScopeSpans``."""

    def __init__(self, scope_spans: Any, rng: random.Random) -> None:
        self.scope_spans = scope_spans
        self.rng = rng
        self.pii_content_rate = PII_SHARE * SPANS_PER_TRACE / 4  # 4 of the 5 spans carry content
        self.spans = 0
        self.pii_spans = 0

    def add(self) -> bytes:
        """Add a trace; answer its id."""
        rng = self.rng
        self.trace_id = rng.randbytes(16)
        self.ids = [rng.randbytes(8) for _ in range(SPANS_PER_TRACE)]
        t0 = 1_722_900_000_000_000_000 + rng.randrange(10**12)
        self.session = f"sess_{_letters(rng, 16)}"
        self.model = rng.choice(("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20240620"))
        self.provider = "anthropic" if self.model.startswith("claude") else "openai"
        system = rng.choice(SYSTEM_PROMPTS)
        question = _fill(rng.choice(QUESTIONS), rng)
        tools = [rng.choice(TOOLS_READ), rng.choice(TOOLS_READ)]
        if rng.random() < 0.08:
            tools[1] = rng.choice(TOOLS_RED)
        answer = _fill(rng.choice(ANSWERS), rng)
        call_ids = [f"call_{_letters(rng, 20)}" for _ in tools]
        first_messages = [
            {"role": "system", "parts": [{"type": "text", "content": system}]},
            {"role": "user", "parts": [{"type": "text", "content": question}]},
        ]
        first_output = [
            {
                "role": "assistant",
                "parts": [
                    {"type": "tool_call", "id": cid, "name": t, "arguments": {"order_id": f"ORD-{100000 + i}"}}
                    for i, (cid, t) in enumerate(zip(call_ids, tools, strict=True))
                ],
                "finish_reason": "tool_call",
            }
        ]
        self._chat(1, t0 + 2_000_000, first_messages, first_output)
        self._tool(2, t0 + 1_600_000_000, tools[0], call_ids[0])
        self._tool(3, t0 + 2_100_000_000, tools[1], call_ids[1])
        second_messages = [
            {"role": "system", "parts": [{"type": "text", "content": system}]},
            {"role": "user", "parts": [{"type": "text", "content": question}]},
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": call_ids[0], "response": {"status": "shipped"}}],
            },
        ]
        second_output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
        self._chat(4, t0 + 2_700_000_000, second_messages, second_output)
        self._span(
            0,
            "invoke_agent support-agent",
            SPAN_KIND_INTERNAL,
            t0,
            t0 + 5_000_000_000,
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-agent",
                "gen_ai.agent.id": "asst_support_v3",
                "gen_ai.provider.name": self.provider,
                "gen_ai.request.model": self.model,
                "gen_ai.conversation.id": self.session,
            },
            False,
        )
        return self.trace_id

    def _span(self, index: int, name: str, kind: int, start: int, end: int, attributes: dict, pii: bool) -> Any:
        span = self.scope_spans.spans.add(
            trace_id=self.trace_id,
            span_id=self.ids[index],
            parent_span_id=b"" if index == 0 else self.ids[0],
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        span.attributes.extend(_attrs(attributes))
        self.spans += 1
        self.pii_spans += pii
        return span

    def _chat(self, index: int, start: int, messages: list[dict[str, Any]], output: list[dict[str, Any]]) -> None:
        rng = self.rng
        user_part = messages[1]["parts"][0]
        pii = rng.random() < self.pii_content_rate
        if pii:
            user_part["content"] += _pii_sentence(rng)[0]
        self._span(
            index,
            f"chat {self.model}",
            SPAN_KIND_CLIENT,
            start,
            start + rng.randrange(400, 3000) * 1_000_000,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": self.provider,
                "gen_ai.request.model": self.model,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 1024,
                "gen_ai.response.model": self.model,
                "gen_ai.response.id": f"chatcmpl-{_letters(rng, 24)}",
                "gen_ai.response.finish_reasons": [output[0].get("finish_reason", "stop")],
                "gen_ai.usage.input_tokens": rng.randrange(300, 2400),
                "gen_ai.usage.output_tokens": rng.randrange(20, 400),
                "gen_ai.conversation.id": self.session,
                "server.address": "api.openai.com" if self.provider == "openai" else "api.anthropic.com",
                "server.port": 443,
                "gen_ai.input.messages": _dumps(messages),
                "gen_ai.output.messages": _dumps(output),
            },
            pii,
        )

    def _tool(self, index: int, start: int, name: str, call_id: str) -> None:
        rng = self.rng
        arguments: dict[str, Any] = {"order_id": f"ORD-{rng.randrange(100000, 999999)}", "verbose": False}
        pii = rng.random() < self.pii_content_rate
        if pii:
            arguments["note"] = _pii_sentence(rng)[0].strip()
        result = {
            "status": rng.choice(("shipped", "packed", "delivered", "in_transit")),
            "carrier": rng.choice(CARRIERS),
            "eta": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "items": [{"sku": f"SKU-{rng.randrange(10000)}", "name": rng.choice(PRODUCTS), "qty": 1}],
        }
        span = self._span(
            index,
            f"execute_tool {name}",
            SPAN_KIND_INTERNAL,
            start,
            start + rng.randrange(20, 400) * 1_000_000,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": call_id,
                "gen_ai.conversation.id": self.session,
                "gen_ai.tool.call.arguments": _dumps(arguments),
                "gen_ai.tool.call.result": _dumps(result),
            },
            pii,
        )
        if rng.random() < 0.1:
            event = span.events.add(name="exception", time_unix_nano=start + 5_000_000)
            event.attributes.extend(
                _attrs({"exception.type": "TimeoutError", "exception.message": "upstream timed out"})
            )


def build_corpus(batches: int, traces_per_batch: int, seed: int = SEED) -> Corpus:
    """``batches`` export requests of ``traces_per_batch`` traces each, under one resource and scope, seeded."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = random.Random(seed)
    out: list[Batch] = []
    total_spans = pii_spans = total_bytes = 0
    for b in range(batches):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            _attrs(
                {
                    "service.name": "support-agent",
                    "service.version": f"1.{b % 4}.{rng.randrange(20)}",
                    "service.instance.id": f"pod-{rng.randrange(1000):04d}",
                    "deployment.environment.name": "production",
                    "host.name": f"ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.name": "opentelemetry",
                    "telemetry.sdk.version": "1.45.2",
                }
            )
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "spanguard.instrumentation.openai"
        scope_spans.scope.version = "0.1.0"
        writer = _TraceWriter(scope_spans, rng)
        trace_ids = [writer.add() for _ in range(traces_per_batch)]
        total_spans += writer.spans
        pii_spans += writer.pii_spans
        data = request.SerializeToString()
        offsets = []
        for trace_id in trace_ids:
            found, at = [], data.find(trace_id)
            while at >= 0:
                found.append(at)
                at = data.find(trace_id, at + 1)
            assert len(found) == SPANS_PER_TRACE, "a trace id must appear once per span"
            offsets.append(found)
        out.append(Batch(data, writer.spans, offsets))
        total_bytes += len(data)
    return Corpus(out, total_spans, pii_spans, total_bytes)


def build_log_corpus(corpus: Corpus) -> Corpus:
    """The same content as log records: one record per span of ``corpus``, under the same resource and scope.

    A chat span becomes the record the official GenAI instrumentations write in ``EVENT_ONLY`` mode
    (``gen_ai.client.inference.operation.details``, the messages as OTLP arrays of kvlists, not JSON strings); the
    other spans become records with their attributes and the span name as body. Same PII share as the spans.
    """
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    out: list[Batch] = []
    total = 0
    for batch in corpus.batches:
        traces = ExportTraceServiceRequest.FromString(batch.data)
        request = ExportLogsServiceRequest()
        records = 0
        for resource_spans in traces.resource_spans:
            resource_logs = request.resource_logs.add()
            resource_logs.resource.CopyFrom(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                scope_logs = resource_logs.scope_logs.add()
                scope_logs.scope.CopyFrom(scope_spans.scope)
                for span in scope_spans.spans:
                    record = scope_logs.log_records.add(
                        time_unix_nano=span.end_time_unix_nano,
                        observed_time_unix_nano=span.end_time_unix_nano,
                        severity_number=9,
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                    )
                    content = any(kv.key in CONTENT_KEYS for kv in span.attributes)
                    if content:
                        record.event_name = "gen_ai.client.inference.operation.details"
                    else:
                        record.body.string_value = span.name
                    for kv in span.attributes:
                        if kv.key in CONTENT_KEYS:
                            record.attributes.append(
                                KeyValue(key=kv.key, value=_any_value(json.loads(kv.value.string_value)))
                            )
                        else:
                            record.attributes.append(kv)
                    records += 1
        data = request.SerializeToString()
        out.append(Batch(data, records, []))
        total += records
    return Corpus(out, total, corpus.pii_spans, sum(len(b.data) for b in out))


def measure_normalizer(corpus: Corpus) -> dict[str, float]:
    """CPU µs per span of ``genai_normalize``'s in-process Normalizer (the collector stage's logic) on the corpus's
    spans, which are in the conventions already, and on the same spans written as OpenInference would write them."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanguard.processors import otlp
    from spanguard.processors.genai_normalize import Normalizer
    from spanguard.processors.view import with_attributes

    views = []
    for batch in corpus.batches[:8]:
        views += otlp.views_of(ExportTraceServiceRequest.FromString(batch.data).resource_spans)
    foreign = [with_attributes(view, _as_openinference(view.attributes)) for view in views]
    normalizer = Normalizer()
    out: dict[str, float] = {}
    for name, sample in (("native", views), ("openinference", foreign)):
        rounds = []
        for _ in range(3):
            started = time.process_time()
            for view in sample:
                normalizer.normalize(view)
            rounds.append((time.process_time() - started) * 1e6 / len(sample))
        out[name] = statistics.median(rounds)
    return out


def _as_openinference(attributes: dict[str, Any]) -> dict[str, Any]:
    """A span's conventions' attributes as OpenInference's OpenAI instrumentation writes them (llm.*, tool.*)."""
    out: dict[str, Any] = {}
    operation = attributes.get("gen_ai.operation.name")
    out["openinference.span.kind"] = {"chat": "LLM", "execute_tool": "TOOL", "invoke_agent": "AGENT"}.get(
        str(operation), "CHAIN"
    )
    for key, value in attributes.items():
        if key in ("gen_ai.input.messages", "gen_ai.output.messages"):
            side = "input" if key == "gen_ai.input.messages" else "output"
            for n, message in enumerate(json.loads(value)):
                out[f"llm.{side}_messages.{n}.message.role"] = message.get("role", "")
                for part in message.get("parts", []):
                    if part.get("type") == "text":
                        out[f"llm.{side}_messages.{n}.message.content"] = part.get("content", "")
                    elif part.get("type") == "tool_call":
                        at = f"llm.{side}_messages.{n}.message.tool_calls.0.tool_call"
                        out[f"{at}.id"] = part.get("id", "")
                        out[f"{at}.function.name"] = part.get("name", "")
                        out[f"{at}.function.arguments"] = _dumps(part.get("arguments", {}))
        elif key == "gen_ai.request.model":
            out["llm.model_name"] = value
        elif key == "gen_ai.tool.name":
            out["tool.name"] = value
        elif key == "gen_ai.tool.call.arguments":
            out["input.value"] = value
        elif key == "gen_ai.tool.call.result":
            out["output.value"] = value
        elif key == "gen_ai.conversation.id":
            out["session.id"] = value
        elif key.startswith("gen_ai.usage."):
            out["llm.token_count." + ("prompt" if "input" in key else "completion")] = value
    return out


# PII that the corpus plants, as the sink looks for it in what arrives (checked on a sample of requests). RE2 scans in
# linear time: Python's re backtracks on every run of word characters before an "@", and the sink shares the cores.
PII_PATTERN = re2.compile(
    rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}|sk-proj-[A-Za-z0-9]{20,}|\b4\d{3}(?:[ -]?\d{4}){3}\b"
)


def patch_trace_ids(data: bytes, offsets: list[list[int]], seq: int) -> bytes:
    """``data`` with the last 8 bytes of every trace id replaced by (send number, trace index): unique traces."""
    buf = bytearray(data)
    head = struct.pack(">I", seq & 0xFFFFFFFF)
    for index, where in enumerate(offsets):
        tail = head + struct.pack(">I", index)
        for at in where:
            buf[at + 8 : at + 16] = tail
    return bytes(buf)


# ---------------------------------------------------------------------------------------------------------------------
# The floor: parse, read every attribute, serialize


def _read_value(value: Any) -> int:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return sum(_read_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return sum(len(kv.key) + _read_value(kv.value) for kv in value.kvlist_value.values)
    if kind is None:
        return 0
    getattr(value, kind)
    return 1


def _walk(attributes: Any) -> int:
    n = 0
    for kv in attributes:
        kv.key  # noqa: B018 - reading is the point
        n += _read_value(kv.value)
    return n


def floor_pass(batches: list[bytes]) -> int:
    """One pass over ``batches``: the spans handled."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = 0
    for data in batches:
        request = ExportTraceServiceRequest.FromString(data)
        for resource in request.resource_spans:
            _walk(resource.resource.attributes)
            for scope in resource.scope_spans:
                _walk(scope.scope.attributes)
                for span in scope.spans:
                    _walk(span.attributes)
                    for event in span.events:
                        _walk(event.attributes)
                    for link in span.links:
                        _walk(link.attributes)
                    spans += 1
        request.SerializeToString()
    return spans


def measure_floor(corpus: Corpus, seconds: float, rounds: int = 5) -> dict[str, Any]:
    data = [b.data for b in corpus.batches]
    floor_pass(data[:2])  # warm-up
    results = []
    for _ in range(rounds):
        spans, start = 0, time.perf_counter()
        while True:
            spans += floor_pass(data)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / rounds:
                break
        results.append(spans / elapsed)
    return {
        "spans_per_s": statistics.median(results),
        "rounds": results,
        "us_per_span": 1e6 / statistics.median(results),
    }


# ---------------------------------------------------------------------------------------------------------------------
# The sink: a minimal OTLP/gRPC trace service that counts spans and answers success


class Sink:
    def __init__(self) -> None:
        self.delay = 0.0  # seconds per request
        self.delay_per_span = 0.0  # and per span: a backend slow in proportion to what it gets
        self.track_unique = False
        self.pii_sample_every = 10
        self._lock = threading.Lock()
        self.reset()
        self._server: Any = None
        self.port = 0

    def reset(self) -> None:
        with self._lock:
            self.spans = 0
            self.requests = 0
            self.pii_checked = 0
            self.pii_found = 0
            self.unique: set[bytes] = set()
            self.duplicates = 0

    def delivered(self) -> int:
        """Spans arrived: distinct ones when tracked."""
        with self._lock:
            return len(self.unique) if self.track_unique else self.spans

    def start(self) -> None:
        import grpc

        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="sink"),
            options=[("grpc.max_receive_message_length", -1)],
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # raw bytes in, raw bytes out
        logs = grpc.unary_unary_rpc_method_handler(self._export_logs)
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": handler}),
                grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": logs}),
            )
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)

    def _export_logs(self, body: bytes, context: Any) -> bytes:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        request = ExportLogsServiceRequest.FromString(body)
        records = sum(len(scope.log_records) for resource in request.resource_logs for scope in resource.scope_logs)
        with self._lock:
            self.spans += records  # the sink counts items: spans or log records
            self.requests += 1
            check = (self.requests - 1) % self.pii_sample_every == 0
        if check:
            found = PII_PATTERN.search(body) is not None
            with self._lock:
                self.pii_checked += 1
                self.pii_found += found
        return b""

    def _export(self, body: bytes, context: Any) -> bytes:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(body)
        spans = 0
        keys: list[bytes] = []
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                spans += len(scope.spans)
                if self.track_unique:
                    keys.extend(s.trace_id + s.span_id for s in scope.spans)
        if self.delay or self.delay_per_span:
            time.sleep(self.delay + self.delay_per_span * spans)
        with self._lock:
            self.spans += spans
            self.requests += 1
            check = (self.requests - 1) % self.pii_sample_every == 0
            if keys:
                before = len(self.unique)
                self.unique.update(keys)
                self.duplicates += len(keys) - (len(self.unique) - before)
        if check:
            found = PII_PATTERN.search(body) is not None
            with self._lock:
                self.pii_checked += 1
                self.pii_found += found
        return b""  # an empty ExportTraceServiceResponse: full success


# ---------------------------------------------------------------------------------------------------------------------
# The load generator (a subprocess: this file with --generator)


def _retry_delay(error: Any) -> float | None:
    from google.rpc import error_details_pb2, status_pb2

    try:
        trailers = error.trailing_metadata() or ()
    except Exception:
        return None
    for key, value in trailers:
        if key == RETRY_INFO_TRAILER:
            info = error_details_pb2.RetryInfo.FromString(value)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    for key, value in trailers:
        if key == STATUS_DETAILS_TRAILER:
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def generator_main(args: argparse.Namespace) -> int:
    import grpc

    with open(args.generator, "rb") as f:
        batches: list[tuple[bytes, int, list[list[int]]]] = pickle.load(f)
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 64 * MIB)]
    channels = [grpc.insecure_channel(args.target, options=options) for _ in range(max(1, args.channels))]
    method = args.method or EXPORT_METHOD
    exports = [ch.unary_unary(method, request_serializer=None, response_deserializer=None) for ch in channels]
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"acked_spans": 0, "requests": 0, "unavailable": 0, "other_errors": 0, "codes": {}, "retry_delays": []}
    seq = itertools.count(1)

    def worker(index: int) -> None:
        export = exports[index % len(exports)]
        position = index
        while not stop.is_set():
            data, spans, offsets = batches[position % len(batches)]
            position += args.streams
            body = patch_trace_ids(data, offsets, next(seq))
            while not stop.is_set():
                try:
                    export(body, timeout=60)
                except grpc.RpcError as error:
                    code = error.code()
                    with lock:
                        stats["codes"][code.name] = stats["codes"].get(code.name, 0) + 1
                    if code == grpc.StatusCode.UNAVAILABLE:
                        delay = _retry_delay(error)
                        with lock:
                            stats["unavailable"] += 1
                            if delay is not None and len(stats["retry_delays"]) < 1000:
                                stats["retry_delays"].append(delay)
                        stop.wait(min(delay if delay is not None else 0.1, 10.0))
                    else:
                        with lock:
                            stats["other_errors"] += 1
                        stop.wait(0.2)
                    continue
                with lock:
                    stats["acked_spans"] += spans
                    stats["requests"] += 1
                break

    def report(final: bool = False) -> None:
        with lock:
            line = {k: v for k, v in stats.items() if k != "retry_delays"}
            if final:
                delays = stats["retry_delays"]
                line["retry_delay_median"] = statistics.median(delays) if delays else None
        line["t"] = time.monotonic()
        line["final"] = final
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.streams)]
    for t in threads:
        t.start()

    def reporter() -> None:
        while not stop.wait(0.25):
            report()

    threading.Thread(target=reporter, daemon=True).start()
    sys.stdin.read()  # runs until the benchmark closes our stdin
    stop.set()
    for t in threads:
        t.join(5)
    report(final=True)
    for ch in channels:
        ch.close()
    return 0


_CHILDREN: list[subprocess.Popen] = []


@atexit.register
def _kill_children() -> None:
    """Never leave a collector or generator of ours running (a crash of the benchmark included)."""
    for proc in _CHILDREN:
        if proc.poll() is None:
            proc.kill()


class Generator:
    """The load generator subprocess, and its latest progress line."""

    def __init__(self, batches_file: Path, target: str, streams: int, channels: int, method: str = EXPORT_METHOD):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--generator",
                str(batches_file),
                "--target",
                target,
                "--streams",
                str(streams),
                "--channels",
                str(channels),
                "--method",
                method,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _CHILDREN.append(self.proc)
        self.latest: dict[str, Any] = {"acked_spans": 0, "unavailable": 0, "requests": 0, "other_errors": 0}
        self.final: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            self.latest = data
            if data.get("final"):
                self.final = data

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        if self.final is None:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"load generator ended without a report: {err[-2000:]}")
        return self.final


# ---------------------------------------------------------------------------------------------------------------------
# The collector subprocess

PROFILE_BOOTSTRAP = r"""
import cProfile, os, pstats, runpy, sys, threading, time
out = os.environ["SPANGUARD_BENCH_PROFILE"]
profilers = []
_lock = threading.Lock()
_run = threading.Thread.run
def _profiled_run(self):
    p = cProfile.Profile(time.thread_time)  # CPU time of the thread: waits for the GIL or I/O do not count
    with _lock:
        profilers.append(p)
    p.enable()
    try:
        _run(self)
    finally:
        p.disable()
threading.Thread.run = _profiled_run
main = cProfile.Profile(time.thread_time)
profilers.append(main)
main.enable()
try:
    runpy.run_module("spanguard.collector", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    main.disable()
    stats = None
    for p in list(profilers):
        try:
            p.create_stats()
            if not p.stats:
                continue
            stats = pstats.Stats(p) if stats is None else (stats.add(p) or stats)
        except Exception as error:
            print("profile:", type(error).__name__, error, file=sys.stderr)
    if stats is not None:
        stats.dump_stats(out)
"""


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _proc_status(pid: int, field_name: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the collector's pipeline workers)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(child) for child in f.read().split())
    except (OSError, ValueError):
        pass
    return out


def _cpu_seconds(pid: int) -> float | None:
    """CPU time of ``pid`` and of its live children (user + system)."""
    total = 0.0
    for index, each in enumerate([pid, *_children(pid)]):
        try:
            with open(f"/proc/{each}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            if index == 0:
                return None
    return total


def _scrape(port: int) -> dict[str, float]:
    """Prometheus text as ``{'name{labels}': value}``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def _metric(metrics: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, value in metrics.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


@dataclass
class Scenario:
    key: str
    title: str
    processors: bool
    overload: bool = False
    queue_size: int = 1000
    num_consumers: int = 2
    sink_delay: float = 0.0
    sink_delay_per_span: float = 0.0
    max_spans: int = 1_000_000
    max_traces: int = 50_000
    workers: int = 1
    signal: str = "traces"
    pipeline: str | None = None  # the processors, when not those of (a) or (b)


def collector_config(scenario: Scenario, ports: dict[str, int], sink_port: int, gzip: bool) -> str:
    processors = ""
    pipeline_processors = "[]"
    limiter = (
        f"  memory_limiter: {{limit_mib: {OVERLOAD_LIMIT_MIB}, spike_limit_mib: {OVERLOAD_SPIKE_MIB}, "
        "check_interval: 0.1s}\n"
        if scenario.overload
        else ""
    )
    if scenario.overload and not scenario.processors:
        processors = "\nprocessors:\n" + limiter
        pipeline_processors = "[memory_limiter]"
    if scenario.processors:
        processors = f"""
processors:
{limiter}  redaction: {{}}
  risk: {{}}
  tail_sampling:
    decision_wait: 1s
    root_grace: 0.2s
    poll_interval: 0.1
    green_rate: 1.0
    yellow_rate: 1.0
    max_spans: {scenario.max_spans}
    max_traces: {scenario.max_traces}
  batch: {{}}
  genai_normalize: {{}}
"""
        pipeline_processors = "[redaction, risk, tail_sampling, batch]"
        if scenario.overload:
            pipeline_processors = "[memory_limiter, redaction, risk, tail_sampling, batch]"
    if scenario.pipeline is not None:
        pipeline_processors = scenario.pipeline
    return f"""# written by bench/collector_throughput.py ({scenario.title})
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{ports["grpc"]}"}}
{processors}
exporters:
  otlp/sink:
    endpoint: "127.0.0.1:{sink_port}"
    tls: {{insecure: true}}
    compression: {"gzip" if gzip else "none"}
    sending_queue: {{queue_size: {scenario.queue_size}, num_consumers: {scenario.num_consumers}}}
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports["health"]}"}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: "127.0.0.1:{ports["metrics"]}"}}
    logs: {{level: warn}}
  pipelines:
    {scenario.signal}:
      receivers: [otlp]
      processors: {pipeline_processors}
      exporters: [otlp/sink]{f"{chr(10)}      workers: {scenario.workers}" if scenario.signal == "traces" else ""}
"""


class CollectorProcess:
    def __init__(self, config_text: str, workdir: Path, name: str, profile_path: Path | None = None) -> None:
        self.config_path = workdir / f"collector-{name}.yaml"
        self.config_path.write_text(config_text)
        self.log_path = workdir / f"collector-{name}.log"
        self._log = open(self.log_path, "w")  # closed in stop()
        env = dict(os.environ)
        args = [sys.executable, "-m", "spanguard.collector", "--config", str(self.config_path)]
        if profile_path is not None:
            env["SPANGUARD_BENCH_PROFILE"] = str(profile_path)
            args = [sys.executable, "-c", PROFILE_BOOTSTRAP, "--config", str(self.config_path)]
        args += ["--shutdown-timeout", "5"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log, env=env, cwd=workdir)
        self.pid = self.proc.pid
        _CHILDREN.append(self.proc)

    def wait_healthy(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"collector not healthy after {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    def rss(self) -> int | None:
        return self._summed("VmRSS")

    def hwm(self) -> int | None:
        # With workers, the sum of every process's peak: at least the peak of the sum, never less.
        return self._summed("VmHWM")

    def _summed(self, field_name: str) -> int | None:
        own = _proc_status(self.pid, field_name)
        if own is None:
            return None
        return own + sum(_proc_status(child, field_name) or 0 for child in _children(self.pid))

    def cpu(self) -> float | None:
        return _cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class RssMonitor(threading.Thread):
    """Samples the collector's RSS; kills it past ``cap`` bytes (the run is then reported as stopped at the cap)."""

    def __init__(self, collector: CollectorProcess, cap: int) -> None:
        super().__init__(daemon=True)
        self.collector = collector
        self.cap = cap
        self.max_rss = 0
        self.samples: list[tuple[float, int]] = []
        self.killed = False
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            rss = self.collector.rss()
            if rss is None:
                return
            self.max_rss = max(self.max_rss, rss)
            if len(self.samples) < 5000:
                self.samples.append((round(time.monotonic() - self._t0, 2), rss))
            if rss > self.cap and not self.killed:
                self.killed = True
                self.collector.proc.kill()
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


# ---------------------------------------------------------------------------------------------------------------------
# Memory: the per-batch and per-span estimates the overload bound is made of


def _own_rss() -> int:
    return _proc_status(os.getpid(), "VmRSS") or 0


def measure_memory(corpus: Corpus) -> dict[str, float]:
    """Bytes one batch takes in memory parsed (plus its bytes) and, for tail sampling, per buffered span (views)."""
    import gc

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanguard.processors import otlp

    batches = [b.data for b in corpus.batches] * max(1, 40 // len(corpus.batches) + 1)
    batches = batches[:40]
    gc.collect()
    before = _own_rss()
    parsed = [ExportTraceServiceRequest.FromString(d) for d in batches]
    for request in parsed:  # touch every message (upb materialises Python wrappers lazily)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    span.attributes  # noqa: B018
    after_parse = _own_rss()
    views = [otlp.views_of(request.resource_spans) for request in parsed]
    after_views = _own_rss()
    spans = sum(len(v) for v in views)
    del views, parsed
    gc.collect()
    size = statistics.mean(len(d) for d in batches)
    parsed_bytes = max(0, after_parse - before) / len(batches)
    view_bytes = max(0, after_views - after_parse) / spans
    return {
        "batch_bytes": size,
        "parsed_batch_bytes": parsed_bytes,
        "batch_in_memory_bytes": size + parsed_bytes,
        "view_bytes_per_span": view_bytes,
        "buffered_span_bytes": view_bytes + (size + parsed_bytes) / corpus.batches[0].spans,
    }


def memory_bound(scenario: Scenario, baseline: int, mem: dict[str, float]) -> tuple[int, str]:
    """What the collector would hold under overload without a memory limiter (printed beside the configured limit)."""
    items = scenario.queue_size + RECEIVER_WORKERS
    bound = baseline + items * mem["batch_in_memory_bytes"] + SLACK_MIB * MIB
    text = (
        f"idle RSS {baseline / MIB:.0f} MiB + (queue_size {scenario.queue_size} + {RECEIVER_WORKERS} receiver workers)"
        f" x {mem['batch_in_memory_bytes'] / MIB:.2f} MiB/batch + {SLACK_MIB} MiB slack"
    )
    if scenario.processors:
        bound += scenario.max_spans * mem["buffered_span_bytes"]
        text += f" + tail_sampling max_spans {scenario.max_spans} x {mem['buffered_span_bytes'] / 1024:.1f} KiB/span"
    return int(bound), text


# ---------------------------------------------------------------------------------------------------------------------
# One run


@dataclass
class Snapshot:
    t: float
    sink_spans: int
    generator_acked: int
    accepted: float
    collector_cpu: float
    generator_cpu: float
    bench_cpu: float
    rss: int
    metrics: dict[str, float]


@dataclass
class RunResult:
    key: str
    title: str
    ok: bool = True
    error: str = ""
    spans_per_s: float = 0.0  # at the sink
    accepted_per_s: float = 0.0  # acknowledged to the generator (receiver metric)
    generator_acked_per_s: float = 0.0
    peak_rss: int = 0
    idle_rss: int = 0
    bound: int | None = None
    bound_text: str = ""
    killed_at_cap: bool = False
    unavailable: int = 0
    other_errors: int = 0
    retry_delay_median: float | None = None
    acked_total: int = 0
    delivered_total: int = 0  # spans that arrived at the sink, from the start of the run
    delivered_unique: int | None = None  # distinct (trace id, span id) among them (when tracked)
    duplicates: int | None = None
    missing: int = 0  # acknowledged to the generator, never arrived (after the drain)
    drained: bool = False
    pii_checked: int = 0
    pii_found: int = 0
    collector_cores: float = 0.0
    generator_cores: float = 0.0
    sink_cores: float = 0.0
    collector_cpu_us_per_span: float = 0.0
    rss_growth_per_s: float = 0.0  # bytes/s over the measured window
    rss_window: tuple[int, int] = (0, 0)
    metrics: dict[str, float] = field(default_factory=dict)
    rss_samples: list[tuple[float, int]] = field(default_factory=list)


def run_scenario(
    scenario: Scenario,
    sink: Sink,
    batches_file: Path,
    workdir: Path,
    args: argparse.Namespace,
    mem: dict[str, float],
    log: Callable[[str], None],
    profile_path: Path | None = None,
) -> RunResult:
    result = RunResult(scenario.key, scenario.title)
    sink.reset()
    sink.delay = scenario.sink_delay
    sink.delay_per_span = scenario.sink_delay_per_span
    sink.pii_sample_every = 1 if scenario.processors else 5
    # (a) is too fast to track every span id; log records repeat their ids when the batches are sent again.
    sink.track_unique = (scenario.overload or scenario.processors) and scenario.signal == "traces"
    ports = dict(zip(("grpc", "health", "metrics"), _free_ports(3), strict=True))
    collector = CollectorProcess(
        collector_config(scenario, ports, sink.port, args.gzip), workdir, scenario.key, profile_path
    )
    monitor = None
    generator = None
    try:
        collector.wait_healthy(ports["health"])
        time.sleep(0.3)
        result.idle_rss = collector.rss() or 0
        if scenario.overload:
            estimate, how = memory_bound(scenario, result.idle_rss, mem)
            result.bound = OVERLOAD_LIMIT_MIB * MIB
            result.bound_text = (
                f"memory_limiter limit_mib {OVERLOAD_LIMIT_MIB} (refusing above"
                f" {OVERLOAD_LIMIT_MIB - OVERLOAD_SPIKE_MIB} MiB); without it the configuration allows about"
                f" {estimate / MIB:.0f} MiB ({how})"
            )
        monitor = RssMonitor(collector, RSS_CAP_MIB * MIB)
        monitor.start()
        generator = Generator(
            batches_file.with_name("log-batches.pickle") if scenario.signal == "logs" else batches_file,
            f"127.0.0.1:{ports['grpc']}",
            args.streams,
            args.channels,
            LOGS_EXPORT_METHOD if scenario.signal == "logs" else EXPORT_METHOD,
        )

        def snapshot() -> Snapshot:
            metrics = _scrape(ports["metrics"])
            return Snapshot(
                time.monotonic(),
                sink.spans,
                int(generator.latest.get("acked_spans", 0)),
                _metric(metrics, "spanguard_receiver_accepted_spans_total"),
                collector.cpu() or 0.0,
                _cpu_seconds(generator.proc.pid) or 0.0,
                time.process_time(),
                collector.rss() or 0,
                metrics,
            )

        warmup = args.warmup + (1.5 if scenario.processors else 0.0)  # tail sampling holds traces ~0.2-1 s
        time.sleep(warmup)
        first = snapshot()
        time.sleep(args.seconds)
        last = snapshot()
        elapsed = last.t - first.t
        result.spans_per_s = (last.sink_spans - first.sink_spans) / elapsed
        result.accepted_per_s = (last.accepted - first.accepted) / elapsed
        result.generator_acked_per_s = (last.generator_acked - first.generator_acked) / elapsed
        result.collector_cores = (last.collector_cpu - first.collector_cpu) / elapsed
        result.generator_cores = (last.generator_cpu - first.generator_cpu) / elapsed
        result.sink_cores = (last.bench_cpu - first.bench_cpu) / elapsed
        result.rss_growth_per_s = (last.rss - first.rss) / elapsed
        result.rss_window = (first.rss, last.rss)
        if result.spans_per_s > 0:
            result.collector_cpu_us_per_span = 1e6 * result.collector_cores / max(result.spans_per_s, 1e-9)
        final = generator.stop()
        generator = None
        result.unavailable = int(final.get("unavailable", 0))
        result.other_errors = int(final.get("other_errors", 0))
        result.retry_delay_median = final.get("retry_delay_median")
        result.acked_total = int(final.get("acked_spans", 0))
        result.metrics = {
            "generator_codes": final.get("codes", {}),  # type: ignore[dict-item]
            # gauges at the end of the measured window (while under load)
            "window_end_queue_batches": _metric(last.metrics, "spanguard_exporter_queue_size"),
            "window_end_buffered_traces": _metric(last.metrics, "spanguard_sampling_buffered_traces"),
        }
        # Drain: the sink is fast again; everything acknowledged must arrive.
        sink.delay = sink.delay_per_span = 0.0
        deadline = time.monotonic() + args.drain_timeout
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline and collector.proc.poll() is None:
            count = sink.delivered()
            if count >= result.acked_total:
                break
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > 5.0:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        result.delivered_total = sink.spans
        if sink.track_unique:
            result.delivered_unique = len(sink.unique)
            result.duplicates = sink.duplicates
        result.missing = max(0, result.acked_total - sink.delivered())
        result.drained = result.missing == 0
        result.pii_checked, result.pii_found = sink.pii_checked, sink.pii_found
        metrics = _scrape(ports["metrics"])
        result.metrics.update(
            {
                "receiver_accepted": _metric(metrics, "spanguard_receiver_accepted_spans_total"),
                "receiver_refused_backpressure": _metric(
                    metrics, "spanguard_receiver_refused_spans_total", reason="backpressure"
                ),
                "exporter_sent": _metric(metrics, "spanguard_exporter_sent_spans_total"),
                "exporter_failed": _metric(metrics, "spanguard_exporter_send_failed_spans_total"),
                "sampling_kept": _metric(metrics, "spanguard_sampling_decisions_total", kept="true"),
                "sampling_dropped": _metric(metrics, "spanguard_sampling_decisions_total", kept="false"),
                "sampling_early": _metric(metrics, "spanguard_sampling_early_decisions_total"),
                "redacted": _metric(metrics, "spanguard_redaction_redacted_total"),
            }
        )
        result.peak_rss = max(collector.hwm() or 0, monitor.max_rss)
    except Exception as error:
        result.ok = False
        result.error = f"{type(error).__name__}: {error}"
    finally:
        try:
            if generator is not None:
                try:
                    generator.stop()
                except Exception:
                    generator.proc.kill()
            if monitor is not None:
                monitor.stop()
                result.killed_at_cap = monitor.killed
                result.rss_samples = monitor.samples
                result.peak_rss = max(result.peak_rss, monitor.max_rss)
            if result.killed_at_cap:
                result.ok = False
                result.error = f"collector stopped by the benchmark at RSS > {RSS_CAP_MIB} MiB"
        finally:
            code = collector.stop()
        if code not in (0, None, -9) and result.ok:
            log(f"[yellow]collector ({scenario.key}) exited with {code}: {collector.log_tail()[-500:]}")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Report


def _mib(n: int | float | None) -> str:
    return "-" if not n else f"{n / MIB:.0f}"


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[dim]N/A[/dim]"
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def report(console: Any, floor: dict[str, Any], results: dict[str, RunResult], corpus: Corpus, args: Any) -> dict:
    from rich.table import Table

    floor_rate = floor["spans_per_s"]
    table = Table(title="spanguard collector throughput (spans/s at the sink)", show_lines=False)
    for column, justify in (
        ("run", "left"),
        ("spans/s", "right"),
        ("x floor", "right"),
        ("accepted/s", "right"),
        ("collector cores", "right"),
        ("CPU µs/span", "right"),
        ("peak RSS MiB", "right"),
        ("UNAVAILABLE", "right"),
        ("acked → arrived", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_row(
        "floor: parse + walk attributes + serialize (1 thread, in-process)",
        f"{floor_rate:,.0f}",
        "1.00",
        "",
        "1.00",
        f"{floor['us_per_span']:.1f}",
        "",
        "",
        "",
    )
    for r in results.values():
        if not r.ok and not r.spans_per_s:
            table.add_row(r.title, f"[red]error[/red]: {r.error}", "", "", "", "", _mib(r.peak_rss), "", "")
            continue
        arrived = f"{r.acked_total:,} → {r.delivered_total:,}"
        problems = []
        if r.missing:
            problems.append(f"{r.missing:,} lost")
        if r.duplicates:
            problems.append(f"{r.duplicates:,} dup")
        if problems:
            arrived = f"[red]{arrived} ({', '.join(problems)})[/red]"
        table.add_row(
            r.title,
            f"{r.spans_per_s:,.0f}",
            "" if r.key.startswith("overload") else f"{r.spans_per_s / floor_rate:.2f}",
            f"{r.accepted_per_s:,.0f}",
            f"{r.collector_cores:.2f}",
            f"{r.collector_cpu_us_per_span:.1f}" if r.spans_per_s else "-",
            _mib(r.peak_rss) + (f" / {_mib(r.bound)}" if r.bound else ""),
            f"{r.unavailable:,}",
            arrived,
        )
    console.print(table)
    console.print(
        f"floor: median of {len(floor['rounds'])} rounds measured before and after the runs "
        f"(before {floor['before']:,.0f}, after {floor['after']:,.0f}, range {min(floor['rounds']):,.0f}"
        f"-{max(floor['rounds']):,.0f} spans/s)"
    )
    console.print(
        f"corpus: {len(corpus.batches)} batches x {corpus.batches[0].spans} spans "
        f"({corpus.bytes / len(corpus.batches) / 1024:.0f} KiB/batch, {corpus.bytes / corpus.spans:.0f} B/span), "
        f"{corpus.pii_spans / corpus.spans:.1%} of spans with PII; generator: {args.streams} streams over "
        f"{args.channels} channel(s), trace ids made unique per send; exporter compression: "
        f"{'gzip' if args.gzip else 'none'}; {os.cpu_count()} cores"
    )
    for r in results.values():
        extra = []
        if r.pii_checked:
            extra.append(f"PII at the sink in {r.pii_found}/{r.pii_checked} sampled requests")
        m = r.metrics
        if m.get("sampling_kept") or m.get("sampling_dropped"):
            extra.append(f"traces kept {m['sampling_kept']:,.0f}, dropped {m['sampling_dropped']:,.0f}")
            extra.append(
                f"{m.get('window_end_buffered_traces', 0):,.0f} traces awaiting a decision at the window's end"
            )
        extra.append(f"{m.get('window_end_queue_batches', 0):,.0f} batches in the sending queue at the window's end")
        if m.get("sampling_early"):
            extra.append(f"decided early {m['sampling_early']:,.0f}")
        if m.get("redacted"):
            extra.append(f"values redacted {m['redacted']:,.0f}")
        if m.get("receiver_refused_backpressure"):
            extra.append(f"refused (backpressure) {m['receiver_refused_backpressure']:,.0f} spans")
        if r.retry_delay_median is not None:
            extra.append(f"RetryInfo delay median {r.retry_delay_median:.1f}s")
        if r.other_errors:
            extra.append(f"[red]other errors {r.other_errors} {m.get('generator_codes')}[/red]")
        extra.append(
            f"RSS idle {_mib(r.idle_rss)} MiB, {_mib(r.rss_window[0])} → {_mib(r.rss_window[1])} MiB over the window "
            f"({r.rss_growth_per_s / MIB:+.1f} MiB/s); generator {r.generator_cores:.2f} cores, sink {r.sink_cores:.2f}"
        )
        if r.bound:
            extra.append(r.bound_text)
        if r.error:
            extra.append(f"[red]{r.error}[/red]")
        console.print(f"  {r.title}: " + "; ".join(extra))

    def ratio(key: str) -> float | None:
        r = results.get(key)
        return r.spans_per_s / floor_rate if r is not None and r.spans_per_s else None

    checks = []
    ra, rb = ratio("a"), ratio("b")
    checks.append(("(a) no processors >= 1/2 of the floor", ra, None if ra is None else ra >= 0.5))
    checks.append(
        ("(b) redaction + risk + tail sampling + batch >= 1/5 of the floor", rb, None if rb is None else rb >= 0.2)
    )
    for key in ("overload_a", "overload_b"):
        r = results.get(key)
        if r is None:
            continue
        ok = None if not r.bound or not r.peak_rss else (r.peak_rss <= r.bound and not r.killed_at_cap)
        checks.append((f"{r.title}: peak RSS under the memory limit", (r.peak_rss, r.bound), ok))
    console.print()
    if args.profile:
        console.print("[yellow]profiled run: the collector ran under cProfile, its numbers are not comparable[/yellow]")
        checks = []
    else:
        console.print("[bold]targets[/bold]")
    for text, value, ok in checks:
        if isinstance(value, tuple):
            shown = f"{_mib(value[0])} MiB vs {_mib(value[1])} MiB"
        elif value is None:
            shown = "n/a"
        else:
            shown = f"{value:.2f} x floor"
        console.print(f"  {_verdict(ok)}  {text}: {shown}")
    return {
        "floor": floor,
        "runs": {k: {kk: vv for kk, vv in r.__dict__.items()} for k, r in results.items()},
        "targets": [{"target": t, "value": v, "pass": ok} for t, v, ok in checks],
        "corpus": {
            "batches": len(corpus.batches),
            "spans_per_batch": corpus.batches[0].spans,
            "bytes_per_batch": corpus.bytes / len(corpus.batches),
            "pii_share": corpus.pii_spans / corpus.spans,
        },
    }


def signals_report(console: Any, results: dict[str, RunResult], normalizer: dict[str, float]) -> None:
    """The logs run against the traces run with the same processors, and the normaliser's share of the pipeline."""
    console.print("[bold]signals and sources[/bold]")
    logs, traces = results.get("logs"), results.get("rb")
    if logs is not None and traces is not None and traces.spans_per_s:
        ratio = logs.spans_per_s / traces.spans_per_s
        console.print(
            f"  {_verdict(ratio >= 0.8)}  logs run within 20 % of the traces run with the same processors: "
            f"{logs.spans_per_s:,.0f} records/s vs {traces.spans_per_s:,.0f} spans/s = {ratio:.2f} "
            f"(CPU {logs.collector_cpu_us_per_span:.1f} vs {traces.collector_cpu_us_per_span:.1f} µs per item; "
            f"PII found in {logs.pii_found} of {logs.pii_checked} sampled log requests)"
        )
    else:
        console.print("  (run --runs rb,logs to compare the logs run with the traces run)")
    pipeline = next((results[k] for k in ("b1", "b") if k in results and results[k].spans_per_s), None)
    for name, cost in normalizer.items():
        line = f"  normaliser, {name} spans: {cost:.1f} µs/span (in-process, median of 3)"
        if pipeline is not None:
            share = cost / pipeline.collector_cpu_us_per_span
            line = (
                f"  {_verdict(share <= 0.10)}  normaliser, {name} spans: {cost:.1f} µs/span = {share:.0%} of "
                f"{pipeline.key}'s {pipeline.collector_cpu_us_per_span:.1f} CPU µs/span (target <= 10 %)"
            )
        console.print(line)
    normalized = results.get("n1")
    if normalized is not None and pipeline is not None and normalized.spans_per_s:
        extra = normalized.collector_cpu_us_per_span - pipeline.collector_cpu_us_per_span
        console.print(
            f"  (n) with genai_normalize first: {normalized.collector_cpu_us_per_span:.1f} CPU µs/span, "
            f"{extra:+.1f} against {pipeline.key} (one run each: the noise is several µs)"
        )


def print_profile(console: Any, path: Path, top: int = 30) -> None:
    import io
    import pstats

    if not path.exists():
        console.print("[red]no profile written[/red]")
        return
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    console.print(buffer.getvalue(), markup=False, highlight=False)
    # The pipeline's stages (their cumulative CPU time; the stages run in different threads and do not nest, except
    # where noted), as a share of the CPU time of all threads but the main one (which only starts and waits).
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    work = sum(
        ct for (file, _, name), (_, _, _, ct, _) in raw.items() if name == "run" and file.endswith("threading.py")
    )
    stages = (
        ("receiver: request handling, all of it", "receivers/otlp/receiver.py", "_decode_and_consume"),
        ("  decode (protobuf parse)", "receivers/otlp/receiver.py", "_decode_protobuf"),
        ("  validate span ids", "receivers/otlp/receiver.py", "_remove_invalid_spans"),
        ("  split between pipeline workers (encode_parts)", "processors/otlp.py", "encode_parts"),
        ("  redaction stage", "processors/otlp.py", "redact_resource_spans"),
        ("    Redactor.redact_spans (scanning)", "redaction/engine.py", "redact_spans"),
        ("  exporter consume (Payload.of)", "exporterhelper/sending.py", "of"),
        ("protobuf -> SpanView (views_of, every caller)", "processors/otlp.py", "views_of"),
        ("tail sampling: decisions (poll)", "tail_sampling/sampler.py", "poll"),
        ("  risk classification", "risk/engine.py", "classify"),
        ("tail sampling: kept views serialized (encode_views)", "processors/otlp.py", "encode_views"),
        ("  rewrite all attributes (write_attributes, any caller)", "processors/otlp.py", "write_attributes"),
        ("exporter workers (serialize + gRPC send)", "exporterhelper/exporter.py", "_work"),
    )
    table_rows = []
    for label, file_suffix, func in stages:
        cumulative = sum(
            ct for (file, _, name), (_, _, _, ct, _) in raw.items() if name == func and file.endswith(file_suffix)
        )
        if cumulative:
            table_rows.append(f"  {label:<56} {cumulative:8.2f} s  {cumulative / work:6.1%}")
    console.print(f"CPU time of the working threads: {work:.2f} s (profiled: about 2-3x slower than unprofiled)")
    console.print("\n".join(table_rows), markup=False, highlight=False)


# ---------------------------------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs and a smaller corpus (about 60 s)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 20, quick 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers as JSON")
    parser.add_argument("--streams", type=int, default=4, help="concurrent requests of the load generator")
    parser.add_argument("--channels", type=int, default=2, help="gRPC channels of the load generator")
    parser.add_argument("--batches", type=int, default=None, help="distinct pre-built batches (default 24, quick 12)")
    parser.add_argument("--traces-per-batch", type=int, default=100, help="traces per request (5 spans each)")
    parser.add_argument("--gzip", action="store_true", help="gzip between collector and sink (default: none)")
    parser.add_argument("--runs", default="a,b,b1,rb,logs,overload_a,overload_b", help="which runs (comma-separated)")
    parser.add_argument(
        "--profile",
        choices=["a", "b", "b1"],
        help="run only (a), (b) or b1 (the processors in the collector's own process, so that cProfile sees them),"
        " the collector under cProfile (every thread of its process, not its workers); print the top functions",
    )
    parser.add_argument("--profile-out", metavar="PATH", help="with --profile: also keep the pstats file here")
    parser.add_argument("--generator", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generator:
        return generator_main(args)

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.batches = args.batches or (12 if args.quick else 24)
    args.warmup = 2.0 if args.quick else 3.0
    args.drain_timeout = 10.0 if args.quick else 20.0
    overload_seconds = args.seconds if args.quick else max(10.0, args.seconds * 0.75)
    started = time.monotonic()

    with console.status("building the corpus"):
        corpus = build_corpus(args.batches, args.traces_per_batch)
    with console.status("measuring the floor"):
        floor = measure_floor(corpus, 2.0 if args.quick else 5.0)
    console.print(f"floor: {floor['spans_per_s']:,.0f} spans/s ({floor['us_per_span']:.1f} µs/span)")
    mem = measure_memory(corpus)

    scenarios = {
        "a": Scenario("a", "(a) collector, no processors", processors=False),
        "b": Scenario(
            "b", f"(b) redaction + risk + tail_sampling + batch, workers: {WORKERS}", processors=True, workers=WORKERS
        ),
        "b1": Scenario("b1", "(b) the same in one process (workers: 1)", processors=True),
        "n1": Scenario(
            "n1",
            "(n) genai_normalize + (b), workers: 1",
            processors=True,
            pipeline="[genai_normalize, redaction, risk, tail_sampling, batch]",
        ),
        "rb": Scenario("rb", "traces: redaction + batch (workers: 1)", processors=True, pipeline="[redaction, batch]"),
        "logs": Scenario(
            "logs",
            "logs: redaction + batch, GenAI content records (workers: 1)",
            processors=True,
            signal="logs",
            pipeline="[redaction, batch]",
        ),
        "overload_a": Scenario(
            "overload_a",
            "overload (a): queue 4, slow sink",
            False,
            True,
            queue_size=4,
            sink_delay=OVERLOAD_DELAY,
            sink_delay_per_span=OVERLOAD_DELAY_PER_SPAN,
        ),
        "overload_b": Scenario(
            "overload_b",
            "overload (b): queue 4, slow sink",
            True,
            True,
            queue_size=4,
            sink_delay=OVERLOAD_DELAY,
            sink_delay_per_span=OVERLOAD_DELAY_PER_SPAN,
            max_spans=20_000,
            max_traces=4_000,
        ),
    }
    wanted = [args.profile] if args.profile else [k.strip() for k in args.runs.split(",") if k.strip()]
    results: dict[str, RunResult] = {}
    sink = Sink()
    sink.start()
    with tempfile.TemporaryDirectory(prefix="spanguard-bench-") as tmp:
        workdir = Path(tmp)
        batches_file = workdir / "batches.pickle"
        with open(batches_file, "wb") as f:
            pickle.dump([(b.data, b.spans, b.trace_offsets) for b in corpus.batches], f)
        if "logs" in wanted:
            with open(batches_file.with_name("log-batches.pickle"), "wb") as f:
                pickle.dump([(b.data, b.spans, b.trace_offsets) for b in build_log_corpus(corpus).batches], f)
        for key in wanted:
            scenario = scenarios[key]
            seconds = args.seconds
            if scenario.overload:
                args.seconds = overload_seconds
            profile_path = workdir / "collector.prof" if args.profile else None
            with console.status(f"running {scenario.title} ({args.seconds:.0f} s measured)"):
                results[key] = run_scenario(
                    scenario, sink, batches_file, workdir, args, mem, console.print, profile_path
                )
            args.seconds = seconds
            r = results[key]
            console.print(
                f"{scenario.title}: {r.spans_per_s:,.0f} spans/s at the sink, {r.accepted_per_s:,.0f}/s accepted, "
                f"peak RSS {_mib(r.peak_rss)} MiB" + (f" [red]{r.error}[/red]" if r.error else "")
            )
            if profile_path is not None:
                print_profile(console, profile_path)
                if args.profile_out and profile_path.exists():
                    Path(args.profile_out).write_bytes(profile_path.read_bytes())
    sink.stop()
    with console.status("measuring the floor again"):
        again = measure_floor(corpus, 1.5 if args.quick else 3.0, rounds=3)
    rounds = floor["rounds"] + again["rounds"]
    floor = {
        "spans_per_s": statistics.median(rounds),
        "us_per_span": 1e6 / statistics.median(rounds),
        "rounds": rounds,
        "before": floor["spans_per_s"],
        "after": again["spans_per_s"],
    }
    with console.status("measuring the normaliser"):
        normalizer = measure_normalizer(corpus)
    console.print()
    data = report(console, floor, results, corpus, args)
    data["normalizer_us_per_span"] = normalizer
    signals_report(console, results, normalizer)
    data["memory_estimates"] = mem
    data["args"] = {k: v for k, v in vars(args).items() if k not in ("generator", "target")}
    data["elapsed_s"] = time.monotonic() - started
    console.print(f"\n[dim]total {data['elapsed_s']:.0f} s[/dim]")
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2, default=str))
        console.print(f"[dim]wrote {args.json}[/dim]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Test helpers for exporters: an exporter built as the collector builds it (by its type's factory), batches of
realistic spans, and waiting for a condition."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pydantic import BaseModel

from spanguard.collector.component import Settings, TraceBatch
from spanguard.exporters.exporterhelper.exporter import Exporter

SECRET = "s3cr3t-attribute-value"
"""A span attribute's value that must never be logged."""


def make_exporter(
    type_: str, component_id: str, config: BaseModel | dict[str, Any] | None = None, telemetry: Any = None
) -> Exporter:
    """The ``type_`` exporter (``otlp``, ``file``, ...) called ``component_id``, from its config model or a mapping."""
    factory = importlib.import_module(f"spanguard.exporters.{type_}.factory").new_factory()
    model = config if isinstance(config, BaseModel) else factory.config_class.model_validate(config or {})
    assert factory.create is not None
    return factory.create(Settings(component_id, "exporter", type_, model), None, telemetry)


def make_batch(spans: int = 3, tag: str = "b") -> TraceBatch:
    """A batch of realistic-looking spans carrying ``SECRET`` in an attribute (it must never be logged)."""
    trace_id = os.urandom(16)
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="agent"))])
    items = [
        Span(
            trace_id=trace_id,
            span_id=os.urandom(8),
            parent_span_id=os.urandom(8),
            name=f"chat {tag}-{index}",
            kind=Span.SpanKind.SPAN_KIND_CLIENT,
            start_time_unix_nano=1_700_000_000_000_000_000 + index,
            end_time_unix_nano=1_700_000_000_500_000_000 + index,
            attributes=[
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-2024-08-06")),
                KeyValue(key="app.secret", value=AnyValue(string_value=SECRET)),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=12 + index)),
            ],
        )
        for index in range(spans)
    ]
    scope = ScopeSpans(scope=InstrumentationScope(name="spanguard", version="0.1"), spans=items)
    return TraceBatch([ResourceSpans(resource=resource, scope_spans=[scope])])


def copy_batch(batch: TraceBatch) -> TraceBatch:
    """A deep copy of ``batch`` (an exporter owns what it is given)."""
    copies = []
    for resource in batch.resource_spans:
        clone = ResourceSpans()
        clone.CopyFrom(resource)
        copies.append(clone)
    return TraceBatch(copies)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())

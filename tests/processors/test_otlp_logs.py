"""Log records redacted in place: structured values (arrays of kvlists, as the official GenAI events carry the
messages) judged like spans' content, and the cache of values known clean never letting a changed value through."""

from __future__ import annotations

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs

from spanguard.processors import otlp
from spanguard.processors.otlp_logs import CleanValues, redact_resource_logs
from spanguard.processors.redaction import RedactionConfig, Redactor

TOOLS = [{"name": "refund", "description": "Refund an order", "parameters": {"type": "object"}}]


def messages(text: str) -> list:
    return [{"role": "user", "parts": [{"type": "text", "content": text}]}]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionConfig())


def request(*contents: str) -> ResourceLogs:
    resource = ResourceLogs()
    scope = resource.scope_logs.add()
    for content in contents:
        record = scope.log_records.add(event_name="gen_ai.client.inference.operation.details")
        record.attributes.add(key="gen_ai.tool.definitions").value.CopyFrom(otlp.to_any(TOOLS))
        record.attributes.add(key="gen_ai.input.messages").value.CopyFrom(otlp.to_any(messages(content)))
        record.attributes.add(key="gen_ai.request.model").value.string_value = "gpt-4o"
    return resource


def attributes(resource: ResourceLogs) -> list[dict]:
    return [otlp.attributes_of(record.attributes) for record in resource.scope_logs[0].log_records]


def test_a_value_known_clean_is_skipped_but_a_changed_one_beside_it_is_redacted(redactor: Redactor) -> None:
    clean = CleanValues()
    redact_resource_logs([request("where is my parcel?")], redactor, clean)
    assert ("gen_ai.tool.definitions", otlp.to_any(TOOLS).SerializeToString()) in clean

    again = request("where is my parcel?", "mail me at ana@example.org")
    assert redact_resource_logs([again], redactor, clean) == 1
    first, second = attributes(again)
    assert first["gen_ai.input.messages"][0]["parts"][0]["content"] == "where is my parcel?"
    assert second["gen_ai.input.messages"][0]["parts"][0]["content"] == "mail me at <EMAIL_ADDRESS>"
    # The skipped, known-clean value is still on the rewritten record, as it came.
    assert otlp.from_any(otlp.to_any(second["gen_ai.tool.definitions"])) == otlp.from_any(otlp.to_any(TOOLS))
    assert second["gen_ai.request.model"] == "gpt-4o" and second["spanguard.redaction.count"] == 1


def test_a_value_that_was_redacted_is_never_remembered_as_clean(redactor: Redactor) -> None:
    clean = CleanValues()
    dirty = otlp.to_any(messages("card 4111 1111 1111 1111")).SerializeToString()
    for _ in range(2):
        resource = request("card 4111 1111 1111 1111")
        redact_resource_logs([resource], redactor, clean)
        assert "4111" not in str(attributes(resource))
    assert ("gen_ai.input.messages", dirty) not in clean


def test_a_repeated_nested_key_reads_the_record_the_usual_way(redactor: Redactor) -> None:
    resource = request("fine")
    record = resource.scope_logs[0].log_records[0]
    part = record.attributes[1].value.array_value.values[0].kvlist_value.values[1].value.array_value.values[0]
    part.kvlist_value.values.add(key="content").value.string_value = "now b@example.com"  # the last one counts
    redact_resource_logs([resource], redactor, CleanValues())
    assert "b@example.com" not in str(resource)
    assert attributes(resource)[0]["gen_ai.input.messages"][0]["parts"][0]["content"] == "now <EMAIL_ADDRESS>"


def test_the_cache_is_bounded_in_entries_value_size_and_bytes() -> None:
    clean = CleanValues(max_entries=2, max_value_bytes=8, max_total_bytes=10)
    for n in range(3):
        clean.add((f"k{n}", b"x"))
    assert ("k0", b"x") not in clean and ("k2", b"x") in clean
    clean.add(("big", b"y" * 9))
    assert ("big", b"y" * 9) not in clean
    clean.add(("a", b"z" * 6))
    clean.add(("b", b"z" * 6))  # 12 bytes > 10: the older goes
    assert ("a", b"z" * 6) not in clean and ("b", b"z" * 6) in clean

"""The ``debug`` exporter: what each verbosity logs (span content only at ``detailed``)."""

from __future__ import annotations

import logging

import pytest
from exporter_build import SECRET, make_batch, make_exporter


@pytest.mark.parametrize("verbosity", ["basic", "normal"])
def test_debug_exporter_never_logs_attributes_below_detailed(verbosity: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = make_exporter("debug", "debug", {"verbosity": verbosity})
    exporter.start()
    batch = make_batch(2)
    span = batch.resource_spans[0].scope_spans[0].spans[0]
    exporter.consume(batch)
    exporter.shutdown()
    assert "1 resource spans, 2 spans" in caplog.text
    assert SECRET not in caplog.text
    assert "gpt-4o" not in caplog.text
    if verbosity == "normal":
        assert span.span_id.hex() in caplog.text and span.name in caplog.text
    else:
        assert span.span_id.hex() not in caplog.text and span.name not in caplog.text


def test_debug_exporter_detailed_logs_attributes_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = make_exporter("debug", "debug/d", {"verbosity": "detailed"})
    exporter.start()
    assert "redaction" in caplog.text
    exporter.consume(make_batch(1))
    exporter.shutdown()
    assert SECRET in caplog.text

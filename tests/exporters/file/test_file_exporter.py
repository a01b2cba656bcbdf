"""The ``file`` exporter: OTLP JSON lines that parse back, rotation, and backpressure when a write fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from exporter_build import copy_batch, make_batch, make_exporter

from spanguard.collector.component import Backpressure
from spanguard.collector.receivers.otlp import otlp_json
from spanguard.exporters.exporterhelper.sending import Payload, encode_json
from spanguard.exporters.file.config import FileExporterConfig


def test_file_exporter_writes_json_lines_that_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "out" / "traces.jsonl"
    exporter = make_exporter("file", "file", {"path": str(path)})
    exporter.start()
    originals = [make_batch(2, tag=str(i)) for i in range(3)]
    for batch in originals:
        exporter.consume(copy_batch(batch))
        # flushed per batch: the line is there as soon as consume returns
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    parsed = [otlp_json.decode_request(line) for line in lines]
    assert [list(p.resource_spans) for p in parsed] == [list(b.resource_spans) for b in originals]
    assert b'"traceId":"' + originals[0].resource_spans[0].scope_spans[0].spans[0].trace_id.hex().encode() in lines[0]
    exporter.shutdown()
    assert exporter.stats["sent_spans"] == 6


def test_file_exporter_rotates(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    config = FileExporterConfig.model_validate({"path": str(path), "rotation": {"max_megabytes": 1, "max_backups": 2}})
    exporter = make_exporter("file", "file/r", config)
    exporter.start()
    big = make_batch(600)
    line_size = len(encode_json(Payload.of(big).request)) + 1
    per_file = (1024 * 1024) // line_size
    assert per_file >= 1
    for _ in range(per_file * 3 + 1):
        exporter.consume(copy_batch(big))
    exporter.shutdown()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 1024 * 1024
        for line in (tmp_path / name).read_bytes().splitlines():
            otlp_json.decode_request(line)


def test_file_exporter_write_failure_pushes_back(tmp_path: Path) -> None:
    exporter = make_exporter("file", "file/f", {"path": str(tmp_path / "t.jsonl")})
    exporter.start()
    shared = exporter._sender._file
    shared._file.close()  # the disk goes away under us
    shared._file = open(os.devnull, "rb")
    with pytest.raises(Backpressure):
        exporter.consume(make_batch())
    exporter.shutdown()

"""The memory limiter alone: admits under its soft limit, refuses from it, gives freed memory back before refusing.

Its admission through a running collector (503 before parsing) is tested in tests/collector/test_service.py.
"""

from __future__ import annotations

import time

import pytest

from spanguard.collector.component import Backpressure
from spanguard.collector.config import load_config_text
from spanguard.processors.memory_limiter import limiter as memory
from spanguard.processors.memory_limiter.config import MemoryLimiterConfig
from spanguard.processors.memory_limiter.limiter import MemoryLimiter, resident_bytes
from spanguard.yamlconfig import ConfigError

CONFIG = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
processors: {memory_limiter: {limit_mib: 100, spike_limit_mib: 100}}
exporters: {debug: {}}
service: {pipelines: {traces: {receivers: [otlp], processors: [memory_limiter], exporters: [debug]}}}
"""


def test_memory_limiter_admits_under_the_limit():
    class Sink:
        def consume(self, batch):
            self.batch = batch

    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=1_000_000), Sink())
    limiter.admit(10_000)
    limiter.shutdown()
    limiter.shutdown()


def test_memory_limiter_refuses_from_the_soft_limit_and_checks_spike_below_limit():
    rss = resident_bytes()
    assert rss > 0
    limit_mib = rss // 2**20 + 50
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=limit_mib, spike_limit_mib=60), None)
    with pytest.raises(Backpressure) as error:
        limiter.admit(1)  # above limit - spike, under limit
    assert f"limit_mib {limit_mib}" in error.value.reason
    MemoryLimiter(MemoryLimiterConfig(limit_mib=limit_mib, spike_limit_mib=10), None).admit(1)
    with pytest.raises(ConfigError) as refused:
        load_config_text(CONFIG)
    assert "processors.memory_limiter" in str(refused.value)
    assert "spike_limit_mib must be less than limit_mib" in str(refused.value)


def test_memory_limiter_gives_freed_memory_back_before_it_refuses(monkeypatch):
    mib = 2**20
    readings = iter([100 * mib, 300 * mib, 120 * mib, 300 * mib, 300 * mib])
    monkeypatch.setattr(memory, "resident_bytes", lambda: next(readings))
    released: list[int] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: released.append(1))
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=250, check_interval=0.001), None)
    time.sleep(0.01)
    limiter.admit(1)  # 300 MiB read, memory released, 120 MiB read again: admitted
    assert released == [1]
    time.sleep(0.01)
    with pytest.raises(Backpressure):
        limiter.admit(1)  # over again, and released less than a second ago: refused without another collection
    assert released == [1]

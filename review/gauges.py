"""Prometheus gauges read from the review store at each scrape (queue sizes, pending approvals).

A store that does not answer gives a scrape without samples and a warning, never an error: metrics must not fail
because the database is away. The metrics themselves: docs/review.md ("Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "StoreGauge",
]

logger = logging.getLogger("spanguard.review")


class StoreGauge(Collector):
    """One gauge family whose samples ``read()`` returns as ``{label values: count}`` (a tuple of strings per key)."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], read: Callable[[], Mapping[Any, int]]
    ) -> None:
        self._name, self._documentation, self._labels, self._read = name, documentation, list(labels), read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labels)
        try:
            counts = self._read()
        except Exception:
            logger.warning("review metrics: the store did not answer for %s", self._name)
            counts = {}
        for values, count in sorted(counts.items()):
            family.add_metric(list(values), count)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

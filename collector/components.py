"""The collector's built-in components, listed once (after the OpenTelemetry Collector's ``components.go``).

Each component folder's ``factory.py`` has a ``new_factory()``; :func:`builtin_factories` calls them all and
:func:`register_builtins` puts them in a registry (the default one gets them on first use). Nothing else lists the
built-in types. Adding a component: docs/collector-config.md ("For component authors").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spanguard.collector.component import Factory

if TYPE_CHECKING:
    from spanguard.collector.config import Registry

__all__ = ["builtin_factories", "register_builtins"]


def builtin_factories() -> tuple[Factory, ...]:
    """Every built-in component's factory: receivers, processors, exporters, extensions."""
    from spanguard.collector.extensions.health_check import factory as health_check
    from spanguard.collector.receivers.otlp import factory as otlp_receiver
    from spanguard.exporters.debug import factory as debug_exporter
    from spanguard.exporters.file import factory as file_exporter
    from spanguard.exporters.otlp import factory as otlp_exporter
    from spanguard.exporters.otlphttp import factory as otlphttp_exporter
    from spanguard.exporters.review import factory as review_exporter
    from spanguard.processors.batch import factory as batch
    from spanguard.processors.genai_normalize import factory as genai_normalize
    from spanguard.processors.memory_limiter import factory as memory_limiter
    from spanguard.processors.redaction import factory as redaction
    from spanguard.processors.risk import factory as risk
    from spanguard.processors.tail_sampling import factory as tail_sampling

    return (
        otlp_receiver.new_factory(),
        memory_limiter.new_factory(),
        genai_normalize.new_factory(),
        redaction.new_factory(),
        risk.new_factory(),
        tail_sampling.new_factory(),
        batch.new_factory(),
        otlp_exporter.new_factory(),
        otlphttp_exporter.new_factory(),
        file_exporter.new_factory(),
        debug_exporter.new_factory(),
        review_exporter.new_factory(),
        health_check.new_factory(),
    )


def register_builtins(registry: Registry) -> None:
    """Register every built-in factory in ``registry`` (again is a no-op)."""
    for factory in builtin_factories():
        registry.register(factory)

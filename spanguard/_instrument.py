"""``instrument()`` and ``uninstrument()``: the one line that turns LLM calls into spans.

The instrumentors are spanguard's entry points in the ``opentelemetry_instrumentor`` group (those named
``spanguard_*``), so an instrumented library is one module and one ``pyproject.toml`` line. Behaviour:
docs/instrumentation.md; adding a library: docs/contributing.md ("An instrumented library").
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Final

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from spanguard._sdk import ensure_meter_provider, ensure_tracer_provider, shutdown_timeout_setting
from spanguard.instrumentation import gate, gate_state
from spanguard.instrumentation._base import SpanguardInstrumentor, ner_model_setting, redact_setting
from spanguard.instrumentation._core import InstrumentOptions
from spanguard.instrumentation.content import CaptureMode, capture_mode
from spanguard.instrumentation.gate_policy import GatePolicy

logger = logging.getLogger("spanguard")

ENTRY_POINT_GROUP: Final = "opentelemetry_instrumentor"
"""The entry point group of OpenTelemetry instrumentors (the one ``opentelemetry-instrument`` loads)."""
ENTRY_POINT_PREFIX: Final = "spanguard_"
"""The name prefix of spanguard's instrumentors in that group; ``instrument()`` leaves every other entry point (the
official ``opentelemetry-instrumentation-*`` packages, say) to ``opentelemetry-instrument``."""

_lock = threading.Lock()
_active: list[SpanguardInstrumentor] = []
_options: InstrumentOptions | None = None
_tracer_provider: TracerProvider | None = None


def instrument(
    *,
    capture_content: bool | str | CaptureMode | None = None,
    redact: bool | None = None,
    require_pinned_models: bool = False,
    ner_model: str | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    review_endpoint: str | None = None,
    review_token: str | None = None,
    gate_policy: str | Path | GatePolicy | None = None,
    shutdown_timeout: float | None = None,
) -> None:
    """Instrument every supported LLM library that is installed; calling it again changes nothing.

    With no tracer provider given and none registered, one is built from the standard ``OTEL_*`` variables
    (OTLP by default), registered globally and flushed at exit, within ``shutdown_timeout`` seconds (else
    ``OTEL_BSP_EXPORT_TIMEOUT``, in milliseconds; else as long as the exporter retries). Whenever message content
    is captured, spans are redacted before any exporter sees them, unless ``redact=False`` or
    ``SPANGUARD_REDACT=false``; ``ner_model`` (or ``SPANGUARD_REDACT_NER_MODEL``) names the spaCy model redaction
    finds names and places with (one that is not installed raises ValueError). ``review_endpoint``,
    ``review_token`` and ``gate_policy`` tell approval gates where to ask and by which policy (over
    ``SPANGUARD_REVIEW_ENDPOINT``, ``SPANGUARD_REVIEW_TOKEN`` and ``SPANGUARD_GATE_POLICY``).
    """
    global _options, _tracer_provider
    with _lock:
        if _active:
            logger.debug("spanguard.instrument() called again; already instrumented")
            return
        if tracer_provider is None:
            tracer_provider = ensure_tracer_provider(shutdown_timeout_setting(shutdown_timeout))
        if meter_provider is None:
            meter_provider = ensure_meter_provider()
        capture = capture_mode(capture_content)
        redacting = redact_setting(redact, capture.enabled)
        options = InstrumentOptions(
            capture=capture,
            require_pinned_models=require_pinned_models,
            redact=redacting,
            ner_model=ner_model_setting(ner_model) if redacting else None,
        )
        gate.configure(endpoint=review_endpoint, token=review_token, policy=gate_policy)
        if review_endpoint or os.environ.get(gate.ENDPOINT_ENV):
            gate_state.enable_recording()
        for entry_point in spanguard_entry_points():
            cls = _instrumentor_class(entry_point)
            if cls is None or not _installed(cls.library):
                continue
            try:
                instrumentor = cls()
                instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, options=options)
            except Exception:
                logger.warning(
                    "spanguard: could not instrument %s; it stays uninstrumented", cls.library, exc_info=True
                )
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                _active.append(instrumentor)
        _options = options
        _tracer_provider = tracer_provider


def uninstrument() -> None:
    """Restore every instrumented library's original methods."""
    global _options, _tracer_provider
    with _lock:
        while _active:
            _active.pop().uninstrument()
        gate.reset_configuration()
        gate_state.enable_recording(False)
        _options = None
        _tracer_provider = None


def is_instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return bool(_active)


def current_options() -> InstrumentOptions | None:
    """The options of the ``instrument()`` in effect, or of ``opentelemetry-instrument``'s environment."""
    if _options is not None:
        return _options
    for instrumentor in _instrumentors_in_effect():
        telemetry = instrumentor.telemetry()
        if telemetry is not None:
            return telemetry.options
    return None


def current_tracer_provider() -> TracerProvider | None:
    """The tracer provider ``instrument()`` was given or built (``None`` means the global one)."""
    return _tracer_provider


def spanguard_entry_points() -> list[EntryPoint]:
    """spanguard's instrumentors: the ``opentelemetry_instrumentor`` entry points named ``spanguard_*``, by name
    (a name seen twice, from two copies of one distribution on the path, counts once)."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name.startswith(ENTRY_POINT_PREFIX):
            found.setdefault(entry_point.name, entry_point)
    return [found[name] for name in sorted(found)]


def _instrumentor_class(entry_point: EntryPoint) -> type[SpanguardInstrumentor] | None:
    """The instrumentor class ``entry_point`` names (its module holds no SDK import, so this stays cheap), or None,
    with a warning, when it cannot be loaded or is not a :class:`SpanguardInstrumentor`."""
    try:
        cls = entry_point.load()
    except Exception:
        logger.warning("spanguard: cannot load %s (%s)", entry_point.name, entry_point.value, exc_info=True)
        return None
    if not (isinstance(cls, type) and issubclass(cls, SpanguardInstrumentor)):
        logger.warning(
            "spanguard: entry point %s (%s) is not a SpanguardInstrumentor; skipped",
            entry_point.name,
            entry_point.value,
        )
        return None
    return cls


def _installed(library: str) -> bool:
    """Whether ``library`` (an import name, perhaps dotted) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing
        return False


def _instrumentors_in_effect() -> list[SpanguardInstrumentor]:
    """The spanguard instrumentors in effect, by ``instrument()`` or by ``opentelemetry-instrument``: the instance of
    every loaded instrumentor class that is instrumented. Scans no entry point and imports nothing (tool calls ask)."""
    found: dict[int, SpanguardInstrumentor] = {}
    classes = list(SpanguardInstrumentor.__subclasses__())
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        instance = cls.__dict__.get("_instance")  # BaseInstrumentor's singleton, set on the class it instantiates
        if instance is not None and instance.is_instrumented_by_opentelemetry:
            found[id(instance)] = instance
    return list(found.values())

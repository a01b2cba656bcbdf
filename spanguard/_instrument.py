"""``instrument()`` and ``uninstrument()``: the one line that turns LLM calls into spans."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from spanguard._sdk import ensure_meter_provider, ensure_tracer_provider
from spanguard.instrumentation import INSTRUMENTORS, gate, gate_state
from spanguard.instrumentation._base import SpanguardInstrumentor, ner_model_setting, redact_setting
from spanguard.instrumentation._core import InstrumentOptions
from spanguard.instrumentation.content import CaptureMode, capture_mode
from spanguard.instrumentation.gate_policy import GatePolicy

logger = logging.getLogger("spanguard")

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
) -> None:
    """Instrument every supported LLM library that is installed; calling it again changes nothing.

    With no tracer provider given and none registered, one is built from the standard ``OTEL_*`` variables
    (OTLP by default), registered globally and flushed at exit. Whenever message content is captured, spans are
    redacted before any exporter sees them, unless ``redact=False`` or ``SPANGUARD_REDACT=false``; ``ner_model`` (or
    ``SPANGUARD_REDACT_NER_MODEL``) names the spaCy model redaction finds names and places with (one that is not
    installed raises ValueError). ``review_endpoint``, ``review_token`` and ``gate_policy`` tell approval gates
    where to ask and by which policy (over ``SPANGUARD_REVIEW_ENDPOINT``, ``SPANGUARD_REVIEW_TOKEN`` and
    ``SPANGUARD_GATE_POLICY``).
    """
    global _options, _tracer_provider
    with _lock:
        if _active:
            logger.debug("spanguard.instrument() called again; already instrumented")
            return
        if tracer_provider is None:
            tracer_provider = ensure_tracer_provider()
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
        for module_name, class_name, library in INSTRUMENTORS:
            if importlib.util.find_spec(library) is None:
                continue
            try:
                instrumentor = getattr(importlib.import_module(module_name), class_name)()
                instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, options=options)
            except Exception:
                logger.warning("spanguard: could not instrument %s; it stays uninstrumented", library, exc_info=True)
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


def _instrumentors_in_effect() -> list[Any]:
    found = []
    for module_name, class_name, _ in INSTRUMENTORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module else None
        if cls is not None and cls._instance is not None and cls._instance.is_instrumented_by_opentelemetry:
            found.append(cls._instance)
    return found

"""The instrumentor base every library module derives from: wrap on instrument, restore on uninstrument."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from spanguard.instrumentation._core import InstrumentOptions, Telemetry
from spanguard.instrumentation.content import capture_mode
from spanguard.instrumentation.models import ModelRegistry
from spanguard.instrumentation.session import SessionSpanProcessor

_processor_lock = threading.Lock()
logger = logging.getLogger("spanguard")
REDACT_ENV = "SPANGUARD_REDACT"
NER_MODEL_ENV = "SPANGUARD_REDACT_NER_MODEL"
_redaction: dict[int, tuple[Any, Any, int]] = {}  # id(provider) -> (provider, redactor, users)


#: Method names that read or manage stored objects in every SDK resource: no model response (any resource).
MANAGING_METHODS: Final[tuple[str, ...]] = (
    "list",
    "list_*",
    "retrieve",
    "retrieve_*",
    "delete",
    "update",
    "update_*",
    "archive",
    "remove",
    "add",
    "download*",
    "upload*",
    "cancel",
    "set",
    "results",
    "poll",
    "validate*",
    "activate",
    "deactivate",
    "pause",
    "resume",
    "unpause",
    "approve",
    "deny",
    "accept",
    "reject",
    "ack",
    "heartbeat",
    "stats",
    "stop",
    "content",
    "count",
    "count_tokens",
    "connect",
    "wait_for_processing",
    "sign_out",
    "regenerate_*",
    "reveal_token",
    "rotate_*",
    "test",
    "unwrap",
    "verify_signature",
    "create_enrollment_url",
    "mcp_oauth_validate",
    "parse_unverified",
    "redact",
    "for_result",
    "prepare*",
    "fork",
    "extend",
    "get_character",
    "hangup",
    "refer",
)


@dataclass(frozen=True)
class Target:
    """One SDK method to wrap: its module, ``Class.method`` path and the wrapper factory."""

    module: str
    path: str
    wrapper: Callable[[Callable[[], Telemetry | None]], Callable[..., Any]]


def ensure_session_processor(tracer_provider: Any) -> None:
    """Add the session-stamping processor to an SDK tracer provider once (other providers are left alone)."""
    provider = tracer_provider or trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return
    with _processor_lock:
        if getattr(provider, "_spanguard_session_processor", False):
            return
        add(SessionSpanProcessor())
        try:
            setattr(provider, "_spanguard_session_processor", True)  # noqa: B010  # not an SDK attribute
        except AttributeError:
            pass


def redact_setting(redact: bool | None, capture_on: bool) -> bool:
    """Whether to redact: an explicit argument, else ``SPANGUARD_REDACT``, else on whenever content is captured."""
    if redact is None:
        value = os.environ.get(REDACT_ENV, "").strip().lower()
        if value in ("true", "1", "yes", "on"):
            redact = True
        elif value in ("false", "0", "no", "off"):
            redact = False
        elif value:
            logger.warning("%s=%r is not true or false; redaction stays on its default", REDACT_ENV, value)
    if redact is None:
        return capture_on
    if capture_on and not redact:
        logger.warning("spanguard: message content is captured WITHOUT redaction; PII will leave the process")
    return redact


def ner_model_setting(ner_model: str | None) -> str | None:
    """The spaCy model for in-process NER: an explicit argument, else ``SPANGUARD_REDACT_NER_MODEL``, else none.

    Raises ValueError when the model named is neither an installed spaCy package nor a model folder.
    """
    if ner_model is None:
        ner_model = os.environ.get(NER_MODEL_ENV, "").strip() or None
    if ner_model is None:
        return None
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("spacy") is None:
        raise ValueError(f"ner_model={ner_model!r} needs spaCy: pip install spacy and the model")
    if not (Path(ner_model).is_dir() or importlib.util.find_spec(ner_model.replace("-", "_")) is not None):
        raise ValueError(f"ner_model={ner_model!r} is neither an installed spaCy model package nor a model folder")
    return ner_model


def options_from(kwargs: dict[str, Any]) -> InstrumentOptions:
    """The options given to ``instrument(**kwargs)``, the environment deciding what is not given."""
    given = kwargs.get("options")
    if isinstance(given, InstrumentOptions):
        return given
    capture = capture_mode(kwargs.get("capture_content"))
    redact = redact_setting(kwargs.get("redact"), capture.enabled)
    return InstrumentOptions(
        capture=capture,
        require_pinned_models=bool(kwargs.get("require_pinned_models", False)),
        redact=redact,
        ner_model=ner_model_setting(kwargs.get("ner_model")) if redact else None,
    )


def enable_redaction(tracer_provider: Any, ner_model: str | None = None) -> None:
    """Redact every span of ``tracer_provider`` (or the global one) before any of its exporters sees it."""
    from spanguard.processors.sdk import LazyRedactor, wrap_with_redaction

    provider = tracer_provider or trace.get_tracer_provider()
    if getattr(provider, "_active_span_processor", None) is None:
        logger.warning("spanguard: the tracer provider is not the OTel SDK's; spans are not redacted in-process")
        return
    with _processor_lock:
        entry = _redaction.get(id(provider))
        if entry is not None:
            _redaction[id(provider)] = (entry[0], entry[1], entry[2] + 1)
            return
        # Presidio and spaCy load in the background: the app starts without waiting for them (docs/redaction.md).
        redactor = LazyRedactor(lambda: _build_redactor(ner_model))
        redactor.warm()
        wrap_with_redaction(provider, redactor)  # type: ignore[arg-type]
        _redaction[id(provider)] = (provider, redactor, 1)


def _build_redactor(ner_model: str | None) -> Any:
    from spanguard.processors.redaction import RedactionConfig, Redactor

    return Redactor(RedactionConfig(ner_model=ner_model))


def disable_redaction(tracer_provider: Any) -> None:
    """Undo one :func:`enable_redaction`; the last one restores the provider's processors."""
    from spanguard.processors.sdk import unwrap_redaction

    provider = tracer_provider or trace.get_tracer_provider()
    with _processor_lock:
        entry = _redaction.get(id(provider))
        if entry is None:
            return
        if entry[2] > 1:
            _redaction[id(provider)] = (entry[0], entry[1], entry[2] - 1)
            return
        del _redaction[id(provider)]
    unwrap_redaction(provider)
    entry[1].shutdown()


class SpanguardInstrumentor(BaseInstrumentor):
    """Base of spanguard's per-library instrumentors (usable by ``opentelemetry-instrument``)."""

    scope: ClassVar[str]
    requirement: ClassVar[str]
    library: ClassVar[str]
    """The instrumented library's import name (``openai``): ``instrument()`` skips the instrumentor without it."""
    _telemetry: Telemetry | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        """The library versions this instrumentor supports."""
        return (self.requirement,)

    def targets(self) -> Sequence[Target]:
        """The SDK methods this instrumentor wraps."""
        raise NotImplementedError

    def telemetry(self) -> Telemetry | None:
        """The live telemetry handles, or ``None`` once uninstrumented."""
        return self._telemetry

    def _instrument(self, **kwargs: Any) -> None:
        options = options_from(kwargs)
        tracer_provider = kwargs.get("tracer_provider")
        ensure_session_processor(tracer_provider)
        self._redacting_provider = None
        from spanguard.instrumentation import gate_state

        if os.environ.get(gate_state.ENDPOINT_ENV):
            # opentelemetry-instrument never calls spanguard.instrument(): gates learn the conversation here too.
            gate_state.enable_recording()
        if options.redact:
            enable_redaction(tracer_provider, options.ner_model)
            self._redacting_provider = tracer_provider or trace.get_tracer_provider()
        self._telemetry = Telemetry(
            self.scope,
            tracer_provider,
            kwargs.get("meter_provider"),
            options,
            ModelRegistry(require_pinned=options.require_pinned_models),
        )
        self.before_wrap()
        for target in self.targets():
            wrap_function_wrapper(target.module, target.path, target.wrapper(self.telemetry))

    def _uninstrument(self, **kwargs: Any) -> None:
        for target in self.targets():
            owner_name, _, attribute = target.path.rpartition(".")
            owner = importlib.import_module(target.module)
            for part in owner_name.split("."):
                owner = getattr(owner, part)
            unwrap(owner, attribute)
        self.after_unwrap()
        self._telemetry = None
        if getattr(self, "_redacting_provider", None) is not None:
            disable_redaction(self._redacting_provider)
            self._redacting_provider = None

    def before_wrap(self) -> None:
        """Hook run before wrapping (e.g. to silence an SDK's own spans)."""

    def after_unwrap(self) -> None:
        """Hook run after unwrapping, undoing ``before_wrap``."""

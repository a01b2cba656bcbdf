"""The instrumentor base every library module derives from: wrap on instrument, restore on uninstrument."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from spanguard.instrumentation._core import InstrumentOptions, Telemetry
from spanguard.instrumentation.content import capture_mode
from spanguard.instrumentation.models import ModelRegistry
from spanguard.instrumentation.session import SessionSpanProcessor
from wrapt import wrap_function_wrapper

_processor_lock = threading.Lock()


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
            provider._spanguard_session_processor = True
        except AttributeError:
            pass


def options_from(kwargs: dict[str, Any]) -> InstrumentOptions:
    """The options given to ``instrument(**kwargs)``, the environment deciding what is not given."""
    given = kwargs.get("options")
    if isinstance(given, InstrumentOptions):
        return given
    return InstrumentOptions(
        capture=capture_mode(kwargs.get("capture_content")),
        require_pinned_models=bool(kwargs.get("require_pinned_models", False)),
    )


class SpanguardInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of spanguard's per-library instrumentors (usable by ``opentelemetry-instrument``)."""

    scope: ClassVar[str]
    requirement: ClassVar[str]
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

    def before_wrap(self) -> None:
        """Hook run before wrapping (e.g. to silence an SDK's own spans)."""

    def after_unwrap(self) -> None:
        """Hook run after unwrapping, undoing ``before_wrap``."""

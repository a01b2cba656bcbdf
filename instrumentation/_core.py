"""What every instrumented library shares: the telemetry handles, one LLM call's span, and the safety guard.

The provider modules (``openai.py``, ``anthropic.py``) only translate their SDK's requests and responses into
plain attribute maps; starting, ending and measuring a call happens here, once.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram, MeterProvider, get_meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.util.types import AttributeValue

from spanguard import __version__
from spanguard.instrumentation import gate_state
from spanguard.instrumentation.content import CaptureMode
from spanguard.instrumentation.models import ModelRegistry
from spanguard.semconv import (
    ERROR_TYPE,
    GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    GEN_AI_CLIENT_TOKEN_USAGE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_TOKEN_TYPE,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    SERVER_ADDRESS,
    SERVER_PORT,
    SPANGUARD_MODEL_PINNED,
)

logger = logging.getLogger("spanguard.instrumentation")

# Bucket boundaries the GenAI conventions advise for these two histograms.
_DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_METRIC_KEYS: Final = (GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, SERVER_ADDRESS, SERVER_PORT)

_logged_once: set[str] = set()
_logged_lock = threading.Lock()


def log_internal_error(where: str) -> None:
    """Log an error inside spanguard once per place, so a broken hook never floods the app's logs."""
    with _logged_lock:
        if where in _logged_once:
            return
        _logged_once.add(where)
    # exc_info carries our own traceback only: span content is never formatted into the message.
    logger.warning("spanguard: internal error in %s; the call goes on uninstrumented there", where, exc_info=True)


@dataclass(frozen=True)
class InstrumentOptions:
    """The options one ``instrument()`` call gives to every library's instrumentor."""

    capture: CaptureMode = CaptureMode.NO_CONTENT
    require_pinned_models: bool = False
    redact: bool = False
    ner_model: str | None = None
    """The spaCy model in-process redaction finds names and places with (None: it does not)."""


class Telemetry:
    """The tracer, histograms, options and model registry of one instrumented library."""

    def __init__(
        self,
        scope: str,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        options: InstrumentOptions,
        models: ModelRegistry,
    ) -> None:
        self.tracer: Tracer = trace.get_tracer(scope, __version__, tracer_provider=tracer_provider)
        meter = get_meter(scope, __version__, meter_provider=meter_provider)
        self.duration: Histogram = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.tokens: Histogram = meter.create_histogram(
            GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self.first_chunk: Histogram = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.options = options
        self.capture_span = options.capture.on_span
        self.capture_event = options.capture.on_event
        self.capture = self.capture_span or self.capture_event
        self.models = models

    def start(self, operation: str, attributes: dict[str, AttributeValue], *, activate: bool = True) -> LLMCall:
        """Start the CLIENT span of one LLM call named ``{operation} {model}`` from its request attributes."""
        model = attributes.get(GEN_AI_REQUEST_MODEL)
        if isinstance(model, str):
            attributes[SPANGUARD_MODEL_PINNED] = self.models.observe_request(model)
            name = f"{operation} {model}"
        else:
            name = operation
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return LLMCall(self, span, attributes, activate)


class LLMCall:
    """One LLM call's span and measurements, ended exactly once whichever way the call finishes."""

    __slots__ = ("_ended", "_lock", "_request", "_telemetry", "_token", "first_chunk_ns", "span", "start_ns")

    def __init__(self, telemetry: Telemetry, span: Span, request: Mapping[str, AttributeValue], activate: bool) -> None:
        self._telemetry = telemetry
        self.span = span
        self._request = request
        self.start_ns = time.perf_counter_ns()
        self.first_chunk_ns: int | None = None
        self._ended = False
        self._lock = threading.Lock()
        # The span is current while the SDK sends the request, so HTTP-level spans nest under it.
        self._token: object | None = otel_context.attach(trace.set_span_in_context(span)) if activate else None

    def detach(self) -> None:
        """Make the span no longer current, once the SDK call has returned (a stream is read later)."""
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                log_internal_error("context detach")

    def chunk_received(self) -> None:
        """Note the arrival of a streamed chunk; the first one fixes time to first chunk."""
        if self.first_chunk_ns is None:
            self.first_chunk_ns = time.perf_counter_ns()

    def end(
        self,
        response: Mapping[str, AttributeValue] | None = None,
        error: BaseException | None = None,
        content: Callable[[], Mapping[str, AttributeValue]] | None = None,
    ) -> None:
        """Set the response attributes, record metrics and end the span; later calls do nothing."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.detach()
        try:
            self._finish(response or {}, error, content)
        except Exception:
            log_internal_error("ending a span")
            self.span.end()

    def _finish(
        self,
        response: Mapping[str, AttributeValue],
        error: BaseException | None,
        content: Callable[[], Mapping[str, AttributeValue]] | None,
    ) -> None:
        telemetry = self._telemetry
        span = self.span
        duration = (time.perf_counter_ns() - self.start_ns) / 1e9
        attributes = dict(response)
        request = self._request
        metric = {key: request[key] for key in _METRIC_KEYS if key in request}
        response_model = attributes.get(GEN_AI_RESPONSE_MODEL)
        if isinstance(response_model, str):
            metric[GEN_AI_RESPONSE_MODEL] = response_model
            requested = request.get(GEN_AI_REQUEST_MODEL)
            if isinstance(requested, str) and requested != response_model:
                telemetry.models.observe_response(requested, response_model)
        if self.first_chunk_ns is not None:
            ttfc = (self.first_chunk_ns - self.start_ns) / 1e9
            attributes[GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
            telemetry.first_chunk.record(ttfc, metric)
        if error is not None:
            error_type = error_type_of(error)
            attributes[ERROR_TYPE] = error_type
            metric[ERROR_TYPE] = error_type
            # The provider's message may echo the prompt, so only the type goes into the status.
            span.set_status(Status(StatusCode.ERROR, error_type))
        recording = gate_state.recording()
        captured: Mapping[str, AttributeValue] = {}
        if content is not None and (telemetry.capture or recording):
            try:
                captured = content()
            except Exception:
                log_internal_error("content capture")
                captured = {}
            if telemetry.capture_span:
                attributes.update(captured)
            if telemetry.capture_event and captured:
                span.add_event(GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, dict(captured))
        if recording:
            try:
                gate_state.record_call(captured, attributes)  # what an approval gate later shows the reviewer
            except Exception:
                log_internal_error("recording the call for approval gates")
        span.set_attributes(attributes)
        span.end()
        telemetry.duration.record(duration, metric)
        input_tokens = attributes.get(GEN_AI_USAGE_INPUT_TOKENS)
        if isinstance(input_tokens, int):
            telemetry.tokens.record(input_tokens, {**metric, GEN_AI_TOKEN_TYPE: "input"})
        output_tokens = attributes.get(GEN_AI_USAGE_OUTPUT_TOKENS)
        if isinstance(output_tokens, int):
            telemetry.tokens.record(output_tokens, {**metric, GEN_AI_TOKEN_TYPE: "output"})


def error_type_of(error: BaseException) -> str:
    """The ``error.type`` of an exception: its fully qualified class name."""
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def is_given(value: Any) -> bool:
    """Whether an SDK keyword argument was really given (not ``None`` nor the SDK's NOT_GIVEN/omit sentinel)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def put(attributes: dict[str, AttributeValue], key: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """Set ``key`` when ``value`` is an instance of ``kind``; anything else (sentinels, wrong types) is skipped."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        attributes[key] = cast(AttributeValue, value)


def put_nonzero(attributes: dict[str, AttributeValue], key: str, value: Any) -> None:
    """Set an optional token count only when the provider reported a positive number."""
    if isinstance(value, int) and value > 0:
        attributes[key] = value


#: True while an instrumented SDK method runs: a provider SDK's own span for that request is left out (spanguard's
#: is the one), while its spans for every other request (``models.list``, ``count_tokens``, ...) stay.
IN_INSTRUMENTED_CALL: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar("spanguard_in_call", default=False)


#: Request parameters an app may send through ``extra_body`` (the SDK sends them as they are, over the keywords).
SAMPLING_PARAMETERS: Final = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop_sequences",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "n",
        "max_completion_tokens",
        "output_config",
        "output_format",
        "response_format",
    }
)


def with_extra_body(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A method's keyword arguments with the request parameters of its ``extra_body`` laid over them."""
    extra = kwargs.get("extra_body")
    if not isinstance(extra, Mapping) or not extra:
        return kwargs
    picked = {key: value for key, value in extra.items() if key in SAMPLING_PARAMETERS}
    return {**kwargs, **picked} if picked else kwargs


def put_float(attributes: dict[str, AttributeValue], key: str, value: Any) -> None:
    """Set a numeric request parameter as a float; booleans and sentinels are skipped."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        attributes[key] = float(value)


def put_strings(attributes: dict[str, AttributeValue], key: str, value: Any) -> None:
    """Set a string-array attribute from one string or a sequence of strings; anything else is skipped."""
    if isinstance(value, str):
        attributes[key] = (value,)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(item, str) for item in value):
        attributes[key] = tuple(value)

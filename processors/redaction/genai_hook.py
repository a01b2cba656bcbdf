"""spanguard's redaction as an ``opentelemetry-util-genai`` completion hook, for the spans of the official GenAI
instrumentations (``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK=spanguard_redaction``).

What it redacts, and when: docs/redaction.md ("Spans of the official GenAI instrumentations").
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from spanguard.semconv import GEN_AI_CONTENT_ATTRIBUTES
from spanguard.semconv.redaction import FAILED_MARKER

logger = logging.getLogger("spanguard.processors")

CONTENT_KEYS: Final = GEN_AI_CONTENT_ATTRIBUTES


class RedactionCompletionHook:
    """A ``CompletionHook`` that redacts the GenAI content already recorded on the span and the event."""

    def __init__(self, redactor: Any | None = None) -> None:
        self._redactor = redactor
        self._lock = threading.Lock()

    def _get_redactor(self) -> Any:
        if self._redactor is None:
            with self._lock:
                if self._redactor is None:
                    from spanguard.processors.redaction import Redactor

                    self._redactor = Redactor()
        return self._redactor

    def on_completion(
        self,
        *,
        inputs: Any = None,
        outputs: Any = None,
        system_instruction: Any = None,
        tool_definitions: Any = None,
        span: Any = None,
        log_record: Any = None,
    ) -> None:
        """Replace the recorded content attributes of ``span`` and ``log_record`` with redacted ones."""
        if span is not None and getattr(span, "is_recording", lambda: False)():
            recorded = getattr(span, "attributes", None) or {}
            content = {key: recorded[key] for key in CONTENT_KEYS if key in recorded}
            if content:
                span.set_attributes(self._redact(content))
        if log_record is not None:
            attributes = getattr(log_record, "attributes", None)
            if attributes:
                content = {key: attributes[key] for key in CONTENT_KEYS if key in attributes}
                if content:
                    log_record.attributes = {**dict(attributes), **self._redact(content)}

    def _redact(self, content: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self._get_redactor().redact_attributes(content).attributes)
        except Exception:
            # Fail closed: a value that could not be redacted is never left in place.
            logger.warning("spanguard: redaction in the GenAI completion hook failed; content replaced")
            return dict.fromkeys(content, FAILED_MARKER)


def completion_hook() -> RedactionCompletionHook:
    """The entry point ``opentelemetry_genai_completion_hook: spanguard_redaction``."""
    return RedactionCompletionHook()

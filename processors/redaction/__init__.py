"""PII and secret redaction over plain values: texts, attribute maps and span views, for the app and the collector.

The public API is re-exported here; what is detected, where, with which operators, and how it fails closed:
docs/redaction.md.
"""

from __future__ import annotations

from spanguard.processors.redaction.config import (
    DEFAULT_ALWAYS_DROP,
    DEFAULT_NEVER_SCAN,
    DEFAULT_REDACT_KEY_WORDS,
    DEFAULT_REDACT_KEYS,
    Operator,
    PatternSpec,
    RecognizerSpec,
    RedactionConfig,
)
from spanguard.processors.redaction.engine import (
    CONTENT_ATTRIBUTES,
    MESSAGE_ATTRIBUTES,
    STRUCTURAL_KEYS,
    URL_KEYS,
    Redactor,
    default_redactor,
)
from spanguard.processors.redaction.entities import (
    DEFAULT_ENTITIES,
    ENTITY_GROUPS,
    KEY_ENTITIES,
    NER_ENTITIES,
    SECRET_ENTITIES,
    STRUCTURED_ENTITIES,
)
from spanguard.processors.redaction.registry import RecognizerRegistry, RegisteredRecognizer, builtin_registry
from spanguard.processors.redaction.results import Detection, RedactedAttributes, RedactedText
from spanguard.processors.redaction.screen import Trigger
from spanguard.semconv.redaction import DROPPED_KEY, DROPPED_MARKER, FAILED_MARKER, REDACTION_FAILED

__all__ = [
    "CONTENT_ATTRIBUTES",
    "DEFAULT_ALWAYS_DROP",
    "DEFAULT_ENTITIES",
    "DEFAULT_NEVER_SCAN",
    "DEFAULT_REDACT_KEYS",
    "DEFAULT_REDACT_KEY_WORDS",
    "DROPPED_KEY",
    "DROPPED_MARKER",
    "ENTITY_GROUPS",
    "FAILED_MARKER",
    "KEY_ENTITIES",
    "MESSAGE_ATTRIBUTES",
    "NER_ENTITIES",
    "REDACTION_FAILED",
    "SECRET_ENTITIES",
    "STRUCTURAL_KEYS",
    "STRUCTURED_ENTITIES",
    "URL_KEYS",
    "Detection",
    "Operator",
    "PatternSpec",
    "RecognizerRegistry",
    "RecognizerSpec",
    "RedactedAttributes",
    "RedactedText",
    "RedactionConfig",
    "Redactor",
    "RegisteredRecognizer",
    "Trigger",
    "builtin_registry",
    "default_redactor",
]

"""What the redactor returns: redacted texts and attribute maps, and the detections it merged (never the values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Detection", "RedactedAttributes", "RedactedText"]


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected entity: its type, character offsets in the analyzed text and score (never the value)."""

    entity_type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class RedactedText:
    """A redacted text and the types of what was redacted, one per occurrence, in text order."""

    text: str
    entities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedactedAttributes:
    """A new attribute map, the number of redactions in it and their types."""

    attributes: dict[str, Any]
    count: int = 0
    entities: frozenset[str] = frozenset()

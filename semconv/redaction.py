"""Redaction's marks, the vocabulary other parts read back: the values that stand for what redaction removed.

Their meaning: docs/redaction.md ("How it works": fails closed, ``always_drop``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DROPPED_KEY", "DROPPED_MARKER", "FAILED_MARKER", "REDACTION_FAILED"]

REDACTION_FAILED: Final = "REDACTION_FAILED"
"""The entity type counted (in ``spanguard.redaction.entities``) for a value that failed closed."""
FAILED_MARKER: Final = f"<{REDACTION_FAILED}>"
"""What a value that could not be analysed in time (or at all) becomes."""
DROPPED_KEY: Final = "DROPPED_KEY"
"""The entity type counted for an attribute (or JSON value) removed because its key matches ``always_drop``."""
DROPPED_MARKER: Final = f"<{DROPPED_KEY}>"
"""What the value of an always-dropped JSON object key becomes (the key stays)."""

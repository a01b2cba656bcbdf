"""Pinned model versions: is a requested model a fixed snapshot or an alias the provider can move?

A model is pinned when its name carries a snapshot date or version (``gpt-4o-2024-08-06``, ``gpt-4-0613``,
``claude-sonnet-4-5-20250929``, ``claude-3-5-sonnet-v2@20241022``, ``gemini-1.5-pro-002``, ``...-v1:0``) or is a
fine-tuned model (``ft:...``); an alias otherwise (``gpt-4o``, ``claude-sonnet-4-5``, anything ``latest``).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

__all__ = [
    "ModelRegistry",
    "UnpinnedModelError",
    "is_pinned",
]

logger = logging.getLogger("spanguard.instrumentation")

_SNAPSHOT: Final = re.compile(
    r"""(?x)
    (?:^|[-_@.])(?:
        \d{4}-\d{2}-\d{2}        # gpt-4o-2024-08-06
      | \d{8}                    # claude-sonnet-4-5-20250929, @20241022
      | \d{4}                    # gpt-4-0613, gpt-3.5-turbo-0125 (MMDD snapshots)
      | \d{3}                    # gemini-1.5-pro-002
    )(?:-v\d+(?::\d+)?)?$        # bedrock's -v2:0 after the date
    | -v\d+:\d+$                 # bedrock: anthropic.claude-...-v1:0
    """
)
_ALIAS_WORDS: Final = re.compile(r"(?i)(?:^|[-_.@:/])latest(?:$|[-_.@:/])")


def is_pinned(model: str) -> bool:
    """Whether ``model`` names a dated or versioned snapshot rather than an alias."""
    name = model.strip()
    if not name or _ALIAS_WORDS.search(name):
        return False
    if name.startswith("ft:"):
        return True
    # Provider prefixes such as "openai/" or "us.anthropic." do not change what the name pins.
    base = name.rsplit("/", 1)[-1]
    return bool(_SNAPSHOT.search(base))


class UnpinnedModelError(ValueError):
    """Raised before a call is sent when ``require_pinned_models`` is on and the model is an alias."""

    def __init__(self, model: str, last_snapshot: str | None) -> None:
        self.model = model
        self.last_snapshot = last_snapshot
        hint = (
            f"; the provider last answered it with {last_snapshot!r}, pin that"
            if last_snapshot
            else "; pin a dated snapshot"
        )
        super().__init__(
            f"spanguard: model {model!r} is an alias, not a pinned snapshot, and require_pinned_models is on{hint}"
        )


class ModelRegistry:
    """Remembers which aliases were warned about and which snapshot each alias last resolved to."""

    def __init__(self, require_pinned: bool = False, max_models: int = 1024) -> None:
        self.require_pinned = require_pinned
        self._max = max_models
        self._pinned: dict[str, bool] = {}
        self._snapshots: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe_request(self, model: str) -> bool:
        """Classify a requested model, warn once per alias, and refuse it when pinning is required."""
        pinned = self._pinned.get(model)
        if pinned is None:
            pinned = is_pinned(model)
            with self._lock:
                first = model not in self._pinned
                if len(self._pinned) < self._max:
                    self._pinned[model] = pinned
            if first and not pinned:
                logger.warning(
                    "spanguard: model %r is an alias, not a pinned snapshot; its behaviour can change under you",
                    model,
                )
        if not pinned and self.require_pinned:
            raise UnpinnedModelError(model, self._snapshots.get(model))
        return pinned

    def observe_response(self, requested: str, answered: str) -> None:
        """Record the snapshot an alias resolved to, for the next refusal's hint."""
        if requested != answered and (requested in self._snapshots or len(self._snapshots) < self._max):
            self._snapshots[requested] = answered

    def last_snapshot(self, alias: str) -> str | None:
        """The snapshot the provider last answered ``alias`` with, when known."""
        return self._snapshots.get(alias)

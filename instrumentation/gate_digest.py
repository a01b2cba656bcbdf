"""The digest an approval is bound to: SHA-256 of the RFC 8785 canonical JSON of the action, its arguments and the
session, so an approval cannot run another action, other arguments or another session's call. Arguments that are not
JSON values (NaN, integers past 2**53, non-string keys, objects) have no digest, and the gate denies rather than
guess. See docs/gates.md ("Argument digests").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785

__all__ = ["DigestError", "argument_digest"]


class DigestError(ValueError):
    """Arguments that cannot be canonicalised, so no approval can be bound to them."""


def argument_digest(action: str, arguments: Mapping[str, Any], session_id: str | None = None) -> str:
    """The hex SHA-256 of the canonical form of ``{"action", "arguments", "session"}``."""
    if not isinstance(action, str) or not action:
        raise DigestError("the action must be a non-empty string")
    if not isinstance(arguments, Mapping):
        raise DigestError(f"the arguments must be an object, got {type(arguments).__name__}")
    try:
        canonical = rfc8785.dumps({"action": action, "arguments": dict(arguments), "session": session_id})
    except (rfc8785.CanonicalizationError, RecursionError, TypeError) as error:
        raise DigestError(f"the arguments are not JSON values: {error}") from None
    return hashlib.sha256(canonical).hexdigest()

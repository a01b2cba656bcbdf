"""spanguard: human-in-the-loop reliability for LLM applications, on OpenTelemetry.

``spanguard.instrument()`` turns every OpenAI and Anthropic SDK call into a GenAI span;
``session()``, ``agent()`` and ``tool`` group those spans into conversations and agent loops; ``gate`` and
``approval()`` make a risky action wait for a person's approval (docs/gates.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

from spanguard._instrument import instrument, is_instrumented, uninstrument
from spanguard.instrumentation.gate import (
    ApprovalError,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Granted,
    approval,
    gate,
    last_grant,
    resume,
)
from spanguard.instrumentation.models import UnpinnedModelError
from spanguard.instrumentation.session import agent, session, tool

__all__ = [
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Granted",
    "UnpinnedModelError",
    "__version__",
    "agent",
    "approval",
    "gate",
    "instrument",
    "is_instrumented",
    "last_grant",
    "resume",
    "session",
    "tool",
    "uninstrument",
]

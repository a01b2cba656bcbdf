"""Instrumentation of LLM libraries, one module per library, plus sessions, agents and tools."""

from __future__ import annotations

from typing import Final

INSTRUMENTORS: Final = (
    ("spanguard.instrumentation.openai", "OpenAIInstrumentor", "openai"),
    ("spanguard.instrumentation.anthropic", "AnthropicInstrumentor", "anthropic"),
)
"""Each supported library: the instrumentor's module, its class and the library's import name."""

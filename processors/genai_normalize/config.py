"""The ``genai_normalize`` processor's settings (docs/instrumentation.md, "Spans from other instrumentations")."""

from __future__ import annotations

from typing import Literal

import pydantic

__all__ = ["GenAiNormalizeConfig", "SourceName"]

SourceName = Literal["openinference", "openllmetry", "vercel_ai", "official_legacy"]


class GenAiNormalizeConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.genai_normalize``: maps OpenInference, OpenLLMetry, Vercel AI SDK and older official GenAI spans
    onto the latest GenAI conventions; put it first in a traces pipeline."""

    sources: list[SourceName] = ["openinference", "openllmetry", "vercel_ai", "official_legacy"]
    """The span shapes to recognise, tried in this order."""
    drop_original: bool = False
    """Remove the source's own attributes and the events folded in, keeping only the conventions' attributes."""

"""The ``genai_normalize`` processor's settings (docs/instrumentation.md, "Spans from other instrumentations")."""

from __future__ import annotations

from typing import Literal

import pydantic

from spanguard.durations import Duration

__all__ = ["GenAiNormalizeConfig", "SourceName"]

SourceName = Literal["openinference", "openllmetry", "vercel_ai", "official_legacy"]


class GenAiNormalizeConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.genai_normalize``: maps OpenInference, OpenLLMetry, Vercel AI SDK and older official GenAI spans
    onto the latest GenAI conventions (first in a traces pipeline); in a logs pipeline, after ``redaction``, keeps
    GenAI content log records for the spans they belong to."""

    sources: list[SourceName] = ["openinference", "openllmetry", "vercel_ai", "official_legacy"]
    """The span shapes to recognise, tried in this order."""
    drop_original: bool = False
    """Remove the source's own attributes and the events folded in, keeping only the conventions' attributes."""
    fold_max_spans: pydantic.PositiveInt = 10_000
    """In a logs pipeline: the most spans whose content log records wait for their span (the oldest go first)."""
    fold_ttl: Duration = 120.0
    """In a logs pipeline: how long content log records wait for their span."""
    fold_max_mib: pydantic.PositiveInt = 64
    """In a logs pipeline: the most content log records waiting for their span, in MiB as they came on the wire."""

"""The ``genai_normalize`` processor: other GenAI instrumentations' spans in the latest GenAI conventions' shape.

Behaviour: docs/instrumentation.md ("Spans from other instrumentations").
"""

from __future__ import annotations

from collections.abc import Sequence

from spanguard.processors.genai_normalize.config import GenAiNormalizeConfig, SourceName
from spanguard.processors.genai_normalize.mapping import SOURCES, Mapped, Source, normalize_attributes
from spanguard.processors.view import SpanView, with_attributes

__all__ = ["SOURCES", "GenAiNormalizeConfig", "Mapped", "Normalizer", "Source", "SourceName", "normalize_attributes"]


class Normalizer:
    """Normalizes span views as its config says (pure: views in, views out)."""

    def __init__(self, config: GenAiNormalizeConfig | None = None) -> None:
        self.config = config or GenAiNormalizeConfig()
        by_name = {source.name: source for source in SOURCES}
        self._sources = tuple(by_name[name] for name in self.config.sources)
        self.normalized = 0
        """Spans changed so far."""

    def normalize(self, view: SpanView) -> SpanView:
        """The view in the conventions' shape: a new view when something was mapped, ``view`` itself otherwise."""
        result = normalize_attributes(
            view.attributes, view.events, sources=self._sources, drop_original=self.config.drop_original
        )
        if result is None:
            return view
        attributes, events, _ = result
        self.normalized += 1
        out = with_attributes(view, attributes)
        if len(events) != len(view.events):
            out.events = events
        return out

    def normalize_all(self, views: Sequence[SpanView]) -> list[SpanView]:
        """Each view normalized, in order."""
        return [self.normalize(view) for view in views]

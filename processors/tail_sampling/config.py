"""The ``tail_sampling`` processor's config model (``processors.tail_sampling``). Behaviour: docs/sampling.md."""

from __future__ import annotations

from typing import Any

import pydantic

from spanguard.processors.tail_sampling.sampler import SamplingConfig

__all__ = ["TailSamplingProcessorConfig"]


class TailSamplingProcessorConfig(SamplingConfig, frozen=True, extra="forbid"):
    """``processors.tail_sampling``: the sampler's settings plus how often buffered traces are checked."""

    poll_interval: float = pydantic.Field(default=0.5, gt=0, le=60)
    """Seconds between checks of the buffered traces for ones due a decision."""

    def for_worker(self, index: int, workers: int) -> TailSamplingProcessorConfig:
        """Worker ``index``'s share of the memory bounds and review budgets, so the configured totals still hold."""

        def share(total: int, minimum: int = 0) -> int:
            return max(minimum, total // workers + (1 if index < total % workers else 0))

        update: dict[str, Any] = {
            "max_traces": share(self.max_traces, 1),
            "max_spans": share(self.max_spans, 1),
            "session_hold_spans": share(self.session_hold_spans, 1),
        }
        if self.review_budget is not None:
            update["review_budget"] = {tier: share(limit) for tier, limit in self.review_budget.items()}
        return self.model_copy(update=update)

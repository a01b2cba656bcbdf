"""The ``batch`` processor's config model (``processors.batch``). Behaviour: docs/collector-config.md."""

from __future__ import annotations

import pydantic

__all__ = ["BatchProcessorConfig"]


class BatchProcessorConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.batch``: split batches larger than ``send_batch_max_size`` spans (holds nothing in memory)."""

    send_batch_max_size: int = pydantic.Field(default=8192, gt=0)
    """Spans per batch at most; a larger batch is passed on in pieces of this size."""

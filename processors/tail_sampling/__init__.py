"""Risk-based tail sampling (the ``tail_sampling`` processor): keep or drop whole traces by their risk tier.

The sampler is :mod:`spanguard.processors.tail_sampling.sampler`, the per-session memory of the cross-turn detectors
``session_memory.py``; the collector component is ``config.py`` and ``factory.py`` here. Behaviour: docs/sampling.md.
"""

from spanguard.processors.tail_sampling.sampler import (
    REASON_APPROVAL_GATE,
    REASON_CLASSIFICATION_FAILED,
    REASON_SESSION_RED,
    REVIEW_TIERS,
    Decision,
    SamplingConfig,
    TailSampler,
    TraceClassifier,
    sampling_value,
    should_keep,
)

__all__ = [
    "REASON_APPROVAL_GATE",
    "REASON_CLASSIFICATION_FAILED",
    "REASON_SESSION_RED",
    "REVIEW_TIERS",
    "Decision",
    "SamplingConfig",
    "TailSampler",
    "TraceClassifier",
    "sampling_value",
    "should_keep",
]

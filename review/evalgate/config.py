"""The gate's settings: ``--config gate.yaml`` (through the one YAML loader) under the command line's options.

Unknown keys and bad values are refused with the key's path, line and column. The ``scorers`` section belongs to the
scorers module and is validated by its ``ScorersConfig`` model when it has one. Behaviour: docs/datasets.md ("The
gate").
"""

from __future__ import annotations

import os
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from spanguard.review.evalgate import scorers as _scorers
from spanguard.yamlconfig import load_file

__all__ = ["DEFAULT_CACHE", "GateConfig", "ScorersSection", "load_config"]

DEFAULT_CACHE: Final = ".spanguard/gate-cache.json"

ScorersSection: Any = getattr(_scorers, "ScorersConfig", None) or dict[str, Any]
"""The scorers' own config model (a plain mapping until they declare one)."""


class GateConfig(BaseModel):
    """How the gate runs a target and decides; every key has a default, the command line overrides each."""

    model_config = ConfigDict(extra="forbid")
    target: str | None = None
    """``module:function``, ``path/file.py:function`` or an OpenAI-compatible URL (``--target``)."""
    model: str | None = None
    """The model a URL target is asked for (``--model``)."""
    threshold: float = Field(0.0, ge=0, le=1)
    """The aggregate threshold: the mean score of the settled cases must reach it (``--threshold``)."""
    concurrency: int = Field(4, ge=1, le=256)
    timeout: float = Field(60.0, gt=0, le=3600)
    """Seconds per target call attempt (``--timeout``)."""
    retries: int = Field(2, ge=0, le=20)
    """Attempts after a failed or timed-out call (``--retries``)."""
    backoff: float = Field(0.5, ge=0, le=60)
    """Seconds before the first retry, doubled after each."""
    trials: int = Field(1, ge=1, le=25)
    """Runs of each judged (non-deterministic) scorer per case (``--trials``)."""
    majority: float = Field(0.5, ge=0.5, lt=1)
    """A judged scorer passes when more than this share of its trials pass."""
    cache: str | None = DEFAULT_CACHE
    """The score cache file (relative to the working directory); null: no cache."""
    scorers: ScorersSection = Field(default_factory=ScorersSection)


def load_config(path: str | os.PathLike[str] | None) -> GateConfig:
    """The config in ``path`` (every default when None); a ``spanguard.yamlconfig.ConfigError`` headed "invalid gate
    config" naming each problem."""
    if path is None:
        return GateConfig()
    return load_file(path, GateConfig, what="gate config", label="gate config")

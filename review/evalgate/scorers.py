"""STUB, written by the gate runner's author until the scorers land: replace this whole file.

The interface the runner (runner.py) uses, and nothing more: ``for_case(case, config) -> list[Scorer]``; each
scorer has ``name``, ``weight``, ``threshold`` and ``score(case, output) -> Score`` (``output`` is the target's
assistant :class:`~spanguard.review.evalgate.dataset.Message`); ``aggregate(case, scored) -> CaseResult`` over
``(scorer, score)`` pairs. Optional on a scorer: ``deterministic = False`` (a judge: ``--trials`` runs it N times) and
``cache_key`` (a string naming its whole config; else its ``repr``). Only the trivial checks are here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanguard.review.evalgate.dataset import EvalCase, Message

__all__ = ["CaseResult", "Score", "Scorer", "aggregate", "for_case"]


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one output: a score in [0, 1], passed (None: cannot settle), a short reason."""

    score: float
    passed: bool | None
    reason: str


@dataclass(frozen=True)
class CaseResult:
    """A case's verdict: the weighted score of its settled scorers, passed (None: pending human), a reason."""

    score: float
    passed: bool | None
    reason: str


def _normal(text: Any) -> str:
    return " ".join(str(text or "").lower().split()).rstrip(".")


@dataclass(frozen=True)
class Scorer:
    """A stub scorer: ``kind`` is contains, not_contains, exact, equals_correction or not_rejected_call."""

    name: str
    kind: str
    value: Any = None
    weight: float = 1.0
    threshold: float | None = None

    def score(self, case: EvalCase, output: Message) -> Score:
        text = output.content if isinstance(output.content, str) else ""
        if self.kind == "contains":
            ok = str(self.value) in text
        elif self.kind == "not_contains":
            ok = str(self.value) not in text
        elif self.kind == "exact":
            ok = text == str(self.value)
        elif self.kind == "equals_correction":
            ok = _normal(text) == _normal(self.value)
        elif self.kind == "not_rejected_call":
            names = {call.function.name for call in output.tool_calls or ()}
            ok = self.value not in names
        elif self.kind == "regex":
            ok = re.search(str(self.value), text) is not None
        else:
            return Score(0.0, None, f"the stub has no {self.kind!r} scorer")
        return Score(1.0 if ok else 0.0, ok, f"{self.kind}: {'ok' if ok else 'not met'}")


def for_case(case: EvalCase, config: Any) -> list[Scorer]:
    """The stub's scorers for ``case``: its assertions, else the correction and the rejected calls."""
    scorers = [
        Scorer(f"{a.type}[{i}]", a.type, (a.model_extra or {}).get("value"), a.weight, a.threshold)
        for i, a in enumerate(case.assertions)
    ]
    if not scorers and case.expected_output is not None:
        scorers.append(Scorer("equals_correction", "equals_correction", case.expected_output.content))
    for call in case.rejected_tool_calls if not case.assertions else ():
        scorers.append(Scorer(f"not_called[{call.name}]", "not_rejected_call", call.name))
    if not scorers and case.outcome == "approve" and case.original_output is not None:
        scorers.append(Scorer("equals_approved", "equals_correction", case.original_output.content))
    return scorers


def aggregate(case: EvalCase, scored: Sequence[tuple[Scorer, Score]]) -> CaseResult:
    """The weighted mean of the settled scores; passes when each thresholded scorer and the case threshold hold."""
    settled = [(scorer, score) for scorer, score in scored if score.passed is not None]
    if not settled:
        return CaseResult(0.0, None, "no scorer can settle the case")
    total = sum(scorer.weight for scorer, _ in settled) or 1.0
    value = sum(scorer.weight * score.score for scorer, score in settled) / total
    failed = [scorer.name for scorer, score in settled if score.passed is False and scorer.threshold is not None]
    failed += [scorer.name for scorer, score in settled if score.passed is False and scorer.threshold is None]
    threshold = case.threshold if case.threshold is not None else 1.0
    passed = not failed and value >= threshold
    return CaseResult(value, passed, "ok" if passed else "failed: " + ", ".join(failed) or json.dumps(value))

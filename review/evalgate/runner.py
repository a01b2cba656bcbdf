"""The gate's run: the target on every case, each output scored, judged scorers run ``trials`` times, scores cached.

A case's scorers come from the scorers module (``for_case``) and its verdict from ``aggregate``; this module only
schedules, retries, caches and records. A target that keeps failing stops the run: cases not started are ``not_run``.
Scores are cached by (case id, SHA-256 of the target's output, scorer and its config, trial), so an unchanged rerun
costs no judge call. Behaviour: docs/datasets.md ("The gate").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from spanguard.review.evalgate import scorers as default_scorers
from spanguard.review.evalgate.config import GateConfig
from spanguard.review.evalgate.dataset import Dataset, EvalCase, Message
from spanguard.review.evalgate.targets import Caller, NotCalled, TargetFailed
from spanguard.semconv import StrEnum

__all__ = [
    "CACHE_VERSION",
    "CaseOutcome",
    "CaseStatus",
    "RunResult",
    "ScoreCache",
    "ScorerResult",
    "output_digest",
    "run_gate",
    "run_gate_sync",
]

CACHE_VERSION: Final = 1
_REASON_MAX: Final = 500


class CaseStatus(StrEnum):
    """What became of one case."""

    PASSED = "passed"
    FAILED = "failed"
    PENDING_HUMAN = "pending_human"
    """No scorer could settle it (the judge abstained): left to people, neither pass nor fail."""
    ERROR = "error"
    """A scorer raised: the case has no verdict, and the gate fails."""
    TARGET_FAILED = "target_failed"
    """The target (or the judge's endpoint) failed on every attempt: the run exits 3."""
    NOT_RUN = "not_run"
    """Not started: the run stopped after a target failure."""


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    # The judge's endpoint failing is the same kind of fault as the target failing (exit 3), not a scorer error.
    try:
        from spanguard.review.evalgate.judge import JudgeUnavailable
    except ImportError:
        return (TargetFailed,)
    return (TargetFailed, JudgeUnavailable)


@dataclass(frozen=True)
class ScorerResult:
    """One scorer's result on one case (trials combined)."""

    name: str
    weight: float
    threshold: float | None
    score: float
    passed: bool | None
    reason: str
    cached: bool = False
    """Every trial came from the cache."""
    skipped: bool = False
    """Not needed: the judge, when the checks settled the case (left out of the case's score)."""
    trials: tuple[bool | None, ...] = ()
    """Each trial's verdict, when the scorer ran more than once."""
    agreement: float | None = None
    """The share of trials that agree with the most common verdict (1.0: all agree)."""
    error: str | None = None
    reasoning: str = ""
    """The judge's own words (free text, never logged): what a person reading a pending case is shown."""
    judged: bool = False
    """An LLM judge's result (it was asked): what becomes a ``gen_ai.evaluation.result`` event."""


@dataclass
class CaseOutcome:
    """One case's result: its status, its weighted score and reason, each scorer's result."""

    id: str
    status: CaseStatus
    score: float | None = None
    reason: str = ""
    scorers: list[ScorerResult] = field(default_factory=list)
    output_sha256: str | None = None
    output: dict[str, Any] | None = None
    """The target's output (OpenAI chat message), kept for a pending-human case only: escalation sends it."""
    duration_s: float = 0.0
    line: int | None = None
    tags: tuple[str, ...] = ()


@dataclass
class RunResult:
    """A whole run: every case in dataset order, the aggregate score, and what the run cost."""

    dataset: Dataset
    target: str
    config: GateConfig
    cases: list[CaseOutcome]
    started_at: float
    duration_s: float
    target_calls: int = 0
    scorer_calls: int = 0
    cache_hits: int = 0
    target_error: str | None = None

    @property
    def aggregate(self) -> float | None:
        """The mean score of the settled (passed or failed) cases; None when none is settled."""
        scores = [
            c.score for c in self.cases if c.status in (CaseStatus.PASSED, CaseStatus.FAILED) and c.score is not None
        ]
        return sum(scores) / len(scores) if scores else None

    def count(self, status: CaseStatus) -> int:
        """How many cases ended with ``status``."""
        return sum(1 for case in self.cases if case.status is status)


def output_digest(output: Message) -> str:
    """The SHA-256 of an output's canonical JSON: the cache's key for "the same output"."""
    data = json.dumps(output.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _fingerprint(scorer: Any) -> str | None:
    """What names a scorer and its whole config, or None when nothing does (then it is never cached)."""
    key = getattr(scorer, "cache_key", None)
    if key is None:
        key = repr(scorer)
        if " at 0x" in key:  # the default repr names the object, not its config
            return None
    return f"{type(scorer).__module__}.{type(scorer).__qualname__}:{key}"


class ScoreCache:
    """Scores by (case, output digest, scorer fingerprint, trial), in a JSON file written atomically on save.

    A cache file that cannot be read is started afresh (it is only a cache); it holds scores and reasons, no
    messages or outputs.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.problem: str | None = None
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text("utf-8"))
                if data.get("schema_version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
                    self.entries = data["entries"]
                else:
                    self.problem = f"{self.path}: not a score cache of version {CACHE_VERSION}; starting afresh"
            except (OSError, ValueError, AttributeError) as error:
                self.problem = f"{self.path}: cannot read the score cache ({type(error).__name__}); starting afresh"

    @staticmethod
    def key(case_id: str, digest: str, fingerprint: str, trial: int) -> str:
        """The entry's key: a SHA-256 over its parts."""
        return hashlib.sha256(json.dumps([case_id, digest, fingerprint, trial]).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached score's fields under ``key``, or None."""
        entry = self.entries.get(key)
        if not isinstance(entry, dict) or not {"score", "passed", "reason"} <= entry.keys():
            return None
        self.hits += 1
        return entry

    def put(self, key: str, score: Any) -> None:
        """Remember ``score`` (every field of a dataclass score; else score, passed and reason) under ``key``."""
        if dataclasses.is_dataclass(score) and not isinstance(score, type):
            fields = dataclasses.asdict(score)
        else:
            fields = {"score": score.score, "passed": score.passed, "reason": score.reason}
        try:
            json.dumps(fields)
        except (TypeError, ValueError):
            return  # a field that is not JSON cannot come back from the file: not cached
        self.entries[key] = fields

    def save(self) -> None:
        """Write the cache (atomically: a crash leaves the old file or the new one)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=".gate-cache-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"schema_version": CACHE_VERSION, "entries": self.entries}, out, separators=(",", ":"))
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _CachedScore:
    score: float
    passed: bool | None
    reason: str


def _short(text: Any) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 3] + "..."


def _combine(scores: Sequence[Any], majority: float) -> tuple[float, bool | None, str, float]:
    """Trials' scores as one: passes on more than ``majority`` passing, pending on more than ``majority``
    abstaining, else fails; the score is the mean of the settled trials."""
    n = len(scores)
    votes = [score.passed for score in scores]
    passes, fails, abstains = votes.count(True), votes.count(False), votes.count(None)
    settled = [float(score.score) for score in scores if score.passed is not None]
    value = sum(settled) / len(settled) if settled else 0.0
    agreement = max(passes, fails, abstains) / n
    passed: bool | None
    if passes > majority * n:
        passed = True
    elif abstains > majority * n:
        passed = None
    else:
        passed = False
    first = next((s.reason for s in scores if s.passed is passed), scores[0].reason)
    reason = f"{passes} of {n} trials passed ({fails} failed, {abstains} abstained); {first}"
    return value, passed, reason, agreement


class _Run:
    def __init__(self, config: GateConfig, caller: Caller, provider: Any, cache: ScoreCache) -> None:
        self.config = config
        self.caller = caller
        self.provider = provider
        self.cache = cache
        self.scorer_calls = 0
        self.unavailable = _unavailable_errors()
        self.reraised: tuple[type[BaseException], ...] = (NotCalled, *self.unavailable)
        self.scoring = asyncio.Semaphore(config.concurrency)
        self.make_score = getattr(provider, "Score", _CachedScore)
        try:
            takes_config = "config" in inspect.signature(provider.aggregate).parameters
        except (TypeError, ValueError):
            takes_config = False
        self.aggregate_options = {"config": config.scorers} if takes_config else {}

    async def score(self, scorer: Any, case: EvalCase, output: Message, digest: str, trial: int) -> Any:
        fingerprint = _fingerprint(scorer)
        key = ScoreCache.key(case.id, digest, fingerprint, trial) if fingerprint is not None else None
        if key is not None and (hit := self.cache.get(key)) is not None:
            try:
                return self.make_score(**hit), True
            except TypeError:  # written by another version of the scorers: score again
                self.cache.hits -= 1
        self.scorer_calls += 1
        async with self.scoring:
            if self.caller.stopped is not None and not getattr(scorer, "deterministic", True):
                raise NotCalled(case.id)  # the judge's endpoint is down: asking it again only waits longer
            if getattr(scorer, "deterministic", True):
                result = scorer.score(case, output)
            else:  # a judge: a network call, kept off the event loop
                result = await asyncio.to_thread(scorer.score, case, output)
            if inspect.isawaitable(result):
                result = await result
        if key is not None:
            self.cache.put(key, result)
        return result, False

    async def scorer_result(
        self, scorer: Any, case: EvalCase, output: Message, digest: str
    ) -> tuple[ScorerResult, Any]:
        name = str(getattr(scorer, "name", type(scorer).__name__))
        weight = float(getattr(scorer, "weight", 1.0))
        threshold = getattr(scorer, "threshold", None)
        trials = 1 if getattr(scorer, "deterministic", True) else self.config.trials
        try:
            pairs = [await self.score(scorer, case, output, digest, trial) for trial in range(trials)]
        except self.reraised:
            raise
        except Exception as error:
            reason = _short(f"{type(error).__name__}: {error}")
            return ScorerResult(name, weight, threshold, 0.0, None, "", error=reason), None
        scores = [score for score, _ in pairs]
        cached = all(hit for _, hit in pairs)
        skipped = all(getattr(s, "skipped", False) for s in scores)
        if trials == 1 or skipped:  # a judge the checks made unnecessary was not asked: nothing to vote on
            s = scores[0]
            result = ScorerResult(name, weight, threshold, float(s.score), s.passed, _short(s.reason), cached, skipped)
            judged = not getattr(scorer, "deterministic", True) and not skipped
            return dataclasses.replace(result, reasoning=str(getattr(s, "reasoning", "")), judged=judged), s
        value, passed, reason, agreement = _combine(scores, self.config.majority)
        first = next((s for s in scores if s.passed is passed), scores[0])
        combined = (
            dataclasses.replace(first, score=value, passed=passed, reason=reason)
            if dataclasses.is_dataclass(first) and not isinstance(first, type)
            else _CachedScore(value, passed, reason)
        )
        result = ScorerResult(
            name,
            weight,
            threshold,
            value,
            passed,
            _short(reason),
            cached,
            trials=tuple(s.passed for s in scores),
            agreement=agreement,
            reasoning=str(getattr(first, "reasoning", "")),
            judged=True,
        )
        return result, combined

    async def case(self, case: EvalCase, line: int | None) -> CaseOutcome:
        started = time.perf_counter()
        outcome = CaseOutcome(case.id, CaseStatus.NOT_RUN, line=line, tags=tuple(case.tags))
        try:
            output = await self.caller(case.id, case.messages())
            outcome.output_sha256 = digest = output_digest(output)
            scorers = list(self.provider.for_case(case, self.config.scorers))
            results = [await self.scorer_result(scorer, case, output, digest) for scorer in scorers]
        except NotCalled:
            outcome.reason = (
                "not run: the run stopped after the target failed"
                if self.caller.failure
                else ("not run: the run stopped after the judge's endpoint failed")
            )
            return outcome
        except self.unavailable as error:
            outcome.status, outcome.reason = CaseStatus.TARGET_FAILED, _short(error)
            self.caller.stop(outcome.reason)
            return outcome
        except Exception as error:  # for_case refused the case: no verdict, and the gate fails
            outcome.status, outcome.reason = CaseStatus.ERROR, _short(f"scorers: {type(error).__name__}: {error}")
            return outcome
        finally:
            outcome.duration_s = time.perf_counter() - started
        outcome.scorers = [result for result, _ in results]
        errors = [r for r in outcome.scorers if r.error is not None]
        if errors:
            outcome.status = CaseStatus.ERROR
            outcome.reason = "; ".join(f"{r.name}: {r.error}" for r in errors)
            return outcome
        pairs = [(scorer, score) for scorer, (_, score) in zip(scorers, results, strict=True)]
        try:
            verdict = self.provider.aggregate(case, pairs, **self.aggregate_options)
        except Exception as error:
            outcome.status, outcome.reason = CaseStatus.ERROR, _short(f"aggregate: {type(error).__name__}: {error}")
            return outcome
        outcome.score = float(verdict.score)
        outcome.reason = _short(getattr(verdict, "reason", ""))
        passed = verdict.passed
        outcome.status = (
            CaseStatus.PENDING_HUMAN if passed is None else CaseStatus.PASSED if passed else CaseStatus.FAILED
        )
        if passed is None:
            outcome.output = output.model_dump(exclude_none=True)
        return outcome


async def run_gate(
    dataset: Dataset,
    caller: Caller,
    config: GateConfig,
    *,
    scorers: Any = default_scorers,
    cache: ScoreCache | None = None,
    save_cache: bool = True,
) -> RunResult:
    """Run ``caller``'s target on every case of ``dataset`` and score each output with ``scorers`` (a module or
    object with ``for_case`` and ``aggregate``); the cache is saved at the end, whatever happened (unless
    ``save_cache`` is false: the caller saves it)."""
    cache = cache if cache is not None else ScoreCache(config.cache)
    run = _Run(config, caller, scorers, cache)
    started, clock = time.time(), time.perf_counter()
    try:
        outcomes = await asyncio.gather(*(run.case(case, dataset.lines.get(case.id)) for case in dataset.cases))
    finally:
        await caller.close()
        if save_cache:
            cache.save()
    return RunResult(
        dataset=dataset,
        target=caller.target.description,
        config=config,
        cases=list(outcomes),
        started_at=started,
        duration_s=time.perf_counter() - clock,
        target_calls=caller.calls,
        scorer_calls=run.scorer_calls,
        cache_hits=cache.hits,
        target_error=str(caller.failure) if caller.failure is not None else None,
    )


def run_gate_sync(dataset: Dataset, caller: Caller, config: GateConfig, **options: Any) -> RunResult:
    """:func:`run_gate` on a new event loop."""
    return asyncio.run(run_gate(dataset, caller, config, **options))

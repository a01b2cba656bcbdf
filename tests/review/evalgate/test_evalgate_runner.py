"""The gate's runner in process: the concurrency limit (counted in the target), trials and their majority, the score
cache (judge calls counted, with a scripted judge and with the real judge on the fake provider), scorer errors,
pending-human cases and the aggregate threshold."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_provider import error, text
from gate_helpers import CAPITAL, SUM, case, write_cases

from spanguard.review.evalgate import scorers as real_scorers
from spanguard.review.evalgate.config import GateConfig
from spanguard.review.evalgate.dataset import load_dataset
from spanguard.review.evalgate.report import EXIT_FAILED, EXIT_OK, EXIT_TARGET_FAILED, decide
from spanguard.review.evalgate.runner import CaseStatus, ScoreCache, run_gate_sync
from spanguard.review.evalgate.targets import Caller, PythonTarget


def dataset(tmp_path: Path, *cases: dict[str, Any]):
    return load_dataset(write_cases(tmp_path / "cases.jsonl", *cases))


def answering(text_: str = "Canberra is the capital of Australia.") -> PythonTarget:
    return PythonTarget(lambda messages: text_, "test:answer")


def test_async_target_calls_never_exceed_the_concurrency_limit_and_reach_it(tmp_path):
    limit, active, peak = 3, 0, 0
    full = asyncio.Event()

    async def target(messages):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active >= limit:
            full.set()
        try:
            await asyncio.wait_for(full.wait(), 10)  # hold the slot until the limit is reached once
        except TimeoutError:
            pass
        active -= 1
        return "Canberra is the capital of Australia."

    cases = [case(f"case_{n}", "What is the capital of Australia?") for n in range(10)]
    run = run_gate_sync(
        dataset(tmp_path, *cases), Caller(PythonTarget(target, "t"), concurrency=limit), GateConfig(cache=None)
    )
    assert peak == limit
    assert run.target_calls == 10


def test_sync_target_calls_in_threads_never_exceed_the_concurrency_limit(tmp_path):
    limit, lock = 2, threading.Lock()
    state = {"active": 0, "peak": 0}
    barrier = threading.Barrier(limit, timeout=10)

    def target(messages):
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        try:
            barrier.wait()  # both slots busy at once: a third concurrent call would show in the peak
        except threading.BrokenBarrierError:
            pass
        with lock:
            state["active"] -= 1
        return "ok"

    cases = [case(f"case_{n}", "hi") for n in range(8)]
    run = run_gate_sync(
        dataset(tmp_path, *cases), Caller(PythonTarget(target, "t"), concurrency=limit), GateConfig(cache=None)
    )
    assert state["peak"] == limit
    assert run.target_calls == 8


@dataclass(frozen=True)
class Score:
    score: float
    passed: bool | None
    reason: str


@dataclass
class ScriptedJudge:
    """A non-deterministic scorer whose verdicts are scripted in order; counts its calls."""

    verdicts: list[bool | None]
    rubric: str = "r1"
    name: str = "judge"
    weight: float = 1.0
    threshold: float | None = 0.5
    deterministic: bool = False
    calls: list[str] = field(default_factory=list)

    @property
    def cache_key(self) -> str:
        return f"judge:{self.rubric}"

    def score(self, case, output):
        verdict = self.verdicts[len(self.calls) % len(self.verdicts)]
        self.calls.append(case.id)
        return Score(1.0 if verdict else 0.0, verdict, f"scripted {verdict}")


class Provider:
    """A scorers module stand-in: one scripted judge (or given scorers) for every case, the real aggregate."""

    Score = Score

    def __init__(self, *scorers: Any) -> None:
        self.scorers = list(scorers)

    def for_case(self, case, config):
        return self.scorers

    def aggregate(self, case, scored):
        settled = [(s, r) for s, r in scored if r.passed is not None]
        if not settled:
            return real_scorers.CaseVerdict(0.0, None, ["pending"])
        value = sum(r.score for _, r in settled) / len(settled)
        return real_scorers.CaseVerdict(value, all(r.passed for _, r in settled), ["aggregated"])


@pytest.mark.parametrize(
    ("verdicts", "status", "agreement"),
    [
        ([True, False, True], CaseStatus.PASSED, 2 / 3),
        ([True, True, True], CaseStatus.PASSED, 1.0),
        ([False, True, False], CaseStatus.FAILED, 2 / 3),
        ([True, False, None], CaseStatus.FAILED, 1 / 3),
        ([None, None, True], CaseStatus.PENDING_HUMAN, 2 / 3),
    ],
)
def test_trials_run_a_judged_scorer_n_times_and_pass_on_a_majority(tmp_path, verdicts, status, agreement):
    judge = ScriptedJudge(verdicts)
    run = run_gate_sync(
        dataset(tmp_path, CAPITAL), Caller(answering()), GateConfig(cache=None, trials=3), scorers=Provider(judge)
    )
    (outcome,) = run.cases
    assert outcome.status is status
    (result,) = outcome.scorers
    assert result.trials == tuple(verdicts)
    assert result.agreement == pytest.approx(agreement)
    assert len(judge.calls) == 3


def test_a_stricter_majority_needs_more_passing_trials(tmp_path):
    judge = ScriptedJudge([True, True, False, True, True])  # 4 of 5
    config = GateConfig(cache=None, trials=5, majority=0.8)
    run = run_gate_sync(dataset(tmp_path, CAPITAL), Caller(answering()), config, scorers=Provider(judge))
    assert run.cases[0].status is CaseStatus.FAILED  # 4/5 is not more than 0.8
    judge = ScriptedJudge([True] * 5)
    run = run_gate_sync(dataset(tmp_path, CAPITAL), Caller(answering()), config, scorers=Provider(judge))
    assert run.cases[0].status is CaseStatus.PASSED


def test_deterministic_scorers_run_once_whatever_the_trials(tmp_path):
    checks = ScriptedJudge([True], deterministic=True)
    run_gate_sync(
        dataset(tmp_path, CAPITAL), Caller(answering()), GateConfig(cache=None, trials=5), scorers=Provider(checks)
    )
    assert len(checks.calls) == 1


def test_an_unchanged_rerun_asks_the_judge_nothing(tmp_path):
    cache_file = tmp_path / "cache.json"
    ds = dataset(tmp_path, CAPITAL, SUM)
    config = GateConfig(cache=str(cache_file), trials=3)
    judge = ScriptedJudge([True])
    first = run_gate_sync(ds, Caller(answering()), config, scorers=Provider(judge))
    assert len(judge.calls) == 6 and first.cache_hits == 0
    again = ScriptedJudge([True])
    second = run_gate_sync(ds, Caller(answering()), config, scorers=Provider(again))
    assert again.calls == [] and second.cache_hits == 6 and second.target_calls == 2
    assert [c.status for c in second.cases] == [CaseStatus.PASSED, CaseStatus.PASSED]
    assert all(r.cached for c in second.cases for r in c.scorers)
    # A changed scorer config, or a changed output, is scored again.
    rubric = ScriptedJudge([True], rubric="r2")
    run_gate_sync(ds, Caller(answering()), config, scorers=Provider(rubric))
    assert len(rubric.calls) == 6
    other = ScriptedJudge([True])
    run_gate_sync(ds, Caller(answering("Something else.")), config, scorers=Provider(other))
    assert len(other.calls) == 6
    assert "Canberra" not in cache_file.read_text()  # scores and reasons only, no outputs


def test_a_scorer_without_a_config_naming_repr_is_never_cached(tmp_path):
    class Anonymous:
        name, weight, threshold, deterministic = "anon", 1.0, None, True

        def __init__(self) -> None:
            self.calls = 0

        def score(self, case, output):
            self.calls += 1
            return Score(1.0, True, "ok")

    cache = ScoreCache(tmp_path / "cache.json")
    ds = dataset(tmp_path, CAPITAL)
    scorer = Anonymous()
    for _ in range(2):
        run_gate_sync(ds, Caller(answering()), GateConfig(cache=None), scorers=Provider(scorer), cache=cache)
    assert scorer.calls == 2


def test_a_scorer_that_raises_is_an_error_and_fails_the_gate(tmp_path):
    class Broken(ScriptedJudge):
        def score(self, case, output):
            raise ValueError("bad pattern")

    run = run_gate_sync(
        dataset(tmp_path, CAPITAL), Caller(answering()), GateConfig(cache=None), scorers=Provider(Broken([True]))
    )
    (outcome,) = run.cases
    assert outcome.status is CaseStatus.ERROR
    assert "ValueError: bad pattern" in outcome.reason
    verdict = decide(run)
    assert verdict.exit_code == EXIT_FAILED and "could not be scored" in verdict.reasons[0]


def test_pending_human_cases_neither_pass_nor_fail_the_gate(tmp_path):
    run = run_gate_sync(
        dataset(tmp_path, CAPITAL), Caller(answering()), GateConfig(cache=None), scorers=Provider(ScriptedJudge([None]))
    )
    assert run.cases[0].status is CaseStatus.PENDING_HUMAN
    assert decide(run).exit_code == EXIT_OK


def test_the_aggregate_under_its_threshold_fails_the_gate(tmp_path):
    @dataclass
    class Half(ScriptedJudge):
        def score(self, case, output):
            return Score(0.6, True, "passes at 0.6")

    ds = dataset(tmp_path, CAPITAL, SUM)
    provider = Provider(Half([True], deterministic=True))
    run = run_gate_sync(ds, Caller(answering()), GateConfig(cache=None, threshold=0.7), scorers=provider)
    assert [c.status for c in run.cases] == [CaseStatus.PASSED, CaseStatus.PASSED]
    verdict = decide(run)
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.reasons == ["the aggregate score 0.600 is under the threshold 0.7"]
    run = run_gate_sync(ds, Caller(answering()), GateConfig(cache=None, threshold=0.6), scorers=provider)
    assert decide(run).exit_code == EXIT_OK


JUDGE_CASE = case("case_judged", "What is the capital of Australia?", assertions=[{"type": "judge"}])


def judge_config(fake, **judge: Any) -> GateConfig:
    settings = {"model": "judge-model", "base_url": fake.openai_base_url, "api_key": "k", "backoff_s": 0.01, **judge}
    return GateConfig.model_validate({"cache": None, "scorers": {"judge": settings}})


def test_the_real_judge_on_the_fake_provider_is_asked_once_per_trial_then_cached(tmp_path, fake):
    verdict = json.dumps({"verdict": "pass", "confidence": 0.95, "reasoning": "agrees with the reference"})
    fake.script(*[text(verdict)] * 3)
    config = judge_config(fake)
    config.trials, config.cache = 3, str(tmp_path / "cache.json")
    ds = dataset(tmp_path, JUDGE_CASE)
    run = run_gate_sync(ds, Caller(answering()), config)
    assert run.cases[0].status is CaseStatus.PASSED, run.cases[0].reason
    assert len(fake.requests) == 3
    assert run.cases[0].scorers[0].agreement == 1.0
    again = run_gate_sync(ds, Caller(answering()), config)
    assert len(fake.requests) == 3  # nothing asked again
    assert again.cases[0].status is CaseStatus.PASSED and again.cache_hits == 3


def test_a_judge_endpoint_that_keeps_failing_exits_3(tmp_path, fake):
    fake.script(error(500), error(502), error(503))
    run = run_gate_sync(dataset(tmp_path, JUDGE_CASE), Caller(answering()), judge_config(fake, retries=2))
    assert run.cases[0].status is CaseStatus.TARGET_FAILED
    assert "judge" in run.cases[0].reason
    assert len(fake.requests) == 3
    assert decide(run).exit_code == EXIT_TARGET_FAILED


def test_after_the_judge_endpoint_fails_the_cases_not_started_are_not_run(tmp_path, fake):
    fake.script(error(500), error(502), error(503))
    cases = [{**JUDGE_CASE, "id": f"case_{n}"} for n in range(4)]
    config = judge_config(fake, retries=2)
    config.concurrency = 1  # one judge call at a time, so which case meets the failure is known
    run = run_gate_sync(dataset(tmp_path, *cases), Caller(answering()), config)
    statuses = [c.status for c in run.cases]
    assert sorted(statuses) == sorted([CaseStatus.TARGET_FAILED] + [CaseStatus.NOT_RUN] * 3)
    assert all("judge's endpoint failed" in c.reason for c in run.cases if c.status is CaseStatus.NOT_RUN)
    assert len(fake.requests) == 3

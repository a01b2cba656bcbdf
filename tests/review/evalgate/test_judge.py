"""The LLM judge against the fake provider through the real openai SDK: good answers, malformed ones retried then an
error, endpoint failures retried then JudgeUnavailable; and the layers: checks first, the judge where they cannot
settle a case, people where the judge cannot (low confidence, safety-sensitive tags, disagreement)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from fake_provider import FakeProvider, error, text
from scorer_cases import CORRECTION, corrected, make_case, say

from spanguard.review.evalgate.dataset import EvalCase
from spanguard.review.evalgate.judge import (
    DEFAULT_RUBRIC,
    Judge,
    JudgeAnswerError,
    JudgeConfig,
    JudgeUnavailable,
    judge_for,
)
from spanguard.review.evalgate.scorers import ScorersConfig, aggregate, for_case
from spanguard.yamlconfig import ConfigError, load_text


def answer(verdict: str = "pass", confidence: float = 0.95, reasoning: str = "matches the reference") -> Any:
    return text(json.dumps({"verdict": verdict, "confidence": confidence, "reasoning": reasoning}))


def judge_config(fake: FakeProvider, **settings: Any) -> JudgeConfig:
    base = {"model": "gpt-4o-mini", "base_url": fake.openai_base_url, "api_key": "test-key", "backoff_s": 0}
    return JudgeConfig.model_validate({**base, **settings})


def verdict_of(case: EvalCase, output: str, config: ScorersConfig) -> Any:
    message = say(output)
    pairs = [(scorer, scorer.score(case, message)) for scorer in for_case(case, config)]
    return aggregate(case, pairs, config=config), pairs


# ------------------------------------------------------------------------------------------------- the client


def test_a_good_answer_is_a_verdict_and_the_prompt_holds_the_case(fake: FakeProvider) -> None:
    fake.script(answer("pass", 0.9, "same capital"))
    judge = Judge(judge_config(fake))
    verdict = judge.judge(
        [{"role": "user", "content": "Capital?"}],
        {"role": "assistant", "content": "It is Canberra."},
        reference={"role": "assistant", "content": CORRECTION},
    )
    assert (verdict.passed, verdict.confidence, verdict.reasoning) == (True, 0.9, "same capital")
    (request,) = fake.requests
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["temperature"] == 0
    task = json.loads(request.body["messages"][1]["content"])
    assert task == {
        "conversation": [{"role": "user", "content": "Capital?"}],
        "output": {"role": "assistant", "content": "It is Canberra."},
        "reference": {"role": "assistant", "content": CORRECTION},
        "rubric": DEFAULT_RUBRIC,
    }
    assert request.headers["authorization"] == "Bearer test-key"


def test_a_fenced_json_answer_and_a_fail_verdict_are_read(fake: FakeProvider) -> None:
    fake.script(text('```json\n{"verdict": "FAIL", "confidence": 1}\n```'))
    verdict = Judge(judge_config(fake)).judge([], {"role": "assistant", "content": "x"})
    assert (verdict.passed, verdict.confidence, verdict.reasoning) == (False, 1.0, "")


def test_a_malformed_answer_is_asked_again(fake: FakeProvider) -> None:
    fake.script(text("I think it passes."), answer("pass", 0.8))
    verdict = Judge(judge_config(fake)).judge([], {"role": "assistant", "content": "x"})
    assert verdict.passed is True
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("not json", "the answer is not JSON"),
        ("[1, 2]", "the answer is not a JSON object"),
        ('{"verdict": "maybe", "confidence": 0.5}', '"verdict" is not "pass" or "fail"'),
        ('{"verdict": "pass", "confidence": 1.5}', '"confidence" is not a number from 0 to 1'),
        ('{"verdict": "pass", "confidence": true}', '"confidence" is not a number from 0 to 1'),
        ('{"verdict": "pass"}', '"confidence" is not a number from 0 to 1'),
        ("", "the answer is empty"),
    ],
)
def test_answers_malformed_every_time_are_an_error_never_a_pass(fake: FakeProvider, reply: str, problem: str) -> None:
    fake.script(*[text(reply)] * 3)
    with pytest.raises(JudgeAnswerError, match="no usable verdict in 3 answers") as caught:
        Judge(judge_config(fake, retries=2)).judge([], {"role": "assistant", "content": "x"})
    assert problem in str(caught.value)
    assert len(fake.requests) == 3


def test_endpoint_500s_are_retried(fake: FakeProvider) -> None:
    fake.script(error(500), error(503), answer("fail", 0.99))
    verdict = Judge(judge_config(fake, retries=2)).judge([], {"role": "assistant", "content": "x"})
    assert verdict.passed is False
    assert len(fake.requests) == 3


def test_endpoint_500s_that_last_are_judge_unavailable(fake: FakeProvider) -> None:
    fake.script(*[error(500)] * 3)
    with pytest.raises(JudgeUnavailable, match=r"failed \(HTTP 500\) after 3 attempts"):
        Judge(judge_config(fake, retries=2)).judge([], {"role": "assistant", "content": "x"})
    assert len(fake.requests) == 3


def test_a_rate_limit_is_retried_and_a_refused_key_is_not(fake: FakeProvider) -> None:
    fake.script(error(429), answer())
    assert Judge(judge_config(fake)).judge([], {"role": "assistant", "content": "x"}).passed is True
    fake.reset()
    fake.script(error(401), answer())
    with pytest.raises(JudgeUnavailable, match=r"HTTP 401\) after 1 attempt$"):
        Judge(judge_config(fake)).judge([], {"role": "assistant", "content": "x"})
    assert len(fake.requests) == 1


def test_an_endpoint_nobody_listens_on_is_judge_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = JudgeConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", retries=1, backoff_s=0)
    with pytest.raises(JudgeUnavailable, match="APIConnectionError"):
        Judge(config).judge([], {"role": "assistant", "content": "x"})


def test_no_api_key_anywhere_is_judge_unavailable(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = JudgeConfig(model="m", base_url=fake.openai_base_url)
    with pytest.raises(JudgeUnavailable, match="client cannot be built"):
        Judge(config).judge([], {"role": "assistant", "content": "x"})


def test_one_judge_per_config() -> None:
    config = JudgeConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert judge_for(config) is judge_for(JudgeConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key="k"))


def test_the_judge_config_is_refused_with_paths_and_keeps_the_key_secret() -> None:
    with pytest.raises(ConfigError, match=r"judge\.confidence_threshold"):
        load_text("judge: {model: m, confidence_threshold: 2}\n", ScorersConfig)
    with pytest.raises(ConfigError, match=r"judge\.modle"):
        load_text("judge: {modle: m}\n", ScorersConfig)
    config = load_text(
        "judge: {model: m, api_key: '${env:JUDGE_KEY}'}\n", ScorersConfig, environ={"JUDGE_KEY": "sk-secret"}
    )
    assert config.judge is not None and config.judge.api_key is not None
    assert config.judge.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(config)


# ---------------------------------------------------------------------------------------------------- layers


def layered(fake: FakeProvider, **judge: Any) -> ScorersConfig:
    return ScorersConfig(judge=judge_config(fake, **judge))


def test_checks_that_settle_a_case_never_ask_the_judge(fake: FakeProvider) -> None:
    config = layered(fake)
    passed, _ = verdict_of(corrected(), "The capital of Australia is Canberra.", config)
    failed, _ = verdict_of(corrected(), "Sydney is the capital.", config)
    unrelated, _ = verdict_of(corrected(), "I like pizza with pineapple.", config)  # under the floor
    assert (passed.passed, failed.passed, unrelated.passed) == (True, False, False)
    assert fake.requests == []


def test_the_judge_settles_what_the_similarity_cannot(fake: FakeProvider) -> None:
    fake.script(answer("pass", 0.95))
    verdict, pairs = verdict_of(corrected(), "It is Canberra.", layered(fake))  # similarity ~0.64: in the band
    assert [score.passed for _, score in pairs] == [None, True, True]
    assert verdict.passed is True
    assert len(fake.requests) == 1
    fake.script(answer("fail", 0.95))
    assert verdict_of(corrected(), "It is Canberra.", layered(fake))[0].passed is False


def test_without_a_judge_the_band_fails(fake: FakeProvider) -> None:
    assert verdict_of(corrected(), "It is Canberra.", ScorersConfig())[0].passed is False


def test_a_judge_with_defaults_false_is_not_added_to_the_default_scorers(fake: FakeProvider) -> None:
    config = layered(fake, defaults=False)
    assert [s.name for s in for_case(corrected(), config)] == ["matches-correction", "not-original"]


def test_low_confidence_is_pending_human(fake: FakeProvider) -> None:
    fake.script(answer("pass", 0.6))
    verdict, _ = verdict_of(corrected(), "It is Canberra.", layered(fake, confidence_threshold=0.8))
    assert verdict.passed is None
    assert "under the calibrated threshold 0.8: pending human" in verdict.reason


def test_a_safety_sensitive_case_is_pending_human_whatever_the_judge_says(fake: FakeProvider) -> None:
    fake.script(answer("pass", 0.99))
    case = corrected(tags=["geography", "self-harm"])
    verdict, _ = verdict_of(case, "It is Canberra.", layered(fake, safety_tags=["self-harm", "medical"]))
    assert verdict.passed is None
    assert "safety-sensitive case (self-harm)" in verdict.reason


def test_a_judge_assertion_is_asked_after_passing_checks_and_disagreement_is_pending_human(fake: FakeProvider) -> None:
    case = make_case(
        assertions=[
            {"type": "judge", "rubric": "The answer is polite."},
            {"type": "contains", "value": "Canberra"},
        ]
    )
    config = layered(fake)
    assert [s.name for s in for_case(case, config)] == ["contains", "judge"]
    fake.script(answer("pass", 0.9))
    assert verdict_of(case, "Canberra, my friend.", config)[0].passed is True
    task = json.loads(fake.requests[0].body["messages"][1]["content"])
    assert task["rubric"] == "The answer is polite."
    assert "reference" not in task
    fake.script(answer("fail", 0.9))
    disagreed, _ = verdict_of(case, "Canberra, obviously.", config)
    assert disagreed.passed is None
    assert "disagrees with the checks that passed" in disagreed.reason


def test_a_judge_assertion_is_not_asked_when_a_check_failed(fake: FakeProvider) -> None:
    case = make_case(assertions=[{"type": "contains", "value": "Canberra"}, {"type": "judge"}])
    verdict, pairs = verdict_of(case, "Sydney.", layered(fake))
    assert verdict.passed is False
    assert pairs[1][1].skipped and pairs[1][1].reason == "not asked: a check failed"
    assert fake.requests == []


def test_a_judge_alone_decides_its_case(fake: FakeProvider) -> None:
    case = make_case(assertions=[{"type": "judge"}])
    fake.script(answer("fail", 0.9))
    assert verdict_of(case, "Sydney.", layered(fake))[0].passed is False


def test_a_judge_whose_endpoint_fails_raises_out_of_the_scorer(fake: FakeProvider) -> None:
    fake.script(*[error(500)] * 3)
    case = make_case(assertions=[{"type": "judge"}])
    (scorer,) = for_case(case, layered(fake))
    assert scorer.deterministic is False
    with pytest.raises(JudgeUnavailable):
        scorer.score(case, {"role": "assistant", "content": "x"})


def test_a_malformed_judge_raises_out_of_the_scorer_rather_than_passing(fake: FakeProvider) -> None:
    fake.script(*[text("yes")] * 3)
    case = make_case(assertions=[{"type": "judge"}])
    (scorer,) = for_case(case, layered(fake))
    with pytest.raises(JudgeAnswerError):
        scorer.score(case, {"role": "assistant", "content": "x"})


def test_the_judge_cache_key_names_its_settings_but_never_the_api_key(fake: FakeProvider) -> None:
    case = make_case(assertions=[{"type": "judge"}])
    (one,) = for_case(case, layered(fake))
    (other,) = for_case(case, layered(fake, rubric="Be strict."))
    assert one.cache_key != other.cache_key
    assert "test-key" not in one.cache_key

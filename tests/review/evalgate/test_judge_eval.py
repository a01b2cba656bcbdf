"""The judge measured against people: metrics checked against hand-computed confusion matrices (degenerate ones
included), the Clopper-Pearson bound, the Trust-or-Escalate calibration on synthetic judges, the gating rule, and a
run against the fake provider."""

from __future__ import annotations

import argparse
import json
import math
import random
from typing import Any

import pytest
from fake_provider import FakeProvider, error, text

from spanguard.review.evalgate.config import load_config
from spanguard.review.evalgate.dataset import EvalCase
from spanguard.review.evalgate.judge import Judge, JudgeConfig, JudgeUnavailable
from spanguard.review.evalgate.judge_eval import (
    Confusion,
    add_arguments,
    calibrate,
    clopper_pearson_lower,
    confusion,
    evaluate_judge,
    judge_gate_check,
    judge_may_gate,
    metrics,
    run,
)


def pairs(tp: int = 0, fp: int = 0, tn: int = 0, fn: int = 0) -> list[tuple[bool, bool]]:
    """(human, judge) pairs making that confusion matrix, shuffled."""
    out = [(True, True)] * tp + [(False, True)] * fp + [(False, False)] * tn + [(True, False)] * fn
    random.Random(0).shuffle(out)
    return out


# ------------------------------------------------------------------------------------------------------ metrics


def test_confusion_counts_pass_as_the_positive_class() -> None:
    assert confusion(pairs(tp=3, fp=1, tn=4, fn=2)) == Confusion(tp=3, fp=1, tn=4, fn=2)


def test_metrics_of_a_mixed_matrix_match_the_hand_computed_values() -> None:
    m = metrics(Confusion(tp=3, fp=1, tn=4, fn=2))
    assert m.n == 10
    assert m.accuracy == pytest.approx(0.7)
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 5)
    assert m.balanced_accuracy == pytest.approx((3 / 5 + 4 / 5) / 2)
    assert m.mcc == pytest.approx((3 * 4 - 1 * 2) / math.sqrt(4 * 5 * 5 * 6))  # 0.408
    assert m.notes == ()


def test_a_perfect_judge_has_mcc_one() -> None:
    m = metrics(Confusion(tp=5, tn=5))
    assert (m.mcc, m.balanced_accuracy, m.precision, m.recall, m.accuracy) == (1.0, 1.0, 1.0, 1.0, 1.0)


def test_a_judge_wrong_every_time_has_mcc_minus_one_and_balanced_accuracy_zero() -> None:
    m = metrics(Confusion(fp=3, fn=2))
    assert m.mcc == pytest.approx(-1.0)
    assert (m.balanced_accuracy, m.precision, m.recall, m.accuracy) == (0.0, 0.0, 0.0, 0.0)


def test_one_class_only_makes_mcc_undefined_taken_as_zero_with_a_note() -> None:
    m = metrics(Confusion(tp=4, fn=1))  # people passed every case
    assert m.mcc == 0.0
    assert m.balanced_accuracy == pytest.approx(0.8)  # the recall, the one rate defined
    assert m.precision == 1.0
    assert any(note.startswith("MCC undefined") for note in m.notes)
    assert "balanced accuracy over the one class people used" in m.notes
    assert "specificity undefined (people failed no case)" in m.notes


def test_a_judge_that_always_passes_has_mcc_zero_and_half_balanced_accuracy() -> None:
    m = metrics(Confusion(tp=3, fp=2))
    assert (m.mcc, m.balanced_accuracy, m.recall) == (0.0, 0.5, 1.0)
    assert m.precision == pytest.approx(0.6)
    assert any(note.startswith("MCC undefined") for note in m.notes)


def test_a_judge_that_never_passes_has_precision_undefined_taken_as_zero() -> None:
    m = metrics(Confusion(tn=2, fn=3))
    assert (m.precision, m.recall, m.mcc) == (0.0, 0.0, 0.0)
    assert "precision undefined (the judge passed no case): taken as 0" in m.notes


def test_no_cases_at_all_gives_zeros_and_notes_not_an_error() -> None:
    m = metrics(Confusion())
    assert (m.n, m.accuracy, m.balanced_accuracy, m.mcc) == (0, 0.0, 0.0, 0.0)
    assert m.notes


# ------------------------------------------------------------------------------------------------ the gating rule


def test_a_judge_at_or_above_the_floor_may_gate() -> None:
    may, reason = judge_may_gate(metrics(Confusion(tp=3, fp=1, tn=4, fn=2)), 0.4)
    assert may is True and "0.41, at or above the floor 0.4" in reason


def test_a_judge_below_the_floor_may_not_gate_and_says_why() -> None:
    may, reason = judge_may_gate(metrics(Confusion(tp=3, fp=1, tn=4, fn=2)), 0.5)
    assert may is False
    assert reason == "the judge's MCC against people is 0.41, below the floor 0.5: it may not gate"


def test_a_judge_with_undefined_mcc_may_not_gate_and_the_reason_says_undefined() -> None:
    may, reason = judge_may_gate(metrics(Confusion(tp=9, fn=1)), 0.3)
    assert may is False and "MCC undefined" in reason


def test_a_judge_measured_on_nothing_may_not_gate() -> None:
    assert judge_may_gate(metrics(Confusion()), -1.0) == (
        False,
        "the judge was measured on no labelled case: it may not gate",
    )


# ----------------------------------------------------------------------------------------- Clopper-Pearson bound


def upper_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(("k", "n"), [(5, 10), (95, 100), (1, 20), (180, 200), (7, 8)])
def test_the_lower_bound_is_where_the_binomial_tail_is_alpha(k: int, n: int) -> None:
    bound = clopper_pearson_lower(k, n, 0.95)
    assert upper_tail(k, n, bound) == pytest.approx(0.05, abs=1e-6)


def test_known_lower_bounds() -> None:
    assert clopper_pearson_lower(5, 10, 0.95) == pytest.approx(0.2224, abs=1e-4)  # the 90% two-sided interval's
    assert clopper_pearson_lower(10, 10, 0.95) == pytest.approx(0.05 ** (1 / 10))
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0


def test_bad_bound_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson_lower(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson_lower(1, 10, 1.0)


# --------------------------------------------------------------------------------------------------- calibration


def synthetic(n: int, *, informative: bool, seed: int = 7) -> list[tuple[float, bool]]:
    """(confidence, agreed with people) per case. Informative: 99% agreement above 0.5 confidence, a coin below;
    noise: 70% agreement whatever the confidence says."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        conf = rng.random()
        rate = (0.99 if conf > 0.5 else 0.5) if informative else 0.7
        items.append((conf, rng.random() < rate))
    return items


def test_an_informative_judge_keeps_coverage_with_the_agreement_guaranteed() -> None:
    calibration = calibrate(synthetic(1000, informative=True), target=0.9, confidence=0.95)
    assert calibration.threshold is not None and 0.3 <= calibration.threshold <= 0.6
    assert calibration.coverage >= 0.4
    assert calibration.lower_bound is not None and calibration.lower_bound >= 0.9
    assert calibration.agreement is not None and calibration.agreement >= calibration.lower_bound
    assert calibration.kept == round(calibration.coverage * 1000)


@pytest.mark.parametrize("seed", range(5))
def test_the_informative_judge_keeps_coverage_whatever_the_draw(seed: int) -> None:
    assert calibrate(synthetic(1000, informative=True, seed=seed)).coverage >= 0.4


@pytest.mark.parametrize("seed", range(5))
def test_the_noise_judge_abstains_whatever_the_draw(seed: int) -> None:
    assert calibrate(synthetic(1000, informative=False, seed=seed)).threshold is None


def test_a_judge_whose_confidence_is_noise_abstains() -> None:
    calibration = calibrate(synthetic(1000, informative=False), target=0.9, confidence=0.95)
    assert (calibration.threshold, calibration.coverage, calibration.kept) == (None, 0.0, 0)
    assert "the judge abstains on every case" in calibration.note


def test_a_perfect_confident_judge_keeps_everything() -> None:
    calibration = calibrate([(1.0, True)] * 100)
    assert (calibration.threshold, calibration.coverage, calibration.agreement) == (0.0, 1.0, 1.0)


def test_too_few_labelled_cases_cannot_show_the_target_and_say_how_many_are_needed() -> None:
    calibration = calibrate([(0.99, True)] * 10, target=0.9, confidence=0.95, min_kept=1)
    assert calibration.threshold is None
    assert "10 labelled cases cannot show it, at least 29 are needed" in calibration.note


def test_calibration_stops_at_the_first_threshold_that_fails() -> None:
    # Confident and right, then a band of mistakes at 0.6, then right again below: the lower cases are not reached.
    items = [(0.95, True)] * 150 + [(0.6, False)] * 40 + [(0.2, True)] * 900
    calibration = calibrate(items, target=0.9, confidence=0.95)
    assert calibration.threshold == 0.65
    assert calibration.kept == 150


def test_bad_calibration_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        calibrate([], target=1.0)
    with pytest.raises(ValueError, match="step"):
        calibrate([], step=0)


# ----------------------------------------------------------------------------------- a run against the provider


def case(case_id: str, outcome: str | None, content: str = "Canberra.") -> EvalCase:
    data: dict[str, Any] = {
        "id": case_id,
        "input": {"messages": [{"role": "user", "content": "Capital of Australia?"}]},
        "outcome": outcome,
        "original_output": {"role": "assistant", "content": content},
    }
    if outcome == "correct":
        data["expected_output"] = {"role": "assistant", "content": "Canberra is the capital."}
    return EvalCase.model_validate(data)


def answer(verdict: str, confidence: float = 0.9) -> Any:
    return text(json.dumps({"verdict": verdict, "confidence": confidence, "reasoning": "r"}))


def test_evaluate_judge_measures_the_judge_on_reviewed_outputs(fake: FakeProvider) -> None:
    config = JudgeConfig(model="m", base_url=fake.openai_base_url, api_key="k", backoff_s=0, retries=1, mcc_floor=0.5)
    cases = [
        case("a", "approve"),
        case("b", "reject", "Sydney."),
        case("c", "correct", "Sydney."),
        case("d", "approve"),
        case("e", None),
        case("f", "approve"),
    ]
    # a: pass (tp); b: fail (tn); c: pass (fp); d: malformed twice (error); f: pass (tp)
    fake.script(answer("pass"), answer("fail"), answer("pass"), text("?"), text("?"), answer("pass"))
    report = evaluate_judge(cases, Judge(config))
    assert report.metrics.confusion == Confusion(tp=2, fp=1, tn=1, fn=0)
    assert report.errors == ["d"] and report.skipped == ["e"]
    assert report.metrics.mcc == pytest.approx((2 * 1 - 0) / math.sqrt(3 * 2 * 2 * 1))
    assert report.may_gate is True  # 0.58 >= 0.5
    assert report.calibration.threshold is None  # 4 cases cannot show 0.9 agreement
    # The correction is never shown to the judge: it would give the answer away.
    third = json.loads(fake.requests[2].body["messages"][1]["content"])
    assert "reference" not in third and third["output"]["content"] == "Sydney."
    data = report.as_dict()
    assert data["metrics"]["n"] == 4 and data["metrics"]["confusion"] == {"tp": 2, "fp": 1, "tn": 1, "fn": 0}
    json.dumps(data)


def test_evaluate_judge_raises_when_the_endpoint_fails(fake: FakeProvider) -> None:
    config = JudgeConfig(model="m", base_url=fake.openai_base_url, api_key="k", backoff_s=0, retries=1)
    fake.script(error(502), error(502))
    with pytest.raises(JudgeUnavailable):
        evaluate_judge([case("a", "approve")], Judge(config))


# ------------------------------------------------------------------------------------ the gate's check, the CLI


def write_report(path: Any, model: str = "m", **counts: int) -> str:
    matrix = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, **counts}
    path.write_text(json.dumps({"model": model, "metrics": {"confusion": matrix, "mcc": 1.0}}))
    return str(path)


def test_a_judge_never_measured_may_not_gate() -> None:
    may, reason = judge_gate_check(JudgeConfig(model="m"))
    assert may is False and "run spanguard judge-eval --report PATH" in reason


def test_the_gate_check_reads_the_report_and_computes_the_mcc_again(tmp_path: Any) -> None:
    good = write_report(tmp_path / "good.json", tp=5, tn=5)
    assert judge_gate_check(JudgeConfig(model="m", evaluation=good))[0] is True
    # The stored "mcc": 1.0 is not believed: the counts give 0.41, under the floor.
    weak = write_report(tmp_path / "weak.json", tp=3, fp=1, tn=4, fn=2)
    may, reason = judge_gate_check(JudgeConfig(model="m", evaluation=weak, mcc_floor=0.5))
    assert may is False and "0.41, below the floor 0.5" in reason


def test_a_report_of_another_model_or_unreadable_does_not_count(tmp_path: Any) -> None:
    other = write_report(tmp_path / "other.json", model="gpt-4o", tp=5, tn=5)
    may, reason = judge_gate_check(JudgeConfig(model="m", evaluation=other))
    assert may is False and "measured 'gpt-4o', not 'm'" in reason
    (tmp_path / "bad.json").write_text("{not json")
    assert judge_gate_check(JudgeConfig(model="m", evaluation=str(tmp_path / "bad.json")))[0] is False
    assert judge_gate_check(JudgeConfig(model="m", evaluation=str(tmp_path / "missing.json")))[0] is False


def test_the_evaluation_path_is_relative_to_the_config_file(tmp_path: Any) -> None:
    (tmp_path / "gate.yaml").write_text("scorers:\n  judge: {model: m, evaluation: judge.json}\n")
    config = load_config(tmp_path / "gate.yaml")
    assert config.scorers.judge.evaluation == str(tmp_path / "judge.json")


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


def labelled_file(tmp_path: Any, n: int = 4) -> str:
    lines = [
        case(f"c{i}", "approve" if i % 2 == 0 else "reject", "Canberra." if i % 2 == 0 else "Sydney.").model_dump_json()
        for i in range(n)
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_cli_measures_a_good_judge_writes_its_report_and_lets_it_gate(
    fake: FakeProvider, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text(
        f"scorers:\n  judge: {{model: m, base_url: '{fake.openai_base_url}', api_key: k, evaluation: judge.json}}\n"
    )
    fake.script(answer("pass"), answer("fail"), answer("pass"), answer("fail"))
    code = cli("--dataset", labelled_file(tmp_path), "--config", str(config), "--report", str(tmp_path / "judge.json"))
    out = capsys.readouterr().out
    assert code == 0
    assert "tp 2  fp 0  tn 2  fn 0" in out and "MCC 1.000" in out
    assert "4 labelled cases cannot show it, at least 100 are needed" in out
    assert judge_gate_check(load_config(config).scorers.judge) == (
        True,
        "the judge's MCC against people is 1.00, at or above the floor 0.4",
    )


def test_the_cli_exits_1_for_a_judge_that_may_not_gate(
    fake: FakeProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    fake.script(answer("fail"), answer("pass"), answer("fail"), answer("pass"))  # wrong every time
    code = cli("--dataset", labelled_file(tmp_path), "--judge", "m", "--base-url", fake.openai_base_url)
    assert code == 1


def test_the_cli_exits_2_for_a_bad_dataset_line_or_no_judge(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(case("a", "approve").model_dump_json() + "\n{oops\n")
    assert cli("--dataset", str(bad), "--judge", "m") == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert cli("--dataset", str(bad)) == 2
    assert "no judge" in capsys.readouterr().err


def test_the_cli_exits_3_when_the_judge_endpoint_fails(
    fake: FakeProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    config = tmp_path / "gate.yaml"
    config.write_text(
        f"scorers:\n  judge: {{model: m, base_url: '{fake.openai_base_url}', retries: 1, backoff_s: 0}}\n"
    )
    fake.script(error(500), error(500))
    assert cli("--dataset", labelled_file(tmp_path), "--config", str(config)) == 3

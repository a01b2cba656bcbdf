"""The gate's scorers: every check, bad assertions refused by path, weights and thresholds, the defaults of an
exported dataset (corrected, approved, rejected action), similarity with and without WordLlama."""

from __future__ import annotations

from typing import Any

import pytest
from scorer_cases import CORRECTION, ORIGINAL, corrected, make_case, say

from spanguard.review.evalgate import scorers
from spanguard.review.evalgate.dataset import EvalCase, Message
from spanguard.review.evalgate.scorers import Score, ScorerError, ScorersConfig, aggregate, for_case, normalise
from spanguard.yamlconfig import ConfigError, load_text


def run(case: EvalCase, output: Any, config: ScorersConfig | None = None) -> scorers.CaseVerdict:
    config = config or ScorersConfig()
    pairs = [(scorer, scorer.score(case, output)) for scorer in for_case(case, config)]
    return aggregate(case, pairs, config=config)


def only(case: EvalCase, output: Any, config: ScorersConfig | None = None) -> Score:
    (scorer,) = for_case(case, config or ScorersConfig())
    return scorer.score(case, output)


# ---------------------------------------------------------------------------------------------------------- checks


def test_exact_compares_the_content_verbatim() -> None:
    case = make_case(assertions=[{"type": "exact", "value": "Canberra."}])
    assert only(case, say("Canberra.")).passed is True
    assert only(case, say("canberra.")).passed is False


@pytest.mark.parametrize(
    ("assertion", "text", "passed"),
    [
        ({"type": "contains", "value": "Canberra"}, "It is Canberra.", True),
        ({"type": "contains", "value": "Canberra"}, "It is canberra.", False),
        ({"type": "contains", "value": "Canberra", "ignore_case": True}, "It is CANBERRA.", True),
        ({"type": "not-contains", "value": "Sydney"}, "It is Canberra.", True),
        ({"type": "not-contains", "value": "Sydney"}, "Not Sydney but Canberra.", False),
    ],
)
def test_contains_and_not_contains(assertion: dict[str, Any], text: str, passed: bool) -> None:
    score = only(make_case(assertions=[assertion]), say(text))
    assert score.passed is passed
    assert score.score == (1.0 if passed else 0.0)


def test_contains_reads_tool_call_arguments_too() -> None:
    case = make_case(assertions=[{"type": "contains", "value": "order_42"}])
    assert only(case, say(None, ("refund", {"order": "order_42"}))).passed is True


def test_regex_searches_with_re2() -> None:
    case = make_case(assertions=[{"type": "regex", "value": r"\bCanb\w+"}])
    assert only(case, say("It is Canberra")).passed is True
    assert only(case, say("It is Sydney")).passed is False


def test_regex_that_would_backtrack_exponentially_runs_in_linear_time() -> None:
    # (a+)+$ against "aaaa...b" takes exponential time in a backtracking engine; RE2 answers at once.
    case = make_case(assertions=[{"type": "regex", "value": r"^(a+)+$"}])
    assert only(case, say("a" * 50_000 + "b")).passed is False


def test_regex_features_re2_lacks_are_refused_at_load() -> None:
    case = make_case(assertions=[{"type": "regex", "value": r"(\w)\1"}])  # a backreference
    with pytest.raises(ScorerError, match=r"assertions\[0\]\.value: not a valid RE2 regular expression"):
        for_case(case, ScorersConfig())


def test_json_schema_valid_and_invalid_outputs() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    case = make_case(assertions=[{"type": "json-schema", "value": schema}])
    assert only(case, say('{"city": "Canberra"}')).passed is True
    wrong = only(case, say('{"city": 3}'))
    assert wrong.passed is False and "at city" in wrong.reason and "3" not in wrong.reason
    assert only(case, say("Canberra")).reason == "the output is not JSON"


def test_a_json_schema_that_is_not_one_is_refused() -> None:
    case = make_case(assertions=[{"type": "json-schema", "value": {"type": "nonsense"}}])
    with pytest.raises(ScorerError, match=r"assertions\[0\]\.value: not a valid JSON Schema"):
        for_case(case, ScorersConfig())


def test_tool_called_matches_name_and_a_subset_of_the_arguments() -> None:
    case = make_case(
        assertions=[{"type": "tool-called", "name": "refund", "arguments": {"order": {"id": 42}, "amount": 100}}]
    )
    assert only(case, say(None, ("refund", {"order": {"id": 42, "x": 1}, "amount": 100, "note": "ok"}))).passed
    other = only(case, say(None, ("refund", {"order": {"id": 42}, "amount": 250})))
    assert other.passed is False and "other arguments" in other.reason
    assert only(case, say(None, ("lookup", {"order": {"id": 42}, "amount": 100}))).passed is False
    assert only(case, say("no call")).passed is False


def test_tool_called_without_arguments_matches_any_call_of_that_name() -> None:
    case = make_case(assertions=[{"type": "tool-called", "name": "refund"}])
    assert only(case, say(None, ("refund", {"amount": 1}))).passed is True


def test_argument_matching_does_not_take_true_for_one() -> None:
    case = make_case(assertions=[{"type": "tool-called", "name": "flag", "arguments": {"on": True}}])
    assert only(case, say(None, ("flag", {"on": 1}))).passed is False
    assert only(case, say(None, ("flag", {"on": True}))).passed is True


def test_tool_not_called() -> None:
    case = make_case(assertions=[{"type": "tool-not-called", "name": "delete_account"}])
    assert only(case, say("Sure.")).passed is True
    made = only(case, say(None, ("delete_account", {"user": 7})))
    assert made.passed is False and "again" in made.reason


def test_normalise_folds_case_whitespace_punctuation_and_unicode_forms() -> None:
    fullwidth = "".join(chr(ord(ch) + 0xFEE0) for ch in "Canberra")  # fullwidth forms: NFKC folds them to ASCII
    assert normalise(f"  {fullwidth},\tis   the CAPITAL!  ") == "canberra is the capital"
    assert normalise("ﬁne — “quoted”") == normalise("fine quoted")


def test_equals_correction_is_normalised() -> None:
    case = corrected(assertions=[{"type": "equals-correction"}])
    assert only(case, say("canberra IS the capital of australia")).passed is True
    assert only(case, say("Canberra is the capital of Austria.")).passed is False


def test_similar_to_correction_uses_wordllama_and_says_so() -> None:
    case = corrected(assertions=[{"type": "similar-to-correction"}])
    close = only(case, say("The capital of Australia is Canberra."))
    assert close.passed is True and "(wordllama)" in close.reason
    far = only(case, say("I like pizza with pineapple."))
    assert far.passed is False and far.score < 0.3


def test_similarity_falls_back_to_tokens_without_wordllama_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorers._embedder, "get", lambda: None)  # as if the package were absent
    value, method = scorers.similarity("the capital is Canberra", "Canberra is the capital city")
    assert method == "tokens (wordllama is not installed)"
    assert value == pytest.approx(4 / (4**0.5 * 5**0.5))
    case = corrected(assertions=[{"type": "similar-to-correction", "threshold": 0.5}])
    assert "wordllama is not installed" in only(case, say("Canberra is the capital.")).reason


def test_the_output_may_be_a_message_model_or_a_bare_string() -> None:
    case = make_case(assertions=[{"type": "contains", "value": "Canberra"}])
    assert only(case, Message(role="assistant", content="Canberra")).passed is True
    assert only(case, "Canberra").passed is True


# ------------------------------------------------------------------------------------------------ bad assertions


@pytest.mark.parametrize(
    ("assertion", "message"),
    [
        ({"type": "containz", "value": "x"}, r"assertions\[0\]\.type: unknown assertion type"),
        ({"type": "contains"}, r"assertions\[0\]\.value: required for a contains assertion"),
        ({"type": "contains", "value": 3}, r"assertions\[0\]\.value: must be a string"),
        ({"type": "contains", "value": ""}, r"assertions\[0\]\.value: must not be empty"),
        ({"type": "contains", "value": "x", "valeu": 1}, r"assertions\[0\]\.valeu: unknown key"),
        ({"type": "contains", "value": "x", "ignore_case": "yes"}, r"ignore_case: must be true or false"),
        ({"type": "tool-called", "name": ""}, r"assertions\[0\]\.name: must be a tool's name"),
        ({"type": "tool-called", "name": "f", "arguments": [1]}, r"assertions\[0\]\.arguments: must be an object"),
        ({"type": "json-schema", "value": "{}"}, r"assertions\[0\]\.value: a JSON Schema must be an object"),
        ({"type": "equals-correction"}, r"needs the case's expected_output"),
        ({"type": "judge"}, r"needs a judge configured \(scorers\.judge\)"),
    ],
)
def test_bad_assertions_are_refused_with_the_case_and_the_field(assertion: dict[str, Any], message: str) -> None:
    with pytest.raises(ScorerError, match=message) as caught:
        for_case(make_case(assertions=[assertion]), ScorersConfig())
    assert caught.value.case_id == "case_1"
    assert str(caught.value).startswith("case case_1: assertions[0]")


def test_the_value_of_a_bad_assertion_is_not_repeated_in_the_error() -> None:
    with pytest.raises(ScorerError) as caught:
        for_case(make_case(assertions=[{"type": "regex", "value": "secret-(unclosed"}]), ScorersConfig())
    assert "secret" not in str(caught.value)
    assert "(missing )" in str(caught.value)


# ---------------------------------------------------------------------------------------- weights and thresholds


def test_a_case_fails_when_one_scorer_fails_its_threshold() -> None:
    case = make_case(assertions=[{"type": "contains", "value": "Canberra"}, {"type": "contains", "value": "ACT"}])
    verdict = run(case, say("Canberra."))
    assert verdict.passed is False
    assert verdict.score == 0.5
    assert verdict.reasons == ["contains#2: the output does not contain the text"]


def test_weights_make_the_weighted_mean_and_the_case_threshold_gates_it() -> None:
    case = make_case(
        assertions=[
            {"type": "contains", "value": "Canberra", "weight": 3},
            {"type": "contains", "value": "ACT", "weight": 1, "threshold": 0},  # informative only
        ],
        threshold=0.8,
    )
    verdict = run(case, say("Canberra."))
    assert verdict.score == 0.75
    assert verdict.passed is False
    assert "under the case threshold 0.8" in verdict.reason
    assert run(case.model_copy(update={"threshold": 0.7}), say("Canberra.")).passed is True


def test_a_scorer_threshold_from_the_case_beats_the_config_and_the_config_beats_the_default() -> None:
    sim = [{"type": "similar-to-correction"}]
    loose = ScorersConfig(thresholds={"similar-to-correction": 0.3})
    (default,) = for_case(corrected(assertions=sim), ScorersConfig())
    (configured,) = for_case(corrected(assertions=sim), loose)
    (own,) = for_case(corrected(assertions=[{"type": "similar-to-correction", "threshold": 0.9}]), loose)
    assert (default.threshold, configured.threshold, own.threshold) == (0.8, 0.3, 0.9)


def test_config_weights_apply_to_scorers_that_set_none() -> None:
    config = ScorersConfig(weights={"contains": 2.5})
    case = make_case(assertions=[{"type": "contains", "value": "a"}, {"type": "contains", "value": "b", "weight": 1}])
    assert [s.weight for s in for_case(case, config)] == [2.5, 1.0]


def test_scorers_run_cheapest_first_and_keep_unique_names() -> None:
    case = corrected(
        assertions=[
            {"type": "similar-to-correction"},
            {"type": "contains", "value": "a"},
            {"type": "exact", "value": "b"},
            {"type": "contains", "value": "c"},
        ]
    )
    assert [s.name for s in for_case(case, ScorersConfig())] == [
        "exact",
        "contains",
        "contains#2",
        "similar-to-correction",
    ]


def test_zero_weights_still_give_a_score() -> None:
    case = make_case(assertions=[{"type": "contains", "value": "x", "weight": 0}])
    assert run(case, say("x")).score == 1.0


def test_cache_keys_differ_when_a_setting_differs_and_not_otherwise() -> None:
    one = for_case(make_case(assertions=[{"type": "regex", "value": "a+"}]), ScorersConfig())[0]
    same = for_case(make_case(assertions=[{"type": "regex", "value": "a+"}]), ScorersConfig())[0]
    other = for_case(make_case(assertions=[{"type": "regex", "value": "b+"}]), ScorersConfig())[0]
    assert one.cache_key == same.cache_key != other.cache_key


# ----------------------------------------------------------------------------------------------------- defaults


def test_default_corrected_case_passes_on_the_correction_or_a_close_paraphrase() -> None:
    case = corrected()
    assert [s.name for s in for_case(case, ScorersConfig())] == ["matches-correction", "not-original"]
    assert run(case, say("canberra is the capital of australia")).passed is True
    assert run(case, say("The capital of Australia is Canberra.")).passed is True


def test_default_corrected_case_fails_when_it_reproduces_the_rejected_output() -> None:
    verdict = run(corrected(), say("Sydney is the capital!"))
    assert verdict.passed is False
    assert any("reproduces the rejected original" in reason for reason in verdict.reasons)


def test_default_corrected_case_fails_on_an_unrelated_answer() -> None:
    assert run(corrected(), say("I like pizza with pineapple.")).passed is False


def test_a_correction_close_to_the_original_is_not_taken_for_a_reproduction() -> None:
    case = make_case(
        outcome="correct",
        original_output={"role": "assistant", "content": "The refund is 250 EUR."},
        expected_output={"role": "assistant", "content": "The refund is 100 EUR."},
    )
    assert run(case, say("The refund is 100 EUR.")).passed is True
    assert run(case, say("The refund is 250 EUR.")).passed is False


def test_default_rejected_review_item_fails_when_it_reproduces_the_output() -> None:
    case = make_case(outcome="reject", original_output={"role": "assistant", "content": ORIGINAL})
    assert run(case, say(ORIGINAL)).passed is False
    assert run(case, say(CORRECTION)).passed is True


def test_default_approved_case_fails_only_when_the_output_drifts_far() -> None:
    case = make_case(outcome="approve", original_output={"role": "assistant", "content": CORRECTION})
    assert [s.name for s in for_case(case, ScorersConfig())] == ["no-drift"]
    assert run(case, say("The capital of Australia is Canberra.")).passed is True
    drift = run(case, say("I like pizza with pineapple."))
    assert drift.passed is False and "similarity to the approved output" in drift.reason


def test_default_rejected_action_fails_when_the_target_makes_that_call_again() -> None:
    case = make_case(
        outcome="reject", rejected_tool_calls=[{"name": "issue_refund", "arguments": {"order": 42, "amount": 250}}]
    )
    assert [s.name for s in for_case(case, ScorersConfig())] == ["not-rejected-call:issue_refund"]
    again = run(case, say(None, ("issue_refund", {"order": 42, "amount": 250, "note": "retry"})))
    assert again.passed is False and "made again" in again.reason
    assert run(case, say(None, ("issue_refund", {"order": 42, "amount": 100}))).passed is True
    assert run(case, say("I cannot refund that.")).passed is True


def test_a_rejected_call_with_string_arguments_is_matched_on_the_parsed_json() -> None:
    case = make_case(outcome="reject", rejected_tool_calls=[{"name": "send", "arguments": '{"to": "x@example.com"}'}])
    assert run(case, say(None, ("send", {"to": "x@example.com"}))).passed is False


def test_a_case_without_any_applicable_scorer_is_pending_human() -> None:
    verdict = run(make_case(), say("anything"))
    assert verdict.passed is None
    assert verdict.reasons == ["no scorer can settle the case"]


def test_default_thresholds_come_from_the_config() -> None:
    strict = ScorersConfig.model_validate({"defaults": {"similarity_threshold": 0.999}})
    assert run(corrected(), say("The capital of Australia is Canberra."), strict).passed is False


# ------------------------------------------------------------------------------------------------ the config


def test_the_scorers_config_loads_from_yaml_and_refuses_unknown_keys() -> None:
    config = load_text("case_threshold: 0.5\nweights: {contains: 2}\ndefaults: {drift_threshold: 0.4}\n", ScorersConfig)
    assert config.case_threshold == 0.5 and config.defaults.drift_threshold == 0.4
    with pytest.raises(ConfigError, match=r"defaults\.drift_treshold"):
        load_text("defaults: {drift_treshold: 0.4}\n", ScorersConfig)
    with pytest.raises(ConfigError, match="unknown scorer type 'contain'"):
        load_text("weights: {contain: 2}\n", ScorersConfig)
    with pytest.raises(ConfigError, match="similarity_floor must not be above"):
        load_text("defaults: {similarity_floor: 0.9, similarity_threshold: 0.8}\n", ScorersConfig)


def test_aggregate_ignores_skipped_scores_and_pends_on_unsettled_ones() -> None:
    case = make_case(assertions=[{"type": "contains", "value": "a"}])
    (scorer,) = for_case(case, ScorersConfig())
    settled = (scorer, Score(1.0, True, "ok"))
    skipped = (scorer, Score(0.0, None, "not asked", skipped=True))
    pending = (scorer, Score(1.0, None, "abstained"))
    assert aggregate(case, [settled, skipped]).passed is True
    assert aggregate(case, [settled, pending]).passed is None
    assert aggregate(case, [(scorer, Score(0.0, False, "no")), pending]).passed is False


def test_a_similarity_cache_key_names_how_similarity_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    case = corrected(assertions=[{"type": "similar-to-correction"}, {"type": "contains", "value": "a"}])
    contains, similar = sorted(for_case(case, ScorersConfig()), key=lambda s: s.name)
    with_embeddings = (similar.cache_key, contains.cache_key)
    monkeypatch.setattr(scorers._embedder, "get", lambda: None)
    assert similar.cache_key != with_embeddings[0]
    assert contains.cache_key == with_embeddings[1]

"""The cross-turn risk detectors (repeated tool calls, repeated questions, turn budget) and their session memory."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanguard.processors.risk import RiskClassifier, load_risk_config_text
from spanguard.processors.sdk import RiskSamplingSpanProcessor
from spanguard.processors.tail_sampling import SamplingConfig, TailSampler
from spanguard.processors.tail_sampling.session_memory import SessionMemory, normalize_question, question_digest
from spanguard.processors.view import SpanView
from spanguard.yamlconfig import ConfigError

ONLY_SESSIONS = {
    "detectors": {
        "agent_loop": {"enabled": False},
        "sensitive_topics": {"enabled": False},
        "unpinned_model": {"enabled": False},
        "long_session": {"enabled": False},
    }
}


def config(**detectors: Any) -> dict[str, Any]:
    return {"detectors": {**ONLY_SESSIONS["detectors"], **detectors}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text_messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def turn(
    number: int,
    session: str | None = "conv-1",
    *,
    tool: tuple[str, Any] | None = None,
    question: str | None = None,
    answer: str | None = "Here you go.",
) -> list[SpanView]:
    """One trace (one user turn) of a session: an agent span, a chat span, and a tool span when ``tool`` is given."""
    trace_id = f"{number:032x}"
    common = {"gen_ai.conversation.id": session} if session is not None else {}
    chat: dict[str, Any] = {**common, "gen_ai.operation.name": "chat"}
    if question is not None:
        history = [{"role": "user", "parts": [{"type": "text", "content": "an earlier question"}]}]
        history.append({"role": "assistant", "parts": [{"type": "text", "content": "an earlier answer"}]})
        history.append({"role": "user", "parts": [{"type": "text", "content": question}]})
        chat["gen_ai.input.messages"] = json.dumps(history)
    if answer is not None:
        chat["gen_ai.output.messages"] = text_messages("assistant", answer)
    spans = [
        SpanView(trace_id, "a" * 16, "invoke_agent support", attributes=dict(common)),
        SpanView(trace_id, "b" * 16, "chat gpt-4o", parent_span_id="a" * 16, attributes=chat),
    ]
    if tool is not None:
        name, arguments = tool
        attributes = {
            **common,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        }
        spans.append(
            SpanView(trace_id, "c" * 16, f"execute_tool {name}", parent_span_id="a" * 16, attributes=attributes)
        )
    return spans


def reasons(classifier: RiskClassifier, traces: list[list[SpanView]]) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for spans in traces:
        risk = classifier.classify(spans)
        out.append((risk.tier, risk.reasons))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# repeated_tool_call_across_turns


def test_the_third_trace_with_the_same_tool_call_fires_at_the_configured_tier():
    classifier = RiskClassifier(config(repeated_tool_call_across_turns={"tier": "red"}))
    lookups = [turn(i, tool=("lookup_order", {"order": 42, "verbose": True})) for i in range(1, 5)]
    assert reasons(classifier, lookups) == [
        ("green", ()),
        ("green", ()),
        ("red", ("repeated_tool_call_across_turns",)),
        ("red", ("repeated_tool_call_across_turns",)),
    ]


def test_arguments_are_compared_as_canonical_json():
    classifier = RiskClassifier(config())
    spellings = ['{"order": 42, "verbose": true}', '{"verbose":true,"order":42}', '{ "order" : 42 , "verbose" : true }']
    results = reasons(classifier, [turn(i, tool=("lookup_order", s)) for i, s in enumerate(spellings, 1)])
    assert results[-1] == ("yellow", ("repeated_tool_call_across_turns",))


def test_different_arguments_or_tools_or_sessions_stay_silent():
    classifier = RiskClassifier(config())
    traces = [
        turn(1, tool=("lookup_order", {"order": 1})),
        turn(2, tool=("lookup_order", {"order": 2})),
        turn(3, tool=("lookup_customer", {"order": 1})),
        turn(4, "conv-2", tool=("lookup_order", {"order": 1})),
        turn(5, "conv-3", tool=("lookup_order", {"order": 1})),
        turn(6, None, tool=("lookup_order", {"order": 1})),
        turn(7, None, tool=("lookup_order", {"order": 1})),
    ]
    assert {tier for tier, _ in reasons(classifier, traces)} == {"green"}


def test_a_trace_classified_again_counts_once():
    classifier = RiskClassifier(config())
    first, second = turn(1, tool=("lookup_order", {"order": 1})), turn(2, tool=("lookup_order", {"order": 1}))
    # The collector's risk stage classifies a trace once per batch its spans arrive in.
    results = reasons(classifier, [first, first[:2], first, second, second])
    assert {tier for tier, _ in results} == {"green"}


def test_min_traces_is_configurable_and_the_detector_can_be_switched_off():
    two = RiskClassifier(config(repeated_tool_call_across_turns={"min_traces": 2}))
    off = RiskClassifier(config(repeated_tool_call_across_turns={"enabled": False}))
    traces = [turn(i, tool=("lookup_order", {"order": 1})) for i in range(1, 5)]
    assert reasons(two, traces)[1] == ("yellow", ("repeated_tool_call_across_turns",))
    assert {tier for tier, _ in reasons(off, traces)} == {"green"}


# ---------------------------------------------------------------------------------------------------------------------
# repeated_user_question


def test_a_question_asked_again_after_it_was_answered_fires():
    classifier = RiskClassifier(config())
    traces = [
        turn(1, question="Where is my order #1234?"),
        turn(2, question="Can I change the address?"),
        turn(3, question="  where IS my order   1234 "),
    ]
    assert reasons(classifier, traces) == [("green", ()), ("green", ()), ("yellow", ("repeated_user_question",))]


def test_near_identical_questions_fire_by_token_set_similarity_and_others_do_not():
    strict = RiskClassifier(config(repeated_user_question={"similarity": 1.0}))
    loose = RiskClassifier(config(repeated_user_question={"similarity": 0.8}))
    asked = "when will the parcel with my blue winter jacket and the two wool scarves arrive"
    again = "when will the parcel with my blue winter jacket and the two wool scarves arrive please"
    for classifier, expected in ((strict, "green"), (loose, "yellow")):
        results = reasons(classifier, [turn(1, question=asked), turn(2, question=again)])
        assert results[1][0] == expected


def test_new_questions_unanswered_questions_and_other_sessions_stay_silent():
    classifier = RiskClassifier(config())
    traces = [
        turn(1, question="Where is my order?", answer=None),  # not answered: asking again is fair
        turn(2, question="Where is my order?"),
        turn(3, question="What is your refund policy?"),
        turn(4, "conv-2", question="Where is my order?"),
        turn(5, None, question="Where is my order?"),
        turn(6, None, question="Where is my order?"),
    ]
    assert {tier for tier, _ in reasons(classifier, traces)} == {"green"}


def test_the_same_question_within_one_trace_is_not_a_repeat():
    classifier = RiskClassifier(config())
    spans = turn(1, question="Where is my order?")
    again = SpanView(
        spans[0].trace_id, "d" * 16, "chat gpt-4o", parent_span_id="a" * 16, attributes=spans[1].attributes
    )
    assert classifier.classify([*spans, again]).tier == "green"
    assert classifier.classify([*spans, again]).tier == "green"


def test_questions_are_normalised_for_case_whitespace_and_punctuation():
    assert normalize_question("  Where's   MY order?!\n") == normalize_question("where s my order")
    assert normalize_question("...") == ""


def test_ascii_questions_are_normalised_as_any_other_text():
    """ASCII text takes a shortcut (a translation table): every character ends as the general path has it."""
    for code in range(128):
        text = f"Ab{chr(code)}c{chr(code) * 2}D 1{chr(code)}"
        # A non-ASCII letter at the end sends the same text through the general (Unicode) path.
        assert normalize_question(text) + " \u00e9" == normalize_question(text + " \u00e9"), code


def test_the_memory_keeps_digests_not_question_text():
    memory = SessionMemory(max_sessions=10, ttl_s=60, max_entries_per_session=10)
    classifier = RiskClassifier(config())
    classifier.session_memory = memory
    classifier.classify(turn(1, question="my secret account number is 99887766"))
    assert memory._sessions["conv-1"].questions  # remembered
    assert "99887766" not in repr(memory._sessions["conv-1"].questions)
    whole, tokens = question_digest(normalize_question("my secret account number is 99887766"))
    assert len(whole) == 32 and all(isinstance(token, int) for token in tokens)


# ---------------------------------------------------------------------------------------------------------------------
# turn_budget


def test_a_session_past_its_turn_budget_fires_from_the_first_turn_over():
    classifier = RiskClassifier(config(turn_budget={"max_turns": 3, "tier": "red"}))
    results = reasons(classifier, [turn(i) for i in range(1, 6)])
    assert results == [("green", ())] * 3 + [("red", ("turn_budget",))] * 2


def test_the_turn_budget_counts_traces_not_classifications_and_stays_silent_under_budget():
    classifier = RiskClassifier(config(turn_budget={"max_turns": 2}))
    first = turn(1)
    results = reasons(classifier, [first, first, first, turn(2), turn(3, "conv-2"), turn(4, None), turn(5, None)])
    assert {tier for tier, _ in results} == {"green"}


def test_the_default_turn_budget_is_twenty():
    classifier = RiskClassifier(config())
    results = reasons(classifier, [turn(i) for i in range(1, 22)])
    assert [tier for tier, _ in results] == ["green"] * 20 + ["yellow"]


# ---------------------------------------------------------------------------------------------------------------------
# The memory's bounds


def test_the_least_recently_seen_session_is_forgotten_first():
    classifier = RiskClassifier(config(turn_budget={"max_turns": 1}, session_memory={"max_sessions": 2}))
    classifier.classify(turn(1, "a"))
    classifier.classify(turn(2, "b"))
    classifier.classify(turn(3, "a", question="a second turn"))  # "a" seen again: "b" is now the oldest
    assert classifier.classify(turn(4, "c")).tier == "green"  # "b" forgotten
    assert "b" not in classifier.session_memory and "a" in classifier.session_memory
    assert classifier.classify(turn(5, "b")).tier == "green"  # a new count
    assert classifier.classify(turn(6, "c")).reasons == ("turn_budget",)


def test_an_idle_session_is_forgotten_after_its_ttl():
    clock = Clock()
    classifier = RiskClassifier(config(session_memory={"ttl_s": 60}), clock=clock)
    tools = [turn(i, tool=("lookup_order", {"order": 1})) for i in range(1, 4)]
    classifier.classify(tools[0])
    clock.now += 30
    classifier.classify(tools[1])
    clock.now += 61
    assert "conv-1" not in classifier.session_memory
    assert classifier.classify(tools[2]).tier == "green"  # its earlier turns are forgotten


def test_each_session_keeps_a_bounded_number_of_entries():
    classifier = RiskClassifier(config(session_memory={"max_entries_per_session": 2}))
    for i in range(1, 6):
        classifier.classify(turn(i, tool=("lookup_order", {"order": i}), question=f"question number {i}"))
    state = classifier.session_memory._sessions["conv-1"]
    assert len(state.tool_calls) == len(state.questions) == len(state.traces) == 2
    assert state.turns == 5  # the count goes on


def test_no_memory_when_every_cross_turn_detector_is_off():
    off = {"enabled": False}
    classifier = RiskClassifier(
        config(repeated_tool_call_across_turns=off, repeated_user_question=off, turn_budget=off)
    )
    assert classifier.session_memory is None
    assert classifier.classify(turn(1, tool=("x", {}))).tier == "green"


def test_reason_texts_explain_the_new_codes():
    risk = load_risk_config_text("{}")
    for code in ("repeated_tool_call_across_turns", "repeated_user_question", "turn_budget"):
        assert risk.explain(code) != code


# ---------------------------------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "detectors:\n  repeated_tool_call_across_turns: {min_traces: 1}\n",
            "2:37: detectors.repeated_tool_call_across_turns.min_traces: should be greater than or equal to 2, got 1",
        ),
        (
            "detectors:\n  repeated_user_question: {similarity: 1.5}\n",
            "2:28: detectors.repeated_user_question.similarity: should be greater than 0 and at most 1, got 1.5",
        ),
        (
            "detectors:\n  repeated_user_question: {similarity: 0}\n",
            "detectors.repeated_user_question.similarity: should be greater than 0 and at most 1, got 0.0",
        ),
        (
            "detectors:\n  turn_budget: {max_turns: '20'}\n",
            "detectors.turn_budget.max_turns: should be a valid integer",
        ),
        (
            "detectors:\n  turn_budget: {tier: orange}\n",
            "detectors.turn_budget.tier: unknown tier 'orange' (expected green, yellow or red)",
        ),
        (
            "detectors:\n  turn_budget: {max_turn: 3}\n",
            "detectors.turn_budget.max_turn: unknown key 'max_turn' (expected one of: enabled, max_turns, tier)",
        ),
        (
            "detectors:\n  session_memory: {ttl_s: -1}\n",
            "detectors.session_memory.ttl_s: should be greater than 0, got -1.0",
        ),
        (
            "detectors:\n  session_memory: {max_sessions: 0}\n",
            "detectors.session_memory.max_sessions: should be greater than or equal to 1, got 0",
        ),
    ],
)
def test_bad_values_are_refused_with_the_keys_path(yaml_text, expected):
    with pytest.raises(ConfigError) as caught:
        load_risk_config_text(yaml_text, source="risk.yaml")
    assert expected in str(caught.value)


def test_the_packaged_default_writes_out_the_built_in_values():
    default = RiskClassifier().config.detectors
    built_in = load_risk_config_text("{}").detectors
    for name in ("repeated_tool_call_across_turns", "repeated_user_question", "turn_budget", "session_memory"):
        assert getattr(default, name) == getattr(built_in, name)


# ---------------------------------------------------------------------------------------------------------------------
# In process: the SDK's risk-sampling processor runs the same detectors


def test_in_process_a_repeated_question_keeps_the_trace_that_repeats_it():
    exporter = InMemorySpanExporter()
    sampler = TailSampler(SamplingConfig(green_rate=0.0, yellow_rate=1.0), RiskClassifier(config()))
    processor = RiskSamplingSpanProcessor(SimpleSpanProcessor(exporter), sampler)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for question in ("Where is my order?", "Can I pay by card?", "where is my order"):
        attributes = {
            "gen_ai.conversation.id": "conv-sdk",
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": text_messages("user", question),
            "gen_ai.output.messages": text_messages("assistant", "It ships tomorrow."),
        }
        with tracer.start_as_current_span("chat gpt-4o", attributes=attributes):
            pass
        assert processor.force_flush()  # decided turn by turn, as they would be at a user's pace
    kept = exporter.get_finished_spans()
    provider.shutdown()
    assert len(kept) == 1
    assert kept[0].attributes["spanguard.risk.tier"] == "yellow"
    assert kept[0].attributes["spanguard.risk.reasons"] == ("repeated_user_question",)
    assert json.loads(kept[0].attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "where is my order"

"""Risk classification: rules from YAML, refused configurations, each detector, trace tiers and annotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from spanguard.processors.risk import (
    DetectorsConfig,
    RiskClassifier,
    RiskConfig,
    TraceRisk,
    highest_tier,
    load_risk_config,
    load_risk_config_text,
    tier_rank,
)
from spanguard.processors.risk import engine as risk_module
from spanguard.processors.view import EventView, SpanView
from spanguard.yamlconfig import ConfigError

TRACE = "0af7651916cd43dd8448eb211c80319c"
SECOND = 1_000_000_000

# Every detector off: rule tests see only their rules.
QUIET = """
detectors:
  error_status: {enabled: false}
  unpinned_model: {enabled: false}
  sensitive_topics: {enabled: false}
  agent_loop: {enabled: false}
  low_confidence: {enabled: false}
  long_session: {enabled: false}
"""

_ids = iter(range(1, 1_000_000))


def span(name: str = "s", attributes: dict[str, Any] | None = None, **fields: Any) -> SpanView:
    return SpanView(
        trace_id=TRACE,
        span_id=f"{next(_ids):016x}",
        name=name,
        start_time_unix_nano=fields.pop("start", SECOND),
        end_time_unix_nano=fields.pop("end", 2 * SECOND),
        attributes=dict(attributes or {}),
        **fields,
    )


def messages(*texts: str, role: str = "user") -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": t} for t in texts]}])


def chat(**attributes: Any) -> SpanView:
    return span("chat gpt-4o", {"gen_ai.operation.name": "chat", **attributes})


def tool(name: str, arguments: Any = None, **attributes: Any) -> SpanView:
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, **attributes}
    if arguments is not None:
        attrs["gen_ai.tool.call.arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return span(f"execute_tool {name}", attrs)


def rules(text: str, detectors: str = QUIET) -> RiskClassifier:
    return RiskClassifier(load_risk_config_text("rules:\n" + text + detectors))


def only(detector_yaml: str) -> RiskClassifier:
    """No rules, every detector off except those given (switched on unless they say otherwise)."""
    data = yaml.safe_load(QUIET)
    for name, settings in yaml.safe_load(detector_yaml)["detectors"].items():
        data["detectors"][name] = {"enabled": True, **settings}
    return RiskClassifier(load_risk_config(data))


# --------------------------------------------------------------------------------------------------------------------
# Rules


TOOL_RULES = """
  - name: payment-tool
    tier: red
    reason: Payments always need a person
    match: {tool_name: {in: [charge_card, refund, transfer_money]}}
  - name: big-refund
    tier: yellow
    reason: Refunds above 100 need a look
    match: {tool_name: {equals: refund}, attributes: {"app.refund.amount": {gt: 100}}}
  - name: crm-tools
    tier: yellow
    reason: CRM writes
    match: {tool_name: {regex: "^crm\\\\."}}
"""


def test_tool_name_rules_in_equals_regex_and_several_rules_firing():
    classifier = rules(TOOL_RULES)
    assert classifier.classify([tool("charge_card")]) == TraceRisk("red", ("rule:payment-tool",))
    assert classifier.classify([tool("refund", **{"app.refund.amount": 150})]) == TraceRisk(
        "red", ("rule:big-refund", "rule:payment-tool")
    )
    assert classifier.classify([tool("refund", **{"app.refund.amount": 100})]).reasons == ("rule:payment-tool",)
    assert classifier.classify([tool("crm.update")]) == TraceRisk("yellow", ("rule:crm-tools",))
    assert classifier.classify([tool("xcrm.update"), tool("lookup")]) == TraceRisk("green", ())


def test_string_shorthands_span_name_operation_status_and_resource():
    classifier = rules(
        """
  - {name: by-name, tier: yellow, reason: r, match: {span_name: {regex: "^invoke_agent "}}}
  - {name: exact-name, tier: yellow, reason: r, match: {span_name: "chat m"}}
  - {name: ops, tier: yellow, reason: r, match: {operation: [embeddings, text_completion]}}
  - {name: failed-chat, tier: red, reason: r, match: {status: error, operation: chat}}
  - {name: svc, tier: yellow, reason: r, match: {resource: {service.name: payments}}}
"""
    )
    assert classifier.classify([span("invoke_agent shop")]).reasons == ("rule:by-name",)
    assert classifier.classify([span("chat m")]).reasons == ("rule:exact-name",)
    assert classifier.classify([span("chat mm")]).reasons == ()
    assert classifier.classify([span("e", {"gen_ai.operation.name": "embeddings"})]).reasons == ("rule:ops",)
    assert classifier.classify([chat()]).tier == "green"
    assert classifier.classify([span("c", {"gen_ai.operation.name": "chat"}, status_code="ERROR")]) == TraceRisk(
        "red", ("rule:failed-chat",)
    )
    assert classifier.classify([span("x", status_code="ERROR")]).tier == "green"  # all conditions must hold
    assert classifier.classify([span("x", resource={"service.name": "payments"})]).reasons == ("rule:svc",)


@pytest.mark.parametrize(
    ("condition", "hits", "misses"),
    [
        ("{equals: prod}", ["prod"], ["Prod", 1, None]),
        ("prod", ["prod"], ["staging"]),  # a plain value means equals
        ("{equals: 1}", [1, 1.0], ["1", True]),
        ("{equals: true}", [True], [1, "true"]),
        ("false", [False], [0, ""]),
        ("{in: [a, 2]}", ["a", 2, ("x", "a")], ["2", "b"]),
        ("[a, b]", ["b"], ["c"]),  # a list means in
        ("{in: [content_filter, refusal]}", ["refusal", ("stop", "content_filter")], ["stop", 1, True, ("x",)]),
        ('{regex: "^gpt-4o(-mini)?$"}', ["gpt-4o", "gpt-4o-mini", ("x", "gpt-4o")], ["gpt-4o-2024", 4]),
        ("{gt: 100}", [101, 100.5, "150.00", (1, 200)], [100, "abc", True, "nan"]),
        ("{gte: 100}", [100, 100.0], [99.9]),
        ("{lt: 0.5}", [0.4, -3], [0.5]),
        ("{lte: 0.5}", [0.5], [0.51]),
        ("{gt: 1, lt: 3}", [2, (0, 2)], [3, (0, 5)]),  # one element must satisfy every operator
        ("{exists: true}", ["", 0, False], []),
        ("{equals: [a, b]}", [("a", "b"), ["a", "b"]], [("a",), ("b", "a"), "a"]),
    ],
)
def test_attribute_matchers(condition, hits, misses):
    classifier = rules(f'  - {{name: r, tier: yellow, reason: r, match: {{attributes: {{"app.x": {condition}}}}}}}\n')
    for value in hits:
        assert classifier.classify([span(attributes={"app.x": value})]).tier == "yellow", value
    for value in misses:
        attributes = {} if value is None else {"app.x": value}
        assert classifier.classify([span(attributes=attributes)]).tier == "green", value
    if "exists" not in condition:
        assert classifier.classify([span()]).tier == "green"  # an absent attribute never matches


def test_exists_false_and_green_and_disabled_rules():
    classifier = rules(
        """
  - name: no-model
    tier: yellow
    reason: r
    match: {operation: chat, attributes: {gen_ai.request.model: {exists: false}}}
  - {name: label, tier: green, reason: known flow, match: {span_name: checkout}}
  - {name: disabled, tier: red, reason: r, enabled: false, match: {span_name: checkout}}
"""
    )
    assert classifier.classify([chat()]).reasons == ("rule:no-model",)
    assert classifier.classify([chat(**{"gen_ai.request.model": "m"})]).reasons == ()
    assert classifier.classify([span("checkout")]) == TraceRisk("green", ("rule:label",))


def test_rules_from_a_file_and_explain(tmp_path):
    path = tmp_path / "risk.yaml"
    path.write_text("rules:\n" + TOOL_RULES + QUIET)
    for source in (path, str(path)):
        config = load_risk_config(source)
        assert [r.name for r in config.rules] == ["payment-tool", "big-refund", "crm-tools"]
    assert config.explain("rule:payment-tool") == "Payments always need a person"
    assert "approval gate" in config.explain("approval_gate")
    assert config.explain("topic:self_harm") == "Safety-sensitive topic: self harm."
    assert config.explain("something-else") == "something-else"
    assert RiskClassifier(path).classify([tool("refund")]).tier == "red"
    assert RiskClassifier(yaml.safe_load(path.read_text())).config == config


def test_mapping_source_and_prefix():
    config = load_risk_config({"rules": [{"name": "a", "tier": "red", "reason": "r", "match": {"status": "ERROR"}}]})
    assert config.rules[0].tier == "red"
    assert load_risk_config(config) is config
    with pytest.raises(ConfigError) as error:
        load_risk_config(
            {"rules": [{"name": "a", "tier": "red", "reason": "r", "match": {}}]}, prefix="processors.risk"
        )
    assert str(error.value).startswith("processors.risk.rules[0].match: a rule needs at least one condition")
    assert error.value.source is None


# --------------------------------------------------------------------------------------------------------------------
# Refused configurations


BAD = [
    ("syntax", "rules:\n  - name: a\n    tier: [red\n", "risk.yaml:4:1: YAML syntax error: expected ',' or ']'"),
    (
        "unknown key",
        "rules:\n  - name: a\n    tier: red\n    reason: r\n    match: {tool_name: x, colour: blue}\n",
        "risk.yaml:5:27: rules[0].match.colour: unknown key 'colour' (expected one of: attributes, operation,",
    ),
    (
        "wrong type",
        "rules:\n  - name: a\n    tier: red\n    reason: r\n    match: {attributes: {x: {gt: high}}}\n",
        "risk.yaml:5:30: rules[0].match.attributes.x.gt: should be a finite number, got 'high'",
    ),
    (
        "bad regex",
        "rules:\n  - name: a\n    tier: red\n    reason: r\n    match:\n      attributes:\n"
        "        gen_ai.request.model: {regex: '(unclosed'}\n",
        'risk.yaml:7:32: rules[0].match.attributes["gen_ai.request.model"].regex: invalid regular expression: missing',
    ),
    (
        "unknown tier",
        "rules:\n  - name: a\n    tier: orange\n    reason: r\n    match: {status: ERROR}\n",
        "risk.yaml:3:5: rules[0].tier: unknown tier 'orange' (expected green, yellow or red)",
    ),
    (
        "unknown detector",
        "detectors:\n  loop_detector: {enabled: true}\n",
        "risk.yaml:2:3: detectors.loop_detector: unknown detector 'loop_detector' (expected one of: agent_loop,",
    ),
    (
        "empty rule",
        "rules:\n  - name: a\n    tier: red\n    reason: r\n    match: {}\n",
        "risk.yaml:5:5: rules[0].match: a rule needs at least one condition",
    ),
    ("missing match", "rules:\n  - {name: a, tier: red, reason: r}\n", "risk.yaml:2:5: rules[0].match: required"),
    (
        "duplicate rule",
        "rules:\n  - {name: a, tier: red, reason: r, match: {status: ERROR}}\n"
        "  - {name: a, tier: red, reason: r, match: {status: OK}}\n",
        "risk.yaml:3:6: rules[1].name: duplicate rule name 'a' (also rules[0])",
    ),
    (
        "duplicate key",
        "rules:\n  - name: a\n    name: b\n    tier: red\n    reason: r\n    match: {status: OK}\n",
        "risk.yaml:3:5: rules[0].name: duplicate key 'name' (first defined at line 2, column 5)",
    ),
    (
        "bad status",
        "rules:\n  - {name: a, tier: red, reason: r, match: {status: BROKEN}}\n",
        "risk.yaml:2:45: rules[0].match.status: should be 'UNSET', 'OK' or 'ERROR', got 'BROKEN'",
    ),
    (
        "approval gate off",
        "detectors:\n  approval_gate: {enabled: false}\n",
        "risk.yaml:2:19: detectors.approval_gate.enabled: the approval_gate detector cannot be switched off",
    ),
    (
        "bad term",
        "detectors:\n  sensitive_topics:\n    categories:\n      medical: {terms: ['*bad']}\n",
        "risk.yaml:4:17: detectors.sensitive_topics.categories.medical.terms: term '*bad'",
    ),
    (
        "new category without terms",
        "detectors:\n  sensitive_topics:\n    categories:\n      weapons: {tier: red}\n",
        "risk.yaml:4:7: detectors.sensitive_topics.categories.weapons.terms: required",
    ),
    (
        "string for a number",
        "detectors:\n  low_confidence: {threshold: '-1'}\n",
        "risk.yaml:2:20: detectors.low_confidence.threshold: should be a finite number, got '-1'",
    ),
    (
        "string for a boolean",
        "detectors:\n  error_status: {enabled: 'yes'}\n",
        "risk.yaml:2:18: detectors.error_status.enabled: should be a valid boolean",
    ),
    (
        "exists false with others",
        "rules:\n  - {name: a, tier: red, reason: r, match: {attributes: {x: {exists: false, equals: 1}}}}\n",
        "risk.yaml:2:58: rules[0].match.attributes.x: exists: false cannot be combined",
    ),
    ("top level list", "- a\n", "risk.yaml:1:1: the top level must be a mapping, not a list"),
    (
        "bad rule name",
        "rules:\n  - {name: 'a b', tier: red, reason: r, match: {status: OK}}\n",
        "risk.yaml:2:6: rules[0].name: rule name 'a b' should be",
    ),
    (
        "yaml boolean for a string",
        "rules:\n  - {name: false, tier: red, reason: r, match: {status: OK}}\n",
        "risk.yaml:2:6: rules[0].name: should be a valid string, got False (YAML reads",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_configuration_is_refused_with_file_line_and_path(tmp_path, case, text, expected):
    path = tmp_path / "risk.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_risk_config(path)
    message = str(error.value)
    assert message.startswith(str(path.parent) + "/" + expected), message
    assert error.value.source == str(path)
    # Without a file the message starts with the path itself.
    if not case.startswith(("syntax", "duplicate key", "top level")):
        with pytest.raises(ConfigError) as parsed:
            load_risk_config(yaml.safe_load(text))
        assert str(parsed.value).startswith(expected.split(": ", 1)[1][:40]), str(parsed.value)
        assert parsed.value.errors[0][0] == str(parsed.value).split(": ", 1)[0]


def test_several_problems_are_all_reported_in_file_order():
    text = "detectors:\n  low_confidence: {threshold: x}\n  agent_loop: {min_repeats: 1}\n"
    with pytest.raises(ConfigError) as error:
        load_risk_config_text(text, source="r.yaml")
    lines = str(error.value).splitlines()
    assert lines[0].startswith("r.yaml:2:20: detectors.low_confidence.threshold:")
    assert lines[1].startswith("r.yaml:3:16: detectors.agent_loop.min_repeats: should be greater than or equal to 2")
    assert [path for path, _ in error.value.errors] == [
        "detectors.low_confidence.threshold",
        "detectors.agent_loop.min_repeats",
    ]


def test_unreadable_file_and_wrong_source_type(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the risk configuration"):
        load_risk_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="use load_risk_config_text"):
        load_risk_config("rules: []\ndetectors: {}\n")
    with pytest.raises(TypeError):
        load_risk_config(42)  # type: ignore[arg-type]


def test_empty_file_means_no_rules_and_default_detectors(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    config = load_risk_config(path)
    assert config.rules == ()
    assert config.detectors == DetectorsConfig()


# --------------------------------------------------------------------------------------------------------------------
# Detectors


def test_error_status_on_off_and_tier():
    failed = span(status_code="ERROR")
    assert RiskClassifier(RiskConfig()).classify([failed]) == TraceRisk("yellow", ("error_status",))
    assert only("detectors:\n  error_status: {tier: red}\n").classify([failed]).tier == "red"
    assert only("detectors:\n  error_status: {enabled: false}\n").classify([failed]).tier == "green"
    assert RiskClassifier(RiskConfig()).classify([span(status_code="OK")]).tier == "green"


def test_unpinned_model_on_off():
    on = only("detectors:\n  unpinned_model: {enabled: true}\n")
    assert on.classify([chat(**{"spanguard.model.pinned": False})]) == TraceRisk("yellow", ("unpinned_model",))
    assert on.classify([chat(**{"spanguard.model.pinned": "false"})]).tier == "yellow"
    assert on.classify([chat(**{"spanguard.model.pinned": True})]).tier == "green"
    assert on.classify([chat()]).tier == "green"
    off = only("detectors:\n  unpinned_model: {enabled: false}\n")
    assert off.classify([chat(**{"spanguard.model.pinned": False})]).tier == "green"


def test_approval_gate_is_always_red():
    quiet = RiskClassifier(load_risk_config_text(QUIET))
    gate = tool("charge_card", **{"spanguard.approval.gate": True})
    assert quiet.classify([span("root"), gate]) == TraceRisk("red", ("approval_gate",))
    assert quiet.classify([span(attributes={"spanguard.approval.gate": "true"})]).tier == "red"
    assert quiet.classify([span(attributes={"spanguard.approval.gate": False})]).tier == "green"


TOPICS_ON = "detectors:\n  sensitive_topics: {enabled: true}\n"


def test_sensitive_topics_in_messages_with_category_tiers():
    classifier = only(TOPICS_ON)
    assert classifier.classify([chat(**{"gen_ai.input.messages": messages("I want to end my life")})]) == TraceRisk(
        "red", ("topic:self_harm",)
    )
    assert classifier.classify(
        [chat(**{"gen_ai.output.messages": messages("Ask a LAWYER about the Lawsuit", role="assistant")})]
    ) == TraceRisk("yellow", ("topic:legal",))
    several = chat(**{"gen_ai.input.messages": messages("my diagnosis", "my mortgage")})
    assert classifier.classify([several]) == TraceRisk("yellow", ("topic:financial", "topic:medical"))
    assert classifier.classify([chat(**{"gen_ai.input.messages": messages("What's the weather?")})]).tier == "green"


def test_sensitive_topics_whole_words_prefixes_and_phrases():
    classifier = only(TOPICS_ON)

    def tier(text: str) -> str:
        return classifier.classify([chat(**{"gen_ai.input.messages": messages(text)})]).tier

    assert tier("suicidal thoughts") == "red"  # suicid*
    assert tier("Suicide.") == "red"
    assert tier("kill   myself") == "red"  # any whitespace between the words of a phrase
    assert tier("kill myselfish") == "green"
    assert tier("skill myself") == "green"
    assert tier("cancerous") == "green"  # "cancer" has no '*': whole word only
    assert tier("cancer") == "yellow"
    assert tier("my 401(k) plan") == "yellow"
    assert tier("self-harming") == "red"


def test_sensitive_topics_sees_through_json_escapes_and_skips_structure():
    classifier = only(TOPICS_ON)
    escaped = json.dumps([{"role": "user", "parts": [{"type": "text", "content": 'line\nsuicide "quoted"'}]}])
    assert "\\nsuicide" in escaped
    assert classifier.classify([chat(**{"gen_ai.input.messages": escaped})]).tier == "red"
    across_lines = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "kill\nmyself"}]}])
    assert classifier.classify([chat(**{"gen_ai.input.messages": across_lines})]).tier == "red"
    # Roles, types, ids and tool names are identifiers, not content.
    structure = json.dumps(
        [{"role": "assistant", "parts": [{"type": "tool_call", "id": "divorce", "name": "divorce", "arguments": {}}]}]
    )
    assert classifier.classify([chat(**{"gen_ai.output.messages": structure})]).tier == "green"
    # Tool-call arguments inside messages are content.
    args = json.dumps(
        [{"role": "assistant", "parts": [{"type": "tool_call", "name": "f", "arguments": {"q": "divorce"}}]}]
    )
    assert classifier.classify([chat(**{"gen_ai.output.messages": args})]).reasons == ("topic:legal",)


def test_sensitive_topics_non_ascii_terms_in_ascii_escaped_json():
    classifier = only(
        "detectors:\n  sensitive_topics:\n    categories:\n      health_fr: {tier: red, terms: ['santé mentale']}\n"
    )
    text = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "ma santé mentale"}]}])
    assert "\\u00e9" in text  # ensure_ascii: the term's own characters are escaped in the raw JSON
    assert classifier.classify([chat(**{"gen_ai.input.messages": text})]).reasons == ("topic:health_fr",)


def test_sensitive_topics_in_tool_arguments_events_and_plain_text():
    classifier = only(TOPICS_ON)
    assert classifier.classify([tool("search", {"query": "overdose symptoms"})]).reasons == ("topic:medical",)
    event = EventView("gen_ai.client.inference.operation.details", 1, {"gen_ai.input.messages": messages("suing")})
    assert classifier.classify([span("chat", events=[event])]).reasons == ("topic:legal",)
    assert classifier.classify([chat(**{"gen_ai.input.messages": "not json: my debt"})]).reasons == ("topic:financial",)
    assert classifier.classify([chat(**{"gen_ai.input.messages": ("plain", "my debts")})]).tier == "yellow"
    # System instructions and other attributes are not scanned by default.
    assert classifier.classify([chat(**{"gen_ai.system_instructions": messages("no medical advice")})]).tier == "green"


def test_sensitive_topics_configuration_merges_with_defaults_and_switches_off():
    changed = only(
        """
detectors:
  sensitive_topics:
    attributes: [app.note]
    categories:
      self_harm: {tier: yellow}
      medical: {enabled: false}
      weapons: {tier: red, terms: [explosive*, pipe bomb]}
"""
    )
    assert changed.classify([span(attributes={"app.note": "suicide"})]) == TraceRisk("yellow", ("topic:self_harm",))
    assert changed.classify([span(attributes={"app.note": "diagnosis"})]).tier == "green"
    assert changed.classify([span(attributes={"app.note": "PIPE\tbomb"})]) == TraceRisk("red", ("topic:weapons",))
    assert changed.classify([chat(**{"gen_ai.input.messages": messages("suicide")})]).tier == "green"
    off = only("detectors:\n  sensitive_topics: {enabled: false}\n")
    assert off.classify([chat(**{"gen_ai.input.messages": messages("suicide")})]).tier == "green"


def test_clean_content_is_not_parsed(monkeypatch):
    classifier = only(TOPICS_ON)
    calls = []
    real = json.loads

    def counting(text, *args, **kwargs):
        calls.append(text)
        return real(text, *args, **kwargs)

    clean = chat(**{"gen_ai.input.messages": messages("What's the weather in Paris?\nThanks")})
    flagged = chat(**{"gen_ai.input.messages": messages("about my mortgage")})
    monkeypatch.setattr(risk_module.json, "loads", counting)
    assert classifier.classify([clean] * 50).tier == "green"
    assert calls == []
    assert classifier.classify([flagged, flagged]).tier == "yellow"
    assert len(calls) == 1  # parsed once per trace, however often the same text appears


@pytest.mark.parametrize(
    "config",
    [TOPICS_ON, "detectors:\n  sensitive_topics:\n    categories:\n      fr: {terms: ['santé*', 'a/b test']}\n"],
    ids=["default-terms", "terms-with-escaped-characters"],
)
def test_screen_never_hides_a_term(monkeypatch, config):
    """The substring screen is only a shortcut: with or without it, the same topics are found."""
    import random

    rng = random.Random(7)
    screened, unscreened = only(config), only(config)
    monkeypatch.setattr(unscreened._topics, "_screen", lambda raw: unscreened._topics.everything)
    words = ["kill", "myself", "Suicidal", "SANTÉ", "santés", "a/b", "test", "tax", "return", "x", "debt", "hiv"]
    separators = [" ", "\n", "\t", "  ", '"', "\\", "_", "-"]
    for _ in range(400):
        text = "".join(rng.choice(words) + rng.choice(separators) for _ in range(rng.randint(1, 8)))
        value = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": text}]}], ensure_ascii=rng.random() < 0.5
        )
        spans = [chat(**{"gen_ai.input.messages": value})]
        assert screened.classify(spans) == unscreened.classify(spans), text


LOOP_ON = "detectors:\n  agent_loop: {enabled: true}\n"


def test_agent_loop_same_tool_same_arguments():
    classifier = only(LOOP_ON)
    same = [
        tool("search", {"q": "x", "n": 1}),
        tool("search", '{"n": 1,   "q": "x"}'),
        tool("search", {"q": "x", "n": 1}),
    ]
    assert classifier.classify(same) == TraceRisk("red", ("agent_loop",))
    assert classifier.classify(same[:2]).tier == "green"
    different = [tool("search", {"q": str(i)}) for i in range(5)]
    assert classifier.classify(different).tier == "green"
    other_tools = [tool(f"t{i}", {"q": "x"}) for i in range(3)]
    assert classifier.classify(other_tools).tier == "green"
    assert classifier.classify([tool("lookup", "not json")] * 3).tier == "red"


def test_agent_loop_without_recorded_arguments_and_threshold():
    no_args = [tool("search") for _ in range(4)]
    assert only(LOOP_ON).classify(no_args).tier == "green"
    counting = only("detectors:\n  agent_loop: {count_without_arguments: true}\n")
    assert counting.classify(no_args) == TraceRisk("red", ("agent_loop",))
    five = only("detectors:\n  agent_loop: {min_repeats: 5, tier: yellow}\n")
    assert five.classify([tool("s", {"a": 1})] * 4).tier == "green"
    assert five.classify([tool("s", {"a": 1})] * 5) == TraceRisk("yellow", ("agent_loop",))
    off = only("detectors:\n  agent_loop: {enabled: false}\n")
    assert off.classify([tool("s", {"a": 1})] * 5).tier == "green"


def tool_request(name: str, arguments: Any) -> SpanView:
    output = [{"role": "assistant", "parts": [{"type": "tool_call", "id": "c", "name": name, "arguments": arguments}]}]
    return chat(**{"gen_ai.output.messages": json.dumps(output)})


def test_agent_loop_counts_llm_tool_call_requests_once():
    classifier = only(LOOP_ON)
    requests = [
        tool_request("search", {"q": "x"}),
        tool_request("search", '{"q":"x"}'),
        tool_request("search", {"q": "x"}),
    ]
    assert classifier.classify(requests) == TraceRisk("red", ("agent_loop",))
    # Two requests and the two tool spans that ran them are two calls, not four.
    pairs = [tool_request("search", {"q": "x"}), tool("search", {"q": "x"})] * 2
    assert classifier.classify(pairs).tier == "green"
    no_llm = only("detectors:\n  agent_loop: {include_llm_tool_calls: false}\n")
    assert no_llm.classify(requests).tier == "green"


def test_low_confidence():
    classifier = only("detectors:\n  low_confidence: {enabled: true}\n")
    key = "spanguard.response.logprob.mean"
    assert classifier.classify([chat(**{key: -2.0}), chat(**{key: -0.5}), span("x")]) == TraceRisk(
        "yellow", ("low_confidence",)
    )
    assert classifier.classify([chat(**{key: -0.5}), chat(**{key: -1.0})]).tier == "green"
    assert classifier.classify([chat(), chat(**{key: "low"}), chat(**{key: True})]).tier == "green"
    strict = only("detectors:\n  low_confidence: {threshold: -0.1, min_spans: 2}\n")
    assert strict.classify([chat(**{key: -0.5})]).tier == "green"
    assert strict.classify([chat(**{key: -0.5}), chat(**{key: -0.5})]).tier == "yellow"
    off = only("detectors:\n  low_confidence: {enabled: false}\n")
    assert off.classify([chat(**{key: -5.0})]).tier == "green"
    # The semconv name, once declared, is the one read.
    assert risk_module.SPANGUARD_RESPONSE_LOGPROB_MEAN == key


def test_long_session_by_llm_calls_and_duration():
    classifier = only("detectors:\n  long_session: {enabled: true}\n")
    assert classifier.classify([chat() for _ in range(20)]).tier == "green"
    assert classifier.classify([chat() for _ in range(21)]) == TraceRisk("yellow", ("long_session",))
    assert classifier.classify([tool("t") for _ in range(30)]).tier == "green"  # only LLM calls count
    long = [span("root", start=SECOND, end=SECOND + 601 * SECOND), chat()]
    assert classifier.classify(long).reasons == ("long_session",)
    assert (
        classifier.classify(
            [span("a", start=SECOND, end=2 * SECOND), span("b", start=500 * SECOND, end=600 * SECOND)]
        ).tier
        == "green"
    )
    calls_only = only("detectors:\n  long_session: {max_duration_s: null, max_llm_calls: 2}\n")
    assert calls_only.classify(long).tier == "green"
    assert calls_only.classify([chat()] * 3).tier == "yellow"
    off = only("detectors:\n  long_session: {enabled: false}\n")
    assert off.classify([chat() for _ in range(100)]).tier == "green"


# --------------------------------------------------------------------------------------------------------------------
# Traces, spans and annotation


def test_trace_tier_is_the_highest_and_reasons_are_sorted_and_unique():
    classifier = RiskClassifier(RiskConfig())
    spans = [
        span("root"),
        span("a", status_code="ERROR"),
        span("b", status_code="ERROR"),
        chat(**{"spanguard.model.pinned": False, "gen_ai.input.messages": messages("I feel suicidal")}),
    ]
    assert classifier.classify(spans) == TraceRisk("red", ("error_status", "topic:self_harm", "unpinned_model"))
    assert classifier.classify(spans[:3]) == TraceRisk("yellow", ("error_status",))
    assert classifier.classify([]) == TraceRisk("green", ())


def test_classify_span_leaves_out_trace_level_detectors():
    classifier = RiskClassifier(RiskConfig())
    loop = [tool("s", {"a": 1}) for _ in range(3)]
    assert classifier.classify(loop).tier == "red"
    assert classifier.classify_span(loop[0]) == TraceRisk("green", ())
    assert classifier.classify_span(span(status_code="ERROR")) == TraceRisk("yellow", ("error_status",))


def test_annotate_sets_both_attributes_on_every_span_without_changing_inputs():
    classifier = RiskClassifier()
    spans = [span("root", {"a": 1}), tool("refund", **{"spanguard.risk.tier": "green"})]
    spans[0].source = object()
    before = [(s.attributes.copy(), s) for s in spans]
    risk = classifier.classify(spans)
    annotated = classifier.annotate(spans, risk)
    assert risk == TraceRisk("red", ("rule:payment-tool",))
    assert len(annotated) == 2
    for copy, (attributes, original) in zip(annotated, before, strict=True):
        assert copy is not original
        assert copy.attributes["spanguard.risk.tier"] == "red"
        assert copy.attributes["spanguard.risk.reasons"] == ("rule:payment-tool",)
        assert original.attributes == attributes
        assert copy.span_id == original.span_id and copy.source is original.source
    assert annotated[0].attributes["a"] == 1
    green = classifier.annotate([span()], TraceRisk())
    assert green[0].attributes["spanguard.risk.tier"] == "green"
    assert green[0].attributes["spanguard.risk.reasons"] == ()


def test_trace_risk_values():
    assert TraceRisk("yellow", ("b", "a", "b")).reasons == ("a", "b")
    assert TraceRisk("red").rank == 2
    with pytest.raises(ValueError, match="unknown tier"):
        TraceRisk("purple")  # type: ignore[arg-type]
    assert tier_rank("green") < tier_rank("yellow") < tier_rank("red")
    assert highest_tier(["green", "red", "yellow"]) == "red"
    assert highest_tier([]) == "green"


# --------------------------------------------------------------------------------------------------------------------
# The packaged default


def test_default_config_loads_and_documents_the_built_in_detector_defaults():
    config = load_risk_config()
    assert config is load_risk_config(None)  # loaded once
    assert config.detectors == DetectorsConfig()
    assert {r.name for r in config.rules} == {
        "payment-tool",
        "deletion-tool",
        "external-message-tool",
        "content-filtered",
    }
    packaged = Path(risk_module.__file__).with_name("default_rules.yaml")
    assert load_risk_config(packaged) == config


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("charge_card", "rule:payment-tool"),
        ("issueRefund", "rule:payment-tool"),
        ("refund", "rule:payment-tool"),
        ("REFUND_ORDER", "rule:payment-tool"),
        ("transfer_funds", "rule:payment-tool"),
        ("create_payment", "rule:payment-tool"),
        ("crm.delete_contact", "rule:deletion-tool"),
        ("deleteUser", "rule:deletion-tool"),
        ("drop_table", "rule:deletion-tool"),
        ("send_email", "rule:external-message-tool"),
        ("sendSlackMessage", "rule:external-message-tool"),
        ("email_customer", "rule:external-message-tool"),
        ("gmail.send", "rule:external-message-tool"),
        ("get_payment_status", None),
        ("list_refunds", None),
        ("transfer_to_agent", None),
        ("discharge_patient", None),
        ("getDeletedItems", None),
        ("dropdown_values", None),
        ("validate_email", None),
        ("get_weather", None),
    ],
)
def test_default_tool_rules(name, reason):
    risk = RiskClassifier().classify([tool(name)])
    if reason is None:
        assert risk == TraceRisk("green", ())
    else:
        assert risk == TraceRisk("red", (reason,))


def test_default_content_filter_rule():
    filtered = chat(**{"gen_ai.response.finish_reasons": ("content_filter",), "spanguard.model.pinned": True})
    assert RiskClassifier().classify([filtered]) == TraceRisk("yellow", ("rule:content-filtered",))


def test_shutdown_is_idempotent_and_safe_unused():
    classifier = RiskClassifier()
    classifier.shutdown()
    classifier.shutdown()
    used = RiskClassifier(RiskConfig())
    used.classify([span()])
    used.shutdown()

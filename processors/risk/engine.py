"""Risk classification: give each trace a tier (green < yellow < red) and the reasons for it, as short stable codes.

Pure logic over :class:`~spanguard.processors.view.SpanView`; the SDK and OTLP adapters feed it. The rules, detectors,
reason codes, configuration and its errors are ``docs/risk.md`` (the packaged default is ``default_rules.yaml`` next
to this module).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Final, Literal, cast

import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from spanguard import semconv
from spanguard.processors.tail_sampling.session_memory import (
    SessionMemory,
    normalize_question,
    question_digest,
    tool_call_digest,
)
from spanguard.processors.view import SpanView, with_attributes
from spanguard.yamlconfig import (
    ConfigError,
    KeyPath,
    field_keys,
    load_data,
    load_file,
    load_text,
    model_at,
)

Tier = Literal["green", "yellow", "red"]
TIERS: Final = cast("tuple[Tier, ...]", semconv.RiskTier.values())
"""The tiers, lowest first."""
_RANK: Final[dict[str, int]] = {tier: rank for rank, tier in enumerate(TIERS)}

SPANGUARD_RESPONSE_LOGPROB_MEAN: Final = semconv.SPANGUARD_RESPONSE_LOGPROB_MEAN

DEFAULT_CONFIG_RESOURCE: Final = "default_rules.yaml"
"""The packaged default configuration, a file of the ``spanguard.processors`` package."""

REASON_RULE_PREFIX: Final = "rule:"
REASON_TOPIC_PREFIX: Final = "topic:"
DETECTOR_REASONS: Final[dict[str, str]] = {
    "error_status": "A span ended with status ERROR.",
    "unpinned_model": "A model was requested by an alias the provider may move (spanguard.model.pinned is false).",
    "sensitive_topics": "A message or tool call touches a safety-sensitive topic.",
    "agent_loop": "A tool was called again and again with the same arguments in one trace.",
    "low_confidence": "The mean token log-probability of the responses is below the threshold.",
    "long_session": "The trace made more LLM calls, or ran longer, than configured.",
    "approval_gate": "The trace holds an approval gate: an agent action that waits for a person.",
    "repeated_tool_call_across_turns": "A tool was called with the same arguments in several turns of one session.",
    "repeated_user_question": "The user asked again a question the agent already answered earlier in the session.",
    "turn_budget": "The session went past its configured number of user turns.",
}
"""Each built-in detector's name (also its reason code, except ``sensitive_topics``) and what it means."""


def tier_rank(tier: str) -> int:
    """0 for green, 1 for yellow, 2 for red; ``ValueError`` for anything else."""
    try:
        return _RANK[tier]
    except KeyError:
        raise ValueError(f"unknown tier {tier!r} (expected green, yellow or red)") from None


def highest_tier(tiers: Iterable[str]) -> Tier:
    """The highest of ``tiers``; green when there are none."""
    return TIERS[max((tier_rank(t) for t in tiers), default=0)]


@dataclass(frozen=True, slots=True)
class TraceRisk:
    """A tier and the reasons for it (sorted, without duplicates: every rule and detector that fired, at any tier)."""

    tier: Tier = "green"
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        tier_rank(self.tier)
        reasons = tuple(sorted(set(self.reasons)))
        if reasons != self.reasons:
            object.__setattr__(self, "reasons", reasons)

    @property
    def rank(self) -> int:
        """The tier as a number (green 0, yellow 1, red 2), for comparisons."""
        return _RANK[self.tier]


# --------------------------------------------------------------------------------------------------------------------
# Configuration

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_MAX_REPR: Final = 80


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _compile_regex(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as error:
            raise ValueError(f"invalid regular expression: {error}") from None
    if isinstance(value, re.Pattern):
        return value
    raise ValueError(f"should be a regular expression (a string), got {_short(value)}")


Regex = Annotated[re.Pattern, BeforeValidator(_compile_regex)]


def _check_name(value: str, what: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} should be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"should be a finite number, got {value!r}")
    if isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError(f"should be a string, number or boolean, got {_short(value)}")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"should be a finite number, got {_short(value)}")
    return float(value)


Scalar = Annotated[Any, BeforeValidator(_scalar)]
Number = Annotated[Any, BeforeValidator(_number)]


class StringMatch(BaseModel, frozen=True, extra="forbid"):
    """A condition on a string: ``equals``, ``in`` and/or ``regex`` (all given must hold; ``regex`` searches).

    Shorthands: a plain string means ``equals``, a list means ``in``.
    """

    equals: StrictStr | None = None
    in_: tuple[StrictStr, ...] | None = Field(None, alias="in")
    regex: Regex | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"equals": value}
        if isinstance(value, list):
            return {"in": value}
        if isinstance(value, Mapping):
            return value
        raise ValueError(
            f"should be a string, a list of strings or a mapping with equals/in/regex, got {_short(value)}"
        )

    @model_validator(mode="after")
    def _not_empty(self) -> StringMatch:
        if self.equals is None and self.in_ is None and self.regex is None:
            raise ValueError("needs at least one of equals, in, regex")
        return self

    def predicate(self) -> Callable[[Any], bool]:
        """A test of one value: true when it is a string satisfying every condition given."""
        tests: list[Callable[[str], Any]] = []
        if self.equals is not None:
            expected = self.equals
            tests.append(lambda v: v == expected)
        if self.in_ is not None:
            allowed = frozenset(self.in_)
            tests.append(lambda v: v in allowed)
        if self.regex is not None:
            tests.append(self.regex.search)

        if len(tests) == 1:
            only = tests[0]

            def test(value: Any) -> bool:
                return isinstance(value, str) and bool(only(value))

            return test

        def test_all(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            return all(t(value) for t in tests)

        return test_all


class AttributeCondition(BaseModel, frozen=True, extra="forbid"):
    """A condition on one attribute; every operator given must hold.

    ``equals`` and ``in`` compare typed values (``1`` does not equal ``"1"`` or ``true``); ``regex`` searches strings;
    ``gt``/``gte``/``lt``/``lte`` compare numbers, and strings holding a number; ``exists`` tests presence. On an array
    attribute the condition holds when one element satisfies all operators, except that ``equals`` with a list
    compares the whole array. Shorthands: a plain value means ``equals``, a list means ``in``.
    """

    equals: Any = None
    in_: tuple[Scalar, ...] | None = Field(None, alias="in")
    regex: Regex | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    exists: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return value
        if isinstance(value, list):
            return {"in": value}
        return {"equals": value}

    @field_validator("equals", mode="before")
    @classmethod
    def _check_equals(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return tuple(_scalar(item) for item in value)
        return _scalar(value)

    @model_validator(mode="after")
    def _consistent(self) -> AttributeCondition:
        operators = [
            name for name in ("equals", "in_", "regex", "gt", "gte", "lt", "lte") if getattr(self, name) is not None
        ]
        if not operators and self.exists is None:
            raise ValueError("needs at least one of equals, in, regex, gt, gte, lt, lte, exists")
        if self.exists is False and operators:
            raise ValueError("exists: false cannot be combined with other operators")
        return self

    def predicate(self, key: str) -> Callable[[Mapping[str, Any]], bool]:
        """A test of an attribute map."""
        missing = object()
        if self.exists is False:
            return lambda attributes: key not in attributes
        whole = self.equals if isinstance(self.equals, tuple) else None
        element_tests: list[Callable[[Any], bool]] = []
        if self.equals is not None and whole is None:
            expected = self.equals
            element_tests.append(lambda v: _typed_equal(v, expected))
        if self.in_ is not None:
            options = self.in_
            if all(isinstance(o, str) for o in options):
                # Only a string equals a string option (_typed_equal): one set lookup instead of a loop.
                texts = frozenset(options)
                element_tests.append(lambda v: isinstance(v, str) and v in texts)
            else:
                element_tests.append(lambda v: any(_typed_equal(v, o) for o in options))
        if self.regex is not None:
            search = self.regex.search
            element_tests.append(lambda v: isinstance(v, str) and search(v) is not None)
        bounds = [
            (op, limit)
            for op, limit in (("gt", self.gt), ("gte", self.gte), ("lt", self.lt), ("lte", self.lte))
            if limit is not None
        ]
        if bounds:
            element_tests.append(lambda v: _within(v, bounds))

        # One operator (the usual case) is its own test: no generator per value.
        element: Callable[[Any], bool] = (
            element_tests[0] if len(element_tests) == 1 else (lambda value: all(t(value) for t in element_tests))
        )

        def test(attributes: Mapping[str, Any]) -> bool:
            value = attributes.get(key, missing)
            if value is missing or value is None:
                return False
            if whole is not None:
                if not isinstance(value, (tuple, list)) or len(value) != len(whole):
                    return False
                if not all(_typed_equal(a, b) for a, b in zip(value, whole, strict=True)):
                    return False
            if not element_tests:
                return True
            if isinstance(value, (tuple, list)):
                return any(map(element, value))
            return element(value)

        return test


def _typed_equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    return isinstance(actual, str) and actual == expected


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _within(value: Any, bounds: list[tuple[str, float]]) -> bool:
    number = _as_number(value)
    if number is None or math.isnan(number):
        return False
    for op, limit in bounds:
        if op == "gt" and not number > limit:
            return False
        if op == "gte" and not number >= limit:
            return False
        if op == "lt" and not number < limit:
            return False
        if op == "lte" and not number <= limit:
            return False
    return True


StatusName = Literal["UNSET", "OK", "ERROR"]


class Match(BaseModel, frozen=True, extra="forbid"):
    """What a rule matches on one span; every condition given must hold."""

    attributes: dict[str, AttributeCondition] | None = None
    resource: dict[str, AttributeCondition] | None = None
    span_name: StringMatch | None = None
    status: tuple[StatusName, ...] | None = None
    tool_name: StringMatch | None = None
    operation: StringMatch | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [item.upper() if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError(
                "a rule needs at least one condition: attributes, resource, span_name, status, tool_name or operation"
            )
        return self


class Rule(BaseModel, frozen=True, extra="forbid"):
    """One rule: when ``match`` holds for a span, the span's trace is at least ``tier``, for reason ``rule:<name>``."""

    name: StrictStr
    tier: Tier
    reason: StrictStr
    match: Match
    enabled: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "rule name")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("should say why the rule exists (reviewers read it)")
        return value


class TierDetector(BaseModel, frozen=True, extra="forbid"):
    """A detector that only has an on/off switch and a tier."""

    enabled: StrictBool = True
    tier: Tier = "yellow"


_TERM_WORD_RE: Final = re.compile(r"[^\s*]+\*?")


class TopicCategory(BaseModel, frozen=True, extra="forbid"):
    """Terms of one safety-sensitive topic. Case-insensitive, whole words; a trailing ``*`` on a word is a prefix."""

    enabled: StrictBool = True
    tier: Tier = "yellow"
    terms: tuple[StrictStr, ...] = Field(min_length=1)

    @field_validator("terms")
    @classmethod
    def _terms(cls, terms: tuple[str, ...]) -> tuple[str, ...]:
        for term in terms:
            words = term.split()
            if not words:
                raise ValueError("terms should not be empty or blank")
            for word in words:
                if not _TERM_WORD_RE.fullmatch(word):
                    raise ValueError(f"term {term!r}: '*' may only end a word (a prefix), as in 'suicid*'")
        return terms


_DEFAULT_CATEGORIES: Final[dict[str, dict[str, Any]]] = {
    "self_harm": {
        "tier": "red",
        "terms": [
            "suicid*",
            "kill myself",
            "killing myself",
            "end my life",
            "ending my life",
            "take my own life",
            "want to die",
            "better off dead",
            "no reason to live",
            "self-harm*",
            "self harm*",
            "hurt myself",
            "hurting myself",
            "cut myself",
            "cutting myself",
        ],
    },
    "medical": {
        "tier": "yellow",
        "terms": [
            "diagnos*",
            "symptom*",
            "prescription*",
            "prescribe*",
            "dosage*",
            "medication*",
            "side effect*",
            "overdose*",
            "chemotherapy",
            "insulin",
            "antibiotic*",
            "antidepressant*",
            "pregnan*",
            "HIV",
            "cancer",
            "tumor*",
            "tumour*",
            "medical advice",
        ],
    },
    "legal": {
        "tier": "yellow",
        "terms": [
            "lawsuit*",
            "sued",
            "suing",
            "attorney*",
            "lawyer*",
            "legal advice",
            "litigation",
            "subpoena*",
            "court order*",
            "custody",
            "divorce*",
            "breach of contract",
            "liabilit*",
            "indemnif*",
            "criminal charge*",
            "immigration status",
        ],
    },
    "financial": {
        "tier": "yellow",
        "terms": [
            "investment advice",
            "stock tip*",
            "mortgage*",
            "bankrupt*",
            "tax return*",
            "tax advice",
            "credit score*",
            "loan*",
            "debt*",
            "retirement savings",
            "401(k)",
            "wire transfer*",
            "cryptocurrenc*",
        ],
    },
}

_CONTENT_ATTRIBUTES: Final = (
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
)


class SensitiveTopicsConfig(BaseModel, frozen=True, extra="forbid"):
    """Safety-sensitive topics in message content and tool arguments.

    ``categories`` is merged with the defaults: a category named like a default one changes only the keys it gives
    (``self_harm: {tier: yellow}`` keeps the default terms), ``enabled: false`` switches a category off, and a new
    name adds a category (it must give ``terms``).
    """

    enabled: StrictBool = True
    attributes: tuple[StrictStr, ...] = _CONTENT_ATTRIBUTES
    categories: dict[str, TopicCategory] = Field(default_factory=dict, validate_default=True)

    @field_validator("categories", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return _merged_categories(value)

    @field_validator("categories")
    @classmethod
    def _names(cls, value: dict[str, TopicCategory]) -> dict[str, TopicCategory]:
        for name in value:
            _check_name(name, "category name")
        return value


def _merged_categories(given: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {name: dict(entry) for name, entry in _DEFAULT_CATEGORIES.items()}
    for name, entry in given.items():
        if name in merged and isinstance(entry, Mapping):
            merged[name] = {**merged[name], **entry}
        else:
            merged[name] = entry
    return merged


class AgentLoopConfig(BaseModel, frozen=True, extra="forbid"):
    """The same tool with the same arguments ``min_repeats`` or more times in one trace."""

    enabled: StrictBool = True
    tier: Tier = "red"
    min_repeats: StrictInt = Field(3, ge=2)
    count_without_arguments: StrictBool = False
    """Count tool spans that carry no recorded arguments (content capture off) as calls with equal arguments."""
    include_llm_tool_calls: StrictBool = True
    """Also count the tool calls LLM responses asked for (``tool_call`` parts of ``gen_ai.output.messages``)."""


class LowConfidenceConfig(BaseModel, frozen=True, extra="forbid"):
    """The mean of ``spanguard.response.logprob.mean`` over the trace's spans that have it, below ``threshold``."""

    enabled: StrictBool = True
    tier: Tier = "yellow"
    threshold: Number = -1.0
    min_spans: StrictInt = Field(1, ge=1)


class LongSessionConfig(BaseModel, frozen=True, extra="forbid"):
    """More than ``max_llm_calls`` LLM calls, or longer than ``max_duration_s`` seconds, in one trace."""

    enabled: StrictBool = True
    tier: Tier = "yellow"
    max_llm_calls: StrictInt | None = Field(20, ge=1)
    max_duration_s: Number | None = 600.0
    llm_operations: tuple[StrictStr, ...] = (
        semconv.GEN_AI_OPERATION_CHAT,
        semconv.GEN_AI_OPERATION_TEXT_COMPLETION,
        semconv.GEN_AI_OPERATION_GENERATE_CONTENT,
    )

    @field_validator("max_duration_s")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("should be greater than 0 (or null to switch the duration check off)")
        return value


class RepeatedToolCallAcrossTurnsConfig(TierDetector, frozen=True, extra="forbid"):
    """The same tool with the same arguments in ``min_traces`` or more traces (turns) of one session."""

    min_traces: StrictInt = Field(3, ge=2)


class RepeatedUserQuestionConfig(TierDetector, frozen=True, extra="forbid"):
    """The user asks again, in a later trace of the session, a question an earlier trace already answered."""

    similarity: Number = 0.9
    """Least token-set (Jaccard) similarity of two normalised questions for them to count as the same question."""

    @field_validator("similarity")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"should be greater than 0 and at most 1, got {value!r}")
        return value


class TurnBudgetConfig(TierDetector, frozen=True, extra="forbid"):
    """A session of more than ``max_turns`` user turns (traces)."""

    max_turns: StrictInt = Field(20, ge=1)


class SessionMemoryConfig(BaseModel, frozen=True, extra="forbid"):
    """Bounds of what the cross-turn detectors remember per session (digests only, in this process)."""

    max_sessions: StrictInt = Field(10_000, ge=1)
    """Sessions remembered at most; the least recently seen is forgotten first."""
    ttl_s: Number = 3600.0
    """Seconds after its last trace at which a session is forgotten (its next trace starts a new count)."""
    max_entries_per_session: StrictInt = Field(1_000, ge=1)
    """Tool-call digests, question digests and trace ids kept per session, each; the oldest is forgotten first."""

    @field_validator("ttl_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"should be greater than 0, got {value!r}")
        return value


class ApprovalGateConfig(BaseModel, frozen=True, extra="forbid"):
    """Approval gates always make their trace red; this detector cannot be switched off or lowered."""

    enabled: Any = True

    @field_validator("enabled", mode="before")
    @classmethod
    def _always(cls, value: Any) -> Any:
        if value is not True:
            raise ValueError(
                "the approval_gate detector cannot be switched off: a trace that holds an approval gate is always red"
            )
        return value


class DetectorsConfig(BaseModel, frozen=True, extra="forbid"):
    """The built-in detectors; each is on by default."""

    error_status: TierDetector = TierDetector()
    unpinned_model: TierDetector = TierDetector()
    sensitive_topics: SensitiveTopicsConfig = SensitiveTopicsConfig()
    agent_loop: AgentLoopConfig = AgentLoopConfig()
    low_confidence: LowConfidenceConfig = LowConfidenceConfig()
    long_session: LongSessionConfig = LongSessionConfig()
    approval_gate: ApprovalGateConfig = ApprovalGateConfig()
    repeated_tool_call_across_turns: RepeatedToolCallAcrossTurnsConfig = RepeatedToolCallAcrossTurnsConfig()
    repeated_user_question: RepeatedUserQuestionConfig = RepeatedUserQuestionConfig()
    turn_budget: TurnBudgetConfig = TurnBudgetConfig()
    session_memory: SessionMemoryConfig = SessionMemoryConfig()
    """Not a detector: the bounds of the memory the three cross-turn detectors above share."""


class RiskConfig(BaseModel, frozen=True, extra="forbid"):
    """Rules and detectors; build it with :func:`load_risk_config`."""

    rules: tuple[Rule, ...] = ()
    detectors: DetectorsConfig = DetectorsConfig()

    def explain(self, reason: str) -> str:
        """The human text for a reason code (a rule's ``reason``, a detector's meaning); the code itself if unknown."""
        if reason.startswith(REASON_RULE_PREFIX):
            name = reason[len(REASON_RULE_PREFIX) :]
            for rule in self.rules:
                if rule.name == name:
                    return rule.reason
        elif reason.startswith(REASON_TOPIC_PREFIX):
            return f"Safety-sensitive topic: {reason[len(REASON_TOPIC_PREFIX) :].replace('_', ' ')}."
        elif reason in DETECTOR_REASONS:
            return DETECTOR_REASONS[reason]
        return reason


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _describe_error(error: Any, model: type[BaseModel], relative: KeyPath) -> str | None:
    """The risk configuration's wording of a pydantic error (see :data:`spanguard.yamlconfig.Describe`)."""
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden" and relative:
        parent = model_at(model, relative[:-1])
        allowed = ", ".join(sorted(field_keys(parent))) if parent is not None else ""
        what = "detector" if parent is DetectorsConfig else "key"
        return f"unknown {what} {relative[-1]!r}" + (f" (expected one of: {allowed})" if allowed else "")
    if kind == "missing":
        return "required, but missing"
    if kind == "literal_error" and relative and relative[-1] == "tier":
        return f"unknown tier {_short(value)} (expected green, yellow or red)"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"should be a mapping, got {_short(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"should be a list, got {_short(value)}"
    if kind == "string_type" and isinstance(value, bool):
        return f"should be a valid string, got {value} (YAML reads true and false as booleans: quote it)"
    message = str(error["msg"])
    message = message.replace("Input should be", "should be").replace("Value should have", "should have")
    return f"{message}, got {_short(value)}"


def duplicate_rule_names(rules: Sequence[Rule]) -> list[tuple[KeyPath, str]]:
    """``(path, message)`` for each rule whose name an earlier rule already has."""
    seen: dict[str, int] = {}
    problems: list[tuple[KeyPath, str]] = []
    for index, rule in enumerate(rules):
        if rule.name in seen:
            message = f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])"
            problems.append((("rules", index, "name"), message))
        else:
            seen[rule.name] = index
    return problems


def _check(config: RiskConfig) -> list[tuple[KeyPath, str]]:
    return duplicate_rule_names(config.rules)


def _base(prefix: str) -> KeyPath:
    return tuple(prefix.split(".")) if prefix else ()


_LOADER: Final[dict[str, Any]] = {"describe": _describe_error, "check": _check}


def load_risk_config_text(text: str, *, source: str = "<string>", prefix: str = "") -> RiskConfig:
    """Parse and check a risk configuration given as YAML text; errors name ``source`` with line and column."""
    return load_text(text, RiskConfig, source=source, base=_base(prefix), **_LOADER)


@lru_cache(maxsize=1)
def _default_config() -> RiskConfig:
    resource = resources.files("spanguard.processors.risk").joinpath(DEFAULT_CONFIG_RESOURCE)
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"spanguard/processors/risk/{DEFAULT_CONFIG_RESOURCE}: the packaged default risk configuration is missing "
            f"({error}); is it listed in the package data?"
        ) from None
    return load_risk_config_text(text, source=f"spanguard/processors/risk/{DEFAULT_CONFIG_RESOURCE}")


def load_risk_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | RiskConfig | None = None, *, prefix: str = ""
) -> RiskConfig:
    """Load a risk configuration.

    ``source`` is a path to a YAML file (``str`` or path-like; a ``str`` is always a path, use
    :func:`load_risk_config_text` for YAML text), an already parsed mapping (a section of a larger config, such as the
    collector's), a :class:`RiskConfig` (returned as it is) or ``None`` for the packaged default
    (``default_rules.yaml``). ``prefix`` is put before every path in error messages (``processors.risk``).

    Raises ``spanguard.yamlconfig.ConfigError`` for unreadable files, bad YAML (with file:line:column) and every
    refused value (with the YAML path, and the file, line and column when there is a file).
    """
    if source is None:
        return _default_config()
    if isinstance(source, RiskConfig):
        return source
    if isinstance(source, Mapping):
        return load_data(source, RiskConfig, base=_base(prefix), **_LOADER)
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if "\n" in name and not os.path.exists(name):
            raise ConfigError(
                f"{_short(name)}: cannot read the risk configuration (YAML text? use load_risk_config_text)"
            )
        return load_file(name, RiskConfig, what="risk configuration", base=_base(prefix), **_LOADER)
    raise TypeError(f"load_risk_config() takes a path, a mapping, a RiskConfig or None, not {type(source).__name__}")


# --------------------------------------------------------------------------------------------------------------------
# Classification

_TOOL_NAME: Final = semconv.GEN_AI_TOOL_NAME
_OPERATION: Final = semconv.GEN_AI_OPERATION_NAME
_TOOL_ARGUMENTS: Final = semconv.GEN_AI_TOOL_CALL_ARGUMENTS
_OUTPUT_MESSAGES: Final = semconv.GEN_AI_OUTPUT_MESSAGES
_INPUT_MESSAGES: Final = semconv.GEN_AI_INPUT_MESSAGES
_CONVERSATION_ID: Final = semconv.GEN_AI_CONVERSATION_ID
_PINNED: Final = semconv.SPANGUARD_MODEL_PINNED
_GATE: Final = semconv.SPANGUARD_APPROVAL_GATE
_RISK_TIER: Final = semconv.SPANGUARD_RISK_TIER
_RISK_REASONS: Final = semconv.SPANGUARD_RISK_REASONS
_EXECUTE_TOOL: Final = semconv.GEN_AI_OPERATION_EXECUTE_TOOL

_STRUCTURAL_KEYS: Final = frozenset(
    {"role", "type", "id", "name", "finish_reason", "mime_type", "modality", "uri", "call_id", "tool_call_id"}
)
"""Keys of message and part objects whose values are identifiers, not content."""
_ESCAPED_IN_JSON: Final = re.compile(r'[^\x20-\x7e]|["\\/]')
_PARSE_FAILED: Final = object()
_MISSING: Final = object()


def _term_pattern(term: str) -> str:
    """A term's pattern: its words separated by any whitespace, a word ending in ``*`` followed by any word chars."""
    words = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in term.split()]
    return r"\s+".join(words)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _content_value(span: SpanView, key: str) -> Any:
    """A content attribute of the span, or of its first event that has it (content recorded as an event)."""
    value = span.attributes.get(key)
    if value is None:
        for event in span.events:
            value = event.attributes.get(key)
            if value is not None:
                break
    return value


def _parsed(text: str, cache: dict[str, Any]) -> Any:
    result = cache.get(text, _MISSING)
    if result is _MISSING:
        try:
            result = json.loads(text)
        except ValueError:
            result = _PARSE_FAILED
        cache[text] = result
    return result


def _strings(value: Any, out: list[str]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            structural = "type" in item or "role" in item
            for key, child in item.items():
                if not (structural and key in _STRUCTURAL_KEYS):
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


# One encoder for every call: ``json.dumps`` with options builds a new one each time, which costs more than encoding
# a tool call's few arguments.
_CANONICAL_JSON: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def _normalized_arguments(arguments: Any, cache: dict[str, Any]) -> str:
    if isinstance(arguments, str):
        parsed = _parsed(arguments, cache)
        if parsed is _PARSE_FAILED:
            return arguments.strip()
        arguments = parsed
    return _CANONICAL_JSON(arguments)


class _Topics:
    """The compiled sensitive-topic scanner.

    A cheap screen first: a term can only occur where each of its words (without a trailing ``*``) occurs as a plain
    substring of the lower-cased raw value, JSON escapes and all (escapes only touch characters that screening words
    do not contain; when a term does contain one, values with escapes always pass). Only values that pass are parsed,
    and only the categories that passed are searched with their exact, whole-word pattern (one alternation per
    category, on lower-cased text). So clean content costs a ``lower()`` and a few dozen substring tests, no parsing.
    """

    def __init__(self, config: SensitiveTopicsConfig) -> None:
        self.attributes = config.attributes
        self.categories: list[tuple[str, int, re.Pattern[str]]] = []
        screen: dict[tuple[str, ...], set[int]] = {}
        escaped = False
        for name, category in config.categories.items():
            if not category.enabled:
                continue
            index = len(self.categories)
            exact: list[str] = []
            for term in category.terms:
                lowered = term.lower()
                exact.append(_term_pattern(lowered))
                # Every word must occur for the term to; the longest is the least likely to, so it is tried first.
                words = tuple(sorted({w.rstrip("*") for w in lowered.split()}, key=lambda w: (-len(w), w)))
                screen.setdefault(words, set()).add(index)
                escaped = escaped or _ESCAPED_IN_JSON.search(lowered) is not None
            pattern = re.compile(r"(?<!\w)(?:" + "|".join(exact) + r")(?!\w)")
            self.categories.append((REASON_TOPIC_PREFIX + name, _RANK[category.tier], pattern))
        # Single words first (one substring test each); a word that contains another screened word adds nothing.
        singles = {words[0] for words in screen if len(words) == 1}
        self.screen: list[tuple[tuple[str, ...], frozenset[int]]] = []
        for words, indexes in sorted(screen.items(), key=lambda item: (len(item[0]), item[0])):
            covered = {
                other for other in singles if other != words[0] and other in words[0] and screen[(other,)] >= indexes
            }
            if len(words) == 1 and covered:
                continue
            self.screen.append((words, frozenset(indexes)))
        self.escaped = escaped
        self.everything = frozenset(range(len(self.categories)))
        # In ASCII text, one RE2 pass finds which terms' first (longest) words occur at the start of a word, instead
        # of a substring test per word; only those terms' other words are then looked for. Every word of a match
        # starts a word, in the decoded text: in raw JSON that is after a non-word character, a JSON escape (\n,
        # \u00a0) or at the start. So "finish_reason" does not wake up "no reason to live". A word that is not ASCII
        # is never in ASCII text.
        words_found = re2.Set.SearchSet()
        self.word_index: list[str] = []
        for word in sorted({words[0] for words, _ in self.screen if words[0].isascii()}):
            words_found.Add(f"(?i:(?:^|[^a-z0-9_]|\\\\[a-z]|\\\\u[0-9a-f]{{4}}){re2.escape(word)})")
            self.word_index.append(word)
        words_found.Compile()
        self.words_found = words_found
        # Terms by their first word, each with the other words it needs.
        self.terms_by_first: dict[str, list[tuple[tuple[str, ...], frozenset[int]]]] = {}
        for words, needed in self.screen:
            self.terms_by_first.setdefault(words[0], []).append((words[1:], needed))

    def _screen(self, raw: str) -> frozenset[int] | set[int]:
        if self.escaped and "\\" in raw:
            return self.everything
        if raw.isascii():
            found_at = self.words_found.Match(raw.encode("ascii"))
            if not found_at:
                return _NONE
            lower = raw.lower()
            ascii_passed: set[int] = set()
            for i in found_at:
                for rest, indexes in self.terms_by_first[self.word_index[i]]:
                    if all(w in lower for w in rest):
                        ascii_passed |= indexes
            return ascii_passed
        lowered = raw.lower()
        passed: set[int] = set()
        for words, indexes in self.screen:
            if words[0] in lowered and not indexes <= passed and all(w in lowered for w in words[1:]):
                passed |= indexes
        return passed

    def scan(self, span: SpanView, cache: dict[str, Any], hits: list[tuple[int, str]]) -> None:
        texts: list[str] = []
        candidates: set[int] = set()
        for key in self.attributes:
            value = _content_value(span, key)
            if value is None:
                continue
            for raw in value if isinstance(value, (tuple, list)) else (value,):
                if not isinstance(raw, str):
                    continue
                passed = self._screen(raw)
                if not passed:
                    continue
                candidates.update(passed)
                parsed = _parsed(raw, cache)
                if parsed is _PARSE_FAILED:
                    texts.append(raw)
                else:
                    _strings(parsed, texts)
        if not texts:
            return
        joined = "\x00".join(texts).lower()
        for index in sorted(candidates):
            reason, rank, pattern = self.categories[index]
            if pattern.search(joined):
                hits.append((rank, reason))


_NONE: Final[frozenset[int]] = frozenset()


class _TraceState:
    """What the trace-level detectors accumulate while the spans go by."""

    __slots__ = (
        "end",
        "inputs",
        "llm_calls",
        "llm_tool_calls",
        "logprob_count",
        "logprob_sum",
        "outputs",
        "sessions",
        "start",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.tool_calls: Counter[tuple[str, str | None]] = Counter()
        self.llm_tool_calls: Counter[tuple[str, str]] = Counter()
        self.logprob_sum = 0.0
        self.logprob_count = 0
        self.llm_calls = 0
        self.start: int | None = None
        self.end: int | None = None
        # For the cross-turn detectors: the trace's sessions and its raw input and output messages.
        self.sessions: set[str] = set()
        self.inputs: list[str] = []
        self.outputs: list[str] = []


class RiskClassifier:
    """Classifies traces by risk with a :class:`RiskConfig` (default: the packaged ``default_rules.yaml``).

    ``config`` may also be anything :func:`load_risk_config` takes (a path or a parsed mapping).

    Everything is compiled in the constructor. The only state kept between calls is the cross-turn detectors'
    session memory (digests, bounded, locked; ``clock`` times its TTL), so one classifier may serve several threads.
    """

    def __init__(
        self,
        config: RiskConfig | str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = load_risk_config(config)
        detectors = self.config.detectors
        self._rules: list[tuple[int, str, Callable[[SpanView], bool]]] = [
            (_RANK[rule.tier], REASON_RULE_PREFIX + rule.name, _compile_rule(rule))
            for rule in self.config.rules
            if rule.enabled
        ]
        self._error = _RANK[detectors.error_status.tier] if detectors.error_status.enabled else None
        self._unpinned = _RANK[detectors.unpinned_model.tier] if detectors.unpinned_model.enabled else None
        topics = detectors.sensitive_topics
        self._topics = (
            _Topics(topics) if topics.enabled and any(c.enabled for c in topics.categories.values()) else None
        )
        self._loop = detectors.agent_loop if detectors.agent_loop.enabled else None
        self._low = detectors.low_confidence if detectors.low_confidence.enabled else None
        self._long = detectors.long_session if detectors.long_session.enabled else None
        self._llm_operations = frozenset(self._long.llm_operations) if self._long else frozenset()
        self._repeated_call = (
            detectors.repeated_tool_call_across_turns if detectors.repeated_tool_call_across_turns.enabled else None
        )
        self._repeated_question = detectors.repeated_user_question if detectors.repeated_user_question.enabled else None
        self._turn_budget = detectors.turn_budget if detectors.turn_budget.enabled else None
        memory = detectors.session_memory
        self.session_memory: SessionMemory | None = (
            SessionMemory(
                max_sessions=memory.max_sessions,
                ttl_s=memory.ttl_s,
                max_entries_per_session=memory.max_entries_per_session,
                clock=clock,
            )
            if self._repeated_call or self._repeated_question or self._turn_budget
            else None
        )
        """What the cross-turn detectors remember of each session (``None`` when they are all off)."""

    # -- per span

    def _span_hits(self, span: SpanView, cache: dict[str, Any], hits: list[tuple[int, str]]) -> None:
        attributes = span.attributes
        for rank, reason, matches in self._rules:
            if matches(span):
                hits.append((rank, reason))
        if self._error is not None and span.status_code == "ERROR":
            hits.append((self._error, "error_status"))
        if self._unpinned is not None and _falsy(attributes.get(_PINNED)):
            hits.append((self._unpinned, "unpinned_model"))
        if _truthy(attributes.get(_GATE)):
            hits.append((_RANK[semconv.RiskTier.RED], "approval_gate"))
        if self._topics is not None:
            self._topics.scan(span, cache, hits)

    def classify_span(self, span: SpanView) -> TraceRisk:
        """One span's risk from the rules and the per-span detectors (not agent loops, confidence or session length)."""
        hits: list[tuple[int, str]] = []
        self._span_hits(span, {}, hits)
        return _risk(hits)

    # -- per trace

    def _observe(self, span: SpanView, state: _TraceState, cache: dict[str, Any]) -> None:
        attributes = span.attributes
        operation = attributes.get(_OPERATION)
        loop = self._loop
        if loop is not None or self._repeated_call is not None:
            tool = attributes.get(_TOOL_NAME)
            if isinstance(tool, str) and operation in (None, _EXECUTE_TOOL):
                arguments = _content_value(span, _TOOL_ARGUMENTS)
                if arguments is not None:
                    state.tool_calls[(tool, _normalized_arguments(arguments, cache))] += 1
                elif loop is not None and loop.count_without_arguments:
                    state.tool_calls[(tool, None)] += 1
        if loop is not None:
            if loop.include_llm_tool_calls:
                output = _content_value(span, _OUTPUT_MESSAGES)
                if isinstance(output, str) and "tool_call" in output:
                    for name, arguments in _requested_tool_calls(_parsed(output, cache)):
                        state.llm_tool_calls[(name, _normalized_arguments(arguments, cache))] += 1
        if self.session_memory is not None:
            self._observe_turn(span, state, cache)
        if self._low is not None:
            logprob = attributes.get(SPANGUARD_RESPONSE_LOGPROB_MEAN)
            if isinstance(logprob, (int, float)) and not isinstance(logprob, bool) and math.isfinite(logprob):
                state.logprob_sum += logprob
                state.logprob_count += 1
        if self._long is not None:
            if operation in self._llm_operations:
                state.llm_calls += 1
            start, end = span.start_time_unix_nano, span.end_time_unix_nano
            if start > 0:
                state.start = start if state.start is None else min(state.start, start)
            if end > 0:
                state.end = end if state.end is None else max(state.end, end)

    def _observe_turn(self, span: SpanView, state: _TraceState, cache: dict[str, Any]) -> None:
        session = span.attributes.get(_CONVERSATION_ID)
        if isinstance(session, str) and session:
            state.sessions.add(session)
        if self._repeated_question is None:
            return
        # Kept raw and parsed only if the trace turns out to belong to a session: other traces pay nothing.
        inputs = _content_value(span, _INPUT_MESSAGES)
        if isinstance(inputs, str):
            state.inputs.append(inputs)
        outputs = _content_value(span, _OUTPUT_MESSAGES)
        if isinstance(outputs, str):
            state.outputs.append(outputs)

    def _session_hits(
        self, trace_id: str, state: _TraceState, cache: dict[str, Any], hits: list[tuple[int, str]]
    ) -> None:
        memory = self.session_memory
        if memory is None or not state.sessions:
            return
        calls = self._repeated_call
        question = self._repeated_question
        budget = self._turn_budget
        digests = [tool_call_digest(tool, arguments) for tool, arguments in state.tool_calls if arguments is not None]
        asked = {normalize_question(_last_user_text(_parsed(raw, cache))) for raw in state.inputs}
        questions = [question_digest(text) for text in asked if text]
        answered = any(_has_answer(_parsed(raw, cache)) for raw in state.outputs)
        for session in sorted(state.sessions):
            found = memory.record(
                session,
                trace_id,
                tool_calls=digests if calls is not None else (),
                questions=questions,
                answered=answered,
                similarity=question.similarity if question is not None else 1.0,
                tool_call_cap=calls.min_traces if calls is not None else 2,
            )
            if calls is not None and found.max_tool_call_traces >= calls.min_traces:
                hits.append((_RANK[calls.tier], "repeated_tool_call_across_turns"))
            if question is not None and found.repeated_question:
                hits.append((_RANK[question.tier], "repeated_user_question"))
            if budget is not None and found.turns > budget.max_turns:
                hits.append((_RANK[budget.tier], "turn_budget"))

    def _trace_hits(self, state: _TraceState, hits: list[tuple[int, str]]) -> None:
        loop = self._loop
        if loop is not None:
            counts = list(state.tool_calls.values()) + list(state.llm_tool_calls.values())
            if counts and max(counts) >= loop.min_repeats:
                hits.append((_RANK[loop.tier], "agent_loop"))
        low = self._low
        if low is not None and state.logprob_count >= low.min_spans:
            if state.logprob_sum / state.logprob_count < low.threshold:
                hits.append((_RANK[low.tier], "low_confidence"))
        long = self._long
        if long is not None:
            too_many = long.max_llm_calls is not None and state.llm_calls > long.max_llm_calls
            too_long = (
                long.max_duration_s is not None
                and state.start is not None
                and state.end is not None
                and (state.end - state.start) > long.max_duration_s * 1e9
            )
            if too_many or too_long:
                hits.append((_RANK[long.tier], "long_session"))

    def classify(self, spans: Sequence[SpanView]) -> TraceRisk:
        """The risk of one trace: the highest tier of its spans and of the trace-level detectors, with every reason."""
        hits: list[tuple[int, str]] = []
        cache: dict[str, Any] = {}
        state = _TraceState()
        for span in spans:
            self._span_hits(span, cache, hits)
            self._observe(span, state, cache)
        self._trace_hits(state, hits)
        if spans:
            self._session_hits(spans[0].trace_id, state, cache, hits)
        return _risk(hits)

    def annotate(self, spans: Sequence[SpanView], risk: TraceRisk) -> list[SpanView]:
        """Copies of ``spans`` with ``spanguard.risk.tier`` and ``spanguard.risk.reasons`` set (replacing old values).

        Only the attribute map is new; events, resource and the adapter's ``source`` are shared with the input spans,
        which are never changed.
        """
        tier = str(risk.tier)
        reasons = tuple(risk.reasons)
        return [with_attributes(span, {**span.attributes, _RISK_TIER: tier, _RISK_REASONS: reasons}) for span in spans]

    def shutdown(self) -> None:
        """Nothing to release (the classifier holds no threads, files or connections); safe to call again, or unused."""


def _risk(hits: list[tuple[int, str]]) -> TraceRisk:
    if not hits:
        return TraceRisk("green", ())
    rank = max(rank for rank, _ in hits)
    return TraceRisk(TIERS[rank], tuple(reason for _, reason in hits))


def _requested_tool_calls(messages: Any) -> Iterable[tuple[str, Any]]:
    """``(name, arguments)`` of every ``tool_call`` part in output messages (conventions' parts format)."""
    if not isinstance(messages, list):
        return
    for message in messages:
        parts = message.get("parts") if isinstance(message, dict) else None
        if not isinstance(parts, list):
            continue
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "tool_call" and isinstance(part.get("name"), str):
                yield part["name"], part.get("arguments")


def _message_text(message: Mapping[str, Any]) -> str:
    """The text of one message: its ``text`` parts (conventions' parts format), or a plain string ``content``."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = message.get("parts")
    if not isinstance(parts, list):
        return ""
    return "\n".join(
        part["content"]
        for part in parts
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str)
    )


def _last_user_text(messages: Any) -> str:
    """The text of the last ``user`` message of input messages: this turn's question (earlier ones are history)."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _has_answer(messages: Any) -> bool:
    """Whether output messages hold text from the model (an answer, not only tool calls)."""
    if not isinstance(messages, list):
        return False
    return any(
        isinstance(message, dict) and message.get("role", "assistant") == "assistant" and _message_text(message).strip()
        for message in messages
    )


def _on_attributes(predicate: Callable[[Any], bool]) -> Callable[[SpanView], bool]:
    return lambda span: predicate(span.attributes)


def _on_resource(predicate: Callable[[Any], bool]) -> Callable[[SpanView], bool]:
    return lambda span: predicate(span.resource)


def _on_tool_names(predicate: Callable[[Any], bool]) -> Callable[[SpanView], bool]:
    """A ``tool_name`` test: the span's own tool, or any tool its model output asks to call.

    Instrumentations of model clients see the call the model requests, not the app running it: with no tool span,
    the request is the only sign that a refund is about to happen.
    """

    def test(span: SpanView) -> bool:
        if predicate(span.attributes.get(_TOOL_NAME)):
            return True
        output = _content_value(span, _OUTPUT_MESSAGES)
        if not isinstance(output, str) or "tool_call" not in output:
            return False
        return any(predicate(name) for name, _ in _requested_tool_calls(_parsed(output, {})))

    return test


def _compile_rule(rule: Rule) -> Callable[[SpanView], bool]:
    """One test per condition, cheapest first; the rule holds when every test does."""
    match = rule.match
    tests: list[Callable[[SpanView], bool]] = []
    if match.status is not None:
        statuses = frozenset(match.status)
        tests.append(lambda span: span.status_code in statuses)
    if match.operation is not None:
        operation = match.operation.predicate()
        tests.append(lambda span: operation(span.attributes.get(_OPERATION)))
    if match.tool_name is not None:
        tests.append(_on_tool_names(match.tool_name.predicate()))
    if match.span_name is not None:
        name = match.span_name.predicate()
        tests.append(lambda span: name(span.name))
    for key, condition in (match.attributes or {}).items():
        tests.append(_on_attributes(condition.predicate(key)))
    for key, condition in (match.resource or {}).items():
        tests.append(_on_resource(condition.predicate(key)))

    if len(tests) == 1:
        return tests[0]

    def matches(span: SpanView) -> bool:
        for test in tests:
            if not test(span):
                return False
        return True

    return matches


__all__ = [
    "DETECTOR_REASONS",
    "TIERS",
    "AttributeCondition",
    "DetectorsConfig",
    "Match",
    "RiskClassifier",
    "RiskConfig",
    "Rule",
    "StringMatch",
    "Tier",
    "TraceRisk",
    "highest_tier",
    "load_risk_config",
    "load_risk_config_text",
    "tier_rank",
]

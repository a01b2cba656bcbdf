"""The scorers of ``spanguard gate``: what one case's target output is checked against, and how a case's scores add
up to pass, fail or pending human.

:func:`for_case` gives a case's scorers, cheapest first, the LLM judge last; :func:`aggregate` turns their scores into
a :class:`CaseVerdict`. Behaviour: docs/datasets.md ("Scorers and the judge").
"""

from __future__ import annotations

import json
import math
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import re2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spanguard.instrumentation.content import parse_arguments
from spanguard.semconv import ReviewOutcome
from spanguard.yamlconfig import format_path

from .dataset import Assertion, EvalCase
from .judge import JudgeConfig, JudgeVerdict, judge_for

__all__ = [
    "ASSERTION_TYPES",
    "CaseResult",
    "CaseVerdict",
    "DefaultsConfig",
    "JudgeScorer",
    "Score",
    "Scorer",
    "ScorerError",
    "ScorersConfig",
    "aggregate",
    "for_case",
    "normalise",
    "similarity",
    "similarity_method",
]

Output = Any
"""A target's output as one assistant message (a :class:`~.dataset.Message` or its dict: ``role``, ``content``,
``tool_calls`` in the OpenAI chat format)."""


# --------------------------------------------------------------------------------------------------------------------
# Configuration


class DefaultsConfig(BaseModel):
    """The thresholds of the default scorers of a case without assertions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    similarity_threshold: float = Field(0.8, ge=0, le=1)
    """A corrected case passes when the output's similarity to the correction reaches this (or matches it)."""
    similarity_floor: float = Field(0.5, ge=0, le=1)
    """With a judge: below this similarity the case fails; between it and the threshold the judge decides."""
    reproduce_threshold: float = Field(0.95, ge=0, le=1)
    """An output this similar to a rejected original (and closer to it than to the correction) reproduces it."""
    drift_threshold: float = Field(0.5, ge=0, le=1)
    """An approved case fails when the output's similarity to the approved output falls below this."""

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> DefaultsConfig:
        if self.similarity_floor > self.similarity_threshold:
            raise ValueError("similarity_floor must not be above similarity_threshold")
        return self


class ScorersConfig(BaseModel):
    """How cases are scored (``scorers`` in the gate's config); every key has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    case_threshold: float = Field(0.0, ge=0, le=1)
    """The weighted score a case must reach when the case sets no ``threshold`` (its scorers' own thresholds apply
    in any case)."""
    weights: dict[str, float] = Field(default_factory=dict)
    """Weights by scorer type (``contains``, ``matches-correction``, ...) for scorers that set none."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Thresholds by scorer type for scorers that set none."""
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    judge: JudgeConfig | None = None
    """The LLM judge; None: no case is judged (a ``judge`` assertion is then refused)."""

    @model_validator(mode="after")
    def _known_types(self) -> ScorersConfig:
        for key, table in (("weights", self.weights), ("thresholds", self.thresholds)):
            for name, value in table.items():
                if name not in ASSERTION_TYPES and name not in _DEFAULT_TYPES:
                    raise ValueError(f"{key}: unknown scorer type {name!r}")
                if not 0 <= value <= (math.inf if key == "weights" else 1) or math.isnan(value):
                    raise ValueError(f"{key}.{name}: must be between 0 and {'inf' if key == 'weights' else 1}")
        return self

    def __hash__(self) -> int:  # the dicts make the generated hash fail; a config is compared by identity
        return id(self)


class ScorerError(ValueError):
    """A case's assertions that cannot be used: which case, which field (``assertions[0].value``) and why."""

    def __init__(self, case_id: str, path: Sequence[str | int], message: str) -> None:
        self.case_id = case_id
        self.path = format_path(path)
        self.message = message
        super().__init__(f"case {case_id}: {self.path}: {message}" if self.path else f"case {case_id}: {message}")


# --------------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Score:
    """One scorer's result: a score in [0, 1], passed (None: it cannot settle the case), and why."""

    score: float
    passed: bool | None
    reason: str
    skipped: bool = False
    """The scorer was not needed (the judge, when the checks settled the case): left out of the case's score."""
    reasoning: str = ""
    """The judge's own words (free text: it may quote the case, so it goes to a review item, never to a log)."""


@dataclass(frozen=True)
class CaseVerdict:
    """A case's result: the weighted score of its settled scorers, passed (None: pending human), and the reasons."""

    score: float
    passed: bool | None
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The reasons as one line."""
        return "; ".join(self.reasons)


CaseResult = CaseVerdict
"""The runner's name for a case's verdict."""


class Scorer(ABC):
    """Scores one target output for one case."""

    kind: str = ""
    """The scorer's type, as assertions and the config's ``weights``/``thresholds`` name it."""
    deterministic: bool = True
    """False for the judge: ``--trials`` runs it several times."""
    uses_similarity: bool = False

    def __init__(self, name: str, weight: float, threshold: float) -> None:
        self.name = name
        self.weight = weight
        self.threshold = threshold

    @abstractmethod
    def score(self, case: EvalCase, output: Output) -> Score:
        """This scorer's :class:`Score` for ``output`` on ``case``."""

    def _graded(self, value: float, reason: str) -> Score:
        value = min(1.0, max(0.0, value))
        return Score(value, value >= self.threshold, reason)

    @property
    def cache_key(self) -> str:
        """A string naming the scorer's whole setting: a cached score is reused only under the same one."""
        settings = {k: v for k, v in vars(self).items() if k not in ("name", "weight")}
        if self.uses_similarity:  # a score measured with WordLlama is not one measured on tokens
            settings["similarity"] = similarity_method()
        return f"{self.kind}:" + json.dumps(settings, sort_keys=True, default=_describe)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} weight={self.weight:g} threshold={self.threshold:g}>"


def _describe(value: Any) -> Any:
    """A JSON-able stand-in for a setting in a cache key (a compiled pattern by its pattern, a scorer by its key)."""
    if isinstance(value, Scorer):
        return value.cache_key
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude={"api_key"})
    if hasattr(value, "pattern"):
        return value.pattern
    if hasattr(value, "schema"):
        return value.schema
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


# --------------------------------------------------------------------------------------------------------------------
# Text, normalisation and similarity


def normalise(text: str) -> str:
    """``text`` compared loosely: Unicode NFKC, case folded, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def _tool_calls(message: Output | None) -> list[tuple[str, Any]]:
    """``(name, parsed arguments)`` per tool call of ``message``, in the OpenAI format or as ``{name, arguments}``."""
    calls: list[tuple[str, Any]] = []
    for call in (_as_dict(message) or {}).get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if not isinstance(function, Mapping):
            function = call
        name = function.get("name")
        if isinstance(name, str):
            calls.append((name, parse_arguments(function.get("arguments", {}))))
    return calls


def _content(message: Output | None) -> str:
    content = (_as_dict(message) or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: their text, in order
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p)
    return ""


def _text(message: Output | None) -> str:
    """A message as one text: its content, then each tool call as ``name {arguments}`` (sorted keys)."""
    parts = [_content(message)]
    for name, arguments in _tool_calls(message):
        parts.append(f"{name} {json.dumps(arguments, sort_keys=True, ensure_ascii=False)}")
    return "\n".join(part for part in parts if part)


def _as_dict(message: Any) -> dict[str, Any] | None:
    if message is None:
        return None
    if isinstance(message, BaseModel):
        return message.model_dump(exclude_none=True)
    if isinstance(message, str):  # a bare answer text
        return {"role": "assistant", "content": message}
    return dict(message)


class _Embedder:
    """WordLlama, loaded once from the weights its wheel ships (never downloaded); None when it is not installed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._model: Any = None

    def get(self) -> Any:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                try:
                    import wordllama
                    from wordllama import WordLlama

                    # The wheel keeps its files in weights/ and tokenizers/: the layout of a cache dir, not of the
                    # "project root" it looks in first (tokenizer/), so point the cache at the package itself.
                    self._model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
                except (ImportError, OSError, ValueError):
                    self._model = None
            return self._model


_embedder = _Embedder()


def similarity_method() -> str:
    """How :func:`similarity` measures on this machine: ``wordllama``, or ``tokens`` without it."""
    return "wordllama" if _embedder.get() is not None else "tokens"


def _tokens(text: str) -> Counter[str]:
    return Counter(normalise(text).split())


def similarity(a: str, b: str) -> tuple[float, str]:
    """How alike two texts are, in [0, 1], and how it was measured (``wordllama``, or ``tokens`` without it)."""
    if normalise(a) == normalise(b):
        return 1.0, "normalised match"
    model = _embedder.get()
    if model is not None:
        return min(1.0, max(0.0, float(model.similarity(a, b)))), "wordllama"
    # Without embeddings: cosine of the normalised token counts.
    ta, tb = _tokens(a), _tokens(b)
    dot = sum(ta[t] * tb[t] for t in ta.keys() & tb.keys())
    norm = math.sqrt(sum(v * v for v in ta.values())) * math.sqrt(sum(v * v for v in tb.values()))
    return (dot / norm if norm else 0.0), "tokens (wordllama is not installed)"


def _subset(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds ``expected``: every key of an expected object (recursively), equal lists and values."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


# --------------------------------------------------------------------------------------------------------------------
# Checks


class Exact(Scorer):
    """The output's content is exactly ``value``."""

    kind = "exact"

    def __init__(self, name: str, weight: float, threshold: float, value: str) -> None:
        super().__init__(name, weight, threshold)
        self.value = value

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 when the content equals the value, else 0."""
        ok = _content(output) == self.value
        return self._graded(
            float(ok), "the output is the expected text" if ok else "the output is not the expected text"
        )


class Contains(Scorer):
    """The output's text contains ``value`` (or, negated, does not)."""

    kind = "contains"

    def __init__(
        self, name: str, weight: float, threshold: float, value: str, *, negate: bool, ignore_case: bool
    ) -> None:
        super().__init__(name, weight, threshold)
        self.value, self.negate, self.ignore_case = value, negate, ignore_case
        self.kind = "not-contains" if negate else "contains"

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 when the text is (not) in the output, else 0."""
        text, value = _text(output), self.value
        if self.ignore_case:
            text, value = text.casefold(), value.casefold()
        found = value in text
        ok = found != self.negate
        said = "contains" if found else "does not contain"
        return self._graded(float(ok), f"the output {said} the text")


class Regex(Scorer):
    """The output's text matches an RE2 pattern (searched, not anchored)."""

    kind = "regex"

    def __init__(self, name: str, weight: float, threshold: float, pattern: Any) -> None:
        super().__init__(name, weight, threshold)
        self.pattern = pattern

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 when the pattern is found in the output, else 0."""
        ok = self.pattern.search(_text(output)) is not None
        return self._graded(float(ok), "the pattern matches" if ok else "the pattern does not match")


class JsonSchema(Scorer):
    """The output's content is JSON valid against a JSON Schema."""

    kind = "json-schema"

    def __init__(self, name: str, weight: float, threshold: float, validator: Any) -> None:
        super().__init__(name, weight, threshold)
        self.validator = validator

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 when the content parses as JSON and validates, else 0 (the first error's path, not its value)."""
        try:
            data = json.loads(_content(output))
        except ValueError:
            return self._graded(0.0, "the output is not JSON")
        error = next(iter(self.validator.iter_errors(data)), None)
        if error is None:
            return self._graded(1.0, "the output is valid against the schema")
        where = "/".join(str(p) for p in error.absolute_path) or "(the document)"
        return self._graded(0.0, f"the output is not valid against the schema at {where} ({error.validator})")


class ToolCalled(Scorer):
    """The output makes (or, negated, does not make) a tool call of ``name`` whose arguments hold ``arguments``."""

    kind = "tool-called"

    def __init__(self, name: str, weight: float, threshold: float, tool: str, arguments: Any, *, negate: bool) -> None:
        super().__init__(name, weight, threshold)
        self.tool, self.arguments, self.negate = tool, arguments, negate
        self.kind = "tool-not-called" if negate else "tool-called"

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 when a matching call is made (or, negated, when none is), else 0."""
        calls = _tool_calls(output)
        made = any(
            name == self.tool and (self.arguments is None or _subset(self.arguments, args)) for name, args in calls
        )
        ok = made != self.negate
        what = f"the tool call {self.tool}" + ("" if self.arguments is None else " with those arguments")
        if made:
            reason = f"{what} was made" + (" again" if self.negate else "")
        elif any(name == self.tool for name, _ in calls):
            reason = f"{self.tool} was called, with other arguments"
        else:
            reason = f"{what} was not made"
        return self._graded(float(ok), reason)


class EqualsCorrection(Scorer):
    """The output equals the case's correction (``expected_output``) once both are normalised."""

    kind = "equals-correction"

    def score(self, case: EvalCase, output: Output) -> Score:
        """1 on a normalised match, else 0."""
        ok = normalise(_text(output)) == normalise(_text(_as_dict(case.expected_output)))
        return self._graded(
            float(ok), "the output matches the correction" if ok else "the output is not the correction"
        )


class Similar(Scorer):
    """The output's similarity to a reference message of the case (the correction, or the approved output).

    With ``floor`` set (a judge backs this check), a similarity between the floor and the threshold cannot settle
    the case: the judge decides.
    """

    uses_similarity = True

    def __init__(
        self,
        name: str,
        weight: float,
        threshold: float,
        *,
        kind: str,
        reference: Callable[[EvalCase], Any],
        what: str,
        floor: float | None = None,
    ) -> None:
        super().__init__(name, weight, threshold)
        self.kind, self.reference, self.what, self.floor = kind, reference, what, floor

    def score(self, case: EvalCase, output: Output) -> Score:
        """The similarity; passes at the threshold, fails under it (or under the floor, when there is one)."""
        value, method = similarity(_text(output), _text(_as_dict(self.reference(case))))
        value = min(1.0, max(0.0, value))
        reason = f"similarity to {self.what} {value:.2f} ({method}), threshold {self.threshold:g}"
        if value >= self.threshold:
            return Score(value, True, reason)
        if self.floor is not None and value >= self.floor:
            return Score(value, None, reason + f", floor {self.floor:g}: cannot settle")
        return Score(value, False, reason)


class NotOriginal(Scorer):
    """The output does not reproduce the rejected original output: not the same once normalised, and not nearly
    the same (at the threshold) while closer to the original than to the correction."""

    kind = "not-original"
    uses_similarity = True

    def score(self, case: EvalCase, output: Output) -> Score:
        """0 when the output reproduces the rejected original, else 1."""
        text = _text(output)
        original = _text(_as_dict(case.original_output))
        to_original, method = similarity(text, original)
        if normalise(text) == normalise(original):
            return Score(0.0, False, "the output reproduces the rejected original output")
        to_correction = similarity(text, _text(_as_dict(case.expected_output)))[0] if case.expected_output else 0.0
        if to_original >= self.threshold and to_original > to_correction:
            return Score(0.0, False, f"the output is nearly the rejected original output ({to_original:.2f}, {method})")
        return Score(1.0, True, f"the output differs from the rejected original output ({to_original:.2f}, {method})")


# --------------------------------------------------------------------------------------------------------------------
# The judge, layered over the checks


class JudgeScorer(Scorer):
    """The LLM judge, asked only where the case's checks cannot settle it.

    A failed check settles the case (the judge is not asked). When the judge backs the defaults, passing checks
    settle it too, and the judge decides only what they cannot (a similarity between the floor and the threshold);
    a ``judge`` assertion is asked whenever no check failed. A judged case is pending human (passed None) when the
    judge's confidence is under its calibrated threshold, when the case has a safety-sensitive tag, or when the
    judge fails an output that checks passed.
    """

    kind = "judge"
    deterministic = False

    def __init__(
        self,
        name: str,
        weight: float,
        threshold: float,
        *,
        config: JudgeConfig,
        checks: Sequence[Scorer],
        rubric: str | None,
        fallback: bool,
    ) -> None:
        super().__init__(name, weight, threshold)
        self.config, self.checks, self.rubric, self.fallback = config, list(checks), rubric, fallback

    @property
    def uses_similarity(self) -> bool:  # type: ignore[override]
        """Whether one of the checks it is layered over measures similarity."""
        return any(check.uses_similarity for check in self.checks)

    def score(self, case: EvalCase, output: Output) -> Score:
        """The judge's score, skipped when the checks settle the case, None when people must decide."""
        results = [check.score(case, output) for check in self.checks]
        if any(result.passed is False for result in results):
            return Score(0.0, None, "not asked: a check failed", skipped=True)
        unsettled = [result for result in results if result.passed is None]
        if self.fallback and not unsettled:
            return Score(1.0, None, "not asked: the checks settled the case", skipped=True)
        verdict = judge_for(self.config).judge(
            case.messages(), _as_dict(output) or {}, reference=_as_dict(case.expected_output), rubric=self.rubric
        )
        return self._layered(case, verdict, results)

    def _layered(self, case: EvalCase, verdict: JudgeVerdict, results: Sequence[Score]) -> Score:
        said = f"judge: {'pass' if verdict.passed else 'fail'} (confidence {verdict.confidence:.2f})"
        value, why = 1.0 if verdict.passed else 0.0, verdict.reasoning
        if verdict.confidence < self.threshold:
            return Score(
                value, None, f"{said} under the calibrated threshold {self.threshold:g}: pending human", reasoning=why
            )
        sensitive = sorted(set(case.tags) & set(self.config.safety_tags))
        if sensitive:
            return Score(
                value, None, f"{said} on a safety-sensitive case ({', '.join(sensitive)}): pending human", reasoning=why
            )
        if not self.fallback and not verdict.passed and any(result.passed for result in results):
            # No check failed (else the judge is not asked): a judge failing what checks passed needs a person. The
            # defaults' passing checks (not the rejected output, not the refused call) do not vouch for it.
            return Score(value, None, f"{said} disagrees with the checks that passed: pending human", reasoning=why)
        return Score(value, verdict.passed, said, reasoning=why)


# --------------------------------------------------------------------------------------------------------------------
# Building a case's scorers

_DEFAULT_TYPES: Final = frozenset({"matches-correction", "not-original", "no-drift", "not-rejected-call"})

_TEXT_TYPES: Final = frozenset({"exact", "contains", "not-contains", "regex"})

ASSERTION_TYPES: Final = (
    "exact",
    "contains",
    "not-contains",
    "regex",
    "json-schema",
    "tool-called",
    "tool-not-called",
    "equals-correction",
    "similar-to-correction",
    "judge",
)
"""The ``type`` of an assertion, cheapest first (the order a case's scorers run in)."""

_KEYS: Final[dict[str, frozenset[str]]] = {
    **{kind: frozenset({"value"}) for kind in ("exact", "regex", "json-schema")},
    "contains": frozenset({"value", "ignore_case"}),
    "not-contains": frozenset({"value", "ignore_case"}),
    "tool-called": frozenset({"name", "arguments"}),
    "tool-not-called": frozenset({"name", "arguments"}),
    "equals-correction": frozenset(),
    "similar-to-correction": frozenset(),
    "judge": frozenset({"rubric"}),
}
_REQUIRED: Final[dict[str, frozenset[str]]] = {
    **{kind: frozenset({"value"}) for kind in ("exact", "contains", "not-contains", "regex", "json-schema")},
    "tool-called": frozenset({"name"}),
    "tool-not-called": frozenset({"name"}),
}


def _json_validator(case_id: str, at: tuple[str | int, ...], schema: Any) -> Any:
    try:
        import jsonschema
    except ImportError:
        raise ScorerError(
            case_id, at, "json-schema needs the jsonschema package: pip install 'spanguard[gate]'"
        ) from None
    if not isinstance(schema, (dict, bool)):
        raise ScorerError(case_id, at, "a JSON Schema must be an object")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)  # type: ignore[arg-type]  # a boolean schema is valid JSON Schema; the stubs say dict
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the schema"
        raise ScorerError(case_id, at, f"not a valid JSON Schema at {where} ({exc.validator})") from None
    return cls(schema)


def _compile(case_id: str, at: tuple[str | int, ...], pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print the pattern to stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        # RE2 says "what: the offending part"; keep only "what" (the part is the dataset's text).
        detail = exc.args[0] if exc.args else b""
        what = (detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)).split(":")[0]
        raise ScorerError(case_id, at, f"not a valid RE2 regular expression ({what or 'parse error'})") from None


def _from_assertion(case: EvalCase, index: int, assertion: Assertion, config: ScorersConfig, name: str) -> Scorer:
    at: tuple[str | int, ...] = ("assertions", index)
    kind = assertion.type
    if kind not in _KEYS:
        raise ScorerError(case.id, (*at, "type"), f"unknown assertion type (one of: {', '.join(ASSERTION_TYPES)})")
    extra = dict(assertion.model_extra or {})
    for key in sorted(extra.keys() - _KEYS[kind]):
        raise ScorerError(case.id, (*at, key), f"unknown key for a {kind} assertion")
    for key in sorted(_REQUIRED.get(kind, frozenset()) - extra.keys()):
        raise ScorerError(case.id, (*at, key), f"required for a {kind} assertion, but missing")
    weight = assertion.weight if "weight" in assertion.model_fields_set else config.weights.get(kind, 1.0)
    threshold = assertion.threshold
    if threshold is None:
        threshold = config.thresholds.get(kind, _default_threshold(kind, config))
    value: Any = extra.get("value")
    if kind in _TEXT_TYPES and not isinstance(value, str):
        raise ScorerError(case.id, (*at, "value"), "must be a string")
    if kind in _TEXT_TYPES and kind != "exact" and not value:
        raise ScorerError(case.id, (*at, "value"), "must not be empty")
    if kind == "exact":
        return Exact(name, weight, threshold, value)
    if kind in ("contains", "not-contains"):
        ignore_case = extra.get("ignore_case", False)
        if not isinstance(ignore_case, bool):
            raise ScorerError(case.id, (*at, "ignore_case"), "must be true or false")
        return Contains(name, weight, threshold, value, negate=kind == "not-contains", ignore_case=ignore_case)
    if kind == "regex":
        return Regex(name, weight, threshold, _compile(case.id, (*at, "value"), value))
    if kind == "json-schema":
        return JsonSchema(name, weight, threshold, _json_validator(case.id, (*at, "value"), value))
    if kind in ("tool-called", "tool-not-called"):
        tool, arguments = extra.get("name"), extra.get("arguments")
        if not isinstance(tool, str) or not tool:
            raise ScorerError(case.id, (*at, "name"), "must be a tool's name (a non-empty string)")
        if arguments is not None and not isinstance(arguments, dict):
            raise ScorerError(case.id, (*at, "arguments"), "must be an object (the arguments the call must hold)")
        return ToolCalled(name, weight, threshold, tool, arguments, negate=kind == "tool-not-called")
    if kind in ("equals-correction", "similar-to-correction") and case.expected_output is None:
        raise ScorerError(case.id, (*at, "type"), f"{kind} needs the case's expected_output, and it has none")
    if kind == "equals-correction":
        return EqualsCorrection(name, weight, threshold)
    if kind == "similar-to-correction":
        return _similar_to_correction(name, weight, threshold, floor=None)
    # judge: built by for_case, over the case's other scorers
    rubric = extra.get("rubric")
    if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
        raise ScorerError(case.id, (*at, "rubric"), "must be a non-empty string")
    if config.judge is None:
        raise ScorerError(case.id, (*at, "type"), "a judge assertion needs a judge configured (scorers.judge)")
    return JudgeScorer(name, weight, threshold, config=config.judge, checks=(), rubric=rubric, fallback=False)


def _default_threshold(kind: str, config: ScorersConfig) -> float:
    if kind == "similar-to-correction" or kind == "matches-correction":
        return config.defaults.similarity_threshold
    if kind == "judge":
        return config.judge.confidence_threshold if config.judge is not None else 1.0
    return 1.0  # the binary checks: 1 passes, 0 fails


def _similar_to_correction(name: str, weight: float, threshold: float, *, floor: float | None) -> Similar:
    return Similar(
        name,
        weight,
        threshold,
        kind="similar-to-correction",
        reference=lambda case: case.expected_output,
        what="the correction",
        floor=floor,
    )


def _unique(names: list[str], kind: str) -> str:
    name, n = kind, 1
    while name in names:
        n += 1
        name = f"{kind}#{n}"
    names.append(name)
    return name


def _defaults(case: EvalCase, config: ScorersConfig) -> list[Scorer]:
    d = config.defaults
    judged = config.judge is not None and config.judge.defaults

    def setting(kind: str, threshold: float) -> tuple[float, float]:
        return config.weights.get(kind, 1.0), config.thresholds.get(kind, threshold)

    scorers: list[Scorer] = []
    if case.outcome == ReviewOutcome.CORRECT and case.expected_output is not None:
        weight, threshold = setting("matches-correction", d.similarity_threshold)
        matches = _similar_to_correction(
            "matches-correction", weight, threshold, floor=min(d.similarity_floor, threshold) if judged else None
        )
        matches.kind = "matches-correction"
        scorers.append(matches)
    if case.outcome in (ReviewOutcome.CORRECT, ReviewOutcome.REJECT) and case.original_output is not None:
        weight, threshold = setting("not-original", d.reproduce_threshold)
        scorers.append(NotOriginal("not-original", weight, threshold))
    if case.outcome == ReviewOutcome.APPROVE and case.original_output is not None:
        weight, threshold = setting("no-drift", d.drift_threshold)
        scorers.append(
            Similar(
                "no-drift",
                weight,
                threshold,
                kind="no-drift",
                reference=lambda c: c.original_output,
                what="the approved output",
            )
        )
    names = [scorer.name for scorer in scorers]
    for call in case.rejected_tool_calls:
        weight, threshold = setting("not-rejected-call", 1.0)
        arguments = parse_arguments(call.arguments)
        scorers.append(
            ToolCalled(
                _unique(names, f"not-rejected-call:{call.name}"),
                weight,
                threshold,
                call.name,
                arguments if isinstance(arguments, dict) else None,
                negate=True,
            )
        )
        scorers[-1].kind = "not-rejected-call"
    if judged and config.judge is not None:
        weight, threshold = setting("judge", config.judge.confidence_threshold)
        scorers.append(
            JudgeScorer(
                "judge", weight, threshold, config=config.judge, checks=list(scorers), rubric=None, fallback=True
            )
        )
    return scorers


def for_case(case: EvalCase, config: ScorersConfig) -> list[Scorer]:
    """The scorers of ``case``, cheapest first: its assertions if it has any, else the defaults for its outcome;
    :class:`ScorerError` naming the assertion's field when one cannot be used."""
    if not case.assertions:
        return _defaults(case, config)
    names: list[str] = []
    built = [
        _from_assertion(case, index, assertion, config, _unique(names, assertion.type))
        for index, assertion in enumerate(case.assertions)
    ]
    order = {kind: rank for rank, kind in enumerate(ASSERTION_TYPES)}
    built.sort(key=lambda scorer: order.get(scorer.kind, len(order)))  # stable: a type keeps the file's order
    checks = [scorer for scorer in built if not isinstance(scorer, JudgeScorer)]
    for scorer in built:
        if isinstance(scorer, JudgeScorer):
            scorer.checks = checks
    return built


def aggregate(
    case: EvalCase, scored: Sequence[tuple[Scorer, Score]], *, config: ScorersConfig | None = None
) -> CaseVerdict:
    """The case's verdict over its ``(scorer, score)`` pairs: fails when a settled scorer fails or the weighted score
    of the settled ones is under the case's threshold (the case's own, else ``config.case_threshold``); pending human
    (None) when a scorer cannot settle it, or none can; passes otherwise."""
    used = [(scorer, score) for scorer, score in scored if not score.skipped]
    if any(isinstance(scorer, JudgeScorer) and score.passed is not None for scorer, score in used):
        # The judge settled what the checks could not: their "cannot settle" is answered.
        used = [(s, score) for s, score in used if isinstance(s, JudgeScorer) or score.passed is not None]
    settled = [(scorer, score) for scorer, score in used if score.passed is not None]
    total = sum(scorer.weight for scorer, _ in settled)
    if not settled:
        value = 0.0
    elif total > 0:
        value = sum(scorer.weight * score.score for scorer, score in settled) / total
    else:  # every weight 0: the plain mean, rather than nothing
        value = sum(score.score for _, score in settled) / len(settled)
    threshold = case.threshold if case.threshold is not None else (config.case_threshold if config else 0.0)
    failed = [f"{scorer.name}: {score.reason}" for scorer, score in settled if score.passed is False]
    pending = [f"{scorer.name}: {score.reason}" for scorer, score in used if score.passed is None]
    if failed:
        return CaseVerdict(value, False, failed)
    if pending:
        return CaseVerdict(value, None, pending)
    if not settled:
        return CaseVerdict(value, None, ["no scorer can settle the case"])
    if value < threshold:
        return CaseVerdict(value, False, [f"weighted score {value:.2f} is under the case threshold {threshold:g}"])
    return CaseVerdict(value, True, [f"{scorer.name}: {score.reason}" for scorer, score in settled])

"""The redactor: texts, attribute maps and span views redacted with the registry's recognizers behind the trigger
screen, values redacted by the key that holds them, JSON walked to its string leaves, and every failure closed.

What is detected, where, with which operators, and how it fails closed: docs/redaction.md.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import TYPE_CHECKING, Any, Final, Literal

import re2
import regex
from presidio_analyzer import EntityRecognizer, PatternRecognizer
from presidio_analyzer.predefined_recognizers import EmailRecognizer, PhoneRecognizer

from spanguard.processors.redaction.config import KEY_SPLIT, RedactionConfig, key_words
from spanguard.processors.redaction.entities import (
    DEFAULT_ENTITIES,
    DROPPED_KEY,
    NER_ENTITIES,
    PERSON,
    PHONE_NUMBER,
    REDACTION_FAILED,
    SECRET_ENTITIES,
    STREET_ADDRESS,
    STRUCTURED_ENTITIES,
    URL_QUERY,
)
from spanguard.processors.redaction.ner import NER_CANDIDATE, NerPass, warn_no_ner_once
from spanguard.processors.redaction.operators import REDACTED, Operators
from spanguard.processors.redaction.recognizers import CONTEXT_WORD as _WORD
from spanguard.processors.redaction.recognizers import OfflineEmailRecognizer
from spanguard.processors.redaction.registry import RecognizerRegistry, RegisteredRecognizer, builtin_registry
from spanguard.processors.redaction.results import Detection, RedactedAttributes, RedactedText
from spanguard.processors.redaction.screen import (
    ROOMY,
    WARM_UP_TEXT,
    AsciiScreen,
    DigitsTrigger,
    TriggerFunction,
    TriggerSets,
    re2_alternatives,
)
from spanguard.processors.view import EventView, SpanView
from spanguard.semconv import (
    GEN_AI_CONTENT_ATTRIBUTES,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_DEFINITIONS,
    SPANGUARD_FREE_TEXT_ATTRIBUTES,
    SPANGUARD_REDACTION_COUNT,
    SPANGUARD_REDACTION_ENTITIES,
)
from spanguard.semconv.redaction import DROPPED_MARKER, FAILED_MARKER

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = [
    "CONTENT_ATTRIBUTES",
    "MESSAGE_ATTRIBUTES",
    "STRUCTURAL_KEYS",
    "URL_KEYS",
    "Redactor",
    "default_redactor",
]

logger = logging.getLogger("spanguard.processors.redaction")

CONTENT_ATTRIBUTES: Final[frozenset[str]] = frozenset(GEN_AI_CONTENT_ATTRIBUTES)
"""Attributes that hold JSON (always parsed, even a bare JSON string); other values are parsed when they look like a
JSON object or array."""
MESSAGE_ATTRIBUTES: Final = frozenset(
    {GEN_AI_INPUT_MESSAGES, GEN_AI_OUTPUT_MESSAGES, GEN_AI_SYSTEM_INSTRUCTIONS, GEN_AI_TOOL_DEFINITIONS}
)
"""Content attributes that are lists of messages, parts or tool definitions (see ``STRUCTURAL_KEYS``)."""
URL_KEYS: Final[tuple[str, ...]] = ("url.full", "url.original", "http.url", "http.target", "url.query")
"""Attributes holding a URL (or, for ``url.query``, a query string) whose query values are redacted as ``URL_QUERY``."""
_CONTEXT_FACTOR: Final = 0.35  # Presidio's LemmaContextAwareEnhancer defaults
_CONTEXT_MIN_SCORE: Final = 0.4
_CONTEXT_WORDS: Final = 5
# Words between a negative context word and its number: "order no. 4155550132", "PO number: 5512093348".
# Not "my" or "your": a possessive says the number is someone's own ("sent receipt: my number is ...").
_FILLER_WORDS: Final = frozenset({"no", "nr", "num", "number", "numbers", "is", "was", "of", "the"})
_JSON_DEPTH: Final = 4
# Fields of the GenAI content JSON (messages, their parts, tool definitions) that describe structure, not content:
# they are left as they are (a tool call's id must still match its response's). Only at those levels: the same keys
# inside tool-call arguments or responses are scanned like everything else.
STRUCTURAL_KEYS: Final = frozenset({"role", "type", "id", "finish_reason", "mime_type", "modality", "file_id"})
_HITS_KEPT: Final = 4096  # ASCII values whose triggers are kept while a batch is redacted
_RESOURCE_CACHE_SIZE: Final = 256  # distinct resources whose redaction is kept (a fleet has few)
_MISS: Final = object()
_NO_RESOURCES: Final[Mapping[int, Any]] = {}
_PRIORITY: Final[Mapping[str, int]] = {
    **{entity: 2 for entity in SECRET_ENTITIES},
    **{entity: 1 for entity in STRUCTURED_ENTITIES},
}


class _BudgetExceeded(Exception):
    """Analysis of a value took longer than its budget."""


@dataclass(slots=True)
class _Recognizer:
    recognizer: EntityRecognizer
    entity: str
    trigger: TriggerFunction
    patterns: list[tuple[Any, float]] | None  # compiled (regex module) patterns for the fast path, else None
    context: frozenset[str]
    negative: frozenset[str] = frozenset()  # words that say "this is not one" (an order number is not a phone)
    screen: Any = None  # an RE2 set of the patterns' screens (SecretRecognizer.pattern_screens), or None
    screen_of: tuple[int | None, ...] = ()  # per pattern: its index in ``screen`` (None: always run)
    # A character every match holds, with no whitespace in any match: the patterns then run only on the runs of
    # non-whitespace around it (the same matches: see _runs_around); None: on the whole text.
    anchor: str | None = None

    def skipped(self, text: str) -> frozenset[int]:
        """The patterns not to run on ``text``: those whose screen does not find it (ASCII text only)."""
        if self.screen is None or not text.isascii():
            return frozenset()
        hits = set(self.screen.Match(text.encode("ascii")) or ())
        return frozenset(i for i, slot in enumerate(self.screen_of) if slot is not None and slot not in hits)


# Presidio's e-mail patterns: each match holds an ``@`` and no whitespace (no class of theirs has any, no ``.``, no
# lookaround; ``\b`` at a run's edge sees whitespace or an end of text, the same non-word either way).
_EMAIL_PATTERNS: Final = frozenset(p.regex for p in EmailRecognizer.PATTERNS)
_ASCII_SPACES: Final = " \t\n\r\f\v"


def _runs_around(text: str, anchor: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` between whitespace (or its ends) that hold ``anchor``, in order, not overlapping.

    Only ASCII whitespace bounds a stretch: one may hold several runs of non-whitespace, never cut one.
    """
    out: list[tuple[int, int]] = []
    at = text.find(anchor)
    while at >= 0:
        start = max(text.rfind(c, 0, at) for c in _ASCII_SPACES) + 1
        end = min((e for c in _ASCII_SPACES if (e := text.find(c, at)) >= 0), default=len(text))
        out.append((start, end))
        at = text.find(anchor, end)
    return out


def _finditer(compiled: Any, text: str, stretches: Sequence[tuple[int, int]], deadline: float) -> Iterator[Any]:
    """The matches of ``compiled`` in the stretches of ``text``, each search with the time left (fails closed)."""
    for at, to in stretches:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise _BudgetExceeded
        yield from compiled.finditer(text, at, to, timeout=remaining)  # TimeoutError: fails closed


# Phone numbers are looked for (with Presidio's PhoneRecognizer) only in windows around runs of digits.
_PHONE_RUN: Final = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6,}")
_PHONE_LEFT: Final = 12
_PHONE_RIGHT: Final = 16


def _wrap(registered: RegisteredRecognizer) -> _Recognizer:
    recognizer, entity, trigger = registered.recognizer, registered.entity, registered.trigger
    patterns = None
    # Plain pattern recognizers (analyze not overridden) run on the fast path with a fail-closed regex time-out.
    fast = isinstance(recognizer, PatternRecognizer) and (
        type(recognizer).analyze is PatternRecognizer.analyze or isinstance(recognizer, OfflineEmailRecognizer)
    )
    if fast:
        assert isinstance(recognizer, PatternRecognizer)
        flags = recognizer.global_regex_flags or 0
        patterns = [(regex.compile(p.regex, flags=flags), p.score) for p in recognizer.patterns]  # type: ignore[has-type]
    context = frozenset(word.lower() for word in (recognizer.context or ()))
    # A word can't both name the entity and say it is something else: its own context words win.
    negative = frozenset(word.lower() for word in (getattr(recognizer, "negative_context", None) or ())) - context
    wrapped = _Recognizer(recognizer, entity, trigger, patterns, context, negative)
    screens = getattr(recognizer, "pattern_screens", ())
    if patterns is not None and any(screens):
        rset = re2.Set.SearchSet(ROOMY)
        slots: list[int | None] = []
        for screen in screens:
            slots.append(None if screen is None else rset.Add(screen.encode("ascii")))
        rset.Compile()
        wrapped.screen, wrapped.screen_of = rset, tuple(slots)
    if (
        patterns
        and isinstance(recognizer, EmailRecognizer)
        and {p.regex for p in recognizer.patterns} <= _EMAIL_PATTERNS  # type: ignore[has-type]
    ):
        wrapped.anchor = "@"
    return wrapped


# --- the redactor ---------------------------------------------------------------------------------------------------


def _glob_matcher(globs: Sequence[str]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g.lower())})" for g in globs), re.IGNORECASE)


def _literal_fragment(glob: str) -> str:
    """The longest run of literal characters of a glob (empty when it has none)."""
    runs = re.split(r"[*?]|\[[^\]]*\]", glob)
    return max(runs, key=len) if runs else ""


@dataclass(slots=True, eq=False)
class _Group:
    """Values that fail together: one text attribute, one array element or one whole JSON value."""

    failed: str | None = None  # None, "error" or "timeout"


@dataclass(slots=True, eq=False)
class _Leaf:
    """One text to analyze, inside a group."""

    text: str
    group: _Group
    detections: list[Detection] = field(default_factory=list)
    key_words: frozenset[str] = frozenset()  # the words of the key holding the text: context for its recognizers
    whole: bool = False  # redacted whole by its key (detections given), not analyzed


@dataclass(slots=True, eq=False)
class _Nested:
    """A JSON string leaf that itself holds JSON."""

    tree: Any
    original: str


class _Dropped:
    """The value of a JSON key that matches ``always_drop``."""


_DROPPED = _Dropped()


@dataclass(slots=True, eq=False)
class _Job:
    """What to do with one attribute value."""

    kind: Literal["drop", "text", "array", "json", "tree"]
    value: Any = None  # text: a _Leaf; array: list of _Leaf or values; json, tree: the tree (tree: a map value)
    group: _Group | None = None
    original: str = ""
    dropped: int = 0  # JSON values dropped by key


@dataclass(slots=True, eq=False)
class _MapPlan:
    """An attribute map and the jobs of its values that change (the others are kept as they are)."""

    source: Mapping[str, Any]
    jobs: dict[str, _Job]
    keys: dict[str, _Leaf] = field(default_factory=dict)  # keys that themselves hold something to redact


_SCAN, _NEVER, _DROP, _BY_KEY, _URL = 0, 1, 2, 3, 4
_COLLECT_DEPTH: Final = 32  # deeper values are left to the tree walk, which bounds its own recursion


@dataclass(frozen=True, slots=True)
class _KeyInfo:
    """What a key means for its value: a rule, the type of values redacted by key, whether the key needs redacting."""

    rule: int
    entity: str | None
    words: frozenset[str]
    dirty: bool
    tail: int = -1  # where a value written into the key after the word that names it starts (-1: none)


class _Tally:
    """Redactions of one unit of output (a span, an attribute map)."""

    __slots__ = ("count", "entities", "failures")

    def __init__(self) -> None:
        self.count = 0
        self.entities: list[str] = []
        self.failures: list[str] = []

    def add(self, entities: Iterable[str]) -> None:
        for entity in entities:
            self.count += 1
            self.entities.append(entity)

    def fail(self, reason: str) -> None:
        self.count += 1
        self.entities.append(REDACTION_FAILED)
        self.failures.append(reason)


class Redactor:
    """Redacts texts, attribute maps and span views according to a :class:`RedactionConfig`; thread-safe.

    Recognizers (and the NER model, if configured) are built once here; a model that cannot be loaded raises.
    ``registry``: the recognizers to run (default: the built-in ones); the types of those a user added to it are
    detected beside ``config.entities``, and the config's own ``recognizers`` run after them.
    """

    def __init__(
        self,
        config: RedactionConfig | None = None,
        *,
        meter: Meter | None = None,
        registry: RecognizerRegistry | None = None,
    ) -> None:
        self.config = config = config if config is not None else RedactionConfig()
        registry = registry if registry is not None else builtin_registry()
        custom = RecognizerRegistry(config.custom_recognizers())
        added = [e for e in registry.supported_entities if e not in DEFAULT_ENTITIES and e not in config.entities]
        entities = (*config.entities, *added)
        self._entities = frozenset(entities)
        self._recognizers = [_wrap(r) for r in (*registry.get_recognizers(entities), *custom.get_recognizers(entities))]
        self._triggers = list(dict.fromkeys(r.trigger for r in self._recognizers))  # distinct, in order
        gated: list[Any] = [t for t in self._triggers if getattr(t, "literals", ()) or getattr(t, "folded", ())]
        self._gated_triggers = gated
        self._pattern_triggers = [t for t in self._triggers if t not in self._gated_triggers]
        self._gate_literals = tuple(dict.fromkeys(lit for t in gated for lit in t.literals))
        self._gate_folded = tuple(dict.fromkeys(lit for t in gated for lit in t.folded))
        self._screen = AsciiScreen(self._triggers)
        self._trigger_sets = TriggerSets(self._triggers)
        # Which triggers find an ASCII value, from planning (does it need analysis?) to analysis (which recognizers?):
        # one RE2 pass per value instead of two. Both screens give the same verdict unless a trigger has no RE2
        # alternative at all (TriggerSets then always reports it): the verdict is then the AsciiScreen's.
        self._hits: dict[str, set[TriggerFunction]] = {}
        self._hits_decide = all(re2_alternatives(t) != [] for t in self._triggers)
        self._never_scan = _glob_matcher(config.never_scan)
        self._always_drop = _glob_matcher(config.always_drop)
        fragments = [_literal_fragment(g.lower()) for g in config.always_drop]
        # JSON whose lower-cased raw text holds none of these can have no always-dropped key ("" is in every text).
        unique = set(fragments)
        self._drop_fragments = tuple(f for f in unique if not any(o != f and o in f for o in unique))
        self._key_cache: dict[str, _KeyInfo] = {}
        self._name_cache: dict[str, bool] = {}
        self._resource_cache: dict[
            Any, tuple[dict[str, Any], _Tally] | None
        ] = {}  # span and event names: whether one needs analysis
        self._redact_keys = [
            (_glob_matcher((glob,)), entity) for glob, entity in config.redact_keys.items() if entity in self._entities
        ]
        self._redact_key_words = [
            (f"_{word}_", entity) for word, entity in config.redact_key_words.items() if entity in self._entities
        ]
        self._url_keys = frozenset(URL_KEYS) if URL_QUERY in self._entities else frozenset()
        # JSON object keys that name what their value holds ("ssn": ...), found in raw JSON text: a superset.
        key_texts = [w.replace("_", "[_.\\- ]?") for w, _ in self._redact_key_words]
        key_texts += [re.escape(_literal_fragment(glob.lower())) for glob in config.redact_keys]
        key_texts = [t for t in key_texts if t]
        # Unbounded (a superset of "up to 64 characters of the key after the word"): only screens use it, and a window
        # of counted characters costs RE2 a state for every place it is at.
        self._json_key_pattern = rf'(?i:{"|".join(key_texts)})[^"\\\n]*\\?"[ \t]*:' if key_texts else None
        self._json_key_re = re2.compile(self._json_key_pattern) if self._json_key_pattern else None
        # A whole span's values at once: the triggers, the fragments of keys to drop and the PII-named JSON keys.
        self._span_screen = AsciiScreen(
            self._triggers, self._drop_fragments, (self._json_key_pattern,) if self._json_key_pattern else ()
        )
        # RE2 builds its DFA states as it meets them: build the common ones now, not in the first spans' time budget.
        for warm in (self._screen, self._span_screen, self._trigger_sets):
            warm(WARM_UP_TEXT)
        self._operate = Operators(config, entities)
        self._budget_s = config.time_budget_ms / 1000.0
        self._threshold = config.score_threshold
        ner_entities = tuple(e for e in NER_ENTITIES if e in entities)
        self._ner_pass: NerPass | None = None
        if ner_entities:
            if config.ner_model:
                self._ner_pass = NerPass(config.ner_model, ner_entities, self._threshold, self._log_failure)
            else:
                warn_no_ner_once(ner_entities)
        self._use_ner = self._ner_pass is not None
        self._closed = False
        self._stats_lock = threading.Lock()
        self._redacted: Counter[str] = Counter()
        self._failed = 0
        self._values = 0
        self._redacted_counter = self._failed_counter = None
        if meter is not None:
            self._redacted_counter = meter.create_counter(
                "spanguard.redaction.redacted", unit="{entity}", description="Entities redacted, by entity type."
            )
            self._failed_counter = meter.create_counter(
                "spanguard.redaction.failed",
                unit="{value}",
                description="Values replaced by <REDACTION_FAILED> because analysis raised or ran out of time.",
            )
        self._last_failure_log = 0.0
        self._warm_up()

    def _warm_up(self) -> None:
        """Load what the recognizers load lazily (phone metadata, suffix list, model caches) before the first span."""
        sample = (
            "Warm up: ada@example.org, +1 415 555 0132, +44 20 7946 0958, 4111 1111 1111 1111, "
            "GB82 WEST 1234 5698 7654 32, 078-05-1121, 10.0.0.1, Paris."
        )
        group = _Group()
        leaf = _Leaf(sample, group)
        self._analyze_groups([(group, [leaf])])
        self._ner([leaf])
        # Every recognizer once, so that what each compiles or loads on first use is not paid by a span's budget.
        for r in self._recognizers:
            try:
                if r.patterns is None:
                    r.recognizer.analyze(sample, [r.entity], None)  # type: ignore[arg-type]  # no NLP engine
                else:
                    self._run_patterns(r, sample, time.perf_counter() + 5.0)
            except Exception as exc:
                self._log_failure(exc)

    # --- public API ---

    def redact_text(self, text: str) -> RedactedText:
        """Redact one plain text (not parsed as JSON). Raises TypeError only if ``text`` is not a str."""
        if not isinstance(text, str):
            raise TypeError(f"redact_text takes a str, not {type(text).__name__}")
        try:
            tally = _Tally()
            group = _Group()
            leaf = _Leaf(text, group)
            self._analyze_groups([(group, [leaf])])
            self._ner([leaf])
            out = self._render_leaf(leaf, tally)
            self._record(tally, 1)
            return RedactedText(out, tuple(tally.entities))
        except Exception as exc:  # never raise, never return the original
            self._internal_error(exc)
            return RedactedText(FAILED_MARKER, (REDACTION_FAILED,))

    def redact_attributes(self, attributes: Mapping[str, Any]) -> RedactedAttributes:
        """Redact an attribute map into a new dict (the input is not changed)."""
        try:
            plan, groups, leaves = self._plan_maps([attributes])
            self._analyze_groups(groups)
            self._ner(leaves)
            tally = _Tally()
            out = self._render_map(plan[0], tally)
            self._record(tally, len(attributes))
            return RedactedAttributes(out, tally.count, frozenset(tally.entities))
        except Exception as exc:
            self._internal_error(exc)
            return RedactedAttributes(self._fail_map(attributes), 1, frozenset({REDACTION_FAILED}))

    def redact_span(self, span: SpanView) -> SpanView:
        """The span view with attributes, event attributes, status message and (if configured) resource redacted: a new
        view when anything changed, ``span`` itself when nothing needed to."""
        return self.redact_spans([span])[0]

    def redact_spans(self, spans: Sequence[SpanView]) -> list[SpanView]:
        """Redact many span views; the NER texts of all of them go through one ``nlp.pipe`` call."""
        try:
            return self._redact_spans(spans)
        except Exception as exc:
            self._internal_error(exc)
            return [self._failed_span(span) for span in spans]

    def analyze_texts(self, texts: Sequence[str]) -> list[tuple[Detection, ...] | None]:
        """The merged detections of each text (as redaction would apply them), or None where analysis failed.

        Texts are analyzed as plain text (no JSON parsing), NER batched; nothing is counted. Used by the benchmark.
        """
        groups = [_Group() for _ in texts]
        leaves = [_Leaf(text, group) for text, group in zip(texts, groups, strict=True)]
        self._analyze_groups([(g, [leaf]) for g, leaf in zip(groups, leaves, strict=True)])
        self._ner(leaves)
        return [None if leaf.group.failed else tuple(self._resolve(leaf.text, leaf.detections)) for leaf in leaves]

    @property
    def stats(self) -> dict[str, Any]:
        """Counts since construction: ``redacted`` (by entity type, incl. DROPPED_KEY), ``failed``, ``values``."""
        with self._stats_lock:
            return {"redacted": dict(self._redacted), "failed": self._failed, "values": self._values}

    def shutdown(self) -> None:
        """Release the NER model; idempotent. Afterwards, values that need analysis fail closed."""
        self._closed = True
        if self._ner_pass is not None:
            self._ner_pass.shutdown()

    def clear_cache(self) -> None:
        """Forget the cached NER results (the benchmark does this between rounds)."""
        if self._ner_pass is not None:
            self._ner_pass.clear_cache()

    # --- planning: what each value needs ---

    def _key_info(self, key: str) -> _KeyInfo:
        """What ``key`` means for its value (cached per key)."""
        info = self._key_cache.get(key)
        if info is None:
            info = self._key_cache[key] = self._new_key_info(key)
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
        return info

    def _new_key_info(self, key: str) -> _KeyInfo:
        words = key_words(key)
        word_set = frozenset(words)
        dirty = bool(self.config.scan_names) and bool(key) and self._holds_something(key, word_set)
        if self._always_drop is not None and self._always_drop.match(key):
            return _KeyInfo(_DROP, None, word_set, False)
        # spanguard's own attributes are ids, tiers and codes, except the few that hold free text: those are scanned.
        passed = key.startswith("spanguard.") or (self._never_scan is not None and self._never_scan.match(key))
        if passed and key not in SPANGUARD_FREE_TEXT_ATTRIBUTES:
            return _KeyInfo(_NEVER, None, word_set, False)
        if key.lower() in self._url_keys:
            return _KeyInfo(_URL, URL_QUERY, word_set, dirty)
        entity, tail = self._entity_of_key(key, words)
        if entity is not None:
            return _KeyInfo(_BY_KEY, entity, word_set, dirty or tail >= 0, tail)
        return _KeyInfo(_SCAN, None, word_set, dirty)

    def _holds_something(self, text: str, words: frozenset[str] = frozenset()) -> bool:
        """Whether the recognizers find anything in a key or a name (both repeat, so this runs once per distinct one;
        a trigger alone, like ``token`` in ``input_tokens`` or the digits of ``claude-3-5-sonnet-20240620``, does not
        make one worth rewriting)."""
        if not self._triggered(text):
            return False
        try:
            return bool(self._structured(text, time.perf_counter() + self._budget_s, words))
        except Exception:
            return True  # cannot tell: the key is analysed with its span, and fails closed there

    def _entity_of_key(self, key: str, words: Sequence[str]) -> tuple[str | None, int]:
        """The type a key's values are redacted as, by ``redact_keys`` then ``redact_key_words`` (None: scanned), and
        where a value written into the key itself starts: after the naming word, when what follows looks like a
        value (``customer.phone.+14155550132``; not ``customer.phone.country_code``: see ``_value_in_key``), else -1."""
        for matcher, entity in self._redact_keys:
            if matcher is not None and matcher.match(key):
                return entity, -1
        if not words:
            return None, -1
        if words == ["address"]:
            return _pii_entity(STREET_ADDRESS, self._entities), -1
        joined = f"_{'_'.join(words)}_"
        for word, entity in self._redact_key_words:
            if word not in joined:
                continue
            # The naming word's last part, found in the key itself: the value (if any) follows it.
            parts = word.strip("_").split("_")
            spans = [(m.group().lower(), m.end()) for m in KEY_SPLIT.finditer(key)]
            for i in range(len(spans) - len(parts) + 1):
                if [w for w, _ in spans[i : i + len(parts)]] == parts:
                    end = spans[i + len(parts) - 1][1]
                    rest = key[end:].lstrip("._-: /")
                    tail = len(key) - len(rest) if rest and _value_in_key(rest, entity) else -1
                    return entity, tail
            return entity, -1
        return None, -1

    def _needs_analysis(self, text: str, lower: str | None = None) -> bool:
        """Whether a text can hold anything: NER is on, or a trigger finds it (``lower``: ``text.lower()``)."""
        return self._use_ner or self._triggered(text, lower)

    def _triggered(self, text: str, lower: str | None = None) -> bool:
        """Whether some trigger finds ``text`` (``lower``: ``text.lower()``)."""
        if text.isascii():
            return bool(self._ascii_hits(text)) if self._hits_decide else self._screen(text)
        if lower is None:
            lower = text.lower()
        for trigger in self._pattern_triggers:
            if trigger(text, lower):
                return True
        # The other triggers need one of their literals: test them all at once first.
        if not (_contains_any(text, self._gate_literals) or _contains_any(lower, self._gate_folded)):
            return False
        for trigger in self._gated_triggers:
            if trigger(text, lower):
                return True
        return False

    def _name_needs_analysis(self, name: str) -> bool:
        """Whether a span or event name must be redacted (cached per name: names repeat)."""
        if not name or not self.config.scan_names:
            return False
        if self._use_ner:
            return True
        dirty = self._name_cache.get(name)
        if dirty is None:
            dirty = self._name_cache[name] = self._holds_something(name)
            if len(self._name_cache) > 10_000:
                self._name_cache.clear()
        return dirty

    def _ascii_hits(self, text: str) -> set[TriggerFunction]:
        """:class:`TriggerSets` on an ASCII ``text``, kept until the batch being redacted is done (values are screened
        when planned and again when analyzed)."""
        hits = self._hits.get(text)
        if hits is None:
            if len(self._hits) >= _HITS_KEPT:
                self._hits.clear()
            hits = self._hits[text] = self._trigger_sets(text)
        return hits

    def _fired(self, text: str) -> list[_Recognizer]:
        """The recognizers whose trigger finds ``text`` (each distinct trigger is evaluated once; in ASCII text, the
        triggers RE2 can express are found together by :class:`TriggerSets`, a superset their patterns then decide)."""
        if text.isascii():
            hit = self._ascii_hits(text)
            return [r for r in self._recognizers if r.trigger in hit]
        lower = text.lower()
        hits = {trigger: trigger(text, lower) for trigger in self._triggers}
        return [r for r in self._recognizers if hits[r.trigger]]

    def _plan_maps(
        self, maps: Sequence[Mapping[str, Any]]
    ) -> tuple[list[_MapPlan], list[tuple[_Group, list[_Leaf]]], list[_Leaf]]:
        groups: list[tuple[_Group, list[_Leaf]]] = []
        leaves: list[_Leaf] = []
        plans = []
        for m in maps:
            plan = _MapPlan(m, {})
            for key, value in m.items():
                info = self._key_info(key)
                job = self._plan_value(
                    info, value, groups, leaves, content=key in CONTENT_ATTRIBUTES, messages=key in MESSAGE_ATTRIBUTES
                )
                if job is not None:
                    plan.jobs[key] = job
                if info.dirty and info.rule != _DROP:
                    # Keys are not NER'd: they are identifiers, and NER on every key would cost more than it finds.
                    group = _Group()
                    preset = (
                        [Detection(info.entity, info.tail, len(key), 1.0)] if info.tail >= 0 and info.entity else []
                    )
                    leaf = plan.keys[key] = _Leaf(key, group, preset, key_words=info.words)
                    groups.append((group, [leaf]))
            plans.append(plan)
        return plans, groups, leaves

    def _plan_value(
        self,
        info: _KeyInfo,
        value: Any,
        groups: list[tuple[_Group, list[_Leaf]]],
        leaves: list[_Leaf],
        *,
        content: bool = False,
        messages: bool = False,
    ) -> _Job | None:
        """What to do with one value; None: keep it as it is."""
        rule = info.rule
        if rule == _DROP:
            return _Job("drop")
        if rule == _NEVER:
            return None
        if rule == _BY_KEY:
            assert info.entity is not None
            return self._plan_by_key(value, info.entity)
        if isinstance(value, str):
            if rule == _URL:
                return self._plan_url(value, info, groups, leaves)
            return self._plan_string(value, groups, leaves, content=content, messages=messages, words=info.words)
        # An OTLP array holding kvlists or arrays (the official GenAI events' messages) is walked as the tree it is.
        nested = isinstance(value, (tuple, list)) and any(isinstance(item, (Mapping, list, tuple)) for item in value)
        if isinstance(value, (tuple, list)) and not nested and any(isinstance(item, str) for item in value):
            items: list[Any] = []
            changed = False
            for item in value:
                if isinstance(item, str) and item and self._needs_analysis(item):
                    group = _Group()
                    leaf = _Leaf(item, group, key_words=info.words)
                    groups.append((group, [leaf]))
                    leaves.append(leaf)
                    items.append(leaf)
                    changed = True
                else:
                    items.append(item)
            if not changed:
                return None
            return _Job("array", items, original=type(value).__name__)
        if isinstance(value, Mapping) or nested:  # an OTLP kvlist value, or an array holding them
            group = _Group()
            own: list[_Leaf] = []
            job = _Job("tree", None, group)
            try:
                job.value = self._tree(value, group, own, job, 0)
            except RecursionError:
                group.failed = "error"
            groups.append((group, own))
            leaves.extend(own)
            return job
        return None

    @staticmethod
    def _whole(value: Any, entity: str) -> _Leaf | None:
        """A leaf that redacts a scalar value whole as ``entity`` (None for empty strings, booleans, None, and values
        already redacted, so a span redacted twice is counted once)."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        text = value if isinstance(value, str) else repr(value)
        if not text or REDACTED.fullmatch(text):
            return None
        return _Leaf(text, _Group(), [Detection(entity, 0, len(text), 1.0)], whole=True)

    def _plan_by_key(self, value: Any, entity: str) -> _Job | None:
        leaf = self._whole(value, entity)
        if leaf is not None:
            return _Job("text", leaf, leaf.group)
        if isinstance(value, (tuple, list)):
            items = [self._whole(item, entity) or item for item in value]
            if any(isinstance(item, _Leaf) for item in items):
                return _Job("array", items, original=type(value).__name__)
        return None

    def _plan_url(
        self, value: str, info: _KeyInfo, groups: list[tuple[_Group, list[_Leaf]]], leaves: list[_Leaf]
    ) -> _Job | None:
        """A URL (or, for ``url.query``, a query string): its query values by key, the rest scanned."""
        preset = _query_values(value, whole_is_query=bool(value) and info.words == frozenset({"url", "query"}))
        if not preset and not self._needs_analysis(value):
            return None
        group = _Group()
        leaf = _Leaf(value, group, preset, key_words=info.words)
        groups.append((group, [leaf]))
        leaves.append(leaf)
        return _Job("text", leaf, group)

    def _plan_string(
        self,
        value: str,
        groups: list[tuple[_Group, list[_Leaf]]],
        leaves: list[_Leaf],
        *,
        content: bool,
        messages: bool = False,
        words: frozenset[str] = frozenset(),
    ) -> _Job | None:
        if not value:
            return None
        if content or _looks_like_json(value):
            if not self._use_ner and "\\u" not in value and "\\/" not in value and self._raw_json_is_clean(value):
                return None  # nothing in the raw JSON can match: no need to parse it
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = None
            else:
                if isinstance(parsed, (dict, list)) or (content and isinstance(parsed, str)):
                    group = _Group()
                    own: list[_Leaf] = []
                    job = _Job("json", None, group, value)
                    try:
                        structural = messages and isinstance(parsed, list)
                        job.value = self._tree(parsed, group, own, job, 0, structural=structural)
                    except RecursionError:
                        group.failed = "error"
                    groups.append((group, own))
                    leaves.extend(own)
                    return job
        if not self._needs_analysis(value):
            return None
        group = _Group()
        leaf = _Leaf(value, group, key_words=words)
        groups.append((group, [leaf]))
        leaves.append(leaf)
        return _Job("text", leaf, group)

    def _raw_json_is_clean(self, value: str) -> bool:
        """Whether no trigger, no key to drop and no PII-named key is in a JSON text (ASCII: one pass)."""
        if value.isascii():
            return not self._span_screen(value)
        lower = value.lower()
        return (
            not self._needs_analysis(value, lower)
            and not _contains_any(lower, self._drop_fragments)
            and (self._json_key_re is None or self._json_key_re.search(value) is None)
        )

    def _tree(
        self,
        node: Any,
        group: _Group,
        own: list[_Leaf],
        job: _Job,
        depth: int,
        *,
        structural: bool = False,
        words: frozenset[str] = frozenset(),
    ) -> Any:
        """``node`` with string leaves to analyze replaced by :class:`_Leaf`. ``structural``: ``node`` is the root of a
        GenAI content attribute or a ``parts`` list, whose objects (messages, parts, tool definitions) keep their
        structural fields (:data:`STRUCTURAL_KEYS`) unscanned. ``words``: the words of the key holding ``node``."""
        if isinstance(node, str):
            if not node:
                return node
            if depth < _JSON_DEPTH and _looks_like_json(node):
                try:
                    inner = json.loads(node)
                except (ValueError, RecursionError):
                    inner = None
                if isinstance(inner, (dict, list)):
                    return _Nested(self._tree(inner, group, own, job, depth + 1), node)
            if not self._needs_analysis(node):
                return node
            leaf = _Leaf(node, group, key_words=words)
            own.append(leaf)
            return leaf
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for k, v in node.items():
                info = self._key_info(k)
                if info.rule == _DROP:
                    out[k] = _DROPPED
                    job.dropped += 1
                elif structural and k in STRUCTURAL_KEYS and isinstance(v, str):
                    out[k] = v
                elif info.rule == _BY_KEY and not isinstance(v, Mapping):
                    assert info.entity is not None
                    if isinstance(v, list):
                        out[k] = [self._whole(item, info.entity) or item for item in v]
                    else:
                        out[k] = self._whole(v, info.entity) or v
                else:
                    out[k] = self._tree(
                        v, group, own, job, depth, structural=structural and k == "parts", words=info.words
                    )
            return out
        if isinstance(node, (list, tuple)):
            return [self._tree(v, group, own, job, depth, structural=structural, words=words) for v in node]
        return node

    # --- analysis ---

    def _analyze_groups(self, groups: Sequence[tuple[_Group, list[_Leaf]]]) -> None:
        for group, leaves in groups:
            if group.failed or not leaves:
                continue
            deadline = time.perf_counter() + self._budget_s
            try:
                if self._closed:
                    if any(self._needs_analysis(leaf.text) for leaf in leaves):
                        raise RuntimeError("redactor is shut down")
                    continue
                for leaf in leaves:
                    leaf.detections.extend(self._structured(leaf.text, deadline, leaf.key_words))
            except (_BudgetExceeded, TimeoutError) as exc:
                group.failed = "timeout"
                self._log_failure(exc)
            except Exception as exc:
                group.failed = "error"
                self._log_failure(exc)

    def _structured(self, text: str, deadline: float, key_words: frozenset[str] = frozenset()) -> list[Detection]:
        out: list[Detection] = []
        started = time.perf_counter()
        fired = self._fired(text)
        deadline += time.perf_counter() - started  # RE2 runs in linear time: the budget is for the recognizers
        for r in fired:
            if r.patterns is not None:
                found = self._run_patterns(r, text, deadline)
            elif r.entity == PHONE_NUMBER and isinstance(r.recognizer, PhoneRecognizer):
                found = self._run_phone(r, text, out)
            else:
                found = [
                    Detection(r.entity, res.start, res.end, res.score)
                    for res in r.recognizer.analyze(text, [r.entity], None)  # type: ignore[arg-type]  # no NLP engine
                    if res.entity_type == r.entity
                ]
            for det in found:
                score = det.score
                if (
                    r.context
                    and score < 1.0
                    and (not key_words.isdisjoint(r.context) or self._has_context(text, det.start, r.context))
                ):
                    score = min(1.0, max(score + _CONTEXT_FACTOR, _CONTEXT_MIN_SCORE))
                if r.negative and self._names_something_else(text, det.start, r.negative):
                    score -= _CONTEXT_FACTOR
                if score >= self._threshold and score > 0:
                    out.append(det if score == det.score else Detection(det.entity_type, det.start, det.end, score))
            if time.perf_counter() > deadline:
                raise _BudgetExceeded
        return out

    def _run_patterns(self, r: _Recognizer, text: str, deadline: float) -> list[Detection]:
        """Presidio's PatternRecognizer logic (score, validate, invalidate), with a fail-closed regex time-out."""
        recognizer: Any = r.recognizer
        keep_match = getattr(recognizer, "keep_match", None)
        trim_start = getattr(recognizer, "trim_start", None)
        out: list[Detection] = []
        skipped = r.skipped(text)
        stretches = _runs_around(text, r.anchor) if r.anchor is not None else [(0, len(text))]
        for i, (compiled, base_score) in enumerate(r.patterns or ()):
            if i in skipped:
                continue
            for match in _finditer(compiled, text, stretches, deadline):
                start, end = match.span()
                if trim_start is not None:
                    start = trim_start(text, start, end)
                if start == end:
                    continue
                matched = text[start:end]
                score = base_score
                valid = recognizer.validate_result(matched)
                if valid is not None:
                    score = EntityRecognizer.MAX_SCORE if valid else EntityRecognizer.MIN_SCORE
                if recognizer.invalidate_result(matched):
                    score = EntityRecognizer.MIN_SCORE
                if score > EntityRecognizer.MIN_SCORE and (keep_match is None or keep_match(text, start, end)):
                    out.append(Detection(r.entity, start, end, score))
        return out

    @staticmethod
    def _run_phone(r: _Recognizer, text: str, found: list[Detection]) -> list[Detection]:
        """Presidio's PhoneRecognizer on windows around the runs of digits (the same matches, far less text).

        A run inside an identifier already found (a card, an IBAN, an SSN, a key) is skipped: a phone number there
        would be merged into that detection and typed by it anyway. So is a run that is a date and nothing more, as
        the digits trigger skips it (Presidio reads some ``DD-MM-YYYY`` dates as phone numbers).
        """
        windows: list[list[int]] = []
        for match in _PHONE_RUN.finditer(text):
            if any(d.start <= match.start() and match.end() <= d.end for d in found):
                continue
            if DigitsTrigger.DATE.fullmatch(text, match.start(), match.end()) is not None:
                continue
            start, end = max(0, match.start() - _PHONE_LEFT), min(len(text), match.end() + _PHONE_RIGHT)
            if windows and start <= windows[-1][1]:
                windows[-1][1] = end
            else:
                windows.append([start, end])
        out: list[Detection] = []
        seen: set[tuple[int, int]] = set()
        for start, end in windows:
            for res in r.recognizer.analyze(text[start:end], [r.entity], None):  # type: ignore[arg-type]
                span = (res.start + start, res.end + start)
                if span not in seen:
                    seen.add(span)
                    out.append(Detection(r.entity, span[0], span[1], res.score))
        return out

    @staticmethod
    def _names_something_else(text: str, start: int, words: frozenset[str]) -> bool:
        """Whether the word right before a match (past ``no``, ``number``, ``#``, ``is``, ...) is a negative context
        word: "order 4155550132" and "PO no. 5512093348" name what the number is; "sent the receipt to 415 555 0132"
        does not."""
        before = _WORD.findall(text[max(0, start - 60) : start].lower())
        while before and before[-1] in _FILLER_WORDS:
            before.pop()
        return bool(before) and (before[-1] in words or before[-1].rstrip("s") in words)

    @staticmethod
    def _has_context(text: str, start: int, words: frozenset[str], window: int = 0) -> bool:
        before = _WORD.findall(text[max(0, start - 120) : start].lower())[-(window or _CONTEXT_WORDS) :]
        return any(w in words or w.rstrip("s") in words for w in before)

    def _ner(self, leaves: Sequence[_Leaf]) -> None:
        """Add the NER detections of every candidate leaf (one batch through the NER pass)."""
        ner = self._ner_pass
        if ner is None:
            return
        todo = [leaf for leaf in leaves if not leaf.group.failed and NER_CANDIDATE.search(leaf.text)]
        if not todo:
            return
        for leaf, found in zip(todo, ner.detect([leaf.text for leaf in todo], self._budget_s), strict=True):
            if isinstance(found, str):
                leaf.group.failed = found
            else:
                leaf.detections.extend(ner.by_key(leaf.text, leaf.key_words, found))

    # --- rewriting ---

    @staticmethod
    def _resolve(text: str, detections: list[Detection]) -> list[Detection]:
        """Non-overlapping detections, in text order, covering every character any detection covered.

        The best detection (priority, then score, then length) keeps its span; one that overlaps spans already kept
        keeps only its uncovered pieces that hold a letter or digit, each with its own type.
        """
        if len(detections) <= 1:
            return list(detections)
        ranked = sorted(
            detections, key=lambda d: (-_PRIORITY.get(d.entity_type, 0), -d.score, d.start - d.end, d.start)
        )
        kept: list[Detection] = []
        for det in ranked:
            pieces = [(det.start, det.end)]
            for other in kept:
                if other.start >= det.end or other.end <= det.start:
                    continue
                rest: list[tuple[int, int]] = []
                for start, end in pieces:
                    if other.end <= start or other.start >= end:
                        rest.append((start, end))
                        continue
                    if start < other.start:
                        rest.append((start, other.start))
                    if other.end < end:
                        rest.append((other.end, end))
                pieces = rest
            for start, end in pieces:
                if start == det.start and end == det.end:
                    kept.append(det)
                elif any(c.isalnum() for c in text[start:end]):
                    kept.append(Detection(det.entity_type, start, end, det.score))
        return sorted(kept, key=lambda d: d.start)

    def _render_leaf(self, leaf: _Leaf, tally: _Tally) -> str:
        """The redacted text of a leaf whose group did not fail (a failed one is rendered by its owner)."""
        if leaf.group.failed:
            tally.fail(leaf.group.failed)
            return FAILED_MARKER
        merged = self._resolve(leaf.text, leaf.detections)
        if not merged:
            return leaf.text
        text = leaf.text
        parts: list[str] = []
        pos = 0
        for det in merged:
            parts.append(text[pos : det.start])
            parts.append(self._operate(det.entity_type, text[det.start : det.end]))
            pos = det.end
        parts.append(text[pos:])
        tally.add(det.entity_type for det in merged)
        return "".join(parts)

    def _render_tree(self, node: Any, tally: _Tally) -> tuple[Any, bool]:
        if isinstance(node, _Leaf):
            text = self._render_leaf(node, tally)
            return text, text is not node.text
        if node is _DROPPED:
            return DROPPED_MARKER, True
        if isinstance(node, dict):
            changed = False
            out: dict[str, Any] = {}
            for k, v in node.items():
                out[k], c = self._render_tree(v, tally)
                changed = changed or c
            return out, changed
        if isinstance(node, list):
            items = []
            changed = False
            for v in node:
                item, c = self._render_tree(v, tally)
                items.append(item)
                changed = changed or c
            return items, changed
        if isinstance(node, _Nested):
            inner, changed = self._render_tree(node.tree, tally)
            return (_dumps(inner) if changed else node.original), changed
        return node, False

    def _render_map(self, plan: _MapPlan, tally: _Tally) -> dict[str, Any]:
        out = dict(plan.source)
        for key, job in plan.jobs.items():
            kind = job.kind
            if kind == "drop":
                del out[key]
                tally.add((DROPPED_KEY,))
            elif kind == "text":
                out[key] = self._render_leaf(job.value, tally)
            elif kind == "array":
                items = [self._render_leaf(v, tally) if isinstance(v, _Leaf) else v for v in job.value]
                out[key] = items if job.original == "list" else tuple(items)
            else:  # json, tree
                assert job.group is not None
                if job.group.failed:
                    tally.fail(job.group.failed)
                    out[key] = FAILED_MARKER
                    continue
                tally.add((DROPPED_KEY,) * job.dropped)
                tree, changed = self._render_tree(job.value, tally)
                if kind == "tree":
                    out[key] = tree if changed else plan.source[key]
                else:
                    out[key] = _dumps(tree) if changed else job.original
        if plan.keys:
            renamed = {key: self._render_leaf(leaf, tally) for key, leaf in plan.keys.items()}
            out = {renamed.get(key, key): value for key, value in out.items()}
        return out

    def _collect(self, attributes: Mapping[str, Any], texts: list[str]) -> bool:
        """Add the strings planning would look at to ``texts``; False when a key alone says there is work to do."""
        cache = self._key_cache
        for key, value in attributes.items():
            info = cache.get(key)
            if info is None:
                info = self._key_info(key)
            rule = info.rule
            if rule == _NEVER:
                continue
            if rule != _SCAN or info.dirty:
                return False
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, (tuple, list, Mapping)) and not self._collect_tree(value, texts):
                return False
        return True

    def _collect_tree(self, value: Any, texts: list[str]) -> bool:
        """Add the strings of an array or kvlist value, at any depth, to ``texts``; False when a nested key is one
        to drop or to redact by key (the tree walk must see it), or the value is too deep to walk here."""
        stack: list[tuple[Any, int]] = [(value, 0)]
        cache = self._key_cache
        while stack:
            node, depth = stack.pop()
            if isinstance(node, str):
                texts.append(node)
            elif isinstance(node, (list, tuple, Mapping)):
                if depth > _COLLECT_DEPTH:
                    return False
                if isinstance(node, Mapping):
                    for key, child in node.items():
                        info = cache.get(key) if isinstance(key, str) else None
                        if info is None:
                            info = self._key_info(str(key))
                        if info.rule in (_DROP, _BY_KEY) or info.dirty:
                            return False
                        stack.append((child, depth + 1))
                else:
                    stack.extend((child, depth + 1) for child in node)
        return True

    def _is_clean(self, span: SpanView) -> bool:
        """Whether planning would find nothing to do in ``span``, judged from all its values at once.

        The values are joined with newlines and screened in one pass: every trigger that finds a value finds the joined
        text (none is anchored, and a run of digits across two values only adds a candidate), so a clean verdict is
        the verdict value by value. JSON with ``\\u``/``\\/`` escapes, and keys to drop, go the long way.
        The resource is not looked at here (see :meth:`_redacted_resource`).
        """
        if self._name_needs_analysis(span.name):
            return False
        texts: list[str] = []
        if not self._collect(span.attributes, texts):
            return False
        for event in span.events:
            if self._name_needs_analysis(event.name) or not self._collect(event.attributes, texts):
                return False
        if span.status_message:
            texts.append(span.status_message)
        return self._clean_texts(texts)

    def _clean_texts(self, texts: list[str]) -> bool:
        if not texts:
            return True
        joined = "\n".join(texts)
        if "\\u" in joined or "\\/" in joined:
            return False
        if joined.isascii():
            return not self._span_screen(joined)
        if self._drop_fragments and _contains_any(joined.lower(), self._drop_fragments):
            return False
        if self._json_key_re is not None and self._json_key_re.search(joined) is not None:
            return False
        return not self._needs_analysis(joined)

    def _redact_spans(self, spans: Sequence[SpanView]) -> list[SpanView]:
        resources: dict[int, tuple[dict[str, Any], _Tally] | None] = {}
        if self.config.scan_resource:
            for span in spans:
                if span.resource and id(span.resource) not in resources:
                    resources[id(span.resource)] = self._redacted_resource(span.resource)
        if not self._use_ner:
            clean = [self._is_clean(span) for span in spans]
            if any(clean):
                # Only the spans with candidates are planned; the clean ones are handed back as they are (with their
                # resource's redactions, if it had any).
                dirty = [span for span, ok in zip(spans, clean, strict=True) if not ok]
                redacted = iter(self._redact_spans_planned(dirty, resources) if dirty else ())
                out: list[SpanView] = []
                tally = _Tally()
                values = 0
                for span, ok in zip(spans, clean, strict=True):
                    if not ok:
                        out.append(next(redacted))
                        continue
                    values += _value_count(span)
                    done = resources.get(id(span.resource)) if span.resource else None
                    out.append(span if done is None else self._with_resource(span, *done, tally))
                self._record(tally, values)
                return out
        return self._redact_spans_planned(spans, resources)

    def _redacted_resource(self, resource: Mapping[str, Any]) -> tuple[dict[str, Any], _Tally] | None:
        """A resource redacted, with its redactions; None when nothing in it changes. Results are kept by content:
        a process or a fleet sends the same few resources again and again."""
        try:
            key: Any = tuple(sorted(resource.items()))
            hit = self._resource_cache.get(key, _MISS)
        except TypeError:  # unhashable values (OTLP kvlists)
            key, hit = None, _MISS
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        plans, groups, leaves = self._plan_maps([resource])
        self._analyze_groups(groups)
        self._ner(leaves)
        tally = _Tally()
        out = self._render_map(plans[0], tally)
        result = (out, tally) if tally.count else None
        if key is not None and not tally.failures:
            if len(self._resource_cache) >= _RESOURCE_CACHE_SIZE:
                self._resource_cache.clear()
            self._resource_cache[key] = result
        return result

    @staticmethod
    def _with_resource(span: SpanView, resource: dict[str, Any], lost: _Tally, total: _Tally) -> SpanView:
        """A clean span under its redacted resource, marked with what the resource lost."""
        attributes = dict(span.attributes)
        _mark(attributes, lost)
        total.count += lost.count
        total.entities.extend(lost.entities)
        total.failures.extend(lost.failures)
        return dataclass_replace(span, attributes=attributes, resource=resource)

    def _redact_spans_planned(
        self, spans: Sequence[SpanView], resources: Mapping[int, tuple[dict[str, Any], _Tally] | None] = _NO_RESOURCES
    ) -> list[SpanView]:
        maps: list[Mapping[str, Any]] = []
        layout: list[tuple[int, int, int, int, list[int]]] = []  # per span: where its maps are (-1: none)
        for span in spans:
            attrs_at = len(maps)
            maps.append(span.attributes)
            for event in span.events:
                maps.append(event.attributes)
            status_at = -1
            if span.status_message:
                status_at = len(maps)
                maps.append({"": span.status_message})
            name_at = -1
            if self._name_needs_analysis(span.name):
                name_at = len(maps)
                maps.append({"": span.name})
            event_names: list[int] = []
            for event in span.events:
                if self._name_needs_analysis(event.name):
                    event_names.append(len(maps))
                    maps.append({"": event.name})
                else:
                    event_names.append(-1)
            layout.append((attrs_at, len(span.events), status_at, name_at, event_names))
        plans, groups, leaves = self._plan_maps(maps)
        self._analyze_groups(groups)
        self._hits.clear()  # the values are analyzed: their triggers are not needed any more
        self._ner(leaves)
        out: list[SpanView] = []
        total = _Tally()
        values = 0
        for span, (attrs_at, _n_events, status_at, name_at, event_names) in zip(spans, layout, strict=True):
            tally = _Tally()
            attributes = self._render_map(plans[attrs_at], tally)
            events = [
                EventView(
                    self._render_map(plans[event_names[i]], tally)[""] if event_names[i] >= 0 else e.name,
                    e.time_unix_nano,
                    self._render_map(plans[attrs_at + 1 + i], tally),
                )
                for i, e in enumerate(span.events)
            ]
            done = resources.get(id(span.resource)) if span.resource else None
            if done is not None:
                resource = done[0]
                tally.count += done[1].count
                tally.entities.extend(done[1].entities)
                tally.failures.extend(done[1].failures)
            else:
                resource = span.resource
            status_message = self._render_map(plans[status_at], tally)[""] if status_at >= 0 else span.status_message
            name = self._render_map(plans[name_at], tally)[""] if name_at >= 0 else span.name
            if tally.count:
                _mark(attributes, tally)
            values += _value_count(span)
            total.count += tally.count
            total.entities.extend(tally.entities)
            total.failures.extend(tally.failures)
            out.append(
                dataclass_replace(
                    span,
                    name=name,
                    attributes=attributes,
                    events=events,
                    resource=resource,
                    status_message=status_message,
                )
            )
        self._record(total, values)
        return out

    # --- failures and accounting ---

    def _fail_map(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Every value failed closed, except never-scanned ones; always-dropped keys removed, keys that need
        redacting replaced."""
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            info = self._key_info(key)
            if info.rule == _DROP:
                continue
            out[FAILED_MARKER if info.dirty else key] = value if info.rule == _NEVER else FAILED_MARKER
        return out

    def _failed_span(self, span: SpanView) -> SpanView:
        fail_map = self._fail_map
        attributes = fail_map(span.attributes)
        attributes[SPANGUARD_REDACTION_COUNT] = 1
        attributes[SPANGUARD_REDACTION_ENTITIES] = (REDACTION_FAILED,)

        def name(text: str) -> str:
            return FAILED_MARKER if self._name_needs_analysis(text) else text

        return dataclass_replace(
            span,
            name=name(span.name),
            attributes=attributes,
            events=[EventView(name(e.name), e.time_unix_nano, fail_map(e.attributes)) for e in span.events],
            resource=fail_map(span.resource) if self.config.scan_resource else dict(span.resource),
            status_message=FAILED_MARKER if span.status_message else "",
        )

    def _internal_error(self, exc: BaseException) -> None:
        self._log_failure(exc)
        with self._stats_lock:
            self._failed += 1
        if self._failed_counter is not None:
            self._failed_counter.add(1, {"reason": "error"})

    def _log_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_failure_log >= 60.0:
            self._last_failure_log = now
            logger.warning("redaction of a value failed (%s); it was replaced by %s", type(exc).__name__, FAILED_MARKER)
        else:
            logger.debug("redaction of a value failed (%s)", type(exc).__name__)

    def _record(self, tally: _Tally, values: int) -> None:
        counts = Counter(e for e in tally.entities if e != REDACTION_FAILED)
        with self._stats_lock:
            self._redacted.update(counts)
            self._failed += len(tally.failures)
            self._values += values
        if self._redacted_counter is not None:
            for entity, n in counts.items():
                self._redacted_counter.add(n, {"entity": entity})
        if self._failed_counter is not None:
            for reason in tally.failures:
                self._failed_counter.add(1, {"reason": reason})


# --- helpers --------------------------------------------------------------------------------------------------------


def _mark(attributes: dict[str, Any], tally: _Tally) -> None:
    previous = attributes.get(SPANGUARD_REDACTION_COUNT)
    before = previous if isinstance(previous, int) and not isinstance(previous, bool) else 0
    old = attributes.get(SPANGUARD_REDACTION_ENTITIES)
    old_types = {t for t in old if isinstance(t, str)} if isinstance(old, (tuple, list)) else set()
    attributes[SPANGUARD_REDACTION_COUNT] = before + tally.count
    attributes[SPANGUARD_REDACTION_ENTITIES] = tuple(sorted(old_types | set(tally.entities)))


def _value_in_key(rest: str, entity: str) -> bool:
    """Whether what follows a key's naming word is a value written into the key: it holds a digit or an ``@``, or,
    for a name, a capital, a space or a letter outside ASCII (``user.full_name.Ana Lima``; not ``.first``)."""
    if any(c.isdigit() or c == "@" for c in rest):
        return True
    return entity == PERSON and any(c.isupper() or c.isspace() or (c.isalpha() and not c.isascii()) for c in rest)


def _pii_entity(name: str, entities: frozenset[str]) -> str | None:
    return name if name in entities else None


_QUERY_PARAM: Final = re.compile(r"[^&;]+")


def _query_values(url: str, *, whole_is_query: bool) -> list[Detection]:
    """The query-string values of a URL (or of a bare query string), as ``URL_QUERY`` detections."""
    if whole_is_query:
        start = 1 if url.startswith("?") else 0
    else:
        start = url.find("?") + 1
        if start == 0:
            return []
    end = url.find("#", start)
    if end < 0:
        end = len(url)
    out = []
    for match in _QUERY_PARAM.finditer(url, start, end):
        eq = url.find("=", match.start(), match.end())
        value_start = match.start() if eq < 0 else eq + 1
        if match.end() > value_start and not REDACTED.fullmatch(url, value_start, match.end()):
            out.append(Detection(URL_QUERY, value_start, match.end(), 1.0))
    return out


def _value_count(span: SpanView) -> int:
    return len(span.attributes) + sum(len(e.attributes) for e in span.events)


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    for needle in needles:
        if needle in text:
            return True
    return False


def _looks_like_json(value: str) -> bool:
    first = value[0]
    if first.isspace():
        value = value.strip()
        if not value:
            return False
        first = value[0]
    if first == "{":
        return value.rstrip()[-1:] == "}"
    if first == "[":
        return value.rstrip()[-1:] == "]"
    return False


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_default_lock = threading.Lock()
_default: Redactor | None = None


def default_redactor() -> Redactor:
    """One process-wide redactor with the default settings minus names and places (which need a NER model), built on
    first use: for content that reaches a person outside a span pipeline (approval requests, dataset exports,
    escalated eval cases)."""
    global _default
    with _default_lock:
        if _default is None:
            entities = tuple(e for e in DEFAULT_ENTITIES if e not in NER_ENTITIES)
            # Off the span path a person waits anyway: a budget that a busy machine's first call does not exhaust.
            _default = Redactor(RedactionConfig(entities=entities, time_budget_ms=2000.0))
        return _default

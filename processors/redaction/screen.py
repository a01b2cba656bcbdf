"""The trigger screen: the cheap tests that decide which recognizers run on a text, screened in one RE2 pass.

How the screen works and why it is exact: docs/redaction.md ("How it works": Screen).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import re2
import regex

__all__ = [
    "ANY_TEXT",
    "DIGITS",
    "ROOMY",
    "WARM_UP_TEXT",
    "AsciiScreen",
    "DigitsTrigger",
    "RegexTrigger",
    "SeparateScreen",
    "SeparateTrigger",
    "Trigger",
    "TriggerFunction",
    "TriggerSets",
    "re2_alternatives",
]

TriggerFunction = Callable[[str, str], bool]
"""A trigger: called with a text and its lower-cased form, true when a recognizer may find something in it."""


class Trigger:
    """A cheap test that every text a recognizer can match passes.

    When ``literals`` or ``folded`` are given, one of ``literals`` must be in the text or one of ``folded`` in the
    lower-cased text. Then, when any patterns are given, one of ``patterns`` must find the text or one of
    ``folded_patterns`` the lower-cased text. Substring tests run at C speed, and the patterns (:mod:`re`) start with
    a literal character, which Python's ``re`` scans for quickly.
    """

    __slots__ = ("folded", "folded_patterns", "literals", "patterns")

    def __init__(
        self,
        *,
        literals: tuple[str, ...] = (),
        folded: tuple[str, ...] = (),
        patterns: tuple[str, ...] = (),
        folded_patterns: tuple[str, ...] = (),
        flags: int = 0,
    ) -> None:
        """``flags``: :mod:`re` flags of the patterns (``re.DOTALL | re.MULTILINE`` for a recognizer that runs with
        them: a trigger must find every text its recognizer can match)."""
        if not (literals or folded or patterns or folded_patterns):
            raise ValueError("a trigger needs literals or patterns")
        self.literals = literals
        self.folded = folded
        self.patterns = tuple(re.compile(p, flags) for p in patterns)
        self.folded_patterns = tuple(re.compile(p, flags) for p in folded_patterns)

    def __call__(self, text: str, lower: str) -> bool:
        """Whether ``text`` (``lower`` is ``text.lower()``) may hold a match."""
        if self.literals or self.folded:
            for literal in self.literals:
                if literal in text:
                    break
            else:
                for literal in self.folded:
                    if literal in lower:
                        break
                else:
                    return False
        if not (self.patterns or self.folded_patterns):
            return True
        for pattern in self.patterns:
            if pattern.search(text) is not None:
                return True
        for pattern in self.folded_patterns:
            if pattern.search(lower) is not None:
                return True
        return False


class SeparateScreen:
    """The RE2 automaton that the :class:`SeparateTrigger` s of one set of recognizers share: a pass over an ASCII text
    finds which of them may match it, and each trigger then reads its own answer."""

    __slots__ = ("_last", "_lock", "_patterns", "_set")

    def __init__(self) -> None:
        self._patterns: list[bytes] = []
        self._set: re2.Set | None = None
        self._lock = threading.Lock()
        # The last text and its answer: the redactor asks every trigger about one text in a row. One tuple, replaced
        # whole, so threads that interleave only recompute.
        self._last: tuple[str | None, frozenset[int]] = (None, frozenset())

    def add(self, pattern: str) -> int:
        """Add ``pattern`` (RE2 syntax, ASCII) before the first look-up; its index in :meth:`hits`."""
        with self._lock:
            if self._set is not None:
                raise RuntimeError("the screen is already in use")
            self._patterns.append(pattern.encode("ascii"))
            return len(self._patterns) - 1

    def hits(self, text: str) -> frozenset[int]:
        """The indexes of the patterns that find ``text``, which must be ASCII."""
        last = self._last
        if last[0] is text:
            return last[1]
        found = frozenset(self._compiled().Match(text.encode("ascii")) or ())
        self._last = (text, found)
        return found

    def _compiled(self) -> re2.Set:
        with self._lock:
            if self._set is None:
                options = re2.Options()
                options.log_errors = False
                rset = re2.Set.SearchSet(options)
                for pattern in self._patterns:
                    rset.Add(pattern)
                rset.Compile()
                self._set = rset
            return self._set


class SeparateTrigger:
    """A trigger screened outside the redactor's combined RE2 passes, for a pattern whose counted runs would swell them.

    The redactor screens every :class:`Trigger` it can in a few combined RE2 passes; counted runs there (40 key
    characters, 32 hex digits) multiply the states of the other patterns of their pass (a window such as
    ``[^"]{0,64}`` most), until RE2's DFA runs out of memory and falls back to a slow NFA. Not being a
    :class:`Trigger`, this one is called after those passes instead, and the separate triggers of one
    :func:`secret_recognizers` call share one more pass (:class:`SeparateScreen`).
    """

    __slots__ = ("_folded", "_index", "_screen", "_text", "re2_pattern")

    def __init__(self, pattern: str, *, folded: bool = False, screen: SeparateScreen | None = None) -> None:
        """``folded``: ``pattern`` is for the lower-cased text (RE2 reads ASCII text case-insensitively instead)."""
        self._screen = screen if screen is not None else SeparateScreen()
        self.re2_pattern = f"(?i:{pattern})" if folded else pattern
        """The RE2 pattern (ASCII text) that finds what this trigger finds, for a screen with room for it."""
        self._index = self._screen.add(self.re2_pattern)
        self._text = re.compile(pattern)
        self._folded = folded

    def __call__(self, text: str, lower: str) -> bool:
        """Whether ``text`` (``lower`` is ``text.lower()``) may hold a match."""
        if text.isascii():
            return self._index in self._screen.hits(text)
        return self._text.search(lower if self._folded else text) is not None


class DigitsTrigger:
    """Seven digits or more, separated by at most three of ``space ( ) . - /``: any phone, card or SSN has them.

    ISO and US dates (``2024-08-06``, ``08/06/2024``) have eight digits but are skipped, since they are everywhere.
    """

    _RUN: Final = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6}")
    DATE: Final = re.compile(r"(?:\d{4}([-./])\d\d\1\d\d|\d\d([-./])\d\d\2\d{4})(?![\d])")

    def __call__(self, text: str, lower: str) -> bool:
        for match in self._RUN.finditer(text):
            if self.DATE.match(text, match.start()) is None:
                return True
        return False


DIGITS: Final = DigitsTrigger()
_DATE_ASCII: Final = re.compile(DigitsTrigger.DATE.pattern.encode("ascii"))  # bytes: \d is [0-9]
# What Python's ``\s`` matches in ASCII text (RE2's ``\s`` lacks \v and \x1c-\x1f).
_ASCII_SPACE: Final = r"\t\n\x0b\x0c\r\x1c-\x1f "
# Regex syntax whose meaning differs between Python's re and RE2, or that RE2 lacks: such patterns stay in Python.
_QUIET: Final = re2.Options()
_QUIET.log_errors = False
# The screens' combined automata: RE2's default 8 MiB lets a DFA of all the triggers' patterns run out and fall back
# to the NFA (correct, but tens of times slower); memory is taken only as the DFA's states are built.
ROOMY: Final = re2.Options()
ROOMY.log_errors = False
ROOMY.max_mem = 64 << 20
_NOT_PORTABLE: Final = re.compile(r"\\[sSbBAZ0-9]|\(\?[=!<P]")


# An alternative that is a literal (re2.escape'd, maybe case-folded): no class, group or repeat of its own.
_LITERAL_ALTERNATIVE: Final = re.compile(r"(?:\(\?i:)?(?:\\.|[A-Za-z0-9_])+\)?")
_LITERAL_TRIE: Final = re.compile(rf"{_LITERAL_ALTERNATIVE.pattern}(?:\|{_LITERAL_ALTERNATIVE.pattern})*")


class AsciiScreen:
    """Every trigger of a redactor as one RE2 pass over ASCII text, with the same answer as trying them one by one.

    Python's ``re`` tries each trigger's pattern at every position of a value; content is mostly clean, so that scan is
    most of the cost of redacting a span. RE2 runs all of them as one automaton (an RE2 set: which of them match, in
    one pass). The digits trigger keeps its exact meaning (RE2's leftmost-first matches are Python's, and each run is
    checked against the date pattern as before) when it is the only one found; a trigger with literals is found by
    its literals (a superset: its patterns then decide in the full analysis); a trigger this class cannot express
    runs in Python after the pass.
    """

    def __init__(
        self, triggers: Sequence[TriggerFunction], folded: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> None:
        """``folded``: more literals that make the screen fire, found case-insensitively (ASCII ones only);
        ``extra``: more RE2 patterns that make it fire."""
        alternatives: list[str] = [f"(?i:{re2.escape(lit)})" for lit in folded if lit.isascii()]
        alternatives.extend(f"(?:{pattern})" for pattern in extra)
        self._python: list[TriggerFunction] = []
        digits = False
        for trigger in triggers:
            if trigger is DIGITS:
                digits = True
                continue
            portable = re2_alternatives(trigger)
            if portable is None:
                self._python.append(trigger)
            else:
                alternatives.extend(portable)
        # Literals make one pattern of the set (a trie), each pattern with classes and repeats one more.
        light = [a for a in alternatives if _LITERAL_ALTERNATIVE.fullmatch(a)]
        heavy = [a for a in alternatives if not _LITERAL_ALTERNATIVE.fullmatch(a)]
        patterns = ([_DIGIT_RUN] if digits else []) + (["|".join(light)] if light else []) + heavy
        self._digits = 0 if digits else -1
        self.patterns: tuple[str, ...] = tuple(patterns)
        """The RE2 patterns of the set, in order (the digit run first, when there is one)."""
        extras = {f"(?:{pattern})" for pattern in extra}
        # The extra patterns (a redactor's PII-named JSON keys: many words, then any key text) are each a set's worth.
        self._set = _re2_set(patterns, [i for i, pattern in enumerate(patterns) if pattern in extras])

    def __call__(self, text: str) -> bool:
        """Whether some trigger finds ``text``, which must be ASCII."""
        data = text.encode("ascii")
        hits = self._set.match(data) if self._set is not None else None
        if hits and (len(hits) > 1 or hits[0] != self._digits or _digit_run_outside_a_date(data)):
            return True
        if not self._python:
            return False
        lower = text.lower()
        return any(trigger(text, lower) for trigger in self._python)


# Printable ASCII in the shapes of telemetry (words, JSON, ids, numbers, URLs), for the screens' warm-up.
WARM_UP_TEXT: Final = " ".join(
    [
        "".join(chr(c) for c in range(32, 127)),
        '{"role": "user", "parts": [{"type": "text", "content": "Hello, where is my order 2024-08-06?"}]}',
        "GET https://api.example.com/v1/items?page=2&limit=50 HTTP/1.1 200 OK 12.5 ms",
        "Traceback (most recent call last): ValueError: invalid literal for int() with base 10: 'abc'",
        "The quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX, 0123456789 _-./:@#$%&*+=",
    ]
    * 4
)
_DIGIT_RUN: Final = rf"[0-9](?:[{_ASCII_SPACE}().\-/]{{0,3}}[0-9]){{6}}"
_DIGIT_RUN_RE2: Final = re2.compile(_DIGIT_RUN.encode("ascii"), ROOMY)
# google-re2's compiled pattern, called without the wrapper's per-match Python work (which costs more than the scan).
_DIGIT_RUN_RAW: Final = getattr(_DIGIT_RUN_RE2, "_regexp", None)
_UNANCHORED: Final = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def _digit_run_outside_a_date(data: bytes) -> bool:
    """The digits trigger on ASCII bytes: a run of seven digits (leftmost-first, as ``re.finditer``) not at a date."""
    if _DIGIT_RUN_RAW is None or _UNANCHORED is None:
        return any(_DATE_ASCII.match(data, m.start()) is None for m in _DIGIT_RUN_RE2.finditer(data))
    pos, end = 0, len(data)
    while True:
        (start, stop), *_ = _DIGIT_RUN_RAW.Match(_UNANCHORED, data, pos, end)
        if start < 0:
            return False
        if _DATE_ASCII.match(data, start) is None:
            return True
        pos = stop  # a run has seven digits: never empty


# A class, an escape or a dot under a repeat: the pattern can be part-way through a match at many places of a text.
_COUNTER: Final = re.compile(r"(?:\]|\\[dDwWsS]|\.)(?:\{\d|[*+])")
_COUNTERS_PER_SET: Final = 8


def _partition(patterns: Sequence[str], alone: Sequence[int] = ()) -> list[list[int]]:
    """The patterns' indexes in groups, one RE2 set each, so that no set's DFA outgrows what fresh text can afford.

    An RE2 set's DFA state is every pattern's partial match at once, so patterns that can be part-way through a match
    almost anywhere (counted classes) multiply each other's states: on text it had not seen, one set of all the
    redactor's triggers built states for most of every pass (about 130 us per span of 400 bytes of values, against
    4 us once warm). A big literal alternation (a trie) and the patterns in ``alone`` get sets of their own, the
    counters come a few to a set, and the patterns that start with a word share one; each set costs a pass (about
    2 us warm), so there are few. Which set a pattern is in never changes an answer, only its cost.
    """
    solo: list[list[int]] = []
    counters: list[int] = []
    words: list[int] = []
    for index, pattern in enumerate(patterns):
        if index in alone or ("|" in pattern and _LITERAL_TRIE.fullmatch(pattern)):
            solo.append([index])
        elif _COUNTER.search(pattern):
            counters.append(index)
        else:
            words.append(index)
    grouped = [counters[i : i + _COUNTERS_PER_SET] for i in range(0, len(counters), _COUNTERS_PER_SET)]
    return [group for group in (*solo, *grouped, words) if group]


class _SetGroup:
    """Several RE2 sets that answer as one: the indexes (in the patterns given) of every pattern that finds a text."""

    __slots__ = ("_sets",)

    def __init__(self, patterns: Sequence[str], alone: Sequence[int] = ()) -> None:
        self._sets: list[tuple[Any, tuple[int, ...]]] = []
        for group in _partition(patterns, alone):
            rset = re2.Set.SearchSet(ROOMY)
            for index in group:
                rset.Add(patterns[index].encode("ascii"))
            rset.Compile()
            # The compiled set's own Match: the wrapper's per-call Python work is a good part of a short value's pass.
            self._sets.append((getattr(rset, "_set", rset), tuple(group)))

    def match(self, data: bytes) -> list[int]:
        """The indexes of the patterns that find ``data``."""
        found: list[int] = []
        for rset, indexes in self._sets:
            hits = rset.Match(data)
            if hits:
                found.extend(indexes[i] for i in hits)
        return found


def _re2_set(patterns: Sequence[str], alone: Sequence[int] = ()) -> _SetGroup | None:
    """``patterns`` (ASCII) compiled as RE2 sets that answer as one (``alone``: indexes that get a set of their own),
    or None when there are none."""
    return _SetGroup(patterns, alone) if patterns else None


class TriggerSets:
    """Which triggers find an ASCII text, in one RE2 pass (a set, as :class:`AsciiScreen`) instead of one Python test
    per trigger; the triggers RE2 cannot express, and the digits trigger's date rule, are checked in Python."""

    def __init__(self, triggers: Sequence[TriggerFunction]) -> None:
        self._python: list[TriggerFunction] = []
        patterns: list[str] = []
        self._owners: list[TriggerFunction] = []
        for trigger in triggers:
            if trigger is DIGITS:
                alternatives: list[str] | None = [_DIGIT_RUN]
            else:
                alternatives = re2_alternatives(trigger)
            if alternatives is None:
                self._python.append(trigger)
                continue
            patterns.append("|".join(alternatives))
            self._owners.append(trigger)
        self._set = _re2_set(patterns)

    def __call__(self, text: str) -> set[TriggerFunction]:
        """The triggers that (may) find ``text``, which must be ASCII."""
        data = text.encode("ascii")
        owners = self._owners
        hit = {owners[index] for index in (self._set.match(data) or ())} if self._set is not None else set()
        if DIGITS in hit and not _digit_run_outside_a_date(data):
            hit.discard(DIGITS)  # only dates
        lower: str | None = None
        for trigger in self._python:
            if lower is None:
                lower = text.lower()
            if trigger(text, lower):
                hit.add(trigger)
        return hit


def re2_alternatives(trigger: TriggerFunction) -> list[str] | None:
    """RE2 patterns that find every ASCII text the trigger finds, or None when they cannot be written."""
    if isinstance(trigger, SeparateTrigger):
        return [f"(?:{trigger.re2_pattern})"]
    if not isinstance(trigger, Trigger):
        return None
    if trigger.literals or trigger.folded:
        # A literal that is not ASCII is never in ASCII text (nor, folded, in its lower-case form).
        literals = [re2.escape(lit) for lit in trigger.literals if lit.isascii()]
        return literals + [f"(?i:{re2.escape(lit)})" for lit in trigger.folded if lit.isascii()]
    out: list[str] = []
    for compiled, folded in [(p, False) for p in trigger.patterns] + [(p, True) for p in trigger.folded_patterns]:
        if compiled.flags & (re.IGNORECASE | re.VERBOSE) or _NOT_PORTABLE.search(compiled.pattern):
            return None
        # Dot-all carries over; multi-line is always on, which only adds matches (what a trigger may do): ^ and $ then
        # also hold around the newlines the screens join values with, so a joined text is found whenever one of its
        # values is.
        flags = ("i" if folded else "") + ("s" if compiled.flags & re.DOTALL else "") + "m"
        pattern = f"(?{flags}:{compiled.pattern})"
        try:
            re2.compile(pattern, _QUIET)
        except re2.error:
            return None
        out.append(pattern)
    return out


class RegexTrigger:
    """The trigger of a user's pattern recognizer that came without one: its own patterns, with its own flags.

    Never screened by RE2 (its patterns are the ``regex`` module's), so it runs in Python on every text that reaches
    the recognizers; a :class:`Trigger` keeps clean traffic on the fast path.
    """

    __slots__ = ("_pattern",)

    def __init__(self, patterns: Sequence[str], flags: int = 0) -> None:
        # Multi-line whatever the recognizer's flags: the screens join a span's values with newlines, so ^ and $ must
        # hold there too (a superset of the recognizer's own matches, which is all a trigger has to be).
        self._pattern = regex.compile("|".join(f"(?:{p})" for p in patterns), flags=flags | regex.MULTILINE)

    def __call__(self, text: str, lower: str) -> bool:
        """Whether one of the patterns finds ``text``."""
        return self._pattern.search(text) is not None


def _any_text(text: str, lower: str) -> bool:
    return True


ANY_TEXT: Final[TriggerFunction] = _any_text
"""The trigger of a recognizer that came without one and has no patterns to make one of: every text."""

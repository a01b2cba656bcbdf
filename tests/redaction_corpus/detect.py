"""How a planted value's arrival is detected in what came out, and how what came out is turned into searchable text.

Everything that arrives (SDK ``ReadableSpan`` s, OTLP protobuf spans, review items and store rows) is flattened into
its strings: span and event names, attribute keys and values (each string of an array), status message, resource
attributes. A string that parses as JSON is also flattened into its keys and string leaves (recursively, so escapes
such as ``\\n`` or ``\\u00e9`` are undone), and a string holding ``%XX`` escapes is added URL-decoded too.

A value *arrives* when any of its distinctive fragments is found in that text:

* the search is on the *core* of both sides: case-folded, keeping only letters and digits (of any script), so a value
  that arrives re-spaced, re-dashed, re-cased, split over lines or JSON-escaped is still found;
* a value's fragments are every 8-character window of the core of each of its ``distinct`` parts (the whole value, or
  the random body of a token whose prefix is public, the password of a URL, ...), except windows that also occur in
  the fixed text around the values (phrasings, the scaffolding of the spans, redaction markers): so partial
  redaction that leaves 8 letters or digits of the value in a row is a leak, and a kept last-four is not;
* a part whose core is shorter than 8 (a PIN, a short password) must not appear as a whole, case-folded, with no
  letter or digit on either side.

Searches are per trace: each value is planted in one trace per location, and only that trace is searched for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .generator import Corpus, Planted

__all__ = ["WINDOW", "Detector", "core", "flatten", "otlp_span_strings", "readable_span_strings"]

WINDOW = 8
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def core(text: str) -> str:
    """Case-folded letters and digits of ``text``, in order."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


# An identifier the store or the OTLP path made (a trace, span or item id, a UUID): random hex, never content. Left
# out of the texts searched for planted values, where its 8-character windows of digits matched a planted IBAN's
# or card's by chance once the whole store was joined into one text.
GENERATED_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# Only keys the system fills: never user_id or conversation_id, where the corpus plants values (hex secrets too).
GENERATED_KEYS = frozenset({"id", "trace_id", "span_id", "parent_span_id", "item_id", "session_item_id", "follows_id"})


def is_generated_id(key: str, value: Any) -> bool:
    """Whether ``value`` under ``key`` is an id the system generated (see :data:`GENERATED_ID`)."""
    return key in GENERATED_KEYS and isinstance(value, str) and GENERATED_ID.fullmatch(value) is not None


def flatten(value: Any, out: list[str], depth: int = 0) -> None:
    """Append every string in ``value`` (and, for JSON strings, their keys and leaves) to ``out``; generated ids
    under id keys are left out."""
    if isinstance(value, str):
        out.append(value)
        if _ESCAPE.search(value):
            out.append(unquote(value))
        stripped = value.strip()
        if depth < 6 and stripped[:1] in "[{" and stripped[-1:] in "]}":
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return
            flatten(parsed, out, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            flatten(str(key), out, depth)
            if not is_generated_id(str(key), item):
                flatten(item, out, depth)
    elif isinstance(value, (list, tuple)):
        for item in value:
            flatten(item, out, depth)
    elif isinstance(value, bytes):
        out.append(value.decode("utf-8", "replace"))


def readable_span_strings(span: Any, *, resource: bool = True) -> list[str]:
    """The strings of an SDK span (``ReadableSpan`` or a live ``Span``): name, attributes, events, status, resource."""
    out: list[str] = [span.name]
    flatten(dict(span.attributes or {}), out)
    for event in span.events:
        out.append(event.name)
        flatten(dict(event.attributes or {}), out)
    if span.status is not None and span.status.description:
        out.append(span.status.description)
    if resource and span.resource is not None:
        flatten(dict(span.resource.attributes), out)
    return out


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def otlp_span_strings(span: Any, resource: Any = None) -> list[str]:
    """The strings of an OTLP protobuf span (and of its resource, when given)."""
    out: list[str] = [span.name]
    flatten(_attributes(span.attributes), out)
    for event in span.events:
        out.append(event.name)
        flatten(_attributes(event.attributes), out)
    out.append(span.status.message)
    for link in span.links:
        flatten(_attributes(link.attributes), out)
    if resource is not None:
        flatten(_attributes(resource.attributes), out)
    return out


@dataclass(frozen=True)
class _Needles:
    windows: tuple[str, ...]
    short: tuple[re.Pattern[str], ...]


class Detector:
    """Finds which planted values arrived in a text, by their distinctive fragments (see the module notes)."""

    def __init__(self, corpus: Corpus, scaffolding: Sequence[str] = ()) -> None:
        background = [t.replace("{v}", " ") for t in corpus.templates]
        background += list(scaffolding)
        background += _MARKERS
        self._stop = {w for text in background for w in _windows(core(text))}
        self._needles: dict[int, _Needles] = {}
        for planted in corpus.planted:
            self._needles[id(planted)] = self._needles_of(planted)

    def _needles_of(self, planted: Planted) -> _Needles:
        windows: list[str] = []
        short: list[re.Pattern[str]] = []
        for part in planted.distinct:
            part_core = core(part)
            if len(part_core) >= WINDOW:
                windows += [w for w in _windows(part_core) if w not in self._stop]
            else:
                short.append(re.compile(r"(?<![^\W_])" + re.escape(part.casefold()) + r"(?![^\W_])"))
        return _Needles(tuple(dict.fromkeys(windows)), tuple(short))

    def detectable(self, planted: Planted) -> bool:
        """Whether the value has anything to search for (a window that is not background, or a short part)."""
        needles = self._needles[id(planted)]
        return bool(needles.windows or needles.short)

    def arrived(self, planted: Planted, text: str, text_core: str | None = None) -> bool:
        """Whether ``planted`` arrived in ``text`` (pass ``core(text)`` when searching many values in one text)."""
        needles = self._needles[id(planted)]
        folded_core = core(text) if text_core is None else text_core
        if any(w in folded_core for w in needles.windows):
            return True
        if needles.short:
            folded = text.casefold()
            return any(p.search(folded) for p in needles.short)
        return False

    def arrivals(self, candidates: Iterable[Planted], strings: Iterable[str]) -> Iterator[Planted]:
        """The candidates that arrived in ``strings``."""
        text = "\n".join(strings)
        text_core = core(text)
        for planted in candidates:
            if self.arrived(planted, text, text_core):
                yield planted

    def scan(self, candidates: Iterable[Planted], strings: Iterable[str]) -> list[Planted]:
        """The candidates that arrived anywhere in ``strings``: one pass over a large text for many values."""
        text = "\n".join(strings)
        text_core = core(text)
        owners: dict[str, list[Planted]] = {}
        short: list[Planted] = []
        for planted in candidates:
            needles = self._needles[id(planted)]
            for window in needles.windows:
                owners.setdefault(window, []).append(planted)
            if needles.short:
                short.append(planted)
        found: dict[int, Planted] = {}
        for i in range(len(text_core) - WINDOW + 1):
            for planted in owners.get(text_core[i : i + WINDOW], ()):
                found[id(planted)] = planted
        folded = text.casefold()
        for planted in short:
            if any(p.search(folded) for p in self._needles[id(planted)].short):
                found[id(planted)] = planted
        return list(found.values())


def _windows(text_core: str) -> Iterator[str]:
    for i in range(len(text_core) - WINDOW + 1):
        yield text_core[i : i + WINDOW]


def _marker_texts() -> list[str]:
    try:
        from spanguard.processors.redaction import DEFAULT_ENTITIES, DROPPED_MARKER, FAILED_MARKER
    except ImportError:  # pragma: no cover - the generator's own tests need no spanguard
        return []
    return [f"<{entity}>" for entity in DEFAULT_ENTITIES] + [DROPPED_MARKER, FAILED_MARKER]


_MARKERS = _marker_texts()


def preview(value: str) -> str:
    """A value shown in a failure message without giving it away: its first 4 characters and its length."""
    return f"{value[:4]}…({len(value)})"

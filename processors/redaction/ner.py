"""Names and places: the NER pass (a spaCy model's entities, batched and cached), and the names a model misses (a
name a phrase introduces, a short run of a script the model cannot read, a value under a person's key).

What is found, and what is never taken for a name: docs/redaction.md ("Names and places", "How it works").
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import regex

from spanguard.processors.redaction.entities import LOCATION, PERSON
from spanguard.processors.redaction.results import Detection

__all__ = [
    "NER_CANDIDATE",
    "NerPass",
    "introduced_names",
    "load_ner",
    "names_a_person",
    "names_a_thing",
    "unread_script_runs",
    "unread_scripts",
    "warn_no_ner_once",
    "written_as_name",
]

logger = logging.getLogger("spanguard.processors.redaction")

#: Scripts without letter case, and the spaCy language codes whose models read each (``xx``: multilingual).
SCRIPTS: Final[dict[str, frozenset[str]]] = {
    "Han": frozenset({"zh", "ja", "xx"}),
    "Hiragana": frozenset({"ja", "xx"}),
    "Katakana": frozenset({"ja", "xx"}),
    "Hangul": frozenset({"ko", "xx"}),
    "Arabic": frozenset({"ar", "fa", "ur", "xx"}),
    "Hebrew": frozenset({"he", "yi", "xx"}),
    "Devanagari": frozenset({"hi", "mr", "ne", "sa", "xx"}),
    "Bengali": frozenset({"bn", "xx"}),
    "Tamil": frozenset({"ta", "xx"}),
    "Telugu": frozenset({"te", "xx"}),
    "Gujarati": frozenset({"gu", "xx"}),
    "Kannada": frozenset({"kn", "xx"}),
    "Malayalam": frozenset({"ml", "xx"}),
    "Gurmukhi": frozenset({"pa", "xx"}),
    "Thai": frozenset({"th", "xx"}),
}

# Phrases after which a name is written. Case-insensitive; a label needs its colon or dash ("Name: ...").
_CUE: Final = (
    r"(?i:(?:\bmy\s+(?:full\s+)?name\s+is|\bname\s+is"
    r"|\b(?:(?:full|first|last|given|family|middle|customer|contact|client|user|patient|person|sur)[ _.]?)?"
    r"name['\x22]?\s*[:=\-\u2013]"
    r"|\b(?:customer|client|contact|patient|passenger|guest|attn|attention|signed|from)\s*:"
    r"|\bi['\u2019]m|\bi\s+am|\bcall\s+me|\bregards|\bsincerely|\bcheers|\bthanks|\bthank\s+you|\bdear|\bhi|\bhello|\bhey"
    r"|\b(?:mr|mrs|ms|mx|miss|dr|prof|herr|frau|sr|sra|srta|mme|mlle|dott|sig|sig\.ra)\b\.?)"
    r"[,:]?[ \t]*(?:\r?\n[ \t]*)?['\x22\u201c\u2018]?)"
)
_CASED_WORD: Final = r"\p{Lu}(?:\p{Ll}|\p{M}|\p{Lu}(?=\p{Ll})|['\u2019]\p{L})+(?:-\p{Lu}(?:\p{Ll}|\p{M})+)*"
_UNCASED_WORD: Final = r"\p{Lo}[\p{Lo}\p{M}]*"
_INITIAL: Final = r"\p{Lu}\."
_ABBREVIATION: Final = r"(?:\p{Lu}\p{Ll}{0,2}\.){1,3}"  # initials, "B.A.", "Ph.D.", "Jr."
_PARTICLE: Final = r"(?:van|von|der|den|de|da|di|del|della|du|le|la|bin|ibn|al|el|ter|ten|dos|das|do|y|e)"
_WORD: Final = rf"(?:{_ABBREVIATION}(?=[ \t])|{_CASED_WORD}|{_ABBREVIATION}|{_UNCASED_WORD})"
_NAME: Final = regex.compile(rf"(?:{_CUE})+(?P<name>{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_WORD}){{0,3}})")
# "This is Julie Fabregas from accounts.": "this is" introduces a name only of two words or more that end the clause
# or come before "from", "here", ... ("This is Urgent", "this is Acme Shop support" are no names).
_THIS_IS: Final = regex.compile(
    rf"(?i:\b(?:this|it)[ \t]+is|\bit['\u2019]s)[ \t]+(?P<name>{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_WORD}){{1,3}})"
    r"(?=[ \t]+(?i:from|here|speaking|calling|with|at|again)\b|[ \t]*[,.!;:)\n]|[ \t]*$)"
)
# "Gauri Sastry approved the refund": two to four name words that begin a line or a sentence, then a verb that says
# what a person did.
_SUBJECT: Final = regex.compile(
    r"(?:^|(?<=[.!?;:][ \t]{1,3})|(?<=\n[ \t]{0,8}))"
    rf"(?P<name>{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_WORD}){{1,3}})"
    r"[ \t]+(?:has[ \t]+|had[ \t]+|just[ \t]+)?(?:approved|rejected|declined|refunded|said|says|wrote|writes|asked|asks"
    r"|called|calls|emailed|replied|confirmed|requested|reported|complained|mentioned|signed|paid|ordered|booked"
    r"|cancell?ed|authori[sz]ed|submitted|sent|called|phoned|texted|messaged|joined|left|agreed|noted|added|updated"
    r"|opened|closed|escalated|wants|needs|is[ \t]+asking|was[ \t]+asking)\b",
    regex.MULTILINE,
)
_TOKEN: Final = regex.compile(rf"{_WORD}|\S+")

# Capitalised words that follow the cues above without being a name ("I'm Happy to help", "Hi Team", "Dear Sir").
_NOT_NAMES: Final = frozenset(
    """
    i'm im i'd i'll i've a an the this that these those here there it its i me my we our you your they their he she
    his her all both each
    every everyone everybody anyone someone nobody team support service services customer customers client clients
    sir madam madame friend friends folks guys world again so very much just still also not no yes ok okay sure
    fine good great glad happy sorry afraid able unable interested looking trying writing calling reaching going
    having getting contacting following hoping wondering new back now today tomorrow yesterday please thanks thank
    in on at for from with by of to and or but as if when what which who how why where about after before re fw fwd
    mr mrs ms dr prof admin user users guest manager agent bot assistant there's monday tuesday wednesday thursday
    friday saturday sunday january february march april may june july august september october november december
    """.split()
)


def _not_a_name(word: str) -> bool:
    return word.lower().replace("\u2019", "'").rstrip(".") in _NOT_NAMES


def introduced_names(text: str) -> list[tuple[int, int]]:
    """Spans of the names that a cue phrase introduces in ``text`` (up to four words, capitalised or uncased)."""
    out = []
    for match in [*_NAME.finditer(text), *_THIS_IS.finditer(text), *_SUBJECT.finditer(text)]:
        least = 1 if match.re is _NAME else 2
        start, end = match.span("name")
        words = [(m.start() + start, m.end() + start, m.group()) for m in _TOKEN.finditer(text[start:end])]
        while words and _not_a_name(words[0][2]):
            if match.re is not _NAME:
                words = []  # "The Refund Policy says": a name does not follow "The"
            else:
                words.pop(0)
        kept = []
        for word in words:
            if _not_a_name(word[2]):
                break
            kept.append(word)
        if len(kept) >= least and not (len(kept) == 1 and regex.fullmatch(_INITIAL, kept[0][2])):
            out.append((kept[0][0], kept[-1][1]))
    return out


def unread_scripts(lang: str) -> frozenset[str]:
    """The uncased scripts a spaCy model of language ``lang`` cannot read."""
    return frozenset(script for script, langs in SCRIPTS.items() if lang not in langs)


_RUN_CACHE: dict[frozenset[str], regex.Pattern[str]] = {}


def _run_pattern(scripts: frozenset[str]) -> regex.Pattern[str]:
    pattern = _RUN_CACHE.get(scripts)
    if pattern is None:
        letters = "".join(rf"\p{{{s}}}" for s in sorted(scripts))
        word = rf"[{letters}][{letters}\p{{M}}]*"
        pattern = _RUN_CACHE[scripts] = regex.compile(rf"{word}(?:[ \t\u3000・·]{word}){{0,3}}")
    return pattern


_CASED_LETTER: Final = regex.compile(r"[\p{Lu}\p{Ll}]")
_UNCASED_LETTER: Final = regex.compile(r"\p{Lo}")
_MAX_RUN: Final = 24  # characters: a name, not a sentence


def unread_script_runs(text: str, scripts: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of the short runs of ``scripts`` in a text with at least half as many cased letters
    (Latin, Cyrillic, Greek).

    A model cannot tell a name in a script it does not read from any other word, and a short run of another script
    inside an English sentence is most often a name or a place, so each such run is taken as one.
    """
    scripts = frozenset(scripts)
    if not scripts or not _UNCASED_LETTER.search(text):
        return []
    cased = len(_CASED_LETTER.findall(text))
    uncased = len(_UNCASED_LETTER.findall(text))
    if 2 * cased < uncased:
        return []  # a text written in that script: its words are not embedded in text the model reads
    return [m.span() for m in _run_pattern(scripts).finditer(text) if m.end() - m.start() <= _MAX_RUN]


_WHOLE_NAME: Final = regex.compile(rf"{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_WORD}){{0,3}}")
# Words that, beside "name" in a key, say the name is not a person's ("tool.name", "product_name", "fileName").
_THING_WORDS: Final = frozenset(
    """
    tool function method file model service product company organization organisation org brand app application
    project host hostname server display event span metric attribute field column table queue topic bucket repo
    repository branch package module class plan item sku category channel group role team city country state region
    street domain store shop merchant vendor account business venue place location site page step task job agent
    workflow pipeline dataset index key param parameter variable env device browser os
    """.split()
)


def names_a_person(key_words: frozenset[str]) -> bool:
    """Whether a key's words (``customer.name``, ``"name"``) say its value is a person's name."""
    return "name" in key_words and key_words.isdisjoint(_THING_WORDS)


def names_a_thing(key_words: frozenset[str]) -> bool:
    """Whether a key's words (``tool_name``, ``product.name``) say its value is the name of something, not someone."""
    return "name" in key_words and not key_words.isdisjoint(_THING_WORDS)


def written_as_name(text: str) -> bool:
    """Whether the whole of ``text`` is written as a name: one to four capitalised or uncased-script words."""
    text = text.strip()
    if not _WHOLE_NAME.fullmatch(text):
        return False
    return not _not_a_name(text.split()[0]) and not regex.fullmatch(_INITIAL, text)


# --- the NER pass ---------------------------------------------------------------------------------------------------

_NER_LABELS: Final[Mapping[str, str]] = {
    "PERSON": PERSON,
    "PER": PERSON,
    "GPE": LOCATION,
    "LOC": LOCATION,
    "FAC": LOCATION,
    "LOCATION": LOCATION,
}
NER_SCORE: Final = 0.85  # Presidio's SpacyRecognizer default strength
_CODE_LIKE: Final = regex.compile(r"[^\p{Ll}]*\d[^\p{Ll}]*")  # an identifier: a digit and no lower-case letter
# An identifier among a model's words: a digit and a "-", ".", "_", "/", ":" or "#" inside (OHP-3798-TS, v15.0.124).
_CODE_TOKEN: Final = regex.compile(r"(?<!\S)(?=\S*\d)\S*[\w][-._/:#][\w]\S*")
NER_CANDIDATE: Final = regex.compile(r"\p{Lu}\p{Ll}|\p{Lo}")  # a capitalised word, or a script without case
_NER_CACHE_SIZE: Final = 4096  # NER results of recent texts (system prompts, earlier turns), by 128-bit digest
_NER_CHARS_PER_BUDGET: Final = 1000  # the NER pass gets time_budget_ms per text or per 1,000 characters of it

_warned_no_ner = False
_warned_lock = threading.Lock()


def warn_no_ner_once(entities: Sequence[str]) -> None:
    """Say once per process that ``entities`` (names, places) are not detected for want of a model."""
    global _warned_no_ner
    with _warned_lock:
        if _warned_no_ner:
            return
        _warned_no_ner = True
    logger.warning(
        "redaction: no NER model configured, so %s are not detected in free text; in an app, pass "
        "spanguard.instrument(ner_model=...) or set SPANGUARD_REDACT_NER_MODEL; in the collector, set ner_model in "
        "the redaction processor (a spaCy model, e.g. en_core_web_sm)",
        " and ".join(entities),
    )


def load_ner(model: str) -> Any:
    """A spaCy pipeline that runs only ``ner`` (and the embedding components it listens to)."""
    import spacy

    nlp = spacy.load(model)
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"spaCy model {model!r} has no 'ner' component")
    keep = {"ner"}
    for name, component in nlp.pipeline:
        if "ner" in (getattr(component, "listening_components", None) or ()):
            keep.add(name)
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in keep])
    return nlp


def _names_an_identifier(entity: str, text: str) -> bool:
    """Whether a model's name or place is an identifier: all of it (``ORD-2023``), a token of it (``ref OHP-3798-TS``),
    or, for a person, any digit (names have none) or one short upper-case word (``JPY``, ``SKU``)."""
    if _CODE_LIKE.fullmatch(text) or _CODE_TOKEN.search(text):
        return True
    if entity != PERSON:
        return False
    return any(c.isdigit() for c in text) or (text.isupper() and len(text) <= 5 and " " not in text)


class NerPass:
    """A redactor's NER pass: its spaCy pipeline (loaded here; a model that cannot be loaded raises), the lock it runs
    under, and the detections of recent texts kept by digest; thread-safe."""

    def __init__(
        self,
        model: str,
        entities: Sequence[str],
        threshold: float,
        log_failure: Callable[[BaseException], None],
    ) -> None:
        self.entities = tuple(entities)
        self.nlp: Any = load_ner(model)
        self.lock = threading.Lock()
        self.cache: OrderedDict[bytes, tuple[Detection, ...]] = OrderedDict()  # text digest -> detections
        self._unread_scripts = unread_scripts(str(getattr(self.nlp, "lang", "")))
        self._threshold = threshold
        self._log_failure = log_failure

    def detect(self, texts: Sequence[str], budget_s: float) -> list[tuple[Detection, ...] | str]:
        """Per text, its detections (cached ones, then one ``nlp.pipe`` over the others), or why it failed:
        ``"error"`` or ``"timeout"`` (``budget_s`` per text or per 1,000 characters of it, summed over the batch)."""
        keys = [hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in texts]
        found: dict[bytes, tuple[Detection, ...] | None] = {}
        pending: dict[bytes, str] = {}  # one analysis per distinct text
        started = time.perf_counter()
        try:
            with self.lock:
                nlp = self.nlp
                if nlp is None:
                    raise RuntimeError("redactor is shut down")
                for key, text in zip(keys, texts, strict=True):
                    cached = self.cache.get(key)
                    if cached is not None:
                        self.cache.move_to_end(key)
                        found[key] = cached
                    elif len(text) > nlp.max_length:
                        found[key] = None
                    else:
                        pending[key] = text
                if pending:
                    docs = self._pipe(nlp, list(pending.values()))
                    for key, doc in zip(pending, docs, strict=True):
                        dets = None if doc is None else self._detections(doc)
                        found[key] = dets
                        if dets is not None:
                            self.cache[key] = dets
                    while len(self.cache) > _NER_CACHE_SIZE:
                        self.cache.popitem(last=False)
        except Exception as exc:
            self._log_failure(exc)
            return ["error"] * len(texts)
        allowance = budget_s * sum(max(1.0, len(text) / _NER_CHARS_PER_BUDGET) for text in pending.values())
        timed_out = pending and time.perf_counter() - started > allowance
        out: list[tuple[Detection, ...] | str] = []
        for key in keys:
            dets = found.get(key)
            if dets is None:
                out.append("error")
            elif timed_out and key in pending:
                out.append("timeout")
            else:
                out.append(dets)
        return out

    def by_key(self, text: str, key_words: frozenset[str], dets: tuple[Detection, ...]) -> list[Detection]:
        """The detections of a text, corrected by the key that holds it: ``"name": "Mathijs Broeckx"`` is a person the
        model has too little text to see, ``"tool_name": "Lookup Order"`` is none."""
        wanted = list(dets)
        if PERSON not in self.entities or not key_words:
            return wanted
        whole = len(text)
        if names_a_thing(key_words):
            return [d for d in wanted if not (d.entity_type == PERSON and d.start == 0 and d.end == whole)]
        if names_a_person(key_words) and written_as_name(text):
            # The model's label of two bare words is noise ("Sean Mason" and "Premium Plan" are both ORG to it).
            wanted.append(Detection(PERSON, 0, whole, NER_SCORE))
        return wanted

    def shutdown(self) -> None:
        """Release the model and forget the cache; afterwards every text fails."""
        with self.lock:
            self.nlp = None
            self.cache.clear()

    def clear_cache(self) -> None:
        """Forget the cached results."""
        with self.lock:
            self.cache.clear()

    def _detections(self, doc: Any) -> tuple[Detection, ...]:
        wanted = self.entities
        if NER_SCORE < self._threshold:
            return ()
        out = []
        for ent in doc.ents:
            entity = _NER_LABELS.get(ent.label_)
            if entity in wanted and not _names_an_identifier(entity, ent.text):
                out.append(Detection(entity, ent.start_char, ent.end_char, NER_SCORE))
        if PERSON in wanted:
            text = doc.text
            spans = introduced_names(text) + unread_script_runs(text, self._unread_scripts)
            out += [Detection(PERSON, start, end, NER_SCORE) for start, end in spans]
        return tuple(out)

    def _pipe(self, nlp: Any, texts: list[str]) -> list[Any]:
        """The docs of ``texts``; when one text breaks the batch, each is retried alone and a failed one is None."""
        try:
            return list(nlp.pipe(texts, batch_size=64))
        except Exception:
            docs: list[Any] = []
            for text in texts:
                try:
                    docs.append(nlp(text))
                except Exception as exc:
                    self._log_failure(exc)
                    docs.append(None)
            return docs

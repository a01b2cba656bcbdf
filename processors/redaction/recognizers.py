"""The built-in recognizers of identifiers and personal data: Presidio's (e-mail, card, IBAN, SSN, IP), made offline
and exact where they are not, and spanguard's own for what Presidio's defaults let through (phone numbers by shape,
national identifiers, passports, dates of birth, street addresses), each with the trigger the screen runs.

What each finds, and how matches are scored and merged: docs/redaction.md ("What is detected", "How it works").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import phonenumbers
import regex
import tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    AuAbnRecognizer,
    AuMedicareRecognizer,
    AuTfnRecognizer,
    CaSinRecognizer,
    CreditCardRecognizer,
    DeTaxIdRecognizer,
    EmailRecognizer,
    EsNieRecognizer,
    EsNifRecognizer,
    FiPersonalIdentityCodeRecognizer,
    IbanRecognizer,
    InAadhaarRecognizer,
    InVoterRecognizer,
    IpRecognizer,
    ItFiscalCodeRecognizer,
    KrRrnRecognizer,
    NhsRecognizer,
    PlPeselRecognizer,
    SePersonnummerRecognizer,
    SgFinRecognizer,
    UkDrivingLicenceRecognizer,
    UsBankRecognizer,
    UsItinRecognizer,
    UsLicenseRecognizer,
    UsSsnRecognizer,
)

from spanguard.processors.redaction.entities import (
    DATE_OF_BIRTH,
    IN_PAN,
    PASSPORT,
    PHONE_NUMBER,
    STREET_ADDRESS,
    TAX_ID,
    UK_NINO,
)
from spanguard.processors.redaction.screen import DIGITS, DigitsTrigger, Trigger, TriggerFunction
from spanguard.processors.redaction.secrets import secret_recognizers

__all__ = [
    "CONTEXT_WORD",
    "DateOfBirthRecognizer",
    "OfflineEmailRecognizer",
    "PassportRecognizer",
    "PhoneShapeRecognizer",
    "StreetAddressRecognizer",
    "TrimmingIbanRecognizer",
    "builtin_recognizers",
    "pii_recognizers",
]


CONTEXT_WORD: Final = re.compile(r"[^\W_]+")
"""A word, as context tests read words: "driver_license" is two (the redactor's and the recognizers' tests agree)."""
_CONTEXT_WORDS: Final = 5  # the redactor's context window


def _has_context(text: str, start: int, words: frozenset[str]) -> bool:
    """Whether a word of ``words`` is among the five words before ``start``, as the redactor judges it."""
    before = CONTEXT_WORD.findall(text[max(0, start - 120) : start].lower())[-_CONTEXT_WORDS:]
    return any(w in words or w.rstrip("s") in words for w in before)


# --- phone numbers ---------------------------------------------------------------------------------------------------

PHONE_CONTEXT: Final[tuple[str, ...]] = (
    "phone",
    "telephone",
    "tel",
    "ph",
    "mobile",
    "mob",
    "cell",
    "cellphone",
    "landline",
    "call",
    "fax",
    "whatsapp",
    "signal",
    "sms",
    "text",
    "contact",
    "reach",
    "dial",
    "number",
    "hotline",
    "helpline",
    "callback",
    "ring",
    "rang",
    "called",
    "calling",
    "phoned",
    "texted",
    "texting",
    "dialed",
    "dialled",
    "reached",
    "telefon",
    "telefono",
    "teléfono",
    "téléphone",
    "handy",
    "portable",
    "celular",
    "móvil",
)
PHONE_NEGATIVE_CONTEXT: Final[tuple[str, ...]] = (
    # "this number is something else": ids and references
    "order",
    "invoice",
    "po",
    "tracking",
    "track",
    "fedex",
    "ups",
    "usps",
    "dhl",
    "ticket",
    "ref",
    "reference",
    "id",
    "sku",
    "case",
    "transaction",
    "txn",
    "confirmation",
    "booking",
    "reservation",
    "receipt",
    "shipment",
    "parcel",
    "claim",
    "policy",
    "account",
    "acct",
    "serial",
    "part",
    "model",
    "version",
    "build",
    "release",
    "commit",
    "imei",
    "isbn",
    "ean",
    "upc",
    # numbers that are measurements, times or money
    "timestamp",
    "epoch",
    "ts",
    "unix",
    "bytes",
    "size",
    "count",
    "total",
    "amount",
    "price",
    "balance",
    "eur",
    "usd",
    "gbp",
    "port",
    "pid",
    # other identifiers, which their own recognizers type
    "ssn",
    "social",
    "security",
    "passport",
    "license",
    "licence",
    "nhs",
    "nino",
    "aadhaar",
    "aadhar",
    "pan",
    "tfn",
    "abn",
    "medicare",
    "pesel",
    "personnummer",
    "nric",
    "rrn",
    "dni",
    "nif",
    "nie",
    "itin",
    "tin",
    "sin",
    "iban",
    "dob",
    "birth",
    "born",
)

_SP: Final = r"[ \u00a0]"
_GROUP: Final = r"(?:\(\d{1,5}\)|\d{1,15})"
# One of .-/ with optional spaces, one or two spaces, or nothing next to a parenthesis: "+44(0)20 7946-0958".
_SEP: Final = rf"(?:{_SP}?[.\-/]{_SP}?|{_SP}{{1,2}}|(?<=\))|(?=\())"
_FIRST: Final = rf"(?:\(\+\d{{1,4}}\)|\+{_SP}?\d{{1,15}}|{_GROUP})"
_CANDIDATE: Final = regex.compile(rf"(?<![\w+#$€£¥@]){_FIRST}(?:{_SEP}{_GROUP}){{0,8}}")
_EXTENSION: Final = regex.compile(
    rf"(?:{_SP}?,)?{_SP}{{0,2}}(?:x|ext|ext\.|extn|extension|#){_SP}{{0,2}}\d{{1,6}}(?![\w])", regex.IGNORECASE
)
_GROUP_SPLIT: Final = re.compile(r"\(\+?\d+\)|\+?\d+")
# The redactor's digits trigger skips runs that start as a date; so do phone numbers.
_DATE_START: Final = DigitsTrigger.DATE
# What follows a number that is money or a measure, not a phone.
_UNIT_AFTER: Final = regex.compile(
    r"\s?(?:%|€|\$|£|¥|(?:EUR|USD|GBP|CHF|PLN|SEK|NOK|DKK|JPY|INR|CNY|zł|kr|km|kg|ms|KB|MB|GB|bytes|tokens)\b)",
    regex.IGNORECASE,
)
# Regions whose national numbers are written with a leading trunk 0, and the others (for the validity bonus only).
_TRUNK_ZERO_REGIONS: Final = ("GB", "DE", "FR", "IT", "NL", "AU", "JP", "CN", "IN", "SE", "CH", "BR")
_OTHER_REGIONS: Final = ("US", "ES", "IT", "PL", "CN", "IN", "BR", "MX", "RU", "PT")

_STRONG: Final = 0.5  # a national shape: separated groups, a parenthesised area code, an extension
_INTERNATIONAL: Final = 0.6  # a + or 00/011 prefix
_WEAK: Final = 0.1  # a bare run or a single separator: needs a context word
_VALID_BONUS: Final = 0.2  # phonenumbers calls it a valid number
_WEAK_VALID: Final = 0.3


class PhoneShapeRecognizer(EntityRecognizer):
    """Phone numbers by shape (digits, separators, length, a country code), valid or not; ``phonenumbers`` only
    raises the score.

    A ``+``/``00``/``011`` prefix scores 0.6, a national shape 0.5 (three or more separated groups, a parenthesised
    area code, a trunk-0 or Indian mobile two-group form), a bare run or one separator 0.1, which only a context word
    lifts over the threshold. A valid number adds 0.2 (a weak one rises to 0.3). An extension (``x123``, ``ext. 12``,
    ``#102``) is part of the match. Dates, IPv4 addresses, versions, SSN-shaped ``123-45-6789``, amounts followed by
    a currency or unit, and digits touching letters are not phone numbers.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_entities=[PHONE_NUMBER],
            name="spanguard.phone_shape",
            supported_language="en",
            context=list(PHONE_CONTEXT),
        )
        self.negative_context = list(PHONE_NEGATIVE_CONTEXT)
        self._context = frozenset(PHONE_CONTEXT)

    def load(self) -> None:
        """Load the ``phonenumbers`` metadata of the regions tried (Presidio calls this on construction), so that the
        first value analysed does not pay for it."""
        for region in dict.fromkeys((*_TRUNK_ZERO_REGIONS, *_OTHER_REGIONS)):
            self._valid_national_in("0", region)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        """Every phone-shaped number of ``text``, scored by its shape (context is the redactor's to add)."""
        out: list[RecognizerResult] = []
        for match in _CANDIDATE.finditer(text):
            found = self._number(text, match.start(), match.end())
            if found is not None:
                start, end, score = found
                out.append(
                    RecognizerResult(
                        PHONE_NUMBER,
                        start,
                        end,
                        score,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,  # type: ignore[has-type]
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return out

    def _number(self, text: str, start: int, end: int) -> tuple[int, int, float] | None:
        """The span and score of the phone number in the candidate ``text[start:end]``, if it is one."""
        spans = [(m.start(), m.end()) for m in _GROUP_SPLIT.finditer(text, start, end)]
        prev = text[start - 1] if start else ""
        before = text[start - 2] if start >= 2 else ""
        if prev in ("-", "/") and before.isalnum():
            return None  # "ORD-2023-105750", "10/4155550132": part of something else
        leads = []
        if not (prev in (".", ",", ":") and before.isdigit()):  # "3.14159265", "12:30"
            leads.append(0)
        if len(spans) > 1 and not text[spans[0][1] : spans[1][0]].strip(" \u00a0"):
            leads.append(1)  # "at 10 415-555-0132", "12:30 415 555 0132": the first group is not the number's
        for lead in leads:
            last = len(spans)
            while last > lead and not self._clean_after(text, spans[last - 1][1]):
                last -= 1  # "415 555 0132 12:30", "2024-08-06 12:34": the run goes on as something else
            if last == lead:
                continue
            s, e = spans[lead][0], spans[last - 1][1]
            groups = [text[a:b] for a, b in spans[lead:last]]
            seps = [text[spans[i][1] : spans[i + 1][0]] for i in range(lead, last - 1)]
            ext = _EXTENSION.match(text, e)
            score = self._score(text, s, groups, seps, extension=ext is not None)
            if score is not None:
                return s, (ext.end() if ext is not None else e), score
            return None
        return None

    @staticmethod
    def _clean_after(text: str, end: int) -> bool:
        """Whether the number may end at ``end``: not a decimal, time or id going on, nor money or a measure."""
        if end >= len(text):
            return True
        nxt = text[end]
        if nxt in ".,:-/" and end + 1 < len(text) and text[end + 1].isdigit():
            return False
        if _UNIT_AFTER.match(text, end):
            return False
        if nxt.isalpha():
            return _EXTENSION.match(text, end) is not None
        return not (nxt.isdigit() or nxt == "_")

    def _score(self, text: str, start: int, groups: list[str], seps: list[str], *, extension: bool) -> float | None:
        """The shape's score, raised when the number is valid; None when it is not phone-shaped."""
        plus = groups[0].startswith(("+", "(+"))
        trunk_paren = [g == "(0)" for g in groups]
        digits_of = [g.strip("()+") for g in groups]
        digits = "".join(d for d, t in zip(digits_of, trunk_paren, strict=True) if not t)
        n = len(digits)
        sizes = [len(d) for d in digits_of]
        if not plus and _DATE_START.match(text, start) is not None:
            return None
        ones = sum(1 for i, size in enumerate(sizes) if size == 1 and not trunk_paren[i] and not (plus and i == 0))
        if ones >= 2:
            return None
        if plus:
            if not 8 <= n <= 15:
                return None
            return self._validated(_INTERNATIONAL, "+" + digits)
        intl = re.match(r"(?:00(?=[1-9])|011)", digits)
        if intl is not None and len(groups) > 1 and 7 <= n - intl.end() <= 15:
            return self._validated(_INTERNATIONAL, "+" + digits[intl.end() :])
        if not 7 <= n <= 13:
            return None
        if self._not_a_phone(groups, seps, sizes):
            return None
        if sizes[0] == 1 and digits_of[0] not in "018":
            return None
        strong = extension or self._national(groups, seps, sizes, digits_of)
        if strong:
            return self._validated(_STRONG, digits)
        if _has_context(text, start, self._context):
            return _WEAK_VALID if self._valid_national(digits) else _WEAK
        return _WEAK

    @staticmethod
    def _not_a_phone(groups: list[str], seps: list[str], sizes: list[int]) -> bool:
        """Dates, IPv4 addresses, dotted versions and SSN-shaped numbers."""
        marks = {s.strip(" \u00a0") for s in seps}
        if len(groups) >= 3:
            for i in range(len(groups) - 2):
                if _is_date(groups[i : i + 3], seps[i : i + 2]):
                    return True
        if marks == {"."}:
            if len(groups) == 4 and all(size <= 3 for size in sizes) and all(int(g) <= 255 for g in groups):
                return True  # IPv4
            if min(sizes) < 2 or (len(groups) > 2 and sum(sizes) < 9) or (len(groups) == 2 and min(sizes) < 3):
                return True  # a version or a decimal ("1.2.3", "10.0.19045.3803", "3.14159265")
        return len(groups) == 3 and sizes == [3, 2, 4] and marks <= {"-", ""}  # US SSN shape

    @staticmethod
    def _national(groups: list[str], seps: list[str], sizes: list[int], digits_of: list[str]) -> bool:
        """Whether the grouping is a national phone format on its own (no context needed)."""
        if any(g.startswith("(") and g != "(0)" for g in groups) and len(groups) > 1:
            return True  # (415) 555-0132, (02) 9876 5432, (0161) 4960066
        marks = [s.strip(" \u00a0") for s in seps]
        if len(groups) >= 3:
            # Thousands ("12 345 678", "1.234.567") are not phones, but 3-3-3 numbers (ES, PL, PT) are, and a
            # thousands number never starts with 0 ("0 939 099 603").
            if (
                len(set(marks)) == 1
                and marks[0] in ("", ".")
                and sizes[0] <= 3
                and all(s == 3 for s in sizes[1:])
                and not digits_of[0].startswith("0")
            ):
                return marks[0] == "" and sizes == [3, 3, 3] and digits_of[0][0] != "1"
            return True
        if len(groups) == 2 and marks[0] in ("", "-", "/"):
            a, b = digits_of
            if re.fullmatch(r"0[1-9]\d{0,4}", a) and 5 <= len(b) <= 8 and 9 <= len(a) + len(b) <= 13:
                return True  # trunk-0 area code and subscriber: 030 12345678, 07700 900123
            if re.fullmatch(r"[6-9]\d{4}", a) and len(b) == 5:
                return True  # Indian mobile: 98765 43210
        return False

    @staticmethod
    def _validated(score: float, number: str) -> float:
        """``score``, raised when ``number`` (E.164 with +, else national) is a valid number."""
        try:
            if number.startswith("+"):
                valid = phonenumbers.is_valid_number(phonenumbers.parse(number, None))
            else:
                valid = PhoneShapeRecognizer._valid_national(number)
        except phonenumbers.NumberParseException:
            valid = False
        return min(1.0, score + _VALID_BONUS) if valid else score

    @staticmethod
    def _valid_national(digits: str) -> bool:
        """Whether some common region calls ``digits`` a valid national number."""
        regions = _TRUNK_ZERO_REGIONS if digits.startswith("0") else _OTHER_REGIONS
        return any(PhoneShapeRecognizer._valid_national_in(digits, region) for region in regions)

    @staticmethod
    def _valid_national_in(digits: str, region: str) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(digits, region))
        except phonenumbers.NumberParseException:
            return False


def _is_date(groups: Sequence[str], seps: Sequence[str]) -> bool:
    """Whether three digit groups with one separator mark between them read as a date (YMD, DMY or MDY)."""
    if any(g.startswith("(") for g in groups):
        return False
    marks = {s.strip(" \u00a0") for s in seps}
    if len(marks) != 1 or not marks <= {"-", ".", "/"}:
        return False
    a, b, c = (int(g) for g in groups)
    la, lc = len(groups[0]), len(groups[2])
    if la == 4 and len(groups[1]) <= 2 and lc <= 2:
        return 1900 <= a <= 2100 and 1 <= b <= 12 and 1 <= c <= 31
    if lc == 4 and la <= 2 and len(groups[1]) <= 2:
        return 1900 <= c <= 2100 and ((1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31))
    return False


# --- national identifiers --------------------------------------------------------------------------------------------

# Below the threshold alone; a context word (+0.35) carries it to 0.73, above a phone-shaped reading of the same digits
# that the identifier's word, a phone negative word, pulls down to 0.65 at most.
_REQUIRED_SCORE: Final = 0.38


def _subclass(cls: type[PatternRecognizer], *, checksum: bool) -> type[PatternRecognizer]:
    """A subclass of a Presidio recognizer whose failed checksum never drops a match (a typo'd or unassigned
    identifier is still personal data): with ``checksum`` a passing one still scores 1.0; without, it is not consulted
    (a recognizer screened by its context words must need them, whatever the checksum says)."""

    def validate_result(self: PatternRecognizer, pattern_text: str) -> bool | None:
        return True if checksum and cls.validate_result(self, pattern_text) else None

    name = f"{'Checked' if checksum else 'Contextual'}{cls.__name__}"
    return type(name, (cls,), {"validate_result": validate_result, "__doc__": cls.__doc__})


_SUBCLASSES: dict[tuple[type[PatternRecognizer], bool], type[PatternRecognizer]] = {}


def _national(
    cls: type[PatternRecognizer],
    context: Sequence[str],
    *,
    extra: Sequence[Pattern] = (),
    shapes: Sequence[str] = (),
    trigger: Trigger | None = None,
) -> PatternRecognizer:
    """Presidio's ``cls`` with single-word ``context`` (the redactor matches words, not phrases) and every pattern at
    0.38, so that a context word is needed (and enough); ``extra`` adds looser shapes. Screened by the context words
    (or ``shapes``, RE2 patterns, for words the ASCII screen cannot hold), or by ``trigger`` (a shape), in which case a
    passing checksum alone is enough too."""
    key = (cls, trigger is not None)
    sub = _SUBCLASSES.get(key)
    if sub is None:
        sub = _SUBCLASSES[key] = _subclass(cls, checksum=trigger is not None)
    patterns = [Pattern(p.name, p.regex, _REQUIRED_SCORE) for p in [*cls.PATTERNS, *extra]]  # type: ignore[attr-defined]
    recognizer: Any = sub(patterns=patterns, context=list(context), supported_language="en")  # type: ignore[call-arg]
    recognizer.trigger = trigger or _word_trigger(context, *shapes)
    return recognizer


def _word_trigger(words: Sequence[str], *patterns: str) -> Trigger:
    """A trigger that finds one of ``words`` as a word (as the context tests read words: :data:`CONTEXT_WORD`,
    plural ``s`` ignored), or one of ``patterns``.

    Words, not substrings: "sin" must not fire on "using", nor "tax" on "syntax", or most prose would be screened
    in. A word that is not ASCII is found by its ASCII start (the screen is ASCII-only) when it has one of 4+
    letters, else only through ``patterns``.
    """
    whole = sorted({w.lower() for w in words if w.isascii()}, key=lambda w: (-len(w), w))
    starts = sorted({_ascii_start(w) for w in words if not w.isascii()} - {""})
    # "_" counts as a boundary too, so that "nhs_number" fires (a superset of what the redactor reads as words).
    found = [rf"(?:^|[^a-z0-9])(?:{'|'.join(re.escape(w) for w in whole)})s*(?:[^a-z0-9]|$)"] if whole else []
    if starts:
        found.append(rf"(?:^|[^a-z0-9])(?:{'|'.join(re.escape(w) for w in starts)})")
    return Trigger(folded_patterns=tuple(found), patterns=patterns)


def _ascii_start(word: str) -> str:
    """The letters of ``word`` before its first non-ASCII one, if there are 4 or more."""
    start = ""
    for ch in word.lower():
        if not ch.isascii():
            break
        start += ch
    return start if len(start) >= 4 else ""


class _ShapeRecognizer(PatternRecognizer):
    """A case-sensitive pattern recognizer for an identifier whose shape is specific enough to screen for."""

    def __init__(self, entity: str, patterns: list[Pattern], context: Sequence[str], trigger: Trigger) -> None:
        super().__init__(
            supported_entity=entity,
            name=f"spanguard.{entity.lower()}",
            patterns=patterns,
            context=list(context),
            global_regex_flags=regex.MULTILINE,
        )
        self.trigger = trigger


def _uk_nino() -> PatternRecognizer:
    """UK National Insurance numbers: a valid prefix and A-D suffix alone, any two letters and letter with context."""
    return _ShapeRecognizer(
        UK_NINO,
        [
            Pattern(
                "NINO (valid letters)",
                r"\b(?!BG|GB|NK|KN|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
                0.5,
            ),
            Pattern("NINO (shape)", r"\b[A-Z]{2}[ -]?\d{2}[ -]?\d{2}[ -]?\d{2}[ -]?[A-Z]\b", _REQUIRED_SCORE),
        ],
        ["nino", "ni", "insurance"],
        Trigger(patterns=(r"[A-Z]{2}[ -]?[0-9]{2}[ -]?[0-9]{2}[ -]?[0-9]{2}[ -]?[A-Z]",)),
    )


def _in_pan() -> PatternRecognizer:
    """Indian PAN: Presidio's patterns, upper case only (its 0.01 catch-all, quadratic on long texts, left out)."""
    return _ShapeRecognizer(
        IN_PAN,
        [
            Pattern("PAN (High)", r"\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b", 0.5),
            Pattern("PAN (Medium)", r"\b[A-Z]{5}\d{4}[A-Z]\b", 0.1),
        ],
        ["pan", "permanent"],
        Trigger(patterns=(r"[A-Z]{5}[0-9]{4}[A-Z]",)),
    )


def _us_itin() -> PatternRecognizer:
    """US ITIN (``9XX-7X-XXXX``): Presidio's patterns and scores, screened by their shape."""
    recognizer: Any = UsItinRecognizer(context=["itin", "taxpayer", "tax", "tin"])
    recognizer.trigger = Trigger(patterns=(r"9[0-9]{2}[- ]?[5-9][0-9][- ]?[0-9]{4}",))
    return recognizer


# The prefixes of EU (and UK, Swiss, Norwegian) VAT numbers.
_VAT_COUNTRIES: Final = "AT|BE|BG|CH|CY|CZ|DE|DK|EE|EL|ES|FI|FR|GB|HR|HU|IE|IT|LT|LU|LV|MT|NL|NO|PL|PT|RO|SE|SI|SK|XI"


class _TaxNumberRecognizer(_ShapeRecognizer):
    """Tax numbers in any country's grouping; a match that is a date, or has too few or too many digits, is not one."""

    _DATE: Final = regex.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})")

    def invalidate_result(self, pattern_text: str) -> bool:
        digits = sum(ch.isdigit() for ch in pattern_text)
        return not 8 <= digits <= 14 or self._DATE.fullmatch(pattern_text) is not None


def _tax_number() -> PatternRecognizer:
    """Any tax number after a word that names one: 8-14 digits, bare or in groups (US EIN ``NN-NNNNNNN``, UK UTR,
    Brazil's CPF ``NNN.NNN.NNN-NN``, Canada's SIN ``NNN NNN NNN``, ``NN/NNN/NNNNN``), or an EU VAT number. Only the
    word says what these are, so it is required; a country's recognizer with a checksum scores higher where one exists.
    """
    context = ["tax", "taxpayer", "tin", "ein", "fein", "utr", "vat", "steuernummer", "itin", "ust", "idnr", "cpf"]
    recognizer: Any = _TaxNumberRecognizer(
        TAX_ID,
        [
            Pattern("grouped", r"(?<![\d./-])\d{2,5}(?:[ ./-]\d{2,7}){1,4}K?(?![\d/-]|\.\d)", _REQUIRED_SCORE),
            Pattern("bare or VAT", rf"\b(?:{_VAT_COUNTRIES})?\d{{8,14}}[A-Z]?\b", _REQUIRED_SCORE),
        ],
        context,
        _word_trigger(context),
    )
    # "tax invoice 1234567890" is an invoice; a "tax id" or "tax reference" is the tax number itself.
    recognizer.negative_context = [w for w in PHONE_NEGATIVE_CONTEXT if w not in {"id", "ref", "reference"}]
    return recognizer


def _national_recognizers() -> list[EntityRecognizer]:
    # Presidio's recognizers that are left out: the UK, US and Indian passport ones (PassportRecognizer finds those
    # numbers after their word), and those for company registers, vehicles and health-care providers (not a person's).
    return [
        _uk_nino(),
        _national(NhsRecognizer, ["nhs"]),
        _national(UkDrivingLicenceRecognizer, ["licence", "license", "driving", "driver", "dvla"]),
        _national(InAadhaarRecognizer, ["aadhaar", "aadhar", "uidai", "uid"]),
        _in_pan(),
        _national(InVoterRecognizer, ["voter", "epic", "elector", "electoral"]),
        _national(
            UsLicenseRecognizer,
            ["license", "licence", "driver", "driving", "dl", "dln"],
            extra=[
                # State formats Presidio's patterns miss: FL, IL (dashed), NY (spaced), WA.
                Pattern("FL", r"\b[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d\b", _REQUIRED_SCORE),
                Pattern("IL", r"\b[A-Z]\d{3}-\d{4}-\d{4}\b", _REQUIRED_SCORE),
                Pattern("NY", r"\b\d{3} \d{3} \d{3}\b", _REQUIRED_SCORE),
                Pattern("WA", r"\bWDL[A-Z0-9]{9}\b", _REQUIRED_SCORE),
            ],
        ),
        _us_itin(),
        _national(UsBankRecognizer, ["account", "acct", "bank", "checking", "savings"]),
        _national(AuTfnRecognizer, ["tfn", "tax"]),
        _national(AuMedicareRecognizer, ["medicare"]),
        _national(AuAbnRecognizer, ["abn"]),
        _national(EsNifRecognizer, ["dni", "nif", "identidad", "documento", "tax", "tin", "taxpayer", "fiscal"]),
        _national(EsNieRecognizer, ["nie", "extranjero", "identidad"]),
        _national(
            ItFiscalCodeRecognizer,
            ["codice", "fiscale", "cf"],
            trigger=Trigger(
                folded_patterns=(r"[a-z]{6}[0-9lmnp-v]{2}[a-ehlmpr-t][0-9lmnp-v]{2}[a-z][0-9lmnp-v]{3}[a-z]",)
            ),
        ),
        _national(PlPeselRecognizer, ["pesel"]),
        _national(SgFinRecognizer, ["nric", "fin"]),
        _national(
            KrRrnRecognizer,
            ["rrn", "resident", "주민등록번호"],
            extra=[Pattern("RRN (shape)", r"(?<!\d)\d{6}-?[1-8]\d{6}(?!\d)", _REQUIRED_SCORE)],
            shapes=[r"[0-9]{6}-[1-8][0-9]{6}"],  # after the Korean word, which the ASCII screen cannot hold
        ),
        _national(CaSinRecognizer, ["sin", "nas", "insurance"]),
        _national(DeTaxIdRecognizer, ["steuer", "steuerid", "steueridentifikationsnummer", "idnr", "tin", "tax"]),
        _tax_number(),
        _national(SePersonnummerRecognizer, ["personnummer", "samordningsnummer"]),
        _national(FiPersonalIdentityCodeRecognizer, ["hetu", "henkilötunnus", "henkilotunnus"]),
    ]


# --- passports -------------------------------------------------------------------------------------------------------

# The word, then at most a few filler tokens: "passport no. 533380006", "Passport #: X1234567", "passport_number":
_PASSPORT_KEY: Final = (
    r"(?:(?i:passport|passeport|pasaporte|passaporto|reisepass)(?:[ _-]?(?i:no|nr|num|number|numbers|id|#))?"
    r"|\b(?i:pp)[ ]?(?i:no|nr|number|#))\.?"
    r"(?:[ ]{1,3}(?i:is|was|number|no)\.?)?"
    r"[\"']?[ ]{0,3}[:=#]?[ ]{0,3}[\"']?[ ]{0,2}"
)


class PassportRecognizer(PatternRecognizer):
    """Any passport number right after a word that names it: 6-9 upper-case letters and digits with a digit, or 8-9
    letters without a vowel (German numbers may have no digit; no English word is 8 consonants)."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity=PASSPORT,
            name="spanguard.passport",
            patterns=[
                Pattern(
                    "passport after its name",
                    rf"(?<={_PASSPORT_KEY})(?:(?=[A-Z]*\d)[A-Z0-9]{{6,9}}|[B-DF-HJ-NP-TV-Z]{{8,9}})(?![A-Za-z0-9])",
                    0.6,
                )
            ],
            context=["passport", "passeport", "pasaporte", "passaporto", "reisepass"],
            global_regex_flags=regex.MULTILINE,
        )
        self.trigger = Trigger(
            folded=(
                *("passport", "passeport", "pasaporte", "passaporto", "reisepass"),
                *("pp no", "pp nr", "pp#", "ppno", "ppnr", "pp number"),
            )
        )
        self.negative_context: list[str] = []


# --- dates of birth --------------------------------------------------------------------------------------------------

_MONTHS: Final = (
    r"(?:jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|märz|maerz|apr(?:il)?|may|mai|june?|juni|july?|juli"
    r"|aug(?:ust)?|sep(?:t|tember)?|oct(?:ober)?|okt(?:ober)?|nov(?:ember)?|dec(?:ember)?|dez(?:ember)?)"
)
_DATE: Final = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\.?[ -](?:of[ ])?{_MONTHS}\.?,?[ -]\d{{2,4}}"
    rf"|{_MONTHS}\.?[ ]\d{{1,2}}(?:st|nd|rd|th)?,?[ ]\d{{4}}"
    r"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))"
)
_DOB_KEY: Final = (
    r"(?:\b(?:date[ _-]{0,2}of[ _-]{0,2}birth|birth[ _-]{0,2}date|birthday|dob|born(?:[ ]{1,2}on)?"
    r"|geburtsdatum|geboren(?:[ ]am)?|date[ _-]de[ _-]naissance|fecha[ _-]de[ _-]nacimiento)"
    r"|\bd\.o\.b\.?|\bgeb\.)"
)
_DOB_GAP: Final = r"[\"']?[ ]{0,3}(?:[:=\-\u2013][ ]{0,3})?[\"']?[ ]{0,2}(?:(?:is|was|on|am)[ ]{1,3}){0,2}"


class DateOfBirthRecognizer(PatternRecognizer):
    """A date in a common format right after a word that says it is a birth date (``DOB: 1985-03-12``, ``born on
    March 12, 1985``, ``geb. 12.03.1985``); other dates are not personal data."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity=DATE_OF_BIRTH,
            name="spanguard.date_of_birth",
            # The date may go on as an ISO date-time ("1985-03-12T00:00:00Z"): the date is what is redacted.
            patterns=[Pattern("date after its name", rf"(?<={_DOB_KEY}{_DOB_GAP}){_DATE}(?:(?=T\d)|(?![\w]))", 0.85)],
            context=["birth", "dob", "born", "birthday", "birthdate", "geb", "geburtsdatum"],
            global_regex_flags=regex.IGNORECASE | regex.MULTILINE,
        )
        self.trigger = Trigger(
            folded_patterns=(
                "birth",
                r"(?:^|[^a-z0-9_])(?:dob|d\.o\.b|born|geb\.|geboren|geburtsdatum|date[ _-]de[ _-]naissance"
                r"|fecha[ _-]de[ _-]nacimiento)",
            )
        )


# --- street addresses ------------------------------------------------------------------------------------------------

# USPS street suffixes (Publication 28, C1: primary names and standard abbreviations), plus UK, Irish and Australian
# street types. Longest first, so that the alternation takes "Streets" before "Street" before "St".
_USPS_SUFFIXES: Final = (
    "Alley Allee Aly Anex Annex Anx Arcade Arc Avenue Av Ave Avn Bayou Byu Beach Bch Bend Bnd Bluff Blf Bluffs Blfs "
    "Bottom Btm Boulevard Blvd Boul Branch Br Brnch Bridge Brg Brook Brk Brooks Brks Burg Bg Burgs Bgs Bypass Byp "
    "Camp Cp Canyon Cyn Cape Cpe Causeway Cswy Center Ctr Centre Cntr Centers Ctrs Circle Cir Circ Circles Cirs "
    "Cliff Clf Cliffs Clfs Club Clb Common Cmn Commons Cmns Corner Cor Corners Cors Course Crse Court Ct Courts Cts "
    "Cove Cv Coves Cvs Creek Crk Crescent Cres Crest Crst Crossing Xing Crossroad Xrd Crossroads Xrds Curve Curv "
    "Dale Dl Dam Dm Divide Dv Dvd Drive Dr Drv Drives Drs Estate Est Estates Ests Expressway Expy Exp Extension Ext "
    "Extensions Exts Fall Falls Fls Ferry Fry Field Fld Fields Flds Flat Flt Flats Flts Ford Frd Fords Frds Forest "
    "Frst Forge Frg Forges Frgs Fork Frk Forks Frks Fort Ft Freeway Fwy Garden Gdn Gardens Gdns Gateway Gtwy Glen "
    "Gln Glens Glns Green Grn Greens Grns Grove Grv Groves Grvs Harbor Hbr Harbors Hbrs Haven Hvn Heights Hts "
    "Highway Hwy Hill Hl Hills Hls Hollow Holw Inlet Inlt Island Is Islands Iss Isle Junction Jct Junctions Jcts "
    "Key Ky Keys Kys Knoll Knl Knolls Knls Lake Lk Lakes Lks Land Landing Lndg Lane Ln Light Lgt Lights Lgts Loaf Lf "
    "Lock Lck Locks Lcks Lodge Ldg Loop Mall Manor Mnr Manors Mnrs Meadow Mdw Meadows Mdws Mews Mill Ml Mills Mls "
    "Mission Msn Motorway Mtwy Mount Mt Mountain Mtn Mountains Mtns Neck Nck Orchard Orch Oval Overpass Opas Park "
    "Prk Parks Parkway Pkwy Parkways Pkwys Pass Passage Psge Path Pike Pine Pne Pines Pnes Place Pl Plain Pln Plains "
    "Plns Plaza Plz Point Pt Points Pts Port Prt Ports Prts Prairie Pr Radial Radl Ramp Ranch Rnch Rapid Rpd Rapids "
    "Rpds Rest Rst Ridge Rdg Ridges Rdgs River Riv Road Rd Roads Rds Route Rte Row Rue Run Shoal Shl Shoals Shls "
    "Shore Shr Shores Shrs Skyway Skwy Spring Spg Springs Spgs Spur Spurs Square Sq Squares Sqs Station Sta "
    "Stravenue Stra Stream Strm Street St Str Streets Sts Summit Smt Terrace Ter Terr Throughway Trwy Trace Trce "
    "Track Trak Trafficway Trfy Trail Trl Trailer Trlr Tunnel Tunl Turnpike Tpke Underpass Upas Union Un Unions Uns "
    "Valley Vly Valleys Vlys Via Viaduct Via Vdct View Vw Views Vws Village Vlg Villages Vlgs Ville Vl Vista Vis "
    "Walk Walks Wall Way Ways Well Wl Wells Wls"
).split()
_OTHER_SUFFIXES: Final = [
    *(
        "Close Cl Gate Gates Hill Rise Mead Wharf Quay Quays Wynd Parade Pde Esplanade Esp Promenade Prom Approach "
        "App Arcade Broadway Chase Circuit Cct Circus Concourse Copse Crossway Driveway Fairway Gully Highroad "
        "Laneway Link Mall Meander Outlook Pathway Piazza Pocket Quadrant Ramble Range Reach Reserve Retreat "
        "Ridgeway Riverway Roadway Strand Terrace Tollway Vale Walkway Yard "
        # the rest of the Australian standard's street types (AS/NZS 4819)
        "Access Alleyway Amble Anchorage Artery Basin Block Brace Brae Break Brow Byway Centreway Circlet "
        "Colonnade Corso Courtyard Cross Cruiseway Cul-de-sac Cutting Dell Deviation Dip Distributor Edge Elbow "
        "End Entrance Firetrail Follow Footway Foreshore Formation Front Frontage Gap Glade Grange Ground "
        "Interchange Intersection Lees Line Little Lookout Lower Mew Nook Parklands Part Plateau Quad Quadrangle "
        "Ride Ring Riviera Roadside Ronde Rosebowl Rotary Round Siding Slope Sound Stairs Steps Strip Subway Tarn "
        "Thoroughfare Top Tor Towers Triangle Trunkway Turn Upper Villas Wade"
    ).split(),
    "Fire Track",
    "Right Of Way",
    "Service Way",
    "State Highway",
]
_SUFFIXES: Final = tuple(sorted(set(_USPS_SUFFIXES + _OTHER_SUFFIXES), key=lambda s: (-len(s), s)))
# Suffixes that are nearly always a street: shape alone scores enough with these.
_COMMON_SUFFIXES: Final = frozenset(
    "Street St Str Avenue Ave Av Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Place Pl Terrace Ter Parkway "
    "Pkwy Highway Hwy Crescent Cres Close Square Sq Way Circle Cir Plaza Plz".split()
)


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in words)


_SUFFIX_ANY: Final = _alternation([*_SUFFIXES, *(s.upper() for s in _SUFFIXES if len(s) > 1)])
_SUFFIX_COMMON: Final = _alternation(
    [s for s in _SUFFIXES if s in _COMMON_SUFFIXES] + [s.upper() for s in _SUFFIXES if s in _COMMON_SUFFIXES]
)
_UNIT_WORDS: Final = r"(?:Apartment|Apt|Suite|Ste|Unit|Flat|Studio|Room|Rm|Floor|Fl|Level|Lot|Bldg|Building)"
_HOUSE: Final = r"(?:\d{1,4}/)?\d{1,6}(?:-\d{1,4})?[A-Za-z]?"
_NAME_WORD: Final = (
    r"(?:[A-Z][a-z'\u2019]+(?:-[A-Z][a-z]+)?|Mc[A-Z][a-z]+|O'[A-Z][a-z]+|[A-Z]{2,}|\d{1,3}(?:st|nd|rd|th))"
)
_DIRECTION: Final = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?"
_LEAD_UNIT: Final = rf"{_UNIT_WORDS}\.?[ ]{{1,2}}#?[A-Za-z0-9-]{{1,5}}(?:,[ ]{{0,2}}|[ ]{{1,2}}|[ ]{{0,2}}\n[ ]{{0,2}})"
_UNIT: Final = rf"(?:,?[ ]{{1,2}}(?:{_UNIT_WORDS}\.?[ ]{{0,2}}#?[ ]?[A-Za-z0-9-]{{1,6}}|#[ ]?[A-Za-z0-9-]{{1,6}}))"
_POSTCODE: Final = (
    r"(?:\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d|\d{4})(?![A-Za-z0-9])"
)
_CITY: Final = r"(?:[A-Z][a-z'\u2019]+(?:[ -][A-Z][a-z'\u2019]+){0,2})"
_TAIL_SEP: Final = r"(?:,[ ]{0,2}|[ ]{0,2}\n[ ]{0,2})"
_TAIL: Final = (
    rf"(?:{_TAIL_SEP}{_CITY}(?:(?:,[ ]{{0,2}}|[ ]{{1,2}}|[ ]{{0,2}}\n[ ]{{0,2}})[A-Z]{{2,3}}(?![A-Za-z]))?"
    rf"(?:(?:,[ ]{{0,2}}|[ ]{{1,2}}|[ ]{{0,2}}\n[ ]{{0,2}}){_POSTCODE}))"
)


# US military mail: "PSC 4109, Box 4668\nAPO AA 17580", "USNS Gardner\nFPO AA 54190".
_MILITARY_TAIL: Final = r"(?:,[ ]{0,2}|[ ]{1,2}|[ ]{0,2}\n[ ]{0,2})(?:APO|FPO|DPO)[ ]{1,2}A[AEP][ ]{1,2}\d{5}(?!\d)"
_MILITARY: Final = (
    rf"(?<![\w/#-])(?:(?:PSC|CMR|Unit)[ ]\d{{1,5}},?[ ]{{1,2}}Box[ ]\d{{1,5}}|(?:USNS|USNV|USS|USCGC)[ ][A-Z][a-z]+)"
    rf"{_MILITARY_TAIL}"
)


_PO_BOX: Final = (
    r"(?<![\w/#-])(?:P\.?[ ]?O\.?[ ]?Box|POB|Post[ ]Office[ ]Box)[ ]{1,2}\d{1,6}(?![\w])"
    rf"(?:{_TAIL_SEP}{_CITY}(?:(?:,[ ]{{0,2}}|[ ]{{1,2}})[A-Z]{{2,3}}(?![A-Za-z]))?"
    rf"(?:(?:,[ ]{{0,2}}|[ ]{{1,2}}){_POSTCODE})?)?"
)
# Lower case ("I live at 12 main street"): only the plainest suffixes, and only with a context word.
_LOWER_SUFFIXES: Final = (
    "street st avenue ave road rd boulevard blvd lane ln terrace parkway pkwy highway hwy crescent".split()
)
_LOWER_STREET: Final = (
    rf"(?<![\w/#-])\d{{1,6}}[a-z]?[ ]{{1,2}}(?:[a-z][a-z'\u2019]+[ ]){{1,3}}(?:{_alternation(_LOWER_SUFFIXES)})"
    r"(?![A-Za-z])\.?"
)


# Continental Europe. Germanic and Dutch street names are one word ending in the street type, then the number:
# "Losekannstraße 534", "Alois-Kühnert-Weg 1/4", "Aidenlaan 48", "Berliner Straße 12", "Hauptstr. 5".
_GERMANIC_STRONG: Final = (
    "straße strasse str. weg gasse allee platz damm chaussee steig pfad laan straat plein gracht dreef kade singel "
    "steeg baan vej gatan vägen veien gata"
).split()
_GERMANIC_WEAK: Final = "ring hof pad gade ufer boulevard".split()  # Spring, Keypad, Brigade: need a context word
_EU_HOUSE: Final = r"[ ]{1,2}\d{1,5}[a-zA-Z]?(?:[ ]?[-/][ ]?\d{1,4}[a-zA-Z]?)?(?![\w])"
_EU_CITY: Final = (
    r"\p{Lu}[\p{L}'\-]+(?:[ ](?:(?:im|am|an|der|bei|ob|sur|sous|de|la|le|les|en|di|del|da|do)[ ])?\p{Lu}[\p{L}'\-]+)"
    r"{0,4}(?:[ ]\([A-Z]{2}\))?"
)
_EU_TAIL: Final = (
    r"(?:,?[ ]{1,2}|[ ]{0,2}\n[ ]{0,2})(?:[A-Z]{1,2}-)?(?:\d{5}(?:-\d{3})?|\d{4}(?:[ ]?[A-Z]{2})?)(?![\w])"
    rf",?[ ]{{1,2}}{_EU_CITY}"
)


def _germanic(suffixes: Sequence[str]) -> str:
    return (
        r"(?<![\w-])\p{Lu}[\p{Ll}\p{Lu}\-]{1,40}?(?:[ ](?=\p{Lu}))?"
        rf"(?i:{_alternation(sorted(suffixes, key=lambda w: (-len(w), w)))}){_EU_HOUSE}"
    )


# Romance languages: the street type first. "71, rue Éric Mercier" (French, the number first), "Rua Clara Freitas, 75",
# "Via Roma 10", "Calle Mayor 5", "Piazza Maffei, 78", "rue Germaine Muriset 21".
_FRENCH_TYPES: Final = "rue avenue boulevard bd chemin allée impasse quai place route cours passage square".split()
_ROMANCE_TYPES: Final = (
    "Piazza Piazzale Strada Via Viale Vicolo Borgo Contrada Rotonda Incrocio Stretto Canale Corso Largo Lungomare "
    "Plaza Calle Avenida Avda. Av. Av Vial Rambla Glorieta Urbanización Callejón Cañada Alameda Acceso C. C/ Ronda "
    "Pasaje Cuesta Pasadizo Paseo Camino Carrer Carretera Travesía Rua R. Travessa Praça Estrada Ladeira Rodovia "
    "Loteamento Colônia Sítio Estação Chácara Condomínio Conjunto Esplanada Fazenda Jardim Parque Quadra Recanto "
    "Residencial Setor Trecho Vereda Viela Vila Viaduto Aeroporto Área Campo Distrito Favela Feira Lago Lagoa Morro "
    "Núcleo Passarela Pátio Praia Trevo Vale"
).split()
# Types that may stand without a number, after a context word ("Address: Trecho de da Rosa"); the other types are
# plain words elsewhere ("send it via Slack", "Place", "Strada") and need a number.
_NUMBERLESS_TYPES: Final = (
    "rue chemin avenue boulevard allée impasse quai Rua Avenida Travessa Alameda Praça Estrada Ladeira Rodovia "
    "Loteamento Colônia Sítio Estação Chácara Condomínio Viela Vereda Calle Callejón Glorieta Urbanización Cañada "
    "Rambla Paseo Pasaje Camino Viale Piazza Vicolo Contrada Stretto Rotonda Largo Aeroporto Distrito Favela Fazenda "
    "Jardim Lagoa Morro Núcleo Passarela Pátio Praia Quadra Recanto Residencial Trevo Vila Trecho Setor Conjunto "
    "Parque Esplanada Viaduto Campo Feira Lago Vale"
).split()
_PARTICLE: Final = r"(?:de|da|do|das|dos|del|della|delle|degli|di|du|des|de[ ]la|de[ ]l'|d'|l'|la|le|y|e)"
# A name of capitalised words, each after up to two particles: "de Guillou", "de das Neves", "d'Estienne".
_EU_NAME: Final = (
    rf"(?:{_PARTICLE}(?:[ ]|(?<='))){{0,2}}\p{{Lu}}[\p{{L}}'\-.]*"
    rf"(?:[ ](?:{_PARTICLE}(?:[ ]|(?<='))){{0,2}}\p{{Lu}}[\p{{L}}'\-]*){{0,3}}"
)
_EU_UNIT: Final = (
    r"(?:[ ,]{1,2}(?:Appartamento|Interno|Int\.|Scala|Puerta|Piso|Apt\.|Apto\.?|Bloco|Andar|Sala|Casa|Lote|"
    r"Bâtiment|Bât\.|Étage)[ ]?\d{1,4}[A-Za-z]?)?"
)


def _typed(types: Sequence[str]) -> str:
    """The alternation of street types, each also with a capital first letter."""
    both = {t for t in types} | {t[0].upper() + t[1:] for t in types}
    return _alternation(sorted(both, key=lambda w: (-len(w), w)))


# English words too ("2 square Meters"): a number before them is not enough.
_FRENCH_PLAIN_WORDS: Final = frozenset("place route cours passage square".split())


def _french_first(types: Sequence[str]) -> str:
    return rf"(?<![\w/#-])\d{{1,4}}(?:[ ]?(?:bis|ter|[A-C]))?,?[ ](?:{_typed(types)})[ ]{_EU_NAME}(?![\w])"


_FRENCH_FIRST: Final = _french_first([t for t in _FRENCH_TYPES if t not in _FRENCH_PLAIN_WORDS])
_TYPE_FIRST: Final = (
    rf"(?<![\w-])(?:{_typed(_ROMANCE_TYPES)}|{_alternation(_FRENCH_TYPES)})[ ]{_EU_NAME}"
    r",?[ ]{1,2}(?:n[º°o]\.?[ ]?)?(?:\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?|S/N)(?![\w])" + _EU_UNIT
)
_TYPE_ONLY: Final = rf"(?<![\w-])(?:{_typed(_NUMBERLESS_TYPES)})[ ]{_EU_NAME}(?![\w])"


def _street(suffixes: str) -> str:
    return (
        rf"(?<![\w/#-])(?:{_LEAD_UNIT}(?:{_HOUSE}[ ]{{1,2}})?|{_HOUSE}[ ]{{1,2}})(?:{_DIRECTION}[ ])?"
        rf"(?:{_NAME_WORD}[ ]){{1,3}}(?:{suffixes})(?![A-Za-z])\.?(?:[ ]{_DIRECTION}(?![A-Za-z]))?"
    )


_STREET_TRIGGER: Final = (
    rf"[0-9][A-Za-z]?[ ,\n]+(?:[A-Z0-9][A-Za-z0-9'.-]*[ ]+){{1,4}}(?:{_SUFFIX_ANY})(?:[^A-Za-z]|$)",
    r"[ADF]PO[ ]+A[AEP][ ]+[0-9]{5}",
)


def _ascii_pattern(word: str) -> str:
    """``word`` as an ASCII regex: each letter that is not ASCII becomes ``.`` (RE2 screens ASCII text only)."""
    return "".join(re.escape(ch) if ch.isascii() else "." for ch in word.lower()).replace("ß", ".{1,2}")


_EU_TRIGGER_TYPES: Final = "|".join(
    sorted({_ascii_pattern(t) for t in (*_ROMANCE_TYPES, *_FRENCH_TYPES)}, key=lambda w: (-len(w), w))
)
_STREET_FOLDED_TRIGGER: Final = (
    r"box[ ]{1,2}[0-9]",
    rf"(?:stra.{{1,2}}e|{'|'.join(_ascii_pattern(w) for w in (*_GERMANIC_STRONG, *_GERMANIC_WEAK))})[ ]{{1,3}}[0-9]",
    rf"(?:^|[^a-z])(?:{_EU_TRIGGER_TYPES})[ ][^\n]{{0,80}}(?:[0-9]|s/n)",
    rf"(?:^|[^a-z])(?:{'|'.join(_ascii_pattern(t) for t in _NUMBERLESS_TYPES)})[ ]",
    rf"[0-9][a-z]?[ ]+(?:[a-z][a-z'.-]*[ ]+){{1,3}}(?:{_alternation(_LOWER_SUFFIXES)})(?:[^a-z]|$)",
)
ADDRESS_CONTEXT: Final[tuple[str, ...]] = (
    "address",
    "addr",
    "live",
    "lives",
    "living",
    "located",
    "ship",
    "shipping",
    "deliver",
    "delivery",
    "billing",
    "mailing",
    "residence",
    "reside",
    "resides",
    "home",
    "postal",
    "mail",
    "send",
)
ADDRESS_NEGATIVE_CONTEXT: Final[tuple[str, ...]] = (
    "step",
    "chapter",
    "section",
    "page",
    "figure",
    "table",
    "phase",
    "top",
    "version",
    "item",
    "rule",
    "tip",
    "reason",
    "point",
    "line",
    "row",
    "column",
)


class StreetAddressRecognizer(PatternRecognizer):
    """A house number, a capitalised street name and a street suffix (USPS list, UK and Australian types), with an
    optional unit (``Apt. 543``, ``Suite 750``, ``#12``, ``Flat 3,``) and city, state and postcode tail.

    With a unit or a postcode tail it scores 0.6, with a common suffix (Street, Ave, Road, ...) 0.5, with any other
    suffix (Points, Springs, ...) 0.3, which needs a context word (address, lives at, ship to, billing, ...). US
    military mail (``PSC 4109, Box 4668, APO AA 17580``) scores 0.6, a PO Box 0.5, a lower-case street with a plain
    suffix (``12 main street``) 0.1: only with a context word. Continental shapes: ``Losekannstraße 534`` (0.5; 0.3
    for ``-ring``/``-hof``/``-pad``), ``71, rue Éric Mercier`` (0.5), ``Rua Clara Freitas, 75`` (0.3, type first), and
    0.6 with a postcode and city after them.
    """

    def __init__(self) -> None:
        any_street = _street(_SUFFIX_ANY)
        super().__init__(
            supported_entity=STREET_ADDRESS,
            name="spanguard.street_address",
            patterns=[
                Pattern("street with unit or postcode", rf"{any_street}(?:{_UNIT}?{_TAIL}|{_UNIT})", 0.6),
                Pattern("street, common suffix", rf"{_street(_SUFFIX_COMMON)}{_UNIT}?", 0.5),
                Pattern("street, any suffix", rf"{any_street}{_UNIT}?", 0.3),
                Pattern("military mail", _MILITARY, 0.6),
                Pattern("post office box", _PO_BOX, 0.5),
                Pattern("street, lower case", _LOWER_STREET, 0.1),
                Pattern("germanic street with postcode", _germanic(_GERMANIC_STRONG + _GERMANIC_WEAK) + _EU_TAIL, 0.6),
                Pattern("germanic street", _germanic(_GERMANIC_STRONG), 0.5),
                Pattern("germanic street, ambiguous suffix", _germanic(_GERMANIC_WEAK), 0.3),
                Pattern("french street, number first", rf"{_FRENCH_FIRST}(?:{_EU_TAIL})?", 0.5),
                Pattern("french street, number first, plain word", _french_first(sorted(_FRENCH_PLAIN_WORDS)), 0.3),
                Pattern("romance street with postcode", rf"{_TYPE_FIRST}{_EU_TAIL}", 0.6),
                Pattern("romance street", _TYPE_FIRST, 0.3),
                Pattern("romance street, no number", _TYPE_ONLY, 0.1),
            ],
            context=list(ADDRESS_CONTEXT),
            global_regex_flags=regex.MULTILINE,
        )
        self.trigger = Trigger(patterns=_STREET_TRIGGER, folded_patterns=_STREET_FOLDED_TRIGGER)
        self.negative_context = list(ADDRESS_NEGATIVE_CONTEXT)


# --- the set ---------------------------------------------------------------------------------------------------------


def _phone() -> PhoneShapeRecognizer:
    recognizer: Any = PhoneShapeRecognizer()
    recognizer.trigger = DIGITS
    return recognizer


def pii_recognizers() -> list[EntityRecognizer]:
    """A fresh instance of every recognizer of this module (``PHONE_NUMBER`` included), in run order."""
    identifiers: list[EntityRecognizer] = [*_national_recognizers(), PassportRecognizer(), DateOfBirthRecognizer()]
    phone = _phone()
    # A word that names an identifier says the digits after it are that identifier, not a phone number.
    named = {w.lower() for r in identifiers for w in r.context or () if w.lower() not in PHONE_CONTEXT}
    phone.negative_context = list(dict.fromkeys([*PHONE_NEGATIVE_CONTEXT, *sorted(named)]))
    return [*identifiers, StreetAddressRecognizer(), phone]


# --- Presidio's recognizers, as spanguard runs them ---------------------------------------------------------------

# Offline public-suffix data: the snapshot bundled with tldextract, no cache directory, never the network.
_TLD_EXTRACT: Final = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
_EMAIL_TRIGGER: Final = Trigger(literals=("@",))
_IBAN_TRIGGER: Final = Trigger(patterns=(r"[A-Z][A-Z]\d\d[ -]?[A-Z0-9]{4}",))
_IP_TRIGGER: Final = Trigger(patterns=(r"\.\d{1,3}\.\d{1,3}\.\d", r":[0-9A-Fa-f]{0,4}:"))


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with its domain check on tldextract's bundled suffix list (never the network),
    and without the ``password@host`` part of ``scheme://user:password@host`` URLs (that is a ``URL_PASSWORD``)."""

    def validate_result(self, pattern_text: str) -> bool:
        """True when the domain ends in a known public suffix."""
        return _TLD_EXTRACT(pattern_text.rpartition("@")[2]).fqdn != ""

    @staticmethod
    def trim_start(text: str, start: int, end: int) -> int:
        """Where the address starts: after the last ``/`` of its local part (``/u/ada@example.com`` in a URL)."""
        at = text.find("@", start, end)
        slash = text.rfind("/", start, at) if at > 0 else -1
        return slash + 1 if slash >= 0 else start

    def keep_match(self, text: str, start: int, end: int) -> bool:
        """False for a match in the credentials of a URL (``scheme://user:password@host``, ``scheme://token@host``):
        the text from ``://`` to the match's ``@`` is then all authority (no ``/?#@``) and the match starts in it."""
        token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start), text.rfind("\t", 0, start)) + 1
        scheme_end = text.rfind("://", token_start, start)
        if scheme_end < 0:
            return True
        at = text.find("@", start, end)
        authority = text[scheme_end + 3 : at]
        return at < 0 or any(c in authority for c in "/?#@")

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> list:
        """Presidio's analysis, without URL credentials."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for r in results:
            r.start = self.trim_start(text, r.start, r.end)
        return [r for r in results if self.keep_match(text, r.start, r.end)]


class TrimmingIbanRecognizer(IbanRecognizer):
    """Presidio's IBAN recognizer that also finds an IBAN followed by an upper-case word (``... 5733 DATABASE_URL``).

    Presidio's pattern absorbs such a word as one more group and the checksum then fails, so the IBAN is missed. Here a
    match that gave no result is retried with its prefixes, shortest first; the first one that passes the checksum and
    the country's format is the IBAN.
    """

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        """Presidio's analysis, plus the IBANs it loses to a following word."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)  # type: ignore[arg-type]
        flags = regex_flags or self.global_regex_flags or 0
        for pattern in self.patterns:  # type: ignore[has-type]
            for match in regex.finditer(pattern.regex, text, flags=flags):
                start = match.start()
                if any(r.start == start for r in results):
                    continue
                candidate = match.group(0)
                for end in range(15, len(candidate)):
                    if candidate[end - 1] in " -" or candidate[end] not in " -":
                        continue  # end at a group boundary only
                    if self.validate_result(candidate[:end]):
                        results.append(
                            RecognizerResult(
                                self.supported_entities[0],
                                start,
                                start + end,
                                EntityRecognizer.MAX_SCORE,
                                recognition_metadata={
                                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,  # type: ignore[has-type]
                                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                                },
                            )
                        )
                        break
        return results


def _card_recognizer() -> CreditCardRecognizer:
    """Presidio's card recognizer (Luhn-checked), plus what its patterns miss: Mastercard's 2221-2720 range and
    19-digit numbers in groups of four (UnionPay, Visa, Maestro, Discover)."""
    mastercard_2 = Pattern("Mastercard 2-series (weak)", r"\b2[2-7]\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b", 0.3)
    nineteen = Pattern("19 digits (weak)", r"\b[2-6]\d{3}(?:([- ]?)\d{4})(?:\1\d{4}){2}\1\d{3}\b", 0.3)
    return CreditCardRecognizer(patterns=[*CreditCardRecognizer.PATTERNS, mastercard_2, nineteen])


def _ssn_recognizer() -> UsSsnRecognizer:
    """Presidio's SSN recognizer; its context ``ss#`` is the word ``ss`` to the redactor, which reads ``\\w`` runs."""
    return UsSsnRecognizer(context=[*UsSsnRecognizer.CONTEXT, "ss"])


def _presidio_recognizers() -> list[EntityRecognizer]:
    """Presidio's recognizers of e-mail, card, IBAN, SSN and IP addresses (spanguard's variants), with their triggers.

    Not Presidio's ``PhoneRecognizer``: :class:`PhoneShapeRecognizer` finds phone numbers in its place.
    """
    out: list[EntityRecognizer] = []
    pairs: tuple[tuple[Any, TriggerFunction], ...] = (
        (OfflineEmailRecognizer(), _EMAIL_TRIGGER),
        (_card_recognizer(), DIGITS),
        (TrimmingIbanRecognizer(), _IBAN_TRIGGER),
        (_ssn_recognizer(), DIGITS),
        (IpRecognizer(), _IP_TRIGGER),
    )
    for recognizer, trigger in pairs:
        recognizer.trigger = trigger
        out.append(recognizer)
    return out


def builtin_recognizers() -> list[EntityRecognizer]:
    """A fresh instance of every built-in recognizer, in run order: secrets, Presidio's identifiers, then the PII
    recognizers of this module."""
    return [*secret_recognizers(), *_presidio_recognizers(), *pii_recognizers()]

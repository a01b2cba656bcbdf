"""PII and secret redaction over plain values: texts, attribute maps and span views.

Presidio recognizers (its own, spanguard's secret recognizers in :mod:`spanguard.processors.secrets`, the PII ones in
:mod:`spanguard.processors.pii`, and a user's from ``recognizers:``) run behind cheap triggers screened in one RE2 pass;
values are also redacted by the key that holds them. What is detected, where, with which operators, and how it fails
closed: docs/redaction.md.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import TYPE_CHECKING, Any, Final, Literal

import phonenumbers
import re2
import regex
import tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)
from presidio_anonymizer.operators import Mask, Redact, Replace
from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator
from spanguard.processors import names as _names
from spanguard.processors import pii as _pii
from spanguard.processors import secrets as _secrets
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

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

logger = logging.getLogger("spanguard.processors.redaction")

# --- entity types ---------------------------------------------------------------------------------------------------

EMAIL_ADDRESS: Final = "EMAIL_ADDRESS"
PHONE_NUMBER: Final = "PHONE_NUMBER"
CREDIT_CARD: Final = "CREDIT_CARD"
IBAN_CODE: Final = "IBAN_CODE"
US_SSN: Final = "US_SSN"
IP_ADDRESS: Final = "IP_ADDRESS"
PERSON: Final = "PERSON"
LOCATION: Final = "LOCATION"
USER_ID: Final = "USER_ID"
"""The type of a value held by a key that names a user's identity (``user.id``, ``enduser.id``)."""
URL_QUERY: Final = "URL_QUERY"
"""The type of a query-string value of a URL attribute (``url.query``, the query part of ``url.full``)."""
TAX_ID: Final = _pii.TAX_ID
NATIONAL_ID: Final = "NATIONAL_ID"
"""The type of a value held by a key that names a national identity number (``national_id``, ``id_card``)."""
DROPPED_KEY: Final = "DROPPED_KEY"
"""The type counted for an attribute (or JSON value) removed because its key matches ``always_drop``."""
REDACTION_FAILED: Final = "REDACTION_FAILED"
"""The type counted for a value that failed closed."""
FAILED_MARKER: Final = "<REDACTION_FAILED>"
DROPPED_MARKER: Final = "<DROPPED_KEY>"

STRUCTURED_ENTITIES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys((EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, *_pii.PII_ENTITIES))
)
SECRET_ENTITIES: Final[tuple[str, ...]] = _secrets.SECRET_ENTITIES
NER_ENTITIES: Final[tuple[str, ...]] = (PERSON, LOCATION)
KEY_ENTITIES: Final[tuple[str, ...]] = (USER_ID, URL_QUERY, NATIONAL_ID)
"""Types only ever found by the key that holds a value (see ``redact_keys``)."""
DEFAULT_ENTITIES: Final[tuple[str, ...]] = STRUCTURED_ENTITIES + SECRET_ENTITIES + NER_ENTITIES + KEY_ENTITIES
"""Every entity type spanguard can detect (``PERSON``/``LOCATION`` only with ``ner_model``)."""
ENTITY_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "SECRETS": SECRET_ENTITIES,
    "API_KEY": (_secrets.OPENAI_API_KEY, _secrets.ANTHROPIC_API_KEY, _secrets.SECRET),
}
"""Names accepted in ``entities`` and ``operators`` that stand for several types."""

CONTENT_ATTRIBUTES: Final[frozenset[str]] = frozenset(GEN_AI_CONTENT_ATTRIBUTES)
"""Attributes that hold JSON (always parsed, even a bare JSON string); other values are parsed when they look like a
JSON object or array."""
MESSAGE_ATTRIBUTES: Final = frozenset(
    {GEN_AI_INPUT_MESSAGES, GEN_AI_OUTPUT_MESSAGES, GEN_AI_SYSTEM_INSTRUCTIONS, GEN_AI_TOOL_DEFINITIONS}
)
"""Content attributes that are lists of messages, parts or tool definitions (see ``STRUCTURAL_KEYS``)."""

DEFAULT_NEVER_SCAN: Final[tuple[str, ...]] = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.conversation.id",
    "gen_ai.tool.call.id",
    "gen_ai.tool.name",
    "gen_ai.tool.type",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.agent.id",
    "gen_ai.output.type",
    "gen_ai.token.type",
    "gen_ai.request.encoding_formats",
    "openai.response.system_fingerprint",
    "openai.request.service_tier",
    "openai.response.service_tier",
    "server.address",
    "error.type",
    "otel.*",
    "telemetry.sdk.*",
    "service.name",
    "service.version",
    "spanguard.*",
    "trace_id",
    "span_id",
    "*.trace_id",
    "*.span_id",
)
"""Ids, model names and enumerations: never personal data, and ids must stay intact for sampling and sessions
(``spanguard.*`` except the free-text attributes of ``SPANGUARD_FREE_TEXT_ATTRIBUTES``, which are always scanned)."""

DEFAULT_ALWAYS_DROP: Final[tuple[str, ...]] = (
    "http.request.header.authorization",
    "http.request.header.proxy-authorization",
    "http.request.header.cookie",
    "http.response.header.set-cookie",
    "http.request.header.x-api-key",
    "*authorization*",
    "*api_key*",
    "*api-key*",
    "*apikey*",
    "*password*",
    "*passwd*",
    "*secret*",
    "*cookie*",
    "*private_key*",
    "*access_token*",
    "*refresh_token*",
    "*session_token*",
)
"""Keys whose values are credentials whatever they look like."""

DEFAULT_REDACT_KEYS: Final[Mapping[str, str]] = {
    "user.email": EMAIL_ADDRESS,
    "user.full_name": PERSON,
    "user.name": PERSON,
    "user.id": USER_ID,
    "enduser.id": USER_ID,
    "enduser.pseudo.id": USER_ID,
    "client.address": IP_ADDRESS,
    "client.socket.address": IP_ADDRESS,
}
"""The conventions' personal-data attributes: their values are redacted as the given type, whatever they look like."""

DEFAULT_REDACT_KEY_WORDS: Final[Mapping[str, str]] = {
    "email": EMAIL_ADDRESS,
    "emails": EMAIL_ADDRESS,
    "e_mail": EMAIL_ADDRESS,
    "phone": PHONE_NUMBER,
    "phones": PHONE_NUMBER,
    "telephone": PHONE_NUMBER,
    "mobile": PHONE_NUMBER,
    "msisdn": PHONE_NUMBER,
    "fax": PHONE_NUMBER,
    "tel": PHONE_NUMBER,
    "ssn": US_SSN,
    "social_security": US_SSN,
    "full_name": PERSON,
    "fullname": PERSON,
    "first_name": PERSON,
    "firstname": PERSON,
    "last_name": PERSON,
    "lastname": PERSON,
    "given_name": PERSON,
    "family_name": PERSON,
    "surname": PERSON,
    "middle_name": PERSON,
    "maiden_name": PERSON,
    "customer_name": PERSON,
    "contact_name": PERSON,
    "cardholder_name": PERSON,
    "password": _secrets.SECRET,
    "passwd": _secrets.SECRET,
    "pwd": _secrets.SECRET,
    "passcode": _secrets.SECRET,
    "passphrase": _secrets.SECRET,
    "pin": _secrets.SECRET,
    "token": _secrets.SECRET,
    "secret": _secrets.SECRET,
    "api_key": _secrets.SECRET,
    "apikey": _secrets.SECRET,
    "access_key": _secrets.SECRET,
    "private_key": _secrets.SECRET,
    "credential": _secrets.SECRET,
    "credentials": _secrets.SECRET,
    "webhook": _secrets.SECRET,
    "webhook_url": _secrets.SECRET,
    "dsn": _secrets.SECRET,
    "connection_string": _secrets.SECRET,
    "card_number": CREDIT_CARD,
    "credit_card": CREDIT_CARD,
    "cc_number": CREDIT_CARD,
    "card_no": CREDIT_CARD,
    "iban": IBAN_CODE,
    "account_number": _pii.US_BANK_NUMBER,
    "bank_account": _pii.US_BANK_NUMBER,
    "dob": _pii.DATE_OF_BIRTH,
    "date_of_birth": _pii.DATE_OF_BIRTH,
    "birth_date": _pii.DATE_OF_BIRTH,
    "birthdate": _pii.DATE_OF_BIRTH,
    "birthday": _pii.DATE_OF_BIRTH,
    "street": _pii.STREET_ADDRESS,
    "street_address": _pii.STREET_ADDRESS,
    "home_address": _pii.STREET_ADDRESS,
    "shipping_address": _pii.STREET_ADDRESS,
    "billing_address": _pii.STREET_ADDRESS,
    "mailing_address": _pii.STREET_ADDRESS,
    "postal_address": _pii.STREET_ADDRESS,
    "delivery_address": _pii.STREET_ADDRESS,
    "address_line": _pii.STREET_ADDRESS,
    "passport": _pii.PASSPORT,
    "driver_license": _pii.US_DRIVER_LICENSE,
    "drivers_license": _pii.US_DRIVER_LICENSE,
    "driving_licence": _pii.US_DRIVER_LICENSE,
    "driving_license": _pii.US_DRIVER_LICENSE,
    "licence_number": _pii.US_DRIVER_LICENSE,
    "license_number": _pii.US_DRIVER_LICENSE,
    "dl_number": _pii.US_DRIVER_LICENSE,
    "ni_number": _pii.UK_NINO,
    "nino": _pii.UK_NINO,
    "national_insurance": _pii.UK_NINO,
    "nhs": _pii.UK_NHS,
    "aadhaar": _pii.IN_AADHAAR,
    "aadhar": _pii.IN_AADHAAR,
    "pan": _pii.IN_PAN,
    "tax_id": TAX_ID,
    "taxid": TAX_ID,
    "tax_number": TAX_ID,
    "tin": TAX_ID,
    "ein": TAX_ID,
    "itin": TAX_ID,
    "vat_number": TAX_ID,
    "vat_id": TAX_ID,
    "national_id": NATIONAL_ID,
    "id_card": NATIONAL_ID,
    "id_number": NATIONAL_ID,
    "personal_id": NATIONAL_ID,
}
"""Words of a key (split at ``. _ -`` and camelCase, lower-cased) that say what its value holds: a key containing one
of them (``customer.phone``, ``billingEmail``, ``x-api-key``) has its scalar values redacted as the given type. A key
that is just ``address`` counts as ``STREET_ADDRESS``; ``ip_address`` and ``server.address`` do not."""

URL_KEYS: Final[tuple[str, ...]] = ("url.full", "url.original", "http.url", "http.target", "url.query")
"""Attributes holding a URL (or, for ``url.query``, a query string) whose query values are redacted as ``URL_QUERY``."""

Operator = Literal["replace", "mask", "hash", "drop"]

_MASK_KEEP_LAST: Final = frozenset({CREDIT_CARD, IBAN_CODE, US_SSN, PHONE_NUMBER})
_NER_LABELS: Final[Mapping[str, str]] = {
    "PERSON": PERSON,
    "PER": PERSON,
    "GPE": LOCATION,
    "LOC": LOCATION,
    "FAC": LOCATION,
    "LOCATION": LOCATION,
}
_NER_SCORE: Final = 0.85  # Presidio's SpacyRecognizer default strength
_CODE_LIKE: Final = regex.compile(r"[^\p{Ll}]*\d[^\p{Ll}]*")  # an identifier: a digit and no lower-case letter
# An identifier among a model's words: a digit and a "-", ".", "_", "/", ":" or "#" inside (OHP-3798-TS, v15.0.124).
_CODE_TOKEN: Final = regex.compile(r"(?<!\S)(?=\S*\d)\S*[\w][-._/:#][\w]\S*")
_NER_CANDIDATE: Final = regex.compile(r"\p{Lu}\p{Ll}|\p{Lo}")  # a capitalised word, or a script without case
_CONTEXT_FACTOR: Final = 0.35  # Presidio's LemmaContextAwareEnhancer defaults
_CONTEXT_MIN_SCORE: Final = 0.4
_CONTEXT_WORDS: Final = 5
# Words between a negative context word and its number: "order no. 4155550132", "PO number: 5512093348".
# Not "my" or "your": a possessive says the number is someone's own ("sent receipt: my number is ...").
_FILLER_WORDS: Final = frozenset({"no", "nr", "num", "number", "numbers", "is", "was", "of", "the"})
_WORD: Final = re.compile(r"[^\W_]+")  # words; "driver_license" is two, as a context
_JSON_DEPTH: Final = 4
# Fields of the GenAI content JSON (messages, their parts, tool definitions) that describe structure, not content:
# they are left as they are (a tool call's id must still match its response's). Only at those levels: the same keys
# inside tool-call arguments or responses are scanned like everything else.
STRUCTURAL_KEYS: Final = frozenset({"role", "type", "id", "finish_reason", "mime_type", "modality", "file_id"})
_RESOURCE_CACHE_SIZE: Final = 256  # distinct resources whose redaction is kept (a fleet has few)
_MISS: Final = object()
_NO_RESOURCES: Final[Mapping[int, Any]] = {}
_NER_CACHE_SIZE: Final = 4096  # NER results of recent texts (system prompts, earlier turns), by 128-bit digest
_NER_CHARS_PER_BUDGET: Final = 1000  # the NER pass gets time_budget_ms per text or per 1,000 characters of it
_PRIORITY: Final[Mapping[str, int]] = {
    **{entity: 2 for entity in SECRET_ENTITIES},
    **{entity: 1 for entity in STRUCTURED_ENTITIES},
}

# Offline public-suffix data: the snapshot bundled with tldextract, no cache directory, never the network.
_TLD_EXTRACT: Final = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


# --- configuration --------------------------------------------------------------------------------------------------


def _expand(names: Iterable[str], what: str, custom: Iterable[str] = ()) -> tuple[str, ...]:
    known = set(DEFAULT_ENTITIES) | set(custom)
    out: list[str] = []
    for name in names:
        for entity in ENTITY_GROUPS.get(name, (name,)):
            if entity not in known:
                raise ValueError(
                    f"unknown entity type {entity!r} in {what}; known: {', '.join(sorted(known))} "
                    f"and the groups {', '.join(ENTITY_GROUPS)}"
                )
            if entity not in out:
                out.append(entity)
    return tuple(out)


_ENTITY_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{1,63}")


class PatternSpec(BaseModel, frozen=True, extra="forbid"):
    """One pattern of a user's recognizer: a regular expression (the ``regex`` module's syntax) and its score."""

    name: str = "pattern"
    regex: str = Field(min_length=1)
    score: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("regex", mode="after")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = regex.compile(value, flags=regex.DOTALL | regex.MULTILINE)
            re.compile(value, flags=re.DOTALL | re.MULTILINE)
        except (regex.error, re.error) as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.search("") is not None:
            raise ValueError("the pattern matches the empty text, so it would match everywhere")
        return value


class RecognizerSpec(BaseModel, frozen=True, extra="forbid"):
    """A user's recognizer, in the shape of Presidio's ``add_recognizers_from_yaml`` entries."""

    name: str = Field(min_length=1)
    supported_entity: str
    """The entity type it finds: upper-case letters, digits and ``_`` (``EMPLOYEE_ID``)."""
    patterns: tuple[PatternSpec, ...] = Field(min_length=1)
    context: tuple[str, ...] = ()
    """Words that raise a match's score by 0.35 when among the five words before it (or in its key)."""
    negative_context: tuple[str, ...] = ()
    """Words that lower a match's score by 0.35 when among the three words before it."""
    supported_language: str = "en"

    @field_validator("supported_entity", mode="after")
    @classmethod
    def _entity_name(cls, value: str) -> str:
        if not _ENTITY_NAME.fullmatch(value):
            raise ValueError("an entity type is 2-64 upper-case letters, digits or '_', starting with a letter")
        if value in (DROPPED_KEY, REDACTION_FAILED):
            raise ValueError(f"{value} is reserved")
        return value

    def build(self) -> EntityRecognizer:
        """The Presidio recognizer, with a trigger made of its own patterns."""
        recognizer = PatternRecognizer(
            supported_entity=self.supported_entity,
            name=self.name,
            patterns=[Pattern(p.name, p.regex, p.score) for p in self.patterns],
            context=list(self.context) or None,
            supported_language=self.supported_language,
            global_regex_flags=regex.DOTALL | regex.MULTILINE,
        )
        recognizer.trigger = _secrets.Trigger(patterns=tuple(p.regex for p in self.patterns))  # type: ignore[attr-defined]
        recognizer.negative_context = list(self.negative_context)  # type: ignore[attr-defined]
        return recognizer


class RedactionConfig(BaseModel, frozen=True, extra="forbid"):
    """What the redactor detects and how it rewrites it; validated when built (bad values name their field)."""

    recognizers: tuple[RecognizerSpec, ...] = ()
    """The user's own pattern recognizers, run beside spanguard's; their entity types join ``entities``."""
    entities: tuple[str, ...] = Field(default=DEFAULT_ENTITIES, validate_default=True)
    """Entity types to detect (see :data:`DEFAULT_ENTITIES`; :data:`ENTITY_GROUPS` names are expanded)."""
    operators: dict[str, Operator] = Field(default_factory=dict)
    """Operator per entity type (group names allowed); the others use ``default_operator``."""
    default_operator: Operator = "replace"
    hash_key: SecretStr | None = Field(default=None, validate_default=True)
    """HMAC key of the ``hash`` operator (at least 16 characters); required when any operator is ``hash``."""
    never_scan: tuple[str, ...] = DEFAULT_NEVER_SCAN
    """Attribute keys (fnmatch globs, case-insensitive) passed through unscanned."""
    always_drop: tuple[str, ...] = DEFAULT_ALWAYS_DROP
    """Attribute keys (fnmatch globs, case-insensitive) whose attribute is removed; inside JSON, whose value becomes
    ``"<DROPPED_KEY>"``."""
    redact_keys: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_REDACT_KEYS))
    """Attribute keys (fnmatch globs, case-insensitive) whose values are redacted whole as the given type."""
    redact_key_words: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_REDACT_KEY_WORDS))
    """Key words (see :data:`DEFAULT_REDACT_KEY_WORDS`) whose keys' values, in attributes and in JSON, are redacted
    whole as the given type."""
    scan_resource: bool = True
    """Also redact resource attributes (once per distinct resource of a batch)."""
    scan_names: bool = True
    """Also redact span names, event names and attribute keys (JSON object keys are never changed)."""
    ner_model: str | None = None
    """A spaCy model (package name or path) for PERSON/LOCATION, loaded when either is in ``entities`` (a model that
    cannot be loaded makes :class:`Redactor` raise); None: those are not detected."""
    time_budget_ms: float = Field(default=200.0, gt=0)
    """Analysis time allowed per value (see the module notes for JSON and NER); beyond it the value fails closed."""
    score_threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    """Detections scoring below this are ignored (Presidio's scores: phone 0.4, validated card/IBAN/e-mail 1.0)."""

    @field_validator("entities", mode="after")
    @classmethod
    def _known_entities(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        custom = _custom_entities(info)
        expanded = _expand(value, "entities", custom)
        return expanded + tuple(e for e in custom if e not in expanded)

    @field_validator("operators", mode="after")
    @classmethod
    def _known_operator_keys(cls, value: dict[str, Operator], info: ValidationInfo) -> dict[str, Operator]:
        out: dict[str, Operator] = {}
        for name, operator in value.items():
            for entity in _expand((name,), "operators", _custom_entities(info)):
                out[entity] = operator
        return out

    @field_validator("redact_keys", "redact_key_words", mode="after")
    @classmethod
    def _known_key_entities(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        custom = _custom_entities(info)
        for key, entity in value.items():
            if not key.strip():
                raise ValueError("keys must not be empty")
            _expand((entity,), f"{info.field_name}[{key!r}]", custom)
        if info.field_name == "redact_key_words":
            return {"_".join(_key_words(word)): entity for word, entity in value.items()}
        return value

    @field_validator("never_scan", "always_drop", mode="after")
    @classmethod
    def _non_empty_globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not glob for glob in value):
            raise ValueError("key patterns must not be empty")
        return value

    @field_validator("ner_model", mode="after")
    @classmethod
    def _non_empty_model(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("ner_model must name a spaCy model or be null")
        return value

    @field_validator("hash_key", mode="after")
    @classmethod
    def _key_for_hash(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        operators = info.data.get("operators") or {}
        uses_hash = info.data.get("default_operator") == "hash" or "hash" in operators.values()
        if uses_hash and value is None:
            raise ValueError("hash_key is required when an operator is 'hash'")
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("hash_key must have at least 16 characters")
        return value

    def custom_recognizers(self) -> list[EntityRecognizer]:
        """The recognizers of ``recognizers``, built."""
        return [spec.build() for spec in self.recognizers]

    def operator_for(self, entity: str) -> Operator:
        """The operator applied to ``entity``."""
        return self.operators.get(entity, self.default_operator)


def _custom_entities(info: ValidationInfo) -> tuple[str, ...]:
    return tuple(spec.supported_entity for spec in info.data.get("recognizers") or ())


_KEY_SPLIT: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _key_words(key: str) -> list[str]:
    """The lower-case words of a key: ``billingEmail`` -> billing, email; ``X-API-Key`` -> x, api, key."""
    return [word.lower() for word in _KEY_SPLIT.findall(key)]


# --- results --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected entity: its type, character offsets in the analyzed text and score (never the value)."""

    entity_type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class RedactedText:
    """A redacted text and the types of what was redacted, one per occurrence, in text order."""

    text: str
    entities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedactedAttributes:
    """A new attribute map, the number of redactions in it and their types."""

    attributes: dict[str, Any]
    count: int = 0
    entities: frozenset[str] = frozenset()


class _BudgetExceeded(Exception):
    """Analysis of a value took longer than its budget."""


# --- recognizers ----------------------------------------------------------------------------------------------------


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


@dataclass(slots=True)
class _Recognizer:
    recognizer: EntityRecognizer
    entity: str
    trigger: Callable[[str, str], bool]
    patterns: list[tuple[Any, float]] | None  # compiled (regex module) patterns for the fast path, else None
    context: frozenset[str]
    negative: frozenset[str] = frozenset()  # words that say "this is not one" (an order number is not a phone)
    screen: Any = None  # an RE2 set of the patterns' screens (SecretRecognizer.pattern_screens), or None
    screen_of: tuple[int | None, ...] = ()  # per pattern: its index in ``screen`` (None: always run)

    def skipped(self, text: str) -> frozenset[int]:
        """The patterns not to run on ``text``: those whose screen does not find it (ASCII text only)."""
        if self.screen is None or not text.isascii():
            return frozenset()
        hits = set(self.screen.Match(text.encode("ascii")) or ())
        return frozenset(i for i, slot in enumerate(self.screen_of) if slot is not None and slot not in hits)


class _DigitsTrigger:
    """Seven digits or more, separated by at most three of ``space ( ) . - /``: any phone, card or SSN has them.

    ISO and US dates (``2024-08-06``, ``08/06/2024``) have eight digits but are skipped, since they are everywhere.
    """

    _RUN: Final = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6}")
    _DATE: Final = re.compile(r"(?:\d{4}([-./])\d\d\1\d\d|\d\d([-./])\d\d\2\d{4})(?![\d])")

    def __call__(self, text: str, lower: str) -> bool:
        for match in self._RUN.finditer(text):
            if self._DATE.match(text, match.start()) is None:
                return True
        return False


_DIGITS: Final = _DigitsTrigger()
_DATE_ASCII: Final = re.compile(_DigitsTrigger._DATE.pattern.encode("ascii"))  # bytes: \d is [0-9]
# What Python's ``\s`` matches in ASCII text (RE2's ``\s`` lacks \v and \x1c-\x1f).
_ASCII_SPACE: Final = r"\t\n\x0b\x0c\r\x1c-\x1f "
# Regex syntax whose meaning differs between Python's re and RE2, or that RE2 lacks: such patterns stay in Python.
_QUIET: Final = re2.Options()
_QUIET.log_errors = False
# The screens' combined automata: RE2's default 8 MiB lets a DFA of all the triggers' patterns run out and fall back
# to the NFA (correct, but tens of times slower); memory is taken only as the DFA's states are built.
_ROOMY: Final = re2.Options()
_ROOMY.log_errors = False
_ROOMY.max_mem = 64 << 20
_NOT_PORTABLE: Final = re.compile(r"\\[sSbBZ0-9]|\(\?[=!<P]")


# An alternative that is a literal (re2.escape'd, maybe case-folded): no class, group or repeat of its own.
_LITERAL_ALTERNATIVE: Final = re.compile(r"(?:\(\?i:)?(?:\\.|[A-Za-z0-9_])+\)?")


class _AsciiScreen:
    """Every trigger of a redactor as one RE2 pass over ASCII text, with the same answer as trying them one by one.

    Python's ``re`` tries each trigger's pattern at every position of a value; content is mostly clean, so that scan is
    most of the cost of redacting a span. RE2 runs all of them as one automaton (an RE2 set: which of them match, in
    one pass). The digits trigger keeps its exact meaning (RE2's leftmost-first matches are Python's, and each run is
    checked against the date pattern as before) when it is the only one found; a trigger with literals is found by
    its literals (a superset: its patterns then decide in the full analysis); a trigger this class cannot express
    runs in Python after the pass.
    """

    def __init__(
        self, triggers: Sequence[Callable[[str, str], bool]], folded: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> None:
        """``folded``: more literals that make the screen fire, found case-insensitively (ASCII ones only);
        ``extra``: more RE2 patterns that make it fire."""
        alternatives: list[str] = [f"(?i:{re2.escape(lit)})" for lit in folded if lit.isascii()]
        alternatives.extend(f"(?:{pattern})" for pattern in extra)
        self._python: list[Callable[[str, str], bool]] = []
        digits = False
        for trigger in triggers:
            if trigger is _DIGITS:
                digits = True
                continue
            portable = _re2_alternatives(trigger)
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
        self._set = _re2_set(patterns)

    def __call__(self, text: str) -> bool:
        """Whether some trigger finds ``text``, which must be ASCII."""
        data = text.encode("ascii")
        hits = self._set.Match(data) if self._set is not None else None
        if hits and (len(hits) > 1 or hits[0] != self._digits or _digit_run_outside_a_date(data)):
            return True
        if not self._python:
            return False
        lower = text.lower()
        return any(trigger(text, lower) for trigger in self._python)


# Printable ASCII in the shapes of telemetry (words, JSON, ids, numbers, URLs), for the screens' warm-up.
_WARM_UP_TEXT: Final = " ".join(
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
_DIGIT_RUN_RE2: Final = re2.compile(_DIGIT_RUN.encode("ascii"), _ROOMY)
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


def _re2_set(patterns: Sequence[str]) -> Any:
    """One compiled RE2 set of ``patterns`` (ASCII), or None when there are none."""
    if not patterns:
        return None
    rset = re2.Set.SearchSet(_ROOMY)
    for pattern in patterns:
        rset.Add(pattern.encode("ascii"))
    rset.Compile()
    return rset


class _TriggerSets:
    """Which triggers find an ASCII text, in one RE2 pass (a set, as :class:`_AsciiScreen`) instead of one Python test
    per trigger; the triggers RE2 cannot express, and the digits trigger's date rule, are checked in Python."""

    def __init__(self, triggers: Sequence[Callable[[str, str], bool]]) -> None:
        self._python: list[Callable[[str, str], bool]] = []
        patterns: list[str] = []
        self._owners: list[Callable[[str, str], bool]] = []
        for trigger in triggers:
            if trigger is _DIGITS:
                alternatives: list[str] | None = [_DIGIT_RUN]
            else:
                alternatives = _re2_alternatives(trigger)
            if alternatives is None:
                self._python.append(trigger)
                continue
            patterns.append("|".join(alternatives))
            self._owners.append(trigger)
        self._set = _re2_set(patterns)

    def __call__(self, text: str) -> set[Callable[[str, str], bool]]:
        """The triggers that (may) find ``text``, which must be ASCII."""
        data = text.encode("ascii")
        owners = self._owners
        hit = {owners[index] for index in (self._set.Match(data) or ())} if self._set is not None else set()
        if _DIGITS in hit and not _digit_run_outside_a_date(data):
            hit.discard(_DIGITS)  # only dates
        lower: str | None = None
        for trigger in self._python:
            if lower is None:
                lower = text.lower()
            if trigger(text, lower):
                hit.add(trigger)
        return hit


def _re2_alternatives(trigger: Callable[[str, str], bool]) -> list[str] | None:
    """RE2 patterns that find every ASCII text the trigger finds, or None when they cannot be written."""
    if isinstance(trigger, _secrets.SeparateTrigger):
        return [f"(?:{trigger.re2_pattern})"]
    if not isinstance(trigger, _secrets.Trigger):
        return None
    if trigger.literals or trigger.folded:
        # A literal that is not ASCII is never in ASCII text (nor, folded, in its lower-case form).
        literals = [re2.escape(lit) for lit in trigger.literals if lit.isascii()]
        return literals + [f"(?i:{re2.escape(lit)})" for lit in trigger.folded if lit.isascii()]
    out: list[str] = []
    for compiled, folded in [(p, False) for p in trigger.patterns] + [(p, True) for p in trigger.folded_patterns]:
        if compiled.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE) or _NOT_PORTABLE.search(
            compiled.pattern
        ):
            return None
        try:
            re2.compile(compiled.pattern, _QUIET)
        except re2.error:
            return None
        out.append(f"(?i:{compiled.pattern})" if folded else f"(?:{compiled.pattern})")
    return out


_TRIGGERS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    EMAIL_ADDRESS: _secrets.Trigger(literals=("@",)),
    PHONE_NUMBER: _DIGITS,
    CREDIT_CARD: _DIGITS,
    US_SSN: _DIGITS,
    IBAN_CODE: _secrets.Trigger(patterns=(r"[A-Z][A-Z]\d\d[ -]?[A-Z0-9]{4}",)),
    IP_ADDRESS: _secrets.Trigger(patterns=(r"\.\d{1,3}\.\d{1,3}\.\d", r":[0-9A-Fa-f]{0,4}:")),
}
# Phone numbers are looked for (with Presidio's PhoneRecognizer) only in windows around runs of digits.
_PHONE_RUN: Final = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6,}")
_PHONE_LEFT: Final = 12
_PHONE_RIGHT: Final = 16


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
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        flags = regex_flags or self.global_regex_flags
        for pattern in self.patterns:
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
                                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
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


def build_recognizers(entities: Iterable[str], custom: Iterable[EntityRecognizer] = ()) -> list[EntityRecognizer]:
    """The Presidio recognizers spanguard uses for ``entities`` (structured identifiers and secrets; not NER), then
    ``custom`` ones (a user's), each type's own recognizer taking the place of the default one of that type."""
    wanted = set(entities)
    pii = [r for r in _pii.pii_recognizers() if r.supported_entities[0] in wanted]
    replaced = {r.supported_entities[0] for r in pii}
    out: list[EntityRecognizer] = [r for r in _secrets.secret_recognizers() if r.supported_entities[0] in wanted]
    factories: list[tuple[str, Any]] = [
        (EMAIL_ADDRESS, OfflineEmailRecognizer),
        (CREDIT_CARD, _card_recognizer),
        (IBAN_CODE, TrimmingIbanRecognizer),
        (US_SSN, _ssn_recognizer),
        (IP_ADDRESS, IpRecognizer),
        (PHONE_NUMBER, PhoneRecognizer),
    ]
    out.extend(factory() for entity, factory in factories if entity in wanted and entity not in replaced)
    out.extend(pii)
    out.extend(custom)
    return out


def _wrap(recognizer: EntityRecognizer) -> _Recognizer:
    entity = recognizer.supported_entities[0]
    trigger = getattr(recognizer, "trigger", None) or _TRIGGERS[entity]
    patterns = None
    # Plain pattern recognizers (analyze not overridden) run on the fast path with a fail-closed regex time-out.
    fast = isinstance(recognizer, PatternRecognizer) and (
        type(recognizer).analyze is PatternRecognizer.analyze or isinstance(recognizer, OfflineEmailRecognizer)
    )
    if fast:
        flags = recognizer.global_regex_flags or 0
        patterns = [(regex.compile(p.regex, flags=flags), p.score) for p in recognizer.patterns]
    context = frozenset(word.lower() for word in (recognizer.context or ()))
    # A word can't both name the entity and say it is something else: its own context words win.
    negative = frozenset(word.lower() for word in (getattr(recognizer, "negative_context", None) or ())) - context
    wrapped = _Recognizer(recognizer, entity, trigger, patterns, context, negative)
    screens = getattr(recognizer, "pattern_screens", ())
    if patterns is not None and any(screens):
        rset = re2.Set.SearchSet(_ROOMY)
        slots: list[int | None] = []
        for screen in screens:
            slots.append(None if screen is None else rset.Add(screen.encode("ascii")))
        rset.Compile()
        wrapped.screen, wrapped.screen_of = rset, tuple(slots)
    return wrapped


# --- the redactor ---------------------------------------------------------------------------------------------------

_warned_no_ner = False
_warned_lock = threading.Lock()


def _warn_no_ner_once(entities: Sequence[str]) -> None:
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
    """

    def __init__(self, config: RedactionConfig | None = None, *, meter: Meter | None = None) -> None:
        self.config = config = config if config is not None else RedactionConfig()
        entities = config.entities
        self._entities = frozenset(entities)
        self._recognizers = [_wrap(r) for r in build_recognizers(entities, config.custom_recognizers())]
        self._triggers = list(dict.fromkeys(r.trigger for r in self._recognizers))  # distinct, in order
        self._gated_triggers = [t for t in self._triggers if getattr(t, "literals", ()) or getattr(t, "folded", ())]
        self._pattern_triggers = [t for t in self._triggers if t not in self._gated_triggers]
        self._gate_literals = tuple(dict.fromkeys(lit for t in self._gated_triggers for lit in t.literals))
        self._gate_folded = tuple(dict.fromkeys(lit for t in self._gated_triggers for lit in t.folded))
        self._screen = _AsciiScreen(self._triggers)
        self._trigger_sets = _TriggerSets(self._triggers)
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
        self._json_key_pattern = rf'(?i:{"|".join(key_texts)})[^"\\\n]{{0,64}}\\?"[ \t]*:' if key_texts else None
        self._json_key_re = re2.compile(self._json_key_pattern) if self._json_key_pattern else None
        # A whole span's values at once: the triggers, the fragments of keys to drop and the PII-named JSON keys.
        self._span_screen = _AsciiScreen(
            self._triggers, self._drop_fragments, (self._json_key_pattern,) if self._json_key_pattern else ()
        )
        # RE2 builds its DFA states as it meets them: build the common ones now, not in the first spans' time budget.
        for warm in (self._screen, self._span_screen, self._trigger_sets):
            warm(_WARM_UP_TEXT)
        self._operators = {entity: config.operator_for(entity) for entity in entities}
        self._hash_key = config.hash_key.get_secret_value().encode() if config.hash_key else b""
        self._budget_s = config.time_budget_ms / 1000.0
        self._threshold = config.score_threshold
        self._ner_entities = tuple(e for e in NER_ENTITIES if e in entities)
        self._nlp: Any = None
        self._nlp_lock = threading.Lock()
        self._ner_cache: OrderedDict[bytes, tuple[Detection, ...]] = OrderedDict()  # text digest -> detections
        self._unread_scripts: frozenset[str] = frozenset()
        if self._ner_entities:
            if config.ner_model:
                self._nlp = _load_ner(config.ner_model)
                self._unread_scripts = _names.unread_scripts(str(getattr(self._nlp, "lang", "")))
            else:
                _warn_no_ner_once(self._ner_entities)
        self._use_ner = self._nlp is not None
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
                    r.recognizer.analyze(sample, [r.entity])
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
        with self._nlp_lock:
            self._nlp = None
        self.clear_cache()

    def clear_cache(self) -> None:
        """Forget the cached NER results (the benchmark does this between rounds)."""
        with self._nlp_lock:
            self._ner_cache.clear()

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
        words = _key_words(key)
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
            return _pii_entity(_pii.STREET_ADDRESS, self._entities), -1
        joined = f"_{'_'.join(words)}_"
        for word, entity in self._redact_key_words:
            if word not in joined:
                continue
            # The naming word's last part, found in the key itself: the value (if any) follows it.
            parts = word.strip("_").split("_")
            spans = [(m.group().lower(), m.end()) for m in _KEY_SPLIT.finditer(key)]
            for i in range(len(spans) - len(parts) + 1):
                if [w for w, _ in spans[i : i + len(parts)]] == parts:
                    end = spans[i + len(parts) - 1][1]
                    rest = key[end:].lstrip("._-: /")
                    tail = len(key) - len(rest) if rest and _value_in_key(rest, entity) else -1
                    return entity, tail
            return entity, -1
        return None, -1

    def _key_rule(self, key: str) -> int:
        """_SCAN, _NEVER, _DROP, _BY_KEY or _URL (cached per key)."""
        return self._key_info(key).rule

    def _drops(self, key: str) -> bool:
        return self._key_info(key).rule == _DROP

    def _needs_analysis(self, text: str, lower: str | None = None) -> bool:
        """Whether a text can hold anything: NER is on, or a trigger finds it (``lower``: ``text.lower()``)."""
        return self._use_ner or self._triggered(text, lower)

    def _triggered(self, text: str, lower: str | None = None) -> bool:
        """Whether some trigger finds ``text`` (``lower``: ``text.lower()``)."""
        if text.isascii():
            return self._screen(text)
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

    def _fired(self, text: str) -> list[_Recognizer]:
        """The recognizers whose trigger finds ``text`` (each distinct trigger is evaluated once; in ASCII text, the
        triggers RE2 can express are found together by :class:`_TriggerSets`, a superset their patterns then decide)."""
        if text.isascii():
            hit = self._trigger_sets(text)
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
        if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
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
        if isinstance(value, Mapping):  # an OTLP kvlist value
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
        if not text or _REDACTED.fullmatch(text):
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
        preset = _query_values(value, whole_is_query=value and info.words == frozenset({"url", "query"}))
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
        if isinstance(node, list):
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
                    for res in r.recognizer.analyze(text, [r.entity])
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
        for i, (compiled, base_score) in enumerate(r.patterns or ()):
            if i in skipped:
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise _BudgetExceeded
            for match in compiled.finditer(text, timeout=remaining):  # TimeoutError: fails closed
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
            if _DigitsTrigger._DATE.fullmatch(text, match.start(), match.end()) is not None:
                continue
            start, end = max(0, match.start() - _PHONE_LEFT), min(len(text), match.end() + _PHONE_RIGHT)
            if windows and start <= windows[-1][1]:
                windows[-1][1] = end
            else:
                windows.append([start, end])
        out: list[Detection] = []
        seen: set[tuple[int, int]] = set()
        for start, end in windows:
            for res in r.recognizer.analyze(text[start:end], [r.entity]):
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
        """Add the NER detections of every candidate leaf: cached ones, then one ``nlp.pipe`` over the other texts."""
        if not self._ner_entities or not self.config.ner_model:
            return
        todo = [leaf for leaf in leaves if not leaf.group.failed and _NER_CANDIDATE.search(leaf.text)]
        if not todo:
            return
        keys = [hashlib.blake2b(leaf.text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for leaf in todo]
        found: dict[bytes, tuple[Detection, ...] | None] = {}
        pending: dict[bytes, str] = {}  # one analysis per distinct text
        started = time.perf_counter()
        try:
            with self._nlp_lock:
                nlp = self._nlp
                if nlp is None:
                    raise RuntimeError("redactor is shut down")
                for key, leaf in zip(keys, todo, strict=True):
                    cached = self._ner_cache.get(key)
                    if cached is not None:
                        self._ner_cache.move_to_end(key)
                        found[key] = cached
                    elif len(leaf.text) > nlp.max_length:
                        found[key] = None
                    else:
                        pending[key] = leaf.text
                if pending:
                    docs = self._pipe(nlp, list(pending.values()))
                    for key, doc in zip(pending, docs, strict=True):
                        dets = None if doc is None else self._ner_detections(doc)
                        found[key] = dets
                        if dets is not None:
                            self._ner_cache[key] = dets
                    while len(self._ner_cache) > _NER_CACHE_SIZE:
                        self._ner_cache.popitem(last=False)
        except Exception as exc:
            self._log_failure(exc)
            for leaf in todo:
                leaf.group.failed = "error"
            return
        allowance = self._budget_s * sum(max(1.0, len(text) / _NER_CHARS_PER_BUDGET) for text in pending.values())
        timed_out = pending and time.perf_counter() - started > allowance
        for key, leaf in zip(keys, todo, strict=True):
            dets = found.get(key)
            if dets is None:
                leaf.group.failed = "error"
            elif timed_out and key in pending:
                leaf.group.failed = "timeout"
            else:
                leaf.detections.extend(self._ner_of_leaf(leaf, dets))

    def _ner_of_leaf(self, leaf: _Leaf, dets: tuple[Detection, ...]) -> list[Detection]:
        """The wanted detections of a leaf's text, corrected by the key that holds it: ``"name": "Mathijs Broeckx"``
        is a person the model has too little text to see, ``"tool_name": "Lookup Order"`` is none."""
        wanted = list(dets)
        if PERSON not in self._ner_entities or not leaf.key_words:
            return wanted
        whole = len(leaf.text)
        if _names.names_a_thing(leaf.key_words):
            return [d for d in wanted if not (d.entity_type == PERSON and d.start == 0 and d.end == whole)]
        if _names.names_a_person(leaf.key_words) and _names.written_as_name(leaf.text):
            # The model's label of two bare words is noise ("Sean Mason" and "Premium Plan" are both ORG to it).
            wanted.append(Detection(PERSON, 0, whole, _NER_SCORE))
        return wanted

    def _ner_detections(self, doc: Any) -> tuple[Detection, ...]:
        wanted = self._ner_entities
        if _NER_SCORE < self._threshold:
            return ()
        out = []
        for ent in doc.ents:
            entity = _NER_LABELS.get(ent.label_)
            if entity in wanted and not _names_an_identifier(entity, ent.text):
                out.append(Detection(entity, ent.start_char, ent.end_char, _NER_SCORE))
        if PERSON in wanted:
            text = doc.text
            spans = _names.introduced_names(text) + _names.unread_script_runs(text, self._unread_scripts)
            out += [Detection(PERSON, start, end, _NER_SCORE) for start, end in spans]
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

    def _operate(self, entity: str, value: str) -> str:
        operator = self._operators.get(entity, self.config.default_operator)
        if operator == "replace":
            return Replace().operate(value, {"entity_type": entity})
        if operator == "mask":
            keep = 4 if entity in _MASK_KEEP_LAST and len(value) >= 8 else 0
            return Mask().operate(value, {"masking_char": "*", "chars_to_mask": len(value) - keep, "from_end": False})
        if operator == "hash":
            digest = hmac.new(self._hash_key, _normalize(entity, value).encode(), hashlib.sha256).hexdigest()
            return f"<{entity}:{digest[:8]}>"
        return Redact().operate(value, {})

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
            elif isinstance(value, (tuple, list)):
                texts.extend(item for item in value if isinstance(item, str))
            elif isinstance(value, Mapping):
                return False
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


def _names_an_identifier(entity: str, text: str) -> bool:
    """Whether a model's name or place is an identifier: all of it (``ORD-2023``), a token of it (``ref OHP-3798-TS``),
    or, for a person, any digit (names have none) or one short upper-case word (``JPY``, ``SKU``)."""
    if _CODE_LIKE.fullmatch(text) or _CODE_TOKEN.search(text):
        return True
    if entity != PERSON:
        return False
    return any(c.isdigit() for c in text) or (text.isupper() and len(text) <= 5 and " " not in text)


def _pii_entity(name: str, entities: frozenset[str]) -> str | None:
    return name if name in entities else None


_QUERY_PARAM: Final = re.compile(r"[^&;]+")
# What the operators leave (<TYPE>, <TYPE:1a2b3c4d>, ****): a value redacted whole once is not redacted again.
_REDACTED: Final = re.compile(r"<[A-Z][A-Z0-9_]*(?::[0-9a-f]{8})?>|\*+")


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
        if match.end() > value_start and not _REDACTED.fullmatch(url, value_start, match.end()):
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


def _normalize(entity: str, value: str) -> str:
    """The form of a value that is hashed, so that one identifier written two ways gets one pseudonym."""
    text = unicodedata.normalize("NFKC", value).strip()
    if entity == PHONE_NUMBER:
        try:
            number = phonenumbers.parse(text, "US")
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return re.sub(r"[^0-9+]", "", text)
    if entity in (CREDIT_CARD, IBAN_CODE, US_SSN):
        return re.sub(r"[^0-9A-Za-z]", "", text).upper()
    if entity in (EMAIL_ADDRESS, PERSON, LOCATION, IP_ADDRESS):
        return " ".join(text.split()).casefold()
    return text


def _load_ner(model: str) -> Any:
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

"""The redaction config: what is detected, where, with which operators, and a user's pattern recognizers.

Every field's meaning: docs/redaction.md; the collector's YAML: docs/collector-config.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer
from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from spanguard.processors.redaction.entities import (
    CREDIT_CARD,
    DATE_OF_BIRTH,
    DEFAULT_ENTITIES,
    EMAIL_ADDRESS,
    ENTITY_GROUPS,
    IBAN_CODE,
    IN_AADHAAR,
    IN_PAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PASSPORT,
    PERSON,
    PHONE_NUMBER,
    RESERVED_ENTITIES,
    SECRET,
    STREET_ADDRESS,
    TAX_ID,
    UK_NHS,
    UK_NINO,
    US_BANK_NUMBER,
    US_DRIVER_LICENSE,
    US_SSN,
    USER_ID,
)
from spanguard.processors.redaction.screen import Trigger

__all__ = [
    "DEFAULT_ALWAYS_DROP",
    "DEFAULT_NEVER_SCAN",
    "DEFAULT_REDACT_KEYS",
    "DEFAULT_REDACT_KEY_WORDS",
    "Operator",
    "PatternSpec",
    "RecognizerSpec",
    "RedactionConfig",
    "key_words",
]

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
    "password": SECRET,
    "passwd": SECRET,
    "pwd": SECRET,
    "passcode": SECRET,
    "passphrase": SECRET,
    "pin": SECRET,
    "token": SECRET,
    "secret": SECRET,
    "api_key": SECRET,
    "apikey": SECRET,
    "access_key": SECRET,
    "private_key": SECRET,
    "credential": SECRET,
    "credentials": SECRET,
    "webhook": SECRET,
    "webhook_url": SECRET,
    "dsn": SECRET,
    "connection_string": SECRET,
    "card_number": CREDIT_CARD,
    "credit_card": CREDIT_CARD,
    "cc_number": CREDIT_CARD,
    "card_no": CREDIT_CARD,
    "iban": IBAN_CODE,
    "account_number": US_BANK_NUMBER,
    "bank_account": US_BANK_NUMBER,
    "dob": DATE_OF_BIRTH,
    "date_of_birth": DATE_OF_BIRTH,
    "birth_date": DATE_OF_BIRTH,
    "birthdate": DATE_OF_BIRTH,
    "birthday": DATE_OF_BIRTH,
    "street": STREET_ADDRESS,
    "street_address": STREET_ADDRESS,
    "home_address": STREET_ADDRESS,
    "shipping_address": STREET_ADDRESS,
    "billing_address": STREET_ADDRESS,
    "mailing_address": STREET_ADDRESS,
    "postal_address": STREET_ADDRESS,
    "delivery_address": STREET_ADDRESS,
    "address_line": STREET_ADDRESS,
    "passport": PASSPORT,
    "driver_license": US_DRIVER_LICENSE,
    "drivers_license": US_DRIVER_LICENSE,
    "driving_licence": US_DRIVER_LICENSE,
    "driving_license": US_DRIVER_LICENSE,
    "licence_number": US_DRIVER_LICENSE,
    "license_number": US_DRIVER_LICENSE,
    "dl_number": US_DRIVER_LICENSE,
    "ni_number": UK_NINO,
    "nino": UK_NINO,
    "national_insurance": UK_NINO,
    "nhs": UK_NHS,
    "aadhaar": IN_AADHAAR,
    "aadhar": IN_AADHAAR,
    "pan": IN_PAN,
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

Operator = Literal["replace", "mask", "hash", "drop"]
"""What a detected value becomes (docs/redaction.md, Operators)."""


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
        if value in RESERVED_ENTITIES:
            raise ValueError(f"{value} is reserved")
        return value

    def build(self) -> EntityRecognizer:
        """The Presidio recognizer, with a trigger made of its own patterns."""
        recognizer = PatternRecognizer(
            supported_entity=self.supported_entity,
            name=self.name,
            patterns=[Pattern(p.name, p.regex, p.score) for p in self.patterns],
            context=list(self.context) or None,  # type: ignore[arg-type]  # Presidio takes None
            supported_language=self.supported_language,
            global_regex_flags=regex.DOTALL | regex.MULTILINE,
        )
        trigger = Trigger(patterns=tuple(p.regex for p in self.patterns), flags=re.DOTALL | re.MULTILINE)
        recognizer.trigger = trigger  # type: ignore[attr-defined]
        recognizer.negative_context = list(self.negative_context)  # type: ignore[attr-defined]
        return recognizer


class RedactionConfig(BaseModel, frozen=True, extra="forbid"):
    """What the redactor detects, where, and how it rewrites it (docs/redaction.md); a bad value is refused when the
    config is built, naming its field."""

    recognizers: tuple[RecognizerSpec, ...] = ()
    """Your own pattern recognizers, in the shape of Presidio's YAML recognizers (``name``, ``supported_entity``,
    ``patterns``, ``context``, ``negative_context``); they run after spanguard's, and their types join ``entities``."""
    entities: tuple[str, ...] = Field(default=DEFAULT_ENTITIES, validate_default=True)
    """The entity types to detect (docs/redaction.md lists them), or the groups ``SECRETS`` and ``API_KEY``; a type
    left out is neither detected nor redacted by its key."""
    operators: dict[str, Operator] = Field(default_factory=dict)
    """The operator (``replace``, ``mask``, ``hash`` or ``drop``) of each entity type or group named; the other types
    get ``default_operator``."""
    default_operator: Operator = "replace"
    """The operator of every type ``operators`` does not name: ``replace`` (``<EMAIL_ADDRESS>``), ``mask``
    (``****``), ``hash`` (``<PERSON:3f2a9c1b>``, which needs ``hash_key``) or ``drop``."""
    hash_key: SecretStr | None = Field(default=None, validate_default=True)
    """The HMAC key of the ``hash`` operator, at least 16 characters; required when any operator is ``hash``."""
    never_scan: tuple[str, ...] = DEFAULT_NEVER_SCAN
    """Attribute keys (fnmatch globs, case-insensitive) passed through unscanned."""
    always_drop: tuple[str, ...] = DEFAULT_ALWAYS_DROP
    """Attribute keys (fnmatch globs, case-insensitive) whose attribute is removed; inside JSON, whose value becomes
    ``"<DROPPED_KEY>"``."""
    redact_keys: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_REDACT_KEYS))
    """Attribute keys (fnmatch globs, case-insensitive) whose values are redacted whole as the given type."""
    redact_key_words: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_REDACT_KEY_WORDS))
    """Words of a key (split at ``.``, ``_``, ``-`` and camelCase) that say what its value holds: the values of such
    keys, in attributes and in JSON, are redacted whole as the given type."""
    scan_resource: bool = True
    """Also redact resource attributes (once per distinct resource of a batch)."""
    scan_names: bool = True
    """Also redact span names, event names and attribute keys (JSON object keys are never changed)."""
    ner_model: str | None = None
    """A spaCy model (package name or path) that finds ``PERSON`` and ``LOCATION``, loaded when either is in
    ``entities``; a model that cannot be loaded is an error at start. Unset: names and places are not detected."""
    time_budget_ms: float = Field(default=200.0, gt=0)
    """The analysis time allowed per value, in milliseconds (a JSON attribute value as a whole; for NER, per text or
    per 1,000 characters of it); a value that takes longer fails closed."""
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
            return {"_".join(key_words(word)): entity for word, entity in value.items()}
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


KEY_SPLIT: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> list[str]:
    """The lower-case words of a key: ``billingEmail`` -> billing, email; ``X-API-Key`` -> x, api, key."""
    return [word.lower() for word in KEY_SPLIT.findall(key)]

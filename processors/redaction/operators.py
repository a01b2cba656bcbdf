"""The operators that rewrite a detected value: ``replace``, ``mask``, ``hash`` and ``drop`` (Presidio's anonymizer
operators, and an HMAC pseudonym).

What each writes, and how ``hash`` normalizes a value first: docs/redaction.md ("How it works": Operators).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Final

import phonenumbers
from presidio_anonymizer.operators import Mask, Redact, Replace

from spanguard.processors.redaction.config import RedactionConfig
from spanguard.processors.redaction.entities import (
    CREDIT_CARD,
    EMAIL_ADDRESS,
    IBAN_CODE,
    IP_ADDRESS,
    LOCATION,
    PERSON,
    PHONE_NUMBER,
    US_SSN,
)

__all__ = ["REDACTED", "Operators"]

_MASK_KEEP_LAST: Final = frozenset({CREDIT_CARD, IBAN_CODE, US_SSN, PHONE_NUMBER})
# What the operators leave (<TYPE>, <TYPE:1a2b3c4d>, ****): a value redacted whole once is not redacted again.
REDACTED: Final = re.compile(r"<[A-Z][A-Z0-9_]*(?::[0-9a-f]{8})?>|\*+")


class Operators:
    """The operator of each entity type of a config, applied to a matched value."""

    def __init__(self, config: RedactionConfig, entities: tuple[str, ...]) -> None:
        self._operators = {entity: config.operator_for(entity) for entity in entities}
        self._default = config.default_operator
        self._hash_key = config.hash_key.get_secret_value().encode() if config.hash_key else b""

    def __call__(self, entity: str, value: str) -> str:
        """What ``value``, detected as ``entity``, is written as."""
        operator = self._operators.get(entity, self._default)
        if operator == "replace":
            return Replace().operate(value, {"entity_type": entity})
        if operator == "mask":
            keep = 4 if entity in _MASK_KEEP_LAST and len(value) >= 8 else 0
            return Mask().operate(value, {"masking_char": "*", "chars_to_mask": len(value) - keep, "from_end": False})
        if operator == "hash":
            digest = hmac.new(self._hash_key, _normalize(entity, value).encode(), hashlib.sha256).hexdigest()
            return f"<{entity}:{digest[:8]}>"
        return Redact().operate(value, {})


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

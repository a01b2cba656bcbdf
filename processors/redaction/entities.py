"""The entity types redaction detects, declared once, and the groups that name several of them.

What each type matches: docs/redaction.md ("What is detected").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from spanguard.semconv.redaction import DROPPED_KEY, REDACTION_FAILED

__all__ = [
    "DEFAULT_ENTITIES",
    "DROPPED_KEY",
    "ENTITY_GROUPS",
    "KEY_ENTITIES",
    "NER_ENTITIES",
    "PII_ENTITIES",
    "REDACTION_FAILED",
    "RESERVED_ENTITIES",
    "SECRET_ENTITIES",
    "STRUCTURED_ENTITIES",
]

# --- identifiers and personal data (recognizers.py) -----------------------------------------------------------------

EMAIL_ADDRESS: Final = "EMAIL_ADDRESS"
PHONE_NUMBER: Final = "PHONE_NUMBER"
CREDIT_CARD: Final = "CREDIT_CARD"
IBAN_CODE: Final = "IBAN_CODE"
US_SSN: Final = "US_SSN"
IP_ADDRESS: Final = "IP_ADDRESS"
PASSPORT: Final = "PASSPORT"
DATE_OF_BIRTH: Final = "DATE_OF_BIRTH"
STREET_ADDRESS: Final = "STREET_ADDRESS"

# National identifiers: Presidio's entity names.
UK_NINO: Final = "UK_NINO"
UK_NHS: Final = "UK_NHS"
UK_DRIVING_LICENCE: Final = "UK_DRIVING_LICENCE"
IN_AADHAAR: Final = "IN_AADHAAR"
IN_PAN: Final = "IN_PAN"
IN_VOTER: Final = "IN_VOTER"
US_DRIVER_LICENSE: Final = "US_DRIVER_LICENSE"
US_ITIN: Final = "US_ITIN"
US_BANK_NUMBER: Final = "US_BANK_NUMBER"
AU_TFN: Final = "AU_TFN"
AU_MEDICARE: Final = "AU_MEDICARE"
AU_ABN: Final = "AU_ABN"
ES_NIF: Final = "ES_NIF"
ES_NIE: Final = "ES_NIE"
IT_FISCAL_CODE: Final = "IT_FISCAL_CODE"
PL_PESEL: Final = "PL_PESEL"
SG_NRIC_FIN: Final = "SG_NRIC_FIN"
KR_RRN: Final = "KR_RRN"
CA_SIN: Final = "CA_SIN"
DE_TAX_ID: Final = "DE_TAX_ID"
SE_PERSONNUMMER: Final = "SE_PERSONNUMMER"
FI_PERSONAL_IDENTITY_CODE: Final = "FI_PERSONAL_IDENTITY_CODE"
TAX_ID: Final = "TAX_ID"
"""Any tax number named by a word or key (``tax id``, ``EIN``, ``UTR``, ``vat_number``) but no country's shape."""

NATIONAL_ENTITIES: Final[tuple[str, ...]] = (
    UK_NINO,
    UK_NHS,
    UK_DRIVING_LICENCE,
    IN_AADHAAR,
    IN_PAN,
    IN_VOTER,
    US_DRIVER_LICENSE,
    US_ITIN,
    US_BANK_NUMBER,
    AU_TFN,
    AU_MEDICARE,
    AU_ABN,
    ES_NIF,
    ES_NIE,
    IT_FISCAL_CODE,
    PL_PESEL,
    SG_NRIC_FIN,
    KR_RRN,
    CA_SIN,
    DE_TAX_ID,
    SE_PERSONNUMMER,
    FI_PERSONAL_IDENTITY_CODE,
    TAX_ID,
)
PII_ENTITIES: Final[tuple[str, ...]] = (PASSPORT, DATE_OF_BIRTH, STREET_ADDRESS, *NATIONAL_ENTITIES)
"""The types of spanguard's own PII recognizers (beside ``PHONE_NUMBER``, which they find in place of Presidio's)."""

# --- secrets (secrets.py) -------------------------------------------------------------------------------------------

OPENAI_API_KEY: Final = "OPENAI_API_KEY"
ANTHROPIC_API_KEY: Final = "ANTHROPIC_API_KEY"
LLM_API_KEY: Final = "LLM_API_KEY"
AWS_ACCESS_KEY: Final = "AWS_ACCESS_KEY"
AWS_SECRET_KEY: Final = "AWS_SECRET_KEY"
GOOGLE_API_KEY: Final = "GOOGLE_API_KEY"
AZURE_KEY: Final = "AZURE_KEY"
CLOUD_TOKEN: Final = "CLOUD_TOKEN"
STRIPE_KEY: Final = "STRIPE_KEY"
PAYMENT_KEY: Final = "PAYMENT_KEY"
GITHUB_TOKEN: Final = "GITHUB_TOKEN"
GITLAB_TOKEN: Final = "GITLAB_TOKEN"
DEVTOOL_TOKEN: Final = "DEVTOOL_TOKEN"
SLACK_TOKEN: Final = "SLACK_TOKEN"
MESSAGING_TOKEN: Final = "MESSAGING_TOKEN"
BEARER_TOKEN: Final = "BEARER_TOKEN"
JWT: Final = "JWT"
URL_PASSWORD: Final = "URL_PASSWORD"
PRIVATE_KEY: Final = "PRIVATE_KEY"
SECRET: Final = "SECRET"

SECRET_ENTITIES: Final[tuple[str, ...]] = (
    OPENAI_API_KEY,
    ANTHROPIC_API_KEY,
    LLM_API_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    GOOGLE_API_KEY,
    AZURE_KEY,
    CLOUD_TOKEN,
    STRIPE_KEY,
    PAYMENT_KEY,
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    DEVTOOL_TOKEN,
    SLACK_TOKEN,
    MESSAGING_TOKEN,
    BEARER_TOKEN,
    JWT,
    URL_PASSWORD,
    PRIVATE_KEY,
    SECRET,
)
"""Every secret entity type, in the order their recognizers run."""

# --- names and places (ner.py), and types found only by a value's key (engine.py) -----------------------------------

PERSON: Final = "PERSON"
LOCATION: Final = "LOCATION"
USER_ID: Final = "USER_ID"
"""The type of a value held by a key that names a user's identity (``user.id``, ``enduser.id``)."""
URL_QUERY: Final = "URL_QUERY"
"""The type of a query-string value of a URL attribute (``url.query``, the query part of ``url.full``)."""
NATIONAL_ID: Final = "NATIONAL_ID"
"""The type of a value held by a key that names a national identity number (``national_id``, ``id_card``)."""

# --- groups ---------------------------------------------------------------------------------------------------------

STRUCTURED_ENTITIES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys((EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, *PII_ENTITIES))
)
NER_ENTITIES: Final[tuple[str, ...]] = (PERSON, LOCATION)
KEY_ENTITIES: Final[tuple[str, ...]] = (USER_ID, URL_QUERY, NATIONAL_ID)
"""Types only ever found by the key that holds a value (see ``redact_keys``)."""
DEFAULT_ENTITIES: Final[tuple[str, ...]] = STRUCTURED_ENTITIES + SECRET_ENTITIES + NER_ENTITIES + KEY_ENTITIES
"""Every entity type spanguard can detect (``PERSON``/``LOCATION`` only with ``ner_model``)."""
ENTITY_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "SECRETS": SECRET_ENTITIES,
    "API_KEY": (OPENAI_API_KEY, ANTHROPIC_API_KEY, SECRET),
}
"""Names accepted in ``entities`` and ``operators`` that stand for several types."""
RESERVED_ENTITIES: Final = frozenset({DROPPED_KEY, REDACTION_FAILED})
"""Types redaction counts for its own marks, which no recognizer may claim."""
